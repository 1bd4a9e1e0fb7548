"""Malformed and hostile requests over raw sockets: each gets a Qdrant-shaped 4xx, nothing more.

After every request the server must still answer, the answer must be a 4xx in Qdrant's error envelope
(``{"status": {"error": ...}}``), the server's peak memory (VmHWM) must stay within a bound far below what
the request asks for (a gzip bomb, a 40 MB body), the log must not fill with tracebacks, and a restart
must show exactly the collections the answers said exist. References: Qdrant's own limits and words
(actix's JSON payload limit of 32 MiB, serde_json's recursion limit of 128, Qdrant's collection-name
rules from its source), and Python's own reading of the same JSON for the nesting depth.
"""

from __future__ import annotations

import gzip
import http.client
import json
import random
import socket
import threading
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from dagster_qdrant.embedded import start_embedded_qdrant
from dagster_qdrant.embedded.body import MAX_NESTING, MAX_REQUEST_BYTES, check_nesting
from dagster_qdrant.embedded.errors import ApiError

PEAK_GROWTH_LIMIT = 160 * 1024 * 1024
"""Peak RSS may grow by this much over the whole module: a 256 MB bomb or a whole 40 MB body (plus its
parse) would pass it; bodies decompressed and read in capped pieces stay well under it."""
LOG_GROWTH_LIMIT = 64 * 1024


@pytest.fixture(scope="module")
def data_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("malformed")


@pytest.fixture(scope="module")
def server(data_path: Path) -> Iterator[Any]:
    running = start_embedded_qdrant(data_path)
    try:
        requests.put(f"{running.url}/collections/kept", json={"vectors": {"size": 2, "distance": "Dot"}}).raise_for_status()
        yield running
    finally:
        running.stop()


def peak_rss(pid: int) -> int:
    """The process's peak resident set size in bytes (VmHWM)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmHWM")


@pytest.fixture(scope="module")
def baseline(server: Any) -> dict[str, int]:
    # a few ordinary requests first, so the baseline includes what normal work costs
    body = {"batch": {"ids": list(range(2000)), "vectors": [[1.0, float(i)] for i in range(2000)]}}
    requests.put(f"{server.url}/collections/kept/points?wait=true", json=body).raise_for_status()
    log = Path(server.path) / "server.log"
    return {"rss": peak_rss(server.pid), "log": log.stat().st_size if log.exists() else 0}


def exchange(url: str, head: bytes, body: bytes = b"", pieces: int = 1) -> tuple[int, dict[str, str], bytes]:
    """Send raw bytes on a new connection (body in a thread, as a client streaming it would) and read the answer."""
    host, port = url.removeprefix("http://").split(":")
    connection = socket.create_connection((host, int(port)), timeout=60)

    def send() -> None:
        try:
            connection.sendall(head)
            step = max(len(body) // pieces, 1)
            for start in range(0, len(body), step):
                connection.sendall(body[start : start + step])
        except OSError:
            pass  # the server may answer and stop reading before the whole body is sent

    sender = threading.Thread(target=send)
    sender.start()
    response = http.client.HTTPResponse(connection)
    response.begin()
    answer = response.read()
    sender.join()
    connection.close()
    return response.status, {key.lower(): value for key, value in response.getheaders()}, answer


def request_head(method: str, path: str, headers: dict[str, str]) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1", *(f"{k}: {v}" for k, v in headers.items())]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def assert_refused(server: Any, baseline: dict[str, int], answer: tuple[int, dict[str, str], bytes], *words: str) -> str:
    """A 4xx in Qdrant's error envelope naming the problem; the server still answers; memory and log bounded."""
    status, _, body = answer
    assert 400 <= status < 500, (status, body[:300])
    error = json.loads(body)["status"]["error"]
    for word in words:
        assert word in error, error
    assert requests.get(f"{server.url}/healthz", timeout=10).status_code == 200
    assert requests.get(f"{server.url}/collections/kept", timeout=10).status_code == 200
    assert peak_rss(server.pid) - baseline["rss"] < PEAK_GROWTH_LIMIT
    log = Path(server.path) / "server.log"
    assert (log.stat().st_size if log.exists() else 0) - baseline["log"] < LOG_GROWTH_LIMIT
    return error


