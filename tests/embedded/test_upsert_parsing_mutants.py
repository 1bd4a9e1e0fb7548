"""The embedded server's upsert parsing (embedded/points.py, embedded/vector_schema.py), called in-process.

The HTTP-level tests in this folder drive the same code inside the server's own process; these call the
server's route handlers in this process, so that a changed line shows here (mutation testing runs them;
README "Mutation testing"). References: qdrant-client's local mode (`QdrantClient(":memory:")`) for the
points an accepted upsert stores and for which bodies are refused; the OpenAPI spec for what the local
mode does not check (ids are unsigned 64-bit integers or UUIDs, a payload is an object, a refusal's status);
the input values for what an error message must name (the point id, the vector name, the sizes).
Somewhat over 400 lines: the table of refused bodies is most of it.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from qdrant_client import QdrantClient, models

from dagster_qdrant.embedded.errors import ApiError
from dagster_qdrant.embedded.points import parse_upsert
from dagster_qdrant.embedded.routes import Request, match_route
from dagster_qdrant.embedded.store import Store
from dagster_qdrant.embedded.vector_schema import vector_specs

SEED = 20261203
BODIES = 60
NAMED = {
    "vectors": {
        "d": {"size": 3, "distance": "Dot"},
        "m": {"size": 2, "distance": "Dot", "multivector_config": {"comparator": "max_sim"}},
    },
    "sparse_vectors": {"s": {}},
}
UNNAMED = {"vectors": {"size": 2, "distance": "Dot"}}
MULTI = {"vectors": {"size": 2, "distance": "Dot", "multivector_config": {"comparator": "max_sim"}}}


class Server:
    """The embedded server's handlers over a store in a temporary folder, called as the HTTP layer calls them."""

    def __init__(self, path: Path) -> None:
        self.store = Store(path)

    def call(self, method: str, path: str, body: Any = None) -> Any:
        handler, parameters = match_route(method, path)
        return handler(Request(store=self.store, path_parameters=parameters, query={"wait": "true"}, body=body))

    def points(self, collection: str) -> dict[str, tuple[Any, Any]]:
        result = self.call("POST", f"/collections/{collection}/points/scroll",
                           {"limit": 10_000, "with_payload": True, "with_vector": True})
        return {str(p["id"]): (p.get("payload"), _plain(p.get("vector"))) for p in result["points"]}


def _plain(vector: Any) -> Any:
    """A vector as nested lists of float32 values (local mode and the engine both store float32)."""
    if isinstance(vector, dict) and set(vector) == {"indices", "values"}:
        return {"indices": list(vector["indices"]), "values": _plain(vector["values"])}
    if isinstance(vector, models.SparseVector):
        return {"indices": list(vector.indices), "values": _plain(vector.values)}
    if isinstance(vector, dict):
        return {name: _plain(value) for name, value in vector.items()}
    if vector is None:
        return {}
    return np.asarray(vector, dtype=np.float32).tolist()


def _local(config: dict[str, Any]) -> QdrantClient:
    client = QdrantClient(":memory:")
    vectors = config["vectors"]
    if "size" in vectors:
        vectors_config: Any = models.VectorParams.model_validate(vectors)
    else:
        vectors_config = {name: models.VectorParams.model_validate(value) for name, value in vectors.items()}
    sparse = {name: models.SparseVectorParams() for name in config.get("sparse_vectors", {})}
    client.create_collection("c", vectors_config=vectors_config, sparse_vectors_config=sparse or None)
    return client


def _local_upsert(client: QdrantClient, body: dict[str, Any]) -> None:
    if "points" in body:
        client.upsert("c", [models.PointStruct.model_validate(point) for point in body["points"]])
    else:
        client.upsert("c", models.Batch.model_validate(body["batch"]))


def _local_points(client: QdrantClient) -> dict[str, tuple[Any, Any]]:
    records, _ = client.scroll("c", limit=10_000, with_payload=True, with_vectors=True)
    return {str(r.id): (r.payload, _plain(r.vector)) for r in records}


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    pair = Server(tmp_path / "qdrant")
    yield pair
    pair.store.close()


