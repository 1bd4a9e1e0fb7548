"""Collection configuration: Qdrant's `CreateCollection` JSON -> Qdrant Edge `EdgeConfig`, and back to
the `CollectionConfig` that `GET /collections/{name}` reports.

The REST config is kept as given (normalized) in a small JSON file beside the shard, so a collection
reports the parameters it was created with, as Qdrant does.
"""

from __future__ import annotations

from typing import Any

import qdrant_edge as edge

from dagster_qdrant.embedded.errors import bad_json, invalid

DISTANCES = {
    "Cosine": edge.Distance.Cosine,
    "Euclid": edge.Distance.Euclid,
    "Dot": edge.Distance.Dot,
    "Manhattan": edge.Distance.Manhattan,
}
DATATYPES = {
    "float32": edge.VectorStorageDatatype.Float32,
    "float16": edge.VectorStorageDatatype.Float16,
    "uint8": edge.VectorStorageDatatype.Uint8,
}
MAX_VECTOR_SIZE = 65536
_VECTOR_KEYS = ("size", "distance", "hnsw_config", "quantization_config", "on_disk", "datatype", "multivector_config")

DEFAULT_HNSW = {"m": 16, "ef_construct": 100, "full_scan_threshold": 10000, "max_indexing_threads": 0, "on_disk": False}
DEFAULT_OPTIMIZERS = {
    "deleted_threshold": 0.2,
    "vacuum_min_vector_number": 1000,
    "default_segment_number": 0,
    "max_segment_size": None,
    "memmap_threshold": None,
    "indexing_threshold": 10000,
    "flush_interval_sec": 5,
    "max_optimization_threads": None,
}
DEFAULT_WAL = {"wal_capacity_mb": 32, "wal_segments_ahead": 0}


def normalize_create_body(body: Any) -> dict[str, Any]:
    """Validate a `CreateCollection` body; return the REST config to persist (params, hnsw, optimizers, wal)."""
    if body is None:
        body = {}
    if not isinstance(body, dict):
        raise bad_json("collection config must be a JSON object with `vectors` and/or `sparse_vectors`")
    vectors = body.get("vectors")
    if vectors is None:
        normalized_vectors: Any = {}
    elif isinstance(vectors, dict) and ("size" in vectors or "distance" in vectors):
        normalized_vectors = _vector_params(vectors, "vectors")
    elif isinstance(vectors, dict):
        normalized_vectors = {name: _vector_params(params, f"vectors.{name}") for name, params in vectors.items()}
    else:
        raise bad_json("`vectors` must be {size, distance} or an object of name -> {size, distance}")
    sparse = body.get("sparse_vectors") or {}
    if not isinstance(sparse, dict):
        raise bad_json("`sparse_vectors` must be an object of name -> {index, modifier}")
    params: dict[str, Any] = {
        "vectors": normalized_vectors,
        "shard_number": 1,
        "replication_factor": 1,
        "write_consistency_factor": 1,
        "on_disk_payload": body.get("on_disk_payload") is not False,
    }
    if sparse:
        params["sparse_vectors"] = {name: _sparse_params(value, name) for name, value in sparse.items()}
    return {
        "params": params,
        "hnsw_config": {**DEFAULT_HNSW, **_given(body.get("hnsw_config"))},
        "optimizer_config": {**DEFAULT_OPTIMIZERS, **_given(body.get("optimizers_config"))},
        "wal_config": {**DEFAULT_WAL, **_given(body.get("wal_config"))},
        "quantization_config": body.get("quantization_config"),
        "strict_mode_config": {"enabled": False},
        "metadata": body.get("metadata"),
    }


def _given(value: Any) -> dict[str, Any]:
    return {key: item for key, item in value.items() if item is not None} if isinstance(value, dict) else {}


