"""Collection configuration: Qdrant's `CreateCollection` JSON -> Qdrant Edge `EdgeConfig`, and back to
the `CollectionConfig` that `GET /collections/{name}` reports.

The REST config is kept as given (normalized) in a small JSON file beside the shard, so a collection
reports the parameters it was created with, as Qdrant does.
"""

from __future__ import annotations

from typing import Any

import qdrant_edge as edge

from dagster_qdrant.embedded.engine_settings import (
    check_hnsw,
    check_quantization,
    config_warnings,
    edge_hnsw,
    edge_quantization,
    is_single_vector,
    named_vectors,
)
from dagster_qdrant.embedded.errors import bad_json, bad_request, invalid
from dagster_qdrant.embedded.payload_index import index_info_json

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
_COUNT_FIELDS = ("shard_number", "replication_factor", "write_consistency_factor")
DEFAULT_WAL = {"wal_capacity_mb": 32, "wal_segments_ahead": 0}


def normalize_create_body(body: Any) -> dict[str, Any]:
    """Validate a `CreateCollection` body; return the REST config to persist (params, hnsw, optimizers, wal)."""
    if body is None:
        body = {}
    if not isinstance(body, dict):
        raise bad_json("collection config must be a JSON object with `vectors` and/or `sparse_vectors`")
    body = with_aliases(body)
    _refuse_unserved(body)
    vectors = body.get("vectors")
    if vectors is None:
        normalized_vectors: Any = {}
    elif is_single_vector(vectors):
        normalized_vectors = _vector_params(vectors, "vectors")
    elif isinstance(vectors, dict):
        normalized_vectors = {name: _vector_params(params, f"vectors.{name}") for name, params in vectors.items()}
    else:
        raise bad_json("`vectors` must be {size, distance} or an object of name -> {size, distance}")
    sparse = body.get("sparse_vectors") or {}
    if not isinstance(sparse, dict):
        raise bad_json("`sparse_vectors` must be an object of name -> {index, modifier}")
    _check_vector_names(normalized_vectors, sparse)
    params: dict[str, Any] = {
        "vectors": normalized_vectors,
        **{key: _replica_count(body, key) for key in _COUNT_FIELDS},
        "on_disk_payload": body.get("on_disk_payload") is not False,
    }
    if sparse:
        params["sparse_vectors"] = {name: _sparse_params(value, name) for name, value in sparse.items()}
    metadata = body.get("metadata")
    if metadata is not None and not isinstance(metadata, dict):
        raise bad_json(f"`metadata` must be an object, got {metadata!r}")
    quantization = body.get("quantization_config")
    return {
        "params": params,
        "hnsw_config": {**DEFAULT_HNSW, **check_hnsw(body.get("hnsw_config"), "hnsw_config")},
        "optimizer_config": {**DEFAULT_OPTIMIZERS, **_given(body.get("optimizers_config"))},
        "wal_config": {**DEFAULT_WAL, **_given(body.get("wal_config"))},
        "quantization_config": None if quantization is None else check_quantization(quantization, "quantization_config"),
        "strict_mode_config": {"enabled": False},
        "metadata": metadata,
    }


# Other spellings Qdrant accepts for fields of CreateCollection and UpdateCollection (serde aliases).
FIELD_ALIASES = {"quantization": "quantization_config", "optimizer_config": "optimizers_config"}


def with_aliases(body: dict[str, Any]) -> dict[str, Any]:
    """`body` with aliased fields under their canonical names (the canonical one wins when both are given)."""
    renamed = dict(body)
    for alias, name in FIELD_ALIASES.items():
        value = renamed.pop(alias, None)
        if renamed.get(name) is None and value is not None:
            renamed[name] = value
    return renamed


def _refuse_unserved(body: dict[str, Any]) -> None:
    """Settings the embedded server would silently not honour are refused, saying so."""
    if body.get("sharding_method") not in (None, "auto"):
        raise bad_request("custom sharding is not supported by the embedded server (one local shard); use `auto`")
    strict = body.get("strict_mode_config")
    if isinstance(strict, dict) and strict.get("enabled"):
        raise bad_request("strict mode is not supported by the embedded server (its limits would not be enforced)")


