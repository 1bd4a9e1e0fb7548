"""The one scroll loop (points/scroll.py): every reader goes through it, and it reads exactly the asked points.

References: the input values and Qdrant's documented scroll order (integer ids ascending, then UUIDs
ascending; ``offset`` inclusive), Qdrant's OpenAPI spec and qdrant-client's own ``ScrollRequest`` model
for the bodies, and the embedded server (Qdrant Edge) for the pages.
"""

from __future__ import annotations

import ast
import json
import math
import random
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pyspark.sql.types import LongType, StringType, StructField, StructType
from qdrant_client.http import models

from dagster_qdrant import collections as lifecycle
from dagster_qdrant.http import QdrantHttp
from dagster_qdrant.options import ConnectionOptions
from dagster_qdrant.points import scroll
from dagster_qdrant.points.scroll import scroll_body, scroll_pages
from dagster_qdrant.points.without_spark import read_qdrant_points
from dagster_qdrant.spark.datasource import QdrantDataSource

ROOT = Path(__file__).resolve().parents[1]
SPEC_PATH = ROOT.parent / "shared" / "qdrant" / "openapi-v1.19.json"

_RANDOM = random.Random(11)
INTEGER_IDS = sorted(_RANDOM.sample(range(0, 200), 30))
UUID_IDS = sorted(str(uuid.UUID(int=_RANDOM.getrandbits(128))) for _ in range(20))
QDRANT_ORDER = INTEGER_IDS + UUID_IDS
"""Qdrant's scroll order, from the input values: integers ascending, then UUIDs (lowercase hex sorts as the
128-bit number does)."""
N_OF = {point_id: n for n, point_id in enumerate(QDRANT_ORDER)}


def _http(qdrant_url: str, api_key: str | None) -> QdrantHttp:
    return QdrantHttp(ConnectionOptions(endpoint=qdrant_url, api_key=api_key))


def _fill(http: QdrantHttp, collection: str) -> None:
    http.create_collection(collection, {"vectors": {"size": 2, "distance": "Dot"}})
    shuffled = list(QDRANT_ORDER)
    _RANDOM.shuffle(shuffled)
    points = [{"id": i, "vector": [1.0, float(N_OF[i])], "payload": {"n": N_OF[i], "tag": "t"}} for i in shuffled]
    http.upsert(collection, {"points": points}, wait=True)


# --- every reader goes through the one loop ---------------------------------------------------------------


