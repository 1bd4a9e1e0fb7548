"""The official qdrant-client (REST) works unmodified against the embedded server and sees the same
results as qdrant-client's own local mode for the same operations."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from qdrant_client import QdrantClient, models

DIMENSION = 8


@pytest.fixture
def both(embedded: QdrantClient, collection_name: str) -> Callable[[Callable[[QdrantClient, str], Any]], tuple[Any, Any]]:
    """Run one scenario on the embedded server and on a fresh local-mode client; return both results."""
    local = QdrantClient(":memory:")
    created: list[str] = []

    def run(scenario: Callable[[QdrantClient, str], Any]) -> tuple[Any, Any]:
        created.append(collection_name)
        return scenario(embedded, collection_name), scenario(local, collection_name)

    yield run
    for name in created:
        embedded.delete_collection(name)
    local.close()


def _rounded(value: Any) -> Any:
    if isinstance(value, float):
        return round(value, 4)
    if isinstance(value, list):
        return [_rounded(item) for item in value]
    if isinstance(value, dict):
        return {key: _rounded(item) for key, item in value.items()}
    if isinstance(value, models.SparseVector):
        return {"indices": value.indices, "values": _rounded(value.values)}
    return value


def _records(records: list[Any]) -> list[tuple[Any, Any, Any]]:
    return [(str(record.id), record.payload, _rounded(record.vector)) for record in records]


def _scored(points: list[models.ScoredPoint]) -> list[tuple[str, float, Any]]:
    return [(str(point.id), round(point.score, 4), point.payload) for point in points]


def _dense_points(count: int, start: int = 0) -> list[models.PointStruct]:
    rng = np.random.default_rng(start + 1)
    return [
        models.PointStruct(
            id=start + index,
            vector=rng.random(DIMENSION).tolist(),
            payload={"group": (start + index) % 5, "name": f"n{start + index}", "score": float(index) / 3},
        )
        for index in range(count)
    ]


def _fill_dense(client: QdrantClient, name: str) -> None:
    client.create_collection(name, vectors_config=models.VectorParams(size=DIMENSION, distance=models.Distance.COSINE))
    client.upload_points(name, _dense_points(120), wait=True)
    uuids = [str(uuid.UUID(int=index * 7919 + 1)) for index in range(30)]
    rng = np.random.default_rng(99)
    client.upsert(
        name,
        points=models.Batch(
            ids=uuids,
            vectors=rng.random((30, DIMENSION)).tolist(),
            payloads=[{"group": index % 5, "name": f"u{index}", "score": 100.0 + index} for index in range(30)],
        ),
        wait=True,
    )


def _scroll_all(client: QdrantClient, name: str, page: int, scroll_filter: models.Filter | None = None) -> tuple[list[Any], list[Any]]:
    records, offsets, offset = [], [], None
    while True:
        batch, offset = client.scroll(name, scroll_filter=scroll_filter, limit=page, offset=offset, with_vectors=True)
        records.extend(batch)
        offsets.append(str(offset) if offset is not None else None)
        if offset is None:
            return _records(records), offsets


def test_upload_and_upsert_both_forms_then_scroll_pages_like_local_mode(both) -> None:
    def scenario(client: QdrantClient, name: str) -> Any:
        _fill_dense(client, name)
        group_two = models.Filter(must=[models.FieldCondition(key="group", match=models.MatchValue(value=2))])
        return client.count(name).count, _scroll_all(client, name, page=37), _scroll_all(client, name, 7, group_two)

    embedded, local = both(scenario)
    assert embedded[0] == 150
    assert embedded == local


def test_filters_count_retrieve_and_query_like_local_mode(both) -> None:
    filters = [
        models.Filter(must=[models.FieldCondition(key="group", match=models.MatchAny(any=[1, 3]))]),
        models.Filter(must_not=[models.FieldCondition(key="group", match=models.MatchValue(value=0))]),
        models.Filter(should=[
            models.FieldCondition(key="score", range=models.Range(gte=10, lt=20)),
            models.HasIdCondition(has_id=[1, 2, 3]),
        ]),
        models.Filter(must=[models.FieldCondition(key="name", match=models.MatchText(text="u1"))]),
        models.Filter(must=[models.IsEmptyCondition(is_empty=models.PayloadField(key="missing"))]),
        models.Filter(min_should=models.MinShould(
            conditions=[
                models.FieldCondition(key="group", match=models.MatchValue(value=1)),
                models.FieldCondition(key="score", range=models.Range(lt=5)),
            ],
            min_count=2,
        )),
    ]

    def scenario(client: QdrantClient, name: str) -> Any:
        _fill_dense(client, name)
        counts = [client.count(name, count_filter=item).count for item in filters]
        retrieved = _records(client.retrieve(name, [5, 1, 999, str(uuid.UUID(int=1))], with_vectors=True))
        query = np.random.default_rng(5).random(DIMENSION).tolist()
        nearest = client.query_points(name, query=query, limit=5, with_payload=True).points
        filtered = client.query_points(name, query=query, query_filter=filters[0], limit=4, with_payload=["name"]).points
        thresholded = client.query_points(name, query=query, limit=100, score_threshold=0.9).points
        return counts, sorted(retrieved), _scored(nearest), _scored(filtered), len(thresholded)

    embedded, local = both(scenario)
    assert embedded[0][0] > 0
    assert embedded == local


def test_slices_are_disjoint_cover_the_collection_and_match_local_mode(both) -> None:
    total = 4

    def scenario(client: QdrantClient, name: str) -> Any:
        _fill_dense(client, name)
        slices = []
        for index in range(total):
            condition = models.Filter(must=[models.SliceCondition(slice=models.Slice(total=total, index=index))])
            records, _ = client.scroll(name, scroll_filter=condition, limit=1000)
            assert client.count(name, count_filter=condition).count == len(records)
            slices.append({str(record.id) for record in records})
        return slices

    embedded, local = both(scenario)
    union = set().union(*embedded)
    assert len(union) == 150
    assert sum(len(part) for part in embedded) == 150  # disjoint
    assert all(part for part in embedded)
    assert embedded == local


def test_delete_by_filter_and_by_ids_like_local_mode(both) -> None:
    def scenario(client: QdrantClient, name: str) -> Any:
        _fill_dense(client, name)
        client.delete(name, points_selector=models.FilterSelector(filter=models.Filter(
            must=[models.FieldCondition(key="group", match=models.MatchValue(value=4))]
        )), wait=True)
        client.delete(name, points_selector=models.PointIdsList(points=[0, 1, str(uuid.UUID(int=1))]), wait=True)
        records, _ = client.scroll(name, limit=1000)
        return client.count(name).count, sorted(str(record.id) for record in records)

    embedded, local = both(scenario)
    assert embedded[0] == 150 - 30 - 3  # group 4 had 30 points (24 int + 6 UUID); 0, 1 and UUID 1 are in others
    assert embedded == local


def test_named_dense_and_sparse_vectors_like_local_mode(both) -> None:
    def scenario(client: QdrantClient, name: str) -> Any:
        client.create_collection(
            name,
            vectors_config={
                "image": models.VectorParams(size=4, distance=models.Distance.DOT),
                "text": models.VectorParams(size=3, distance=models.Distance.EUCLID),
            },
            sparse_vectors_config={"keywords": models.SparseVectorParams()},
        )
        rng = np.random.default_rng(3)
        client.upsert(name, points=[
            models.PointStruct(
                id=index,
                vector={
                    "image": rng.random(4).tolist(),
                    "text": rng.random(3).tolist(),
                    "keywords": models.SparseVector(indices=[index, index + 10], values=[1.0, 0.5]),
                },
                payload={"index": index},
            )
            for index in range(20)
        ])
        client.upsert(name, points=models.Batch(
            ids=[100, 101],
            vectors={"image": [[1, 0, 0, 0], [0, 1, 0, 0]], "text": [[0, 0, 1], [1, 1, 1]]},
        ))
        by_image = client.query_points(name, query=[1, 0.5, 0, 0], using="image", limit=3).points
        by_text = client.query_points(name, query=[0.5, 0.5, 0.5], using="text", limit=3).points
        by_keywords = client.query_points(
            name, query=models.SparseVector(indices=[3, 13], values=[1.0, 1.0]), using="keywords", limit=2
        ).points
        retrieved = client.retrieve(name, [2, 100], with_vectors=["text", "keywords"])
        info = client.get_collection(name)
        return _scored(by_image), _scored(by_text), _scored(by_keywords), _records(retrieved), info.points_count

    embedded, local = both(scenario)
    assert embedded[4] == 22
    assert embedded == local


def test_multivector_collection_like_local_mode(both) -> None:
    def scenario(client: QdrantClient, name: str) -> Any:
        client.create_collection(name, vectors_config=models.VectorParams(
            size=2,
            distance=models.Distance.COSINE,
            multivector_config=models.MultiVectorConfig(comparator=models.MultiVectorComparator.MAX_SIM),
        ))
        client.upsert(name, points=[
            models.PointStruct(id=1, vector=[[1, 0], [0, 1]]),
            models.PointStruct(id=2, vector=[[1, 0.7]]),
            models.PointStruct(id=3, vector=[[-1, 0], [0, -1], [1, 0.1]]),
        ])
        return _scored(client.query_points(name, query=[[1, 0], [0.5, 0.5]], limit=3).points)

    embedded, local = both(scenario)
    assert embedded == local


def test_payload_updates_like_local_mode(both) -> None:
    def scenario(client: QdrantClient, name: str) -> Any:
        _fill_dense(client, name)
        client.set_payload(name, payload={"tag": "a"}, points=[1, 2])
        client.set_payload(name, payload={"tag": "b"}, points=models.Filter(
            must=[models.FieldCondition(key="group", match=models.MatchValue(value=3))]
        ))
        client.overwrite_payload(name, payload={"only": True}, points=[4])
        client.delete_payload(name, keys=["name", "score"], points=[1])
        client.clear_payload(name, points_selector=[5])
        records = client.retrieve(name, [1, 2, 3, 4, 5, 8])
        return sorted(_records(records)), client.count(name, count_filter=models.Filter(
            must=[models.FieldCondition(key="tag", match=models.MatchValue(value="b"))]
        )).count

    embedded, local = both(scenario)
    assert embedded[1] == 30
    assert embedded == local


@pytest.mark.filterwarnings("ignore:Payload indexes have no effect in the local Qdrant")
def test_order_by_scroll_with_payload_index_like_local_mode(both) -> None:
    def scenario(client: QdrantClient, name: str) -> Any:
        _fill_dense(client, name)
        client.create_payload_index(name, "score", field_schema=models.PayloadSchemaType.FLOAT, wait=True)
        records, offset = client.scroll(name, limit=5, order_by=models.OrderBy(key="score", direction="desc"))
        return [str(record.id) for record in records], offset

    embedded, local = both(scenario)
    assert embedded == local


def test_aliases_create_swap_rename_delete_like_local_mode(both) -> None:
    def scenario(client: QdrantClient, name: str) -> Any:
        old, new, alias = f"{name}_old", f"{name}_new", f"{name}_alias"
        for collection, count in ((old, 3), (new, 5)):
            client.create_collection(collection, vectors_config=models.VectorParams(size=DIMENSION, distance=models.Distance.DOT))
            client.upsert(collection, points=_dense_points(count))
        client.update_collection_aliases(change_aliases_operations=[
            models.CreateAliasOperation(create_alias=models.CreateAlias(collection_name=old, alias_name=alias)),
        ])
        before = client.count(alias).count
        client.update_collection_aliases(change_aliases_operations=[
            models.DeleteAliasOperation(delete_alias=models.DeleteAlias(alias_name=alias)),
            models.CreateAliasOperation(create_alias=models.CreateAlias(collection_name=new, alias_name=alias)),
        ])
        after = client.count(alias).count
        listed = sorted((item.alias_name, item.collection_name) for item in client.get_collection_aliases(new).aliases)
        client.update_collection_aliases(change_aliases_operations=[
            models.RenameAliasOperation(rename_alias=models.RenameAlias(old_alias_name=alias, new_alias_name=f"{alias}2")),
        ])
        renamed = sorted(
            (item.alias_name, item.collection_name) for item in client.get_aliases().aliases if item.collection_name in (old, new)
        )
        query_through_alias = len(client.query_points(f"{alias}2", query=[1.0] * DIMENSION, limit=10).points)
        client.update_collection_aliases(change_aliases_operations=[
            models.DeleteAliasOperation(delete_alias=models.DeleteAlias(alias_name=f"{alias}2")),
        ])
        remaining = [item for item in client.get_aliases().aliases if item.collection_name in (old, new)]
        deleted = [client.delete_collection(old), client.delete_collection(new)]
        exists = [client.collection_exists(old), client.collection_exists(new)]
        return before, after, listed, renamed, query_through_alias, remaining, deleted, exists

    embedded, local = both(scenario)
    assert embedded[:2] == (3, 5)
    assert embedded[6:] == ([True, True], [False, False])
    assert embedded == local


def test_collection_reports_the_config_it_was_created_with(embedded: QdrantClient, collection_name: str) -> None:
    embedded.create_collection(
        collection_name,
        vectors_config={"a": models.VectorParams(size=5, distance=models.Distance.MANHATTAN)},
        sparse_vectors_config={"s": models.SparseVectorParams(modifier=models.Modifier.IDF)},
    )
    try:
        info = embedded.get_collection(collection_name)
        assert info.status == models.CollectionStatus.GREEN
        assert info.points_count == 0
        assert info.config.params.vectors == {"a": models.VectorParams(size=5, distance=models.Distance.MANHATTAN)}
        assert info.config.params.sparse_vectors == {"s": models.SparseVectorParams(modifier=models.Modifier.IDF)}
        assert collection_name in {item.name for item in embedded.get_collections().collections}
    finally:
        assert embedded.delete_collection(collection_name)
    assert not embedded.collection_exists(collection_name)


@pytest.mark.filterwarnings("ignore:Payload indexes have no effect in the local Qdrant")
def test_vector_updates_batch_operations_and_facets_like_local_mode(both) -> None:
    def scenario(client: QdrantClient, name: str) -> Any:
        client.create_collection(name, vectors_config={
            "a": models.VectorParams(size=2, distance=models.Distance.DOT),
            "b": models.VectorParams(size=2, distance=models.Distance.DOT),
        })
        client.upsert(name, points=[
            models.PointStruct(id=index, vector={"a": [index, 1], "b": [1, index]}, payload={"color": ["red", "blue"][index % 2]})
            for index in range(6)
        ])
        client.update_vectors(name, points=[models.PointVectors(id=1, vector={"a": [9, 9]})])
        client.delete_vectors(name, vectors=["b"], points=[2])
        results = client.batch_update_points(name, update_operations=[
            models.UpsertOperation(upsert=models.PointsList(points=[models.PointStruct(id=10, vector={"a": [1, 1]}, payload={"color": "red"})])),
            models.SetPayloadOperation(set_payload=models.SetPayload(payload={"big": True}, points=[10])),
            models.DeleteOperation(delete=models.PointIdsList(points=[0])),
        ])
        client.create_payload_index(name, "color", field_schema=models.PayloadSchemaType.KEYWORD, wait=True)
        facets = client.facet(name, key="color", exact=True)
        records = client.retrieve(name, [1, 2, 10], with_vectors=True)
        return (
            [result.status for result in results],
            sorted((hit.value, hit.count) for hit in facets.hits),
            sorted(_records(records)),
        )

    embedded, local = both(scenario)
    assert embedded[1] == [("blue", 3), ("red", 3)]
    assert embedded == local


def test_query_by_point_id_recommend_and_prefetch_fusion_like_local_mode(both) -> None:
    def scenario(client: QdrantClient, name: str) -> Any:
        _fill_dense(client, name)
        by_id = client.query_points(name, query=7, limit=3).points
        recommended = client.query_points(
            name, query=models.RecommendQuery(recommend=models.RecommendInput(positive=[3, 9], negative=[4])), limit=3
        ).points
        fused = client.query_points(
            name,
            prefetch=[
                models.Prefetch(query=[1.0] * DIMENSION, limit=10),
                models.Prefetch(query=[0.0] * (DIMENSION - 1) + [1.0], limit=10),
            ],
            query=models.FusionQuery(fusion=models.Fusion.RRF),
            limit=5,
        ).points
        # RRF gives equal scores to points at equal ranks, and either may come first: compare the scores
        fused_scores = [round(point.score, 4) for point in fused]
        return [str(point.id) for point in by_id], [str(point.id) for point in recommended], fused_scores

    embedded, local = both(scenario)
    assert "7" not in embedded[0]
    assert embedded == local
