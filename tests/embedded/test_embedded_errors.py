"""Bad requests get Qdrant's status code and a JSON error body whose message names the problem."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import orjson
import pytest
import requests

from dagster_qdrant.embedded import start_embedded_qdrant


@pytest.fixture
def collection(qdrant_url: str, collection_name: str) -> Iterator[str]:
    """A 4-d Dot collection with one point (id 1)."""
    url = f"{qdrant_url}/collections/{collection_name}"
    requests.put(url, json={"vectors": {"size": 4, "distance": "Dot"}}).raise_for_status()
    requests.put(f"{url}/points?wait=true", json={"points": [{"id": 1, "vector": [1, 2, 3, 4]}]}).raise_for_status()
    yield url
    requests.delete(url)


def _error(response: requests.Response, status: int, *words: str) -> None:
    assert response.status_code == status, response.text
    message = response.json()["status"]["error"]
    for word in words:
        assert word in message, message


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ({"points": [{"id": 2, "vector": [1, 2, 3]}]}, ["dimension", "expected dim: 4, got 3"]),
        ({"batch": {"ids": [2, 3], "vectors": [[1, 2, 3, 4], [1, 2]]}}, ["dimension", "got 2", "point id 3"]),
        ({"points": [{"id": -5, "vector": [1, 2, 3, 4]}]}, ["-5"]),
        ({"points": [{"id": "not-a-uuid", "vector": [1, 2, 3, 4]}]}, ["not-a-uuid", "UUID"]),
        ({"batch": {"ids": [2, "nope"], "vectors": [[1, 2, 3, 4], [1, 2, 3, 4]]}}, ["nope"]),
        ({"batch": {"ids": [2, 3], "vectors": [[1, 2, 3, 4]]}}, ["2 ids", "1 vectors"]),
        ({"points": [{"id": 2, "vector": {"missing": [1, 2, 3, 4]}}]}, ["vector name", "missing"]),
        ({"points": [{"id": 2, "vector": [1, 2, 3, 4], "payload": "text"}]}, ["payload"]),
        ({"rows": []}, ["points", "batch"]),
    ],
)
def test_bad_upsert_is_400_naming_the_problem(collection: str, body: dict, words: list[str]) -> None:
    _error(requests.put(f"{collection}/points?wait=true", json=body), 400, *words)
    assert requests.post(f"{collection}/points/count", json={}).json()["result"]["count"] == 1  # nothing applied


def test_body_that_is_not_json_is_400(collection: str) -> None:
    response = requests.put(f"{collection}/points", data=b"{not json", headers={"Content-Type": "application/json"})
    _error(response, 400, "Json deserialize error")


def _raw_upsert(collection: str, body: bytes, first: int, pieces: list[bytes], pause: float = 0.05) -> socket.socket:
    """A connection that sends an upsert's head and ``body[:first]``, then ``pieces`` with a pause between."""
    parts = urlsplit(collection)
    head = f"PUT {parts.path}/points?wait=true HTTP/1.1\r\nHost: x\r\nContent-Length: {len(body)}\r\n\r\n"
    connection = socket.create_connection((parts.hostname, parts.port), timeout=10)
    connection.sendall(head.encode() + body[:first])
    for piece in pieces:
        time.sleep(pause)
        connection.sendall(piece)
    return connection


def test_a_body_that_arrives_in_pieces_is_read_whole(collection: str) -> None:
    ids = list(range(10, 410))
    body = orjson.dumps({"batch": {"ids": ids, "vectors": [[i, 1, 2, 3] for i in ids]}})
    connection = _raw_upsert(collection, body, 100, [body[100:5000], body[5000:]])
    with connection, connection.makefile("rb") as answer:
        assert answer.readline().startswith(b"HTTP/1.1 200")
    assert requests.post(f"{collection}/points/count", json={}).json()["result"]["count"] == 1 + len(ids)


def test_a_client_that_hangs_up_mid_body_changes_nothing_and_the_server_keeps_serving(collection: str) -> None:
    body = orjson.dumps({"points": [{"id": 7, "vector": [1, 2, 3, 4]}]})
    connection = _raw_upsert(collection, body, 20, [])
    connection.shutdown(socket.SHUT_WR)  # the client stops mid-body: the server reads the end of its stream
    with connection:
        # The server gives the request up and closes the connection without an answer: the end of the stream
        # here is that event (the socket's 10 s timeout bounds the wait should it never come).
        assert connection.recv(1) == b""
    assert requests.post(f"{collection}/points/count", json={}).json()["result"]["count"] == 1


def test_missing_collection_is_404_in_every_endpoint(qdrant_url: str) -> None:
    base = f"{qdrant_url}/collections/no_such_collection"
    for method, path, body in [
        ("GET", "", None),
        ("PUT", "/points", {"points": []}),
        ("POST", "/points/scroll", {}),
        ("POST", "/points/count", {}),
        ("POST", "/points/query", {"query": [1, 2, 3, 4]}),
        ("POST", "/points/delete", {"points": [1]}),
    ]:
        _error(requests.request(method, base + path, json=body), 404, "no_such_collection", "doesn't exist")


