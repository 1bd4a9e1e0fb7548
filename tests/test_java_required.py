"""Without Java, starting Spark says that Java 17+ is needed and how to get it, not only PySpark's
``JAVA_GATEWAY_EXITED``. Each case runs in a fresh process whose environment has no Java: JAVA_HOME
names an empty directory or is unset, and PATH holds every program of this machine's PATH but ``java``.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
INSTALL = "apt-get install openjdk-17-jre-headless"
START_SPARK = (
    "from pyspark.sql import SparkSession\n"
    "from dagster_qdrant.spark.java import java_required\n"
    "with java_required():\n"
    "    SparkSession.builder.master('local[1]').getOrCreate()\n"
)


def _path_without_java(tmp_path: Path) -> str:
    """A PATH directory linking every program on this machine's PATH except `java`."""
    programs = tmp_path / "bin"
    programs.mkdir()
    for directory in os.environ.get("PATH", "").split(os.pathsep):
        if not os.path.isdir(directory):
            continue
        for name in os.listdir(directory):
            target = os.path.join(directory, name)
            if name != "java" and not (programs / name).exists() and os.access(target, os.X_OK):
                (programs / name).symlink_to(target)
    return str(programs)


def _environment(tmp_path: Path, java_home: str | None) -> dict[str, str]:
    environment = {**os.environ, "PATH": _path_without_java(tmp_path)}
    environment.pop("JAVA_HOME", None)
    if java_home is not None:
        environment["JAVA_HOME"] = java_home
    return environment


@pytest.mark.parametrize("java_home", ["empty directory", None], ids=["JAVA_HOME empty", "JAVA_HOME unset"])
def test_starting_spark_without_java_says_java_17_is_needed(tmp_path: Path, java_home: str | None) -> None:
    home = None
    if java_home is not None:
        (tmp_path / "jdk").mkdir()
        home = str(tmp_path / "jdk")
    result = subprocess.run(
        [sys.executable, "-c", START_SPARK], env=_environment(tmp_path, home), capture_output=True, text=True,
        timeout=120,
    )
    assert result.returncode != 0
    last = result.stderr.strip().splitlines()[-1]
    where = f"JAVA_HOME={home} has no bin/java" if home else "JAVA_HOME is unset and there is no `java` on PATH"
    assert last.startswith(
        f"dagster_qdrant.spark.java.SparkJavaError: Spark could not start its JVM: PySpark 4 needs Java 17 or "
        f"newer, and {where}. Install Java 17 or newer"
    ), result.stderr[-3000:]
    assert INSTALL in last and "brew install openjdk@17" in last and "JAVA_GATEWAY_EXITED" in last


def test_the_example_job_without_java_says_java_17_is_needed(tmp_path: Path) -> None:
    (tmp_path / "jdk").mkdir()
    environment = _environment(tmp_path, str(tmp_path / "jdk"))
    environment["DAGSTER_HOME"] = str(tmp_path / "dagster_home")
    environment["QDRANT_URL"] = "http://127.0.0.1:9"  # never reached: Spark fails first
    (tmp_path / "dagster_home").mkdir()
    dagster = Path(sys.executable).with_name("dagster")
    result = subprocess.run(
        [str(dagster), "asset", "materialize", "-f", str(ROOT / "definitions.py"), "--select", "documents,embedding_model"],
        cwd=tmp_path, env=environment, capture_output=True, text=True, timeout=300,
    )
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert f"PySpark 4 needs Java 17 or newer, and JAVA_HOME={tmp_path / 'jdk'} has no bin/java" in output, output[-4000:]
    assert INSTALL in output
