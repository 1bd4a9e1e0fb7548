"""QdrantHttp against a real Qdrant (the embedded server, or QDRANT_URL): calls, errors, retries, sessions.

Tests marked ``vcr`` replay recorded exchanges from tests/cassettes/test_http/ (record once; re-record
against any Qdrant with ``QDRANT_URL=... pytest --record-mode=rewrite tests/test_http.py``). Retry and
failure tests put a fault-injecting proxy in front of the server instead and are never recorded.
"""

from __future__ import annotations

import http.server as http_server
import threading
import time
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

from dagster_qdrant.errors import (
    QdrantAuthError,
    QdrantConnectionError,
    QdrantError,
    QdrantNotFoundError,
    QdrantRequestError,
)
from dagster_qdrant.http import QdrantHttp, shared_session
from dagster_qdrant.options import ConnectionOptions
from faultproxy import Canned, FaultProxy, free_port


def fresh(http: QdrantHttp, name: str, size: int = 4) -> str:
    """A collection with a fixed name (recorded requests must not change between runs), emptied first."""
    http.delete_collection(name)
    http.create_collection(name, {"vectors": {"size": size, "distance": "Dot"}})
    return name


@pytest.mark.vcr
def test_server_version_is_read_from_the_root(http: QdrantHttp) -> None:
    version = http.server_version()
    assert len(version) == 3 and version >= (1, 0, 0)


@pytest.mark.vcr
def test_collection_lifecycle(http: QdrantHttp) -> None:
    name = "b_http_lifecycle"
    http.delete_collection(name)
    assert http.collection_info(name) is None
    assert http.collection_exists(name) is False
    assert http.create_collection(name, {"vectors": {"size": 3, "distance": "Cosine"}}) is True
    assert http.collection_exists(name) is True
    info = http.collection_info(name)
    vectors = info["config"]["params"]["vectors"]
    assert (vectors["size"], vectors["distance"]) == (3, "Cosine")
    assert http.create_collection(name, {"vectors": {"size": 3, "distance": "Cosine"}}, exist_ok=True) is False
    with pytest.raises(QdrantRequestError) as raised:
        http.create_collection(name, {"vectors": {"size": 3, "distance": "Cosine"}})
    assert raised.value.status in (400, 409) and "already exists" in str(raised.value)
    assert http.delete_collection(name) is True
    assert http.collection_info(name) is None


@pytest.mark.vcr
def test_points_upsert_scroll_count_query_and_delete(http: QdrantHttp, sent: list[Any]) -> None:
    name = fresh(http, "b_http_points")
    vectors = np.eye(4, dtype=np.float32)
    body = {"batch": {"ids": [1, 2, 3, 4], "vectors": vectors, "payloads": [{"n": i} for i in range(4)]}}
    http.upsert(name, body)
    assert http.count(name) == 4
    assert http.count(name, filter={"must": [{"key": "n", "range": {"gte": 2}}]}) == 2

    first, next_offset = http.scroll(name, {"limit": 3, "with_payload": True})
    assert [point["id"] for point in first] == [1, 2, 3] and next_offset == 4
    rest, next_offset = http.scroll(name, {"limit": 3, "offset": 4})
    assert [point["id"] for point in rest] == [4] and next_offset is None

    nearest = http.query(name, {"query": [0.0, 0.0, 1.0, 0.0], "limit": 1})
    assert nearest[0]["id"] == 3

    http.delete_points(name, {"points": [1]})
    http.delete_points(name, {"filter": {"must": [{"key": "n", "match": {"value": 3}}]}})
    assert http.count(name) == 2
    http.upsert(name, b'{"points": [{"id": 9, "vector": [1, 1, 1, 1], "payload": {}}]}', wait=True)
    assert http.count(name) == 3
    points = [(r.method, r.path, r.body) for r in sent if r.path.startswith(f"/collections/{name}/points")]
    assert [(method, path) for method, path, _ in points] == [
        ("PUT", f"/collections/{name}/points?wait=true"),
        *[("POST", f"/collections/{name}/points/count")] * 2,
        *[("POST", f"/collections/{name}/points/scroll")] * 2,
        ("POST", f"/collections/{name}/points/query"),
        *[("POST", f"/collections/{name}/points/delete?wait=true")] * 2,
        ("POST", f"/collections/{name}/points/count"),
        ("PUT", f"/collections/{name}/points?wait=true"),
        ("POST", f"/collections/{name}/points/count"),
    ]
    assert points[0][2]["batch"]["vectors"] == vectors.tolist(), "numpy vectors are sent as JSON lists"
    assert points[4][2]["offset"] == 4 and points[6][2] == {"points": [1]}


