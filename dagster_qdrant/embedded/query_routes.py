"""Search endpoints: the universal query API (`/points/query`, `/points/query/batch`) and the legacy
`/points/search`, translated to Qdrant Edge `QueryRequest`s.
"""

from __future__ import annotations

from typing import Any

import qdrant_edge as edge

from dagster_qdrant.embedded.errors import ApiError, bad_json, bad_request, not_found
from dagster_qdrant.embedded.filters import parse_filter
from dagster_qdrant.embedded.points import sparse_vector
from dagster_qdrant.embedded.request import Request
from dagster_qdrant.embedded.request_fields import parse_limit, parse_point_id, parse_with_payload, parse_with_vector
from dagster_qdrant.embedded.responses import scored_to_json, vector_to_json

DEFAULT_RRF_K = 2


def with_vector_field(body: dict[str, Any]) -> Any:
    """`with_vector`, or its alias `with_vectors` (Qdrant accepts both on every read request)."""
    value = body.get("with_vector")
    return body.get("with_vectors") if value is None else value


def parse_order_by(value: Any) -> edge.OrderBy | None:
    """`"field"` or `{"key", "direction", "start_from"}`."""
    if value is None:
        return None
    if isinstance(value, str):
        return edge.OrderBy(value)
    if not isinstance(value, dict) or not isinstance(value.get("key"), str):
        raise bad_json(f"order_by must be a payload key or {{key, direction, start_from}}, got {value!r}")
    direction = value.get("direction")
    if direction not in (None, "asc", "desc"):
        raise bad_json(f"unknown variant `{direction}` for order_by.direction, expected `asc` or `desc`")
    start_from = value.get("start_from")
    if start_from is not None and (isinstance(start_from, bool) or not isinstance(start_from, (int, float, str))):
        # Qdrant's `StartFrom` is an integer, a float or a datetime; the binding would take a bool as 1
        raise bad_json(f"order_by.start_from must be a number or a datetime string, got {start_from!r}")
    try:
        return edge.OrderBy(
            value["key"],
            direction=None if direction is None else (edge.Direction.Asc if direction == "asc" else edge.Direction.Desc),
            start_from=start_from,
        )
    except (TypeError, ValueError, OverflowError) as error:
        raise bad_json(f"order_by.start_from {start_from!r}: {error}") from None


def _search_params(value: Any) -> edge.SearchParams | None:
    if not isinstance(value, dict):
        return None
    hnsw_ef = value.get("hnsw_ef")
    if hnsw_ef is not None and (not isinstance(hnsw_ef, int) or isinstance(hnsw_ef, bool) or hnsw_ef < 0):
        raise bad_json(f"invalid value: {hnsw_ef!r}, expected an unsigned integer for `params.hnsw_ef`")
    if hnsw_ef == 0:
        raise ApiError(422, "Validation error in JSON body: [params.hnsw_ef: value 0 invalid, must be 1 or larger]")
    return edge.SearchParams(
        hnsw_ef=value.get("hnsw_ef"),
        exact=bool(value.get("exact") or False),
        indexed_only=bool(value.get("indexed_only") or False),
    )


