"""Filters on the embedded server match payload values by type, as Qdrant does: `true` is a boolean,
never the integer 1 (and 1 is never `true`)."""

from __future__ import annotations

import random
from typing import Any

import pytest
from qdrant_client import QdrantClient, models

POINTS = 400
CANDIDATES: list[Any] = [True, False, 1, 0, "true", None, [True, 1], [False], [0, 1], []]


@pytest.fixture(scope="module")
def embedded(qdrant_url: str, qdrant_api_key: str | None) -> QdrantClient:
    return QdrantClient(url=qdrant_url, api_key=qdrant_api_key, prefer_grpc=False, timeout=30)


def _matches(stored: Any, wanted: Any) -> bool:
    """Qdrant's rule from the input values: some stored value (or list element) of the same type is equal."""
    values = stored if isinstance(stored, list) else [stored]
    return any(type(value) is type(wanted) and value == wanted for value in values)


@pytest.mark.parametrize("wanted", [True, False, 1, 0])
def test_match_value_tells_booleans_from_integers(embedded: QdrantClient, collection_name: str, wanted: Any) -> None:
    rng = random.Random(7)
    payloads = [{"b": rng.choice(CANDIDATES)} for _ in range(POINTS)]
    embedded.create_collection(
        collection_name, vectors_config=models.VectorParams(size=2, distance=models.Distance.DOT)
    )
    try:
        embedded.upsert(
            collection_name,
            points=[models.PointStruct(id=index, vector=[1.0, 0.0], payload=payload) for index, payload in enumerate(payloads)],
            wait=True,
        )
        condition = models.FieldCondition(key="b", match=models.MatchValue(value=wanted))
        counted = embedded.count(collection_name, count_filter=models.Filter(must=[condition]), exact=True).count
        expected = sum(_matches(payload["b"], wanted) for payload in payloads)
        assert expected > 0
        assert counted == expected
    finally:
        embedded.delete_collection(collection_name)