SCROLL = "/collections/kept/points/scroll"


@pytest.mark.parametrize("length", ["-1", "abc", "1_0", "+5", "0x10", "5, 6", ""])
def test_a_content_length_that_is_not_a_number_of_bytes_is_a_400(server: Any, baseline: dict[str, int], length: str) -> None:
    answer = exchange(server.url, request_head("POST", SCROLL, {"Content-Length": length}), b"{}")
    assert_refused(server, baseline, answer, "Content-Length")
    assert answer[1].get("connection") == "close"


def test_two_different_content_lengths_are_a_400(server: Any, baseline: dict[str, int]) -> None:
    head = b"POST " + SCROLL.encode() + b" HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n"
    assert_refused(server, baseline, exchange(server.url, head, b"{}"), "Content-Length")


@pytest.mark.parametrize(
    "chunks",
    [b"zz\r\n{}\r\n0\r\n\r\n", b"-2\r\n{}\r\n0\r\n\r\n", b"2\r\n{}}}}\r\n0\r\n\r\n", b"\r\n", b"2" * 5000 + b"\r\n"],
    ids=["not-hex", "negative", "longer-than-its-size", "empty-size", "size-line-too-long"],
)
def test_a_chunked_body_with_a_bad_chunk_is_a_400(server: Any, baseline: dict[str, int], chunks: bytes) -> None:
    head = request_head("POST", SCROLL, {"Transfer-Encoding": "chunked", "Content-Type": "application/json"})
    answer = exchange(server.url, head, chunks)
    assert_refused(server, baseline, answer, "chunk")
    assert answer[1].get("connection") == "close"


def test_a_transfer_encoding_other_than_chunked_is_a_400(server: Any, baseline: dict[str, int]) -> None:
    head = request_head("POST", SCROLL, {"Transfer-Encoding": "gzip, chunked"})
    answer = exchange(server.url, head, b"2\r\n{}\r\n0\r\n\r\n")
    assert_refused(server, baseline, answer, "Transfer-Encoding")
    assert answer[1].get("connection") == "close"


def test_a_well_formed_chunked_body_still_works(server: Any) -> None:
    body = b'{"limit": 1}'
    chunks = b"".join(b"%x\r\n%s\r\n" % (len(part), part) for part in (body[:5], body[5:])) + b"0\r\n\r\n"
    head = request_head("POST", SCROLL, {"Transfer-Encoding": "chunked"})
    status, _, answer = exchange(server.url, head, chunks)
    assert status == 200 and len(json.loads(answer)["result"]["points"]) == 1


@pytest.mark.parametrize(
    "encoding, body",
    [("gzip", b'{"limit": 1}'), ("gzip", gzip.compress(b'{"limit": 1}')[:-8]), ("deflate", b"\x00\x01garbage"),
     ("br", b'{"limit": 1}')],
    ids=["gzip-not-gzip", "gzip-truncated", "deflate-not-deflate", "unsupported"],
)
def test_a_body_that_is_not_what_its_content_encoding_says_is_a_400(
    server: Any, baseline: dict[str, int], encoding: str, body: bytes
) -> None:
    head = request_head("POST", SCROLL, {"Content-Length": str(len(body)), "Content-Encoding": encoding})
    assert_refused(server, baseline, exchange(server.url, head, body), "reading payload")


@pytest.mark.parametrize("encoding", ["gzip", "deflate"])
def test_compressed_bodies_are_decompressed(server: Any, encoding: str) -> None:
    packed = gzip.compress(b'{"limit": 2}') if encoding == "gzip" else zlib.compress(b'{"limit": 2}')
    head = request_head("POST", SCROLL, {"Content-Length": str(len(packed)), "Content-Encoding": encoding})
    status, _, answer = exchange(server.url, head, packed)
    assert status == 200 and len(json.loads(answer)["result"]["points"]) == 2


