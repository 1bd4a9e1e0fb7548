"""Filters on the embedded server select exactly the points Qdrant's own semantics select.

The reference is qdrant-client's local mode (`QdrantClient(":memory:")`), Qdrant's Python model of its
filter semantics. Both sides are driven through the official qdrant-client, the embedded server over REST.
Seeded random payloads (keywords incl. non-ASCII, integers incl. i64 limits, floats, booleans, datetimes,
short texts, nulls, missing keys, lists, nested objects, arrays of objects inside arrays of objects,
non-ASCII and dotted keys) meet seeded random filters (match value/any/except, text/text_any/phrase/prefix
on keys without a text index, numeric and datetime ranges, is_empty, is_null in both forms, values_count,
nested in two levels, has_id in any UUID spelling, slice, must/should/must_not/min_should, filters inside
filters). For each filter, scroll and count must give the same points; every few filters so
must a paged scroll, a scroll ordered by an integer, float or datetime index, and delete-by-filter. One run
has no index on the filtered keys; the other indexes them, with values of one type per key.

Where local mode is known to differ from a real Qdrant, the real Qdrant is followed and the case is left out
of the generation, with the Qdrant source that shows its behaviour next to it. Those notes are why the module
is longer than most: the generator and the reasons for what it leaves out belong together.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from qdrant_client import QdrantClient, models

SEED = 20261201
POINTS = 150
DEFAULT_FILTERS = 1200  # on payloads of mixed types, no payload index on the filtered keys
INDEXED_FILTERS = 800  # on payloads of one type per key, with payload indexes on them
STRESS_FILTERS = 10000  # each, under -m stress, from other seeds
DELETE_EVERY = 25  # delete-by-filter (and restore) every this many filters
ORDER_EVERY = 10  # scroll ordered by value every this many filters

KEYWORDS = ["a", "b", "ab", "A", "", "ü", "日本", "naïve", "1", "true"]
INTEGERS = [-3, -1, 0, 1, 2, 3, 10**12]
# stored and matched exactly, never range bounds: a range compares as f64 in Qdrant, exactly in local mode
BIG_INTEGERS = [2**63 - 1, -(2**63), 2**53 + 1]
FLOATS = [-1.5, -0.0, 0.5, 1.0, 2.25, 3.75, 1e300]
DATETIMES = [
    "2024-01-01T00:00:00Z", "2024-01-01T10:30:00+02:00", "2024-06-15", "2024-06-15T12:00:00",
    "2023-12-31T23:59:59.999Z", "2024-01-01 08:30:00", "2024-03-10T05:00:00-05:00",
]
WORDS = ["hello", "World", "world", "naïve", "café", "日本語", "a", "the", "x-ray", "foo_bar", "42", "Ünïcode"]
SCALAR_KEYS = ["k", "i", "f", "b", "d", "t", "m", "e"]
NESTED_KEYS = ["k", "i", "f", "b"]
PATHS = SCALAR_KEYS + ["o.k", "o.i", "o.b", "a[].k", "a[].i", "a[].b", "a[].f", "a[0].k", "a[1].i", "a[].s[].k"]
PATHS += ["o", "a", "nope", "ключ", '"x.y"', "x"]
# The keys a filter can name at each level, and the arrays of objects a nested condition there can descend into
LEVELS: dict[str, tuple[list[str], str | None]] = {
    "top": (PATHS, "a"),
    "a": (NESTED_KEYS + ["s", "s[].k", "s[].i"], "s"),
    "s": (["k", "i"], None),
}
# order_by reads a numeric or datetime payload index; these keys are only ordered by, never filtered on, and
# hold values of their index's type only: an integer index keeps integral numbers alone (`value_to_integer`,
# lib/segment/src/index/field_index/utils.rs, v1.19.0), so Qdrant never orders by `oi: 2.25`; local mode does.
ORDER_KEYS = {
    "oi": models.PayloadSchemaType.INTEGER,
    "of": models.PayloadSchemaType.FLOAT,
    "od": models.PayloadSchemaType.DATETIME,
}
# Payload indexes change how Qdrant evaluates a condition (the index instead of the stored payload); they give
# the same points as long as every value is of the index's type, which is how the indexed run generates them.
# Fields inside arrays of objects (`a[].k`) are not indexed: Qdrant estimates a nested condition with the index
# of the full path, which knows points, not array elements (`condition_cardinality` for `Condition::Nested` in
# lib/segment/src/index/struct_payload_index/read_view/filtering.rs, v1.19.0), and walks only the points that
# estimate names (`iter_filtered_points`, payload_index_read.rs): `nested a[]: is_empty k` then misses a point
# whose other elements have a `k`, which a real Qdrant and the embedded engine do alike and local mode does not.
FILTER_INDEXES = {
    "k": models.PayloadSchemaType.KEYWORD,
    "i": models.PayloadSchemaType.INTEGER,
    "f": models.PayloadSchemaType.FLOAT,
    "b": models.PayloadSchemaType.BOOL,
    "o.k": models.PayloadSchemaType.KEYWORD,
    "o.i": models.PayloadSchemaType.INTEGER,
}


class Generator:
    """Payloads and filters from one seeded `random.Random`."""

    def __init__(self, seed: int, indexed: bool = False) -> None:
        self.rng = random.Random(seed)
        self.indexed = indexed  # for indexed keys: values of the key's own kind only, range bounds within i64

    def scalar(self, kind: str) -> Any:
        rng = self.rng
        if kind == "k":
            return rng.choice(KEYWORDS)
        if kind == "i":
            return rng.choice(INTEGERS) if rng.random() < 0.9 else rng.choice(BIG_INTEGERS)
        if kind == "f":
            return rng.choice(FLOATS + INTEGERS[:4])
        if kind == "b":
            return rng.choice([True, False])
        if kind == "d":
            return rng.choice(DATETIMES)
        if kind == "t":
            return rng.choice([" ", ", ", "-", "  "]).join(rng.choice(WORDS) for _ in range(rng.randrange(0, 6)))
        return self.scalar(rng.choice("kifb"))

    def value(self, kind: str, mixed: bool = True) -> Any:
        """One payload value: mostly of the key's kind, sometimes null, a list, or (if `mixed`) another kind."""
        roll = self.rng.random()
        if roll < 0.08:
            return None
        if roll < 0.25:
            return [self.scalar(kind) for _ in range(self.rng.randrange(0, 4))]
        if roll < 0.30:
            return [self.scalar(kind), None]
        if mixed and not self.indexed and roll < 0.36:
            return self.scalar("m")
        return self.scalar(kind)

    def obj(self, inner: bool = True) -> dict[str, Any]:
        """An object of scalar keys; with `inner`, sometimes an array `s` of smaller objects too."""
        value = {key: self.value(key) for key in NESTED_KEYS if self.rng.random() < 0.75}
        if inner and self.rng.random() < 0.4:
            value["s"] = [
                {key: self.value(key) for key in "ki" if self.rng.random() < 0.8} for _ in range(self.rng.randrange(0, 3))
            ]
        return value

    def payload(self) -> dict[str, Any]:
        payload: dict[str, Any] = {}
        for key in SCALAR_KEYS:
            if self.rng.random() < 0.8:
                payload[key] = self.value(key)
        if self.rng.random() < 0.7:
            payload["o"] = self.obj(inner=False)
        for key, kind in (("ключ", "k"), ("x.y", "i")):  # a non-ASCII key; a key with a dot, quoted in paths
            if self.rng.random() < 0.5:
                payload[key] = self.value(kind)
        for key, kind in (("oi", "i"), ("of", "f"), ("od", "d")):
            if self.rng.random() < 0.85:
                payload[key] = self.value(kind, mixed=False)
        roll = self.rng.random()
        if roll < 0.6:
            payload["a"] = [self.obj() for _ in range(self.rng.randrange(0, 4))]
        elif roll < 0.7:
            payload["a"] = self.obj()  # an object, not an array: nested conditions never match it
        elif roll < 0.75:
            payload["a"] = None
        return payload

    def point_ids(self, count: int) -> list[int | str]:
        ids: list[int | str] = []
        for index in range(count):
            if index % 5 == 4:
                ids.append(str(uuid.UUID(int=self.rng.getrandbits(128))))
            else:
                ids.append(index * 7 + self.rng.randrange(7))
        return ids

    # filters

    def text_match(self) -> models.Match:
        """Full-text matches, on keys without a text index (local mode builds no indexes)."""
        rng = self.rng
        words = " ".join(rng.choice(WORDS) for _ in range(rng.randrange(0, 3)))
        roll = rng.random()
        if roll < 0.3:
            return models.MatchText(text=words)
        if roll < 0.55:
            return models.MatchTextAny(text_any=words)
        if roll < 0.8:
            return models.MatchPhrase(phrase=words)
        word = rng.choice(WORDS)
        return models.MatchPrefix(prefix=word[: rng.randrange(0, len(word) + 1)])

    def match(self, key: str) -> models.Match:
        """Mostly values of the key's own kind (so that conditions select some points), else any kind."""
        rng = self.rng
        if key in ("t", "k") and not self.indexed and rng.random() < 0.5:
            return self.text_match()
        kind = key.rsplit(".", 1)[-1]
        if kind not in ("k", "i", "b") or rng.random() < 0.3:
            kind = rng.choice("kib")
        roll = rng.random()
        if roll < 0.5:
            return models.MatchValue(value=self.scalar(kind))
        # `any` and `except` take keywords or integers only (`AnyVariants` in Qdrant's types.rs)
        kind = kind if kind != "b" else rng.choice("ki")
        values = [self.scalar(kind) for _ in range(rng.randrange(0, 4))]
        if roll < 0.75:
            return models.MatchAny(any=values)
        return models.MatchExcept(**{"except": values})

    def range(self, key: str) -> models.Range | models.DatetimeRange:
        rng = self.rng
        # On a numeric index Qdrant answers a datetime range with the index, as timestamps (`RangeInterface::
        # DateTime` in lib/segment/src/index/field_index/numeric_index/query.rs, v1.19.0): `f: 1e300` is then
        # "after 2024"; local mode never matches a number with a datetime range. So none on indexed keys.
        if key.endswith("d") or (rng.random() < 0.05 and not self.indexed):
            names = rng.sample(["gt", "gte", "lt", "lte"], rng.randrange(1, 3))
            return models.DatetimeRange(**{name: rng.choice(DATETIMES) for name in names})
        names = rng.sample(["gt", "gte", "lt", "lte"], rng.randrange(1, 3))
        if self.indexed:
            # A numeric index reads one bound per side, `gt` before `gte` and `lt` before `lte`
            # (`Range::as_index_key_bounds` in lib/segment/src/index/field_index/numeric_index/read_ops.rs,
            # v1.19.0), so `{gt: -2.5, gte: 0}` selects -2 there; local mode checks every bound.
            names = [name for name in names if name[:2] != names[0][:2]] + names[:1]
        bounds = {}
        for name in names:
            bounds[name] = rng.choice(INTEGERS + FLOATS + [0.25, -2.5])
            if self.indexed and abs(bounds[name]) > 2**53:
                # An integer index turns float bounds into i64 with a saturating `ceil() as i64`
                # (`from_f64_range` in lib/segment/src/index/field_index/numeric_point.rs, v1.19.0), so
                # `lt: 1e300` excludes i64::MAX there; local mode compares exactly.
                bounds[name] = 10**12
        return models.Range(**bounds)

    def values_count(self) -> models.ValuesCount:
        rng = self.rng
        bounds = {name: rng.randrange(0, 4) for name in rng.sample(["gt", "gte", "lt", "lte"], rng.randrange(1, 3))}
        return models.ValuesCount(**bounds)

    def field_condition(self, keys: list[str]) -> models.Condition:
        rng = self.rng
        key = rng.choice(keys)
        roll = rng.random()
        if roll < 0.45:
            return models.FieldCondition(key=key, match=self.match(key))
        if roll < 0.65:
            return models.FieldCondition(key=key, range=self.range(key))
        if roll < 0.75:
            return models.FieldCondition(key=key, values_count=self.values_count())
        if roll < 0.80:
            return models.IsEmptyCondition(is_empty=models.PayloadField(key=key))
        if roll < 0.90 and "[]" not in key:
            # The `{key, is_empty: bool}` / `{key, is_null: bool}` forms check each value a key selects and match
            # if any does (`check_field_condition` in lib/segment/src/payload_storage/query_checker.rs with
            # `check_is_empty`/`check_is_null` of condition_checker.rs, Qdrant v1.19.0); local mode checks the
            # key as a whole, like `is_empty: {key}`. Both agree on keys that select one value, so the forms are
            # generated only for those (not for `a[].x`).
            if roll < 0.85:
                return models.FieldCondition(key=key, is_empty=rng.choice([True, False]))
            return models.FieldCondition(key=key, is_null=rng.choice([True, False]))
        return models.IsNullCondition(is_null=models.PayloadField(key=key))

    def has_id(self, ids: list[int | str]) -> models.HasIdCondition:
        """Some stored ids, some absent ones, UUIDs in any of their spellings."""
        rng = self.rng
        chosen: list[int | str] = []
        for point_id in rng.sample(ids, rng.randrange(0, 12)):
            if isinstance(point_id, str):
                point_id = rng.choice([point_id, point_id.upper(), uuid.UUID(point_id).hex, "{" + point_id + "}"])
            chosen.append(point_id)
        if rng.random() < 0.3:
            chosen.append(rng.choice([3, 10**15, str(uuid.UUID(int=rng.getrandbits(128)))]))
        return models.HasIdCondition(has_id=chosen)

    def condition(self, depth: int, ids: list[int | str], level: str) -> models.Condition:
        rng = self.rng
        keys, array = LEVELS[level]
        roll = rng.random()
        if depth > 0 and roll < 0.15:
            return self.filter(depth - 1, ids, level)
        if array and roll < 0.25:
            inner = self.filter(min(depth, 1), ids, array)
            return models.NestedCondition(nested=models.Nested(key=rng.choice([array, array + "[]"]), filter=inner))
        if roll < 0.30:
            return self.has_id(ids)
        if level == "top" and roll < 0.33:
            total = rng.randrange(1, 6)
            return models.SliceCondition(slice=models.Slice(total=total, index=rng.randrange(total)))
        return self.field_condition(keys)

    def conditions(self, clause: str, depth: int, ids: list[int | str], level: str) -> Any:
        """A clause's conditions: a list (fewer for `must`, which narrows fast) or, as Qdrant allows, one alone."""
        if self.rng.random() < 0.1:
            return self.condition(depth, ids, level)
        count = self.rng.randrange(0, 3 if clause == "must" else 4)
        return [self.condition(depth, ids, level) for _ in range(count)]

    def order_by(self) -> models.OrderBy:
        rng = self.rng
        key = rng.choice(sorted(ORDER_KEYS))
        start_from = rng.choice([None, None, rng.choice(DATETIMES if key == "od" else INTEGERS + FLOATS)])
        return models.OrderBy(
            key=key,
            direction=rng.choice([None, models.Direction.ASC, models.Direction.DESC]),
            start_from=start_from,
        )

    def min_count(self, conditions: int) -> int:
        """Mostly 1 (else most filters would match nothing), else up to the number of conditions.

        Never more than the conditions: Qdrant (v1.19.0) skips checking a point against the filter when every
        condition the filter lists (`Filter::iter_conditions`, types.rs) is a primary clause of its cardinality
        estimation (`iter_filtered_points`, lib/segment/src/index/struct_payload_index/read_view/
        payload_index_read.rs), so `{should: [has_id], min_should: {conditions: [], min_count: 1}}` returns
        the has_id points, which a real Qdrant and the embedded engine do alike, where local mode returns none.
        """
        return 1 if self.rng.random() < 0.6 else self.rng.randrange(1, conditions + 1)

    def filter(self, depth: int, ids: list[int | str], level: str = "top") -> models.Filter:
        rng = self.rng
        clauses: dict[str, Any] = {}
        for clause in rng.sample(["must", "should", "must_not", "min_should"], rng.randrange(1, 4)):
            conditions = self.conditions(clause, depth, ids, level)
            if clause == "min_should":
                conditions = conditions if isinstance(conditions, list) else [conditions]
                conditions = conditions or [self.condition(depth, ids, level)]
                clauses[clause] = models.MinShould(conditions=conditions, min_count=self.min_count(len(conditions)))
            elif clause == "should" and conditions == [] and level != "top":
                # Inside a nested filter an empty `should` matches nothing in Qdrant, while local mode reads it
                # as no constraint. Qdrant checks each array element with `check_payload` ->
                # `query_checker::check_filter`, whose `check_should` is `Some(conditions) =>
                # conditions.iter().any(..)` (lib/segment/src/payload_storage/query_checker.rs; the nested
                # branch of lib/segment/src/index/struct_payload_index/read_view/condition_converter.rs);
                # only the optimized top-level filter skips an empty `should`
                # (lib/segment/src/index/query_optimization/optimized_filter.rs; all as of Qdrant v1.19.0).
                # So no empty `should` here.
                continue
            else:
                clauses[clause] = conditions
        return models.Filter(**clauses)


