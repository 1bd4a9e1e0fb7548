"""One validated options object per direction, shared by the Spark data source, the IO manager and
``write_qdrant_points``.

Options arrive in three shapes: keyword arguments (``build_qdrant_config(endpoint, collection, limit=10)``),
a JSON dict carried through Spark in the single ``qdrant.config`` option, and per-key Spark string options
(``.option("limit", "10")``). Every shape goes through the same parsers, so the same value is accepted or
rejected the same way everywhere, and every rejection names the option, the value and what is allowed.
The API key is never shown by ``repr``/``str`` of an options object or of a config dict. spark-fuse's
call forms and option keys are mapped (or refused by name) in ``spark_fuse_compat.py``.

Over 400 lines on purpose: every option of both directions is declared here once, with its default and
parser, and everything else is derived from these declarations.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

from dagster_qdrant import spark_fuse_compat as compat
from dagster_qdrant import option_parsers as parse
from dagster_qdrant.errors import QdrantConfigError

QDRANT_FORMAT = "qdrant"
QDRANT_CONFIG_OPTION = "qdrant.config"
QDRANT_SCHEMA_OPTION = "qdrant.schema"

QDRANT_MAX_BODY_BYTES = 32 * 1024 * 1024
"""Qdrant's default request body limit (``service.max_request_size_mb: 32``)."""
DEFAULT_MAX_BATCH_BYTES = 31 * 1024 * 1024
"""A margin under the body limit for the envelope and estimation error."""

DISTANCES = ("Cosine", "Euclid", "Dot", "Manhattan")
PAYLOAD_FORMATS = ("auto", "batch", "points")
WRITE_METHODS = ("auto", "put", "post")
NON_FINITE_MODES = ("error", "null")
"""What a write does with NaN and infinite payload values (JSON has neither): refuse them, or store null."""
DECIMAL_MODES = ("error", "string", "double")
"""How decimal payload values are written: as numbers when Qdrant gives them back exactly, refusing the
others (``error``); every decimal as its exact text (``string``); as the nearest double (``double``)."""
PARTITIONING_MODES = ("auto", "slice", "id_range")
"""How a parallel read splits the points: ``auto`` uses hash slices on Qdrant 1.19+ (read from ``GET /``)
and id ranges on older servers; ``slice`` and ``id_range`` force one way."""
# Schema inference: the sample and what a read does with what the sample missed.
DEFAULT_SAMPLE_SIZE = 1000
"""Points sampled, spread over the whole read, to infer a schema; ``"all"`` reads every point's payload."""
PAYLOAD_LAYOUTS = ("auto", "columns", "struct", "json")
"""Where a read puts the payload: one column per key (``columns``), spark-fuse's ``payload`` struct
(``struct``), or the payload's JSON text in a ``payload`` string column (``json``, for payloads with no
stable shape). ``auto``: ``struct`` when a given schema has spark-fuse's shape, else ``columns``."""
MISSING_COLUMN_MODES = ("error", "null")
"""What a read with a given schema does with a payload column no sampled point carries: fail, naming it
and the keys the points carry (``error``), or read it as null (``null``)."""
SCHEMA_MISMATCH_MODES = ("warn", "error")
"""What a read with an inferred schema does with a payload key or a value the schema has no room for:
``warn`` reads the rest and logs once per partition (key, count, fix); ``error`` fails the read."""
_SECRET_HEADERS = frozenset({"api-key", "authorization", "proxy-authorization", "cookie"})


class QdrantConfig(dict):
    """A plain JSON-able dict of options whose repr hides the API key and secret headers."""

    def __repr__(self) -> str:
        return repr(_masked(dict(self)))

    __str__ = __repr__


def _masked(values: dict[str, Any]) -> dict[str, Any]:
    shown = dict(values)
    if shown.get("api_key"):
        shown["api_key"] = "***"
    headers = shown.get("headers")
    if headers:
        shown["headers"] = {
            name: ("***" if name.lower() in _SECRET_HEADERS else value) for name, value in headers.items()
        }
    return shown


