"""The REST routes: (method, path pattern) -> handler, and the service and collection handlers.

Handlers take `Request` and return the `result` value (the HTTP layer wraps it in Qdrant's envelope),
or a `PlainText` for the health probes, which Qdrant answers in plain text.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from dagster_qdrant.embedded import batch_routes, point_routes
from dagster_qdrant.embedded.config import collection_info
from dagster_qdrant.embedded.errors import ApiError, bad_json, invalid_in
from dagster_qdrant.embedded.request import Request
from dagster_qdrant.embedded.store import MAX_NAME_LENGTH

QDRANT_TITLE = "qdrant - vector search engine"
QDRANT_VERSION = "1.19.0"
# The commit of the Qdrant 1.19.0 release, whose REST API this server speaks; `GET /` reports it as Qdrant does.
QDRANT_COMMIT = "74f3e85b9473c62560006c043e13737ce6b48412"


@dataclass
class PlainText:
    """A plain-text answer (health probes)."""

    text: str


@dataclass
class BareJson:
    """A JSON answer without the result envelope (`GET /` answers like this in Qdrant)."""

    value: Any


Handler = Callable[[Request], Any]


def root(request: Request) -> Any:
    return BareJson({"title": QDRANT_TITLE, "version": QDRANT_VERSION, "commit": QDRANT_COMMIT})


def health(request: Request) -> Any:
    return PlainText("healthz check passed")


def ready(request: Request) -> Any:
    """A single node is ready once it answers (the spec's single-node case)."""
    return PlainText("all shards are ready")


def list_collections(request: Request) -> Any:
    return {"collections": [{"name": name} for name in request.store.names()]}


def get_collection(request: Request) -> Any:
    collection = request.store.resolve(request.path_parameters["collection"])
    return collection_info(collection.config, collection.read("info"))


def create_collection(request: Request) -> Any:
    request.store.create(request.path_parameters["collection"], request.body)
    return True


def update_collection(request: Request) -> Any:
    """PATCH: the `UpdateCollection` diff is applied to the collection's config and engine (`collection_update`)."""
    request.store.update(request.path_parameters["collection"], request.body)
    return True


def delete_collection(request: Request) -> Any:
    return request.store.delete(request.path_parameters["collection"])


def collection_exists(request: Request) -> Any:
    return {"exists": request.store.exists(request.path_parameters["collection"])}


def update_aliases(request: Request) -> Any:
    body = request.body
    if not isinstance(body, dict) or not isinstance(body.get("actions"), list):
        raise bad_json("missing field `actions`: expected {\"actions\": [create_alias | delete_alias | rename_alias]}")
    request.store.update_aliases(body["actions"])
    return True


def list_aliases(request: Request) -> Any:
    return {"aliases": request.store.aliases()}


def collection_aliases(request: Request) -> Any:
    name = request.path_parameters["collection"]
    request.store.resolve(name)
    return {"aliases": request.store.aliases(name)}


def check_query_parameters(query: dict[str, str]) -> None:
    """The URL parameters every endpoint shares: `timeout` is a whole number of seconds, at least 1."""
    timeout = query.get("timeout")
    if timeout is None:
        return
    if not timeout.isdigit():
        raise ApiError(400, f"Deserialize error in query parameters: timeout: invalid digit found in string `{timeout}`")
    if int(timeout) < 1:
        raise ApiError(422, f"Validation error in query parameters: [timeout: value {int(timeout)} invalid, must be 1 or larger]")


def check_collection_parameter(path_parameters: dict[str, str]) -> None:
    """Qdrant validates the collection name of every path (1 to 255 characters) before anything else."""
    name = path_parameters.get("collection")
    if name is not None and not 1 <= len(name) <= MAX_NAME_LENGTH:
        raise invalid_in("path parameters", f"name: length must be between 1 and {MAX_NAME_LENGTH} characters")


def _checked(handler: Handler) -> Handler:
    def checked_handler(request: Request) -> Any:
        check_collection_parameter(request.path_parameters)
        check_query_parameters(request.query)
        return handler(request)

    checked_handler.__doc__ = handler.__doc__
    return checked_handler


_NAME = r"(?P<collection>[^/]+)"
ROUTES: list[tuple[str, str, Handler]] = [
    ("GET", r"/", root),
    ("GET", r"/healthz", health),
    ("GET", r"/livez", health),
    ("GET", r"/readyz", ready),
    ("GET", r"/collections", list_collections),
    ("GET", r"/aliases", list_aliases),
    ("POST", r"/collections/aliases", update_aliases),
    ("GET", rf"/collections/{_NAME}", get_collection),
    ("PUT", rf"/collections/{_NAME}", create_collection),
    ("PATCH", rf"/collections/{_NAME}", update_collection),
    ("DELETE", rf"/collections/{_NAME}", delete_collection),
    ("GET", rf"/collections/{_NAME}/exists", collection_exists),
    ("GET", rf"/collections/{_NAME}/aliases", collection_aliases),
    *[
        (method, rf"/collections/{_NAME}{suffix}", handler)
        for method, suffix, handler in (*point_routes.ROUTES, *batch_routes.ROUTES)
    ],
]
_COMPILED = [(method, re.compile(f"^{pattern}$"), _checked(handler)) for method, pattern, handler in ROUTES]


def match_route(method: str, path: str) -> tuple[Handler, dict[str, str]]:
    """The handler for a request, or 404 (unknown path) / 405 (known path, other method)."""
    path = path.rstrip("/") or "/"
    known_path = False
    for route_method, pattern, handler in _COMPILED:
        found = pattern.match(path)
        if found:
            if route_method == method:
                return handler, found.groupdict()
            known_path = True
    if known_path:
        raise ApiError(405, f"Method {method} is not allowed for {path}")
    raise ApiError(404, f"Not found: no such endpoint {method} {path}")