@pytest.mark.vcr
def test_aliases_and_payload_index(http: QdrantHttp, sent: list[Any]) -> None:
    name = fresh(http, "b_http_alias_target")
    try:
        http.update_aliases([{"delete_alias": {"alias_name": "b_http_alias"}}])
    except QdrantNotFoundError:
        pass  # no alias left from an earlier run
    http.update_aliases([{"create_alias": {"collection_name": name, "alias_name": "b_http_alias"}}])
    assert http.collection_aliases(name) == ["b_http_alias"]
    assert {"alias_name": "b_http_alias", "collection_name": name} in http.list_aliases()
    http.upsert(name, {"points": [{"id": 1, "vector": [1, 0, 0, 0], "payload": {"k": "a"}}]})
    assert http.count("b_http_alias") == 1
    http.create_payload_index(name, "k", "keyword")
    assert "k" in (http.collection_info(name).get("payload_schema") or {})
    http.update_aliases([{"delete_alias": {"alias_name": "b_http_alias"}}])
    assert http.collection_aliases(name) == []
    updates = [r.body for r in sent if r.method == "POST" and r.path == "/collections/aliases"]
    assert updates[1:] == [
        {"actions": [{"create_alias": {"collection_name": name, "alias_name": "b_http_alias"}}]},
        {"actions": [{"delete_alias": {"alias_name": "b_http_alias"}}]},
    ]
    index = [r.body for r in sent if r.method == "PUT" and r.path.startswith(f"/collections/{name}/index")]
    assert index == [{"field_name": "k", "field_schema": "keyword"}]


@pytest.mark.vcr
def test_missing_collection_is_not_found_naming_it(http: QdrantHttp) -> None:
    http.delete_collection("b_http_missing")
    with pytest.raises(QdrantNotFoundError) as raised:
        http.scroll("b_http_missing", {"limit": 1})
    assert raised.value.status == 404 and raised.value.collection == "b_http_missing"
    assert "'b_http_missing'" in str(raised.value) and "create_collection=True" in str(raised.value)


@pytest.mark.vcr
def test_a_bad_request_is_raised_with_the_server_message_status_and_ids(http: QdrantHttp, sent: list[Any]) -> None:
    name = fresh(http, "b_http_bad_request")
    body = {"batch": {"ids": [5, 6], "vectors": [[1.0, 2.0], [3.0, 4.0]]}}
    with pytest.raises(QdrantRequestError) as raised:
        http.upsert(name, body, point_ids=[5, 6])
    error = raised.value
    assert error.status == 400 and error.collection == name and error.point_ids == [5, 6]
    assert "dimension" in str(error).lower()
    assert [r.method for r in sent if r.path.startswith(f"/collections/{name}/points")] == ["PUT"], "never retried"


# --- retries and failures (fault proxy in front of the real server; not recorded) -----------------


@pytest.mark.parametrize("faults", [["429", "503"], ["reset"], ["drop_before", "503"], ["truncate"]])
def test_transient_failures_are_retried(qdrant_url: str, qdrant_api_key: str | None, faults: list[str]) -> None:
    with FaultProxy(qdrant_url, script=faults, retry_after="0") as proxy:
        http = QdrantHttp(ConnectionOptions(endpoint=proxy.url, api_key=qdrant_api_key, backoff_factor=0.01))
        assert http.server_version() >= (1, 0, 0)
        assert proxy.count(fault=None) == 1 and proxy.stats["requests"] == len(faults) + 1


def test_retry_after_seconds_are_honoured(qdrant_url: str, qdrant_api_key: str | None) -> None:
    with FaultProxy(qdrant_url, script=["429"], retry_after="1") as proxy:
        http = QdrantHttp(ConnectionOptions(endpoint=proxy.url, api_key=qdrant_api_key, backoff_factor=0.0))
        started = time.monotonic()
        http.server_version()
        assert time.monotonic() - started >= 0.9


def test_retries_stop_after_max_retries(qdrant_url: str) -> None:
    with FaultProxy(qdrant_url, rates={"503": 1.0}) as proxy:
        http = QdrantHttp(ConnectionOptions(endpoint=proxy.url, max_retries=2, backoff_factor=0.01))
        with pytest.raises(QdrantError) as raised:
            http.count("anything")
        assert raised.value.status == 503 and "3 attempt(s)" in str(raised.value)
        assert proxy.stats["requests"] == 3


def test_client_errors_are_never_retried(qdrant_url: str) -> None:
    def reject(method: str, path: str, body: bytes) -> Canned:
        return Canned(422, b'{"status": {"error": "Validation error: limit must be positive"}}')

    with FaultProxy(qdrant_url, rule=reject) as proxy:
        http = QdrantHttp(ConnectionOptions(endpoint=proxy.url, backoff_factor=0.01))
        with pytest.raises(QdrantRequestError, match="limit must be positive") as raised:
            http.scroll("docs", {"limit": 0})
        assert raised.value.status == 422 and proxy.stats["requests"] == 1


