"""Every request dagster_qdrant sends is one Qdrant's OpenAPI spec (v1.19) defines, with a body its schema accepts.

The requests are not built by hand: the real code (the point writer in every ``payload_format`` x
``write_method``, Spark reads and writes, the IO manager's alias swaps and partition replaces, every
``QdrantHttp`` endpoint) runs against the embedded server through a recording proxy, which also sees what
Spark's Python workers send. Each recorded request is then looked up in the spec by method and path and its
body validated against the operation's request schema (``openapi-schema-validator``, OpenAPI 3.0 rules,
``$ref``s resolved from the spec), and its query parameters against the operation's parameters. Upserts
must go to an operation that writes: ``POST .../points`` is Qdrant's *retrieve* and would lose them.

The spec lives outside the repository (../shared/qdrant/openapi-v1.19.json from the project root, or the
file named by ``QDRANT_OPENAPI_SPEC``); the tests skip, saying so, where that file is absent.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

import numpy as np
import pyarrow as pa
import pytest

from dagster_qdrant.http import QdrantHttp
from dagster_qdrant.options import ConnectionOptions, build_qdrant_write_config
from dagster_qdrant.points.without_spark import read_qdrant_points, write_qdrant_points
from faultproxy import FaultProxy, SeenRequest

openapi_schema_validator = pytest.importorskip("openapi_schema_validator")

SPEC_PATH = Path(
    os.environ.get("QDRANT_OPENAPI_SPEC")  # where the project is checked out elsewhere
    or Path(__file__).resolve().parents[1].parent / "shared" / "qdrant" / "openapi-v1.19.json"
)
WRITE_OPERATIONS = {"upsert_points", "batch_update"}
"""The spec's operations that store points sent in the body (upsert, or a batch of update operations)."""
PAYLOAD_FORMATS = ("batch", "points", "auto")
WRITE_METHODS = ("put", "post", "auto")


class Spec:
    """The spec's operations by (method, path) and a validator for any of its schemas."""

    def __init__(self, document: dict[str, Any]) -> None:
        self.document = document
        operations = []
        for template, item in document["paths"].items():
            pattern = re.compile("^" + re.sub(r"\\\{[^}]+\\\}", "([^/]+)", re.escape(template)) + "$")
            for method, operation in item.items():
                operations.append((template.count("{"), method.upper(), pattern, template, operation))
        self.operations = sorted(operations, key=lambda entry: entry[0])  # literal segments win

    def operation(self, method: str, path: str) -> tuple[str, dict[str, Any]] | None:
        for _, operation_method, pattern, template, operation in self.operations:
            if operation_method == method and pattern.match(path):
                return template, operation
        return None

    def errors(self, value: Any, schema: dict[str, Any]) -> list[str]:
        # refs inside the spec are "#/components/...": validate against a document that carries them
        root = {**schema, "components": self.document["components"]}
        validator = openapi_schema_validator.OAS30Validator(root)
        return [f"{'/'.join(map(str, error.absolute_path))}: {error.message[:300]}" for error in validator.iter_errors(value)]


@pytest.fixture(scope="module")
def spec() -> Spec:
    if not SPEC_PATH.exists():
        pytest.skip(f"Qdrant's OpenAPI spec is not at {SPEC_PATH}: nothing to check requests against")
    return Spec(json.loads(SPEC_PATH.read_text()))


@pytest.fixture
def recorder(qdrant_url: str) -> Iterator[FaultProxy]:
    """A proxy that forwards everything honestly and keeps every request with its body."""
    with FaultProxy(qdrant_url, keep_bodies=True) as proxy:
        yield proxy


def problems_of(spec: Spec, seen: SeenRequest) -> list[str]:
    """Why a recorded request is not one the spec defines (empty when it is)."""
    url = urlsplit(seen.path)
    where = f"{seen.method} {url.path}"
    found = spec.operation(seen.method, url.path)
    if found is None:
        return [f"{where}: no such operation in Qdrant's API"]
    template, operation = found
    problems = []
    declared = {p["name"]: p for p in operation.get("parameters", []) if p["in"] == "query"}
    for name, value in parse_qsl(url.query):
        if name not in declared:
            problems.append(f"{where}: query parameter {name!r} is not one of {sorted(declared)}")
            continue
        problems += [f"{where}?{name}: {e}" for e in spec.errors(_query_value(value), declared[name]["schema"])]
    content = (operation.get("requestBody") or {}).get("content", {}).get("application/json")
    if content is None:
        if seen.body:
            problems.append(f"{where} ({template}) takes no body, got {seen.body[:80]!r}")
        return problems
    if not seen.body:
        return problems + ([f"{where}: a body is required"] if operation["requestBody"].get("required") else [])
    body = json.loads(seen.body)
    return problems + [f"{where} body: {e}" for e in spec.errors(body, content["schema"])]


