"""`PATCH /collections/{name}` (Qdrant's `UpdateCollection`): a diff applied to the stored REST config.

Every part of the body is checked before anything changes, then the new config is returned whole; the
store persists it and reopens the shard with it, so the engine's config holds the new index settings (HNSW,
quantization, on-disk storage; see `engine_settings` for when they apply). `metadata` merges
key by key and a key set to null is removed; a quantization config of `"Disabled"` removes it.
Strict mode is not enforced by the embedded server, so enabling it is refused rather than echoed.
"""

from __future__ import annotations

import copy
from typing import Any

from dagster_qdrant.embedded.config import with_aliases
from dagster_qdrant.embedded.engine_settings import check_hnsw, check_quantization, named_vectors, without_nulls
from dagster_qdrant.embedded.errors import ApiError, bad_json, bad_request, invalid

_BODY_KEYS = (
    "vectors", "optimizers_config", "params", "hnsw_config", "quantization_config", "sparse_vectors",
    "strict_mode_config", "metadata",
)
_VECTOR_DIFF_KEYS = ("hnsw_config", "quantization_config", "on_disk", "memory")
_PARAMS_DIFF_KEYS = ("replication_factor", "write_consistency_factor", "read_fan_out_factor", "read_fan_out_delay_ms", "on_disk_payload", "payload")


def apply_update(rest_config: dict[str, Any], body: Any) -> dict[str, Any]:
    """The REST config after the `UpdateCollection` diff `body` (the given config is not modified)."""
    if body is None:
        body = {}
    if not isinstance(body, dict):
        raise bad_json("collection update must be a JSON object")
    body = with_aliases(body)
    unknown = sorted(key for key in body if key not in _BODY_KEYS)
    if unknown:
        raise bad_json(f"unknown field(s) {unknown}, expected {list(_BODY_KEYS)}")
    config = copy.deepcopy(rest_config)
    if body.get("vectors") is not None:
        _update_vectors(config["params"], body["vectors"])
    if body.get("params") is not None:
        _update_params(config["params"], body["params"])
    if body.get("hnsw_config") is not None:
        config["hnsw_config"].update(check_hnsw(body["hnsw_config"], "hnsw_config"))
    if body.get("optimizers_config") is not None:
        if not isinstance(body["optimizers_config"], dict):
            raise bad_json("`optimizers_config` must be an object")
        config["optimizer_config"].update(without_nulls(body["optimizers_config"]))
    if body.get("quantization_config") is not None:
        config["quantization_config"] = _quantization_diff(body["quantization_config"], "quantization_config")
    if body.get("sparse_vectors") is not None:
        _update_sparse(config["params"], body["sparse_vectors"])
    if body.get("strict_mode_config") is not None:
        _check_strict_mode(body["strict_mode_config"])
    if body.get("metadata") is not None:
        config["metadata"] = _merge_metadata(config.get("metadata"), body["metadata"])
    return config


def _update_vectors(params: dict[str, Any], diff: Any) -> None:
    if not isinstance(diff, dict):
        raise bad_json("`vectors` must be an object of vector name -> {hnsw_config, quantization_config, on_disk}")
    vectors = params["vectors"]
    named = named_vectors(vectors)
    for name, change in diff.items():
        if name not in named:
            raise bad_request(f"Not existing vector name error: {name}")
        if not isinstance(change, dict):
            raise bad_json(f"`vectors.{name}` must be an object, got {change!r}")
        unknown = sorted(key for key in change if key not in _VECTOR_DIFF_KEYS)
        if unknown:
            raise bad_json(f"unknown field(s) {unknown} in `vectors.{name}`, expected {list(_VECTOR_DIFF_KEYS)}")
        target = named[name]
        if change.get("hnsw_config") is not None:
            hnsw = check_hnsw(change["hnsw_config"], f"vectors.{name}.hnsw_config")
            # an empty object unsets the vector's own HNSW config (the spec's VectorParamsDiff)
            target["hnsw_config"] = {**target.get("hnsw_config", {}), **hnsw} if hnsw else None
        if change.get("quantization_config") is not None:
            target["quantization_config"] = _quantization_diff(change["quantization_config"], f"vectors.{name}.quantization_config")
        for key in ("on_disk", "memory"):
            if change.get(key) is not None:
                target[key] = change[key]
        for key in ("hnsw_config", "quantization_config"):
            if target.get(key) is None:
                target.pop(key, None)


def _quantization_diff(value: Any, where: str) -> dict[str, Any] | None:
    """A `QuantizationConfigDiff`: a quantization config, or `"Disabled"` to remove it."""
    if value == "Disabled":
        return None
    return check_quantization(value, where)


def _update_params(params: dict[str, Any], diff: Any) -> None:
    if not isinstance(diff, dict):
        raise bad_json("`params` must be an object")
    unknown = sorted(key for key in diff if key not in _PARAMS_DIFF_KEYS)
    if unknown:
        raise bad_json(f"unknown field(s) {unknown} in `params`, expected {list(_PARAMS_DIFF_KEYS)}")
    for key, value in without_nulls(diff).items():
        if key == "on_disk_payload":
            if not isinstance(value, bool):
                raise bad_json(f"invalid type: {value!r}, expected a boolean for `params.on_disk_payload`")
        elif key != "payload":
            if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value < 2**32:
                raise bad_json(f"invalid value: {value!r}, expected u32 for `params.{key}`")
            if value < 1 and key in ("replication_factor", "write_consistency_factor"):
                raise invalid(f"params.{key}: value {value} invalid, must be 1 or larger")
        params[key] = value


def _update_sparse(params: dict[str, Any], diff: Any) -> None:
    sparse = params.get("sparse_vectors") or {}
    if not isinstance(diff, dict):
        raise bad_json("`sparse_vectors` must be an object of name -> {index, modifier}")
    for name, change in diff.items():
        if name not in sparse:
            raise bad_request(f"Not existing vector name error: {name}")
        if not isinstance(change, dict):
            raise bad_json(f"`sparse_vectors.{name}` must be an object, got {change!r}")
        change = without_nulls(change)
        if "modifier" in change and change["modifier"] not in ("none", "idf"):
            raise bad_json(f"unknown variant `{change['modifier']}` for `sparse_vectors.{name}.modifier`, expected `none` or `idf`")
        if "index" in change:
            sparse[name]["index"] = {**sparse[name].get("index", {}), **change["index"]}
        if "modifier" in change:
            sparse[name]["modifier"] = change["modifier"]


def _check_strict_mode(value: Any) -> None:
    if not isinstance(value, dict):
        raise bad_json("`strict_mode_config` must be an object")
    if value.get("enabled"):
        raise ApiError(
            400,
            "Bad request: strict mode is not supported by the embedded server (its limits would not be enforced); "
            "run a Qdrant server for strict mode",
        )


def _merge_metadata(current: Any, diff: Any) -> dict[str, Any]:
    if not isinstance(diff, dict):
        raise bad_json(f"`metadata` must be an object, got {diff!r}")
    merged = dict(current or {})
    for key, value in diff.items():
        if value is None:
            merged.pop(key, None)
        else:
            merged[key] = value
    return merged