def test_a_gzip_bomb_stops_at_the_size_limit(server: Any, baseline: dict[str, int]) -> None:
    bomb = gzip.compress(b" " * (256 * 1024 * 1024), compresslevel=9)
    assert len(bomb) < 300 * 1024
    head = request_head("POST", SCROLL, {"Content-Length": str(len(bomb)), "Content-Encoding": "gzip"})
    assert_refused(server, baseline, exchange(server.url, head, bomb), f"exceeded limit ({MAX_REQUEST_BYTES} bytes)")


def test_a_body_over_32_mib_is_refused_in_qdrants_words(server: Any, baseline: dict[str, int]) -> None:
    body = b'{"limit": 1, "pad": "' + b"x" * (40 * 1024 * 1024) + b'"}'
    head = request_head("POST", SCROLL, {"Content-Length": str(len(body))})
    answer = exchange(server.url, head, body, pieces=40)
    error = assert_refused(server, baseline, answer)
    assert error == f"JSON payload ({len(body)} bytes) is larger than allowed (limit: {MAX_REQUEST_BYTES} bytes)."
    assert answer[0] == 400


def test_a_chunked_body_over_32_mib_is_refused(server: Any, baseline: dict[str, int]) -> None:
    piece = b"x" * (1024 * 1024)
    chunks = b"".join(b"%x\r\n%s\r\n" % (len(piece), piece) for _ in range(40)) + b"0\r\n\r\n"
    head = request_head("POST", SCROLL, {"Transfer-Encoding": "chunked"})
    assert_refused(server, baseline, exchange(server.url, head, chunks, pieces=40), "exceeded limit")


def test_a_declared_length_far_over_the_limit_is_refused_without_reading(server: Any, baseline: dict[str, int]) -> None:
    head = request_head("POST", SCROLL, {"Content-Length": str(10**12)})
    answer = exchange(server.url, head, b"{}")
    assert_refused(server, baseline, answer, "larger than allowed")
    assert answer[1].get("connection") == "close"


@pytest.mark.parametrize("levels", [130, 300, 400, 500])
def test_deeply_nested_filters_are_a_400_not_a_crash(server: Any, baseline: dict[str, int], levels: int) -> None:
    condition = '{"must": [' * levels + '{"key": "n", "match": {"value": 1}}' + "]}" * levels  # past json.dumps' own limit
    body = ('{"limit": 1, "filter": ' + condition + "}").encode()
    head = request_head("POST", SCROLL, {"Content-Length": str(len(body)), "Content-Type": "application/json"})
    assert_refused(server, baseline, exchange(server.url, head, body), "recursion limit")


def test_a_filter_nested_within_the_limit_still_works(server: Any) -> None:
    condition: dict[str, Any] = {"key": "n", "match": {"value": 1}}
    for _ in range(40):  # 81 levels of JSON
        condition = {"must": [condition]}
    response = requests.post(f"{server.url}{SCROLL}", json={"filter": condition, "limit": 1}, timeout=30)
    assert response.status_code == 200, response.text


def _depth(value: Any) -> int:
    if isinstance(value, dict):
        return 1 + max((_depth(item) for item in value.values()), default=0)
    if isinstance(value, list):
        return 1 + max((_depth(item) for item in value), default=0)
    return 0


def _nested(generator: random.Random, depth: int) -> Any:
    """A value exactly ``depth`` containers deep, with strings full of brackets, quotes and escapes."""
    leaves = [1, -2.5e-3, None, True, 's"[{', "\\", "\\\"]}", "é\n\t\u2028", "\\u005b[", ""]
    value: Any = generator.choice(leaves)
    for _ in range(depth):
        siblings = [generator.choice(leaves) for _ in range(generator.randint(0, 2))]
        if generator.random() < 0.5:
            value = [*siblings, value] if generator.random() < 0.5 else [value, *siblings]
        else:
            value = {**{f"k{i}[": item for i, item in enumerate(siblings)}, generator.choice(['a', '"{', "\\"]): value}
    return value


