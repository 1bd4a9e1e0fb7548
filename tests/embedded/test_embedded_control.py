"""The detached embedded Qdrant a run leaves behind: it says where it runs, `dagster-qdrant status` and
`stop` find it by its data directory, and it comes back on the same port so `dagster/uri` links hold.

Every test starts real servers on loopback; the preferred port (6333 in use) is passed in, so the tests
do not depend on what else listens on this machine: a listening socket stands in for another program.
"""

from __future__ import annotations

import json
import logging
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from dagster_qdrant.embedded import ensure_embedded_qdrant, launcher
from dagster_qdrant.embedded.control import embedded_status, stop_embedded_qdrant
from dagster_qdrant.embedded.ports import any_free_port, port_of
from waiting import wait_until


def _cli(*arguments: str) -> subprocess.CompletedProcess[str]:
    """`dagster-qdrant ...` as a user runs it (the console script calls the same `main`)."""
    return subprocess.run(
        [sys.executable, "-m", "dagster_qdrant.embedded", *arguments], capture_output=True, text=True, timeout=120
    )


def _gone(pid: int) -> bool:
    return not launcher._alive(pid)


def _answers(url: str) -> bool:
    try:
        return requests.get(f"{url}/readyz", timeout=2).status_code == 200
    except requests.RequestException:
        return False


@pytest.fixture
def occupied_port() -> Iterator[int]:
    """A port another program listens on."""
    with socket.socket() as other:
        other.bind(("127.0.0.1", 0))
        other.listen()
        yield other.getsockname()[1]


@pytest.fixture
def data_path(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "qdrant"
    yield path
    stop_embedded_qdrant(path)


def test_status_and_stop_find_the_detached_server_by_its_data_directory(data_path: Path) -> None:
    url = ensure_embedded_qdrant(data_path, preferred_port=any_free_port())
    pid = json.loads((data_path / ".server.json").read_text())["pid"]

    running = _cli("status", "--path", str(data_path))
    assert running.returncode == 0, running.stderr
    assert running.stdout.strip() == f"running: {url} (pid {pid}, data in {data_path})"

    stopped = _cli("stop", "--path", str(data_path))
    assert stopped.returncode == 0, stopped.stderr
    assert stopped.stdout.strip() == f"stopped the embedded Qdrant at {url} (pid {pid}, data in {data_path})"
    wait_until(lambda: _gone(pid), 30, f"server process {pid} to be gone")
    assert not _answers(url)

    after = _cli("status", "--path", str(data_path))
    assert after.returncode == 3
    assert after.stdout.strip() == f"not running (data in {data_path}; its port is {port_of(url)})"
    assert _cli("stop", "--path", str(data_path)).stdout.strip() == after.stdout.strip()


def test_a_killed_servers_leftover_pid_is_never_signalled(data_path: Path) -> None:
    """After `kill -9` the server's .server.json stays; its pid may belong to another program by then."""
    bystander = subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.read()"], stdin=subprocess.PIPE)
    try:
        url = ensure_embedded_qdrant(data_path, preferred_port=any_free_port())
        server_file = data_path / ".server.json"
        pid = json.loads(server_file.read_text())["pid"]
        launcher.EmbeddedServer(None, pid, url, data_path).kill()
        wait_until(lambda: _gone(pid), 30, f"server process {pid} to be gone")
        server_file.write_text(json.dumps({"pid": bystander.pid, "port": port_of(url), "url": url}))

        assert not embedded_status(data_path).running
        assert not stop_embedded_qdrant(data_path).running
        assert bystander.poll() is None
    finally:
        bystander.communicate(b"")


def test_a_fresh_data_directory_takes_the_preferred_port_when_it_is_free(data_path: Path) -> None:
    preferred = any_free_port()
    url = ensure_embedded_qdrant(data_path, preferred_port=preferred)
    assert port_of(url) == preferred
    assert embedded_status(data_path).url == url


def test_a_restarted_server_comes_back_on_its_remembered_port(data_path: Path, occupied_port: int) -> None:
    first = ensure_embedded_qdrant(data_path, preferred_port=occupied_port)
    assert port_of(first) != occupied_port  # the preferred port is taken: any free port, remembered
    stop_embedded_qdrant(data_path)

    assert ensure_embedded_qdrant(data_path, preferred_port=occupied_port) == first
    stop_embedded_qdrant(data_path)
    # Once the preferred port frees up, links to the remembered one still work.
    assert ensure_embedded_qdrant(data_path, preferred_port=any_free_port()) == first


def test_a_port_taken_between_the_check_and_the_bind_moves_on(
    data_path: Path, occupied_port: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another program may start listening on the chosen port just before the server binds it."""
    real_is_free = launcher.is_free
    asked: list[int] = []

    def free_when_first_asked(port: int) -> bool:
        asked.append(port)
        return True if asked.count(port) == 1 else real_is_free(port)

    monkeypatch.setattr(launcher, "is_free", free_when_first_asked)
    url = ensure_embedded_qdrant(data_path, preferred_port=occupied_port)
    assert port_of(url) != occupied_port and _answers(url)
    assert asked.count(occupied_port) == 2  # tried, failed to bind, found taken, moved on


def test_the_run_log_says_where_the_server_runs_and_how_to_stop_it(
    data_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="dagster_qdrant.embedded"):
        url = ensure_embedded_qdrant(data_path, preferred_port=any_free_port())
        assert ensure_embedded_qdrant(data_path) == url
    pid = json.loads((data_path / ".server.json").read_text())["pid"]
    lines = [record.getMessage() for record in caplog.records if record.name == "dagster_qdrant.embedded"]
    assert len(lines) == 1, lines  # once per process, not on every call
    assert lines[0] == (
        f"Embedded Qdrant started at {url} (data in {data_path}, pid {pid}); it keeps running after this "
        f"process exits: `dagster-qdrant status --path {data_path}` shows it, "
        f"`dagster-qdrant stop --path {data_path}` stops it"
    )
    assert caplog.records[0].levelno == logging.INFO
