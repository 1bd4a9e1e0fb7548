"""``filters.all_of`` against qdrant-client's local mode: a combined filter selects exactly the points every
one of its parts selects, the intersection of what each part selects on its own.

Reference nobody on the project wrote: qdrant-client's own filter evaluation (``QdrantClient(":memory:")``)
of each part alone and of the combination. Parts (filters, lone conditions, nested filters, ``None`` and
``{}``) and payloads are generated from a fixed seed, so a failure repeats.
"""

from __future__ import annotations

import random
from typing import Any

import pytest
from qdrant_client import QdrantClient, models

from dagster_qdrant.collections import partition_filter
from dagster_qdrant.filters import all_of, is_filter, match_any
from dagster_qdrant.spark.pushdown import combine_filters
from dagster_qdrant.spark.read_splits import ReadSplit
from dagster_qdrant.spark.read_splits import partition_filter as split_filter

POINTS = 80
WORDS = ["red", "green", "blue", "grey"]


@pytest.fixture(scope="module")
def local() -> QdrantClient:
    """A collection of generated payloads in qdrant-client's local mode."""
    rng = random.Random(17)
    client = QdrantClient(":memory:")
    client.create_collection("points", vectors_config={})
    points = []
    for point_id in range(POINTS):
        payload: dict[str, Any] = {"n": rng.randrange(10), "word": rng.choice(WORDS), "flag": rng.random() < 0.5}
        if rng.random() < 0.2:
            del payload["word"]
        points.append(models.PointStruct(id=point_id, vector={}, payload=payload))
    client.upsert("points", points)
    return client


def selected(client: QdrantClient, query_filter: dict[str, Any] | None) -> set[int]:
    """The ids qdrant-client's local mode keeps for a filter (None: every point)."""
    parsed = None if query_filter is None else models.Filter.model_validate(query_filter)
    points, _ = client.scroll("points", scroll_filter=parsed, limit=POINTS + 1)
    return {int(point.id) for point in points}


def condition(rng: random.Random, depth: int = 0) -> dict[str, Any]:
    """One generated condition: a field match or range, an id set, an emptiness test, or a nested filter."""
    kind = rng.choice(["value", "any", "range", "has_id", "is_empty", "flag"] + (["filter"] * 2 if depth < 2 else []))
    if kind == "value":
        return {"key": "n", "match": {"value": rng.randrange(10)}}
    if kind == "any":
        return {"key": "word", "match": {"any": rng.sample(WORDS, rng.randint(1, 3))}}
    if kind == "range":
        low = rng.randrange(10)
        return {"key": "n", "range": {"gte": low, "lt": low + rng.randint(1, 6)}}
    if kind == "has_id":
        return {"has_id": rng.sample(range(POINTS), rng.randint(1, 40))}
    if kind == "is_empty":
        return {"is_empty": {"key": "word"}}
    if kind == "flag":
        return {"key": "flag", "match": {"value": rng.random() < 0.5}}
    return generated_filter(rng, depth + 1)


def generated_filter(rng: random.Random, depth: int = 0) -> dict[str, Any]:
    """A filter of one to three clauses, each of one to three conditions."""
    clauses = rng.sample(["must", "should", "must_not"], rng.randint(1, 3))
    return {clause: [condition(rng, depth) for _ in range(rng.randint(1, 3))] for clause in clauses}


def part(rng: random.Random) -> dict[str, Any] | None:
    """What callers hand ``all_of``: a filter, a lone condition, or nothing (None or an empty object)."""
    roll = rng.random()
    if roll < 0.1:
        return None
    if roll < 0.15:
        return {}
    return generated_filter(rng) if roll < 0.6 else condition(rng)


def alone(client: QdrantClient, item: dict[str, Any] | None) -> set[int]:
    """What one part selects by itself: a condition is the filter that must pass it."""
    if not item:
        return selected(client, None)
    return selected(client, item if is_filter(item) else {"must": [item]})


def test_all_of_selects_exactly_the_intersection_of_its_parts(local: QdrantClient) -> None:
    rng = random.Random(2024)
    everything = set(range(POINTS))
    narrowed = 0
    for _ in range(400):
        parts = [part(rng) for _ in range(rng.randint(0, 4))]
        expected = set(everything)
        for item in parts:
            expected &= alone(local, item)
        combined = all_of(*parts)
        assert selected(local, combined) == expected, (parts, combined)
        narrowed += expected != everything
    assert narrowed > 200, "the generated parts narrow the selection (the check is not vacuous)"


def test_all_of_leaves_no_filter_when_nothing_is_asked_and_a_lone_filter_as_it_is() -> None:
    rng = random.Random(5)
    assert all_of() is None and all_of(None, {}) is None
    for _ in range(50):
        only = generated_filter(rng)
        assert all_of(None, only, {}) == only
        lone_condition = condition(rng, depth=2)
        assert all_of(lone_condition) == {"must": [lone_condition]}


def test_match_any_selects_the_points_whose_field_is_one_of_the_values(local: QdrantClient) -> None:
    rng = random.Random(9)
    for _ in range(40):
        values = rng.sample(range(10), rng.randint(1, 4))
        expected = selected(local, {"should": [{"key": "n", "match": {"value": value}} for value in values]})
        assert selected(local, match_any("n", values)) == expected


def test_the_three_narrowings_build_the_request_all_of_builds() -> None:
    """Pushdown, read splits and Dagster partitions narrow a filter through the one helper."""
    rng = random.Random(11)
    for _ in range(50):
        user = rng.choice([None, generated_filter(rng)])
        pushed = [condition(rng, depth=2) for _ in range(rng.randint(0, 3))]
        assert combine_filters(user, conditions=pushed) == all_of(user, *pushed)
        split = ReadSplit(index=1, slice=(1, 4))
        assert split_filter(split, user) == all_of(user, {"slice": {"total": 4, "index": 1}})
        keys = rng.sample(["a", "b", "c", "d"], rng.randint(1, 3))
        assert partition_filter("_partition", keys) == match_any("_partition", sorted(keys))