def _vector_params(params: Any, where: str) -> dict[str, Any]:
    if not isinstance(params, dict):
        raise bad_json(f"`{where}` must be an object {{size, distance}}")
    size, distance = params.get("size"), params.get("distance")
    if not isinstance(size, int) or isinstance(size, bool):
        raise bad_json(f"`{where}.size` must be a positive integer, got {size!r}")
    if not 1 <= size <= MAX_VECTOR_SIZE:
        raise invalid(f"{where}.size: value {size} invalid, must be from 1 to {MAX_VECTOR_SIZE}")
    if distance not in DISTANCES:
        raise bad_json(f"unknown variant `{distance}` for `{where}.distance`, expected one of {list(DISTANCES)}")
    datatype = params.get("datatype")
    if datatype is not None and datatype not in DATATYPES:
        raise bad_json(f"unknown variant `{datatype}` for `{where}.datatype`, expected one of {list(DATATYPES)}")
    multivector = params.get("multivector_config")
    if multivector is not None and (not isinstance(multivector, dict) or multivector.get("comparator") != "max_sim"):
        raise bad_json(f"`{where}.multivector_config` must be {{\"comparator\": \"max_sim\"}}")
    return {key: params[key] for key in _VECTOR_KEYS if params.get(key) is not None}


def _sparse_params(params: Any, name: str) -> dict[str, Any]:
    if params is None:
        return {}
    if not isinstance(params, dict):
        raise bad_json(f"`sparse_vectors.{name}` must be an object {{index, modifier}}")
    modifier = params.get("modifier")
    if modifier not in (None, "none", "idf"):
        raise bad_json(f"unknown variant `{modifier}` for `sparse_vectors.{name}.modifier`, expected `none` or `idf`")
    return {key: params[key] for key in ("index", "modifier") if params.get(key) is not None}


def edge_config(rest_config: dict[str, Any]) -> edge.EdgeConfig:
    """The Edge shard config for a normalized REST config."""
    params = rest_config["params"]
    vectors = params["vectors"]
    if "size" in vectors:
        dense: Any = _edge_vector(vectors)
    else:
        dense = {name: _edge_vector(value) for name, value in vectors.items()}
    sparse = {name: _edge_sparse(value) for name, value in params.get("sparse_vectors", {}).items()}
    return edge.EdgeConfig(vectors=dense, sparse_vectors=sparse or None, on_disk_payload=params["on_disk_payload"])


def _edge_vector(params: dict[str, Any]) -> edge.EdgeVectorParams:
    multivector = params.get("multivector_config")
    datatype = params.get("datatype")
    return edge.EdgeVectorParams(
        size=params["size"],
        distance=DISTANCES[params["distance"]],
        on_disk=params.get("on_disk"),
        multivector_config=edge.MultiVectorConfig(edge.MultiVectorComparator.MaxSim) if multivector else None,
        datatype=DATATYPES[datatype] if datatype else None,
    )


def _edge_sparse(params: dict[str, Any]) -> edge.EdgeSparseVectorParams:
    index = params.get("index") or {}
    return edge.EdgeSparseVectorParams(
        full_scan_threshold=index.get("full_scan_threshold"),
        on_disk=index.get("on_disk"),
        modifier=edge.Modifier.Idf if params.get("modifier") == "idf" else None,
    )


def collection_info(rest_config: dict[str, Any], shard_info: Any) -> dict[str, Any]:
    """`CollectionInfo` JSON from the stored REST config and the shard's live counters."""
    config = {key: value for key, value in rest_config.items() if value is not None}
    return {
        "status": "green",
        "optimizer_status": "ok",
        "warnings": [],
        "indexed_vectors_count": shard_info.indexed_vectors_count,
        "points_count": shard_info.points_count,
        "segments_count": shard_info.segments_count,
        "config": config,
        "payload_schema": {
            field: _index_info(info) for field, info in shard_info.payload_schema.items()
        },
        "update_queue": {"length": 0},
    }


def _index_info(info: Any) -> dict[str, Any]:
    return {"data_type": str(info.data_type).rsplit(".", 1)[-1].lower(), "points": info.points}