class _QueryBuilder:
    """Builds Edge queries for one collection (a point id used as a query needs that point's vector).

    With `lookup_from`, point ids name points of another collection (and vector), and are not left out
    of the results, as in Qdrant."""

    def __init__(self, collection: Any, store: Any = None, lookup_from: Any = None) -> None:
        self.collection = collection
        self.store = store
        self.referenced_ids: list[Any] = []  # points used as queries are left out of the results, as in Qdrant
        self.lookup: Any = None
        self.lookup_vector: str | None = None
        if lookup_from is not None:
            self.lookup, self.lookup_vector = _lookup_from(store, lookup_from)

    def vector_input(self, value: Any, using: str | None) -> Any:
        """`VectorInput`: dense, sparse, multivector, or the id of a point whose vector to use."""
        if isinstance(value, list):
            return value
        if isinstance(value, dict) and "indices" in value:
            return sparse_vector(value, "query")
        if isinstance(value, (int, str)) and not isinstance(value, bool):
            point_id = parse_point_id(value)
            if self.lookup is not None:
                return self._stored_vector(point_id, self.lookup_vector or using, self.lookup)
            self.referenced_ids.append(point_id)
            return self._stored_vector(point_id, using, self.collection)
        raise bad_request(f"query vector must be a list of numbers, a sparse {{indices, values}} or a point id, got {value!r}")

    def _stored_vector(self, point_id: Any, using: str | None, source: Any) -> Any:
        records = source.read("retrieve", [point_id], False, [using] if using else True)
        if not records:
            raise not_found(f"No point with id {point_id} found")
        vector = vector_to_json(records[0].vector)
        if isinstance(vector, dict):
            vector = vector.get(using or "")
            if vector is None:
                raise bad_request(f"point {point_id} has no vector `{using or ''}`")
            if isinstance(vector, dict):
                return sparse_vector(vector, "query")
        return vector

    def query(self, value: Any, using: str | None, limit: int = 10) -> Any:
        """`QueryInterface` -> an Edge scoring query (or None: points in id order)."""
        if value is None:
            return None
        if not isinstance(value, dict) or "indices" in value:
            return edge.Query.Nearest(self.vector_input(value, using), using)
        if value.get("nearest") is not None:
            if value.get("mmr") is not None:
                return self._mmr(value["nearest"], value["mmr"], using, limit)
            return edge.Query.Nearest(self.vector_input(value["nearest"], using), using)
        if value.get("discover") is not None:
            discover = value["discover"]
            if not isinstance(discover, dict) or discover.get("target") is None:
                raise bad_json("discover must be {target, context: [{positive, negative}, ...]}")
            target = self.vector_input(discover["target"], using)
            return edge.Query.Discover(edge.DiscoverQuery(target, self._pairs(discover.get("context"), using)), using)
        if value.get("context") is not None:
            return edge.Query.Context(edge.ContextQuery(self._pairs(value["context"], using)), using)
        if value.get("order_by") is not None:
            return parse_order_by(value["order_by"])
        if value.get("fusion") is not None:
            return self._fusion(value["fusion"])
        if value.get("rrf") is not None:
            rrf = value["rrf"] if isinstance(value["rrf"], dict) else {}
            return edge.Fusion.Rrf(k=rrf.get("k") or DEFAULT_RRF_K, weights=rrf.get("weights"))
        if value.get("sample") is not None:
            return edge.Sample.Random
        if value.get("recommend") is not None:
            return self._recommend(value["recommend"], using)
        raise bad_request(
            f"unsupported query {sorted(value)}: the embedded server answers nearest, order_by, fusion, rrf, sample, recommend"
        )

    def _mmr(self, nearest: Any, mmr: Any, using: str | None, limit: int) -> edge.Mmr:
        """Maximal marginal relevance: lambda is 1 - diversity (default 0.5); candidates default to the limit."""
        if not isinstance(mmr, dict):
            raise bad_json(f"mmr must be {{diversity, candidates_limit}}, got {mmr!r}")
        diversity = mmr.get("diversity")
        if diversity is not None and (not isinstance(diversity, (int, float)) or not 0 <= diversity <= 1):
            raise ApiError(422, f"Validation error in JSON body: [query.mmr.diversity: value {diversity} invalid, must be from 0 to 1]")
        candidates = mmr.get("candidates_limit")
        return edge.Mmr(
            self.vector_input(nearest, using),
            lambda_=0.5 if diversity is None else 1.0 - diversity,
            candidates_limit=limit if candidates is None else candidates,
            using=using,
        )

    def _pairs(self, value: Any, using: str | None) -> list[edge.ContextPair]:
        """`ContextInput`: one {positive, negative} pair or a list of them."""
        items = value if isinstance(value, list) else [] if value is None else [value]
        pairs = []
        for item in items:
            if not isinstance(item, dict) or item.get("positive") is None or item.get("negative") is None:
                raise bad_json(f"a context pair must be {{positive, negative}}, got {item!r}")
            positive, negative = self.vector_input(item["positive"], using), self.vector_input(item["negative"], using)
            pairs.append(edge.ContextPair(positive, negative))
        return pairs

    def _fusion(self, value: Any) -> Any:
        if value == "rrf":
            return edge.Fusion.Rrf(k=DEFAULT_RRF_K)
        if value == "dbsf":
            return edge.Fusion.Dbsf()
        raise bad_json(f"unknown variant `{value}` for fusion, expected `rrf` or `dbsf`")

    def _recommend(self, value: Any, using: str | None) -> Any:
        positives = [self.vector_input(item, using) for item in value.get("positive") or []]
        negatives = [self.vector_input(item, using) for item in value.get("negative") or []]
        strategy = value.get("strategy") or "average_vector"
        if strategy == "average_vector":
            return edge.Query.Nearest(_average_vector(positives, negatives), using)
        query = edge.RecommendQuery(positives, negatives)
        if strategy == "sum_scores":
            return edge.Query.RecommendSumScores(query, using)
        if strategy == "best_score":
            return edge.Query.RecommendBestScore(query, using)
        raise bad_json(f"unknown variant `{strategy}` for recommend.strategy, expected average_vector, best_score or sum_scores")

    def prefetches(self, value: Any) -> list[edge.Prefetch] | None:
        if value is None:
            return None
        items = value if isinstance(value, list) else [value]
        return [self._prefetch(item) for item in items]

    def _prefetch(self, value: Any) -> edge.Prefetch:
        if not isinstance(value, dict):
            raise bad_json(f"prefetch must be an object, got {value!r}")
        using = value.get("using")
        limit = parse_limit(value.get("limit"), 10)
        builder = self
        if value.get("lookup_from") is not None:
            builder = _QueryBuilder(self.collection, self.store, value["lookup_from"])
            builder.referenced_ids = self.referenced_ids
        return edge.Prefetch(
            limit=limit,
            query=builder.query(value.get("query"), using, limit),
            prefetches=self.prefetches(value.get("prefetch")),
            params=_search_params(value.get("params")),
            filter=parse_filter(value.get("filter")),
            score_threshold=value.get("score_threshold"),
        )

    def request(self, body: dict[str, Any]) -> edge.QueryRequest:
        _check_query_shape(body)
        using = body.get("using")
        limit = parse_limit(body.get("limit"), 10)
        query = self.query(body.get("query"), using, limit)
        prefetches = self.prefetches(body.get("prefetch"))
        query_filter = parse_filter(body.get("filter"))
        if self.referenced_ids:
            query_filter = edge.Filter(
                must=[query_filter] if query_filter is not None else None,
                must_not=[edge.HasIdCondition(set(self.referenced_ids))],
            )
        return edge.QueryRequest(
            limit=limit,
            offset=body.get("offset"),
            query=query,
            prefetches=prefetches,
            with_vector=parse_with_vector(with_vector_field(body), False),
            with_payload=parse_with_payload(body.get("with_payload"), False),
            filter=query_filter,
            score_threshold=body.get("score_threshold"),
            params=_search_params(body.get("params")),
        )


