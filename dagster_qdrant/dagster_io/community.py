"""The community ``dagster-qdrant`` 0.0.4 API on our resource: ``QdrantConfig`` and ``get_client()``.

Dagster's and Qdrant's documentation show ``QdrantResource(config=QdrantConfig(host=..., api_key=...))`` and
``with qdrant.get_client() as client:`` (an official ``qdrant_client.QdrantClient``). That code runs
unchanged here: ``QdrantConfig`` has the community package's fields and defaults, and means what
``QdrantClient(**config)`` means, with one resolution shared by ``get_client()`` and everything else the
resource serves (the IO manager, the data source options, ``search``):

- ``location`` (a URL), ``url`` or ``host`` (or none of them: qdrant-client's ``http://localhost:6333``) name a
  server, with ``port``, ``https`` and ``prefix`` as qdrant-client combines them (its own rules, its URL
  parser; ``https`` defaults to whether an API key is given).
- ``path=DIR``: qdrant-client's local mode keeps its data in ``DIR``; here ``DIR`` is the data directory of the
  embedded Qdrant (the real engine, shared by every process over loopback). A directory holding qdrant-client
  local-mode files is refused: the embedded Qdrant does not read them.
- ``location=":memory:"``: a temporary embedded Qdrant owned by this process, its data directory removed
  when the process exits. Nothing outlives the process, as with qdrant-client's ``:memory:``; unlike it, every
  client and the IO manager of one process see the same points.
- ``prefer_grpc=True`` passes through to a real Qdrant; against the embedded Qdrant (``path``, ``:memory:``,
  no config at all) ``get_client()`` refuses it: that server speaks REST only.

The resource's own fields may restate what the config says (``endpoint``, ``api_key``, ``timeout``,
``embedded_path``) and fill what it leaves unset (``api_key``, ``timeout``); where both say different things
the resource refuses, naming both. With a config, ``QDRANT_URL`` and ``QDRANT_API_KEY`` are not read:
qdrant-client does not read them either. ``qdrant-client`` itself is needed only by ``get_client()``
(``pip install 'dagster-qdrant[client]'``).
"""

from __future__ import annotations

import atexit
import math
import shutil
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional, Protocol

from dagster import Config
from pydantic import ConfigDict, Field

from dagster_qdrant.errors import QdrantConfigError

if TYPE_CHECKING:
    from qdrant_client import QdrantClient


class ResourceFields(Protocol):
    """What this module reads of ``resources.QdrantResource`` (typed here so that the resource module is
    the only one importing the other: no cycle between the two)."""

    config: Optional["QdrantConfig"]
    endpoint: Optional[str]
    api_key: Optional[str]
    timeout: float
    headers: Any
    verify: Any
    ca_bundle: Optional[str]
    embedded_path: Optional[str]
    model_fields_set: set[str]

    def resolved_endpoint(self) -> str: ...

    def resolved_api_key(self) -> Optional[str]: ...


MEMORY_LOCATION = ":memory:"
CLIENT_EXTRA_HINT = "pip install 'dagster-qdrant[client]'"
# Files qdrant-client's local mode writes into its path: meta.json and collection/<name>/storage.sqlite.
_LOCAL_MODE_MARKERS = ("meta.json", "collection")


class QdrantConfig(Config):
    """Where Qdrant is, in qdrant-client's terms (the community ``dagster-qdrant`` package's fields and defaults)."""

    model_config = ConfigDict(extra="forbid")  # a misspelt field is refused, never silently ignored

    location: Optional[str] = Field(
        default=None,
        description="':memory:': a temporary embedded Qdrant of this process; any other text: used as url.",
    )
    url: Optional[str] = Field(
        default=None, description="'[scheme://]host[:port][/prefix]' of a Qdrant server."
    )
    port: Optional[int] = Field(
        default=6333, description="REST port, used when url names none (or with host)."
    )
    grpc_port: int = Field(default=6334, description="gRPC port of a real Qdrant (prefer_grpc).")
    prefer_grpc: bool = Field(
        default=False,
        description="The client uses gRPC where it can (a real Qdrant only: the embedded Qdrant speaks REST).",
    )
    https: Optional[bool] = Field(
        default=None, description="Use https (unset: https when an API key is given, as qdrant-client does)."
    )
    api_key: Optional[str] = Field(
        default=None,
        description="API key (use EnvVar('QDRANT_API_KEY')); never logged nor put in metadata.",
        repr=False,
    )
    prefix: Optional[str] = Field(
        default=None, description="Path prefix of the REST API, e.g. 'service/v1'."
    )
    timeout: Optional[int] = Field(
        default=None,
        description="Seconds to wait for one response (unset: the resource's timeout; qdrant-client's 5 s "
        "in get_client()).",
    )
    host: Optional[str] = Field(
        default=None, description="Host name of a Qdrant server (no scheme); none of url/host/location: localhost."
    )
    path: Optional[str] = Field(
        default=None,
        description="Data directory of the embedded Qdrant (qdrant-client's local-mode persistence path).",
    )
    force_disable_check_same_thread: bool = Field(
        default=False,
        description="qdrant-client's local-mode option; accepted and without effect (no local mode here).",
    )
    check_compatibility: bool = Field(
        default=True, description="qdrant-client checks that the server's version suits it."
    )

    def is_embedded(self) -> bool:
        """True when this config names the embedded Qdrant (``path`` or ``:memory:``), not a server."""
        return self.location == MEMORY_LOCATION or self.path is not None