@dataclass(frozen=True, kw_only=True, repr=False)
class ConnectionOptions:
    """Where the server is and how to talk to it. Every field is validated when the object is built."""

    endpoint: str
    api_key: str | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    timeout: float = 30.0
    max_retries: int = 3
    backoff_factor: float = 0.5
    verify: bool | str = True

    _parsers: ClassVar[dict[str, Any]] = {
        "endpoint": parse.endpoint,
        "api_key": parse.optional_text,
        "headers": parse.headers,
        "timeout": parse.positive_float,
        "max_retries": parse.non_negative_int,
        "backoff_factor": parse.non_negative_float,
        "verify": parse.verify,
    }

    def __post_init__(self) -> None:
        for item in dataclasses.fields(self):
            parser = self._all_parsers().get(item.name)
            if parser is not None:
                object.__setattr__(self, item.name, parser(item.name, getattr(self, item.name)))
        self._check()

    @classmethod
    def _all_parsers(cls) -> dict[str, Any]:
        merged: dict[str, Any] = {}
        for klass in reversed(cls.__mro__):
            merged.update(klass.__dict__.get("_parsers", {}))
        return merged

    def _check(self) -> None:
        """Rules that involve several fields; subclasses extend."""

    @classmethod
    def option_names(cls) -> tuple[str, ...]:
        return tuple(item.name for item in dataclasses.fields(cls))

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> ConnectionOptions:
        """Build from a dict of native values or strings; unknown keys are an error (typos fail loudly)."""
        known = set(cls.option_names())
        unknown = sorted(key for key in values if key not in known)
        if unknown:
            raise compat.unknown_option_error(unknown, known, cls.__name__, _elsewhere(cls))
        for required in ("endpoint", "collection"):
            if required in known and values.get(required) in (None, ""):
                raise QdrantConfigError(
                    f"Option {required!r} is required: pass the Qdrant "
                    + ("URL, e.g. 'http://localhost:6333'" if required == "endpoint" else "collection name")
                )
        return cls(**dict(values))

    @classmethod
    def from_spark_options(cls, options: Mapping[str, str]) -> Any:
        """Parse Spark's string options: the ``qdrant.config`` JSON and/or per-key options (which win).

        Spark's own keys (``path``: the collection; ``checkpointLocation``) are taken; any other key that
        is not an option of this direction is refused by name, so a misspelt or spark-fuse key is never
        dropped in silence.
        """
        values: dict[str, Any] = {}
        other_direction = set(_READ_ONLY_NAMES | _WRITE_ONLY_NAMES) - set(cls.option_names())
        for key, value in options.items():
            name = key.lower()
            if name == QDRANT_CONFIG_OPTION:
                config = parse.json_object(QDRANT_CONFIG_OPTION, value)
                values.update({k: v for k, v in config.items() if k not in other_direction})
        for key, value in options.items():
            name = key.lower()
            if name == QDRANT_CONFIG_OPTION:
                continue
            if name == QDRANT_SCHEMA_OPTION:
                name = "schema"
            if name == "path":
                values.setdefault("collection", value)
                continue
            if name in compat.SPARK_OWN_OPTION_KEYS:
                continue
            if name not in cls.option_names():
                known = {*cls.option_names(), QDRANT_CONFIG_OPTION, QDRANT_SCHEMA_OPTION} - {"schema"}
                direction = "read" if cls.option_names() == ReadOptions.option_names() else "write"
                where = f"{direction}s of format({QDRANT_FORMAT!r})"
                elsewhere = {option: ("write" if direction == "read" else "read") for option in other_direction}
                raise compat.unknown_option_error([key], known, where, elsewhere)
            values[name] = value
        return cls.from_mapping(values)

    @classmethod
    def from_config(cls, config: Mapping[str, Any] | ConnectionOptions | None = None, **overrides: Any) -> Any:
        """Build from a config dict (or options object) plus keyword overrides.

        Keys that belong only to the other direction (a read option in a write config, and back) are
        ignored in ``config``, so one connection dict can serve both; in ``overrides`` they are an error.
        """
        if isinstance(config, ConnectionOptions):
            config = config.to_config()
        other_direction = set(_READ_ONLY_NAMES | _WRITE_ONLY_NAMES) - set(cls.option_names())
        values = {key: value for key, value in (config or {}).items() if key not in other_direction}
        values.update(overrides)
        return cls.from_mapping(values)

    def to_config(self) -> QdrantConfig:
        """A plain JSON-able dict that rebuilds this object (through ``qdrant.config`` or kwargs)."""
        return QdrantConfig(
            {item.name: _jsonable(getattr(self, item.name)) for item in dataclasses.fields(self)}
        )

    def spark_options(self) -> dict[str, str]:
        """The Spark options that carry this configuration: ``{"qdrant.config": json}``."""
        return {QDRANT_CONFIG_OPTION: json.dumps(self.to_config())}

    def request_headers(self) -> dict[str, str]:
        """Headers for every request: user headers, then the ``api-key`` header when a key is set."""
        merged = {"content-type": "application/json", **self.headers}
        if self.api_key:
            merged["api-key"] = self.api_key
        return merged

    def __repr__(self) -> str:
        shown = _masked({item.name: getattr(self, item.name) for item in dataclasses.fields(self)})
        return f"{type(self).__name__}({', '.join(f'{k}={v!r}' for k, v in shown.items())})"

    __str__ = __repr__