class Pair:
    """One collection of the same points on the embedded server and in local mode."""

    def __init__(
        self, embedded: QdrantClient, name: str, points: list[models.PointStruct], indexes: dict[str, Any]
    ) -> None:
        self.local = QdrantClient(":memory:")
        self.embedded = embedded
        self.name = name
        self.points = {str(point.id): point for point in points}
        for client in self.clients:
            client.create_collection(name, vectors_config=models.VectorParams(size=2, distance=models.Distance.DOT))
            client.upsert(name, points=points, wait=True)
            for key, schema in indexes.items():
                client.create_payload_index(name, key, field_schema=schema, wait=True)

    @property
    def clients(self) -> tuple[QdrantClient, QdrantClient]:
        return self.embedded, self.local

    def scroll_ids(self, client: QdrantClient, points_filter: models.Filter) -> list[str]:
        records, _ = client.scroll(self.name, scroll_filter=points_filter, limit=len(self.points) + 1, with_payload=False)
        return [str(record.id) for record in records]

    def pages(self, client: QdrantClient, points_filter: models.Filter, size: int) -> list[tuple[list[str], Any]]:
        """Every page of a filtered scroll `size` points at a time, with the offset each page gives for the next."""
        pages: list[tuple[list[str], Any]] = []
        offset = None
        while True:
            records, offset = client.scroll(
                self.name, scroll_filter=points_filter, limit=size, offset=offset, with_payload=False
            )
            pages.append(([str(record.id) for record in records], offset))
            if offset is None or len(pages) > len(self.points):
                return pages

    def count(self, client: QdrantClient, points_filter: models.Filter) -> int:
        return client.count(self.name, count_filter=points_filter, exact=True).count

    def ordered(
        self, client: QdrantClient, points_filter: models.Filter, order_by: models.OrderBy
    ) -> list[tuple[float, frozenset[str]]]:
        """Ordered scroll as runs of equal order values: Qdrant leaves the order among ties unspecified."""
        records, _ = client.scroll(
            self.name, scroll_filter=points_filter, limit=len(self.points) * 8, with_payload=False, order_by=order_by
        )
        runs: list[tuple[float, set[str]]] = []
        for record in records:
            if runs and runs[-1][0] == record.order_value:
                runs[-1][1].add(str(record.id))
            else:
                runs.append((record.order_value, {str(record.id)}))
        return [(value, frozenset(ids)) for value, ids in runs]

    def delete_and_restore(self, points_filter: models.Filter) -> tuple[list[str], list[str]]:
        """Ids left on each side after deleting by `points_filter`; then the deleted points are put back."""
        left = []
        for client in self.clients:
            client.delete(self.name, points_selector=models.FilterSelector(filter=points_filter), wait=True)
            left.append(self.scroll_ids(client, models.Filter()))
            gone = [self.points[point_id] for point_id in self.points if point_id not in set(left[-1])]
            if gone:
                client.upsert(self.name, points=gone, wait=True)
        return left[0], left[1]

    def close(self) -> None:
        self.embedded.delete_collection(self.name)
        self.local.close()


