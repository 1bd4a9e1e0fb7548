"""QdrantResource: where Qdrant is and how to talk to it, for assets and for the IO manager.

The resource resolves the endpoint once per process: the ``endpoint`` field, else the ``QDRANT_URL``
environment variable, else an embedded Qdrant started on demand (so the example and the tests run with
no server to install). It hands out validated read and write configs for ``spark.read/write.format("qdrant")``
and answers similarity queries for assets that search a collection. The API key travels only inside the
configs and request headers: ``repr`` of those hides it and it is never logged or put in metadata.

Also here: ``QdrantReadConfig`` and ``QdrantWriteConfig``, Dagster config objects whose fields map one to one
onto the reader and writer options of ``dagster_qdrant.options`` (their defaults are read from there), but
for the connection options (fields of ``QdrantResource``), ``collection`` and ``create_collection`` (the
IO manager names and creates the collection), ``schema`` (``spark_schema``: pydantic reserves the name)
and the default of ``with_vectors`` (an IO manager loads embeddings to use them).
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any, Optional

from dagster import Config, ConfigurableResource
from pydantic import Field, PrivateAttr

from dagster_qdrant.options import (
    ConnectionOptions,
    ReadOptions,
    WriteOptions,
    build_qdrant_config,
    build_qdrant_write_config,
)

QDRANT_URL_ENV = "QDRANT_URL"
QDRANT_API_KEY_ENV = "QDRANT_API_KEY"


def _default(options_class: type, name: str) -> Any:
    """The default of an option, read from the options dataclass so there is one source of truth."""
    option = options_class.__dataclass_fields__[name]
    if option.default is not dataclasses.MISSING:
        return option.default
    return option.default_factory()  # type: ignore[misc]


class QdrantReadConfig(Config):
    """Reader options used by ``load_input``; per input, ``AssetIn(metadata=...)`` overrides any of them.

    ``AssetIn`` metadata also accepts ``columns`` (the DataFrame columns to return).
    """

    with_payload: bool = Field(
        default=True, description="Read the points' payload (the non-vector columns)."
    )
    with_vectors: bool = Field(
        default=True,
        description="Read the vectors too (the reader alone defaults to false; an IO manager usually "
        "loads embeddings to use them).",
    )
    limit: Optional[int] = Field(
        default=_default(ReadOptions, "limit"), description="Read at most this many points (None: all)."
    )
    page_size: int = Field(
        default=_default(ReadOptions, "page_size"), description="Points per scroll request."
    )
    max_pages: Optional[int] = Field(
        default=_default(ReadOptions, "max_pages"),
        description="Stop each partition after this many pages (None: no limit).",
    )
    filter: Optional[dict[str, Any]] = Field(
        default=None,
        description="A Qdrant filter object, e.g. {'must': [{'key': 'topic', 'match': {'value': 'x'}}]}; "
        "combined with the partition filter.",
    )
    offset: Optional[Any] = Field(
        default=_default(ReadOptions, "offset"),
        description="Start the read at this point id (unsigned integer or UUID; None: the first point).",
    )
    infer_schema: bool = Field(
        default=_default(ReadOptions, "infer_schema"),
        description="Infer the DataFrame schema from a sample of points (else give spark_schema).",
    )
    num_partitions: Optional[int] = Field(
        default=_default(ReadOptions, "num_partitions"),
        description="Spark partitions to read in parallel (None: the reader picks from the point count).",
    )
    partitioning: str = Field(
        default=_default(ReadOptions, "partitioning"),
        description="How a parallel read splits the points: auto (hash slices on Qdrant 1.19+, else id "
        "ranges), slice or id_range.",
    )
    spark_schema: Optional[str] = Field(
        default=None,
        description="The DataFrame schema as Spark JSON (StructType.json()); the reader option 'schema'.",
    )
    # Any: Dagster config has no int-or-str type; the reader's parser checks the value.
    sample_size: Any = Field(
        default=_default(ReadOptions, "sample_size"),
        description="Points sampled to infer the schema: an integer >= 1, or 'all' for every point.",
    )
    schema_mismatch: str = Field(
        default=_default(ReadOptions, "schema_mismatch"),
        description="A payload key or value the inferred schema has no room for: warn (read the rest, log "
        "it) or error (fail the read).",
    )
    payload_layout: str = Field(
        default=_default(ReadOptions, "payload_layout"),
        description="Where the payload goes: columns (one column per key), struct (spark-fuse's payload "
        "struct), json (the payload's JSON text in a payload column), or auto (struct for a given schema of "
        "spark-fuse's shape, else columns).",
    )
    missing_columns: str = Field(
        default=_default(ReadOptions, "missing_columns"),
        description="A given schema's payload column that no sampled point carries: error (fail the read, "
        "naming it) or null (read it as null).",
    )

    def to_options(self) -> dict[str, Any]:
        """The reader options these fields stand for (``spark_schema`` is the option ``schema``)."""
        options = self.model_dump()
        options["schema"] = options.pop("spark_schema")
        return options


class QdrantWriteConfig(Config):
    """Writer options used by ``handle_output``; per asset, definition metadata overrides any of them."""

    id_field: Optional[str] = Field(
        default=_default(WriteOptions, "id_field"),
        description="Column holding the point id (unsigned integer or UUID).",
    )
    vector_field: Optional[str] = Field(
        default=_default(WriteOptions, "vector_field"),
        description="Column holding the (unnamed) dense vector.",
    )
    vector_fields: dict[str, str] = Field(
        default_factory=dict,
        description="Named dense vectors: column -> vector name (replaces vector_field when set).",
    )
    sparse_vector_fields: dict[str, str] = Field(
        default_factory=dict, description="Named sparse vectors: column -> vector name."
    )
    payload_fields: Optional[list[str]] = Field(
        default=None,
        description="Columns stored as payload (None: every column but the id and the vectors).",
    )
    distance: str = Field(
        default=_default(WriteOptions, "distance"),
        description="Distance of the vectors when the collection is created: Cosine, Euclid, Dot, Manhattan.",
    )
    batch_size: int = Field(
        default=_default(WriteOptions, "batch_size"), description="Points per upsert request."
    )
    max_batch_bytes: int = Field(
        default=_default(WriteOptions, "max_batch_bytes"),
        description="Upper bound of one request body in bytes (Qdrant refuses more than 32 MB by default).",
    )
    wait: bool = Field(
        default=_default(WriteOptions, "wait"),
        description="Wait until Qdrant has applied each batch (needed for exact counts right after).",
    )
    payload_format: str = Field(
        default=_default(WriteOptions, "payload_format"),
        description="Upsert body shape: auto, batch (columnar) or points.",
    )
    write_method: str = Field(
        default=_default(WriteOptions, "write_method"),
        description="HTTP method of the upsert: auto, put or post.",
    )
    max_in_flight: int = Field(
        default=_default(WriteOptions, "max_in_flight"),
        description="Upsert requests in flight at once per Spark task.",
    )
    non_finite: str = Field(
        default=_default(WriteOptions, "non_finite"),
        description="NaN and infinite payload values (JSON has neither): error (refuse them) or null.",
    )
    decimal_as: str = Field(
        default=_default(WriteOptions, "decimal_as"),
        description="Decimal payload values: error (numbers only where Qdrant gives them back exactly), "
        "string (the exact text) or double (the nearest double).",
    )

    def to_options(self) -> dict[str, Any]:
        """The writer options these fields stand for."""
        return self.model_dump()


class QdrantResource(ConfigurableResource):
    """A connection to Qdrant: a real server (``endpoint`` or ``QDRANT_URL``) or the embedded one.

    Example::

        @asset
        def neighbours(qdrant: QdrantResource) -> list[dict]:
            return qdrant.search("documents", [0.1] * 64, limit=5)

        @asset
        def raw_points(qdrant: QdrantResource, pyspark: PySparkResource):
            spark = pyspark.spark_session
            return spark.read.format("qdrant").options(**qdrant.spark_read_options("documents")).load()
    """

    endpoint: Optional[str] = Field(
        default=None,
        description="Qdrant URL, e.g. http://localhost:6333. Unset: the QDRANT_URL environment variable, "
        "else an embedded Qdrant started on demand.",
    )
    api_key: Optional[str] = Field(
        default=None,
        description="API key (use EnvVar('QDRANT_API_KEY')). Unset: the QDRANT_API_KEY environment "
        "variable, if any. Never logged nor put in metadata.",
        repr=False,
    )
    headers: dict[str, str] = Field(
        default_factory=dict,
        description="Extra HTTP headers sent with every request (they may carry credentials: not shown in repr).",
        repr=False,
    )
    timeout: float = Field(
        default=_default(ConnectionOptions, "timeout"), description="Seconds to wait for one response."
    )
    connect_timeout: float = Field(
        default=_default(ConnectionOptions, "connect_timeout"),
        description="Seconds to wait for the server to accept a connection, and for its answer to the "
        "connection check the IO manager makes before each write.",
    )
    max_retries: int = Field(
        default=_default(ConnectionOptions, "max_retries"),
        description="Retries of a request after a timeout, a dropped connection, 408, 429, 500, 502, 503 or 504.",
    )
    backoff_factor: float = Field(
        default=_default(ConnectionOptions, "backoff_factor"),
        description="Base of the exponential backoff between retries, in seconds.",
    )
    verify: bool = Field(default=True, description="Verify TLS certificates (https endpoints).")
    ca_bundle: Optional[str] = Field(
        default=None, description="Path of a CA bundle to verify TLS certificates with (overrides verify)."
    )
    embedded_path: Optional[str] = Field(
        default=None,
        description="Data directory of the embedded Qdrant (unset: DAGSTER_QDRANT_PATH, else .qdrant/).",
    )

    _resolved_endpoint: Optional[str] = PrivateAttr(default=None)

    def resolved_endpoint(self) -> str:
        """The URL in use; starts (or joins) the embedded server when neither field nor env names one."""
        if self._resolved_endpoint is None:
            endpoint = self.endpoint or os.environ.get(QDRANT_URL_ENV)
            if not endpoint:
                from dagster_qdrant.embedded import ensure_embedded_qdrant

                endpoint = ensure_embedded_qdrant(self.embedded_path, api_key=self.api_key)
            self._resolved_endpoint = endpoint.rstrip("/")
        return self._resolved_endpoint

    def resolved_api_key(self) -> Optional[str]:
        return self.api_key or os.environ.get(QDRANT_API_KEY_ENV) or None

    def connection_settings(self) -> dict[str, Any]:
        """Connection options as keyword arguments of build_qdrant_config / build_qdrant_write_config."""
        return {
            "endpoint": self.resolved_endpoint(),
            "api_key": self.resolved_api_key(),
            "headers": dict(self.headers),
            "timeout": self.timeout,
            "connect_timeout": self.connect_timeout,
            "max_retries": self.max_retries,
            "backoff_factor": self.backoff_factor,
            "verify": self.ca_bundle or self.verify,
        }

    def connection_options(self) -> ConnectionOptions:
        return ConnectionOptions(**self.connection_settings())

    def http(self):  # -> QdrantHttp (imported lazily: http.py pulls in requests/orjson)
        """The pooled HTTP client for this connection."""
        from dagster_qdrant.http import QdrantHttp

        return QdrantHttp(self.connection_options())

    def read_config(self, collection: str, **options: Any) -> dict[str, Any]:
        """Validated reader options for ``collection`` (see dagster_qdrant.options.ReadOptions)."""
        settings = self.connection_settings()
        endpoint = settings.pop("endpoint")
        return build_qdrant_config(endpoint, collection, **{**settings, **options})

    def write_config(self, collection: str, **options: Any) -> dict[str, Any]:
        """Validated writer options for ``collection`` (see dagster_qdrant.options.WriteOptions)."""
        settings = self.connection_settings()
        endpoint = settings.pop("endpoint")
        return build_qdrant_write_config(endpoint, collection, **{**settings, **options})

    def spark_read_options(self, collection: str, **options: Any) -> dict[str, str]:
        """``spark.read.format("qdrant").options(**...)``: the read config as the one ``qdrant.config`` option."""
        return ReadOptions.from_mapping(self.read_config(collection, **options)).spark_options()

    def spark_write_options(self, collection: str, **options: Any) -> dict[str, str]:
        """``df.write.format("qdrant").options(**...)``: the write config as the one ``qdrant.config`` option."""
        return WriteOptions.from_mapping(self.write_config(collection, **options)).spark_options()

    def collection_url(self, collection: str) -> str:
        """The REST URL of a collection (no credentials in it)."""
        return f"{self.resolved_endpoint()}/collections/{collection}"

    def search(
        self,
        collection: str,
        vector: Any,
        *,
        limit: int = 10,
        filter: Optional[dict[str, Any]] = None,
        using: Optional[str] = None,
        with_payload: Any = True,
        with_vectors: Any = False,
        score_threshold: Optional[float] = None,
    ) -> list[dict[str, Any]]:
        """Nearest points to ``vector`` (POST /collections/{name}/points/query), best first.

        Each result is Qdrant's ScoredPoint: ``{"id", "score", "payload", "vector"?}``.
        """
        body: dict[str, Any] = {
            "query": [float(value) for value in vector],
            "limit": limit,
            "with_payload": with_payload,
            "with_vector": with_vectors,
        }
        if filter is not None:
            body["filter"] = filter
        if using is not None:
            body["using"] = using
        if score_threshold is not None:
            body["score_threshold"] = score_threshold
        return self.http().query(collection, body)