def _replica_count(body: dict[str, Any], key: str) -> int:
    """`shard_number`, `replication_factor`, `write_consistency_factor`: u32 (400 otherwise) and at least 1
    (422), as Qdrant checks them; the one local shard serves whatever count is asked for."""
    value = body.get(key)
    if value is None:
        return 1
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value < 2**32:
        raise bad_json(f"invalid value: {value!r}, expected u32 for `{key}`")
    if value < 1:
        raise invalid(f"{key}: value {value} invalid, must be 1 or larger")
    return value


def _check_vector_names(dense: dict[str, Any], sparse: dict[str, Any]) -> None:
    """Dense and sparse vectors share one namespace (Qdrant refuses a name used by both)."""
    if "" in sparse:
        raise bad_request("Sparse vector name cannot be empty")
    dense_names = list(named_vectors(dense))
    duplicate = next((name for name in dense_names if name in sparse), None)
    if duplicate is not None:
        raise bad_request(f"Dense and sparse vector names must be unique - duplicate found with '{duplicate}'")


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
    result = {key: params[key] for key in _VECTOR_KEYS if params.get(key) is not None}
    if "hnsw_config" in result:
        result["hnsw_config"] = check_hnsw(result["hnsw_config"], f"{where}.hnsw_config")
    if "quantization_config" in result:
        result["quantization_config"] = check_quantization(result["quantization_config"], f"{where}.quantization_config")
    return result


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
    hnsw = rest_config["hnsw_config"]
    if is_single_vector(vectors):
        dense: Any = _edge_vector(vectors, hnsw)
    else:
        dense = {name: _edge_vector(value, hnsw) for name, value in vectors.items()}
    sparse = {name: _edge_sparse(value) for name, value in params.get("sparse_vectors", {}).items()}
    return edge.EdgeConfig(
        vectors=dense,
        sparse_vectors=sparse or None,
        on_disk_payload=params["on_disk_payload"],
        hnsw_config=edge_hnsw(hnsw),
        quantization_config=edge_quantization(rest_config.get("quantization_config")),
        optimizers=_edge_optimizers(rest_config["optimizer_config"]),
    )


def _edge_optimizers(optimizers: dict[str, Any]) -> edge.EdgeOptimizersConfig:
    """The optimizer settings the engine takes (the others only matter to a Qdrant cluster's scheduler)."""
    keys = ("deleted_threshold", "vacuum_min_vector_number", "default_segment_number", "max_segment_size", "indexing_threshold")
    return edge.EdgeOptimizersConfig(**{key: optimizers[key] for key in keys if optimizers.get(key) is not None})


def _edge_vector(params: dict[str, Any], collection_hnsw: dict[str, Any]) -> edge.EdgeVectorParams:
    multivector = params.get("multivector_config")
    datatype = params.get("datatype")
    return edge.EdgeVectorParams(
        size=params["size"],
        distance=DISTANCES[params["distance"]],
        on_disk=params.get("on_disk"),
        multivector_config=edge.MultiVectorConfig(edge.MultiVectorComparator.MaxSim) if multivector else None,
        datatype=DATATYPES[datatype] if datatype else None,
        quantization_config=edge_quantization(params.get("quantization_config")),
        hnsw_config=edge_hnsw(collection_hnsw, params["hnsw_config"]) if params.get("hnsw_config") else None,
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
    config = {key: value for key, value in rest_config.items() if value is not None or key == "quantization_config"}
    info: dict[str, Any] = {"status": "green", "optimizer_status": "ok"}
    warnings = config_warnings(rest_config)
    if warnings:  # Qdrant leaves `warnings` out when there are none
        info["warnings"] = warnings
    return {
        **info,
        "indexed_vectors_count": shard_info.indexed_vectors_count,
        "points_count": shard_info.points_count,
        "segments_count": shard_info.segments_count,
        "config": config,
        "payload_schema": {
            field: index_info_json(info) for field, info in shard_info.payload_schema.items()
        },
        "update_queue": {"length": 0},
    }