def test_timeouts_are_retried_then_reported_as_connection_errors(qdrant_url: str) -> None:
    with FaultProxy(qdrant_url, rates={"slow": 1.0}, slow_seconds=1.0) as proxy:
        http = QdrantHttp(ConnectionOptions(endpoint=proxy.url, timeout=0.2, max_retries=1, backoff_factor=0.01))
        with pytest.raises(QdrantConnectionError, match="timed out.*'timeout' option") as raised:
            http.server_version()
        assert proxy.url in str(raised.value) and proxy.stats["requests"] == 2


def test_unreachable_endpoint_names_it_and_says_how_to_fix() -> None:
    endpoint = f"http://127.0.0.1:{free_port()}"
    http = QdrantHttp(ConnectionOptions(endpoint=endpoint, max_retries=1, backoff_factor=0.01))
    with pytest.raises(QdrantConnectionError) as raised:
        http.collection_info("docs")
    message = str(raised.value)
    assert endpoint in message and "check the endpoint" in message and "dagster-qdrant serve" in message


def test_plain_text_401_is_an_auth_error_that_says_to_set_the_api_key(qdrant_url: str) -> None:
    def refuse(method: str, path: str, body: bytes) -> Canned:
        return Canned(401, b"Must provide an API key or an Authorization bearer token", {"Content-Type": "text/plain"})

    with FaultProxy(qdrant_url, rule=refuse) as proxy:
        http = QdrantHttp(ConnectionOptions(endpoint=proxy.url, api_key="sk-wrong-key"))
        with pytest.raises(QdrantAuthError) as raised:
            http.count("docs")
    message = str(raised.value)
    assert raised.value.status == 401 and "Must provide an API key" in message
    assert "api_key" in message and "QDRANT_API_KEY" in message and "sk-wrong-key" not in message


# --- sessions ---------------------------------------------------------------------------------------


def test_one_pooled_session_per_endpoint_and_headers_even_across_threads() -> None:
    options = ConnectionOptions(endpoint="http://127.0.0.1:1", headers={"x-team": "a"})
    sessions: list[object] = []
    threads = [threading.Thread(target=lambda: sessions.append(shared_session(options))) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len({id(session) for session in sessions}) == 1
    assert QdrantHttp(options)._session is sessions[0]
    other = ConnectionOptions(endpoint="http://127.0.0.1:1", headers={"x-team": "b"})
    assert shared_session(other) is not sessions[0]
    assert shared_session(other).headers["x-team"] == "b"


def test_api_key_comes_from_the_option_or_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("QDRANT_API_KEY", "from-env")
    assert shared_session(ConnectionOptions(endpoint="http://127.0.0.1:2")).headers["api-key"] == "from-env"
    assert shared_session(ConnectionOptions(endpoint="http://127.0.0.1:2", api_key="opt")).headers["api-key"] == "opt"
    assert "from-env" not in repr(QdrantHttp(ConnectionOptions(endpoint="http://127.0.0.1:2")))


# --- which statuses are retried: a tiny server answering one status, counting the attempts --------

RETRIED = {408, 429, 500, 502, 503, 504}
"""A later attempt can get past these: timeout, rate limit, crash, overload, a proxy's bad gateway."""
EVERY_ERROR_STATUS = sorted({*range(400, 419), 421, 422, 423, 424, 425, 426, 428, 429, 431, 451, *range(500, 509), 510, 511})
"""Every 4xx and 5xx status of the IANA registry."""


class _OneStatus(http_server.BaseHTTPRequestHandler):

    def do_GET(self) -> None:  # noqa: N802 - name from the base class
        self.server.attempts += 1  # type: ignore[attr-defined]
        body = b'{"status": {"error": "canned"}}'
        self.send_response(self.server.status)  # type: ignore[attr-defined]
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - signature from the base
        pass


@pytest.fixture(scope="module")
def one_status_server() -> Iterator[http_server.ThreadingHTTPServer]:
    server = http_server.ThreadingHTTPServer(("127.0.0.1", 0), _OneStatus)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize("status", EVERY_ERROR_STATUS)
def test_exactly_the_statuses_a_retry_can_help_are_retried(
    one_status_server: http_server.ThreadingHTTPServer, status: int
) -> None:
    one_status_server.status = status  # type: ignore[attr-defined]
    one_status_server.attempts = 0  # type: ignore[attr-defined]
    endpoint = f"http://127.0.0.1:{one_status_server.server_address[1]}"
    http = QdrantHttp(ConnectionOptions(endpoint=endpoint, max_retries=2, backoff_factor=0.0))
    with pytest.raises(QdrantError) as raised:
        http.server_version()
    assert raised.value.status == status
    expected_attempts = 3 if status in RETRIED else 1
    assert one_status_server.attempts == expected_attempts  # type: ignore[attr-defined]
    if status >= 500:
        said = f"after {expected_attempts} attempt(s)" if status in RETRIED else "not retried"
        assert said in str(raised.value) and "canned" in str(raised.value)
