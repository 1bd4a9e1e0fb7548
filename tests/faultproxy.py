"""A small fault-injecting HTTP proxy for tests: client -> proxy (127.0.0.1) -> Qdrant.

The proxy forwards every request over a kept-alive upstream connection and, at rates drawn from a
seeded random generator, replaces the honest answer with a fault a real network or a busy server
produces:

    "503"          answer 503 with a Qdrant-style JSON error, nothing forwarded
    "429"          answer 429 with ``Retry-After: <retry_after>``, nothing forwarded
    "reset"        reset the connection (RST) before forwarding: the server never saw the request
    "drop_before"  close the connection before forwarding: the server never saw the request
    "drop_after"   forward, let the server apply the request, then close without answering
    "slow"         forward, then wait ``slow_seconds`` before answering (a client timeout if longer)
    "truncate"     forward, then send the headers and only half the body, then close

``drop_after``, ``slow`` (past the client's timeout) and ``truncate`` are the faults where the server
HAS applied a write the client saw fail: a retry must not duplicate anything.

Faults are chosen per request, only for requests whose method and path match the filters, so a test
can fault the writes (``PUT .../points``) while the verifying reads go straight to the server. A
``script`` of faults is consumed first (one per matching request, ``None`` = forward honestly), then
the random ``rates``. ``rule`` can answer a request itself (a permanent 400, say) from its body.
Every request, and every fault, is counted in ``stats``; ``requests`` keeps a log of what passed.
"""

from __future__ import annotations

import http.client
import random
import re
import socket
import ssl
import struct
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

FAULT_KINDS = ("503", "429", "reset", "drop_before", "drop_after", "slow", "truncate")

# Headers that belong to one connection, not to the message (RFC 9110 section 7.6.1).
_HOP_BY_HOP = {
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "content-length",
}


@dataclass(frozen=True)
class Canned:
    """An answer the proxy gives itself instead of forwarding (from a ``rule``)."""

    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class SeenRequest:
    """One request that reached the proxy, and what the proxy did with it."""

    method: str
    path: str
    body: bytes
    fault: str | None


Rule = Callable[[str, str, bytes], "Canned | str | None"]