def _pair(embedded: QdrantClient, name: str, generator: Generator, indexes: dict[str, Any]) -> Pair:
    ids = generator.point_ids(POINTS)
    points = [models.PointStruct(id=point_id, vector=[1.0, 0.5], payload=generator.payload()) for point_id in ids]
    return Pair(embedded, name, points, {**ORDER_KEYS, **indexes})


def _differences(pair: Pair, generator: Generator, cases: int) -> Iterator[tuple[int, str]]:
    """(case, what differed) for every way a filter's results differ between the two sides.

    The embedded server's requests run on a second thread while local mode evaluates the same filter, so that
    the two sides (one waiting on a socket, one in Python) overlap.
    """
    typed_ids = [point.id for point in pair.points.values()]
    with ThreadPoolExecutor(max_workers=1) as pool:
        for case in range(cases):
            points_filter = generator.filter(generator.rng.randrange(0, 3), typed_ids)
            shown = points_filter.model_dump_json(exclude_none=True, by_alias=True)
            embedded = pool.submit(_scroll_and_count, pair, points_filter)
            local_ids = pair.scroll_ids(pair.local, points_filter)
            embedded_ids, embedded_count = embedded.result()
            if embedded_ids != local_ids:
                only_embedded = sorted(set(embedded_ids) - set(local_ids))[:5]
                only_local = sorted(set(local_ids) - set(embedded_ids))[:5]
                yield case, f"scroll {shown}: only embedded {only_embedded}, only local {only_local}"
            if embedded_count != len(local_ids):  # local mode counts the same mask its scroll returns
                yield case, f"count {shown}: embedded {embedded_count}, local {len(local_ids)}"
            if case % ORDER_EVERY == 0:
                for difference in _ordered_differences(pair, generator, points_filter, shown):
                    yield case, difference
            if case % DELETE_EVERY == 0:
                embedded_left, local_left = pair.delete_and_restore(points_filter)
                if embedded_left != local_left:
                    yield case, f"delete {shown}: embedded kept {len(embedded_left)}, local kept {len(local_left)}"


