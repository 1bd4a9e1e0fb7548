"""One validated options object per direction, shared by the Spark data source, the IO manager and
``write_qdrant_points``.

Options arrive in three shapes: keyword arguments (``build_qdrant_config(endpoint, collection, limit=10)``),
a JSON dict carried through Spark in the single ``qdrant.config`` option, and per-key Spark string options
(``.option("limit", "10")``). Every shape goes through the same parsers, so the same value is accepted or
rejected the same way everywhere, and every rejection names the option, the value and what is allowed.
The API key is never shown by ``repr``/``str`` of an options object or of a config dict. spark-fuse's
call forms and option keys are mapped (or refused by name) in ``spark_fuse_compat.py``.

Each option is declared once, as a field of its options class: ``limit: int | None = option(None,
parse.optional_positive_int, "total cap on points read ...")`` gives its name, type, default, parser and
description together. Everything else is derived from these declarations: validation (``__post_init__``,
the one place an options object is validated), the unknown-key refusals and the Spark string form
(``from_spark_options`` / ``spark_options``), the Dagster config classes (``dagster_io/resources.py``) and
the README's option tables (``option_tables.py``).

Why this module is long: it holds every option of both directions with its description, next to the
few rules that span several options.
"""

from __future__ import annotations

import dataclasses
import json
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

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


class QdrantOptionsDict(dict):
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


REQUIRED: Any = dataclasses.MISSING
"""The default of an option that has none (``endpoint``, ``collection``)."""


@dataclass(frozen=True)
class Option:
    """What one option is, beside its name and type: default, parser and description.

    Declared once, as the dataclass field of the option (``limit: int | None = option(None, ...)``); the
    Dagster config classes (``dagster_io/resources.py``), the Spark string form (``from_spark_options``,
    ``spark_options``) and the README's option tables (``option_tables.py``) are derived from it.
    """

    default: Any
    parse: Callable[[str, Any], Any]
    doc: str
    name: str = ""
    type: Any = None
    config_type: Any = None
    """The type Dagster's config shows, where it cannot express ``type`` (it has no unions of scalars)."""
    config_name: str | None = None
    """The config field's name, where pydantic reserves the option's (``schema``)."""
    shown_default: str | None = None
    """The README's default cell, where the default is decided elsewhere (``num_partitions``)."""
    secret: bool = False
    """Its value may hold credentials: hidden from every repr."""

    def dataclass_field(self) -> Any:
        """The dataclass field declaring the option (a fresh dict per object for dict defaults)."""
        if isinstance(self.default, dict):
            return field(default_factory=dict, metadata={"option": self})
        return field(default=self.default, metadata={"option": self})

    def default_value(self) -> Any:
        return dict(self.default) if isinstance(self.default, dict) else self.default


def option(
    default: Any,
    parse: Callable[[str, Any], Any],
    doc: str,
    *,
    config_type: Any = None,
    config_name: str | None = None,
    shown_default: str | None = None,
    secret: bool = False,
) -> Any:
    """Declare an option as a dataclass field: ``name: type = option(default, parser, description)``."""
    return Option(
        default, parse, doc, config_type=config_type, config_name=config_name, shown_default=shown_default,
        secret=secret,
    ).dataclass_field()


