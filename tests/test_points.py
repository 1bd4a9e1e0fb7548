"""write_qdrant_points / read_qdrant_points without Spark, against a real Qdrant.

Tests marked ``vcr`` replay tests/cassettes/test_points/ (re-record against any Qdrant with
``QDRANT_URL=... pytest --record-mode=rewrite tests/test_points.py``); their data is deterministic so the
recorded bodies match. Tests that need a fault proxy or concurrency talk to the server live.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from dagster_qdrant.errors import QdrantDataError, QdrantError, QdrantNotFoundError, QdrantWriteError
from dagster_qdrant.http import QdrantHttp
from dagster_qdrant.options import build_qdrant_write_config
from dagster_qdrant.points.without_spark import read_qdrant_points, write_qdrant_points
from faultproxy import Canned, FaultProxy

UPSERTS = r"/collections/[^/]+/points(\?|$)"


def rows(count: int, size: int = 4, start: int = 0) -> list[dict[str, Any]]:
    """Deterministic points: same bodies on every run (recorded requests must match)."""
    generator = np.random.default_rng(start)
    return [
        {"id": start + i, "vector": generator.normal(size=size).astype(np.float32), "title": f"doc {start + i}", "rank": i % 3}
        for i in range(count)
    ]


def config(url: str, key: str | None, collection: str, **options: Any) -> dict[str, Any]:
    return build_qdrant_write_config(url, collection, api_key=key, **options)


def upserted_ids(sent: list[Any], name: str) -> list[list[Any]]:
    """The ids of each upsert this run sent to ``name``, in order (PUT .../points or POST .../points/batch)."""
    found = []
    for request in list(sent):
        if request.method == "PUT" and re.match(rf"/collections/{name}/points(\?|$)", request.path):
            body = request.body
        elif request.method == "POST" and re.match(rf"/collections/{name}/points/batch(\?|$)", request.path):
            body = request.body["operations"][0]["upsert"]
        else:
            continue
        found.append(body["batch"]["ids"] if "batch" in body else [point["id"] for point in body["points"]])
    return found


def dropped(http: QdrantHttp, name: str) -> str:
    http.delete_collection(name)
    return name


@pytest.mark.vcr
def test_list_of_dicts_is_written_and_read_back(
    http: QdrantHttp, qdrant_url: str, qdrant_api_key: str | None, sent: list[Any]
) -> None:
    name = dropped(http, "b_points_list")
    data = rows(300)
    report = write_qdrant_points(data, config(qdrant_url, qdrant_api_key, name, create_collection=True, batch_size=100))
    assert (report.points_written, report.requests) == (300, 3)
    assert [ids for ids in upserted_ids(sent, name)] == [list(range(0, 100)), list(range(100, 200)), list(range(200, 300))]
    stored = {point["id"]: point for point in read_qdrant_points(endpoint=qdrant_url, collection=name, api_key=qdrant_api_key, with_vectors=True)}
    assert sorted(stored) == list(range(300))
    assert stored[7]["payload"] == {"title": "doc 7", "rank": 1}
    expected = data[7]["vector"] / np.linalg.norm(data[7]["vector"])  # Cosine collections store unit vectors
    np.testing.assert_allclose(stored[7]["vector"], expected, rtol=1e-5)


@pytest.mark.vcr
def test_pandas_dataframe_is_written_with_timestamps_as_rfc3339(
    http: QdrantHttp, qdrant_url: str, qdrant_api_key: str | None
) -> None:
    name = dropped(http, "b_points_pandas")
    frame = pd.DataFrame(
        {
            "id": ["6F0C5A8E-2B4D-5C1E-9A7F-3D2B1C0E4F5A", "0b0ec3d2-6cf1-4f8b-8a59-1b4e1c8e0c11"],
            "vector": [np.array([0.1, 0.2]), np.array([0.3, 0.4])],
            "when": pd.to_datetime(["2024-01-02 03:04:05", "2024-06-07 08:09:10"]),
            "score": [1.5, None],
        }
    )
    report = write_qdrant_points(frame, endpoint=qdrant_url, collection=name, api_key=qdrant_api_key, create_collection=True)
    assert report.points_written == 2
    stored = {point["id"]: point["payload"] for point in read_qdrant_points(endpoint=qdrant_url, collection=name, api_key=qdrant_api_key)}
    assert stored["6f0c5a8e-2b4d-5c1e-9a7f-3d2b1c0e4f5a"] == {"when": "2024-01-02T03:04:05+00:00", "score": 1.5}
    assert stored["0b0ec3d2-6cf1-4f8b-8a59-1b4e1c8e0c11"]["score"] is None


@pytest.mark.vcr
def test_generator_is_streamed_in_chunks(
    http: QdrantHttp, qdrant_url: str, qdrant_api_key: str | None, sent: list[Any]
) -> None:
    name = dropped(http, "b_points_generator")
    upserts_sent_when_generator_was_at_2000: list[int] = []

    def upserts() -> list[Any]:
        return [r for r in list(sent) if r.method == "PUT" and r.path.startswith(f"/collections/{name}/points?")]

    def produce() -> Iterator[dict[str, Any]]:
        for point in rows(2100):
            if point["id"] == 2000:
                upserts_sent_when_generator_was_at_2000.append(len(upserts()))
            yield point

    options = config(qdrant_url, qdrant_api_key, name, create_collection=True, batch_size=256, max_in_flight=2)
    report = write_qdrant_points(produce(), options)  # streamed in chunks of 1024 rows
    assert report.points_written == 2100
    assert upserts_sent_when_generator_was_at_2000[0] > 0, "points must be sent before the generator is exhausted"
    sizes = [len(r.body["batch"]["ids"]) for r in upserts()]
    assert max(sizes) <= 256 and sorted(i for r in upserts() for i in r.body["batch"]["ids"]) == list(range(2100))


@pytest.mark.vcr
def test_pyarrow_table_with_named_and_sparse_vectors(http: QdrantHttp, qdrant_url: str, qdrant_api_key: str | None) -> None:
    name = dropped(http, "b_points_named")
    table = pa.table(
        {
            "id": [1, 2],
            "text_vec": [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]],
            "terms": [{"indices": [1, 7], "values": [0.5, 2.0]}, {"indices": [3], "values": [1.0]}],
            "title": ["a", "b"],
        }
    )
    options = config(
        qdrant_url, qdrant_api_key, name, create_collection=True, vector_fields={"text_vec": "text"},
        sparse_vector_fields={"terms": "bm25"}, distance="Dot",
    )
    assert write_qdrant_points(table, options).points_written == 2
    params = http.collection_info(name)["config"]["params"]
    assert params["vectors"]["text"]["size"] == 3 and "bm25" in params["sparse_vectors"]
    stored = {p["id"]: p for p in read_qdrant_points(endpoint=qdrant_url, collection=name, api_key=qdrant_api_key, with_vectors=True)}
    assert stored[1]["vector"]["text"] == [1.0, 0.0, 0.0]
    assert stored[1]["vector"]["bm25"] == {"indices": [1, 7], "values": [0.5, 2.0]}
    assert stored[2]["payload"] == {"title": "b"}


@pytest.mark.vcr
def test_points_format_and_post_method_also_write(
    http: QdrantHttp, qdrant_url: str, qdrant_api_key: str | None, sent: list[Any]
) -> None:
    name = dropped(http, "b_points_row_form")
    options = config(qdrant_url, qdrant_api_key, name, create_collection=True, payload_format="points")
    write_qdrant_points(rows(10), options)
    write_qdrant_points(rows(10, start=10), options, write_method="post")
    writes = [(r.method, r.path.split("?")[0]) for r in sent if r.path.startswith(f"/collections/{name}/points")]
    assert writes == [("PUT", f"/collections/{name}/points"), ("POST", f"/collections/{name}/points/batch")]
    assert upserted_ids(sent, name) == [list(range(10)), list(range(10, 20))]
    assert all("points" in r.body or "operations" in r.body for r in sent if r.path.startswith(f"/collections/{name}/points"))


@pytest.mark.vcr
def test_rows_without_ids_get_content_ids_so_rewrites_never_duplicate(
    http: QdrantHttp, qdrant_url: str, qdrant_api_key: str | None, sent: list[Any]
) -> None:
    name = dropped(http, "b_points_content_ids")
    data = [{key: value for key, value in point.items() if key != "id"} for point in rows(50)]
    options = config(qdrant_url, qdrant_api_key, name, create_collection=True, id_field=None)
    write_qdrant_points(data, options)
    write_qdrant_points(data, options)
    first, second = upserted_ids(sent, name)
    assert len(set(first)) == 50 and first == second, "the same rows get the same ids on every write"


@pytest.mark.vcr
def test_read_honours_limit_page_size_max_pages_filter_and_offset(
    http: QdrantHttp, qdrant_url: str, qdrant_api_key: str | None
) -> None:
    name = dropped(http, "b_points_read")
    write_qdrant_points(rows(30), config(qdrant_url, qdrant_api_key, name, create_collection=True))
    read = dict(endpoint=qdrant_url, collection=name, api_key=qdrant_api_key)
    assert [p["id"] for p in read_qdrant_points(**read, limit=7, page_size=3)] == list(range(7))
    assert len(list(read_qdrant_points(**read, page_size=4, max_pages=2))) == 8
    assert [p["id"] for p in read_qdrant_points(**read, offset=25)] == [25, 26, 27, 28, 29]
    ranked = list(read_qdrant_points(**read, filter='{"must": [{"key": "rank", "match": {"value": 2}}]}', with_payload=["rank"]))
    assert len(ranked) == 10 and all(p["payload"] == {"rank": 2} for p in ranked)


@pytest.mark.vcr
def test_missing_collection_without_create_collection_says_how_to_fix(
    http: QdrantHttp, qdrant_url: str, qdrant_api_key: str | None, sent: list[Any]
) -> None:
    name = dropped(http, "b_points_missing")
    with pytest.raises(QdrantNotFoundError) as raised:
        write_qdrant_points(rows(3), config(qdrant_url, qdrant_api_key, name))
    assert f"'{name}'" in str(raised.value) and "create_collection=True" in str(raised.value)
    assert upserted_ids(sent, name) == [] and not any(r.method == "PUT" and r.path == f"/collections/{name}" for r in sent)


@pytest.mark.vcr
def test_vector_size_mismatch_names_both_sizes_and_writes_nothing(
    http: QdrantHttp, qdrant_url: str, qdrant_api_key: str | None, sent: list[Any]
) -> None:
    name = dropped(http, "b_points_size_mismatch")
    http.create_collection(name, {"vectors": {"size": 4, "distance": "Cosine"}})
    with pytest.raises(QdrantDataError) as raised:
        write_qdrant_points(rows(5, size=3), config(qdrant_url, qdrant_api_key, name))
    assert "size 3" in str(raised.value) and "expects size 4" in str(raised.value)
    assert upserted_ids(sent, name) == [], "nothing is sent"


BAD_INPUTS = {
    "negative id": [{"id": 1, "vector": [1.0, 2.0]}, {"id": -1, "vector": [1.0, 2.0]}],
    "non-uuid string id": [{"id": "doc-1", "vector": [1.0, 2.0]}],
    "duplicate ids": [{"id": 3, "vector": [1.0, 2.0]}, {"id": 3, "vector": [2.0, 1.0]}],
    "nan vector": [{"id": 1, "vector": [float("nan"), 1.0]}],
    "ragged vectors": [{"id": 1, "vector": [1.0, 2.0]}, {"id": 2, "vector": [1.0]}],
    "empty vector": [{"id": 1, "vector": []}],
    "missing vector": [{"id": 1, "title": "t"}],
    "binary payload": [{"id": 1, "vector": [1.0, 2.0], "blob": b"\x00\x01"}],
    "not dicts": [[1, [1.0, 2.0]]],
}


@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
def test_bad_input_is_refused_clearly_and_sends_nothing(qdrant_url: str, qdrant_api_key: str | None, case: str) -> None:
    name = f"b_points_bad_{case.replace(' ', '_').replace('-', '_')}"
    with FaultProxy(qdrant_url) as proxy:
        with pytest.raises(QdrantDataError) as raised:
            write_qdrant_points(BAD_INPUTS[case], config(proxy.url, qdrant_api_key, name, create_collection=True))
        assert proxy.stats["requests"] == 0, "nothing may be sent for bad input"
    assert len(str(raised.value)) < 1000


def test_bad_points_argument_says_what_is_accepted(qdrant_url: str) -> None:
    with pytest.raises(QdrantDataError, match="list or generator of dicts, a pandas DataFrame"):
        write_qdrant_points({"id": 1, "vector": [1.0]}, endpoint=qdrant_url, collection="b_points_unused")


def test_requests_stay_under_the_byte_budget(qdrant_url: str, qdrant_api_key: str | None, http: QdrantHttp) -> None:
    name = dropped(http, "b_points_byte_budget")
    data = [{"id": i, "vector": [1.0, 2.0], "text": "x" * 3000} for i in range(40)]
    with FaultProxy(qdrant_url, keep_bodies=True) as proxy:
        options = config(proxy.url, qdrant_api_key, name, create_collection=True, max_batch_bytes=16384)
        report = write_qdrant_points(data, options)
        bodies = [seen.body for seen in proxy.requests if seen.method == "PUT" and "/points" in seen.path]
    assert report.points_written == 40 and report.requests == len(bodies) >= 8
    assert max(len(body) for body in bodies) <= 16384
    assert http.count(name) == 40


def test_auto_format_falls_back_to_points_when_batch_is_refused(
    qdrant_url: str, qdrant_api_key: str | None, http: QdrantHttp
) -> None:
    name = dropped(http, "b_points_format_fallback")

    def no_batch_form(method: str, path: str, body: bytes) -> Canned | None:
        if method == "PUT" and b'"batch"' in body:
            return Canned(400, b'{"status": {"error": "Format error in JSON body: missing field `points`"}}')
        return None

    with FaultProxy(qdrant_url, rule=no_batch_form, methods=["PUT"], path_pattern=UPSERTS) as proxy:
        report = write_qdrant_points(rows(300), config(proxy.url, qdrant_api_key, name, create_collection=True, batch_size=100))
        assert proxy.stats["canned_400"] == 1
    assert report.points_written == 300 and http.count(name) == 300


def test_auto_method_falls_back_to_post_on_405(qdrant_url: str, qdrant_api_key: str | None, http: QdrantHttp) -> None:
    name = dropped(http, "b_points_method_fallback")

    def no_put(method: str, path: str, body: bytes) -> Canned | None:
        return Canned(405, b'{"status": {"error": "Method Not Allowed"}}') if method == "PUT" else None

    with FaultProxy(qdrant_url, rule=no_put, path_pattern=UPSERTS) as proxy:
        write_qdrant_points(rows(300), config(proxy.url, qdrant_api_key, name, create_collection=True, batch_size=100))
        assert proxy.stats["canned_405"] == 1 and proxy.count(method="POST", path_contains="/points/batch") == 3
        assert proxy.count_matching(r"/points(\?|$)", methods=["POST"]) == 0  # POST .../points is a retrieve
    assert http.count(name) == 300


def test_partial_failure_reports_written_not_written_and_failed_ids(
    qdrant_url: str, qdrant_api_key: str | None, http: QdrantHttp
) -> None:
    name = dropped(http, "b_points_partial")

    def third_request_fails(method: str, path: str, body: bytes) -> Canned | None:
        if b'"ids":[200,' in body:
            return Canned(400, b'{"status": {"error": "Wrong input: refused for this test"}}')
        return None

    with FaultProxy(qdrant_url, rule=third_request_fails, methods=["PUT"], path_pattern=UPSERTS) as proxy:
        options = config(proxy.url, qdrant_api_key, name, create_collection=True, batch_size=100, max_in_flight=1)
        with pytest.raises(QdrantWriteError) as raised:
            write_qdrant_points(rows(500), options)
    error = raised.value
    assert (error.written, error.failed, error.status) == (200, 300, 400)
    assert error.failed_ids[:3] == [200, 201, 202]
    assert "refused for this test" in str(error) and "200 points written" in str(error)
    assert http.count(name) == 200


def test_concurrent_writers_creating_the_same_collection_all_succeed(
    qdrant_url: str, qdrant_api_key: str | None, http: QdrantHttp
) -> None:
    name = dropped(http, "b_points_racing_creators")
    errors: list[BaseException] = []

    def write(start: int) -> None:
        try:
            write_qdrant_points(rows(100, start=start), config(qdrant_url, qdrant_api_key, name, create_collection=True))
        except QdrantError as error:  # pragma: no cover - the assertion below reports it
            errors.append(error)

    writers = [threading.Thread(target=write, args=(start,)) for start in range(0, 600, 100)]
    for writer in writers:
        writer.start()
    for writer in writers:
        writer.join()
    assert errors == []
    assert http.count(name) == 600


def test_no_cassette_records_an_upsert_as_qdrants_retrieve() -> None:
    """``POST /collections/{c}/points`` is Qdrant's retrieve: a cassette holding one recorded a wrong write."""
    import yaml

    folder = Path(__file__).parent / "cassettes"
    retrieves = []
    for cassette in sorted(folder.glob("*/*.yaml")):
        for interaction in yaml.safe_load(cassette.read_text())["interactions"]:
            recorded = interaction["request"]
            if recorded["method"] == "POST" and re.fullmatch(r"/collections/[^/]+/points", urlsplit(recorded["uri"]).path):
                retrieves.append(f"{cassette.name}: {recorded['uri']}")
    assert list(folder.glob("*/*.yaml")) and retrieves == []
