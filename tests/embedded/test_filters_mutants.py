"""The embedded server's request parsing (dagster_qdrant/embedded/filters.py and request_fields.py), called in-process.

The HTTP-level tests in this folder drive the same code inside the server's own process; these call the
parsers directly, so that a changed line shows here (mutation testing runs them; README "Mutation
testing"). References: qdrant-client's local mode (`QdrantClient(":memory:")`) for which points a filter
selects, on an in-process Qdrant Edge shard holding the same seeded points; the OpenAPI spec for the
shapes, ranges and the status of a refusal (400 for a body of the wrong shape, 422 for a value outside its
`minimum`); the input values for ids and selectors.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import qdrant_edge as edge
from qdrant_client import QdrantClient, models
from test_embedded_vs_local_client import Generator

from dagster_qdrant.embedded import filters, request_fields
from dagster_qdrant.embedded.errors import ApiError
from dagster_qdrant.embedded.store import Collection, Store

SEED = 20261202
POINTS = 120
FILTERS = 400


class Shards:
    """The same points in an in-process Edge shard (filters parsed by `filters.parse_filter`) and local mode."""

    def __init__(self, path: Path, generator: Generator) -> None:
        self.ids = generator.point_ids(POINTS)
        payloads = [generator.payload() for _ in self.ids]
        self.store = Store(path)
        self.store.create("c", {"vectors": {"size": 2, "distance": "Dot"}})
        self.collection: Collection = self.store.resolve("c")
        points = [edge.Point(point_id, [1.0, 0.5], payload) for point_id, payload in zip(self.ids, payloads)]
        self.collection.update(edge.UpdateOperation.upsert_points(points, None))
        self.local = QdrantClient(":memory:")
        self.local.create_collection("c", vectors_config=models.VectorParams(size=2, distance=models.Distance.DOT))
        self.local.upsert(
            "c",
            [models.PointStruct(id=i, vector=[1.0, 0.5], payload=p) for i, p in zip(self.ids, payloads)],
            wait=True,
        )

    def edge_ids(self, body: dict[str, Any]) -> list[str]:
        request = edge.ScrollRequest(
            limit=POINTS + 1, filter=filters.parse_filter(body), with_payload=False, with_vector=False
        )
        records, _ = self.collection.read("scroll", request)
        return [str(record.id) for record in records]

    def edge_count(self, body: dict[str, Any]) -> int:
        return self.collection.read("count", edge.CountRequest(exact=True, filter=filters.parse_filter(body)))

    def local_ids(self, body: dict[str, Any]) -> list[str]:
        records, _ = self.local.scroll("c", scroll_filter=models.Filter.model_validate(body), limit=POINTS + 1)
        return [str(record.id) for record in records]


@pytest.fixture(scope="module")
def shards(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Shards]:
    pair = Shards(tmp_path_factory.mktemp("filters") / "qdrant", Generator(SEED))
    yield pair
    pair.store.close()
    pair.local.close()


def _wire(points_filter: models.Filter) -> dict[str, Any]:
    """A filter as a client sends it (JSON, nulls left out as the spec allows)."""
    return points_filter.model_dump(mode="json", exclude_none=True, by_alias=True)


def test_parsed_filters_select_the_points_local_mode_selects(shards: Shards) -> None:
    generator = Generator(SEED + 1)
    typed_ids = list(shards.ids)
    differences = []
    for case in range(FILTERS):
        body = _wire(generator.filter(generator.rng.randrange(0, 3), typed_ids))
        edge_ids, local_ids = shards.edge_ids(body), shards.local_ids(body)
        if edge_ids != local_ids or shards.edge_count(body) != len(local_ids):
            differences.append(f"{case}: {body}: only edge {sorted(set(edge_ids) - set(local_ids))[:5]}, "
                               f"only local {sorted(set(local_ids) - set(edge_ids))[:5]}")
    assert not differences, f"{len(differences)} of {FILTERS} filters differ:\n" + "\n".join(differences[:10])


def test_a_filter_given_as_one_condition_instead_of_a_list_selects_the_same(shards: Shards) -> None:
    condition = {"key": "k", "match": {"value": "a"}}
    for clause in ("must", "should", "must_not"):
        assert shards.edge_ids({clause: condition}) == shards.local_ids({clause: [condition]})


def test_explicit_nulls_mean_not_given(shards: Shards) -> None:
    everything = shards.local_ids({})
    assert filters.parse_filter(None) is None
    assert shards.edge_ids({"must": None, "should": None, "must_not": None, "min_should": None}) == everything
    condition = {"key": "i", "match": {"value": 1, "any": None}, "range": None}
    assert shards.edge_ids({"must": [condition]}) == shards.local_ids({"must": [{"key": "i", "match": {"value": 1}}]})


def test_a_boolean_match_selects_booleans_never_the_integer_1(shards: Shards) -> None:
    body = {"must": [{"key": "b", "match": {"value": True}}]}
    assert shards.edge_ids(body) == shards.local_ids(body)
    integers_only = {"must": [{"key": "i", "match": {"value": True}}]}
    assert shards.edge_ids(integers_only) == shards.local_ids(integers_only)


def test_geo_conditions_select_the_points_local_mode_selects(tmp_path: Path) -> None:
    rng = random.Random(SEED)
    places = [{"lon": rng.uniform(-10, 10), "lat": rng.uniform(-10, 10)} for _ in range(60)]
    store = Store(tmp_path / "qdrant")
    try:
        store.create("geo", {"vectors": {"size": 2, "distance": "Dot"}})
        collection = store.resolve("geo")
        collection.update(edge.UpdateOperation.upsert_points(
            [edge.Point(index, [1.0, 0.0], {"at": place}) for index, place in enumerate(places)], None
        ))
        local = QdrantClient(":memory:")
        local.create_collection("geo", vectors_config=models.VectorParams(size=2, distance=models.Distance.DOT))
        local.upsert("geo", [models.PointStruct(id=i, vector=[1.0, 0.0], payload={"at": p}) for i, p in enumerate(places)])
        square = [{"lon": -3, "lat": -3}, {"lon": 4, "lat": -3}, {"lon": 4, "lat": 5}, {"lon": -3, "lat": 5}, {"lon": -3, "lat": -3}]
        hole = [{"lon": 0, "lat": 0}, {"lon": 2, "lat": 0}, {"lon": 2, "lat": 2}, {"lon": 0, "lat": 2}, {"lon": 0, "lat": 0}]
        conditions = [
            {"geo_bounding_box": {"top_left": {"lon": -5, "lat": 6}, "bottom_right": {"lon": 3, "lat": -2}}},
            {"geo_radius": {"center": {"lon": 1, "lat": 1}, "radius": 400_000}},
            {"geo_polygon": {"exterior": {"points": square}}},
            {"geo_polygon": {"exterior": {"points": square}, "interiors": [{"points": hole}]}},
        ]
        for condition in conditions:
            body = {"must": [{"key": "at", **condition}]}
            records, _ = collection.read("scroll", edge.ScrollRequest(limit=100, filter=filters.parse_filter(body)))
            expected, _ = local.scroll("geo", scroll_filter=models.Filter.model_validate(body), limit=100)
            selected = sorted(record.id for record in records)
            assert selected == sorted(record.id for record in expected), condition
            assert 0 < len(selected) < len(places), f"{condition} must split the points to tell anything"
        local.close()
    finally:
        store.close()


# --- refusals: the status the spec's shapes and minimums give, and a message naming the field ------


def _refused(call: Any, status: int, *words: str) -> None:
    with pytest.raises(ApiError) as raised:
        call()
    assert raised.value.status == status, raised.value
    for word in words:
        assert word in str(raised.value), f"{word!r} missing from {raised.value}"


RING = {"points": [{"lon": 0, "lat": 0}, {"lon": 1, "lat": 0}, {"lon": 1, "lat": 1}, {"lon": 0, "lat": 0}]}

BAD_FILTERS = [
    ([1], 400, "filter must be an object"),
    ({"must": [], "mist": []}, 400, "unknown filter field(s) ['mist']"),
    ({"must": [3]}, 400, "a filter condition must be an object"),
    ({"must": [{"key": 1, "match": {"value": 1}}]}, 400, "condition key must be a string"),
    ({"must": [{"key": "k"}]}, 400, "has nothing to check"),
    ({"must": [{"key": "k", "match": 1}]}, 400, "match must be an object"),
    ({"must": [{"key": "k", "match": {"valu": 1}}]}, 400, "unknown match"),
    ({"must": [{"key": "k", "match": {"value": 1.5}}]}, 400, "match.value must be"),
    ({"must": [{"key": "k", "match": {"value": 2**63}}]}, 400, "match.value must be"),
    ({"must": [{"key": "k", "match": {"value": -(2**63) - 1}}]}, 400, "match.value must be"),
    ({"must": [{"key": "k", "match": {"any": [True]}}]}, 400, "match.any must be"),
    ({"must": [{"key": "k", "match": {"any": ["a", 1]}}]}, 400, "match.any must be"),
    ({"must": [{"key": "k", "match": {"any": [2**63]}}]}, 400, "match.any must be"),
    ({"must": [{"key": "k", "match": {"except": "a"}}]}, 400, "match.except must be"),
    ({"must": [{"key": "k", "range": 1}]}, 400, "range must be an object"),
    ({"must": [{"key": "k", "range": {"gt": 1, "lt": "2024-01-01"}}]}, 400, "all numbers or all datetime"),
    ({"must": [{"key": "k", "range": {"gt": True}}]}, 400, "range.gt must be a number"),
    ({"must": [{"key": "k", "range": {"lte": [1]}}]}, 400, "range.lte must be a number"),
    ({"must": [{"key": "k", "values_count": 1}]}, 400, "values_count must be an object"),
    ({"must": [{"key": "k", "values_count": {"gt": -1}}]}, 400, "values_count.gt must be an unsigned"),
    ({"must": [{"key": "k", "values_count": {"lt": True}}]}, 400, "values_count.lt must be an unsigned"),
    ({"must": [{"key": "k", "is_empty": 1}]}, 400, "is_empty of a field condition must be true or false"),
    ({"must": [{"key": "k", "is_null": "yes"}]}, 400, "is_null of a field condition must be true or false"),
    ({"must": [{"is_empty": {"field": "k"}}]}, 400, "is_empty must be {key"),
    ({"must": [{"is_null": "k"}]}, 400, "is_null must be {key"),
    ({"must": [{"has_vector": 1}]}, 400, "has_vector must be a vector name"),
    ({"must": [{"has_id": 5}]}, 400, "expected a list of point ids"),
    ({"must": [{"has_id": [-1]}]}, 400, "point id -1 is out of range"),
    ({"must": [{"nested": {"key": "a"}}]}, 400, "nested must be {key, filter}"),
    ({"must": [{"nested": []}]}, 400, "nested must be {key, filter}"),
    ({"must": [{"nested": "key filter"}]}, 400, "nested must be {key, filter}"),
    ({"must": [{"slice": {"total": 2}}]}, 400, "slice must be {total: N, index: i}"),
    ({"must": [{"slice": {"total": 2, "index": 1.0}}]}, 400, "slice must be {total: N, index: i}"),
    ({"must": [{"slice": {"total": 0, "index": 0}}]}, 422, "Validation error in JSON body: [slice.total: value 0 invalid, must be 1 or larger]"),
    ({"must": [{"slice": [2, 1]}]}, 400, "slice must be {total: N, index: i}"),
    ({"must": [{"slice": {"index": 0}}]}, 400, "slice must be {total: N, index: i}"),
    ({"must": [{"slice": {"total": 3, "index": 3}}]}, 422, "Validation error in JSON body: [slice.index: value 3 invalid, must be from 0 to total - 1 (2)]"),
    ({"must": [{"slice": {"total": 3, "index": -1}}]}, 422, "slice.index: value -1 invalid"),
    ({"must": [{"whatever": 1}]}, 400, "unknown filter condition"),
    ({"min_should": [1]}, 400, "min_should must be {conditions"),
    ({"min_should": {"conditions": []}}, 400, "min_should must be {conditions"),
    ({"min_should": {"min_count": 1}}, 400, "min_should must be {conditions"),
    ({"min_should": {"conditions": [], "min_count": -1}}, 400, "min_should.min_count must be an unsigned integer"),
    ({"min_should": {"conditions": [], "min_count": 1.0}}, 400, "min_should.min_count must be an unsigned integer"),
    ({"min_should": {"conditions": [], "min_count": 0}}, 422, "Validation error in JSON body: [min_should.min_count: min_count must be greater than 0]"),
    ({"must": [{"key": "at", "geo_radius": {"center": {"lon": 1}, "radius": 1}}]}, 400, "missing field 'lat'"),
    ({"must": [{"key": "at", "geo_radius": {"center": {"lon": "x", "lat": 1}, "radius": 1}}]}, 400, "filter: could not convert"),
    *[({"must": [{"key": "at", "geo_polygon": polygon}]}, 400, "a polygon ring must be {points: [{lon, lat}, ...]}")
      for polygon in (
          {"exterior": RING["points"]},
          {"exterior": {"point": RING["points"]}},
          {"exterior": RING, "interiors": [RING["points"]]},
      )],
]

_POLYGONS_QDRANT_REFUSES = [body for body, _, words in BAD_FILTERS if words.startswith("a polygon ring")]


@pytest.mark.parametrize("body", _POLYGONS_QDRANT_REFUSES)
def test_polygon_rings_the_server_refuses_are_ones_qdrant_refuses(body: Any) -> None:
    # The spec's GeoLineString is an object that requires `points`; qdrant-client's model of it refuses
    # the same bodies, and accepts the ring in its object form.
    with pytest.raises(ValueError):
        models.Filter.model_validate(body)
    models.Filter.model_validate({"must": [{"key": "at", "geo_polygon": {"exterior": RING, "interiors": [RING]}}]})


@pytest.mark.parametrize(("body", "status", "words"), BAD_FILTERS, ids=[words for _, _, words in BAD_FILTERS])
def test_bad_filters_are_refused_with_the_spec_status_naming_the_field(body: Any, status: int, words: str) -> None:
    _refused(lambda: filters.parse_filter(body), status, words)


def test_min_should_at_the_spec_minimum_and_slices_at_their_bounds_are_accepted(shards: Shards) -> None:
    condition = {"key": "k", "match": {"value": "a"}}
    body = {"min_should": {"conditions": [condition], "min_count": 1}}
    assert shards.edge_ids(body) == shards.local_ids(body)
    halves = [set(shards.edge_ids({"must": [{"slice": {"total": 2, "index": index}}]})) for index in (0, 1)]
    assert halves[0].isdisjoint(halves[1]) and halves[0] | halves[1] == set(shards.local_ids({}))
    assert shards.edge_ids({"must": [{"slice": {"total": 1, "index": 0}}]}) == shards.local_ids({})


# --- point ids and selectors --------------------------------------------------------------------


def test_point_ids_are_unsigned_64_bit_integers_or_uuids_in_any_spelling() -> None:
    rng = random.Random(SEED)
    for value in [0, 1, 2**64 - 1, *(rng.randrange(2**64) for _ in range(50))]:
        assert request_fields.parse_point_id(value) == value
    for _ in range(50):
        point = uuid.UUID(int=rng.getrandbits(128))
        for spelling in (str(point), str(point).upper(), point.hex, f"{{{point}}}", point.urn):
            assert request_fields.parse_point_id(spelling) == str(point)
    _refused(lambda: request_fields.parse_point_id(2**64), 400, "point id 18446744073709551616 is out of range")
    _refused(lambda: request_fields.parse_point_id(-1), 400, "point id -1 is out of range")
    _refused(lambda: request_fields.parse_point_id("nope"), 400, "Unable to parse UUID: nope")
    for value in (True, 1.0, None, [1]):
        _refused(lambda: request_fields.parse_point_id(value), 400, f"point id {value!r} is not an unsigned integer")
    assert request_fields.parse_point_ids([3, str(point).upper()]) == [3, str(point)]
    _refused(lambda: request_fields.parse_point_ids((1, 2)), 400, "expected a list of point ids, got tuple")


def test_ids_go_back_to_json_as_ints_and_lowercase_uuids() -> None:
    point = uuid.UUID(int=2**100 + 7)
    assert request_fields.id_to_json(point) == str(point) and request_fields.id_to_json(5) == 5
    assert type(request_fields.id_to_json(point)) is str


def test_payload_and_vector_selectors_follow_the_spec_shapes() -> None:
    for default in (True, False):
        assert request_fields.parse_with_payload(None, default) is default
        assert request_fields.parse_with_vector(None, default) is default
    for flag in (True, False):
        assert request_fields.parse_with_payload(flag, not flag) is flag
        assert request_fields.parse_with_vector(flag, not flag) is flag
    assert request_fields.parse_with_vector(["dense", "sparse"], False) == ["dense", "sparse"]
    assert request_fields.parse_with_vector("dense", False) == ["dense"]
    _refused(lambda: request_fields.parse_with_payload({"include": [1]}, True), 400, "with_payload.include must be a list of strings")
    _refused(lambda: request_fields.parse_with_payload({"exclude": 1}, True), 400, "with_payload.exclude must be a list of strings")
    _refused(lambda: request_fields.parse_with_payload({}, True), 400, "with_payload must be a bool")
    _refused(lambda: request_fields.parse_with_payload(1, True), 400, "with_payload must be a bool")
    _refused(lambda: request_fields.parse_with_vector([1], True), 400, "with_vector must be a list of strings")
    _refused(lambda: request_fields.parse_with_vector(1, True), 400, "with_vector must be a bool or a list of vector names")


def test_payload_selectors_return_the_keys_local_mode_returns(shards: Shards) -> None:
    first = shards.ids[:10]
    selectors = [
        (["k", "o"], ["k", "o"]),
        ({"include": ["i", "o.k"]}, models.PayloadSelectorInclude(include=["i", "o.k"])),
        ({"include": "k"}, ["k"]),
        ({"exclude": ["k", "a"]}, models.PayloadSelectorExclude(exclude=["k", "a"])),
        ({"include": None, "exclude": ["i"]}, models.PayloadSelectorExclude(exclude=["i"])),
        (True, True),
        (False, False),
    ]
    for selector, reference in selectors:
        records = shards.collection.read("retrieve", first, request_fields.parse_with_payload(selector, True), False)
        expected = shards.local.retrieve("c", first, with_payload=reference)
        assert {str(r.id): r.payload or {} for r in records} == {str(r.id): r.payload or {} for r in expected}, selector


def test_limit_is_a_positive_integer() -> None:
    assert request_fields.parse_limit(None, 10) == 10 and request_fields.parse_limit(1, 10) == 1 and request_fields.parse_limit(7, 10) == 7
    _refused(lambda: request_fields.parse_limit(0, 10), 422, "Validation error in JSON body: [limit: value 0 invalid, must be 1 or larger]")
    _refused(lambda: request_fields.parse_limit(True, 10), 400, "limit must be an integer, got True")
    _refused(lambda: request_fields.parse_limit(2.0, 10), 400, "limit must be an integer, got 2.0")


def test_match_value_passes_booleans_as_numpy_bools_and_keeps_strings_and_integers() -> None:
    assert type(filters._match_value(True)) is np.bool_ and filters._match_value(False) == np.False_
    for value in ("x", 0, 2**63 - 1, -(2**63)):
        assert filters._match_value(value) == value


def test_has_vector_selects_the_points_local_mode_selects(tmp_path: Path) -> None:
    store = Store(tmp_path / "qdrant")
    local = QdrantClient(":memory:")
    try:
        vectors = {"a": {"size": 2, "distance": "Dot"}, "b": {"size": 2, "distance": "Dot"}}
        store.create("named", {"vectors": vectors})
        collection = store.resolve("named")
        given = [{"a": [1.0, 0.0], "b": [0.0, 1.0]} if i % 3 else {"a": [1.0, 0.0]} for i in range(30)]
        collection.update(edge.UpdateOperation.upsert_points([edge.Point(i, v, {}) for i, v in enumerate(given)], None))
        local.create_collection("named", vectors_config={
            name: models.VectorParams(size=2, distance=models.Distance.DOT) for name in vectors
        })
        local.upsert("named", [models.PointStruct(id=i, vector=v) for i, v in enumerate(given)])
        for name in ("a", "b"):
            body = {"must": [{"has_vector": name}]}
            records, _ = collection.read("scroll", edge.ScrollRequest(limit=100, filter=filters.parse_filter(body)))
            expected, _ = local.scroll("named", scroll_filter=models.Filter.model_validate(body), limit=100)
            assert sorted(r.id for r in records) == sorted(r.id for r in expected), name
        assert len(expected) == 20
    finally:
        store.close()
        local.close()
