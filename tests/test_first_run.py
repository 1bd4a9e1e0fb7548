"""A newcomer's first run: the README's main job, with DAGSTER_HOME unset in the shell, leaves what the UI
then shows, and a later run of a single asset finds everything it needs.

The README's own command lines are run (the virtual environment's ``.venv/bin/`` replaced by this
interpreter's) in a copy of the example (definitions.py, workspace.yaml, .dagster_home/dagster.yaml) in a
temporary directory; the UI is dagster-webserver over that copy's ``.dagster_home``, read through GraphQL
as test_dagster_ui.py does. Qdrant is the embedded server the job starts (or QDRANT_URL's).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from test_dagster_ui import _graphql, serving_webserver

from dagster_qdrant.embedded.control import stop_embedded_qdrant

ROOT = Path(__file__).resolve().parent.parent
JOB_TIMEOUT_SECONDS = 900
MATERIALIZATIONS = """
query Materializations {
  assetNodes {
    assetKey { path }
    assetMaterializations { runId partition }
  }
  runsOrError { ... on Runs { results { runId status } } }
}
"""


def _readme_command(pattern: str) -> str:
    """The README's shell command matching `pattern`, from its DAGSTER_HOME assignment on, run with this
    interpreter's scripts instead of `.venv/bin/`."""
    readme = (ROOT / "README.md").read_text()
    line = next(line for line in readme.splitlines() if re.search(pattern, line))
    command = line[line.index("DAGSTER_HOME=$PWD/.dagster_home ") :]
    return command.replace(".venv/bin/", f"{Path(sys.executable).parent}/")


@pytest.fixture
def example(tmp_path: Path) -> Iterator[Path]:
    copy = tmp_path / "example"
    (copy / ".dagster_home").mkdir(parents=True)
    for name in ("definitions.py", "workspace.yaml", ".dagster_home/dagster.yaml"):
        shutil.copy(ROOT / name, copy / name)
    yield copy
    stop_embedded_qdrant(copy / ".qdrant")


def _newcomer_shell() -> dict[str, str]:
    environment = {key: value for key, value in os.environ.items() if not key.startswith(("DAGSTER_", "PYSPARK_"))}
    environment["PYTHONPATH"] = str(ROOT)  # this checkout's package, as `pip install -e .` gives it
    return environment


def _run(command: str, cwd: Path) -> str:
    result = subprocess.run(
        ["bash", "-c", command], cwd=cwd, env=_newcomer_shell(), capture_output=True, text=True,
        timeout=JOB_TIMEOUT_SECONDS,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-6000:]
    return output


@contextmanager
def _webserver(example: Path) -> Iterator[str]:
    """The UI over the example copy's instance, as `DAGSTER_HOME=$PWD/.dagster_home dagster dev` serves it."""
    environment = {**_newcomer_shell(), "DAGSTER_HOME": str(example / ".dagster_home")}
    with serving_webserver(Path("workspace.yaml"), example, environment, example / "webserver.log") as url:
        yield url


def test_the_main_job_leaves_what_the_ui_shows_and_each_asset_runs_again_alone(example: Path) -> None:
    main_job = _readme_command(r"dagster asset materialize .*--select '\*' --partition 2024-05-03$")
    # The README's UI command reads the instance the job wrote.
    assert "DAGSTER_HOME=$PWD/.dagster_home .venv/bin/dagster dev -w workspace.yaml" in (ROOT / "README.md").read_text()

    output = _run(main_job, example)
    dagster_lines = [line for line in output.splitlines() if " - dagster - " in line]
    assert dagster_lines and not [line for line in dagster_lines if " - DEBUG - " in line]
    assert "nearest to 'tomato plants in the garden'" in dagster_lines[-1]  # the answer ends the log
    assert "replaced a previously registered data source" not in output
    assert "[Stage " not in output  # Spark's console progress bars
    if not os.environ.get("QDRANT_URL"):
        started = [line for line in dagster_lines if "Embedded Qdrant started at http://127.0.0.1:" in line]
        assert len(started) == 1 and f"dagster-qdrant stop --path {example / '.qdrant'}" in started[0]

    _run(main_job.replace("--select '*' --partition 2024-05-03", "--select similar_documents"), example)

    with _webserver(example) as url:
        state = _graphql(url, MATERIALIZATIONS)
    runs = state["runsOrError"]["results"]
    assert [run["status"] for run in runs] == ["SUCCESS", "SUCCESS"]
    first, second = runs[1]["runId"], runs[0]["runId"]  # newest first
    materialized = {
        "/".join(node["assetKey"]["path"]): sorted((m["runId"], m["partition"]) for m in node["assetMaterializations"])
        for node in state["assetNodes"]
    }
    assert materialized == {
        "documents": [(first, None)],
        "embedding_model": [(first, None)],
        "document_embeddings": [(first, None)],
        "daily_documents": [(first, "2024-05-03")],
        "similar_documents": sorted([(first, None), (second, None)]),
    }
