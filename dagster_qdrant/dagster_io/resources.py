"""QdrantResource: where Qdrant is and how to talk to it, for assets and for the IO manager.

The resource resolves the endpoint once per process: the ``endpoint`` field, else the ``QDRANT_URL``
environment variable, else an embedded Qdrant started on demand (so the example and the tests run with
no server to install); a ``config: QdrantConfig`` (qdrant-client's terms, the community package's API: see
community.py) names it instead. It hands out validated read and write configs for
``spark.read/write.format("qdrant")`` and answers similarity queries for assets that search a collection.
The API key travels only inside the configs and request headers: ``repr`` of those hides it and it is never
logged or put in metadata.

Also here: ``QdrantReadConfig`` and ``QdrantWriteConfig``, Dagster config classes built from the options'
declarations in ``dagster_qdrant.options`` (one typed field per reader / writer option, with its name,
default and description), but for the connection options (fields of ``QdrantResource``, which takes the
shared ones from the same declarations), ``collection`` and ``create_collection`` (the IO manager names and
creates the collection), ``schema`` (``spark_schema``: pydantic reserves the name) and the default of
``with_vectors`` (an IO manager loads embeddings to use them). Options leave here as ``ReadOptions`` /
``WriteOptions`` objects, validated once.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Optional

from dagster import Config, ConfigurableResource
from pydantic import ConfigDict, Field, PrivateAttr, create_model

from dagster_qdrant.dagster_io import community
from dagster_qdrant.dagster_io.community import QdrantConfig
from dagster_qdrant.options import ConnectionOptions, Option, QdrantOptionsDict, ReadOptions, WriteOptions

if TYPE_CHECKING:
    from qdrant_client import QdrantClient

QDRANT_URL_ENV = "QDRANT_URL"
QDRANT_API_KEY_ENV = "QDRANT_API_KEY"


class _OptionsConfig(Config):
    """Config fields standing for options; ``to_options`` gives the options' names back."""

    model_config = ConfigDict(extra="forbid")  # a misspelt field is refused, never silently ignored

    def to_options(self) -> dict[str, Any]:
        """The options these fields stand for (``spark_schema`` is the option ``schema``)."""
        names = _OPTION_NAMES[type(self)]
        return {names.get(key, key): value for key, value in self.model_dump().items()}


_OPTION_NAMES: dict[type, dict[str, str]] = {}
"""Per generated config class: config field name -> option name, where they differ."""


def _config_class(
    name: str,
    doc: str,
    options: Sequence[Option],
    *,
    base: type = _OptionsConfig,
    defaults: Optional[dict[str, tuple[Any, str]]] = None,
) -> Any:
    """A Dagster config class with one typed, described field per option, from the options' declarations.

    ``defaults`` gives a field a default of its own (option name -> (default, why)), said in its description.
    """
    fields: dict[str, Any] = {}
    renamed: dict[str, str] = {}
    for declared in options:
        default, description = declared.default_value(), declared.doc
        if defaults and declared.name in defaults:
            default, why = defaults[declared.name]
            description = f"{description} (default here {default!r}: {why})"
        config_name = declared.config_name or declared.name
        if config_name != declared.name:
            renamed[config_name] = declared.name
            description = f"{description} (the option {declared.name!r})"
        kind = declared.config_type if declared.config_type is not None else declared.type
        if isinstance(default, dict):
            spec = Field(default_factory=dict, description=description, repr=not declared.secret)
        else:
            spec = Field(default=default, description=description, repr=not declared.secret)
        fields[config_name] = (kind, spec)
    model = create_model(name, __base__=base, __module__=__name__, __doc__=doc, **fields)
    _OPTION_NAMES[model] = renamed
    return model


def _options_of(options_class: type[ConnectionOptions], leave_out: set[str]) -> list[Option]:
    return [declared for declared in options_class.declared() if declared.name not in leave_out]


_CONNECTION = set(ConnectionOptions.option_names())
_RESOURCE_OWN = {"endpoint", "api_key", "verify"}
"""Connection options ``QdrantResource`` declares itself: ``endpoint`` and ``api_key`` fall back on the
environment (and the embedded Qdrant), ``verify`` is ``verify`` + ``ca_bundle`` (Dagster config has no
bool-or-path type)."""

QdrantReadConfig = _config_class(
    "QdrantReadConfig",
    """Reader options used by ``load_input``; per input, ``AssetIn(metadata=...)`` overrides any of them.

    One field per reader option of ``dagster_qdrant.options.ReadOptions`` (same name, type, default and
    description), but for the connection options (fields of ``QdrantResource``) and ``collection`` (the
    IO manager names the collection). ``AssetIn`` metadata also accepts ``columns`` (the DataFrame columns
    to return).
    """,
    _options_of(ReadOptions, _CONNECTION | {"collection"}),
    defaults={"with_vectors": (True, "an IO manager loads embeddings to use them")},
)

QdrantWriteConfig = _config_class(
    "QdrantWriteConfig",
    """Writer options used by ``handle_output``; per asset, definition metadata overrides any of them.

    One field per writer option of ``dagster_qdrant.options.WriteOptions`` (same name, type, default and
    description), but for the connection options (fields of ``QdrantResource``), ``collection`` and
    ``create_collection`` (the IO manager names and creates the collection).
    """,
    _options_of(WriteOptions, _CONNECTION | {"collection", "create_collection"}),
)

