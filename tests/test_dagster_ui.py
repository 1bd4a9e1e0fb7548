"""The example served by dagster-webserver from workspace.yaml, driven through GraphQL as the UI drives it.

The webserver runs with a temporary DAGSTER_HOME on a free loopback port; its runs are launched in their
own processes (Dagster's default run launcher) and talk to the Qdrant under test through QDRANT_URL.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import requests
from waiting import wait_until

ROOT = Path(__file__).resolve().parent.parent
START_TIMEOUT_SECONDS = 120
RUN_TIMEOUT_SECONDS = 900
ASSET_JOB = "__ASSET_JOB"

LAUNCH_RUN = """
mutation LaunchRun($executionParams: ExecutionParams!) {
  launchRun(executionParams: $executionParams) {
    __typename
    ... on LaunchRunSuccess { run { runId } }
    ... on PythonError { message stack }
    ... on RunConfigValidationInvalid { errors { message } }
    ... on InvalidSubsetError { message }
    ... on PipelineNotFoundError { message }
  }
}
"""
RUN_STATUS = """
query RunStatus($runId: ID!) {
  runOrError(runId: $runId) { __typename ... on Run { status } }
}
"""
RUN_FAILURES = """
query RunFailures($runId: ID!) {
  logsForRun(runId: $runId) {
    ... on EventConnection {
      events {
        __typename
        ... on ExecutionStepFailureEvent { stepKey error { message } }
        ... on RunFailureEvent { message }
      }
    }
  }
}
"""
REPOSITORIES = """
query Repositories {
  repositoriesOrError {
    __typename
    ... on RepositoryConnection {
      nodes { name location { name } assetNodes { assetKey { path } isPartitioned } }
    }
    ... on PythonError { message }
  }
}
"""

ASSET_KINDS = """
query AssetKinds {
  repositoriesOrError {
    ... on RepositoryConnection { nodes { assetNodes { assetKey { path } kinds } } }
  }
}
"""


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def webserver(
    qdrant_url: str, qdrant_api_key: str | None, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    home = tmp_path_factory.mktemp("dagster-home")
    # Runs start at once in their own process (no daemon to dequeue them).
    (home / "dagster.yaml").write_text(
        "run_coordinator:\n"
        "  module: dagster._core.run_coordinator\n"
        "  class: DefaultRunCoordinator\n"
        "telemetry:\n"
        "  enabled: false\n"
    )
    environment = {**os.environ, "DAGSTER_HOME": str(home), "QDRANT_URL": qdrant_url}
    if qdrant_api_key:
        environment["QDRANT_API_KEY"] = qdrant_api_key
    environment["PYSPARK_PYTHON"] = sys.executable
    with serving_webserver(ROOT / "workspace.yaml", ROOT, environment, home / "webserver.log") as url:
        yield url


@contextmanager
def serving_webserver(workspace: Path, cwd: Path, environment: dict[str, str], log_path: Path) -> Iterator[str]:
    """The Dagster UI (``dagster_webserver``) over ``workspace`` on a free port, stopped with its process group."""
    port = _free_port()
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "dagster_webserver", "-w", str(workspace), "-h", "127.0.0.1", "-p", str(port)],
            cwd=cwd, env=environment, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_until_serving(url, process, log_path)
        yield url
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)


def _wait_until_serving(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    def serving() -> bool:
        if process.poll() is not None:
            raise AssertionError(f"dagster-webserver exited:\n{log.read_text()[-3000:]}")
        try:
            if requests.get(f"{url}/server_info", timeout=2).ok:
                return bool(_graphql(url, REPOSITORIES)["repositoriesOrError"].get("nodes"))
        except requests.RequestException:
            pass
        return False

    try:
        wait_until(serving, START_TIMEOUT_SECONDS, "dagster-webserver to serve the repository", interval=0.2)
    except TimeoutError as error:
        raise AssertionError(f"{error}:\n{log.read_text()[-3000:]}") from None


def _graphql(url: str, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
    response = requests.post(f"{url}/graphql", json={"query": query, "variables": variables or {}}, timeout=60)
    response.raise_for_status()
    body = response.json()
    assert "errors" not in body, body["errors"]
    return body["data"]


def _launch(url: str, location: str, repository: str, assets: list[list[str]], checks: list[dict], tags: dict) -> str:
    params = {
        "selector": {
            "repositoryLocationName": location,
            "repositoryName": repository,
            "jobName": ASSET_JOB,
            "assetSelection": [{"path": path} for path in assets],
            "assetCheckSelection": checks,
        },
        "mode": "default",
        "executionMetadata": {"tags": [{"key": key, "value": value} for key, value in tags.items()]},
    }
    result = _graphql(url, LAUNCH_RUN, {"executionParams": params})["launchRun"]
    assert result["__typename"] == "LaunchRunSuccess", result
    return result["run"]["runId"]


def _wait_for_run(url: str, run_id: str) -> str:
    statuses: list[str] = []

    def finished() -> bool:
        statuses.append(_graphql(url, RUN_STATUS, {"runId": run_id})["runOrError"]["status"])
        return statuses[-1] in ("SUCCESS", "FAILURE", "CANCELED")

    try:
        wait_until(finished, RUN_TIMEOUT_SECONDS, f"run {run_id} to finish", interval=0.5)
    except TimeoutError as error:
        raise AssertionError(f"{error} (last status {statuses[-1] if statuses else None})") from None
    return statuses[-1]


def _failures(url: str, run_id: str) -> list[Any]:
    events = _graphql(url, RUN_FAILURES, {"runId": run_id})["logsForRun"].get("events", [])
    return [event for event in events if event["__typename"] in ("ExecutionStepFailureEvent", "RunFailureEvent")]


def test_the_ui_shows_the_qdrant_kind_on_the_assets_stored_in_qdrant(webserver: str) -> None:
    repositories = _graphql(webserver, ASSET_KINDS)["repositoriesOrError"]["nodes"]
    kinds = {
        "/".join(node["assetKey"]["path"]): set(node["kinds"])
        for repository in repositories
        for node in repository["assetNodes"]
    }
    assert {key for key, shown in kinds.items() if "qdrant" in shown} == {"document_embeddings", "daily_documents"}


def test_every_asset_materializes_from_the_ui(webserver: str, qdrant_url: str) -> None:
    repositories = _graphql(webserver, REPOSITORIES)["repositoriesOrError"]["nodes"]
    assert len(repositories) == 1
    repository = repositories[0]
    location, name = repository["location"]["name"], repository["name"]
    nodes = repository["assetNodes"]
    unpartitioned = [node["assetKey"]["path"] for node in nodes if not node["isPartitioned"]]
    partitioned = [node["assetKey"]["path"] for node in nodes if node["isPartitioned"]]
    assert sorted(unpartitioned) == [["document_embeddings"], ["documents"], ["embedding_model"],
                                     ["similar_documents"]]
    assert partitioned == [["daily_documents"]]

    check = {"assetKey": {"path": ["document_embeddings"]}, "name": "embeddings_complete"}
    run_id = _launch(webserver, location, name, unpartitioned, [check], {})
    status = _wait_for_run(webserver, run_id)
    assert status == "SUCCESS", _failures(webserver, run_id)

    # As the UI does for a partitioned asset: one run per chosen partition, with the partition tag.
    run_id = _launch(webserver, location, name, partitioned, [], {"dagster/partition": "2024-05-05"})
    status = _wait_for_run(webserver, run_id)
    assert status == "SUCCESS", _failures(webserver, run_id)

    from dagster_qdrant.dagster_io.resources import QdrantResource

    http = QdrantResource(endpoint=qdrant_url).http()
    assert http.count("document_embeddings") == 320
    day = {"must": [{"key": "_partition", "match": {"value": "2024-05-05"}}]}
    assert http.count("daily_documents", filter=day) == 40
