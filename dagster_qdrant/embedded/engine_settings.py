"""Index settings of a collection: Qdrant's `QuantizationConfig` and `HnswConfig` JSON, checked, and as the
Qdrant Edge objects the engine builds its indexes with.

The JSON is kept as the user gave it (nulls dropped) so `GET /collections/{name}` echoes it as Qdrant does,
and the engine's shard config gets the same settings, collection-wide and per vector. They shape the
segments the engine's optimizer builds; the embedded server does not run that optimizer in the background
(`EdgeShard.optimize()` holds Python's GIL for its whole run: 25.6 s for 30,000 384-d vectors in which no
other thread of the server ran once), so searches stay exact and `indexed_vectors_count` stays 0.
"""

from __future__ import annotations

from typing import Any

import qdrant_edge as edge

from dagster_qdrant.embedded.errors import bad_json, invalid

MEMORY = {"cold": edge.Memory.Cold, "cached": edge.Memory.Cached, "pinned": edge.Memory.Pinned}
COMPRESSION = {
    "x4": edge.CompressionRatio.X4,
    "x8": edge.CompressionRatio.X8,
    "x16": edge.CompressionRatio.X16,
    "x32": edge.CompressionRatio.X32,
    "x64": edge.CompressionRatio.X64,
}
BINARY_ENCODING = {
    "one_bit": edge.BinaryQuantizationEncoding.OneBit,
    "two_bits": edge.BinaryQuantizationEncoding.TwoBits,
    "one_and_half_bits": edge.BinaryQuantizationEncoding.OneAndHalfBits,
}
BINARY_QUERY_ENCODING = {
    "default": edge.BinaryQuantizationQueryEncoding.Default,
    "binary": edge.BinaryQuantizationQueryEncoding.Binary,
    "scalar4bits": edge.BinaryQuantizationQueryEncoding.Scalar4Bits,
    "scalar8bits": edge.BinaryQuantizationQueryEncoding.Scalar8Bits,
}
TURBO_BITS = {
    "bits1": edge.TurboQuantBitSize.Bits1,
    "bits1_5": edge.TurboQuantBitSize.Bits1_5,
    "bits2": edge.TurboQuantBitSize.Bits2,
    "bits4": edge.TurboQuantBitSize.Bits4,
}
_QUANTIZATION_FIELDS = {
    "scalar": ("type", "quantile", "always_ram", "memory"),
    "product": ("compression", "always_ram", "memory"),
    "binary": ("always_ram", "memory", "encoding", "query_encoding"),
    "turbo": ("always_ram", "bits", "memory"),
}
HNSW_FIELDS = ("m", "ef_construct", "full_scan_threshold", "max_indexing_threads", "on_disk", "payload_m", "inline_storage")

def is_single_vector(vectors: Any) -> bool:
    """Whether a REST ``vectors`` config is one unnamed ``VectorParams`` rather than a map of names.

    Qdrant's ``VectorsConfig`` is an untagged enum tried in order: ``VectorParams`` first, which needs an
    integer ``size``; anything else is a map of vector name -> params. So ``{"size": {...}}`` is one vector
    named ``size``, never an unnamed vector."""
    if not isinstance(vectors, dict):
        return False
    size = vectors.get("size")
    return isinstance(size, int) and not isinstance(size, bool)


def named_vectors(vectors: Any) -> dict[str, Any]:
    """Vector name -> params of a REST ``vectors`` config; the unnamed vector is called ``""``."""
    return {"": vectors} if is_single_vector(vectors) else vectors



def without_nulls(value: Any) -> Any:
    """JSON with null members dropped at every level (Qdrant leaves unset options out of its answers)."""
    if isinstance(value, dict):
        return {key: without_nulls(item) for key, item in value.items() if item is not None}
    return value


def check_quantization(value: Any, where: str) -> dict[str, Any]:
    """A `QuantizationConfig` ({scalar|product|binary|turbo: {...}}), nulls dropped; 400/422 when malformed."""
    value = without_nulls(value)
    if not isinstance(value, dict) or len(value) != 1 or next(iter(value)) not in _QUANTIZATION_FIELDS:
        raise bad_json(f"`{where}` must be one of {{scalar: ...}}, {{product: ...}}, {{binary: ...}}, {{turbo: ...}}, got {value!r}")
    kind, settings = next(iter(value.items()))
    if not isinstance(settings, dict):
        raise bad_json(f"`{where}.{kind}` must be an object, got {settings!r}")
    unknown = sorted(set(settings) - set(_QUANTIZATION_FIELDS[kind]))
    if unknown:
        raise bad_json(f"unknown field(s) {unknown} in `{where}.{kind}`, expected {list(_QUANTIZATION_FIELDS[kind])}")
    for key in ("always_ram",):
        if key in settings and not isinstance(settings[key], bool):
            raise bad_json(f"invalid type: {settings[key]!r}, expected a boolean for `{where}.{kind}.{key}`")
    _choice(settings, "memory", MEMORY, f"{where}.{kind}")
    if kind == "scalar":
        _choice(settings, "type", {"int8": None}, f"{where}.scalar", required=True)
        quantile = settings.get("quantile")
        if quantile is not None:
            if not isinstance(quantile, (int, float)) or isinstance(quantile, bool):
                raise bad_json(f"invalid type: {quantile!r}, expected a number for `{where}.scalar.quantile`")
            if not 0.5 <= quantile <= 1.0:
                raise invalid(f"{where}.scalar.quantile: value {quantile} invalid, must be from 0.5 to 1.0")
    elif kind == "product":
        _choice(settings, "compression", COMPRESSION, f"{where}.product", required=True)
    elif kind == "binary":
        _choice(settings, "encoding", BINARY_ENCODING, f"{where}.binary")
        _choice(settings, "query_encoding", BINARY_QUERY_ENCODING, f"{where}.binary")
    else:
        _choice(settings, "bits", TURBO_BITS, f"{where}.turbo")
    return value