class Points:
    """Seeded random points for the named collection (`d` dense 3, `m` multi 2, `s` sparse)."""

    def __init__(self, seed: int) -> None:
        self.random = random.Random(seed)

    def point_id(self) -> int | str:
        if self.random.random() < 0.5:
            return self.random.choice([0, 1, 2**63, 2**64 - 1, self.random.randrange(2**64)])
        value = uuid.UUID(int=self.random.getrandbits(128))
        return self.random.choice([str(value), value.hex, str(value).upper()])

    def number(self) -> float | int:
        return self.random.choice([self.random.uniform(-1e3, 1e3), self.random.randint(-5, 5), 0.0])

    def vector(self) -> dict[str, Any]:
        vector: dict[str, Any] = {}
        if self.random.random() < 0.7:
            vector["d"] = [self.number() for _ in range(3)]
        if self.random.random() < 0.5:
            vector["m"] = [[self.number() for _ in range(2)] for _ in range(self.random.randint(1, 3))]
        if self.random.random() < 0.5:
            indices = self.random.sample(range(1000), self.random.randint(0, 4))
            vector["s"] = {"indices": indices, "values": [self.number() for _ in indices]}
        if self.random.random() < 0.1:
            vector[self.random.choice(["d", "m", "s"])] = None
        return vector

    def payload(self) -> dict[str, Any] | None:
        return self.random.choice([None, {}, {"n": self.random.randint(0, 9), "t": [1, "a", None], "o": {"k": 1.5}}])

    def body(self, count: int) -> dict[str, Any]:
        ids: list[Any] = []
        seen: set[str] = set()
        while len(ids) < count:  # distinct as Qdrant keeps them (a UUID in any spelling is the same id)
            candidate = self.point_id()
            if _key(candidate) not in seen:
                seen.add(_key(candidate))
                ids.append(candidate)
        points = []
        for point_id in ids:
            point: dict[str, Any] = {"id": point_id, "vector": self.vector()}
            payload = self.payload()
            if payload is not None or self.random.random() < 0.5:
                point["payload"] = payload
            points.append(point)
        return {"points": points}


def _as_batch(body: dict[str, Any], with_payloads: bool) -> dict[str, Any]:
    """The same points in the `PointsBatch` form: a column per vector name, None where a point has none."""
    points = body["points"]
    names = sorted({name for p in points for name, value in p["vector"].items() if value is not None})
    batch: dict[str, Any] = {"ids": [p["id"] for p in points],
                             "vectors": {name: [p["vector"].get(name) for p in points] for name in names}}
    if with_payloads:
        batch["payloads"] = [p.get("payload") for p in points]
    return {"batch": batch}


def _key(point_id: Any) -> str:
    return str(uuid.UUID(point_id)) if isinstance(point_id, str) else str(point_id)


def _as_list(body: dict[str, Any]) -> dict[str, Any]:
    """A `PointsBatch` body as the `PointsList` of the same points: local mode's reference for the batch form,
    whose `Batch` model takes neither null payloads nor a missing `vectors` though the server accepts both; a
    null named vector (accepted by the server as no vector, refused by the spec's `VectorStruct`) is left out."""
    if "points" in body:
        return {"points": [{**p, "vector": {n: v for n, v in p["vector"].items() if v is not None}}
                           if isinstance(p.get("vector"), dict) else p for p in body["points"]]}
    batch = body["batch"]
    ids, vectors, payloads = batch["ids"], batch.get("vectors"), batch.get("payloads") or [None] * len(batch["ids"])
    if isinstance(vectors, list):
        per_point = vectors
    else:
        per_point = [{name: column[i] for name, column in (vectors or {}).items() if column is not None
                      and column[i] is not None} for i in range(len(ids))]
    return {"points": [{"id": i, "vector": v, "payload": p} for i, v, p in zip(ids, per_point, payloads)]}


