"""Start the embedded Qdrant from code: a server owned by the caller, or one shared per data directory.

Only the standard library is imported here, so Dagster steps and Spark workers can call
`ensure_embedded_qdrant` cheaply. The server writes `<data>/.server.json` ({pid, port, url}) once it
listens; `ensure_embedded_qdrant` serializes callers of many processes with an fcntl lock on
`<data>/.server.lock`, reuses a live server and replaces a dead one's stale file. A shared server keeps
its port from run to run (see `ports`), and says once per process where it runs and how to stop it.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from dagster_qdrant.embedded.ports import PREFERRED_PORT, is_free, port_candidates, port_of, remember_port

PATH_ENVIRONMENT_VARIABLE = "DAGSTER_QDRANT_PATH"
API_KEY_ENVIRONMENT_VARIABLE = "DAGSTER_QDRANT_API_KEY"
DEFAULT_DIRECTORY = ".qdrant"
SERVER_FILE = ".server.json"
LOCK_FILE = ".server.lock"
LOG_FILE = "server.log"
START_TIMEOUT_SECONDS = 60.0
LOG = logging.getLogger("dagster_qdrant.embedded")
_ANNOUNCED: set[tuple[str, int]] = set()
"""(data directory, pid) pairs this process has already logged."""


class EmbeddedServer:
    """A running embedded Qdrant process: `url`, `pid`, `path`; `stop()` (graceful) or `kill()` (SIGKILL)."""

    def __init__(self, process: subprocess.Popen[bytes] | None, pid: int, url: str, path: Path) -> None:
        self._process = process
        self.pid = pid
        self.url = url
        self.path = path

    def __repr__(self) -> str:
        return f"EmbeddedServer(url={self.url!r}, pid={self.pid}, path={str(self.path)!r})"

    def __enter__(self) -> EmbeddedServer:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def stop(self, timeout: float = 30.0) -> None:
        """SIGTERM, then wait: the server flushes and closes every shard before it exits."""
        self._signal(signal.SIGTERM)
        if not self._wait(timeout):
            self.kill()

    def kill(self) -> None:
        """SIGKILL: what a crash looks like; acknowledged writes survive through the WAL."""
        self._signal(signal.SIGKILL)
        self._wait(10.0)

    def _signal(self, signum: int) -> None:
        try:
            os.kill(self.pid, signum)
        except ProcessLookupError:
            pass

    def _wait(self, timeout: float) -> bool:
        if self._process is not None:
            try:
                self._process.wait(timeout)
                return True
            except subprocess.TimeoutExpired:
                return False
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not _alive(self.pid):
                return True
            time.sleep(0.05)
        return False


def default_path() -> Path:
    """`$DAGSTER_QDRANT_PATH`, else `.qdrant/` under the current directory."""
    return Path(os.environ.get(PATH_ENVIRONMENT_VARIABLE) or DEFAULT_DIRECTORY).resolve()


def start_embedded_qdrant(
    path: str | os.PathLike[str], *, port: int = 0, api_key: str | None = None, detached: bool = False
) -> EmbeddedServer:
    """Start a server for `path` (created if missing) and wait until it answers /readyz.

    Only one server can own a directory: starting a second one for the same path fails with the first
    one's lock error in the message (use `ensure_embedded_qdrant` to share one).
    """
    data_path = Path(path).resolve()
    data_path.mkdir(parents=True, exist_ok=True)
    previous = _read_server_file(data_path)
    command = [sys.executable, "-m", "dagster_qdrant.embedded", "serve", "--path", str(data_path), "--port", str(port)]
    environment = dict(os.environ)
    environment.pop(API_KEY_ENVIRONMENT_VARIABLE, None)
    if api_key:
        environment[API_KEY_ENVIRONMENT_VARIABLE] = api_key
    with open(data_path / LOG_FILE, "ab") as log:
        process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            env=environment,
            start_new_session=detached,
            close_fds=True,
        )
    try:
        url = _wait_until_ready(data_path, process, previous)
    except BaseException:
        process.kill()
        process.wait()
        raise
    remember_port(data_path, port_of(url))
    return EmbeddedServer(process, process.pid, url, data_path)


def ensure_embedded_qdrant(
    path: str | os.PathLike[str] | None = None, *, api_key: str | None = None, preferred_port: int = PREFERRED_PORT
) -> str:
    """The URL of the embedded Qdrant serving `path`, starting a detached one if none runs.

    Safe to call from many processes at once: they queue on a file lock and all get the same server. A
    new server listens on the port remembered for `path` when it is free, else on `preferred_port` when
    that is free, else on any free port. The server outlives the caller: it logs (INFO, logger
    ``dagster_qdrant.embedded``) where it runs and how to stop it, once per process.
    """
    data_path = Path(path).resolve() if path is not None else default_path()
    data_path.mkdir(parents=True, exist_ok=True)
    with open(data_path / LOCK_FILE, "a+b") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            running = _read_server_file(data_path)
            if running and _alive(running["pid"]) and _ready(running["url"]):
                _announce(data_path, running["pid"], running["url"], started=False)
                return running["url"]
            server = _start_detached(data_path, api_key, preferred_port)
            _announce(data_path, server.pid, server.url, started=True)
            return server.url
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _start_detached(data_path: Path, api_key: str | None, preferred_port: int) -> EmbeddedServer:
    """Start on the first candidate port that is free; a port taken between the check and the bind
    (another program started meanwhile) moves on to the next candidate."""
    candidates = port_candidates(data_path, preferred_port)
    for port in candidates:
        if not is_free(port):
            continue
        try:
            server = start_embedded_qdrant(data_path, port=port, api_key=api_key, detached=True)
        except RuntimeError:
            if port == candidates[-1] or is_free(port):
                raise
            continue
        server._process = None  # detached: it outlives this process, nobody reaps it here
        return server
    raise AssertionError("unreachable: the last candidate, any free port, is always tried")


def _announce(data_path: Path, pid: int, url: str, *, started: bool) -> None:
    if (str(data_path), pid) in _ANNOUNCED:
        return
    _ANNOUNCED.add((str(data_path), pid))
    LOG.info(
        "Embedded Qdrant %s %s (data in %s, pid %d); it keeps running after this process exits: "
        "`dagster-qdrant status --path %s` shows it, `dagster-qdrant stop --path %s` stops it",
        "started at" if started else "running at", url, data_path, pid, data_path, data_path,
    )


def _wait_until_ready(data_path: Path, process: subprocess.Popen[bytes], previous: dict | None) -> str:
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(
                f"the embedded Qdrant for {data_path} exited with code {process.returncode} before it was ready; "
                f"last lines of {data_path / LOG_FILE}:\n{_tail(data_path / LOG_FILE)}"
            )
        info = _read_server_file(data_path)
        if info and info.get("pid") == process.pid and _ready(info["url"]):
            return info["url"]
        time.sleep(0.05)
    raise TimeoutError(f"the embedded Qdrant for {data_path} was not ready after {START_TIMEOUT_SECONDS:.0f} s")


def _read_server_file(data_path: Path) -> dict | None:
    try:
        info = json.loads((data_path / SERVER_FILE).read_text())
    except (OSError, ValueError):
        return None
    return info if isinstance(info, dict) and "pid" in info and "url" in info else None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie child of ours is dead for our purposes
        finished, _ = os.waitpid(pid, os.WNOHANG)
        return finished == 0
    except ChildProcessError:
        return not _zombie(pid)


def _zombie(pid: int) -> bool:
    """A process that exited and waits for its parent to collect it (Linux: state Z in /proc)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[-1].split()[:1] == ["Z"]


def _ready(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/readyz", timeout=2.0) as response:
            return response.status == 200
    except (urllib.error.URLError, OSError, ValueError):
        return False


def _tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"
