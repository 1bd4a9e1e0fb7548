"""The only HTTP client in dagster_qdrant: a small layer over ``requests`` for Qdrant's REST API.

Why each piece is here:
- one pooled ``requests.Session`` per process per (endpoint, headers, verify), kept in a module cache, so
  Spark tasks and Dagster steps in one Python worker reuse TCP/TLS connections instead of opening new ones;
  the process id is part of the key because a forked Spark worker must not share its parent's sockets;
- orjson for bodies, because JSON encoding of float vectors is the client's hot path (numpy arrays are
  serialized directly with ``OPT_SERIALIZE_NUMPY``); the read path's scroll pages are decoded by
  ``scroll_decode`` (simdjson), which takes dense vectors out as float buffers;
- each body read in one piece (``_whole_body``), not ``requests``' 10 KB steps;
- retries only where retrying can help (408, 429 with ``Retry-After``, 500, 502, 503, 504, dropped
  connections and read timeouts) with exponential backoff and jitter; a connect timeout (its own,
  shorter option) is not retried, since TCP already resent the SYN within it; any other 4xx or 5xx (501 Not Implemented,
  505 HTTP Version Not Supported, 507 Insufficient Storage, ...) would fail the same way again, so it is
  raised at once with the server's message;
- errors mapped to errors.py with the status, the collection and the point ids involved, never the API key:
  a server or proxy may quote the request's headers in an error body, so every error this client raises and
  every line it logs has the secrets it sends (api-key, Authorization and other credential headers) masked.

Why this module is long: it is one class of typed endpoints (each a few lines) around one retry loop; split,
the endpoints would lose sight of the error mapping they all share.
"""

from __future__ import annotations

import logging
import os
import random
import re
import threading
import time
from collections.abc import Callable
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import quote

import orjson
import requests
from requests.adapters import HTTPAdapter

from dagster_qdrant.errors import (
    QdrantAuthError,
    QdrantConnectionError,
    QdrantError,
    QdrantNotFoundError,
    QdrantRequestError,
    collection_not_found,
    redact,
    secret_values,
)
from dagster_qdrant.options import ConnectionOptions
from dagster_qdrant.scroll_decoding import decode_scroll_response

logger = logging.getLogger(__name__)

RETRY_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
"""Statuses a later attempt can get past: a timeout, rate limit, crash, overload or a proxy's bad gateway."""
_DROPPED = (
    requests.ConnectionError,
    requests.Timeout,
    requests.exceptions.ChunkedEncodingError,  # the body was cut off mid-read
    requests.exceptions.ContentDecodingError,
)
"""Transport failures worth retrying: the request may not have reached the server; upserts carry their
ids, so applying one twice changes nothing."""
_MAX_BACKOFF_SECONDS = 30.0
_MAX_RETRY_AFTER_SECONDS = 120.0
_POOL_SIZE = 32
_MESSAGE_LIMIT = 1000

_sessions: dict[tuple[Any, ...], requests.Session] = {}
_sessions_lock = threading.Lock()


def encode_json(body: Any) -> bytes:
    """Encode a request body; numpy arrays (vectors) are written natively by orjson."""
    return orjson.dumps(body, option=orjson.OPT_SERIALIZE_NUMPY)


def decode_json(content: bytes) -> Any:
    return orjson.loads(content)


def _effective_headers(options: ConnectionOptions) -> dict[str, str]:
    headers = options.request_headers()
    if "api-key" not in headers:
        env_key = os.environ.get("QDRANT_API_KEY")
        if env_key:
            headers["api-key"] = env_key
    return headers


def shared_session(options: ConnectionOptions) -> requests.Session:
    """The process-wide pooled session for this endpoint and these headers (created once, thread-safe)."""
    headers = _effective_headers(options)
    key = (os.getpid(), options.endpoint, tuple(sorted(headers.items())), options.verify)
    session = _sessions.get(key)
    if session is not None:
        return session
    with _sessions_lock:
        session = _sessions.get(key)
        if session is None:
            session = requests.Session()
            adapter = HTTPAdapter(pool_connections=4, pool_maxsize=_POOL_SIZE, max_retries=0)
            session.mount("http://", adapter)
            session.mount("https://", adapter)
            session.headers.update(headers)
            session.verify = options.verify
            _sessions[key] = session
    return session