def test_missing_point_is_404(collection: str) -> None:
    _error(requests.get(f"{collection}/points/12345"), 404, "12345")


def test_creating_an_existing_collection_is_409(collection: str) -> None:
    _error(requests.put(collection, json={"vectors": {"size": 4, "distance": "Dot"}}), 409, "already exists")


@pytest.mark.parametrize(
    ("body", "status", "words"),
    [
        ({"vectors": {"size": 0, "distance": "Dot"}}, 422, ["size", "0"]),
        ({"vectors": {"size": 4, "distance": "cosine"}}, 400, ["cosine", "Cosine"]),
        ({"vectors": {"size": "four", "distance": "Dot"}}, 400, ["size"]),
        ({"vectors": [4]}, 400, ["vectors"]),
        ({}, 400, ["at least one vector"]),
    ],
)
def test_bad_collection_config_is_refused(qdrant_url: str, collection_name: str, body: dict, status: int, words: list[str]) -> None:
    _error(requests.put(f"{qdrant_url}/collections/{collection_name}", json=body), status, *words)
    assert not requests.get(f"{qdrant_url}/collections/{collection_name}/exists").json()["result"]["exists"]


@pytest.mark.parametrize(
    ("path", "body", "status", "words"),
    [
        ("/points/scroll", {"limit": 0}, 422, ["limit"]),
        ("/points/count", {"filter": {"must": [{"slice": {"total": 2, "index": 2}}]}}, 422, ["slice", "index"]),
        ("/points/count", {"filter": {"must": [{"slice": {"total": 0, "index": 0}}]}}, 422, ["slice", "total"]),
        ("/points/scroll", {"filter": {"must": [{"key": "a", "match": {"nothing": 1}}]}}, 400, ["match"]),
        ("/points/scroll", {"filter": {"everything": []}}, 400, ["everything"]),
        ("/points/scroll", {"offset": "bad-offset"}, 400, ["bad-offset"]),
        ("/points/query", {"query": [1, 2]}, 400, ["dimension"]),
        ("/points/delete", {}, 400, ["points", "filter"]),
    ],
)
def test_bad_read_request_is_refused(collection: str, path: str, body: dict, status: int, words: list[str]) -> None:
    _error(requests.post(collection + path, json=body), status, *words)


def test_alias_actions_are_atomic_and_missing_ones_are_404(qdrant_url: str, collection: str) -> None:
    name = collection.rsplit("/", 1)[-1]
    response = requests.post(f"{qdrant_url}/collections/aliases", json={"actions": [
        {"create_alias": {"collection_name": name, "alias_name": f"{name}_a"}},
        {"delete_alias": {"alias_name": f"{name}_never_created"}},
    ]})
    _error(response, 404, f"{name}_never_created")
    assert requests.get(f"{collection}/aliases").json()["result"]["aliases"] == []  # first action not applied
    response = requests.post(f"{qdrant_url}/collections/aliases", json={"actions": [
        {"create_alias": {"collection_name": "no_such_collection", "alias_name": "x"}},
    ]})
    _error(response, 404, "no_such_collection")


def test_unknown_endpoint_is_404(qdrant_url: str) -> None:
    assert requests.get(f"{qdrant_url}/no/such/endpoint").status_code == 404


@pytest.fixture(scope="module")
def keyed_server(tmp_path_factory: pytest.TempPathFactory):
    with start_embedded_qdrant(tmp_path_factory.mktemp("keyed"), api_key="s3cret") as server:
        yield server


def test_api_key_is_required_when_configured(keyed_server) -> None:
    url = f"{keyed_server.url}/collections"
    missing = requests.get(url)
    assert missing.status_code == 401
    assert "API key" in missing.text
    assert requests.get(url, headers={"api-key": "wrong"}).status_code == 401
    assert requests.get(url, headers={"api-key": "s3cret"}).status_code == 200
    assert requests.get(url, headers={"Authorization": "Bearer s3cret"}).status_code == 200
    assert requests.get(f"{keyed_server.url}/readyz").status_code == 200  # probes stay open, as in Qdrant


@pytest.mark.filterwarnings("ignore:Api key is used with an insecure connection")
def test_api_key_works_with_qdrant_client(keyed_server) -> None:
    from qdrant_client import QdrantClient

    assert QdrantClient(url=keyed_server.url, api_key="s3cret", prefer_grpc=False).get_collections().collections == []


def test_server_listens_on_loopback_only(keyed_server) -> None:
    assert keyed_server.url.startswith("http://127.0.0.1:")


def test_a_second_server_for_the_same_directory_fails_with_the_reason(keyed_server) -> None:
    with pytest.raises(RuntimeError, match="exited"):
        start_embedded_qdrant(Path(keyed_server.path))
