"""The Qdrant every case talks to, and the few admin calls the harness makes itself.

By default the benchmark starts one embedded Qdrant in a temporary directory and stops it at the end; with
``--qdrant-url`` it uses a running server instead (memory of that server is then not sampled). The admin calls
go straight to the REST API with ``requests`` so that the harness does not depend on the code it measures.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import requests


@dataclass
class Target:
    """A Qdrant base URL, an optional API key, and the server's pid when this process owns it."""

    url: str
    api_key: str | None = None
    pid: int | None = None

    def __post_init__(self) -> None:
        self.session = requests.Session()
        if self.api_key:
            self.session.headers["api-key"] = self.api_key

    def _call(self, method: str, path: str, body: dict | None = None, ok: tuple[int, ...] = (200,)) -> dict:
        response = self.session.request(method, f"{self.url}{path}", json=body, timeout=300)
        if response.status_code not in ok:
            raise RuntimeError(f"{method} {path} -> {response.status_code}: {response.text[:500]}")
        return response.json() if response.content else {}

    def version(self) -> str:
        return str(self._call("GET", "/").get("version", "unknown"))

    def create_collection(self, name: str, dim: int, distance: str = "Cosine") -> None:
        """A fresh collection (dropped first if it exists) with one unnamed dense vector."""
        self.delete_collection(name)
        self._call("PUT", f"/collections/{name}", {"vectors": {"size": dim, "distance": distance}})

    def delete_collection(self, name: str) -> None:
        self._call("DELETE", f"/collections/{name}", ok=(200, 404))

    def count(self, name: str) -> int:
        result = self._call("POST", f"/collections/{name}/points/count", {"exact": True})
        return int(result["result"]["count"])

    def wait_for_count(self, name: str, expected: int, timeout: float = 600.0) -> bool:
        """Poll until the collection holds ``expected`` points (clients that upload with wait=false)."""
        deadline = time.monotonic() + timeout
        while True:
            if self.count(name) >= expected:
                return True
            if time.monotonic() > deadline:
                return False
            time.sleep(0.02)


@contextmanager
def qdrant_target(url: str | None, api_key: str | None, data_dir: Path) -> Iterator[Target]:
    """The server named by ``url``, or an embedded one started in ``data_dir`` and stopped afterwards."""
    if url:
        yield Target(url=url.rstrip("/"), api_key=api_key)
        return
    from dagster_qdrant.embedded import start_embedded_qdrant

    server = start_embedded_qdrant(data_dir)
    try:
        yield Target(url=server.url, pid=server.pid)
    finally:
        server.stop()
