"""PointWriter against a recording stand-in for Qdrant's REST API, in-process and fast.

The reference is the input: every point given is sent exactly once, in requests within ``batch_size``
and ``max_batch_bytes``; a failure reports the points written and not written as counted from the
requests that did and did not succeed. Collection info shapes follow the OpenAPI spec (``CollectionInfo``).
"""

from __future__ import annotations

import random
import threading
from typing import Any

import orjson
import pyarrow as pa
import pytest

from dagster_qdrant.errors import QdrantDataError, QdrantError, QdrantRequestError, QdrantWriteError
from dagster_qdrant.points.rows_to_points import from_records
from dagster_qdrant.options import WriteOptions
from dagster_qdrant.points.points_to_qdrant import PointWriter, WriteReport, configured_vectors

SEED = 20261204


class RecordingQdrant:
    """Answers like Qdrant for one collection and keeps every upsert body; ``fail_on`` fails that request."""

    endpoint = "http://recorded:6333"

    def __init__(self, info: dict[str, Any] | None = None, fail_on: int | None = None) -> None:
        self.info = info
        self.fail_on = fail_on
        self.created: list[dict[str, Any]] = []
        self.bodies: list[bytes] = []
        self._lock = threading.Lock()

    def collection_info(self, name: str) -> dict[str, Any] | None:
        return self.info

    def create_collection(self, name: str, body: dict[str, Any], exist_ok: bool = False) -> bool:
        self.created.append(body)
        self.info = {"config": {"params": body}}
        return True

    def upsert(self, collection: str, data: bytes, wait: bool = True, point_ids: Any = None) -> dict[str, Any]:
        with self._lock:
            number = len(self.bodies)
            self.bodies.append(data)
        if number == self.fail_on:
            raise QdrantError("Service internal error: disk full", status=500, collection=collection, point_ids=point_ids)
        return {"status": "completed"}

    batch_update = upsert

    def sent_ids(self, skip_failed: bool = True) -> list[Any]:
        ids = []
        for number, data in enumerate(self.bodies):
            if skip_failed and number == self.fail_on:
                continue
            body = orjson.loads(data)
            ids += body["batch"]["ids"] if "batch" in body else [point["id"] for point in body["points"]]
        return ids


def options(**overrides: Any) -> WriteOptions:
    settings: dict[str, Any] = {"endpoint": "http://recorded:6333", "collection": "docs", "create_collection": True}
    settings.update(overrides)
    return WriteOptions(**settings)


def table(rows: int, start: int = 0, text_bytes: int = 10) -> pa.Table:
    return pa.table({
        "id": list(range(start, start + rows)),
        "vector": [[float(i), 1.0] for i in range(rows)],
        "text": ["x" * text_bytes] * rows,
    })


def test_every_point_of_every_batch_is_sent_once_within_the_limits() -> None:
    rng = random.Random(SEED)
    for case in range(20):
        batch_size, max_bytes = rng.randrange(1, 40), rng.choice([1024, 4096, 50_000])
        sizes = [rng.randrange(0, 60) for _ in range(rng.randrange(1, 5))]
        starts = [sum(sizes[:i]) for i in range(len(sizes))]
        batches = [table(size, start, rng.randrange(1, 200)).to_batches()[0] if size else table(0).to_batches(1)
                   for size, start in zip(sizes, starts)]
        batches = [item for item in batches if not isinstance(item, list)]
        qdrant = RecordingQdrant()
        writer = PointWriter(options(batch_size=batch_size, max_batch_bytes=max_bytes, max_in_flight=3), qdrant)
        report = writer.write_batches(batches)
        expected = list(range(sum(sizes)))
        assert sorted(qdrant.sent_ids()) == expected and len(qdrant.sent_ids()) == len(expected), case
        assert report.points_written == len(expected) and report.requests == len(qdrant.bodies), case
        for data in qdrant.bodies:
            body = orjson.loads(data)
            assert len(body["batch"]["ids"]) <= batch_size and len(data) <= max_bytes, case