class FaultProxy:
    """A threaded loopback proxy in front of ``upstream`` that injects faults; a context manager."""

    def __init__(
        self,
        upstream: str,
        *,
        rates: dict[str, float] | None = None,
        seed: int = 0,
        methods: Iterable[str] = ("GET", "POST", "PUT", "PATCH", "DELETE"),
        path_pattern: str = r".*",
        script: Iterable[str | None] = (),
        rule: Rule | None = None,
        retry_after: str = "1",
        slow_seconds: float = 0.5,
        tls_context: ssl.SSLContext | None = None,
        keep_bodies: bool = False,
    ) -> None:
        rates = dict(rates or {})
        unknown = set(rates) - set(FAULT_KINDS)
        if unknown:
            raise ValueError(f"unknown fault kinds {sorted(unknown)}; choose from {FAULT_KINDS}")
        if sum(rates.values()) > 1.0:
            raise ValueError("fault rates add up to more than 1")
        parts = urlsplit(upstream)
        self.upstream_host = parts.hostname or "127.0.0.1"
        self.upstream_port = parts.port or 80
        self.rates = rates
        self.methods = {method.upper() for method in methods}
        self.path_pattern = re.compile(path_pattern)
        self.rule = rule
        self.retry_after = retry_after
        self.slow_seconds = slow_seconds
        self.keep_bodies = keep_bodies
        self.stats: Counter[str] = Counter()
        self.requests: list[SeenRequest] = []
        self._script = list(script)
        self._random = random.Random(seed)
        self._lock = threading.Lock()
        self._enabled = True
        self._server = _ProxyServer(("127.0.0.1", 0), _Handler, self)
        if tls_context is not None:
            self._server.socket = tls_context.wrap_socket(self._server.socket, server_side=True)
        self._thread = threading.Thread(target=self._server.serve_forever, name="fault-proxy", daemon=True)
        self._thread.start()

    @property
    def port(self) -> int:
        return self._server.server_address[1]

    @property
    def url(self) -> str:
        scheme = "https" if isinstance(self._server.socket, ssl.SSLSocket) else "http"
        return f"{scheme}://127.0.0.1:{self.port}"

    def set_enabled(self, enabled: bool) -> None:
        """Turn fault injection on or off (forwarding continues either way)."""
        with self._lock:
            self._enabled = enabled

    def add_script(self, faults: Iterable[str | None]) -> None:
        """Queue faults for the next matching requests, before any random ones."""
        with self._lock:
            self._script.extend(faults)

    def count(self, *, method: str | None = None, path_contains: str = "", fault: str | None = "any") -> int:
        """How many logged requests match: by method, path fragment and fault (``"any"`` = all)."""
        with self._lock:
            return sum(
                1
                for seen in self.requests
                if (method is None or seen.method == method)
                and path_contains in seen.path
                and (fault == "any" or seen.fault == fault)
            )

    def count_matching(self, path_pattern: str, methods: Iterable[str] = ("PUT", "POST")) -> int:
        """How many logged requests had one of ``methods`` and a path matching ``path_pattern``."""
        wanted, pattern = {method.upper() for method in methods}, re.compile(path_pattern)
        with self._lock:
            return sum(1 for seen in self.requests if seen.method in wanted and pattern.search(seen.path))

    def faults_injected(self) -> dict[str, int]:
        with self._lock:
            return {kind: self.stats[kind] for kind in FAULT_KINDS if self.stats[kind]}

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> FaultProxy:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _choose(self, method: str, path: str, body: bytes) -> Canned | str | None:
        """The fault for one request (None: forward honestly); records the request."""
        with self._lock:
            self.stats["requests"] += 1
            choice: Canned | str | None = None
            matches = self._enabled and method in self.methods and self.path_pattern.search(path)
            if matches:
                if self.rule is not None:
                    choice = self.rule(method, path, body)
                if choice is None and self._script:
                    choice = self._script.pop(0)
                elif choice is None:
                    draw = self._random.random()
                    edge = 0.0
                    for kind in FAULT_KINDS:
                        edge += self.rates.get(kind, 0.0)
                        if draw < edge:
                            choice = kind
                            break
            label = f"canned_{choice.status}" if isinstance(choice, Canned) else choice
            if label is not None:
                self.stats[label] += 1
            self.requests.append(SeenRequest(method, path, body if self.keep_bodies else b"", label))
            return choice


