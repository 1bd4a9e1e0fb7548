"""Which port an embedded Qdrant listens on: the same one, run after run, for the same data directory.

`dagster/uri` metadata and users' bookmarks hold the server's URL, so a server that came back on another
port would break them. Each data directory remembers the port its server last listened on
(`<data>/.server.port`); the next server takes it again when it is free, else Qdrant's usual 6333 when
that is free, else any free port (then remembered in turn). Only the standard library is imported.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path

PREFERRED_PORT = 6333
"""Qdrant's own REST port: what a fresh data directory gets when nothing else listens there."""
PORT_FILE = ".server.port"
ANY_FREE_PORT = 0
HOST = "127.0.0.1"


def port_candidates(data_path: Path, preferred: int = PREFERRED_PORT) -> list[int]:
    """The ports to try, best first: the remembered one, then `preferred`, then any free port (0)."""
    candidates = [port for port in (remembered_port(data_path), preferred) if port]
    return [*dict.fromkeys(candidates), ANY_FREE_PORT]


def is_free(port: int) -> bool:
    """Whether a server could listen on 127.0.0.1:`port` now (bound the way the server binds it)."""
    if port == ANY_FREE_PORT:
        return True
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((HOST, port))
        except OSError:
            return False
    return True


def any_free_port() -> int:
    """A port free on 127.0.0.1 now, chosen by the system."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((HOST, 0))
        return int(probe.getsockname()[1])


def remembered_port(data_path: Path) -> int | None:
    """The port the last server of `data_path` listened on, if it was recorded and makes sense."""
    try:
        port = int((data_path / PORT_FILE).read_text().strip())
    except (OSError, ValueError):
        return None
    return port if 0 < port < 65536 else None


def remember_port(data_path: Path, port: int) -> None:
    """Record `port` for `data_path` (written whole or not at all)."""
    target = data_path / PORT_FILE
    temporary = target.with_name(f"{PORT_FILE}.{os.getpid()}.tmp")
    temporary.write_text(f"{port}\n")
    os.replace(temporary, target)


def port_of(url: str) -> int:
    """The port of a `http://127.0.0.1:<port>` URL."""
    return int(url.rsplit(":", 1)[1].split("/", 1)[0])


__all__ = ["PREFERRED_PORT", "any_free_port", "is_free", "port_candidates", "port_of", "remember_port", "remembered_port"]