def _selection(value: Any) -> Any:
    """Options keep name lists as tuples (immutable); request bodies want lists."""
    if isinstance(value, tuple):
        return list(value)
    if isinstance(value, Mapping):
        return {key: list(names) for key, names in value.items()}
    return value


def _jsonable(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return value


@dataclass(frozen=True, kw_only=True, repr=False)
class ReadOptions(ConnectionOptions):
    """How to read a collection: which parts of each point, how many, in what pages and partitions."""

    collection: str
    with_payload: bool | str | tuple[str, ...] | Mapping[str, Any] = True
    with_vectors: bool | str | tuple[str, ...] = False
    limit: int | None = None
    page_size: int = 512
    max_pages: int | None = None
    filter: Mapping[str, Any] | None = None
    offset: int | str | None = None
    infer_schema: bool = True
    num_partitions: int | None = None
    partitioning: str = "auto"
    schema: str | None = None
    # Schema inference (see DEFAULT_SAMPLE_SIZE and SCHEMA_MISMATCH_MODES).
    sample_size: int | str = DEFAULT_SAMPLE_SIZE
    schema_mismatch: str = "warn"
    payload_layout: str = "auto"
    missing_columns: str = "error"

    _parsers: ClassVar[dict[str, Any]] = {
        "payload_layout": parse.choice(PAYLOAD_LAYOUTS),
        "missing_columns": parse.choice(MISSING_COLUMN_MODES),
        "sample_size": parse.sample_size,
        "schema_mismatch": parse.choice(SCHEMA_MISMATCH_MODES),
        "collection": parse.collection,
        "with_payload": parse.with_payload,
        "with_vectors": parse.with_vectors,
        "limit": parse.optional_positive_int,
        "page_size": parse.positive_int,
        "max_pages": parse.optional_positive_int,
        "filter": parse.qdrant_filter,
        "offset": parse.optional_point_id,
        "infer_schema": parse.boolean,
        "num_partitions": parse.optional_positive_int,
        "partitioning": parse.choice(PARTITIONING_MODES),
        "schema": parse.spark_schema_json,
    }

    def _check(self) -> None:
        if self.limit is not None and self.page_size > self.limit:
            object.__setattr__(self, "page_size", self.limit)

    def explicit_schema(self) -> str | None:
        """The schema JSON to use instead of inference, or None to infer it.

        Called only when Spark was given no ``.schema(...)`` (Spark then never asks the source), so
        ``infer_schema=False`` without ``qdrant.schema`` is an error here rather than at build time.
        """
        if self.schema is not None:
            return self.schema
        if not self.infer_schema:
            raise QdrantConfigError(
                "Option 'infer_schema' is False but no schema was given: pass a Spark schema with "
                f".schema(...) or as JSON in the {QDRANT_SCHEMA_OPTION!r} option, or set infer_schema=True"
            )
        return None

    def selection(self) -> dict[str, Any]:
        """``with_payload`` and ``with_vector`` of this read's scroll requests, as request JSON.

        The bodies themselves are built by ``points/scroll.py``, the one scroll loop.
        """
        return {"with_payload": _selection(self.with_payload), "with_vector": _selection(self.with_vectors)}

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> ReadOptions:
        return super().from_mapping(values)  # type: ignore[return-value]


@dataclass(frozen=True, kw_only=True, repr=False)
class WriteOptions(ConnectionOptions):
    """How to turn rows into points and send them: columns, batching, collection creation."""

    collection: str
    batch_size: int = 256
    max_batch_bytes: int = DEFAULT_MAX_BATCH_BYTES
    wait: bool = True
    id_field: str | None = "id"
    vector_field: str | None = "vector"
    vector_fields: Mapping[str, str] = field(default_factory=dict)
    sparse_vector_fields: Mapping[str, str] = field(default_factory=dict)
    payload_fields: tuple[str, ...] | None = None
    create_collection: bool = False
    distance: str = "Cosine"
    payload_format: str = "auto"
    write_method: str = "auto"
    max_in_flight: int = 4
    # exact values (points/payload_to_json.py): nothing is rounded or nulled unless asked for
    non_finite: str = "error"
    decimal_as: str = "error"

    _parsers: ClassVar[dict[str, Any]] = {
        "collection": parse.collection,
        "batch_size": parse.positive_int,
        "max_batch_bytes": parse.batch_bytes,
        "wait": parse.boolean,
        "id_field": parse.optional_column,
        "vector_field": parse.optional_column,
        "vector_fields": parse.column_mapping,
        "sparse_vector_fields": parse.column_mapping,
        "payload_fields": parse.optional_columns,
        "create_collection": parse.boolean,
        "distance": parse.choice(DISTANCES),
        "payload_format": parse.choice(PAYLOAD_FORMATS),
        "write_method": parse.choice(WRITE_METHODS),
        "max_in_flight": parse.positive_int,
        # exact values
        "non_finite": parse.choice(NON_FINITE_MODES),
        "decimal_as": parse.choice(DECIMAL_MODES),
    }

    def _check(self) -> None:
        if not self.dense_vector_columns() and not self.sparse_vector_fields:
            raise QdrantConfigError(
                "No vector column: set 'vector_field' (default 'vector'), 'vector_fields' or "
                "'sparse_vector_fields' to the column(s) holding the vectors"
            )
        names = list(self.dense_vector_columns().values()) + list(self.sparse_vector_fields.values())
        duplicated = sorted({name for name in names if names.count(name) > 1})
        if duplicated:
            raise QdrantConfigError(
                f"Vector name(s) {duplicated!r} are used by several columns in 'vector_fields' / "
                "'sparse_vector_fields': give every column its own vector name"
            )
        vector_columns = set(self.dense_vector_columns()) | set(self.sparse_vector_fields)
        if self.id_field is not None and self.id_field in vector_columns:
            raise QdrantConfigError(
                f"Option 'id_field' has value {self.id_field!r}, which is also a vector column: "
                "use different columns for ids and vectors"
            )

    def dense_vector_columns(self) -> dict[str, str]:
        """Column -> vector name; the unnamed default vector has the name ``""``."""
        if self.vector_fields:
            return dict(self.vector_fields)
        if self.vector_field is None:
            return {}
        return {self.vector_field: ""}

    def excluded_from_payload(self) -> set[str]:
        """Columns that never become payload: the id and every vector column."""
        excluded = set(self.dense_vector_columns()) | set(self.sparse_vector_fields)
        if self.id_field is not None:
            excluded.add(self.id_field)
        return excluded

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> WriteOptions:
        return super().from_mapping(values)  # type: ignore[return-value]


_CONNECTION_NAMES = frozenset(item.name for item in dataclasses.fields(ConnectionOptions))
_READ_ONLY_NAMES = frozenset(ReadOptions.option_names()) - _CONNECTION_NAMES - {"collection"}
_WRITE_ONLY_NAMES = frozenset(WriteOptions.option_names()) - _CONNECTION_NAMES - {"collection"}


def _elsewhere(cls: type[ConnectionOptions]) -> dict[str, str]:
    """The other direction's options, named ``read`` or ``write``, for refusals of misplaced options."""
    if issubclass(cls, ReadOptions):
        return dict.fromkeys(_WRITE_ONLY_NAMES, "write")
    if issubclass(cls, WriteOptions):
        return dict.fromkeys(_READ_ONLY_NAMES, "read")
    return {}


def build_qdrant_config(
    *args: Any, source_config: Mapping[str, Any] | None = None, **options: Any
) -> QdrantConfig:
    """Validated read options as a JSON-able dict (for ``qdrant.config``, resources and kwargs).

    Called as ``build_qdrant_config(endpoint, collection, **options)``, with ``endpoint=`` /
    ``collection=`` keywords, or as spark-fuse calls it, ``build_qdrant_config(spark, endpoint,
    collection=..., **options)``. A SparkSession given first sets ``num_partitions`` (when not given) to
    its default parallelism, which the data source's workers cannot ask Spark for. ``source_config`` (as in
    spark-fuse) is a base dict of options the keywords override.
    """
    options = compat.merged_source_config(source_config, options)
    session = compat.connection_arguments("build_qdrant_config", compat.READ_FORMS, args, options)
    if session is not None and options.get("num_partitions") is None:
        parallelism = compat.default_parallelism(session)
        if parallelism is not None:
            options["num_partitions"] = parallelism
    return ReadOptions.from_mapping(options).to_config()


WRITE_CONFIG_FORMS = (
    "build_qdrant_write_config(endpoint, collection, **options) or "
    "build_qdrant_write_config(endpoint, collection=..., **options) (spark-fuse's form)"
)


def build_qdrant_write_config(*args: Any, **options: Any) -> QdrantConfig:
    """Validated write options as a JSON-able dict (for ``qdrant.config``, resources and kwargs).

    ``build_qdrant_write_config(endpoint, collection, **options)``, or with ``collection=`` (and
    ``endpoint=``) as keywords, as spark-fuse documents it. A SparkSession first is accepted and unused,
    so a call written like ``build_qdrant_config``'s works too.
    """
    compat.connection_arguments("build_qdrant_write_config", WRITE_CONFIG_FORMS, args, options)
    return WriteOptions.from_mapping(options).to_config()


__all__ = [
    "DECIMAL_MODES",
    "DEFAULT_MAX_BATCH_BYTES",
    "DEFAULT_SAMPLE_SIZE",
    "MISSING_COLUMN_MODES",
    "NON_FINITE_MODES",
    "PARTITIONING_MODES",
    "PAYLOAD_LAYOUTS",
    "QDRANT_CONFIG_OPTION",
    "QDRANT_FORMAT",
    "QDRANT_MAX_BODY_BYTES",
    "QDRANT_SCHEMA_OPTION",
    "SCHEMA_MISMATCH_MODES",
    "ConnectionOptions",
    "QdrantConfig",
    "ReadOptions",
    "WriteOptions",
    "build_qdrant_config",
    "build_qdrant_write_config",
]