@dataclass(frozen=True, kw_only=True, repr=False)
class ConnectionOptions:
    """Where the server is and how to talk to it. Every field is validated when the object is built."""

    endpoint: str = option(REQUIRED, parse.endpoint, "`http://` or `https://` URL of Qdrant")
    api_key: str | None = option(
        None,
        parse.optional_text,
        "sent as the `api-key` header; never logged or shown",
        shown_default="`None` (then env `QDRANT_API_KEY`)",
        secret=True,
    )
    headers: Mapping[str, str] = option(
        {}, parse.headers, "extra headers merged into every request", config_type=dict[str, str], secret=True
    )
    timeout: float = option(30.0, parse.positive_float, "seconds to wait for an answer")
    connect_timeout: float = option(
        5.0,
        parse.positive_float,
        "seconds to wait for a connection (not retried: TCP resends the SYN within it); also how long the "
        "IO manager's check before a write waits for `GET /`",
    )
    max_retries: int = option(
        3,
        parse.non_negative_int,
        "retries of 408, 429 (honouring `Retry-After`), 500, 502, 503, 504, dropped connections and timeouts",
    )
    backoff_factor: float = option(0.5, parse.non_negative_float, "exponential backoff base in seconds, with jitter")
    verify: bool | str = option(True, parse.verify, "TLS verification for https; or a CA bundle path")

    def __post_init__(self) -> None:
        """The one place options are validated: every field through its declared parser, then ``_check``."""
        for item in dataclasses.fields(self):
            parser = item.metadata["option"].parse
            object.__setattr__(self, item.name, parser(item.name, getattr(self, item.name)))
        self._check()

    def _check(self) -> None:
        """Rules that involve several fields; subclasses extend."""

    @classmethod
    def declared(cls) -> tuple[Option, ...]:
        """Every option of this class, in declaration order, with its name and (resolved) type."""
        hints = typing.get_type_hints(cls)
        return tuple(
            dataclasses.replace(item.metadata["option"], name=item.name, type=hints[item.name])
            for item in dataclasses.fields(cls)
        )

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
        if isinstance(config, cls) and not overrides:
            return config  # already validated: not built again
        if isinstance(config, ConnectionOptions):
            config = config.to_config()
        other_direction = set(_READ_ONLY_NAMES | _WRITE_ONLY_NAMES) - set(cls.option_names())
        values = {key: value for key, value in (config or {}).items() if key not in other_direction}
        values.update(overrides)
        return cls.from_mapping(values)

    def to_config(self) -> QdrantOptionsDict:
        """A plain JSON-able dict that rebuilds this object (through ``qdrant.config`` or kwargs)."""
        return QdrantOptionsDict(
            {item.name: _jsonable(getattr(self, item.name)) for item in dataclasses.fields(self)}
        )

    def spark_options(self, collection: str | None = None) -> dict[str, str]:
        """The Spark options that carry this configuration: ``{"qdrant.config": json}``.

        ``collection`` sends the same options to another collection (a per-key option, which wins over
        ``qdrant.config`` where Spark rebuilds them): the version an IO manager writes before it serves it.
        """
        options = {QDRANT_CONFIG_OPTION: json.dumps(self.to_config())}
        if collection is not None:
            options["collection"] = collection
        return options

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


_COLLECTION = Option(REQUIRED, parse.collection, "collection (or alias) to read or write")
"""``collection``: declared once, a field of both directions."""