_ConnectionConfig = _config_class(
    "_ConnectionConfig",
    "The connection options every request shares, as resource fields.",
    _options_of(ConnectionOptions, _RESOURCE_OWN),
    base=ConfigurableResource,
)


class QdrantResource(_ConnectionConfig):
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

    model_config = ConfigDict(extra="forbid")  # a misspelt field is refused, never silently ignored

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
    verify: bool = Field(default=True, description="Verify TLS certificates (https endpoints).")
    ca_bundle: Optional[str] = Field(
        default=None, description="Path of a CA bundle to verify TLS certificates with (overrides verify)."
    )
    embedded_path: Optional[str] = Field(
        default=None,
        description="Data directory of the embedded Qdrant (unset: DAGSTER_QDRANT_PATH, else .qdrant/).",
    )

    config: Optional[QdrantConfig] = Field(
        default=None,
        description="The connection in qdrant-client's terms (the community dagster-qdrant's QdrantConfig: "
        "host, url, port, api_key, path, ...); it then names the server, and the fields above may only agree "
        "with it. path and ':memory:' name the embedded Qdrant.",
    )

    _resolved_endpoint: Optional[str] = PrivateAttr(default=None)
    _connection: Optional[ConnectionOptions] = PrivateAttr(default=None)

    def resolved_endpoint(self) -> str:
        """The URL in use; starts (or joins) the embedded server when neither field nor env names one."""
        if self._resolved_endpoint is None:
            if self.config is not None:
                endpoint = community.resolve_endpoint(self)
            else:
                endpoint = self.endpoint or os.environ.get(QDRANT_URL_ENV)
            if not endpoint:
                from dagster_qdrant.embedded import ensure_embedded_qdrant

                endpoint = ensure_embedded_qdrant(self.embedded_path, api_key=self.api_key)
            self._resolved_endpoint = endpoint.rstrip("/")
        return self._resolved_endpoint

    def resolved_api_key(self) -> Optional[str]:
        if self.config is not None:
            return community.resolve_api_key(self)
        return self.api_key or os.environ.get(QDRANT_API_KEY_ENV) or None

    def connection_settings(self) -> dict[str, Any]:
        """Connection options as keyword arguments of build_qdrant_config / build_qdrant_write_config."""
        return {
            "endpoint": self.resolved_endpoint(),
            "api_key": self.resolved_api_key(),
            "headers": dict(self.headers),
            "timeout": community.resolve_timeout(self) if self.config is not None else self.timeout,
            "connect_timeout": self.connect_timeout,
            "max_retries": self.max_retries,
            "backoff_factor": self.backoff_factor,
            "verify": self.ca_bundle or self.verify,
        }

    @contextmanager
    def get_client(self) -> Iterator[QdrantClient]:
        """``with qdrant.get_client() as client:`` the official ``qdrant_client.QdrantClient`` for this
        resource's endpoint (the embedded Qdrant included), closed when the block ends.

        Needs the ``client`` extra: ``pip install 'dagster-qdrant[client]'``.
        """
        with community.open_client(self) as client:
            yield client

    def connection_options(self) -> ConnectionOptions:
        """The validated connection options, built once per resource (every ``http()`` shares them)."""
        if self._connection is None:
            self._connection = ConnectionOptions(**self.connection_settings())
        return self._connection

    def http(self):  # -> QdrantHttp (imported lazily: http.py pulls in requests/orjson)
        """The pooled HTTP client for this connection."""
        from dagster_qdrant.http import QdrantHttp

        return QdrantHttp(self.connection_options())

    def read_options(self, collection: str, **options: Any) -> ReadOptions:
        """Reader options for ``collection`` over this connection, validated once here."""
        return ReadOptions.from_mapping(self._settings("read_options", collection, options))

    def write_options(self, collection: str, **options: Any) -> WriteOptions:
        """Writer options for ``collection`` over this connection, validated once here."""
        return WriteOptions.from_mapping(self._settings("write_options", collection, options))

    def _settings(self, method: str, collection: str, options: dict[str, Any]) -> dict[str, Any]:
        """This connection's settings, the collection, then ``options`` (which may override a setting)."""
        if "collection" in options:
            raise TypeError(f"{method}() got 'collection' both positionally and as a keyword")
        return {**self.connection_settings(), "collection": collection, **options}

    def read_config(self, collection: str, **options: Any) -> QdrantOptionsDict:
        """``read_options`` as a JSON-able dict (what ``build_qdrant_config`` returns)."""
        return self.read_options(collection, **options).to_config()

    def write_config(self, collection: str, **options: Any) -> QdrantOptionsDict:
        """``write_options`` as a JSON-able dict (what ``build_qdrant_write_config`` returns)."""
        return self.write_options(collection, **options).to_config()

    def spark_read_options(self, collection: str, **options: Any) -> dict[str, str]:
        """``spark.read.format("qdrant").options(**...)``: the read options as the one ``qdrant.config`` option."""
        return self.read_options(collection, **options).spark_options()

    def spark_write_options(self, collection: str, **options: Any) -> dict[str, str]:
        """``df.write.format("qdrant").options(**...)``: the write options as the one ``qdrant.config`` option."""
        return self.write_options(collection, **options).spark_options()

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