def _choice(settings: dict[str, Any], key: str, choices: dict[str, Any], where: str, required: bool = False) -> None:
    if key not in settings:
        if required:
            raise bad_json(f"missing field `{key}` in `{where}`")
        return
    if settings[key] not in choices:
        expected = ", ".join(f"`{choice}`" for choice in choices)
        raise bad_json(f"unknown variant `{settings[key]}` for `{where}.{key}`, expected one of {expected}")


def check_hnsw(value: Any, where: str) -> dict[str, Any]:
    """An `HnswConfigDiff`, nulls dropped; 400 for unknown fields or wrong types."""
    value = without_nulls(value) if value is not None else {}
    if not isinstance(value, dict):
        raise bad_json(f"`{where}` must be an object, got {value!r}")
    if "full_scan_threshold_kb" in value:  # Qdrant's alias
        value.setdefault("full_scan_threshold", value.pop("full_scan_threshold_kb"))
    unknown = sorted(set(value) - set(HNSW_FIELDS))
    if unknown:
        raise bad_json(f"unknown field(s) {unknown} in `{where}`, expected {list(HNSW_FIELDS)}")
    for key, item in value.items():
        wanted = bool if key in ("on_disk", "inline_storage") else int
        if not isinstance(item, wanted) or (wanted is int and (isinstance(item, bool) or item < 0)):
            raise bad_json(f"invalid value: {item!r}, expected {'a boolean' if wanted is bool else 'an unsigned integer'} for `{where}.{key}`")
    if value.get("ef_construct") is not None and value["ef_construct"] < 4:
        raise invalid(f"{where}.ef_construct: value {value['ef_construct']} invalid, must be 4 or larger")
    return value


def edge_quantization(value: dict[str, Any] | None) -> Any:
    """The engine's quantization config for a checked `QuantizationConfig` (None: no quantization)."""
    if not value:
        return None
    kind, settings = next(iter(value.items()))
    memory = MEMORY.get(settings.get("memory")) if settings.get("memory") else None
    always_ram = settings.get("always_ram")
    if kind == "scalar":
        return edge.ScalarQuantizationConfig(
            edge.ScalarType.Int8, quantile=settings.get("quantile"), always_ram=always_ram, memory=memory
        )
    if kind == "product":
        return edge.ProductQuantizationConfig(COMPRESSION[settings["compression"]], always_ram=always_ram, memory=memory)
    if kind == "binary":
        return edge.BinaryQuantizationConfig(
            always_ram=always_ram,
            encoding=BINARY_ENCODING.get(settings.get("encoding")) if settings.get("encoding") else None,
            query_encoding=BINARY_QUERY_ENCODING.get(settings.get("query_encoding")) if settings.get("query_encoding") else None,
            memory=memory,
        )
    return edge.TurboQuantQuantizationConfig(
        always_ram=always_ram, bits=TURBO_BITS[settings["bits"]] if settings.get("bits") else None, memory=memory
    )


def edge_hnsw(collection_hnsw: dict[str, Any], override: dict[str, Any] | None = None) -> edge.HnswIndexConfig:
    """The engine's HNSW config: the collection's full config with a vector's own diff on top."""
    merged = {**collection_hnsw, **(override or {})}
    return edge.HnswIndexConfig(**{key: merged[key] for key in HNSW_FIELDS if merged.get(key) is not None})


def config_warnings(rest_config: dict[str, Any]) -> list[dict[str, str]]:
    """Qdrant's `CollectionWarning`s for settings it ignores (inline HNSW storage without quantization or
    with multivectors), in Qdrant's words."""
    vectors = rest_config["params"]["vectors"]
    named = named_vectors(vectors)
    warnings = []
    for name, params in named.items():
        hnsw = {**rest_config["hnsw_config"], **(params.get("hnsw_config") or {})}
        if not hnsw.get("inline_storage"):
            continue
        if params.get("multivector_config"):
            reason = "is not compatible with multivectors"
        elif not (params.get("quantization_config") or rest_config.get("quantization_config")):
            reason = "requires quantization to be enabled"
        else:
            continue
        warnings.append(
            {"message": f"The `hnsw_config.inline_storage` option for vector '{name}' {reason}. This option will be ignored."}
        )
    return warnings