@pytest.mark.parametrize("form", ["points", "batch", "batch without payloads"])
def test_accepted_upserts_store_what_local_mode_stores(server: Server, form: str) -> None:
    generator = Points(SEED)
    server.call("PUT", "/collections/c", NAMED)
    local = _local(NAMED)
    for round_number in range(BODIES // 3):
        body = generator.body(generator.random.randint(1, 8))
        if form != "points":
            body = _as_batch(body, with_payloads=form == "batch")
        server.call("PUT", "/collections/c/points", body)
        _local_upsert(local, _as_list(body))
        assert server.points("c") == _local_points(local), (round_number, body)
    local.close()


@pytest.mark.parametrize(
    ("config", "vectors"),
    [(UNNAMED, [[1.0, 2.0], [3.5, -4.0]]), (MULTI, [[[1.0, 2.0], [3.0, 4.0]], [[0.5, 0.25]]])],
    ids=["dense", "multivector"],
)
def test_unnamed_vectors_in_either_form_store_what_local_mode_stores(
    server: Server, config: dict[str, Any], vectors: list[Any]
) -> None:
    bodies = [{"points": [{"id": i, "vector": v, "payload": {"i": i}} for i, v in enumerate(vectors)]},
              {"batch": {"ids": [10, 11], "vectors": vectors, "payloads": [{"i": 10}, None]}},
              {"batch": {"ids": [20, 21], "vectors": vectors}}]
    server.call("PUT", "/collections/c", config)
    local = _local(config)
    for body in bodies:
        server.call("PUT", "/collections/c/points", body)
        _local_upsert(local, _as_list(body))
    assert server.points("c") == _local_points(local)


def test_a_flat_vector_for_a_multivector_is_one_row(server: Server) -> None:
    """Local mode refuses it; the server takes a flat vector of the row size as a multivector of one row."""
    server.call("PUT", "/collections/c", MULTI)
    server.call("PUT", "/collections/c/points", {"points": [{"id": 1, "vector": [1.0, 2.0]}]})
    assert server.points("c") == {"1": ({}, [[1.0, 2.0]])}


def test_points_with_no_vector_at_all_store_what_local_mode_stores(server: Server) -> None:
    server.call("PUT", "/collections/c", NAMED)
    local = _local(NAMED)
    for body in ({"points": [{"id": 1, "vector": {}, "payload": {"a": 1}}, {"id": 2, "vector": {"d": None}}]},
                 {"batch": {"ids": [3, 4], "payloads": [{"b": 2}, None]}},
                 {"batch": {"ids": [5], "vectors": {"d": None, "m": [None]}}}):
        server.call("PUT", "/collections/c/points", body)
        _local_upsert(local, _as_list(body))
    assert server.points("c") == _local_points(local)


def _refusal(body: Any, config: dict[str, Any] = NAMED) -> ApiError:
    """The refusal of ``body`` by the server's upsert parsing (called directly: it runs before anything is
    applied, which `test_a_refused_upsert_writes_nothing` checks through the route)."""
    with pytest.raises(ApiError) as raised:
        parse_upsert(body, vector_specs(config))
    return raised.value


def _local_refuses(body: dict[str, Any], config: dict[str, Any] = NAMED) -> bool | None:
    if "points" not in body and "batch" not in body:
        return None  # no upsert to give it: the spec's `PointInsertOperations` is `PointsList` or `PointsBatch`
    local = _local(config)
    try:
        _local_upsert(local, body)
    except (ValueError, TypeError, AssertionError):
        return True
    finally:
        local.close()
    return False


GOOD = {"id": 1, "vector": {"d": [1.0, 2.0, 3.0]}}

# body, the status (400: not what the schema says; 422: a value the schema's validation refuses), the words
# the message must hold, and whether local mode refuses it too (False: the spec is the reference; None: local
# mode is not asked, as it would embed the inference object or has no upsert for the body)
REFUSED: list[tuple[Any, int, list[str], bool]] = [
    ({"points": [GOOD, {"id": 7, "vector": {"d": [1.0, 2.0]}}]}, 400, ["expected dim: 3, got 2", "point id 7", "`d`"], True),
    ({"points": [GOOD, {"id": 7, "vector": {"x": [1.0, 2.0, 3.0]}}]}, 400, ["Not existing vector name", "x", "point id 7"], True),
    ({"points": [GOOD, {"id": 7, "vector": {"m": [[1.0, 2.0], [3.0]]}}]}, 400, ["expected dim: 2, got 1", "point id 7", "`m`"], True),
    ({"points": [GOOD, {"id": 7, "vector": {"m": [[1.0, 2.0], 3.0]}}]}, 400, ["multivector", "point id 7", "`m`", "3.0"], True),
    ({"points": [GOOD, {"id": 7, "vector": {"d": [[1.0, 2.0, 3.0]]}}]}, 400, ["multi vectors", "`d`", "3 numbers", "point id 7"], True),
    ({"points": [GOOD, {"id": 7, "vector": {"d": {"indices": [1], "values": [1.0]}}}]}, 400, ["sparse", "`d` is dense", "point id 7"], True),
    ({"points": [GOOD, {"id": 7, "vector": {"d": {"text": "hi", "model": "m"}}}]}, 400, ["inference objects", "`d`", "point id 7", "send numbers"], None),
    ({"points": [GOOD, {"id": 7, "vector": {"d": "1,2,3"}}]}, 400, ["`d`", "point id 7", "must be a list of numbers", "str"], True),
    ({"points": [GOOD, {"id": 7, "vector": {"s": [1.0, 2.0]}}]}, 400, ["sparse", "point id 7", "`s`"], True),
    ({"points": [GOOD, {"id": 7, "vector": {"s": {"indices": [1, 2], "values": [1.0]}}}]}, 422, ["same length", "2 indices, 1 values", "point id 7", "`s`"], True),
    ({"points": [GOOD, {"id": 7, "vector": {"s": {"indices": [1, 1], "values": [1.0, 2.0]}}}]}, 422, ["unique", "point id 7", "`s`"], True),
    ({"points": [GOOD, {"id": 7, "vector": {"s": {"indices": 1, "values": [1.0]}}}]}, 400, ["indices and values must be lists", "point id 7"], True),
    ({"points": [GOOD, {"id": 7, "vector": {"s": {"indices": [[1]], "values": [1.0]}}}]}, 400, ["unsigned integers", "point id 7"], True),
    ({"points": [GOOD, {"id": 7, "vector": {"x": {"indices": [1, 1], "values": [1.0, 2.0]}}}]}, 422, ["unique", "point id 7", "`x`"], True),
    ({"points": [GOOD, {"id": 7, "vector": {"d": [1.0, "a", 3.0]}}]}, 400, ["point 7", "lists of numbers", "'a'"], True),
    ({"points": [GOOD, {"id": 7, "vector": 5}]}, 400, ["vector of point 7", "got int"], True),
    ({"points": [GOOD, {"id": 7, "vector": {"x": {"values": [1.0]}}}]}, 400, ["Not existing vector name", "`x`"], True),
    ({"points": [GOOD, {"id": 7, "vector": {"x": {"text": "a"}}}]}, 400, ["Not existing vector name", "`x`"], True),
    ({"points": [GOOD, {"id": 7, "vector": {"s": {"indices": [1]}}}]}, 400, ["Wrong usage of sparse vectors", "point id 7"], True),
    ({"points": [GOOD, {"id": 7, "vector": {"s": ["indices", "values"]}}]}, 400, ["Wrong usage of sparse vectors", "point id 7"], True),
    ({"points": [GOOD, {"id": 7, "vector": {"s": {"indices": ["a"], "values": [1.0]}}}]}, 400,
     ["sparse vector `s`: indices must be unsigned integers and values numbers"], True),
    ({"batch": {"ids": [1, 2], "vectors": {"d": [None, [1.0]]}}}, 400, ["expected dim: 3, got 1", "point id 2"], True),
    ({"batch": {"ids": [1, 2], "vectors": {"x": [[1.0], [2.0]]}}}, 400, ["Not existing vector name", "point id 1, vector `x`"], True),
    ({"batch": {"ids": [1, 2], "vectors": [[1.0, 2.0, 3.0]] * 2}}, 400, ["Not existing vector name", "point id 1;"], True),
    ({"batch": {"ids": [True], "vectors": {"d": [[1.0, 2.0, 3.0]]}}}, 400, ["point id True", "unsigned integer"], True),
    ({"points": [{"id": True, "vector": {"d": [1.0, 2.0, 3.0]}}]}, 400, ["point id True", "unsigned integer"], True),
    ({"points": [GOOD, {"id": 7, "vector": {"d": [1.0, 2.0, 3.0]}, "payload": [1]}]}, 400, ["payload of point 7", "object", "list"], True),
    ({"points": [GOOD, {"id": -7, "vector": {"d": [1.0, 2.0, 3.0]}}]}, 400, ["-7", "out of range"], False),
    ({"points": [GOOD, {"id": 2**64, "vector": {"d": [1.0, 2.0, 3.0]}}]}, 400, [str(2**64), "out of range"], False),
    ({"points": [GOOD, {"id": "not-a-uuid", "vector": {"d": [1.0, 2.0, 3.0]}}]}, 400, ["not-a-uuid"], True),
    ({"points": [GOOD, {"vector": {"d": [1.0, 2.0, 3.0]}}]}, 400, ["`id`"], True),
    ({"points": [GOOD, 7]}, 400, ["each point must be an object", "7"], True),
    ({"points": {"id": 1}}, 400, ["`points` must be a list", "dict"], True),
    ({"batch": {"ids": [1, 2], "vectors": {"d": [[1.0, 2.0, 3.0]]}}}, 400, ["2 ids", "`d` has 1 entries"], True),
    ({"batch": {"ids": [1, 2], "vectors": {"d": "x"}}}, 400, ["2 ids", "`d` has str entries"], True),
    ({"batch": {"ids": [1, 2], "vectors": [[1.0, 2.0, 3.0]]}}, 400, ["2 ids but 1 vectors"], True),
    ({"batch": {"ids": [1, 2], "vectors": {"d": [[1.0, 2.0, 3.0]] * 2}, "payloads": [{}]}}, 400, ["2 ids but 1 payloads"], True),
    ({"batch": {"ids": [1, 2], "vectors": {"d": [[1.0, 2.0, 3.0]] * 2}, "payloads": {"a": 1}}}, 400, ["2 ids but dict payloads"], True),
    ({"batch": {"ids": [1, 2], "vectors": {"d": [[1.0, 2.0, 3.0], [1.0, 2.0]]}}}, 400, ["expected dim: 3, got 2", "point id 2", "`d`"], True),
    ({"batch": {"ids": [1, -2], "vectors": {"d": [[1.0, 2.0, 3.0]] * 2}}}, 400, ["-2", "out of range"], False),
    ({"batch": {"ids": [1, 2], "vectors": {"d": [[1.0, 2.0, 3.0], [1.0, None, 3.0]]}}}, 400, ["point 2", "lists of numbers"], True),
    ({"batch": {"ids": [1, 2], "vectors": {"d": [[1.0, 2.0, 3.0]] * 2}, "payloads": [{}, 5]}}, 400, ["payload of point 2", "int"], True),
    ({"batch": {"ids": [1, 2], "vectors": {"s": [{"indices": [1], "values": [1.0]}, {"indices": [1, 1], "values": [1.0, 2.0]}]}}},
     422, ["unique", "point id 2", "`s`"], True),
    ({"batch": {"ids": [1, 2], "vectors": {"s": [{"indices": [1], "values": [1.0]}, {"indices": ["a"], "values": [1.0]}]}}},
     400, ["sparse vector `s`", "unsigned integers"], True),
    ({"batch": {"ids": [1, 2], "vectors": {"d": [[1.0, 2.0, 3.0], {"text": "x"}]}}}, 400, ["inference objects", "`d`"], None),
    ({"batch": {"ids": [1], "vectors": 5}}, 400, ["batch `vectors`"], True),
    ({"batch": {"ids": 1}}, 400, ["`ids` (list)"], True),
    ({"batch": [1]}, 400, ["`ids` (list)"], True),
    ({"other": []}, 400, ["`points`", "`batch`"], None),
    ({"points": None, "batch": None}, 400, ["`points`", "`batch`"], None),
]


@pytest.mark.parametrize(("body", "status", "words", "local_refuses"), REFUSED, ids=[str(i) for i in range(len(REFUSED))])
def test_a_bad_point_refuses_the_whole_upsert_naming_it(
    body: Any, status: int, words: list[str], local_refuses: bool | None
) -> None:
    error = _refusal(body)
    assert error.status == status
    for word in words:
        assert word in error.message, (word, error.message)
    if local_refuses is not None:
        assert _local_refuses(body) is local_refuses


@pytest.mark.parametrize(
    ("body", "words"),
    [({"points": [{"id": 1, "vector": [1.0, 2.0]}, {"id": 2, "vector": [1.0]}]}, ["expected dim: 2, got 1", "point id 2"]),
     ({"points": [{"id": 1, "vector": [1.0, 2.0]}, {"id": 2, "vector": {"d": [1.0]}}]}, ["Not existing vector name", "d", "one unnamed vector"]),
     ({"batch": {"ids": [1, 2], "vectors": [[1.0, 2.0], None]}}, ["vector of point 2 is null"]),
     ({"batch": {"ids": [1, 2], "vectors": [[1.0, 2.0], [1.0]]}}, ["expected dim: 2, got 1", "point id 2"]),
     ({"batch": {"ids": [1, 2], "vectors": [[1.0, 2.0], [[1.0, 2.0]]]}}, ["multi vectors", "point id 2"]),
     ({"batch": {"ids": [1, 2], "vectors": [[1.0, 2.0], "ab"]}}, ["must be a list of numbers", "point id 2", "str"])],
)
def test_unnamed_vectors_are_checked_against_the_unnamed_config(body: Any, words: list[str]) -> None:
    error = _refusal(body, UNNAMED)
    assert error.status == 400
    for word in words:
        assert word in error.message, (word, error.message)
    assert _local_refuses(body, UNNAMED)


def test_a_collection_with_no_dense_vectors_says_so() -> None:
    error = _refusal({"points": [{"id": 1, "vector": {"x": [1.0]}}]}, {"sparse_vectors": {"s": {}}})
    assert "the collection has `s`" in error.message
    error = _refusal({"points": [{"id": 1, "vector": [1.0, 2.0]}]}, {"sparse_vectors": {"s": {}}})
    assert "Not existing vector name" in error.message and "(point id 1;" in error.message
    error = _refusal({"points": [{"id": 1, "vector": [1.0, 2.0]}]}, {"vectors": {}})
    assert "the collection has no vectors" in error.message


def test_a_multivector_config_takes_rows_of_its_size() -> None:
    for body, words in (({"points": [{"id": 1, "vector": [[1.0, 2.0], [1.0]]}]}, ["expected dim: 2, got 1"]),
                        ({"points": [{"id": 1, "vector": [[1.0, 2.0], 5]}]}, ["multivector", "5"]),
                        ({"points": [{"id": 1, "vector": [1.0, 2.0, 3.0]}]}, ["expected dim: 2, got 3 (point id 1)"]),
                        ({"points": [{"id": 1, "vector": []}]}, ["expected dim: 2, got 0"])):
        error = _refusal(body, MULTI)
        assert error.status == 400 and all(word in error.message for word in words), error.message


def test_a_long_bad_vector_is_shown_cut_short() -> None:
    vector = [1.0] * 40 + ["x"]
    error = _refusal({"points": [{"id": 3, "vector": {"d": vector[:2] + ["x"]}}]})
    assert "got {'d': [1.0, 1.0, 'x']}" in error.message
    error = _refusal({"points": [{"id": 3, "vector": {"d": vector}}]}, {"vectors": {"d": {"size": 41, "distance": "Dot"}}})
    shown = error.message.split("got ", 1)[1]
    assert len(shown) == 80 and shown.endswith("...") and shown.startswith("{'d': [1.0, 1.0")
    longer = [1.0] * 13 + ["xxxxx"]  # 81 characters: cut to 77 and "..."
    error = _refusal({"points": [{"id": 3, "vector": {"d": longer}}]}, {"vectors": {"d": {"size": 14, "distance": "Dot"}}})
    assert error.message.endswith(repr({"d": longer})[:77] + "...") and len(repr({"d": longer})) == 81
    exact = [1.0] * 13 + ["xxxx"]  # shown whole: its text is exactly 80 characters
    error = _refusal({"points": [{"id": 3, "vector": {"d": exact}}]}, {"vectors": {"d": {"size": 14, "distance": "Dot"}}})
    assert error.message.endswith(repr({"d": exact})) and len(repr({"d": exact})) == 80


def test_a_body_that_is_not_an_object_is_refused() -> None:
    for body in ([1], "points", None):
        error = _refusal(body)
        assert error.status == 400
        assert error.message == "Json deserialize error: upsert body must be an object with `points` or `batch`"
    error = _refusal({"other": []})
    assert error.message == ("Json deserialize error: upsert body must have `points` (a list of points) or "
                             "`batch` ({ids, vectors, payloads})")
    error = _refusal({"batch": [1]})
    assert error.message == ("Json deserialize error: `batch` must be an object with `ids` (list), `vectors` and "
                             "optional `payloads`")
    error = _refusal({"batch": {"ids": [1], "vectors": 5}})
    assert error.message == ("Json deserialize error: batch `vectors` must be a list of vectors or an object of "
                             "vector name -> list of vectors")


def test_the_vectors_named_in_a_refusal_are_the_collections(server: Server) -> None:
    both = {"vectors": {"size": 2, "distance": "Dot"}, "sparse_vectors": {"s": {}, "t": {}}}
    error = _refusal({"points": [{"id": 1, "vector": {"x": [1.0, 2.0]}}]}, both)
    assert error.message.endswith("(point id 1, vector `x`; the collection has one unnamed vector, `s`, `t`)")
    error = _refusal({"points": [{"id": 1, "vector": {"d": [1.0]}}]}, {"vectors": {"size": 2, "distance": "Dot"}})
    assert error.message.endswith("(point id 1, vector `d`; the collection has one unnamed vector)")


def test_an_inference_object_is_refused_with_what_to_send_instead() -> None:
    error = _refusal({"points": [{"id": 7, "vector": {"d": {"text": "hi", "model": "m"}}}]})
    assert error.message == ("Wrong input: vector `d` (point id 7, vector `d`): inference objects (text, image, "
                             "document) are not supported by the embedded server; send numbers")


def test_a_dense_config_of_one_number_refuses_a_multivector_column() -> None:
    one = {"vectors": {"size": 1, "distance": "Dot"}}
    for body in ({"batch": {"ids": [1, 2], "vectors": [[[1.0]], [[2.0]]]}},
                 {"batch": {"ids": [1, 2], "vectors": {"": [[[1.0]], [[2.0]]]}}}):
        error = _refusal(body, one)
        assert "Wrong usage of multi vectors" in error.message and "point id 1" in error.message


def test_a_batch_of_empty_payloads_keeps_each_points_vector(server: Server) -> None:
    server.call("PUT", "/collections/c", UNNAMED)
    local = _local(UNNAMED)
    body = {"batch": {"ids": [1, 2], "vectors": [[1.0, 2.0], [3.0, 4.0]], "payloads": [{}, {}]}}
    server.call("PUT", "/collections/c/points", body)
    _local_upsert(local, body)
    assert server.points("c") == _local_points(local) == {"1": ({}, [1.0, 2.0]), "2": ({}, [3.0, 4.0])}


def test_a_named_column_after_a_missing_one_is_kept(server: Server) -> None:
    server.call("PUT", "/collections/c", NAMED)
    local = _local(NAMED)
    body = {"batch": {"ids": [1, 2], "vectors": {"d": None, "s": [{"indices": [3], "values": [1.0]}, None],
                                                  "m": [None, [[1.0, 2.0]]]}}}
    server.call("PUT", "/collections/c/points", body)
    _local_upsert(local, _as_list(body))
    assert server.points("c") == _local_points(local)
    assert server.points("c")["1"][1] == {"s": {"indices": [3], "values": [1.0]}}


def test_a_query_with_a_bad_sparse_vector_is_refused_naming_it(server: Server) -> None:
    """The same sparse-vector parsing serves queries: a shape the upsert checks never let through reaches it."""
    server.call("PUT", "/collections/c", NAMED)
    for query in ({"indices": [1, 2], "values": [1.0]}, {"indices": 1, "values": [1.0]}, {"indices": [1], "values": 1.0}):
        with pytest.raises(ApiError) as raised:
            server.call("POST", "/collections/c/points/query", {"query": query, "using": "s"})
        assert raised.value.status == 400
        assert "query: indices and values must be lists of the same length" in raised.value.message


def test_a_refused_upsert_writes_nothing(server: Server) -> None:
    """Every point is checked before the first is applied: a bad last point leaves the collection as it was."""
    server.call("PUT", "/collections/c", NAMED)
    server.call("PUT", "/collections/c/points", {"points": [{"id": 9, "vector": {"d": [0.0, 0.0, 1.0]}}]})
    for body in ({"points": [GOOD, {"id": 2, "vector": {"d": [1.0]}}]},
                 {"batch": {"ids": [1, 2], "vectors": {"d": [[1.0, 2.0, 3.0], [1.0, "x", 3.0]]}}}):
        with pytest.raises(ApiError):
            server.call("PUT", "/collections/c/points", body)
        assert server.points("c") == {"9": ({}, {"d": [0.0, 0.0, 1.0]})}


def test_a_batch_of_many_points_is_stored_whole(server: Server) -> None:
    """The batch hot path (one `map` over the columns) against local mode, on enough points to be one."""
    rng = np.random.default_rng(SEED)
    ids = [int(i) for i in rng.choice(10**6, size=300, replace=False)]
    dense = rng.normal(size=(300, 3)).tolist()
    body = {"batch": {"ids": ids, "vectors": {"d": dense}, "payloads": [{"i": i} if i % 2 else None for i in ids]}}
    server.call("PUT", "/collections/c", NAMED)
    local = _local(NAMED)
    server.call("PUT", "/collections/c/points", body)
    _local_upsert(local, _as_list(body))
    assert server.points("c") == _local_points(local)



@pytest.mark.parametrize("point", [{"id": 1}, {"id": 1, "vector": None}], ids=["missing", "null"])
def test_a_point_without_its_vector_field_is_refused_as_qdrant_refuses_it(point: dict) -> None:
    """Qdrant's ``PointStruct`` requires ``vector`` and ``VectorStruct`` is not nullable (its OpenAPI spec,
    and qdrant-client's model of it, refuse both); ``{}`` is how a point says it has no vector."""
    with pytest.raises(ValueError):
        models.PointStruct(**point)
    refused = _refusal({"points": [point]})
    assert refused.status == 400 and "`vector`" in str(refused)