def _query_value(value: str) -> Any:
    """A query string value as the JSON value it stands for (``true``, ``3``), else the string."""
    try:
        return json.loads(value)
    except ValueError:
        return unquote(value)


def operation_ids(spec: Spec, requests: list[SeenRequest]) -> list[str]:
    ids = []
    for seen in requests:
        found = spec.operation(seen.method, urlsplit(seen.path).path)
        ids.append(found[1]["operationId"] if found else f"(undefined {seen.method} {seen.path})")
    return ids


def carries_points(seen: SeenRequest) -> bool:
    """A request sending points (not a collection's vector config)."""
    return "/points" in seen.path and (b'"vectors"' in seen.body or b'"vector"' in seen.body)


def assert_all_defined(spec: Spec, requests: list[SeenRequest]) -> None:
    assert requests, "nothing was recorded"
    problems = [problem for seen in requests for problem in problems_of(spec, seen)]
    assert problems == [], "\n".join(problems[:20])


def rows(count: int, start: int = 0) -> list[dict[str, Any]]:
    generator = np.random.default_rng(start)
    return [
        {"id": start + i, "vector": generator.normal(size=4).astype(np.float32), "title": f"doc {start + i}",
         "rank": i % 3, "tags": ["a", None], "nested": {"x": [1.5, None]}, "missing": None}
        for i in range(count)
    ]


@pytest.mark.parametrize("write_method", WRITE_METHODS)
@pytest.mark.parametrize("payload_format", PAYLOAD_FORMATS)
def test_every_write_request_is_a_write_qdrant_defines(
    spec: Spec, recorder: FaultProxy, qdrant_api_key: str | None, payload_format: str, write_method: str
) -> None:
    name = f"spec_write_{payload_format}_{write_method}"
    http = QdrantHttp(ConnectionOptions(endpoint=recorder.url, api_key=qdrant_api_key))
    http.delete_collection(name)
    options = build_qdrant_write_config(
        recorder.url, name, api_key=qdrant_api_key, create_collection=True, batch_size=7,
        payload_format=payload_format, write_method=write_method, max_in_flight=2,
    )
    assert write_qdrant_points(rows(20), options).points_written == 20
    assert http.count(name) == 20

    upserts = [seen for seen in recorder.requests if carries_points(seen)]
    assert len(upserts) >= 3
    assert set(operation_ids(spec, upserts)) <= WRITE_OPERATIONS, operation_ids(spec, upserts)
    expected = "batch_update" if write_method == "post" else "upsert_points"
    assert set(operation_ids(spec, upserts)) == {expected}
    assert_all_defined(spec, recorder.requests)


@pytest.mark.parametrize("write_method", WRITE_METHODS)
def test_named_and_sparse_vector_writes_match_the_spec(
    spec: Spec, recorder: FaultProxy, qdrant_api_key: str | None, write_method: str
) -> None:
    name = f"spec_named_{write_method}"
    http = QdrantHttp(ConnectionOptions(endpoint=recorder.url, api_key=qdrant_api_key))
    http.delete_collection(name)
    table = pa.table({
        "id": ["6f1c5bbf-8a38-4b9b-9c6a-0c4c0d6f1d2a", "00000000-0000-0000-0000-000000000002"],
        "text_vec": [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]],
        "image_vec": [[0.5, 0.5], [0.25, 0.75]],
        "terms": [{"indices": [1, 7], "values": [0.5, 2.0]}, {"indices": [3], "values": [1.0]}],
        "title": ["a", "b"],
    })
    for payload_format in PAYLOAD_FORMATS:
        options = build_qdrant_write_config(
            recorder.url, name, api_key=qdrant_api_key, create_collection=True, distance="Dot",
            vector_fields={"text_vec": "text", "image_vec": "image"}, sparse_vector_fields={"terms": "bm25"},
            payload_format=payload_format, write_method=write_method,
        )
        assert write_qdrant_points(table, options).points_written == 2
    assert http.count(name) == 2
    upserts = [seen for seen in recorder.requests if carries_points(seen)]
    assert len(upserts) >= 3 and set(operation_ids(spec, upserts)) <= WRITE_OPERATIONS
    assert_all_defined(spec, recorder.requests)