def test_a_table_of_several_batches_numbers_rows_across_them() -> None:
    first = pa.record_batch({"id": [0, 1], "vector": [[1.0], [2.0]]})
    second = pa.record_batch({"id": [2, None, 4], "vector": [[1.0], [2.0], [3.0]]})
    # the first batch is written before the second is read, so the error is a partial write's
    for given in ([pa.Table.from_batches([first, second])], [first, second]):
        with pytest.raises(QdrantWriteError, match=r"is null in row\(s\) \[3\]") as raised:
            PointWriter(options(), RecordingQdrant()).write_batches(given)
        assert raised.value.written == 2


def test_the_collection_is_created_from_the_first_rows() -> None:
    qdrant = RecordingQdrant()
    PointWriter(options(distance="Dot"), qdrant).write_batches([table(3)])
    assert qdrant.created == [{"vectors": {"size": 2, "distance": "Dot"}}]
    named = RecordingQdrant()
    batch = pa.table({"id": [1], "a": [[1.0, 2.0, 3.0]], "s": [{"indices": [1], "values": [0.5]}]})
    write = options(vector_field=None, vector_fields={"a": "dense"}, sparse_vector_fields={"s": "bm25"})
    PointWriter(write, named).write_batches([batch])
    assert named.created == [{"vectors": {"dense": {"size": 3, "distance": "Cosine"}}, "sparse_vectors": {"bm25": {}}}]


def test_a_failed_request_reports_exactly_what_was_and_was_not_written() -> None:
    qdrant = RecordingQdrant(fail_on=2)
    writer = PointWriter(options(batch_size=10, max_in_flight=1), qdrant)
    with pytest.raises(QdrantWriteError) as raised:
        writer.write_batches([table(50)])
    error = raised.value
    assert error.written == len(qdrant.sent_ids()) == 20 and error.failed == 30
    assert error.failed_ids == list(range(20, 30)) and error.status == 500
    assert "Writing to collection 'docs' stopped: Service internal error: disk full" in str(error)
    assert "20 points written, 30 points not written" in str(error)
    assert error.collection == "docs"


def test_a_failure_of_the_first_request_is_raised_as_it_came() -> None:
    with pytest.raises(QdrantError) as raised:
        PointWriter(options(batch_size=10), RecordingQdrant(fail_on=0)).write_batches([table(30)])
    assert type(raised.value) is QdrantError and raised.value.point_ids == list(range(10))


def test_a_row_that_fits_no_request_is_refused_with_its_encoded_size() -> None:
    qdrant = RecordingQdrant()
    big = table(3, text_bytes=2000)
    write = options(max_batch_bytes=1024)
    with pytest.raises(QdrantDataError) as raised:
        PointWriter(write, qdrant).write_batches([big])
    single = orjson.dumps({"batch": {"ids": [0], "vectors": [[0.0, 1.0]], "payloads": [{"text": "x" * 2000}]}})
    assert str(raised.value).startswith(f"Point 0 alone encodes to {len(single)} bytes, over max_batch_bytes=1024")
    assert raised.value.point_ids == [0] and raised.value.collection == "docs" and qdrant.bodies == []


def test_reports_add_up() -> None:
    total = WriteReport(3, 1, 0.5) + WriteReport(7, 2, 1.5)
    assert (total.points_written, total.requests, total.seconds) == (10, 3, 2.0)
    assert total.points_per_second == 5.0
    assert WriteReport(4, 1, 0.0).points_per_second == 4.0


@pytest.mark.parametrize(
    ("params", "sizes", "sparse"),
    [
        ({"vectors": {"size": 4, "distance": "Cosine"}}, {"": 4}, set()),
        ({"vectors": {"a": {"size": 2, "distance": "Dot"}, "b": {"size": 8, "distance": "Euclid"}}}, {"a": 2, "b": 8}, set()),
        ({"vectors": {}, "sparse_vectors": {"bm25": {}, "splade": {"modifier": "idf"}}}, {}, {"bm25", "splade"}),
        ({"vectors": {"a": {"size": 3, "distance": "Dot"}}, "sparse_vectors": {"s": {}}}, {"a": 3}, {"s"}),
        ({}, {}, set()),
    ],
)
def test_configured_vectors_read_the_spec_shapes(params: dict, sizes: dict, sparse: set) -> None:
    assert configured_vectors({"status": "green", "config": {"params": params}}) == (sizes, sparse)
    assert configured_vectors({}) == ({}, set())


