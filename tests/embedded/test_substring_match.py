"""A `match: {"substring": ...}` condition, parsed by dagster_qdrant/embedded/filters.py, selects what local mode selects.

The OpenAPI spec v1.19 has no `MatchSubstring` yet, but qdrant-client sends it and its local mode
(`QdrantClient(":memory:")`) evaluates it (a string payload value containing the substring), so that is the
reference: seeded words stored in an in-process Qdrant Edge shard and in local mode, seeded substrings of
them (and of other words) asked of both.
"""

from __future__ import annotations

import random
from pathlib import Path

import qdrant_edge as edge
from qdrant_client import QdrantClient, models

from dagster_qdrant.embedded import filters
from dagster_qdrant.embedded.store import Store

SEED = 20261203
WORDS = ["apple", "maple", "grape", "grapefruit", "pineapple", "ample", "Apple", "äpfel", "map"]


def test_a_substring_match_selects_the_points_local_mode_selects(tmp_path: Path) -> None:
    rng = random.Random(SEED)
    texts = [" ".join(rng.choice(WORDS) for _ in range(rng.randrange(1, 3))) for _ in range(40)]
    store = Store(tmp_path / "qdrant")
    local = QdrantClient(":memory:")
    try:
        store.create("c", {"vectors": {"size": 2, "distance": "Dot"}})
        collection = store.resolve("c")
        collection.update(edge.UpdateOperation.upsert_points(
            [edge.Point(index, [1.0, 0.0], {"t": text}) for index, text in enumerate(texts)], None
        ))
        local.create_collection("c", vectors_config=models.VectorParams(size=2, distance=models.Distance.DOT))
        local.upsert("c", [models.PointStruct(id=i, vector=[1.0, 0.0], payload={"t": t}) for i, t in enumerate(texts)])
        selected_some = 0
        for _ in range(30):
            word = rng.choice(WORDS)
            start = rng.randrange(len(word))
            substring = word[start:rng.randrange(start + 1, len(word) + 1)]
            body = {"must": [{"key": "t", "match": {"substring": substring}}]}
            records, _ = collection.read("scroll", edge.ScrollRequest(limit=100, filter=filters.parse_filter(body)))
            expected, _ = local.scroll("c", scroll_filter=models.Filter.model_validate(body), limit=100)
            assert sorted(record.id for record in records) == sorted(record.id for record in expected), substring
            selected_some += 0 < len(expected) < len(texts)
        assert selected_some > 10  # the substrings tell points apart: neither none nor all selected
    finally:
        store.close()
        local.close()