def test_every_http_client_endpoint_sends_what_the_spec_defines(
    spec: Spec, recorder: FaultProxy, qdrant_api_key: str | None
) -> None:
    http = QdrantHttp(ConnectionOptions(endpoint=recorder.url, api_key=qdrant_api_key))
    name, alias = "spec_endpoints", "spec_endpoints_alias"
    http.delete_collection(name)
    assert http.server_version() >= (1, 0, 0)
    http.create_collection(name, {"vectors": {"size": 4, "distance": "Dot"}, "sparse_vectors": {"bm25": {}}})
    assert http.create_collection(name, {"vectors": {"size": 4, "distance": "Dot"}}, exist_ok=True) is False
    assert http.collection_exists(name) and http.collection_info(name) is not None
    vectors = np.eye(4, dtype=np.float32)
    http.upsert(name, {"batch": {"ids": [1, 2, 3, 4], "vectors": vectors, "payloads": [{"n": i} for i in range(4)]}})
    http.batch_update(name, {"operations": [
        {"upsert": {"points": [{"id": 5, "vector": {"": [1.0, 0, 0, 0], "bm25": {"indices": [2], "values": [0.5]}},
                                "payload": {"n": 5}}]}},
        {"delete": {"points": [5]}},
    ]})
    http.create_payload_index(name, "n", "integer")
    http.create_payload_index(name, "k", "keyword", wait=False)
    assert http.count(name, {"must": [{"key": "n", "range": {"gte": 2}}]}) == 2
    assert http.count(name, exact=False) == 4
    points, _ = http.scroll(name, {"limit": 2, "with_payload": True, "with_vector": True})
    http.scroll(name, {"limit": 2, "offset": 3, "filter": {"must": [{"key": "n", "match": {"any": [1, 3]}}]}}, True)
    assert http.query(name, {"query": [0.0, 0.0, 1.0, 0.0], "limit": 1})[0]["id"] == 3
    read = list(read_qdrant_points(endpoint=recorder.url, collection=name, api_key=qdrant_api_key, with_vectors=True))
    assert [point["id"] for point in read] == [1, 2, 3, 4]
    http.delete_points(name, {"points": [1]})
    http.delete_points(name, {"filter": {"must": [{"key": "n", "match": {"value": 3}}]}}, wait=False)
    http.delete_points(name, {"filter": {}})
    for leftover in http.list_aliases():
        if leftover["alias_name"] == alias:
            http.update_aliases([{"delete_alias": {"alias_name": alias}}])
    http.update_aliases([{"create_alias": {"collection_name": name, "alias_name": alias}}])
    http.update_aliases([{"rename_alias": {"old_alias_name": alias, "new_alias_name": alias + "2"}}])
    http.update_aliases([{"delete_alias": {"alias_name": alias + "2"}}])
    assert http.collection_aliases(name) == []
    assert http.delete_collection(name) is True
    assert http.collection_info(name) is None
    assert_all_defined(spec, recorder.requests)


def test_spark_writes_reads_and_io_manager_requests_match_the_spec(
    spec: Spec, recorder: FaultProxy, qdrant_api_key: str | None, spark: Any
) -> None:
    from dagster import StaticPartitionsDefinition, build_input_context, build_output_context

    from dagster_qdrant.dagster_io.io_manager import QdrantPySparkIOManager
    from dagster_qdrant.dagster_io.resources import QdrantResource, QdrantWriteConfig

    frame = spark.range(12).selectExpr(
        "id", "concat('doc ', id) as text", "if(id % 2 = 0, 'a', 'b') as topic",
        "array(cast(id as float), 1.0f, 0.5f) as vector",
    )
    name = "spec_spark"
    QdrantHttp(ConnectionOptions(endpoint=recorder.url, api_key=qdrant_api_key)).delete_collection(name)
    config = {"endpoint": recorder.url, "collection": name, "create_collection": True, "write_method": "post"}
    if qdrant_api_key:
        config["api_key"] = qdrant_api_key
    frame.write.format("qdrant").option("qdrant.config", json.dumps(config)).mode("append").save()
    frame.write.format("qdrant").option("qdrant.config", json.dumps(config)).mode("overwrite").save()
    read = spark.read.format("qdrant").option("qdrant.config", json.dumps({**config, "num_partitions": 2})).load(name)
    assert read.where("topic = 'a'").count() == 6

    io_manager = QdrantPySparkIOManager(
        qdrant=QdrantResource(endpoint=recorder.url, api_key=qdrant_api_key),
        write=QdrantWriteConfig(batch_size=5, write_method="post"),
        progress_interval=3600,
    )
    parted = {"partition_key": "x", "asset_partitions_def": StaticPartitionsDefinition(["x", "y"])}
    # twice unpartitioned (the second swaps the alias in one request), twice partitioned (the first creates
    # the collection and its index, the second replaces the partition: delete by filter)
    for asset, partitions in (("spec_asset", {}), ("spec_asset", {}), ("spec_parted", parted), ("spec_parted", parted)):
        with build_output_context(asset_key=asset, **partitions) as context:
            io_manager.handle_output(context, frame)
    upstream = build_output_context(asset_key="spec_parted")
    with build_input_context(asset_key="spec_parted", upstream_output=upstream, **parted) as context:
        assert io_manager.load_input(context).count() == 12
    operations = set(operation_ids(spec, recorder.requests))
    assert {"batch_update", "delete_points", "update_aliases", "create_field_index", "scroll_points"} <= operations
    upserts = [seen for seen in recorder.requests if carries_points(seen)]
    assert upserts and set(operation_ids(spec, upserts)) == {"batch_update"}
    assert_all_defined(spec, recorder.requests)
