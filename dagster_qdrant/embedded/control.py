"""Whether an embedded Qdrant serves a data directory, and stopping it: `dagster-qdrant status` / `stop`.

A shared server runs detached (it outlives the Dagster run that started it), so these find it through
its data directory alone: `<data>/.server.json` names its pid and URL, and the server holds an exclusive
lock on `<data>/.server.owner` while it runs. A file left by a killed server, whose pid may since belong
to another program, is recognised by that lock being free: such a pid is never signalled.
"""

from __future__ import annotations

import fcntl
import os
from dataclasses import dataclass
from pathlib import Path

from dagster_qdrant.embedded.launcher import LOCK_FILE, EmbeddedServer, _alive, _read_server_file, default_path
from dagster_qdrant.embedded.ports import remembered_port

OWNER_FILE = ".server.owner"
"""Locked by the server process for as long as it owns the directory (see server.py)."""
STOP_TIMEOUT_SECONDS = 30.0


@dataclass(frozen=True)
class ServerStatus:
    """What serves `path`: `running`, and then its `url` and `pid`; `port` is the one it listens (or last
    listened) on."""

    path: Path
    running: bool
    url: str | None = None
    pid: int | None = None
    port: int | None = None

    def describe(self) -> str:
        if self.running:
            return f"running: {self.url} (pid {self.pid}, data in {self.path})"
        last = f"; its port is {self.port}" if self.port else ""
        return f"not running (data in {self.path}{last})"


def embedded_status(path: str | os.PathLike[str] | None = None) -> ServerStatus:
    """The state of the embedded Qdrant for `path` (default: as `ensure_embedded_qdrant` picks it)."""
    data_path = Path(path).resolve() if path is not None else default_path()
    if not data_path.is_dir():
        return ServerStatus(data_path, running=False)
    with open(data_path / LOCK_FILE, "a+b") as lock:  # not while a launcher is starting one
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            return _status(data_path)
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def stop_embedded_qdrant(path: str | os.PathLike[str] | None = None, timeout: float = STOP_TIMEOUT_SECONDS) -> ServerStatus:
    """Stop the embedded Qdrant for `path` (SIGTERM: it flushes and closes its shards; SIGKILL after
    `timeout` s) and wait until its process is gone. Returns the status it had before."""
    status = embedded_status(path)
    if status.running and status.pid is not None and status.url is not None:
        EmbeddedServer(None, status.pid, status.url, status.path).stop(timeout)
    return status


def _status(data_path: Path) -> ServerStatus:
    info = _read_server_file(data_path)
    if info is None or not _alive(int(info["pid"])) or not _owned(data_path):
        return ServerStatus(data_path, running=False, port=remembered_port(data_path))
    return ServerStatus(data_path, running=True, url=info["url"], pid=int(info["pid"]), port=info.get("port"))


def _owned(data_path: Path) -> bool:
    """Whether a server holds the directory's owner lock (trying it for an instant tells)."""
    try:
        handle = open(data_path / OWNER_FILE, "rb")  # noqa: SIM115 - closed below
    except FileNotFoundError:
        return False
    with handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        fcntl.flock(handle, fcntl.LOCK_UN)
        return False


__all__ = ["ServerStatus", "embedded_status", "stop_embedded_qdrant"]