def _whole_body(response: requests.Response) -> bytes:
    """The body in one read. ``response.content`` reads 10 KB at a time through urllib3, which took ~4x the
    CPU on a 640 KB scroll page (2–4 ms instead of ~0.8 ms here); the connection goes back to the pool at the
    end of the body either way, and a connection dropped mid-body raises the same requests errors."""
    return b"".join(response.iter_content(chunk_size=None))


def _server_message(response: requests.Response, secrets: tuple[str, ...] = ()) -> str:
    """Qdrant's own words: ``{"status": {"error": ...}}``, or the plain text some errors (401/403) use.

    Secrets are masked before the message is cut to length, so no part of one survives at the cut.
    """
    try:
        data = orjson.loads(response.content)
    except orjson.JSONDecodeError:
        text = redact(response.text.strip(), secrets)
        return text[:_MESSAGE_LIMIT] or (response.reason or f"HTTP {response.status_code}")
    message = str(data)
    if isinstance(data, dict):
        status = data.get("status")
        if isinstance(status, dict) and status.get("error"):
            message = str(status["error"])
        elif isinstance(status, str) and status != "ok":
            message = status
    return redact(message, secrets)[:_MESSAGE_LIMIT]


def _retry_after_seconds(response: requests.Response) -> float | None:
    value = response.headers.get("Retry-After")
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            seconds = parsedate_to_datetime(value).timestamp() - time.time()
        except (TypeError, ValueError):
            return None
    return min(max(seconds, 0.0), _MAX_RETRY_AFTER_SECONDS)


