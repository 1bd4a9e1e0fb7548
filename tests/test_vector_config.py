"""The one reading of a collection's vector config, against collections two servers made from the same
generated configs: the embedded server (Qdrant Edge behind our REST layer) and qdrant-client's local mode.

Reference: the configs themselves (what was asked for: names, sizes, distances, multivectors, sparse
vectors) and what each server reports for them in ``GET /collections/{name}`` (``CollectionInfo``), read
back through ``read_vector_config`` and every caller of it: the writer's checks (``configured_vectors``),
schema inference (``vector_columns_from_collection``), empty versions and copies (``create_body``,
``copy_config_body``) and the Dagster output metadata. Configs are generated with a fixed seed.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from qdrant_client import QdrantClient, models

from dagster_qdrant.collections import copy_config_body
from dagster_qdrant.dagster_io.output_metadata import vector_metadata as _vector_metadata
from dagster_qdrant.http import QdrantHttp
from dagster_qdrant.options import ConnectionOptions
from dagster_qdrant.points.points_to_qdrant import configured_vectors
from dagster_qdrant.spark.schema import MULTI_VECTOR_TYPE, SPARSE_VECTOR_TYPE, vector_columns_from_collection
from dagster_qdrant.vector_config import UNNAMED, read_vector_config

DISTANCES = ["Cosine", "Euclid", "Dot", "Manhattan"]
NAMES = st.sampled_from(["text", "image", "title", "size", "distance", "a-b", "v1"])


@st.composite
def dense_params(draw: st.DrawFn) -> dict[str, Any]:
    params: dict[str, Any] = {"size": draw(st.integers(1, 1536)), "distance": draw(st.sampled_from(DISTANCES))}
    if draw(st.booleans()) and draw(st.booleans()):
        params["multivector_config"] = {"comparator": "max_sim"}
    return params


@st.composite
def vector_configs(draw: st.DrawFn) -> dict[str, Any]:
    """A create-collection body: unnamed, named, sparse only, or mixed dense and sparse vectors."""
    kind = draw(st.sampled_from(["unnamed", "named", "sparse", "unnamed+sparse", "named+sparse", "none"]))
    body: dict[str, Any] = {"vectors": {}}
    if kind.startswith("unnamed"):
        body["vectors"] = draw(dense_params())
    elif kind.startswith("named"):
        body["vectors"] = draw(st.dictionaries(NAMES, dense_params(), min_size=1, max_size=4))
    if "sparse" in kind:
        sparse_names = st.sampled_from(["bm25", "splade", "keywords", "size"])
        body["sparse_vectors"] = {name: {} for name in draw(st.sets(sparse_names, min_size=1, max_size=3))}
    return body


def configured(body: dict[str, Any]) -> tuple[list[tuple[str, int, str, bool]], set[str]]:
    """(name, size, distance, multivector) of each dense vector and the sparse names a body asks for."""
    vectors = body["vectors"]
    named = {UNNAMED: vectors} if isinstance(vectors.get("size"), int) else vectors
    dense = sorted(
        (name, params["size"], params["distance"], "multivector_config" in params) for name, params in named.items()
    )
    return dense, set(body.get("sparse_vectors") or {})


def read(info: dict[str, Any]) -> tuple[list[tuple[str, int, str, bool]], set[str]]:
    config = read_vector_config(info)
    assert config is not None
    dense = sorted((v.name, v.size, v.distance, v.multivector) for v in config.dense)
    return dense, config.sparse_names()


def check_every_reader(info: dict[str, Any], body: dict[str, Any]) -> None:
    """Each caller of the reader sees the configured vectors."""
    dense, sparse = configured(body)
    assert read(info) == (dense, sparse)
    assert configured_vectors(info) == ({name: size for name, size, _, _ in dense}, sparse)
    columns = vector_columns_from_collection(info)
    assert columns is not None
    expected_columns = {("vector" if name == UNNAMED else name, name) for name, *_ in dense}
    expected_columns |= {(name, name) for name in sparse}
    assert {(column.column, column.name) for column in columns} == expected_columns
    multi = {name for name, _, _, multivector in dense if multivector}
    assert {column.name for column in columns if column.data_type == MULTI_VECTOR_TYPE} == multi
    assert {column.name for column in columns if column.data_type == SPARSE_VECTOR_TYPE} == sparse
    metadata = {key: getattr(value, "value", value) for key, value in _vector_metadata(read_vector_config(info)).items()}
    if not dense:
        assert metadata == {}
    elif dense[0][0] == UNNAMED:
        assert metadata == {"vector_size": dense[0][1], "distance": dense[0][2]}
    else:
        assert metadata == {
            "vector_size": {name: size for name, size, _, _ in dense},
            "distance": {name: distance for name, _, distance, _ in dense},
        }


@pytest.fixture(scope="module")
def http(qdrant_url: str, qdrant_api_key: str | None) -> QdrantHttp:
    return QdrantHttp(ConnectionOptions(endpoint=qdrant_url, api_key=qdrant_api_key))


@pytest.fixture(scope="module")
def local() -> QdrantClient:
    return QdrantClient(":memory:")


def local_collection(client: QdrantClient, body: dict[str, Any]) -> dict[str, Any]:
    """Create the body's collection in qdrant-client's local mode; its info as the REST JSON."""
    name = f"c{uuid.uuid4().hex[:12]}"
    vectors = body["vectors"]
    if isinstance(vectors.get("size"), int):
        vectors_config: Any = models.VectorParams.model_validate(vectors)
    else:
        vectors_config = {key: models.VectorParams.model_validate(value) for key, value in vectors.items()}
    sparse = {key: models.SparseVectorParams.model_validate(value) for key, value in (body.get("sparse_vectors") or {}).items()}
    client.create_collection(name, vectors_config=vectors_config, sparse_vectors_config=sparse or None)
    info = client.get_collection(name).model_dump(mode="json", exclude_none=True)
    client.delete_collection(name)
    return info


@settings(derandomize=True, max_examples=300, deadline=None)
@given(body=vector_configs())
def test_the_vector_config_reads_back_what_qdrant_client_local_mode_configured(
    local: QdrantClient, body: dict[str, Any]
) -> None:
    check_every_reader(local_collection(local, body), body)


@settings(derandomize=True, max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=vector_configs())
def test_the_vector_config_reads_back_what_the_embedded_server_and_local_mode_configured(
    http: QdrantHttp, local: QdrantClient, body: dict[str, Any]
) -> None:
    """The same config on both servers; on the embedded one the collection is also copied from the
    reader's ``create_body`` (as an empty version is) and read again."""
    # The embedded server holds no payload-only collection (it says so; local mode does), and refuses a
    # named vector called "size" or "distance" (see the test below).
    assume(body["vectors"] or body.get("sparse_vectors"))
    assume(isinstance(body["vectors"].get("size"), int) or not {"size", "distance"} & set(body["vectors"]))
    check_every_reader(local_collection(local, body), body)
    name = f"t_vector_config_{uuid.uuid4().hex[:12]}"
    http.create_collection(name, body)
    try:
        info = http.collection_info(name)
        assert info is not None
        check_every_reader(info, body)
        copy = f"{name}_copy"
        http.create_collection(copy, (read_vector_config(info) or pytest.fail("no config")).create_body())
        try:
            check_every_reader(http.collection_info(copy) or {}, body)
        finally:
            http.delete_collection(copy)
        assert configured({"vectors": {}, **copy_config_body(info)}) == configured(body)
    finally:
        http.delete_collection(name)


def test_an_info_without_config_reads_as_unknown_not_as_no_vectors() -> None:
    """Servers or proxies that answer with less: callers fall back to what the points show."""
    assert read_vector_config({}) is None and read_vector_config(None) is None
    assert read_vector_config({"config": {}}) is None
    assert vector_columns_from_collection({"status": "green"}) is None
    assert configured_vectors({}) == ({}, set())


@pytest.mark.parametrize("vector_name", ["size", "distance"])
def test_the_embedded_server_accepts_named_vectors_called_like_vector_params_fields(
    http: QdrantHttp, vector_name: str
) -> None:
    """Qdrant's ``VectorsConfig`` is an untagged enum: ``{"size": {...}}`` is a map with one vector named
    ``size`` (qdrant-client's local mode takes it, and the reader reads it so: see the generated test)."""
    body = {"vectors": {vector_name: {"size": 3, "distance": "Dot"}}}
    name = f"t_vector_named_{vector_name}_{uuid.uuid4().hex[:12]}"
    http.create_collection(name, body)
    try:
        check_every_reader(http.collection_info(name) or {}, body)
    finally:
        http.delete_collection(name)
