"""The call forms and option names code brought over from spark-fuse uses, mapped onto ours.

spark-fuse's Qdrant data source (the API this package's reader and writer options follow) calls
``build_qdrant_config(spark, endpoint, *, collection, ...)`` with the SparkSession first and
``write_qdrant_points(records, endpoint, *, collection, ...)`` with the options as keywords; its Spark
option keys are ``spark.fuse.qdrant.config`` / ``spark.fuse.qdrant.schema``. Our own forms are
``build_qdrant_config(endpoint, collection, **options)`` and ``write_qdrant_points(points, config,
**options)``. Both forms are accepted; any other mix is a ``TypeError`` naming both, and an option key
nobody declared is refused with the nearest known key, so nothing pasted from spark-fuse is dropped in
silence.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping
from typing import Any

from dagster_qdrant.errors import QdrantConfigError

SPARK_FUSE_OPTION_KEYS = {
    "spark.fuse.qdrant.config": ("QDRANT_CONFIG_OPTION", "qdrant.config"),
    "spark.fuse.qdrant.schema": ("QDRANT_SCHEMA_OPTION", "qdrant.schema"),
}
"""spark-fuse's Spark option keys -> (our constant, its value)."""
SPARK_OWN_OPTION_KEYS = frozenset({"path", "paths", "checkpointlocation"})
"""Keys Spark itself sets on a data source's options (``load(path)``, ``save(path)``, streaming)."""

READ_FORMS = (
    "build_qdrant_config(endpoint, collection, **options), "
    "build_qdrant_config(endpoint=..., collection=..., **options) or, as in spark-fuse, "
    "build_qdrant_config(spark, endpoint, collection=..., **options)"
)
WRITE_POINTS_FORMS = (
    "write_qdrant_points(points, config, **options) with a config from build_qdrant_write_config, "
    "or, as in spark-fuse, write_qdrant_points(points, endpoint, collection=..., **options)"
)


class QdrantCallError(QdrantConfigError, TypeError):
    """Arguments in neither accepted call form; the message names both."""


def is_spark_session(value: Any) -> bool:
    """A PySpark ``SparkSession`` (classic or Spark Connect), recognised without importing either."""
    return any(
        klass.__name__ == "SparkSession" and klass.__module__.startswith("pyspark.sql")
        for klass in type(value).__mro__
    )


def default_parallelism(spark: Any) -> int | None:
    """The session's default parallelism; None on Spark Connect, which has no SparkContext."""
    try:
        parallelism = int(spark.sparkContext.defaultParallelism)
    except Exception:  # Spark Connect raises on sparkContext; nothing to default from
        return None
    return parallelism if parallelism > 0 else None


def connection_arguments(function: str, forms: str, args: tuple[Any, ...], options: dict[str, Any]) -> Any:
    """Split ``(spark?, endpoint?, collection?)`` positionals into the session and ``options``.

    Returns the session (or None); ``endpoint`` and ``collection`` land in ``options``. A value given both
    positionally and by keyword, or a positional of the wrong kind, raises QdrantCallError naming ``forms``.
    """
    rest = list(args)
    session = rest.pop(0) if rest and is_spark_session(rest[0]) else None
    if len(rest) > 2:
        raise QdrantCallError(f"{function}() takes at most endpoint and collection positionally; use {forms}")
    for name, value in zip(("endpoint", "collection"), rest):
        if is_spark_session(value):
            raise QdrantCallError(f"{function}(): the SparkSession must be the first argument; use {forms}")
        if not isinstance(value, str):
            raise QdrantCallError(
                f"{function}(): positional {name} must be a string, got a {type(value).__name__}; use {forms}"
            )
        if name in options:
            raise QdrantCallError(f"{function}() got {name!r} both positionally and as a keyword; use {forms}")
        options[name] = value
    return session


def merged_source_config(source_config: Mapping[str, Any] | None, options: dict[str, Any]) -> dict[str, Any]:
    """spark-fuse's ``source_config``: a base mapping the keywords override; headers of both are merged."""
    if source_config is None:
        return options
    if not isinstance(source_config, Mapping):
        raise QdrantCallError(f"source_config must be a mapping of options, got a {type(source_config).__name__}")
    merged = {**source_config, **options}
    base, extra = source_config.get("headers"), options.get("headers")
    if isinstance(base, Mapping) and isinstance(extra, Mapping):
        merged["headers"] = {**base, **extra}
    return merged


def write_points_arguments(args: tuple[Any, ...], options: dict[str, Any]) -> Any:
    """The config of ``write_qdrant_points(points, *args, **options)``; an endpoint goes into ``options``."""
    if "config" in options and args:
        raise QdrantCallError(f"write_qdrant_points() got a config both positionally and as a keyword; use {WRITE_POINTS_FORMS}")
    if not args:
        return options.pop("config", None)
    if len(args) > 1:
        raise QdrantCallError(
            f"write_qdrant_points() takes the points and one config or endpoint positionally "
            f"({len(args) + 1} given); use {WRITE_POINTS_FORMS}"
        )
    second = args[0]
    if isinstance(second, str):
        if "endpoint" in options:
            raise QdrantCallError(
                f"write_qdrant_points() got 'endpoint' both positionally and as a keyword; use {WRITE_POINTS_FORMS}"
            )
        options["endpoint"] = second
        return None
    if second is None or isinstance(second, Mapping) or hasattr(second, "to_config"):
        return second
    raise QdrantCallError(
        f"write_qdrant_points(): the second argument is a {type(second).__name__}, neither a config nor an "
        f"endpoint URL; use {WRITE_POINTS_FORMS}"
    )


def nearest_key(key: str, known: Iterable[str]) -> str | None:
    """The known key closest to ``key`` (case-insensitive), or None when none is close."""
    names = {name.lower(): name for name in known}
    close = difflib.get_close_matches(key.lower(), list(names), n=1, cutoff=0.6)
    return names[close[0]] if close else None


def unknown_option_error(
    unknown: Iterable[str], known: Iterable[str], where: str, elsewhere: Mapping[str, str] | None = None
) -> QdrantConfigError:
    """The refusal of options nobody declared: each key, its nearest known key, and spark-fuse's renames.

    ``elsewhere`` maps the other direction's options to its name (``"read"``), so ``limit`` given to a
    writer is called a read option rather than unknown.
    """
    known = sorted(known)
    elsewhere = dict(elsewhere or {})
    parts = []
    for key in sorted(unknown):
        renamed = SPARK_FUSE_OPTION_KEYS.get(key.lower())
        if renamed is not None:
            parts.append(f"{key!r} is spark-fuse's key: use {renamed[0]} ({renamed[1]!r}) from dagster_qdrant")
            continue
        if key.lower() in elsewhere:
            parts.append(f"{key!r} is a {elsewhere[key.lower()]} option")
            continue
        near = nearest_key(key, [*known, *elsewhere])
        if near in elsewhere:
            parts.append(f"{key!r} (did you mean {near!r}? it is a {elsewhere[near]} option)")
        else:
            parts.append(f"{key!r} (did you mean {near!r}?)" if near else repr(key))
    return QdrantConfigError(
        f"Unknown option(s) for {where}: " + "; ".join(parts) + f". Known options: {known!r}"
    )


__all__ = [
    "QdrantCallError",
    "READ_FORMS",
    "SPARK_FUSE_OPTION_KEYS",
    "SPARK_OWN_OPTION_KEYS",
    "WRITE_POINTS_FORMS",
    "connection_arguments",
    "default_parallelism",
    "is_spark_session",
    "merged_source_config",
    "nearest_key",
    "unknown_option_error",
    "write_points_arguments",
]
