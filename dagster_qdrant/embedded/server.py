"""The HTTP side of the embedded Qdrant: a threaded HTTP/1.1 keep-alive server on 127.0.0.1.

Each connection has its own thread, which reads the request's body and writes the answer; the work in
between (JSON parsing, the engine call) runs one request at a time, as it is bound by the GIL. Responses
use Qdrant's envelope `{"result", "status": "ok", "time"}` and error shape `{"status": {"error"}, "time"}`;
a missing or wrong API key gets a plain-text 401 as from Qdrant.
"""

from __future__ import annotations

import fcntl
import gc
import hmac
import logging
import os
import signal
import socket
import sys
import threading
import time
import traceback
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

import orjson

from dagster_qdrant.embedded import body as request_body
from dagster_qdrant.embedded.errors import ApiError
from dagster_qdrant.embedded.request import Request
from dagster_qdrant.embedded.routes import BareJson, PlainText, match_route
from dagster_qdrant.embedded.store import Store, write_json_atomically

LOG = logging.getLogger("dagster_qdrant.embedded")
HOST = "127.0.0.1"
SERVER_FILE = ".server.json"
OWNER_FILE = ".server.owner"
FLUSH_INTERVAL_SECONDS = 10.0
LOGGED_TRACEBACK_CHARS = 8000
"""A failing request logs at most this much of its traceback (its start and its end)."""
UNAUTHENTICATED_PATHS = frozenset({"/healthz", "/livez", "/readyz"})
_STATUS_TEXT = {200: "OK", 400: "Bad Request", 401: "Unauthorized", 404: "Not Found", 405: "Method Not Allowed",
                409: "Conflict", 422: "Unprocessable Entity", 500: "Internal Server Error"}