def config_server_url(config: QdrantConfig, api_key: Optional[str]) -> str:
    """The REST base URL ``QdrantClient(**config, api_key=api_key)`` talks to (no trailing slash).

    qdrant-client's own rules, with its URL parser (urllib3's), so both always agree.
    """
    from urllib.parse import urljoin

    from urllib3.util import parse_url

    _refuse_two_places(config)
    url = config.url if config.url is not None else config.location
    https = config.https if config.https is not None else api_key is not None
    scheme = "https" if https else "http"
    prefix = config.prefix or ""
    if prefix and not prefix.startswith("/"):
        prefix = f"/{prefix}"
    if config.host is not None:
        if config.host.startswith(("http://", "https://")):
            raise QdrantConfigError(
                f"QdrantConfig.host {config.host!r} contains a scheme; give it as url instead"
            )
        host, port = config.host, config.port
    elif url:
        parsed = parse_url(f"//{url}" if url.startswith("localhost") else url)
        host, port = parsed.host, parsed.port or config.port
        scheme = parsed.scheme or scheme
        if prefix and parsed.path:
            raise QdrantConfigError(
                f"QdrantConfig: url {url!r} has the path {parsed.path!r} and prefix is {config.prefix!r}; "
                "give the prefix in one of them"
            )
        prefix = prefix or parsed.path or ""
        if scheme not in ("http", "https"):
            raise QdrantConfigError(f"QdrantConfig: url {url!r} has the scheme {scheme!r}; use http or https")
    else:
        host, port = "localhost", config.port
    address = f"{host}:{port}" if port is not None else f"{host}"
    return urljoin(f"{scheme}://{address}", prefix).rstrip("/")


def _refuse_two_places(config: QdrantConfig) -> None:
    named = [name for name in ("location", "url", "host", "path") if getattr(config, name) is not None]
    if len(named) > 1:
        raise QdrantConfigError(
            f"QdrantConfig: {' and '.join(named)} are all set; set only one of location, url, host or path"
        )


def _refuse_conflict(field: str, ours: Any, config_field: str, theirs: Any) -> None:
    raise QdrantConfigError(
        f"QdrantResource.{field} ({ours}) and QdrantResource.config.{config_field} ({theirs}) disagree; "
        f"set one of them (QdrantConfig takes qdrant-client's names, the resource's own fields ours)"
    )


def resolve_api_key(resource: ResourceFields) -> Optional[str]:
    """``config.api_key``, else the resource's ``api_key``; both set and different is an error."""
    config = resource.config
    assert config is not None
    if config.api_key and resource.api_key and config.api_key != resource.api_key:
        # The keys themselves never go into a message.
        _refuse_conflict("api_key", "one key", "api_key", "another key")
    return config.api_key or resource.api_key or None


def resolve_timeout(resource: ResourceFields) -> float:
    """``config.timeout``, else the resource's ``timeout``; both set and different is an error."""
    config = resource.config
    assert config is not None
    if config.timeout is None:
        return resource.timeout
    if "timeout" in resource.model_fields_set and float(config.timeout) != float(resource.timeout):
        _refuse_conflict("timeout", resource.timeout, "timeout", config.timeout)
    return float(config.timeout)


def resolve_endpoint(resource: ResourceFields) -> str:
    """The URL the resource serves when it has a config: the server it names, or the embedded Qdrant."""
    config = resource.config
    assert config is not None
    api_key = resolve_api_key(resource)
    if not config.is_embedded():
        url = config_server_url(config, api_key)
        if resource.endpoint and resource.endpoint.rstrip("/") != url:
            _refuse_conflict("endpoint", repr(resource.endpoint), "url/host/location", repr(url))
        return url
    _refuse_two_places(config)
    if resource.endpoint:
        _refuse_conflict(
            "endpoint", repr(resource.endpoint), "path/location", "the embedded Qdrant: " + repr(config.path or config.location)
        )
    if config.location == MEMORY_LOCATION:
        return _memory_server_url(api_key)
    data_path = Path(config.path).expanduser().resolve()  # type: ignore[arg-type]
    if resource.embedded_path and Path(resource.embedded_path).expanduser().resolve() != data_path:
        _refuse_conflict("embedded_path", repr(resource.embedded_path), "path", repr(config.path))
    _refuse_local_mode_directory(data_path)
    from dagster_qdrant.embedded import ensure_embedded_qdrant

    return ensure_embedded_qdrant(data_path, api_key=api_key)


