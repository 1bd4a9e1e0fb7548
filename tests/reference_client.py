"""The official qdrant-client as the reference reader: what tests compare our writes with."""

from __future__ import annotations

from typing import Any

from qdrant_client import QdrantClient


def official_client(url: str, api_key: str | None) -> QdrantClient:
    """qdrant-client over REST, as a user of the server would point it."""
    return QdrantClient(url=url, api_key=api_key, prefer_grpc=False, timeout=60, check_compatibility=False)


def payloads_by_id(client: QdrantClient, collection: str) -> dict[Any, dict[str, Any]]:
    """Every point's payload, read by qdrant-client."""
    found: dict[Any, dict[str, Any]] = {}
    offset = None
    while True:
        points, offset = client.scroll(collection, limit=1000, offset=offset, with_payload=True)
        found.update({point.id: point.payload or {} for point in points})
        if offset is None:
            return found