def _check_query_shape(body: dict[str, Any]) -> None:
    """The request shapes Qdrant refuses before running anything (400, in Qdrant's words)."""
    query = body.get("query")
    if query is None and body.get("prefetch") is not None:
        raise ApiError(
            400, "Bad request: A query is needed to merge the prefetches. Can't have prefetches without defining a query."
        )
    if body.get("score_threshold") is not None:
        if query is None:
            raise ApiError(
                400,
                "Bad request: A query is needed to use the score_threshold. "
                "Can't have score_threshold without defining a query.",
            )
        if isinstance(query, dict) and query.get("order_by") is not None:
            raise ApiError(400, "Bad request: Can't use score_threshold with an order_by query.")
    limit = body.get("limit")
    if isinstance(limit, int) and not isinstance(limit, bool) and limit < 1:
        raise ApiError(422, f"Validation error in JSON body: [internal.limit: value {limit} invalid, must be 1 or larger]")


def _lookup_from(store: Any, value: Any) -> tuple[Any, str | None]:
    """`LookupLocation` {collection, vector}: the collection (404 when missing) and vector name."""
    if not isinstance(value, dict) or not isinstance(value.get("collection"), str):
        raise bad_json(f"lookup_from must be {{collection, vector}}, got {value!r}")
    vector = value.get("vector")
    if vector is not None and not isinstance(vector, str):
        raise bad_json(f"lookup_from.vector must be a vector name, got {vector!r}")
    return store.resolve(value["collection"]), vector