def test_writes_into_an_existing_collection_check_its_vectors() -> None:
    info = {"config": {"params": {"vectors": {"size": 3, "distance": "Dot"}}}}
    with pytest.raises(QdrantDataError, match="has vectors of size 2 but collection 'docs' expects size 3"):
        PointWriter(options(), RecordingQdrant(info)).write_batches([table(2)])
    named = {"config": {"params": {"vectors": {"dense": {"size": 2, "distance": "Dot"}}}}}
    with pytest.raises(QdrantDataError, match=r"has named vectors \['dense'\]: map the column with vector_fields"):
        PointWriter(options(), RecordingQdrant(named)).write_batches([table(2)])
    qdrant = RecordingQdrant(named)
    PointWriter(options(vector_field=None, vector_fields={"vector": "dense"}), qdrant).write_batches([table(2)])
    assert qdrant.created == [] and sorted(qdrant.sent_ids()) == [0, 1]


class RefusingQdrant(RecordingQdrant):
    """Refuses PUT upserts with ``status`` and ``message`` (as a server without that route or body shape)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__()
        self.status, self.message, self.methods = status, message, []

    def upsert(self, collection: str, data: bytes, wait: bool = True, point_ids: Any = None) -> dict[str, Any]:
        self.methods.append("PUT")
        body = orjson.loads(data)
        if self.status == 405 or "batch" in body:
            raise QdrantRequestError(self.message, status=self.status, collection=collection, point_ids=point_ids)
        return super().upsert(collection, data, wait, point_ids)

    def batch_update(self, collection: str, data: bytes, wait: bool = True, point_ids: Any = None) -> dict[str, Any]:
        self.methods.append("POST")
        body = orjson.loads(data)
        assert list(body) == ["operations"] and list(body["operations"][0]) == ["upsert"]
        return RecordingQdrant.upsert(self, collection, orjson.dumps(body["operations"][0]["upsert"]), wait, point_ids)


def test_auto_method_moves_to_the_batch_endpoint_on_405_and_stays_there() -> None:
    qdrant = RefusingQdrant(405, "Method Not Allowed")
    PointWriter(options(batch_size=5, max_in_flight=1), qdrant).write_batches([table(12)])
    assert qdrant.methods == ["PUT", "POST", "POST", "POST"] and sorted(qdrant.sent_ids()) == list(range(12))


@pytest.mark.parametrize("marker", ["Format error in JSON body", "missing field `points`", "unknown variant `batch`"])
def test_auto_format_moves_to_points_on_a_format_400_and_stays_there(marker: str) -> None:
    qdrant = RefusingQdrant(400, f"Wrong input: {marker} at line 1")
    PointWriter(options(batch_size=5, max_in_flight=1), qdrant).write_batches([table(12)])
    assert qdrant.methods == ["PUT"] * 4 and sorted(qdrant.sent_ids()) == list(range(12))
    assert all("points" in orjson.loads(data) for data in qdrant.bodies)


@pytest.mark.parametrize(
    ("status", "message", "write"),
    [
        (405, "Method Not Allowed", {"write_method": "put"}),
        (400, "Wrong input: Format error", {"payload_format": "batch"}),
        (400, "Wrong input: vector dimension error", {}),
        (422, "Validation error: format error", {}),
    ],
)
def test_no_fallback_where_the_options_fix_the_choice_or_the_error_is_another(status: int, message: str, write: dict) -> None:
    qdrant = RefusingQdrant(status, message)
    with pytest.raises(QdrantRequestError, match=message):
        PointWriter(options(**write), qdrant).write_batches([table(3)])
    assert qdrant.methods == ["PUT"]


# --- dicts (write_qdrant_points): the same checks, per chunk, before anything of it is sent ----------


def records(count: int, start: int = 0, size: int = 2) -> list[dict[str, Any]]:
    return [{"id": i, "vector": [float(i)] + [1.0] * (size - 1), "n": i} for i in range(start, start + count)]


def test_record_chunks_are_all_sent_once_with_their_payloads() -> None:
    qdrant = RecordingQdrant()
    report = PointWriter(options(batch_size=4, max_in_flight=2), qdrant).write_records([records(10), records(7, 10)])
    assert report.points_written == 17 and sorted(qdrant.sent_ids()) == list(range(17))
    payloads = {}
    for data in qdrant.bodies:
        batch = orjson.loads(data)["batch"]
        payloads.update(zip(batch["ids"], batch["payloads"]))
        assert batch["vectors"] == [[float(i), 1.0] for i in batch["ids"]]
    assert payloads == {i: {"n": i} for i in range(17)}


def test_duplicate_ids_within_and_across_chunks_are_refused_naming_them() -> None:
    within = records(5) + [{"id": 3, "vector": [0.0, 1.0], "n": 0}]
    with pytest.raises(QdrantDataError) as raised:
        PointWriter(options(), RecordingQdrant()).write_records([within])
    assert "Duplicate ids in one write (column 'id'): [3]" in str(raised.value) and raised.value.point_ids == [3]
    qdrant = RecordingQdrant()
    with pytest.raises(QdrantWriteError) as across:
        PointWriter(options(), qdrant).write_records([records(5), records(3, 4)])
    assert "Duplicate ids in one write (column 'id'): [4]" in str(across.value)
    assert across.value.written == 5 and sorted(qdrant.sent_ids()) == list(range(5))


def test_content_ids_make_equal_rows_one_point() -> None:
    qdrant = RecordingQdrant()
    rows = [{"vector": [1.0, 2.0], "n": 1}, {"vector": [1.0, 2.0], "n": 1}, {"vector": [1.0, 2.0], "n": 2}]
    PointWriter(options(id_field=None), qdrant).write_records([rows])
    ids = qdrant.sent_ids()
    assert len(ids) == 3 and ids[0] == ids[1] != ids[2]


@pytest.mark.parametrize(
    ("info", "write", "words"),
    [
        ({"vectors": {"size": 3, "distance": "Dot"}}, {}, "Column 'vector' has vectors of size 2 but collection 'docs' expects size 3"),
        ({"vectors": {"d": {"size": 3, "distance": "Dot"}}}, {"vector_field": None, "vector_fields": {"vector": "d"}},
         "Column 'vector' has vectors of size 2 but collection 'docs' expects size 3 for vector 'd'"),
        ({"vectors": {"d": {"size": 2, "distance": "Dot"}}}, {},
         "Collection 'docs' has no vector '(unnamed)' for column 'vector'; it has named vectors ['d']: map the column with vector_fields={'vector': '<name>'}"),
        ({"vectors": {"size": 2, "distance": "Dot"}}, {"vector_field": None, "vector_fields": {"vector": "d"}},
         "Collection 'docs' has no vector 'd' for column 'vector'; it has one unnamed vector: write column 'vector' with vector_field='vector' instead"),
        ({"vectors": {}, "sparse_vectors": {"s": {}}}, {"vector_field": None, "vector_fields": {"vector": "d"}},
         "Collection 'docs' has no vector 'd' for column 'vector'; its vectors are []"),
    ],
)
def test_vectors_the_collection_does_not_have_are_refused_saying_what_it_has(info: dict, write: dict, words: str) -> None:
    qdrant = RecordingQdrant({"config": {"params": info}})
    with pytest.raises(QdrantDataError) as raised:
        PointWriter(options(**write), qdrant).write_records([records(3)])
    assert words in str(raised.value) and qdrant.bodies == [] and qdrant.created == []
    assert raised.value.collection == "docs"


def test_sparse_vectors_the_collection_does_not_have_are_refused() -> None:
    qdrant = RecordingQdrant({"config": {"params": {"vectors": {}, "sparse_vectors": {"other": {}}}}})
    rows = [{"id": 1, "s": {"indices": [1], "values": [0.5]}}]
    with pytest.raises(QdrantDataError, match=r"has no sparse vector\(s\) \['bm25'\]; its sparse vectors are \['other'\]"):
        PointWriter(options(vector_field=None, sparse_vector_fields={"s": "bm25"}), qdrant).write_records([rows])


def test_a_missing_collection_is_named_with_how_to_create_it() -> None:
    with pytest.raises(QdrantError) as raised:
        PointWriter(options(create_collection=False, distance="Dot"), RecordingQdrant()).write_records([records(2)])
    assert "Collection 'docs' does not exist at http://recorded:6333" in str(raised.value)
    assert "create_collection=True" in str(raised.value) and "vector sizes {'': 2}, distance Dot" in str(raised.value)


def test_a_collection_created_meanwhile_is_read_not_created_again() -> None:
    class RaceLost(RecordingQdrant):
        def create_collection(self, name: str, body: dict[str, Any], exist_ok: bool = False) -> bool:
            assert exist_ok
            self.info = {"config": {"params": {"vectors": {"size": 3, "distance": "Dot"}}}}
            return False

    with pytest.raises(QdrantDataError, match="expects size 3"):
        PointWriter(options(), RaceLost()).write_records([records(2)])


def test_requests_over_the_byte_limit_are_split_until_they_fit() -> None:
    qdrant = RecordingQdrant()
    rows = [{"id": i, "vector": [1.0, 2.0], "text": "é" * 300} for i in range(40)]
    PointWriter(options(batch_size=40, max_batch_bytes=4096, max_in_flight=1), qdrant).write_records([rows])
    assert sorted(qdrant.sent_ids()) == list(range(40)) and all(len(data) <= 4096 for data in qdrant.bodies)
    assert len(qdrant.bodies) > 1


def test_post_sends_one_upsert_operation_of_the_batch_endpoint() -> None:
    qdrant = RefusingQdrant(200, "")
    PointWriter(options(write_method="post", batch_size=3, max_in_flight=1), qdrant).write_records([records(7)])
    assert qdrant.methods == ["POST"] * 3 and sorted(qdrant.sent_ids()) == list(range(7))


def test_a_request_over_the_byte_limit_is_halved_until_every_piece_fits() -> None:
    """The row estimates are upper bounds, so this is the safety net: exercised on a chunk directly."""
    rng = random.Random(SEED)
    for limit in (1024, 1500, 3000):
        rows = [{"id": i, "vector": [1.0, 2.0], "t": "x" * rng.randrange(0, 400)} for i in range(rng.randrange(2, 30))]
        writer = PointWriter(options(max_batch_bytes=limit), RecordingQdrant())
        chunk = from_records(rows, writer.options)
        pieces = list(writer._encoded(chunk))
        assert [i for piece, _ in pieces for i in piece.ids] == list(range(len(rows)))
        for piece, data in pieces:
            assert len(data) <= limit and data == writer._encode(piece)
            assert len(piece) == 1 or len(data) > 0
        whole = writer._encode(chunk)
        assert (len(pieces) == 1) is (len(whole) <= limit)
    big = from_records([{"id": 9, "vector": [1.0], "t": "x" * 2000}], options())
    with pytest.raises(QdrantDataError, match=r"^Point 9 alone encodes to \d+ bytes, over max_batch_bytes=1024"):
        list(PointWriter(options(max_batch_bytes=1024), RecordingQdrant())._encoded(big))


def test_no_rows_make_no_points() -> None:
    for write in (options(), options(id_field=None)):
        empty = from_records([], write)
        assert len(empty) == 0 and empty.dense == {} and empty.sparse == {} and empty.payloads == []
        assert empty.ids == []
    qdrant = RecordingQdrant()
    assert PointWriter(options(), qdrant).write_records([[], []]).points_written == 0 and qdrant.bodies == []
