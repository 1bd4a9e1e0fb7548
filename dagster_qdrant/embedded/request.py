"""The request every route handler takes: the store, path and query parameters, the parsed JSON body.

Its own module so that the server, which builds it, and every handler module, which reads it, import it
from below both: the handler modules are imported by ``routes.py``, so they could not import it from there.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from dagster_qdrant.embedded.store import Store


@dataclass
class Request:
    """What a handler needs: the store, path parameters, query parameters and the parsed JSON body."""

    store: Store
    path_parameters: dict[str, str]
    query: dict[str, str]
    body: Any = None
    extra: dict[str, Any] = field(default_factory=dict)