def _scroll_and_count(pair: Pair, points_filter: models.Filter) -> tuple[list[str], int]:
    return pair.scroll_ids(pair.embedded, points_filter), pair.count(pair.embedded, points_filter)


def _ordered_differences(pair: Pair, generator: Generator, points_filter: models.Filter, shown: str) -> Iterator[str]:
    """Paged scroll (by id) and scroll ordered by a payload value."""
    size = generator.rng.randrange(1, 40)
    embedded_pages, local_pages = (pair.pages(client, points_filter, size) for client in pair.clients)
    if embedded_pages != local_pages:
        yield f"pages of {size} {shown}: embedded {embedded_pages[:3]}, local {local_pages[:3]}"
    order_by = generator.order_by()
    embedded_runs, local_runs = (pair.ordered(client, points_filter, order_by) for client in pair.clients)
    if embedded_runs != local_runs:
        yield f"order_by {order_by} {shown}: embedded {embedded_runs[:4]}, local {local_runs[:4]}"


def _run(embedded: QdrantClient, collection_name: str, cases: int, indexed: bool, seed: int) -> None:
    generator = Generator(seed, indexed=indexed)
    pair = _pair(embedded, collection_name, generator, FILTER_INDEXES if indexed else {})
    try:
        differences = list(_differences(pair, generator, cases))
    finally:
        pair.close()
    differing = len({case for case, _ in differences})
    shown = "\n".join(text for _, text in differences[:20])
    assert not differences, f"{differing} of {cases} filters differ:\n{shown}"


@pytest.mark.parametrize("indexed", [False, True], ids=["payload", "indexed"])
def test_filters_select_the_points_qdrant_selects(embedded: QdrantClient, collection_name: str, indexed: bool) -> None:
    _run(embedded, collection_name, INDEXED_FILTERS if indexed else DEFAULT_FILTERS, indexed, SEED + indexed)


@pytest.mark.stress
@pytest.mark.parametrize("indexed", [False, True], ids=["payload", "indexed"])
def test_filters_select_the_points_qdrant_selects_long(
    embedded: QdrantClient, collection_name: str, indexed: bool
) -> None:
    _run(embedded, collection_name, STRESS_FILTERS, indexed, SEED + 2 + indexed)
