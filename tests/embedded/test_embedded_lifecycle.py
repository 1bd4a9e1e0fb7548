"""Starting, sharing, crashing and restarting the embedded server: no acknowledged write is lost."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests

from dagster_qdrant.embedded import ensure_embedded_qdrant, start_embedded_qdrant
from waiting import wait_until


def _write_everything(url: str) -> dict[int | str, dict]:
    """Create a collection and an alias, write points in both forms and change some; return what must be there."""
    collection = f"{url}/collections/kept"
    requests.put(collection, json={"vectors": {"size": 3, "distance": "Euclid"}}).raise_for_status()
    expected: dict[int | str, dict] = {}
    for start in range(0, 3000, 500):
        ids = list(range(start, start + 500))
        body = {"batch": {"ids": ids, "vectors": [[i, 0.5, -1] for i in ids], "payloads": [{"n": i} for i in ids]}}
        requests.put(f"{collection}/points?wait=true", json=body).raise_for_status()
        expected.update({i: {"n": i} for i in ids})
    uuids = [str(uuid.uuid4()) for _ in range(50)]
    points = [{"id": u, "vector": [1, 2, 3], "payload": {"u": u}} for u in uuids]
    requests.put(f"{collection}/points?wait=false", json={"points": points}).raise_for_status()
    expected.update({u: {"u": u} for u in uuids})
    requests.post(f"{collection}/points/delete?wait=true", json={"filter": {"must": [{"key": "n", "range": {"lt": 100}}]}}).raise_for_status()
    for i in range(100):
        expected.pop(i)
    requests.post(f"{collection}/points/payload?wait=true", json={"payload": {"tag": "x"}, "points": [100, 101]}).raise_for_status()
    expected[100] = {"n": 100, "tag": "x"}
    expected[101] = {"n": 101, "tag": "x"}
    requests.post(f"{url}/collections/aliases", json={"actions": [{"create_alias": {"collection_name": "kept", "alias_name": "kept_alias"}}]}).raise_for_status()
    return expected


def _read_everything(url: str) -> dict[int | str, dict]:
    found: dict[int | str, dict] = {}
    offset = None
    while True:
        response = requests.post(f"{url}/collections/kept_alias/points/scroll", json={"limit": 700, "offset": offset})
        response.raise_for_status()
        result = response.json()["result"]
        found.update({point["id"]: point["payload"] for point in result["points"]})
        offset = result["next_page_offset"]
        if offset is None:
            return found


def test_every_acknowledged_write_survives_kill_9(tmp_path: Path) -> None:
    server = start_embedded_qdrant(tmp_path)
    expected = _write_everything(server.url)
    server.kill()
    assert server._process.returncode == -signal.SIGKILL
    with start_embedded_qdrant(tmp_path) as restarted:
        assert _read_everything(restarted.url) == expected
        info = requests.get(f"{restarted.url}/collections/kept").json()["result"]
        assert info["points_count"] == len(expected)
        assert info["config"]["params"]["vectors"] == {"size": 3, "distance": "Euclid"}
        point = requests.get(f"{restarted.url}/collections/kept/points/2999").json()["result"]
        assert point["vector"] == [2999, 0.5, -1]


def test_graceful_stop_and_restart_keeps_data(tmp_path: Path) -> None:
    with start_embedded_qdrant(tmp_path) as server:
        expected = _write_everything(server.url)
    assert not (tmp_path / ".server.json").exists()
    with start_embedded_qdrant(tmp_path) as restarted:
        assert _read_everything(restarted.url) == expected


def test_concurrent_writers_all_land(qdrant_url: str, collection_name: str) -> None:
    collection = f"{qdrant_url}/collections/{collection_name}"
    requests.put(collection, json={"vectors": {"size": 4, "distance": "Cosine"}}).raise_for_status()

    def write(worker: int) -> None:
        with requests.Session() as session:
            for request in range(10):
                ids = [worker * 100_000 + request * 100 + i for i in range(100)]
                body = {"batch": {"ids": ids, "vectors": [[1, 2, 3, i % 7 + 1] for i in ids], "payloads": [{"w": worker}] * 100}}
                session.put(f"{collection}/points?wait=true", json=body).raise_for_status()

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(write, range(8)))
    assert requests.post(f"{collection}/points/count", json={}).json()["result"]["count"] == 8000
    requests.delete(collection)


def _stop_detached(path: Path) -> None:
    info = json.loads((path / ".server.json").read_text())
    os.kill(info["pid"], signal.SIGTERM)
    wait_until(lambda: not (path / ".server.json").exists(), 20, "the detached server to remove its .server.json")


def test_ensure_from_many_processes_ends_with_one_server(tmp_path: Path) -> None:
    code = "import sys; from dagster_qdrant.embedded import ensure_embedded_qdrant; print(ensure_embedded_qdrant(sys.argv[1]))"
    callers = [subprocess.Popen([sys.executable, "-c", code, str(tmp_path)], stdout=subprocess.PIPE, text=True) for _ in range(4)]
    try:
        urls = {caller.communicate(timeout=60)[0].strip() for caller in callers}
        assert len(urls) == 1 and all(caller.returncode == 0 for caller in callers)
        url = urls.pop()
        assert requests.get(f"{url}/readyz").status_code == 200
        assert ensure_embedded_qdrant(tmp_path) == url  # this process reuses it too
    finally:
        _stop_detached(tmp_path)


def test_ensure_replaces_a_dead_servers_stale_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    (tmp_path / ".server.json").write_text(json.dumps({"pid": dead.pid, "port": 1, "url": "http://127.0.0.1:1"}))
    monkeypatch.setenv("DAGSTER_QDRANT_PATH", str(tmp_path))
    url = ensure_embedded_qdrant()
    try:
        assert url != "http://127.0.0.1:1"
        assert requests.get(f"{url}/").json()["version"] == "1.19.0"
    finally:
        _stop_detached(tmp_path)


def test_server_process_imports_neither_spark_nor_dagster() -> None:
    code = (
        "import sys, dagster_qdrant.embedded.server, dagster_qdrant.embedded.cli;"
        "print(sorted(m for m in ('pyspark', 'dagster', 'pandas', 'requests') if m in sys.modules))"
    )
    output = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert output.strip() == "[]"


def test_command_line_serves_on_the_given_port(tmp_path: Path) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    command = [sys.executable, "-m", "dagster_qdrant.embedded", "serve", "--path", str(tmp_path), "--port", str(port)]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        def ready() -> bool:
            try:
                return requests.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200
            except requests.ConnectionError:
                return False

        wait_until(ready, 30, "the command line's server to answer /readyz")
        assert requests.get(f"http://127.0.0.1:{port}/").json()["title"] == "qdrant - vector search engine"
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=20) == 0
