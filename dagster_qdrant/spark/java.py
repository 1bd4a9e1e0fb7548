"""Say what is missing when Spark cannot start its JVM, instead of PySpark's bare ``JAVA_GATEWAY_EXITED``.

PySpark starts a JVM through ``spark-submit``; when Java is missing or too old the JVM exits at once and
PySpark only reports that "Java gateway process exited before sending its port number". Wrap the call
that creates the SparkSession in ``java_required()`` and that error names Java 17+, where it was looked
for, and how to install it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from dagster_qdrant.errors import QdrantError

GATEWAY_EXITED = "JAVA_GATEWAY_EXITED"
INSTALL_HINT = (
    "Install Java 17 or newer (Debian/Ubuntu: `sudo apt-get install openjdk-17-jre-headless`; "
    "macOS: `brew install openjdk@17`; elsewhere: https://adoptium.net), then set JAVA_HOME to its "
    "directory or put its bin/ on PATH."
)


class SparkJavaError(QdrantError, RuntimeError):
    """Spark could not start its JVM: Java 17+ is missing, not found, or too old."""


@contextmanager
def java_required() -> Iterator[None]:
    """Turn PySpark's ``JAVA_GATEWAY_EXITED`` inside the block into a ``SparkJavaError`` with the fix."""
    try:
        yield
    except Exception as error:
        if _condition(error) != GATEWAY_EXITED:
            raise
        raise SparkJavaError(
            f"Spark could not start its JVM: PySpark 4 needs Java 17 or newer, and {describe_java()}. "
            f"{INSTALL_HINT} (PySpark said: {error})"
        ) from error


def describe_java() -> str:
    """Where Spark's launcher looks for ``java`` (JAVA_HOME, else PATH) and what it found there."""
    java_home = os.environ.get("JAVA_HOME")
    if java_home:
        java = Path(java_home) / "bin" / "java"
        if not java.is_file():
            return f"JAVA_HOME={java_home} has no bin/java"
        return f"JAVA_HOME={java_home} has {java}: {_version(str(java))}"
    java = shutil.which("java")
    if java is None:
        return "JAVA_HOME is unset and there is no `java` on PATH"
    return f"JAVA_HOME is unset and `java` on PATH is {java}: {_version(java)}"


def _version(java: str) -> str:
    """The first line of ``java -version`` (it prints to stderr), or why it could not run."""
    try:
        probe = subprocess.run([java, "-version"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError) as error:
        return f"it does not run ({error})"
    lines = (probe.stderr or probe.stdout).strip().splitlines()
    return lines[0] if lines else f"`java -version` printed nothing (exit code {probe.returncode})"


def _condition(error: BaseException) -> str | None:
    """PySpark's error condition name (``getCondition`` in 4.x, ``getErrorClass`` before)."""
    for method in ("getCondition", "getErrorClass"):
        getter = getattr(error, method, None)
        if callable(getter):
            try:
                return getter()
            except Exception:
                return None
    return None


__all__ = ["SparkJavaError", "describe_java", "java_required"]