@dataclass(frozen=True, kw_only=True, repr=False)
class ReadOptions(ConnectionOptions):
    """How to read a collection: which parts of each point, how many, in what pages and partitions."""

    collection: str = _COLLECTION.dataclass_field()
    with_payload: bool | str | tuple[str, ...] | Mapping[str, Any] = option(
        True,
        parse.with_payload,
        'bool, a key, a list of keys, or a Qdrant payload selector (`{"include": [...]}`)',
        config_type=bool,
    )
    with_vectors: bool | str | tuple[str, ...] = option(
        False, parse.with_vectors, "bool, a vector name, or a list of names", config_type=bool
    )
    limit: int | None = option(
        None, parse.optional_positive_int, "total cap on points read (forces one partition, scroll order)"
    )
    page_size: int = option(512, parse.positive_int, "points per Scroll request (clipped to `limit`)")
    max_pages: int | None = option(
        None, parse.optional_positive_int, "at most this many pages (forces one partition)"
    )
    filter: Mapping[str, Any] | None = option(
        None,
        parse.qdrant_filter,
        "a Qdrant filter object (dict or JSON text) applied to every scroll",
        config_type=typing.Optional[dict[str, Any]],
    )
    offset: int | str | None = option(
        None, parse.optional_point_id, "start id, inclusive (forces one partition)", config_type=typing.Any
    )
    infer_schema: bool = option(
        True,
        parse.boolean,
        "`False` requires a schema through `QDRANT_SCHEMA_OPTION` (Spark schema JSON) or `.schema(...)`",
    )
    schema: str | None = option(
        None,
        parse.spark_schema_json,
        "the schema as Spark JSON (`StructType.json()`), as `QDRANT_SCHEMA_OPTION` gives it; `None`: inferred",
        config_name="spark_schema",
    )
    # Schema inference (see DEFAULT_SAMPLE_SIZE and SCHEMA_MISMATCH_MODES).
    sample_size: int | str = option(
        DEFAULT_SAMPLE_SIZE,
        parse.sample_size,
        'points schema inference looks at, spread over the whole read; `"all"`: every point',
        config_type=typing.Any,
    )
    schema_mismatch: str = option(
        "warn",
        parse.choice(SCHEMA_MISMATCH_MODES),
        'a payload key or value an inferred schema has no room for: `"warn"` reads on (the value as null, or '
        "as JSON text in a text column; the key not at all) and logs one warning per partition naming the "
        'key, the count and the fix; `"error"` fails the read',
    )
    num_partitions: int | None = option(
        None,
        parse.optional_positive_int,
        "parallel read partitions, disjoint and complete",
        shown_default="Spark's default parallelism",
    )
    partitioning: str = option(
        "auto",
        parse.choice(PARTITIONING_MODES),
        '`"slice"` (Qdrant 1.19+ `slice` condition), `"id_range"` (older servers), `"auto"` picks by server '
        "version",
    )
    payload_layout: str = option(
        "auto",
        parse.choice(PAYLOAD_LAYOUTS),
        '`"columns"`: one column per payload key; `"struct"`: spark-fuse\'s `id`, `payload` (a struct, or a '
        'map, of the payload), vectors; `"json"`: a `payload` string column of each payload\'s JSON text '
        '(payloads with no stable shape); `"auto"`: `"struct"` for a given schema of spark-fuse\'s shape, '
        'else `"columns"`',
    )
    missing_columns: str = option(
        "error",
        parse.choice(MISSING_COLUMN_MODES),
        "a given schema's payload column that none of a sample of the read's points carries: `\"error\"` "
        "fails the read naming the column, the nearest key the points carry and the fix; `\"null\"` reads "
        "it as null",
    )

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

    collection: str = _COLLECTION.dataclass_field()
    batch_size: int = option(
        256, parse.positive_int, "points per request (batches are also kept under `max_batch_bytes`)"
    )
    max_batch_bytes: int = option(
        DEFAULT_MAX_BATCH_BYTES,
        parse.batch_bytes,
        "request body budget, under Qdrant's 32 MB limit",
        shown_default="31 MiB",
    )
    wait: bool = option(True, parse.boolean, "wait for Qdrant to apply each batch")
    id_field: str | None = option(
        "id",
        parse.optional_column,
        "id column (unsigned integer, also as `decimal(20,0)` or digits; or UUID); `None`: deterministic "
        "UUIDs derived from the row, so a retried task never duplicates a point",
    )
    vector_field: str | None = option("vector", parse.optional_column, "dense vector column, required in every row")
    vector_fields: Mapping[str, str] = option(
        {}, parse.column_mapping, "column → vector name, for named vectors", config_type=dict[str, str]
    )
    sparse_vector_fields: Mapping[str, str] = option(
        {},
        parse.column_mapping,
        "column → sparse vector name (`struct<indices, values>` columns)",
        config_type=dict[str, str],
    )
    payload_fields: tuple[str, ...] | None = option(
        None,
        parse.optional_columns,
        "a column name or a list of them",
        config_type=typing.Optional[list[str]],
        shown_default="every other column",
    )
    create_collection: bool = option(
        False, parse.boolean, "create the collection when it is missing (size from the first point)"
    )
    distance: str = option(
        "Cosine", parse.choice(DISTANCES), "`Cosine`, `Dot`, `Euclid`, `Manhattan` for a created collection"
    )
    payload_format: str = option(
        "auto",
        parse.choice(PAYLOAD_FORMATS),
        "`batch` (columnar body), `points`, or `auto` (batch, falling back to points)",
    )
    write_method: str = option(
        "auto",
        parse.choice(WRITE_METHODS),
        "`put`: `PUT /collections/{c}/points`; `post`: each request is one upsert operation of "
        "`POST /collections/{c}/points/batch` (for proxies that refuse PUT); `auto`: PUT, then `post` on a 405",
    )
    max_in_flight: int = option(4, parse.positive_int, "concurrent requests per writer (per Spark task)")
    # exact values (points/payload_to_json.py): nothing is rounded or nulled unless asked for
    non_finite: str = option(
        "error",
        parse.choice(NON_FINITE_MODES),
        "NaN and ±infinity in payloads: `error` (refused before sending), or `null` (stored as null)",
    )
    decimal_as: str = option(
        "error",
        parse.choice(DECIMAL_MODES),
        "decimals: `error` (numbers when Qdrant gives them back exactly, else refused), `string` (exact "
        "text), `double` (nearest double)",
    )

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
) -> QdrantOptionsDict:
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


def build_qdrant_write_config(*args: Any, **options: Any) -> QdrantOptionsDict:
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
    "REQUIRED",
    "SCHEMA_MISMATCH_MODES",
    "ConnectionOptions",
    "Option",
    "QdrantOptionsDict",
    "ReadOptions",
    "WriteOptions",
    "build_qdrant_config",
    "build_qdrant_write_config",
    "option",
]