def _scroll_callers() -> list[tuple[str, str]]:
    """(file, function) of every call of a method named ``scroll`` in the package and the example project.

    The embedded server is left out: it answers scrolls, it does not send them.
    """
    files = [path for path in (ROOT / "dagster_qdrant").rglob("*.py") if "embedded" not in path.parts]
    callers = []
    for path in [*files, ROOT / "definitions.py"]:
        tree = ast.parse(path.read_text())
        for function in ast.walk(tree):
            if not isinstance(function, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            for node in ast.walk(function):
                if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "scroll":
                    callers.append((str(path.relative_to(ROOT)), function.name))
    return sorted(set(callers))


def test_only_the_scroll_loop_calls_the_http_scroll() -> None:
    assert _scroll_callers() == [("dagster_qdrant/points/scroll.py", "scroll_pages")]


def test_only_the_scroll_loop_builds_scroll_bodies() -> None:
    builders = []
    for path in (ROOT / "dagster_qdrant").rglob("*.py"):
        if "embedded" in path.parts:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and getattr(node.func, "id", getattr(node.func, "attr", None)) == "scroll_body":
                builders.append(str(path.relative_to(ROOT)))
    assert builders == ["dagster_qdrant/points/scroll.py"]


@pytest.fixture
def scroll_calls(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every ``QdrantHttp.scroll`` call from now on, as the function that made it (``file:function``)."""
    calls: list[str] = []
    original = QdrantHttp.scroll

    def recording(self: QdrantHttp, collection: str, body: dict, vectors_as_arrays: bool = False) -> Any:
        caller = sys._getframe(1).f_code
        calls.append(f"{Path(caller.co_filename).name}:{caller.co_name}")
        return original(self, collection, body, vectors_as_arrays)

    monkeypatch.setattr(QdrantHttp, "scroll", recording)
    return calls


def _reader(url: str, collection: str, schema: StructType | None = None, **options: str) -> Any:
    source = QdrantDataSource({"endpoint": url, "collection": collection, **options})
    return source.reader(schema or source.schema())


def _read_every_split(url: str, collection: str, **options: str) -> int:
    reader = _reader(url, collection, **options)
    return sum(batch.num_rows for split in reader.partitions() for batch in reader.read(split))


def test_every_reader_scrolls_through_the_one_loop(qdrant_url, qdrant_api_key, collection_name, scroll_calls) -> None:
    http = _http(qdrant_url, qdrant_api_key)
    _fill(http, collection_name)
    copy = collection_name + "_copy"
    http.create_collection(copy, {"vectors": {"size": 2, "distance": "Dot"}})
    given_schema = StructType([StructField("id", StringType()), StructField("n", LongType())])
    readers: dict[str, Callable[[], Any]] = {
        "read_qdrant_points": lambda: list(read_qdrant_points(endpoint=qdrant_url, collection=collection_name)),
        "slice-sampled schema": lambda: _reader(qdrant_url, collection_name, sample_size="5"),
        "reservoir-sampled schema": lambda: _reader(qdrant_url, collection_name, sample_size="5", offset="3"),
        "whole-read schema": lambda: _reader(qdrant_url, collection_name, sample_size="all"),
        "given schema's carried-keys check": lambda: _reader(qdrant_url, collection_name, given_schema),
        "slice splits": lambda: _read_every_split(qdrant_url, collection_name, num_partitions="3", partitioning="slice"),
        "id-range planning and splits": lambda: _read_every_split(
            qdrant_url, collection_name, num_partitions="3", partitioning="id_range"
        ),
        "single split (limit)": lambda: _read_every_split(qdrant_url, collection_name, limit="7", page_size="3"),
        "collection copy (overwrite)": lambda: lifecycle.replace_points(http, collection_name, copy),
    }
    for name, read in readers.items():
        scroll_calls.clear()
        read()
        assert scroll_calls, f"{name} sent no scroll"
        assert set(scroll_calls) == {"scroll.py:scroll_pages"}, f"{name} scrolled outside the loop: {scroll_calls}"


# --- the loop reads exactly the asked points, with no wasted request -------------------------------------

_ids = st.sampled_from(QDRANT_ORDER) | st.integers(0, 210) | st.builds(lambda n: str(uuid.UUID(int=n)), st.integers(0, 2**128 - 1))


def _key(point_id: Any) -> tuple[int, Any]:
    """Qdrant's order for the expected values: integers first, then UUIDs by their 128-bit value."""
    return (0, point_id) if isinstance(point_id, int) else (1, uuid.UUID(point_id).int)


class CountingHttp:
    """The real client, counting requests and keeping their bodies."""

    def __init__(self, http: QdrantHttp) -> None:
        self.http = http
        self.bodies: list[dict] = []

    def scroll(self, collection: str, body: dict, vectors_as_arrays: bool = False) -> Any:
        self.bodies.append(body)
        return self.http.scroll(collection, body, vectors_as_arrays)


@pytest.fixture(scope="module")
def filled(qdrant_url: str, qdrant_api_key: str | None) -> Iterator[tuple[QdrantHttp, str]]:
    http = _http(qdrant_url, qdrant_api_key)
    name = f"t_scroll_loop_{uuid.uuid4().hex[:8]}"
    _fill(http, name)
    yield http, name
    http.delete_collection(name)


@settings(derandomize=True, max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    page_size=st.integers(1, 12),
    limit=st.none() | st.integers(1, 60),
    max_pages=st.none() | st.integers(1, 8),
    start=st.none() | _ids,
    end=st.none() | _ids,
    below=st.none() | st.integers(0, 50),
)
def test_scroll_pages_reads_the_asked_points_in_scroll_order(filled, page_size, limit, max_pages, start, end, below):
    http, collection = filled
    client = CountingHttp(http)
    query = None if below is None else {"must": [{"key": "n", "range": {"lt": below}}]}
    pages = list(
        scroll_pages(
            client, collection, page_size=page_size, filter=query, start=start, end=end, limit=limit, max_pages=max_pages
        )
    )
    matching = [
        point_id
        for point_id in QDRANT_ORDER
        if (start is None or _key(point_id) >= _key(start))
        and (end is None or _key(point_id) < _key(end))
        and (below is None or N_OF[point_id] < below)
    ]
    bound = min(limit or math.inf, (max_pages or math.inf) * page_size)
    expected = matching[: int(min(bound, len(matching)))]
    assert [point["id"] for page in pages for point in page.points] == expected
    assert all(page.points for page in pages), "an empty page was handed over"
    assert len(client.bodies) == max(1, math.ceil(len(expected) / page_size)), "a request was wasted"
    assert all(body["limit"] <= page_size for body in client.bodies)


def test_a_caller_that_stops_early_sends_no_more_requests(filled) -> None:
    http, collection = filled
    client = CountingHttp(http)
    pages = scroll_pages(client, collection, page_size=4)
    next(pages)
    next(pages)
    pages.close()
    assert len(client.bodies) == 2


def test_dense_vectors_come_as_arrays_on_request(filled) -> None:
    http, collection = filled
    (page,) = scroll_pages(http, collection, page_size=3, limit=3, with_vector=True, vectors_as_arrays=True)
    assert [list(point["vector"]) for point in page.points] == [[1.0, 0.0], [1.0, 1.0], [1.0, 2.0]]
    assert type(page.points[0]["vector"]).__module__ == "numpy"


# --- bodies as the spec and qdrant-client define them ----------------------------------------------------

_selection = st.booleans() | st.lists(st.sampled_from(["a", "b", "c.d"]), min_size=1, max_size=3, unique=True)
_filters = st.none() | st.just({}) | st.just({"must": [{"key": "n", "range": {"lt": 3}}]}) | st.just({"should": []})
_order_by = st.none() | st.just("n") | st.builds(
    lambda d, s: {"key": "n", "direction": d, **({"start_from": s} if s is not None else {})},
    st.sampled_from(["asc", "desc"]),
    st.none() | st.integers(-5, 5),
)


@pytest.fixture(scope="module")
def scroll_request_schema() -> Any:
    validator = pytest.importorskip("openapi_schema_validator")
    if not SPEC_PATH.exists():
        pytest.skip(f"Qdrant's OpenAPI spec is not at {SPEC_PATH}: nothing to check bodies against")
    document = json.loads(SPEC_PATH.read_text())
    root = {"$ref": "#/components/schemas/ScrollRequest", "components": document["components"]}
    return validator.OAS30Validator(root)


@settings(derandomize=True, max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    limit=st.integers(1, 10_000),
    with_payload=_selection,
    with_vector=_selection,
    query=_filters,
    offset=st.none() | _ids,
    order_by=_order_by,
)
def test_scroll_bodies_are_scroll_requests(scroll_request_schema, limit, with_payload, with_vector, query, offset, order_by):
    body = scroll_body(
        limit, with_payload=with_payload, with_vector=with_vector, filter=query, offset=offset, order_by=order_by
    )
    assert [error.message for error in scroll_request_schema.iter_errors(body)] == []
    parsed = models.ScrollRequest.model_validate(body)
    assert json.loads(parsed.model_dump_json(exclude_unset=True)) == body, "a field was not what qdrant-client reads"
    assert body["limit"] == limit and ("offset" in body) == (offset is not None)
    assert ("filter" in body) == bool(query) and ("order_by" in body) == (order_by is not None)


def test_the_loop_module_is_free_of_spark_and_dagster() -> None:
    imported = {
        alias.name.split(".")[0]
        for node in ast.walk(ast.parse(Path(scroll.__file__).read_text()))
        if isinstance(node, (ast.Import, ast.ImportFrom))
        for alias in (node.names if isinstance(node, ast.Import) else [ast.alias(node.module or "")])
    }
    assert not imported & {"pyspark", "dagster", "dagster_qdrant"}