class QdrantHttpServer(ThreadingHTTPServer):
    """Threaded server holding the store and the optional API key."""

    daemon_threads = True
    request_queue_size = 128
    allow_reuse_address = True

    def __init__(self, store: Store, port: int, api_key: str | None) -> None:
        self.store = store
        self.api_key = api_key.encode() if api_key else None
        # Parsing and engine calls hold the GIL nearly all the time: threads doing them at once only hand
        # the GIL back and forth (8 concurrent upsert streams ran ~40% slower than 1). So requests take
        # turns for that part; reading bodies and writing answers, which wait on sockets, still overlap.
        self.work_lock = threading.Lock()
        super().__init__((HOST, port), _RequestHandler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that hangs up mid-request is normal (timeouts, killed tasks); anything else is logged."""
        error = sys.exc_info()[1]
        if isinstance(error, (ConnectionError, TimeoutError)):
            return
        LOG.error("connection from %s failed:\n%s", client_address, traceback.format_exc())


class _RequestHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: QdrantHttpServer

    def setup(self) -> None:
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - signature of the base class
        """Per-request access logs would cost more than most requests; errors are logged where they happen."""

    def do_GET(self) -> None:
        self._handle("GET")

    def do_POST(self) -> None:
        self._handle("POST")

    def do_PUT(self) -> None:
        self._handle("PUT")

    def do_DELETE(self) -> None:
        self._handle("DELETE")

    def do_PATCH(self) -> None:
        self._handle("PATCH")

    def _handle(self, method: str) -> None:
        started = time.perf_counter()
        try:
            raw = self._read_body()
            url = urlsplit(self.path)
            refusal = self._refusal(url.path)
            if refusal is not None:
                self._send(401, refusal.encode(), "text/plain")
                return
            handler, path_parameters = match_route(method, url.path)
            with self.server.work_lock:
                request = Request(
                    store=self.server.store,
                    path_parameters={key: unquote(value) for key, value in path_parameters.items()},
                    query=dict(parse_qsl(url.query)),
                    body=request_body.parse_json(raw),
                )
                result = handler(request)
            if isinstance(result, PlainText):
                self._send(200, result.text.encode(), "text/plain")
                return
            if isinstance(result, BareJson):
                self._send(200, orjson.dumps(result.value), "application/json")
                return
            envelope = {"result": result, "status": "ok", "time": time.perf_counter() - started}
            body = orjson.dumps(envelope, option=orjson.OPT_SERIALIZE_NUMPY)  # float32 vectors (responses.py)
            self._send(200, body, "application/json")
        except request_body.FramingError as error:
            self.close_connection = True  # where this body ends is unknown: the next bytes are not a request
            self._send_error(error.status, error.message, started)
        except ApiError as error:
            self._send_error(error.status, error.message, started)
        except (ConnectionError, TimeoutError):
            self.close_connection = True  # the client went away; nobody to answer
        except RecursionError:  # a structure deeper than the body checks let through: still the client's
            error = request_body.nesting_error()
            self._send_error(error.status, error.message, started)
        except Exception as error:  # a bug must answer 500, not drop the connection
            LOG.error("request %s %s failed:\n%s", method, self.path, _bounded(traceback.format_exc()))
            self._send_error(500, f"Service internal error: {error}", started)

    def _read_body(self) -> bytes | bytearray:
        """The body, framed, capped and decoded by ``body`` (Qdrant's limits and words)."""
        transfer_encoding = self.headers.get("Transfer-Encoding", "").strip().lower()
        if transfer_encoding == "chunked":
            raw: bytes | bytearray = request_body.read_chunked(self.rfile.readline, self.rfile.read)
        elif transfer_encoding:
            raise request_body.FramingError(f"Bad request: unsupported Transfer-Encoding {transfer_encoding!r}")
        else:
            length = request_body.declared_length(self.headers.get_all("Content-Length") or [])
            if length > request_body.MAX_REQUEST_BYTES:
                self._discard(length)
                raise request_body.too_large(length)
            raw = self._read_exactly(length) if length else b""
        return request_body.decoded(raw, self.headers.get("Content-Encoding", ""))

    def _discard(self, length: int) -> None:
        """Read and drop an oversized body so the client gets the answer; past a bound, close instead."""
        if length > request_body.DISCARD_LIMIT:
            self.close_connection = True
            return
        remaining = length
        while remaining:
            piece = self.rfile.read(min(remaining, 1 << 20))
            if not piece:
                raise ConnectionError("the client closed the connection in the middle of a request body")
            remaining -= len(piece)

    def _read_exactly(self, length: int) -> bytearray:
        """The body in as few waits as possible: what is buffered, then one ``MSG_WAITALL`` receive.

        Reading a large body through the buffered file wakes this thread (and takes the GIL back from the
        request being worked on) for every piece that arrives. With 8 uploads of 128 384-d points in flight
        that cost ~52 µs of server CPU per point against ~42 for one upload at a time; read this way, ~43.
        """
        body = bytearray(length)
        view = memoryview(body)
        received = self.rfile.readinto(view[: len(self.rfile.peek(1)[:length])]) or 0
        while received < length:
            count = self.connection.recv_into(view[received:], length - received, socket.MSG_WAITALL)
            if count == 0:
                raise ConnectionError("the client closed the connection in the middle of a request body")
            received += count
        return body

    def _refusal(self, path: str) -> str | None:
        """Why the request is not authorized (Qdrant's words), or None when it is."""
        expected = self.server.api_key
        if expected is None or path.rstrip("/") in UNAUTHENTICATED_PATHS:
            return None
        given = self.headers.get("api-key")
        if given is None:
            authorization = self.headers.get("Authorization", "")
            if authorization[:7].lower() == "bearer ":
                given = authorization[7:].strip()
        if given is None:
            return "Must provide an API key or an Authorization bearer token"
        if not hmac.compare_digest(given.encode(), expected):
            return "Invalid API key or JWT"
        return None

    def _send_error(self, status: int, message: str, started: float) -> None:
        body = orjson.dumps({"status": {"error": message}, "time": time.perf_counter() - started})
        self._send(status, body, "application/json")

    def _send(self, status: int, body: bytes, content_type: str) -> None:
        head = (
            f"HTTP/1.1 {status} {_STATUS_TEXT.get(status, 'Error')}\r\n"
            f"Content-Type: {content_type}\r\n"
            f"Content-Length: {len(body)}\r\n"
            + ("Connection: close\r\n" if self.close_connection else "")
            + "\r\n"
        ).encode()
        self.wfile.write(head + body if len(body) < 65536 else head)
        if len(body) >= 65536:
            self.wfile.write(body)


def _bounded(text: str) -> str:
    """A traceback cut to its start and end: a deep recursion would otherwise log ~100 KB per request."""
    if len(text) <= LOGGED_TRACEBACK_CHARS:
        return text
    half = LOGGED_TRACEBACK_CHARS // 2
    return f"{text[:half]}\n... ({len(text) - 2 * half} characters left out) ...\n{text[-half:]}"


def _flush_periodically(store: Store, stop: threading.Event) -> None:
    """Persist segments now and then so the WAL stays short and restarts stay fast."""
    while not stop.wait(FLUSH_INTERVAL_SECONDS):
        store.flush_all()


def serve(path: str | os.PathLike[str], port: int = 0, api_key: str | None = None) -> None:
    """Run the server until SIGTERM/SIGINT; writes `<path>/.server.json` ({pid, port, url}) once listening."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # Large upserts allocate hundreds of thousands of lists and dicts; default GC thresholds would
    # rescan the heap many times per request. Objects alive at start are frozen out of collection.
    gc.freeze()
    gc.set_threshold(200_000, 50, 100)
    data_path = Path(path).resolve()
    data_path.mkdir(parents=True, exist_ok=True)
    owner = _own_directory(data_path)
    store = Store(data_path)
    server = QdrantHttpServer(store, port, api_key)
    bound_port = server.server_address[1]
    url = f"http://{HOST}:{bound_port}"
    server_file = data_path / SERVER_FILE
    write_json_atomically(server_file, {"pid": os.getpid(), "port": bound_port, "url": url})
    stop = threading.Event()
    threading.Thread(target=_flush_periodically, args=(store, stop), daemon=True, name="flush").start()

    def _stop(signum: int, frame: Any) -> None:
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    LOG.info("Qdrant REST API (embedded, data in %s) listening on %s", data_path, url)
    try:
        server.serve_forever(poll_interval=0.2)
    finally:
        stop.set()
        server.server_close()
        store.close()
        _remove_server_file(server_file)
        owner.close()
        LOG.info("stopped")
    sys.stdout.flush()


def _own_directory(data_path: Path) -> Any:
    """Hold an exclusive lock on the data directory for the server's lifetime: one owner per directory."""
    handle = open(data_path / OWNER_FILE, "a+b")  # noqa: SIM115 - held open until the server stops
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        running = data_path / SERVER_FILE
        detail = running.read_text() if running.exists() else "(no .server.json)"
        raise SystemExit(
            f"another embedded Qdrant already serves {data_path} ({detail}); use its URL, "
            "or ensure_embedded_qdrant() to share it"
        ) from None
    return handle


def _remove_server_file(server_file: Path) -> None:
    try:
        if orjson.loads(server_file.read_bytes()).get("pid") == os.getpid():
            server_file.unlink()
    except (OSError, ValueError):
        pass
