"""Filters on the embedded server match payload values by type, as Qdrant does: `true` is a boolean,
never the integer 1 (and 1 is never `true`); a filter value of a type Qdrant refuses is a 400 naming it."""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from qdrant_client import QdrantClient, models

POINTS = 400
CANDIDATES: list[Any] = [True, False, 1, 0, "true", None, [True, 1], [False], [0, 1], []]


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


# Filter values of the wrong type, each with the Qdrant type (lib/segment/src/types.rs, v1.19.0) that refuses it.
# A refused filter is a 400 naming the field, never a silently different filter (a bool taken as the integer 1)
# nor a 500.
MALFORMED = [
    ({"key": "b", "match": {"any": [True]}}, 400, "match.any"),  # AnyVariants: Strings | Integers
    ({"key": "b", "match": {"except": [False, True]}}, 400, "match.except"),
    ({"key": "b", "match": {"any": ["a", 1]}}, 400, "match.any"),
    ({"key": "b", "match": {"any": [2**63]}}, 400, "match.any"),  # IntPayloadType is i64
    ({"key": "b", "match": {"value": 1.5}}, 400, "match.value"),  # ValueVariants: String | Integer | Bool
    ({"key": "b", "match": {"value": 2**63}}, 400, "match.value"),
    ({"key": "b", "values_count": {"gt": True}}, 400, "values_count.gt"),  # ValuesCount bounds are usize
    ({"key": "b", "values_count": {"lt": 1.5}}, 400, "values_count.lt"),
    ({"key": "b", "values_count": {"gte": -1}}, 400, "values_count.gte"),
    ({"key": "b", "is_empty": "yes"}, 400, "is_empty"),  # FieldCondition.is_empty: Option<bool>
    ({"key": "b", "is_null": 1}, 400, "is_null"),
    ({"key": "b", "range": {"gt": 1, "lt": "2024-01-01T00:00:00Z"}}, 400, "range"),  # RangeInterface: Float | DateTime
    ({"key": "b", "range": {"gt": "not a date"}}, 400, "date"),
    ({"slice": {"total": True, "index": 0}}, 400, "slice"),
    ({"min_should": {"conditions": [{"has_id": [1]}], "min_count": True}}, 400, "min_count"),  # usize
    ({"min_should": {"conditions": [{"has_id": [1]}], "min_count": "1"}}, 400, "min_count"),
    ({"min_should": {"conditions": [{"has_id": [1]}], "min_count": 0}}, 422, "min_count"),  # validate(range(min = 1))
    ({"key": "b", "geo_radius": {"center": {"lon": 1.0}, "radius": 1.0}}, 400, "lat"),
    ({"has_vector": True}, 400, "has_vector"),  # HasVectorCondition.has_vector: VectorNameBuf (a string)
]


@pytest.fixture(scope="module")
def http(qdrant_api_key: str | None) -> Iterator[requests.Session]:
    """Raw REST, to send what qdrant-client's models would refuse before sending."""
    with requests.Session() as session:
        if qdrant_api_key:
            session.headers["api-key"] = qdrant_api_key
        yield session


@pytest.fixture(scope="module")
def small_collection(qdrant_url: str, http: requests.Session) -> Iterator[str]:
    name = f"filters_{uuid.uuid4().hex[:8]}"
    url = f"{qdrant_url}/collections/{name}"
    http.put(url, json={"vectors": {"size": 2, "distance": "Dot"}}).raise_for_status()
    points = [{"id": 1, "vector": [1, 0], "payload": {"b": 1}}, {"id": 2, "vector": [1, 0], "payload": {"b": True}}]
    http.put(f"{url}/points?wait=true", json={"points": points}).raise_for_status()
    yield url
    http.delete(url)


@pytest.mark.parametrize(("condition", "status", "named"), MALFORMED, ids=[str(case[0]) for case in MALFORMED])
@pytest.mark.parametrize("endpoint", ["count", "scroll", "delete"])
def test_a_filter_value_of_the_wrong_type_is_refused_naming_it(
    http: requests.Session, small_collection: str, condition: dict[str, Any], status: int, named: str, endpoint: str
) -> None:
    body = {"filter": {"must": [condition]}}
    response = http.post(f"{small_collection}/points/{endpoint}", json=body)
    assert response.status_code == status, response.text
    assert named in response.json()["status"]["error"]
    assert http.post(f"{small_collection}/points/count", json={}).json()["result"]["count"] == 2


@pytest.mark.parametrize("start_from", [True, "not a date", [1]])
def test_an_order_by_start_from_of_the_wrong_type_is_refused_naming_it(
    http: requests.Session, qdrant_url: str, start_from: Any
) -> None:
    """`StartFrom` is an integer, a float or a datetime (types.rs, v1.19.0); `true` is none of them."""
    name = f"order_{uuid.uuid4().hex[:8]}"
    url = f"{qdrant_url}/collections/{name}"
    http.put(url, json={"vectors": {"size": 2, "distance": "Dot"}}).raise_for_status()
    try:
        http.put(f"{url}/index?wait=true", json={"field_name": "n", "field_schema": "integer"}).raise_for_status()
        body = {"order_by": {"key": "n", "start_from": start_from}}
        response = http.post(f"{url}/points/scroll", json=body)
        assert response.status_code == 400, response.text
        assert "start_from" in response.json()["status"]["error"]
    finally:
        http.delete(url)
