"""PointWriter (dagster_qdrant/points/points_to_qdrant.py): the behaviours its mutants showed untested.

Against the recording stand-in of tests/test_writer.py, extended to record what each call was given. The
reference is the input: every point sent once to the collection named, with the `wait` and body format
asked for, rows numbered across batches, requests in flight together, sizes and budgets computed from the
bodies themselves, and errors that count exactly the points written and not written.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import orjson
import pyarrow as pa
import pytest
from test_writer import RecordingQdrant, options, table

from dagster_qdrant.errors import QdrantDataError, QdrantRequestError, QdrantWriteError
from dagster_qdrant.points.points_to_qdrant import PointWriter
from dagster_qdrant.points.rows_to_points import encode_body, from_records


class CallRecordingQdrant(RecordingQdrant):
    """Also records the collection name and `wait` of every call; `create_lost` makes creation lose a race."""

    def __init__(self, info: dict[str, Any] | None = None, fail_on: int | None = None, create_lost: bool = False) -> None:
        super().__init__(info, fail_on)
        self.names: list[Any] = []
        self.waits: list[Any] = []
        self.create_lost = create_lost

    def collection_info(self, name: str) -> dict[str, Any] | None:
        self.names.append(name)
        return super().collection_info(name)

    def create_collection(self, name: str, body: dict[str, Any], exist_ok: bool = False) -> bool:
        self.names.append(name)
        if self.create_lost:  # another writer created it first: Qdrant's own config is the one to use
            self.info = {"config": {"params": {"vectors": {"size": 2, "distance": "Cosine"}}}}
            return False
        return super().create_collection(name, body, exist_ok)

    def upsert(self, collection: str, data: bytes, wait: bool = True, point_ids: Any = None) -> dict[str, Any]:
        self.names.append(collection)
        self.waits.append(wait)
        return super().upsert(collection, data, wait, point_ids)

    batch_update = upsert


def test_requests_go_to_the_collection_named_with_the_wait_asked_for() -> None:
    for create_lost in (False, True):
        qdrant = CallRecordingQdrant(create_lost=create_lost)
        PointWriter(options(batch_size=10, wait=False), qdrant).write_batches([table(25)])
        assert set(qdrant.names) == {"docs"} and qdrant.waits == [False, False, False]
        assert sorted(qdrant.sent_ids()) == list(range(25))


def test_a_writer_without_its_own_client_talks_to_the_endpoint_of_its_options() -> None:
    assert PointWriter(options(endpoint="http://elsewhere:6333")).http.endpoint == "http://elsewhere:6333"


def test_payload_format_points_sends_points_from_the_first_request() -> None:
    qdrant = RecordingQdrant()
    PointWriter(options(batch_size=10, payload_format="points"), qdrant).write_batches([table(15)])
    assert [list(orjson.loads(body)) for body in qdrant.bodies] == [["points"], ["points"]]


def test_a_format_error_on_the_first_request_switches_every_request_to_points() -> None:
    class OldQdrant(RecordingQdrant):
        def upsert(self, collection: str, data: bytes, wait: bool = True, point_ids: Any = None) -> dict[str, Any]:
            if b'"batch"' in data:
                raise QdrantRequestError("Format error in JSON body: unknown field `batch`", status=400)
            return super().upsert(collection, data, wait, point_ids)

    qdrant = OldQdrant()
    PointWriter(options(batch_size=10), qdrant).write_batches([table(25)])
    assert sorted(qdrant.sent_ids()) == list(range(25)) and all(b'"points"' in body for body in qdrant.bodies)


def test_rows_are_numbered_across_three_batches_and_three_record_chunks() -> None:
    third = pa.table({"id": [5, None], "vector": [[1.0, 2.0]] * 2, "text": ["x", "y"]})
    with pytest.raises(QdrantWriteError) as raised:
        PointWriter(options(), RecordingQdrant()).write_batches([table(2), table(3, start=2), third])
    assert "Id column 'id' is null in row(s) [6]" in str(raised.value) and raised.value.unread_from == 5
    chunks = [[{"id": 1, "vector": [1.0]}], [{"id": 2, "vector": [1.0]}, {"id": 3, "vector": [1.0]}],
              [{"id": 4, "vector": [1.0]}, {"vector": [1.0]}]]
    with pytest.raises(QdrantWriteError) as raised:
        PointWriter(options(), RecordingQdrant()).write_records(chunks)
    assert "Row 4 has no 'id'" in str(raised.value) and raised.value.written == 3 and raised.value.unread_from == 3


def test_an_empty_batch_does_not_end_the_write() -> None:
    qdrant = RecordingQdrant()
    empty = table(4).to_batches()[0].slice(0, 0)  # a batch of no rows (an empty table has no batches at all)
    PointWriter(options(), qdrant).write_batches([empty, table(4), empty, table(3, start=4)])
    assert sorted(qdrant.sent_ids()) == list(range(7))


def test_requests_after_the_first_are_in_flight_together() -> None:
    meet = threading.Barrier(2, timeout=10)

    class Meeting(RecordingQdrant):
        def upsert(self, collection: str, data: bytes, wait: bool = True, point_ids: Any = None) -> dict[str, Any]:
            answer = super().upsert(collection, data, wait, point_ids)
            if point_ids[0] in (10, 20):  # the second and third requests wait for each other
                meet.wait()
            return answer

    qdrant = Meeting()
    report = PointWriter(options(batch_size=10, max_in_flight=3), qdrant).write_batches([table(30)])
    assert report.points_written == 30 and report.requests == 3


def test_a_report_times_the_write_it_reports() -> None:
    started = time.perf_counter()
    report = PointWriter(options(), RecordingQdrant()).write_batches([table(5)])
    assert 0 <= report.seconds <= time.perf_counter() - started


def test_a_failure_counts_the_points_of_every_batch_read_and_says_where_reading_stopped() -> None:
    qdrant = RecordingQdrant(fail_on=3)
    with pytest.raises(QdrantWriteError) as raised:
        PointWriter(options(batch_size=5, max_in_flight=1), qdrant).write_batches(
            [table(10), table(10, start=10), table(10, start=20)])
    error = raised.value
    assert (error.written, error.failed, error.unread_from) == (15, 15, 30)  # the third batch was read, not sent
    qdrant = RecordingQdrant(fail_on=5)  # the last request: every row was read
    with pytest.raises(QdrantWriteError) as raised:
        PointWriter(options(batch_size=5, max_in_flight=2), qdrant).write_batches([table(10), table(20, start=10)])
    error = raised.value
    assert (error.written, error.failed, error.unread_from) == (25, 5, None)


def test_a_row_whose_body_is_exactly_max_batch_bytes_is_written() -> None:
    rows = [{"id": 1, "vector": [1.0, 2.0], "text": "x" * 3000}]
    size = len(encode_body(from_records(rows, options()).batch_body()))
    qdrant = RecordingQdrant()
    PointWriter(options(max_batch_bytes=size), qdrant).write_records([rows])
    assert len(qdrant.bodies[0]) == size and qdrant.sent_ids() == [1]


def test_an_oversized_row_is_refused_before_any_row_of_its_batch_is_sent() -> None:
    rows = [{"id": i, "vector": [1.0, 2.0], "text": "x"} for i in range(3)]
    rows.append({"id": 3, "vector": [1.0, 2.0], "text": "y" * 1400})
    qdrant = RecordingQdrant()
    with pytest.raises(QdrantDataError) as raised:
        PointWriter(options(max_batch_bytes=1024), qdrant).write_records([rows])
    size = len(encode_body(from_records(rows[3:], options()).batch_body()))
    assert str(raised.value) == (
        f"Point 3 alone encodes to {size} bytes, over max_batch_bytes=1024 (Qdrant refuses bodies over 32 MiB by "
        "default); shrink its payload or vectors, or raise max_batch_bytes if the server accepts larger requests "
        "(collection 'docs', first point ids [3])"
    )
    assert qdrant.bodies == []


def test_a_request_takes_every_row_that_fits_its_byte_budget() -> None:
    rows = [{"id": i, "vector": [1.0, 2.0], "text": "x" * (i % 7)} for i in range(40)]
    estimates = [int(b) for b in from_records(rows, options()).row_bytes]
    for k in (5, 13):
        qdrant = RecordingQdrant()
        PointWriter(options(max_batch_bytes=1024 + sum(estimates[:k]), max_in_flight=1), qdrant).write_records([rows])
        assert len(orjson.loads(qdrant.bodies[0])["batch"]["ids"]) == k
        assert sorted(qdrant.sent_ids()) == list(range(40))


def test_ids_seen_holds_every_content_id_of_every_batch() -> None:
    writer = PointWriter(options(id_field=None), RecordingQdrant())
    writer.write_records([[{"vector": [1.0], "n": i}] for i in range(3)])
    assert len(writer.ids_seen) == 3


def test_duplicates_within_and_across_batches_are_all_named() -> None:
    writer = PointWriter(options(), RecordingQdrant())
    with pytest.raises(QdrantWriteError) as raised:
        writer.write_records([[{"id": 1, "vector": [1.0]}], [{"id": 2, "vector": [1.0]}],
                              [{"id": 1, "vector": [1.0]}, {"id": 3, "vector": [1.0]}, {"id": 3, "vector": [1.0]}]])
    cause = raised.value.__cause__
    assert isinstance(cause, QdrantDataError) and sorted(cause.point_ids) == [1, 3] and cause.collection == "docs"
    many = [{"id": i % 12, "vector": [1.0]} for i in range(24)]
    with pytest.raises(QdrantDataError) as raised:
        PointWriter(options(), RecordingQdrant()).write_records([many])
    listed = str(raised.value).split("): ", 1)[1].split("]", 1)[0] + "]"
    assert len(orjson.loads(listed)) == 10 and set(orjson.loads(listed)) <= set(range(12))
    assert "; a later row would silently replace an earlier one, so give every row its own id (" in str(raised.value)


def test_vector_mismatches_name_the_collection_and_the_points() -> None:
    unnamed = {"config": {"params": {"vectors": {"size": 3, "distance": "Cosine"}}}}
    with pytest.raises(QdrantDataError) as raised:
        PointWriter(options(), RecordingQdrant(unnamed)).write_records([[{"id": 4, "vector": [1.0, 2.0]}]])
    assert str(raised.value).startswith("Column 'vector' has vectors of size 2 but collection 'docs' expects size 3 (")
    assert raised.value.point_ids == [4]
    with pytest.raises(QdrantDataError) as raised:
        PointWriter(options(sparse_vector_fields={"s": "s"}), RecordingQdrant(unnamed)).write_records(
            [[{"id": 4, "vector": [1.0, 2.0, 3.0], "s": {"indices": [1], "values": [0.5]}}]])
    assert "has no sparse vector(s) ['s']" in str(raised.value) and raised.value.collection == "docs"