def test_nesting_limit_matches_the_depth_python_reads() -> None:
    generator = random.Random(20260601)
    for case in range(600):
        depth = generator.choice([0, 1, 5, 60, MAX_NESTING - 2, MAX_NESTING - 1, MAX_NESTING, MAX_NESTING + 1, 300])
        value = _nested(generator, depth)
        raw = json.dumps(value, ensure_ascii=generator.random() < 0.5).encode()
        assert _depth(json.loads(raw)) == depth
        try:
            check_nesting(raw)
            refused = False
        except ApiError as error:
            refused = error.status == 400
        assert refused == (depth >= MAX_NESTING), (case, depth)


@pytest.mark.parametrize("name", ["a/b", "a<b", "a>b", "a:b", 'a"b', "a\\b", "a|b", "a?b", "a*b", "a\x00b", "a\x1fb",
                                  "x" * 256, "é" * 200, ".hidden"])
def test_names_qdrant_refuses_are_never_created(server: Any, baseline: dict[str, int], name: str) -> None:
    path = "/collections/" + requests.utils.quote(name, safe="")
    body = b'{"vectors": {"size": 2, "distance": "Dot"}}'
    answer = exchange(server.url, request_head("PUT", path, {"Content-Length": str(len(body))}), body)
    assert answer[0] == 422
    assert_refused(server, baseline, answer, "Validation error")
    assert name not in requests.get(f"{server.url}/collections").json()["result"]["collections"]


def test_a_long_name_is_created_deleted_and_stays_deleted_after_a_restart(
    server: Any, baseline: dict[str, int], data_path: Path
) -> None:
    names = ["n" * 250, "m" * 255, "k" * 120]
    for name in names:
        response = requests.put(f"{server.url}/collections/{name}", json={"vectors": {"size": 2, "distance": "Dot"}})
        assert response.status_code == 200, response.text
    for name in names[:2]:
        response = requests.delete(f"{server.url}/collections/{name}")
        assert response.status_code == 200 and response.json()["result"] is True, response.text
        assert requests.get(f"{server.url}/collections/{name}").status_code == 404
    listed = {c["name"] for c in requests.get(f"{server.url}/collections").json()["result"]["collections"]}
    server.stop()
    restarted = start_embedded_qdrant(data_path)
    try:
        after = {c["name"] for c in requests.get(f"{restarted.url}/collections").json()["result"]["collections"]}
        assert after == listed and names[2] in after and not set(names[:2]) & after
        hidden = [entry.name for entry in (data_path / "collections").iterdir() if entry.name.startswith(".")]
        assert hidden == []  # no half-deleted directory left behind
    finally:
        restarted.stop()


def test_a_delete_that_fails_on_disk_keeps_the_collection_everywhere(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import os

    from dagster_qdrant.embedded import store as store_module

    store = store_module.Store(tmp_path)
    store.create("stays", {"vectors": {"size": 2, "distance": "Dot"}})
    store.update_aliases([{"create_alias": {"alias_name": "stays_alias", "collection_name": "stays"}}])

    def refuse(source: Any, target: Any) -> None:
        raise OSError(28, "No space left on device")

    with monkeypatch.context() as patched:
        patched.setattr(store_module.os, "replace", refuse)
        with pytest.raises(ApiError) as raised:
            store.delete("stays")
    assert raised.value.status == 500 and "stays" in raised.value.message
    assert store.exists("stays") and store.resolve("stays_alias").name == "stays"
    store.resolve("stays").read("info")  # reopened, usable
    store.close()
    reopened = store_module.Store(tmp_path)
    assert reopened.names() == ["stays"] and reopened.aliases() == [{"alias_name": "stays_alias", "collection_name": "stays"}]
    assert reopened.delete("stays") is True and reopened.aliases() == []
    reopened.close()
    again = store_module.Store(tmp_path)
    assert again.names() == [] and again.aliases() == []
    assert [entry for entry in os.listdir(tmp_path / "collections")] == []
    again.close()