def _run_query(collection: Any, body: Any, store: Any = None) -> dict[str, Any]:
    if body is None:
        body = {}
    if not isinstance(body, dict):
        raise bad_json("query body must be a JSON object")
    builder = _QueryBuilder(collection, store, body.get("lookup_from"))
    points = scored_to_json(collection.read("query", builder.request(body)))
    if not with_vector_field(body):  # the engine hands back vectors it scored with (MMR) even when not asked
        for point in points:
            point["vector"] = None
    return {"points": points}


def query(request: Request) -> Any:
    collection = request.store.resolve(request.path_parameters["collection"])
    return _run_query(collection, request.body, request.store)


def query_batch(request: Request) -> Any:
    collection = request.store.resolve(request.path_parameters["collection"])
    body = request.body if isinstance(request.body, dict) else {}
    searches = body.get("searches")
    if not isinstance(searches, list):
        raise bad_json("missing field `searches`: expected a list of query requests")
    return [_run_query(collection, search, request.store) for search in searches]


def search(request: Request) -> Any:
    """Legacy `SearchRequest`: `vector` is a list or `{"name", "vector"}`; the result is a bare list."""
    collection = request.store.resolve(request.path_parameters["collection"])
    body = request.body if isinstance(request.body, dict) else {}
    vector = body.get("vector")
    using = None
    if isinstance(vector, dict) and "name" in vector:
        using, vector = vector["name"], vector.get("vector")
    if vector is None:
        raise bad_json("missing field `vector`")
    translated = {
        "query": {"nearest": vector},
        "using": using,
        "filter": body.get("filter"),
        "limit": body.get("limit") if body.get("limit") is not None else body.get("top"),
        "offset": body.get("offset"),
        "with_payload": body.get("with_payload"),
        "with_vector": with_vector_field(body),
        "score_threshold": body.get("score_threshold"),
        "params": body.get("params"),
    }
    return _run_query(collection, translated)["points"]


ROUTES = [
    ("POST", "/points/query", query),
    ("POST", "/points/query/batch", query_batch),
    ("POST", "/points/search", search),
]


def _average_vector(positives: list[Any], negatives: list[Any]) -> list[float]:
    """Qdrant's `average_vector` recommendation: avg(positive) + (avg(positive) - avg(negative))."""
    if not positives:
        raise bad_request("recommend with strategy average_vector needs at least one positive example")
    if not all(_is_dense(vector) for vector in positives + negatives):
        raise bad_request("recommend strategy average_vector takes dense vectors only; use best_score or sum_scores")
    average = [sum(values) / len(positives) for values in zip(*positives)]
    if not negatives:
        return average
    negative = [sum(values) / len(negatives) for values in zip(*negatives)]
    return [2 * pos - neg for pos, neg in zip(average, negative)]


def _is_dense(vector: Any) -> bool:
    return isinstance(vector, list) and all(isinstance(item, (int, float)) for item in vector)