def _refuse_local_mode_directory(data_path: Path) -> None:
    """qdrant-client local-mode data in ``data_path`` would look like an empty Qdrant here: refuse it."""
    found = [name for name in _LOCAL_MODE_MARKERS if (data_path / name).exists()]
    if found:
        raise QdrantConfigError(
            f"QdrantConfig.path {str(data_path)!r} holds qdrant-client local-mode data ({', '.join(found)}), "
            "which the embedded Qdrant does not read; give path a new directory and copy the points over "
            "(scroll them from QdrantClient(path=...) and upsert them through get_client())"
        )


_memory_lock = threading.Lock()
_memory_server: dict[str, Any] = {}


def _memory_server_url(api_key: Optional[str]) -> str:
    """The ``:memory:`` embedded Qdrant of this process, started on first use, removed at exit."""
    import os

    from dagster_qdrant.embedded import start_embedded_qdrant

    with _memory_lock:
        if _memory_server.get("pid") != os.getpid():  # a forked child starts its own
            directory = tempfile.mkdtemp(prefix="dagster-qdrant-memory-")
            server = start_embedded_qdrant(directory, api_key=api_key)
            _memory_server.update(pid=os.getpid(), server=server, api_key=api_key)
            atexit.register(_stop_memory_server, server, directory)
        elif _memory_server["api_key"] != api_key:
            raise QdrantConfigError(
                "QdrantConfig(location=':memory:'): this process's in-memory Qdrant was started with another "
                "api_key; use one api_key for ':memory:' in a process"
            )
        return _memory_server["server"].url


def _stop_memory_server(server: Any, directory: str) -> None:
    server.stop()
    shutil.rmtree(directory, ignore_errors=True)


def _qdrant_client_class() -> type[QdrantClient]:
    try:
        from qdrant_client import QdrantClient
    except ImportError as error:
        raise ImportError(
            f"QdrantResource.get_client() needs qdrant-client, the official Qdrant client: {CLIENT_EXTRA_HINT}"
        ) from error
    return QdrantClient


def _transport_arguments(resource: ResourceFields) -> dict[str, Any]:
    """The resource's headers and TLS settings, for the client's HTTP transport (only when set)."""
    arguments: dict[str, Any] = {}
    if resource.headers:
        arguments["headers"] = dict(resource.headers)
    if resource.ca_bundle or not resource.verify:
        arguments["verify"] = resource.ca_bundle or resource.verify
    return arguments


def client_arguments(resource: ResourceFields) -> dict[str, Any]:
    """Keyword arguments of ``QdrantClient`` for this resource (the API key among them: never log this)."""
    config = resource.config
    if config is None:
        # Our endpoint is a whole URL: port=None keeps qdrant-client from adding 6333 to one without a port.
        return {
            "url": resource.resolved_endpoint(),
            "port": None,
            "api_key": resource.resolved_api_key(),
            "timeout": math.ceil(resource.timeout),
            **_transport_arguments(resource),
        }
    timeout = config.timeout
    if timeout is None and "timeout" in resource.model_fields_set:
        timeout = math.ceil(resource.timeout)
    if config.is_embedded():
        if config.prefer_grpc:
            raise QdrantConfigError(
                "QdrantConfig(prefer_grpc=True) with path or ':memory:': the embedded Qdrant serves REST "
                "only; drop prefer_grpc, or point url at a Qdrant server that serves gRPC"
            )
        return {
            "url": resource.resolved_endpoint(),
            "port": None,
            "api_key": resolve_api_key(resource),
            "timeout": timeout,
            "check_compatibility": config.check_compatibility,
            **_transport_arguments(resource),
        }
    resource.resolved_endpoint()  # the same checks as every other use of the resource
    arguments = config.model_dump()
    arguments.update(api_key=resolve_api_key(resource), timeout=timeout)
    return {**arguments, **_transport_arguments(resource)}


@contextmanager
def open_client(resource: ResourceFields) -> Iterator[QdrantClient]:
    """An official ``QdrantClient`` for the resource's endpoint, closed when the block ends."""
    client_class = _qdrant_client_class()
    client = client_class(**client_arguments(resource))
    try:
        yield client
    finally:
        client.close()