class QdrantHttp:
    """Calls to one Qdrant server; every method returns the response's ``result``."""

    def __init__(self, options: ConnectionOptions) -> None:
        self.options = options
        self.endpoint = options.endpoint
        self._session = shared_session(options)
        self._secrets = secret_values(_effective_headers(options))

    def __repr__(self) -> str:
        return f"QdrantHttp(endpoint={self.endpoint!r})"

    # ----- core -----------------------------------------------------------------------------------

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        params: dict[str, Any] | None = None,
        collection: str | None = None,
        point_ids: list[Any] | None = None,
        decode: Callable[[bytes], Any] = decode_json,
    ) -> Any:
        """Send one request (with retries) and return its ``result``."""
        return self.send(method, path, body, params, collection, point_ids, decode).get("result")

    def send(
        self,
        method: str,
        path: str,
        body: Any = None,
        params: dict[str, Any] | None = None,
        collection: str | None = None,
        point_ids: list[Any] | None = None,
        decode: Callable[[bytes], Any] = decode_json,
    ) -> dict[str, Any]:
        """Send one request (with retries) and return the whole response, decoded by ``decode``.

        Every error raised has the secrets this client sends masked (see ``errors.redact``).
        """
        try:
            return self._send(method, path, body, params, collection, point_ids, decode)
        except QdrantError as error:
            error.redact(self._secrets)
            raise

    def _send(
        self,
        method: str,
        path: str,
        body: Any,
        params: dict[str, Any] | None,
        collection: str | None,
        point_ids: list[Any] | None,
        decode: Callable[[bytes], Any],
    ) -> dict[str, Any]:
        data = body if body is None or isinstance(body, bytes) else encode_json(body)
        url = self.endpoint + path
        attempts = self.options.max_retries + 1
        for attempt in range(attempts):
            last_attempt = attempt == attempts - 1
            try:
                # verify per request: requests lets REQUESTS_CA_BUNDLE override a session-level value.
                response = self._session.request(
                    method,
                    url,
                    data=data,
                    params=params,
                    timeout=(self.options.connect_timeout, self.options.timeout),
                    verify=self.options.verify,
                    stream=True,
                )
                # the body is read here, inside the retries: a connection dropped mid-body is retried, and
                # the connection goes back to the pool (an error's body stays on the response for its message)
                content = _whole_body(response) if response.status_code < 400 else response.content
            except requests.exceptions.SSLError as error:
                raise QdrantConnectionError(
                    f"TLS verification failed for Qdrant at {self.endpoint} ({error}); pass verify='/path/to/ca.pem' "
                    "for a private CA, or check the endpoint's certificate",
                    collection=collection,
                ) from None
            except _DROPPED as error:
                # A connect that timed out was already retried by TCP (the SYN is resent within the wait):
                # another attempt would only multiply the wait for a host that does not answer.
                if last_attempt or isinstance(error, requests.ConnectTimeout):
                    raise self._unreachable(method, path, error, collection, attempt + 1) from None
                self._pause(attempt, f"{method} {path}: {type(error).__name__}")
                continue
            status = response.status_code
            if status < 400:
                return self._decode(content, response, method, path, collection, decode)
            if status in RETRY_STATUSES and not last_attempt:
                self._pause(attempt, f"{method} {path}: HTTP {status}", _retry_after_seconds(response))
                continue
            raise self._error(response, method, path, collection, point_ids, attempt + 1)
        raise AssertionError("unreachable")  # pragma: no cover

    def _pause(self, attempt: int, reason: str, retry_after: float | None = None) -> None:
        if retry_after is None:
            delay = self.options.backoff_factor * (2**attempt)
            delay = min(delay * random.uniform(0.5, 1.5), _MAX_BACKOFF_SECONDS)
        else:
            delay = retry_after
        logger.warning(
            "Qdrant request failed (%s); retry %d in %.2fs", redact(reason, self._secrets), attempt + 1, delay
        )
        time.sleep(delay)

    def _decode(
        self,
        content: bytes,
        response: requests.Response,
        method: str,
        path: str,
        collection: str | None,
        decode: Callable[[bytes], Any],
    ) -> Any:
        try:
            return decode(content) if content else {}
        except orjson.JSONDecodeError:
            raise QdrantRequestError(
                f"Qdrant at {self.endpoint} answered {method} {path} with a body that is not JSON: "
                f"{redact(content.decode('utf-8', 'replace'), self._secrets)[:200]!r}; is the endpoint a Qdrant REST port (default 6333)?",
                status=response.status_code,
                collection=collection,
            ) from None

    def _unreachable(
        self, method: str, path: str, error: Exception, collection: str | None, attempts: int
    ) -> QdrantError:
        if isinstance(error, requests.ConnectTimeout):
            kind = f"accepted no connection within {self.options.connect_timeout}s"
            hint = (
                "check the endpoint's host and port and any firewall between, or raise the "
                f"'connect_timeout' option (now {self.options.connect_timeout}s) for a slow network"
            )
        elif isinstance(error, requests.Timeout):
            kind = "timed out"
            hint = f"raise the 'timeout' option (now {self.options.timeout}s) or check the server's load"
        else:
            kind = "could not connect"
            hint = "check the endpoint, or start the server (`dagster-qdrant serve` for the embedded one)"
        return QdrantConnectionError(
            f"Qdrant at {self.endpoint} {kind} for {method} {path} after "
            f"{attempts} attempt(s) ({type(error).__name__}); {hint}",
            collection=collection,
        )

    def _error(
        self,
        response: requests.Response,
        method: str,
        path: str,
        collection: str | None,
        point_ids: list[Any] | None,
        attempts: int,
    ) -> QdrantError:
        status = response.status_code
        message = _server_message(response, self._secrets)
        where = f"{method} {path}"
        if status in (401, 403):
            return QdrantAuthError(
                f"Qdrant at {self.endpoint} refused {where}: {message}; set the 'api_key' option "
                "(or the QDRANT_API_KEY environment variable) to a key the server accepts",
                status=status,
                collection=collection,
            )
        if status == 404 and collection is not None:
            return collection_not_found(
                collection,
                self.endpoint,
                "create it first, or write with create_collection=True",
                detail=f"{where}: {message}",
                point_ids=point_ids,
            )
        if status == 404:
            return QdrantNotFoundError(f"Qdrant at {self.endpoint}: {where} not found: {message}", status=status)
        if status < 500 and status not in RETRY_STATUSES:
            return QdrantRequestError(
                f"Qdrant rejected {where}: {message}", status=status, collection=collection, point_ids=point_ids
            )
        if status not in RETRY_STATUSES:
            return QdrantError(
                f"Qdrant at {self.endpoint} answered {where} with HTTP {status} (not retried: it would fail the "
                f"same way again): {message}",
                status=status,
                collection=collection,
                point_ids=point_ids,
            )
        return QdrantError(
            f"Qdrant at {self.endpoint} kept failing {where} after {attempts} attempt(s): {message}",
            status=status,
            collection=collection,
            point_ids=point_ids,
        )

    # ----- server and collections ----------------------------------------------------------------

    def check_answers(self) -> None:
        """Fail in seconds if the server does not answer ``GET /`` within ``connect_timeout``.

        A server that accepts connections and never answers (a stopped process, a port-forward to a dead
        pod, a proxy with nothing behind it) would otherwise cost each request its read timeout times its
        attempts: two minutes with the defaults. ``GET /`` is Qdrant's version banner (no collection, no
        lock), so a live server answers it at once. Any HTTP answer counts: the requests that follow report
        what they meet. A refused or dropped connection is retried like any request (a server restarting);
        a timeout is not, since waiting again would only double the wait.
        """
        wait = self.options.connect_timeout
        attempts = self.options.max_retries + 1
        for attempt in range(attempts):
            try:
                self._session.get(
                    self.endpoint + "/", timeout=(wait, wait), verify=self.options.verify
                ).close()
                return
            except requests.exceptions.SSLError:
                return  # it answered the handshake; the first request reports the TLS problem and its fix
            except requests.ConnectTimeout as error:
                raise self._unreachable("GET", "/", error, None, attempt + 1) from None
            except requests.Timeout:
                raise QdrantConnectionError(
                    f"Qdrant at {self.endpoint} accepted a connection but did not answer GET / within "
                    f"{wait}s (the 'connect_timeout' option): check that the endpoint is Qdrant's REST port "
                    "(6333 by default) and that the server is running, not stopped or overloaded; fix the "
                    "endpoint (the resource's endpoint or QDRANT_URL), or raise 'connect_timeout' if the "
                    "server is only slow to answer"
                ) from None
            except _DROPPED as error:
                if attempt == attempts - 1:
                    raise self._unreachable("GET", "/", error, None, attempts) from None
                self._pause(attempt, f"GET /: {type(error).__name__}")

    def server_version(self) -> tuple[int, int, int]:
        """The server's version from ``GET /`` (pre-release suffixes dropped); (0, 0, 0) when unknown."""
        version = str(self.send("GET", "/").get("version", ""))
        match = re.match(r"\s*v?(\d+)(?:\.(\d+))?(?:\.(\d+))?", version)
        if match is None:
            return (0, 0, 0)
        major, minor, patch = (int(part or 0) for part in match.groups())
        return (major, minor, patch)

    def collection_info(self, name: str) -> dict[str, Any] | None:
        """``GET /collections/{name}``'s result, or None when the collection does not exist."""
        try:
            return self.request("GET", _collection_path(name), collection=name)
        except QdrantNotFoundError:
            return None

    def collection_exists(self, name: str) -> bool:
        try:
            result = self.request("GET", _collection_path(name) + "/exists", collection=name)
        except QdrantNotFoundError:
            return self.collection_info(name) is not None
        return bool(result.get("exists")) if isinstance(result, dict) else bool(result)

    def create_collection(self, name: str, body: dict[str, Any], exist_ok: bool = False) -> bool:
        """Create a collection; with ``exist_ok`` a concurrent creator winning the race is not an error.

        Returns True when this call created it, False when it already existed (only with ``exist_ok``).
        """
        try:
            self.request("PUT", _collection_path(name), body, collection=name)
        except QdrantRequestError as error:
            already = error.status == 409 or "already exists" in error.message
            if exist_ok and already:
                return False
            raise
        return True

    def update_collection(self, name: str, body: dict[str, Any]) -> Any:
        """``PATCH /collections/{name}``: parameters, or ``{"metadata": ...}`` (merged into the collection's)."""
        return self.request("PATCH", _collection_path(name), body, collection=name)

    def list_collections(self) -> list[str]:
        """The names of every collection (aliases not included)."""
        result = self.request("GET", "/collections") or {}
        return [entry["name"] for entry in result.get("collections", [])]

    def delete_collection(self, name: str) -> bool:
        return bool(self.request("DELETE", _collection_path(name), collection=name))

    def create_payload_index(self, collection: str, field: str, schema: Any, wait: bool = True) -> Any:
        body = {"field_name": field, "field_schema": schema}
        return self.request(
            "PUT", _collection_path(collection) + "/index", body, {"wait": _flag(wait)}, collection=collection
        )

    # ----- aliases --------------------------------------------------------------------------------

    def update_aliases(self, actions: list[dict[str, Any]]) -> Any:
        """Apply alias actions atomically, e.g. ``[{"delete_alias": ...}, {"create_alias": ...}]``."""
        return self.request("POST", "/collections/aliases", {"actions": actions})

    def collection_aliases(self, name: str) -> list[str]:
        result = self.request("GET", _collection_path(name) + "/aliases", collection=name)
        return [alias["alias_name"] for alias in (result or {}).get("aliases", [])]

    def list_aliases(self) -> list[dict[str, Any]]:
        """Every alias: ``[{"alias_name": ..., "collection_name": ...}]``."""
        return list((self.request("GET", "/aliases") or {}).get("aliases", []))

    # ----- points ---------------------------------------------------------------------------------

    def upsert(
        self,
        collection: str,
        body: dict[str, Any] | bytes,
        wait: bool = True,
        point_ids: list[Any] | None = None,
    ) -> Any:
        """``PUT .../points``: upsert ``{"batch": ...}`` or ``{"points": [...]}`` (or its pre-encoded bytes)."""
        return self.request(
            "PUT",
            _collection_path(collection) + "/points",
            body,
            {"wait": _flag(wait)},
            collection=collection,
            point_ids=point_ids,
        )

    def batch_update(
        self,
        collection: str,
        body: dict[str, Any] | bytes,
        wait: bool = True,
        point_ids: list[Any] | None = None,
    ) -> Any:
        """``POST .../points/batch``: apply ``{"operations": [{"upsert": ...}, {"delete": ...}, ...]}`` in order.

        The write path for servers or proxies that refuse PUT (``write_method="post"``). Not ``POST .../points``,
        which Qdrant answers as a retrieve by ``ids``.
        """
        return self.request(
            "POST",
            _collection_path(collection) + "/points/batch",
            body,
            {"wait": _flag(wait)},
            collection=collection,
            point_ids=point_ids,
        )

    def scroll(
        self, collection: str, body: dict[str, Any], vectors_as_arrays: bool = False
    ) -> tuple[list[dict[str, Any]], Any]:
        """One page: the points and the id to start the next page from (None after the last page).

        With ``vectors_as_arrays`` dense vectors come back as float64 numpy arrays, decoded without a Python
        float per number (``scroll_decode``): the read hot path, which packs them into Arrow anyway.
        """
        decode = decode_scroll_response if vectors_as_arrays else decode_json
        path = _collection_path(collection) + "/points/scroll"
        result = self.request("POST", path, body, collection=collection, decode=decode)
        return list(result.get("points", [])), result.get("next_page_offset")

    def count(self, collection: str, filter: dict[str, Any] | None = None, exact: bool = True) -> int:
        body: dict[str, Any] = {"exact": exact}
        if filter is not None:
            body["filter"] = filter
        result = self.request("POST", _collection_path(collection) + "/points/count", body, collection=collection)
        return int(result["count"])

    def delete_points(self, collection: str, selector: dict[str, Any], wait: bool = True) -> Any:
        """Delete by ``{"points": [ids]}`` or ``{"filter": {...}}``."""
        return self.request(
            "POST",
            _collection_path(collection) + "/points/delete",
            selector,
            {"wait": _flag(wait)},
            collection=collection,
        )

    def query(self, collection: str, body: dict[str, Any]) -> list[dict[str, Any]]:
        result = self.request("POST", _collection_path(collection) + "/points/query", body, collection=collection)
        return list(result.get("points", [])) if isinstance(result, dict) else list(result or [])


def _collection_path(name: str) -> str:
    return "/collections/" + quote(name, safe="")


def _flag(value: bool) -> str:
    return "true" if value else "false"


__all__ = ["QdrantHttp", "decode_json", "encode_json", "shared_session"]
