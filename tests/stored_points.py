"""What a collection holds, read straight from Qdrant page by page (never through a reader under test)."""

from __future__ import annotations

from typing import Any

from dagster_qdrant.http import QdrantHttp


def every_point(http: QdrantHttp, collection: str, **body: Any) -> list[dict[str, Any]]:
    """Every point of ``collection`` as Qdrant's scroll returns it: payloads and vectors unless ``body`` says not."""
    points: list[dict[str, Any]] = []
    offset = None
    while True:
        request = {"limit": 256, "with_payload": True, "with_vector": True, **body}
        if offset is not None:
            request["offset"] = offset
        page, offset = http.scroll(collection, request)
        points.extend(page)
        if offset is None:
            return points