class _ProxyServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], handler: type, proxy: FaultProxy) -> None:
        self.proxy = proxy
        self.reset_requests: set[int] = set()
        super().__init__(address, handler)

    def shutdown_request(self, request: Any) -> None:
        # A reset connection must not send FIN first (the base class shuts down writing before closing).
        if id(request) in self.reset_requests:
            self.reset_requests.discard(id(request))
            self.close_request(request)
            return
        super().shutdown_request(request)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that hangs up mid-answer is part of the game, not a test failure.
        pass


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _ProxyServer
    _upstream: http.client.HTTPConnection | None = None

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - signature from the base
        pass

    def do_GET(self) -> None:
        self._proxy_one()

    do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_GET

    def finish(self) -> None:
        if self._upstream is not None:
            self._upstream.close()
        try:
            super().finish()
        except OSError:
            pass

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip(), 16)
                if size == 0:
                    self.rfile.readline()
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _proxy_one(self) -> None:
        proxy = self.server.proxy
        body = self._read_body()
        choice = proxy._choose(self.command, self.path, body)
        if isinstance(choice, Canned):
            self._answer(choice.status, choice.headers, choice.body)
            return
        if choice == "503":
            error = b'{"status":{"error":"Service Unavailable: injected by the test proxy"},"time":0.0}'
            self._answer(503, {"Content-Type": "application/json"}, error)
            return
        if choice == "429":
            error = b'{"status":{"error":"Too Many Requests: injected by the test proxy"},"time":0.0}'
            headers = {"Content-Type": "application/json", "Retry-After": proxy.retry_after}
            self._answer(429, headers, error)
            return
        if choice == "reset":
            self._hang_up(reset=True)
            return
        if choice == "drop_before":
            self._hang_up(reset=False)
            return
        forwarded = self._forward(body)
        if forwarded is None:
            with proxy._lock:
                proxy.stats["upstream_down"] += 1  # tests wait on this to know a client met the outage
            self._hang_up(reset=False)  # the server is gone: behave as it would
            return
        status, headers, answer = forwarded
        if choice == "drop_after":
            self._hang_up(reset=False)
            return
        if choice == "slow":
            time.sleep(proxy.slow_seconds)
        if choice == "truncate":
            self._answer(status, headers, answer, send_bytes=len(answer) // 2)
            self._hang_up(reset=False)
            return
        self._answer(status, headers, answer)

    def _forward(self, body: bytes) -> tuple[int, dict[str, str], bytes] | None:
        proxy = self.server.proxy
        headers = {name: value for name, value in self.headers.items() if name.lower() not in _HOP_BY_HOP}
        headers["Content-Length"] = str(len(body))
        for attempt in range(2):  # a kept-alive upstream connection may have gone stale
            if self._upstream is None:
                self._upstream = http.client.HTTPConnection(proxy.upstream_host, proxy.upstream_port, timeout=120)
            try:
                self._upstream.request(self.command, self.path, body=body, headers=headers)
                response = self._upstream.getresponse()
                answer = response.read()
            except (OSError, http.client.HTTPException):
                self._upstream.close()
                self._upstream = None
                if attempt:
                    return None
                continue
            kept = {name: value for name, value in response.getheaders() if name.lower() not in _HOP_BY_HOP}
            return response.status, kept, answer
        return None

    def _answer(self, status: int, headers: dict[str, str], body: bytes, send_bytes: int | None = None) -> None:
        try:
            self.send_response_only(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body if send_bytes is None else body[:send_bytes])
            self.wfile.flush()
        except OSError:
            self.close_connection = True

    def _hang_up(self, *, reset: bool) -> None:
        """End the client's connection without an answer; ``reset`` sends RST instead of FIN."""
        self.close_connection = True
        try:
            if reset:
                self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                self.server.reset_requests.add(id(self.connection))
            else:
                self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass




# --- What the server really holds: read straight from Qdrant's REST API, bypassing the proxy and the
# --- library under test, so a check cannot share a bug with the code it checks.


def server_points(url: str, collection: str, *, api_key: str | None = None) -> dict[Any, dict[str, Any]]:
    """Every point of ``collection`` as ``{id: {"payload": ..., "vector": ...}}``, by plain scroll."""
    import requests

    headers = {"api-key": api_key} if api_key else {}
    points: dict[Any, dict[str, Any]] = {}
    offset: Any = None
    while True:
        body: dict[str, Any] = {"limit": 1000, "with_payload": True, "with_vector": True}
        if offset is not None:
            body["offset"] = offset
        response = requests.post(f"{url}/collections/{collection}/points/scroll", json=body, headers=headers, timeout=60)
        response.raise_for_status()
        result = response.json()["result"]
        for point in result["points"]:
            if point["id"] in points:
                raise AssertionError(f"scroll returned point {point['id']!r} twice")
            points[point["id"]] = {"payload": point.get("payload") or {}, "vector": point.get("vector")}
        offset = result.get("next_page_offset")
        if offset is None:
            return points


def server_count(url: str, collection: str, *, api_key: str | None = None) -> int:
    """The exact point count, by plain REST."""
    import requests

    headers = {"api-key": api_key} if api_key else {}
    response = requests.post(
        f"{url}/collections/{collection}/points/count", json={"exact": True}, headers=headers, timeout=60
    )
    response.raise_for_status()
    return int(response.json()["result"]["count"])


def create_collection(url: str, collection: str, size: int, *, distance: str = "Dot", api_key: str | None = None) -> None:
    """Create a collection with one unnamed dense vector, by plain REST."""
    import requests

    headers = {"api-key": api_key} if api_key else {}
    response = requests.put(
        f"{url}/collections/{collection}",
        json={"vectors": {"size": size, "distance": distance}},
        headers=headers,
        timeout=60,
    )
    response.raise_for_status()


def free_port() -> int:
    """A loopback port nothing listens on right now (closed again before returning)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


__all__ = [
    "FAULT_KINDS",
    "Canned",
    "FaultProxy",
    "SeenRequest",
    "create_collection",
    "free_port",
    "server_count",
    "server_points",
]
