"""The API key stays secret when a server or a proxy in front of Qdrant quotes the request headers back.

Some proxies (and some servers' debug error pages) echo the request, headers included, in an error body.
The client knows its secrets, so it masks them wherever such a body could surface: the exception's text,
its repr and args, its chained causes, the partial-write error that wraps it, the error Spark reports for
a failed write or read (and what Spark logs), and Python log records. The echoing server here is a tiny
local HTTP server; the reference is the key itself (it must not occur in any of those texts).
"""

from __future__ import annotations

import html
import json
import logging
import secrets
import threading
import traceback
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import quote

import pytest

from dagster_qdrant.errors import QdrantError, QdrantWriteError
from dagster_qdrant.http import QdrantHttp
from dagster_qdrant.options import ConnectionOptions, ReadOptions, WriteOptions, build_qdrant_config, build_qdrant_write_config
from dagster_qdrant.points.without_spark import write_qdrant_points

API_KEY = secrets.token_hex(16) + "/+=sk"  # '/', '+' and '=' change under URL encoding
TOKEN = "tok-" + secrets.token_hex(12)
ECHO_FORMS = ("json", "plain", "urlencoded", "html", "at_the_cut")
"""How the server quotes the headers: in Qdrant's JSON envelope, as plain text, URL-encoded, HTML-escaped,
and with the key straddling the client's 1000-character message cut."""


class _Echo(BaseHTTPRequestHandler):
    """Answers what a reader or writer needs to get going, then fails each points request quoting the headers.

    The path says how: ``/collections/<form>-<status>-<tail>/...`` (tail ``after<n>``: the first n upserts pass).
    """

    protocol_version = "HTTP/1.1"
    upserts: dict[str, int] = {}

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - signature of the base class
        pass

    def do_GET(self) -> None:
        if self.path.rstrip("/") == "":
            return self._answer(200, {"title": "qdrant - vector search engine", "version": "1.19.0"}, raw=True)
        if self.path.split("?")[0].endswith("/exists"):
            return self._answer(200, {"exists": True})
        vectors = {"size": 2, "distance": "Dot"}
        return self._answer(200, {"status": "green", "points_count": 3, "payload_schema": {},
                                  "config": {"params": {"vectors": vectors}}})

    def do_PUT(self) -> None:
        self._points()

    def do_POST(self) -> None:
        self._points()

    def _points(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        collection = self.path.split("/")[2]
        form, status, tail = collection.split("-")
        passing = int(tail[len("after"):]) if tail.startswith("after") else 0
        seen = _Echo.upserts.get(collection, 0)
        _Echo.upserts[collection] = seen + 1
        if seen < passing:
            return self._answer(200, {"operation_id": seen, "status": "completed"})
        headers = "\n".join(f"{name}: {value}" for name, value in self.headers.items())
        if form == "json":
            body = json.dumps({"status": {"error": f"rejected request with headers {dict(self.headers.items())}"}})
        elif form == "plain":
            body = f"Bad gateway. Your request:\n{self.command} {self.path}\n{headers}"
        elif form == "urlencoded":
            body = "request=" + quote(headers, safe="")
        elif form == "html":
            body = f"<html><pre>{html.escape(json.dumps(dict(self.headers.items())))}</pre></html>"
        else:  # 12 characters of the key would survive a cut made before masking
            body = json.dumps({"status": {"error": "x" * 978 + f" api-key: {self.headers['api-key']}"}})
        self._send(int(status), body.encode(), "text/plain" if form != "json" else "application/json")

    def _answer(self, status: int, result: Any, raw: bool = False) -> None:
        body = result if raw else {"result": result, "status": "ok", "time": 0.0}
        self._send(status, json.dumps(body).encode(), "application/json")

    def _send(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture(scope="module")
def echo_url() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Echo)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def full_text(error: BaseException) -> str:
    """Everything an exception can show: message, repr, args, attributes and the whole chain of causes."""
    parts, seen = [], set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        parts += [str(current), repr(current), repr(current.args), repr(getattr(current, "__dict__", {}))]
        parts += traceback.format_exception(current)
        current = current.__cause__ or current.__context__
    return "\n".join(parts)


def assert_secret_kept(text: str) -> None:
    for secret in (API_KEY, TOKEN):
        for form in (secret, quote(secret, safe=""), secret[:12], secret[-12:]):
            assert form not in text, f"the secret leaked as {form!r}"


def client(url: str, **options: Any) -> QdrantHttp:
    headers = {"Authorization": f"Bearer {TOKEN}"}
    return QdrantHttp(ConnectionOptions(endpoint=url, api_key=API_KEY, headers=headers, backoff_factor=0.001, **options))


@pytest.mark.parametrize("status", [400, 500])
@pytest.mark.parametrize("form", ECHO_FORMS)
def test_an_error_body_quoting_the_headers_never_shows_the_key(
    echo_url: str, form: str, status: int, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    with pytest.raises(QdrantError) as raised:
        client(echo_url, max_retries=2).upsert(f"{form}-{status}-a", {"points": [{"id": 1, "vector": [1.0, 0.0]}]})
    error = raised.value
    assert error.status == status and ("***" in error.message or form == "at_the_cut"), error.message
    assert_secret_kept(full_text(error))
    assert_secret_kept(caplog.text + " ".join(record.getMessage() + repr(record.args) for record in caplog.records))


@pytest.mark.parametrize("form", ECHO_FORMS)
def test_a_partial_write_error_never_shows_the_key(echo_url: str, form: str, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    config = build_qdrant_write_config(
        echo_url, f"{form}-400-after1", api_key=API_KEY, headers={"Authorization": f"Bearer {TOKEN}"},
        batch_size=2, max_in_flight=1,
    )
    with pytest.raises(QdrantWriteError) as raised:
        write_qdrant_points([{"id": i, "vector": [1.0, float(i)]} for i in range(6)], config)
    assert raised.value.written == 2 and "***" in str(raised.value)
    assert_secret_kept(full_text(raised.value))
    assert_secret_kept(caplog.text)


def test_spark_write_and_read_errors_never_show_the_key(echo_url: str, spark: Any, capfd: pytest.CaptureFixture[str]) -> None:
    frame = spark.range(6).selectExpr("id", "array(cast(id as float), 1.0f) as vector")
    write = build_qdrant_write_config(echo_url, "plain-400-spark", api_key=API_KEY, batch_size=2)
    with pytest.raises(Exception) as failed_write:
        frame.write.format("qdrant").options(**WriteOptions.from_mapping(write).spark_options()).mode("append").save()
    read = build_qdrant_config(echo_url, "json-400-spark", api_key=API_KEY)
    with pytest.raises(Exception) as failed_read:
        spark.read.format("qdrant").options(**ReadOptions.from_mapping(read).spark_options()).load().collect()
    for raised in (failed_write, failed_read):
        text = full_text(raised.value)
        assert "***" in text, text[-3000:]  # the echoed body did reach Spark's error, masked
        assert_secret_kept(text)
    captured = capfd.readouterr()
    assert_secret_kept(captured.out + captured.err)  # what the JVM and the Python workers logged
