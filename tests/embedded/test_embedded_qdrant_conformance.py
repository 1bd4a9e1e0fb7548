"""The embedded server behaves as Qdrant 1.19 documents and specifies it, checked against references
nobody on the project wrote: Qdrant's documented full-text semantics (a model of its word tokenizer,
lowercasing, stopwords, token lengths and phrase matching, run on generated documents and queries), the
OpenAPI spec's shapes and Qdrant's own error codes and messages (src/actix, lib/storage), the spec's merge
rule for collection metadata, and qdrant-client's local mode for discovery, context and MMR queries.
"""

from __future__ import annotations

import random
import re
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from qdrant_client import QdrantClient, models

FAST = settings(derandomize=True, max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
VOCABULARY = ["quick", "brown", "fox", "lazy", "dog", "the", "a", "over", "jumps", "very", "Über", "naïve"]
SEPARATORS = [" ", ", ", "-", ". ", " / "]


@pytest.fixture
def api(qdrant_url: str, qdrant_api_key: str | None) -> Iterator[Any]:
    """`api(method, path, json=...)` -> response, with the collections it created dropped afterwards."""
    session = requests.Session()
    if qdrant_api_key:
        session.headers["api-key"] = qdrant_api_key
    created: list[str] = []

    def call(method: str, path: str, **arguments: Any) -> requests.Response:
        if method == "PUT" and re.fullmatch(r"/collections/[^/]+", path):
            created.append(path)
        return session.request(method, f"{qdrant_url}{path}", timeout=30, **arguments)

    yield call
    for path in created:
        session.delete(f"{qdrant_url}{path}", timeout=30)


def _error(response: requests.Response) -> str:
    return response.json()["status"]["error"]


def _create(api: Any, name: str, **body: Any) -> None:
    response = api("PUT", f"/collections/{name}", json={"vectors": {"size": 4, "distance": "Dot"}, **body})
    assert response.status_code == 200, response.text


# ----- full-text indexes: the parameters decide the matches -----------------------------------------------


def _tokens(text: str, params: dict[str, Any]) -> list[str]:
    """Qdrant's word tokenizer as documented: split on every non-alphanumeric character, then lowercase
    (default on), drop tokens outside [min_token_len, max_token_len] characters, drop stopwords."""
    tokens = [token for token in re.split(r"[^\w]|_", text) if token]
    if params.get("lowercase", True):
        tokens = [token.lower() for token in tokens]
    low, high = params.get("min_token_len") or 0, params.get("max_token_len") or 10**9
    stopwords = set((params.get("stopwords") or {}).get("custom") or [])
    return [token for token in tokens if low <= len(token) <= high and token not in stopwords]


def _matches(document: str, query: str, kind: str, params: dict[str, Any]) -> bool:
    words, wanted = _tokens(document, params), _tokens(query, params)
    if kind == "text":
        return set(wanted) <= set(words)
    if kind == "text_any":
        return bool(set(wanted) & set(words))
    return any(words[start : start + len(wanted)] == wanted for start in range(len(words) - len(wanted) + 1))


def _sentence(generator: random.Random, length: int) -> str:
    words = []
    for _ in range(length):
        word = generator.choice(VOCABULARY)
        words.append(generator.choice([word, word.upper(), word.capitalize()]))
    return "".join(word + generator.choice(SEPARATORS) for word in words).strip(" ,./-")


TEXT_INDEXES = {
    "lowercased_with_stopwords_and_min_length": {
        "type": "text", "tokenizer": "word", "lowercase": True, "min_token_len": 2,
        "stopwords": {"custom": ["the", "over"]},
    },
    "case_sensitive_phrases": {"type": "text", "tokenizer": "word", "lowercase": False, "phrase_matching": True},
    "long_tokens_only": {"type": "text", "tokenizer": "word", "min_token_len": 4, "max_token_len": 5},
}


@pytest.mark.parametrize("index_name", sorted(TEXT_INDEXES))
def test_text_index_parameters_decide_which_points_match(api: Any, collection_name: str, index_name: str) -> None:
    params = TEXT_INDEXES[index_name]
    generator = random.Random(f"text-{index_name}")
    documents = [_sentence(generator, generator.randint(1, 9)) for _ in range(150)]
    _create(api, collection_name)
    response = api("PUT", f"/collections/{collection_name}/index?wait=true", json={"field_name": "body", "field_schema": params})
    assert response.status_code == 200, response.text
    points = [{"id": i, "vector": [1.0, 0.0, 0.0, 0.0], "payload": {"body": text}} for i, text in enumerate(documents)]
    assert api("PUT", f"/collections/{collection_name}/points?wait=true", json={"points": points}).status_code == 200
    kinds = ["text", "text_any"] + (["phrase"] if params.get("phrase_matching") else [])
    checked = 0
    while checked < 120:
        query = _sentence(generator, generator.randint(1, 3))
        if not _tokens(query, params):
            continue  # a query of stopwords only says nothing
        kind = kinds[checked % len(kinds)]
        expected = sorted(i for i, text in enumerate(documents) if _matches(text, query, kind, params))
        body = {"filter": {"must": [{"key": "body", "match": {kind: query}}]}, "limit": 1000, "with_payload": False}
        response = api("POST", f"/collections/{collection_name}/points/scroll", json=body)
        assert response.status_code == 200, response.text
        got = sorted(point["id"] for point in response.json()["result"]["points"])
        assert got == expected, f"{kind} {query!r} on a {params} index"
        checked += 1


# ----- payload_schema reports the index parameters as given --------------------------------------------

INDEX_FIELDS = {
    "keyword": {"is_tenant": st.booleans(), "on_disk": st.booleans(), "enable_hnsw": st.booleans(), "prefix": st.booleans()},
    "integer": {"lookup": st.just(True), "range": st.booleans(), "is_principal": st.booleans(), "on_disk": st.booleans()},
    "float": {"is_principal": st.booleans(), "on_disk": st.booleans(), "enable_hnsw": st.booleans()},
    "geo": {"on_disk": st.booleans(), "enable_hnsw": st.booleans()},
    "text": {
        "lowercase": st.booleans(), "min_token_len": st.integers(0, 5), "max_token_len": st.integers(6, 30),
        "phrase_matching": st.booleans(), "ascii_folding": st.booleans(),
        "stopwords": st.sampled_from(["english", "german", {"languages": ["english"], "custom": ["a", "an"]}]),
        "stemmer": st.sampled_from([{"type": "snowball", "language": "english"}, {"type": "none"}]),
    },
    "bool": {"on_disk": st.booleans(), "enable_hnsw": st.booleans()},
    "datetime": {"is_principal": st.booleans(), "on_disk": st.booleans()},
    "uuid": {"is_tenant": st.booleans(), "on_disk": st.booleans(), "enable_hnsw": st.booleans()},
}


@st.composite
def _index_schemas(draw: Any) -> dict[str, Any]:
    kind = draw(st.sampled_from(sorted(INDEX_FIELDS)))
    fields = INDEX_FIELDS[kind]
    chosen = draw(st.lists(st.sampled_from(sorted(fields)), unique=True))
    schema = {"type": kind, **{field: draw(fields[field]) for field in chosen}}
    if kind == "text":
        schema["tokenizer"] = draw(st.sampled_from(["word", "whitespace", "prefix", "multilingual"]))
    return schema


def test_payload_schema_reports_each_index_with_its_parameters(api: Any, collection_name: str) -> None:
    _create(api, collection_name)
    schemas: list[Any] = []

    @FAST
    @given(schema=_index_schemas())
    def create(schema: dict[str, Any]) -> None:
        field = f"f{len(schemas)}"
        response = api("PUT", f"/collections/{collection_name}/index?wait=true", json={"field_name": field, "field_schema": schema})
        assert response.status_code == 200, response.text
        schemas.append(schema)

    create()
    names = ["keyword", "integer", "text"]  # a bare type name is reported without `params`, as in Qdrant
    for kind in names:
        api("PUT", f"/collections/{collection_name}/index?wait=true", json={"field_name": f"plain_{kind}", "field_schema": kind})
    reported = api("GET", f"/collections/{collection_name}").json()["result"]["payload_schema"]
    for number, schema in enumerate(schemas):
        expected = dict(schema)
        if isinstance(expected.get("stopwords"), dict):
            expected["stopwords"] = {key: sorted(value) for key, value in expected["stopwords"].items()}
        assert reported[f"f{number}"] == {"data_type": schema["type"], "params": expected, "points": 0}
    for kind in names:
        assert reported[f"plain_{kind}"] == {"data_type": kind, "points": 0}


def test_integer_index_needs_lookup_or_range(api: Any, collection_name: str) -> None:
    _create(api, collection_name)
    body = {"field_name": "n", "field_schema": {"type": "integer", "lookup": False, "range": False}}
    response = api("PUT", f"/collections/{collection_name}/index", json=body)
    assert response.status_code == 422
    assert "the 'lookup' and 'range' capabilities can't be both disabled" in _error(response)


# ----- reads: with_vectors, POST /points ---------------------------------------------------------------


def test_with_vectors_is_an_alias_of_with_vector_on_every_read(api: Any, collection_name: str) -> None:
    _create(api, collection_name)
    vectors = np.random.default_rng(7).random((20, 4), dtype=np.float32)
    points = [{"id": i, "vector": vectors[i].tolist()} for i in range(20)]
    assert api("PUT", f"/collections/{collection_name}/points?wait=true", json={"points": points}).status_code == 200
    for spelling in ("with_vector", "with_vectors"):
        scrolled = api("POST", f"/collections/{collection_name}/points/scroll", json={spelling: True, "limit": 100})
        retrieved = api("POST", f"/collections/{collection_name}/points", json={"ids": list(range(20)), spelling: True})
        queried = api("POST", f"/collections/{collection_name}/points/query", json={"query": [1, 0, 0, 0], "limit": 20, spelling: True})
        for response in (scrolled, retrieved, queried):
            result = response.json()["result"]
            records = result["points"] if isinstance(result, dict) else result
            assert len(records) == 20
            for record in records:
                assert np.array_equal(np.float32(record["vector"]), vectors[record["id"]]), spelling


def test_post_points_retrieves_by_ids_and_never_writes(api: Any, collection_name: str) -> None:
    _create(api, collection_name)
    points = [{"id": i, "vector": [float(i), 0, 0, 0], "payload": {"n": i}} for i in range(5)]
    assert api("PUT", f"/collections/{collection_name}/points?wait=true", json={"points": points}).status_code == 200
    response = api("POST", f"/collections/{collection_name}/points", json={"ids": [3, 1, 99]})
    assert response.status_code == 200
    assert sorted(record["id"] for record in response.json()["result"]) == [1, 3]
    upsert_shaped = {"points": [{"id": 10, "vector": [1, 1, 1, 1]}]}
    refused = api("POST", f"/collections/{collection_name}/points", json=upsert_shaped)
    assert refused.status_code == 400 and "ids" in _error(refused)
    assert api("POST", f"/collections/{collection_name}/points/count", json={}).json()["result"]["count"] == 5


# ----- user mistakes answer Qdrant's 4xx -----------------------------------------------------------------

MISTAKES = [
    # (what, method, path under the collection, body, status, words of Qdrant's message)
    ("order_by with offset", "POST", "/points/scroll", {"order_by": "n", "offset": 3}, 400, "Cannot use an `offset` when using `order_by`"),
    ("prefetch without query", "POST", "/points/query", {"prefetch": [{"query": [1, 0, 0, 0]}]}, 400,
     "Bad request: A query is needed to merge the prefetches. Can't have prefetches without defining a query."),
    ("score_threshold without query", "POST", "/points/query", {"score_threshold": 1}, 400,
     "Bad request: A query is needed to use the score_threshold. Can't have score_threshold without defining a query."),
    ("score_threshold with order_by", "POST", "/points/query", {"score_threshold": 1, "query": {"order_by": "n"}}, 400,
     "Bad request: Can't use score_threshold with an order_by query."),
    ("query limit 0", "POST", "/points/query", {"query": [1, 0, 0, 0], "limit": 0}, 422, "internal.limit: value 0 invalid"),
    ("hnsw_ef 0", "POST", "/points/query", {"query": [1, 0, 0, 0], "params": {"hnsw_ef": 0}}, 422, "hnsw_ef"),
    ("lookup_from a missing collection", "POST", "/points/query",
     {"query": [1, 0, 0, 0], "lookup_from": {"collection": "no_such_collection_here"}}, 404, "no_such_collection_here"),
    ("strict mode, which is not enforced", "PATCH", "", {"strict_mode_config": {"enabled": True}}, 400, "strict mode"),
]


@pytest.mark.parametrize(("what", "method", "path", "body", "status", "words"), MISTAKES, ids=[m[0] for m in MISTAKES])
def test_user_mistakes_answer_qdrants_status_and_words(
    api: Any, collection_name: str, what: str, method: str, path: str, body: Any, status: int, words: str
) -> None:
    _create(api, collection_name)
    response = api(method, f"/collections/{collection_name}{path}", json=body)
    assert response.status_code == status, response.text
    assert words in _error(response)


@pytest.mark.parametrize("field", ["shard_number", "replication_factor", "write_consistency_factor"])
def test_replica_counts_below_one_are_refused(api: Any, collection_name: str, field: str) -> None:
    zero = api("PUT", f"/collections/{collection_name}", json={"vectors": {"size": 4, "distance": "Dot"}, field: 0})
    assert zero.status_code == 422 and field in _error(zero)
    negative = api("PUT", f"/collections/{collection_name}", json={"vectors": {"size": 4, "distance": "Dot"}, field: -1})
    assert negative.status_code == 400
    assert api("GET", f"/collections/{collection_name}/exists").json()["result"]["exists"] is False


@pytest.mark.parametrize(
    ("setting", "words"),
    [({"sharding_method": "custom"}, "custom sharding"), ({"strict_mode_config": {"enabled": True}}, "strict mode")],
)
def test_settings_the_server_cannot_honour_are_refused_not_ignored(
    api: Any, collection_name: str, setting: dict[str, Any], words: str
) -> None:
    response = api("PUT", f"/collections/{collection_name}", json={"vectors": {"size": 4, "distance": "Dot"}, **setting})
    assert response.status_code == 400 and words in _error(response)
    assert api("GET", f"/collections/{collection_name}/exists").json()["result"]["exists"] is False


def test_names_shared_by_dense_and_sparse_vectors_are_refused(api: Any, collection_name: str) -> None:
    body = {"vectors": {"text": {"size": 4, "distance": "Dot"}}, "sparse_vectors": {"text": {}}}
    response = api("PUT", f"/collections/{collection_name}", json=body)
    assert response.status_code == 400
    assert _error(response) == "Wrong input: Dense and sparse vector names must be unique - duplicate found with 'text'"


def test_alias_and_collection_names_clash_as_in_qdrant(api: Any, collection_name: str) -> None:
    _create(api, collection_name)
    alias = f"{collection_name}_alias"
    actions = {"actions": [{"create_alias": {"alias_name": alias, "collection_name": collection_name}}]}
    assert api("POST", "/collections/aliases", json=actions).status_code == 200
    try:
        over_alias = api("PUT", f"/collections/{alias}", json={"vectors": {"size": 4, "distance": "Dot"}})
        assert over_alias.status_code == 400 and "Alias with the same name already exists" in _error(over_alias)
        twice = api("PUT", f"/collections/{collection_name}", json={"vectors": {"size": 4, "distance": "Dot"}})
        assert twice.status_code == 409
        over_collection = {"actions": [{"create_alias": {"alias_name": collection_name, "collection_name": collection_name}}]}
        assert api("POST", "/collections/aliases", json=over_collection).status_code == 409
    finally:
        api("POST", "/collections/aliases", json={"actions": [{"delete_alias": {"alias_name": alias}}]})


def test_timeout_parameter_below_one_is_refused(api: Any, collection_name: str) -> None:
    response = api("PUT", f"/collections/{collection_name}?timeout=0", json={"vectors": {"size": 4, "distance": "Dot"}})
    assert response.status_code == 422 and "timeout: value 0 invalid" in _error(response)


# ----- service endpoints -----------------------------------------------------------------------------------


@pytest.mark.parametrize(("method", "suffix"), [("GET", "/points/1"), ("POST", "/points/count"), ("GET", ""), ("DELETE", "")])
def test_collection_names_over_255_characters_fail_validation_on_every_path(api: Any, method: str, suffix: str) -> None:
    # Qdrant validates the path's collection name (1 to 255 characters) before it looks the collection up.
    response = api(method, f"/collections/{'n' * 256}{suffix}", json={} if method == "POST" else None)
    assert response.status_code == 422, response.text
    assert _error(response).startswith("Validation error in path parameters: [name:")
    assert api("GET", f"/collections/{'n' * 255}").status_code == 404


def test_root_reports_title_version_and_commit_and_readyz_says_ready(api: Any) -> None:
    root = api("GET", "/").json()
    assert set(root) == {"title", "version", "commit"}
    assert root["title"] == "qdrant - vector search engine" and re.fullmatch(r"[0-9a-f]{40}", root["commit"])
    ready = api("GET", "/readyz")
    assert ready.status_code == 200 and ready.text == "all shards are ready"


# ----- collection config is kept, echoed and updated -----------------------------------------------------


def test_collection_config_is_echoed_as_created(api: Any, collection_name: str) -> None:
    body = {
        "vectors": {
            "image": {"size": 4, "distance": "Dot", "hnsw_config": {"m": 20}, "on_disk": True},
            "audio": {"size": 4, "distance": "Dot", "quantization_config": {"scalar": {"type": "int8", "quantile": 0.6}}},
        },
        "hnsw_config": {"m": 10, "ef_construct": 80},
        "quantization": {"product": {"compression": "x16", "always_ram": True}},  # Qdrant's alias
        "shard_number": 2,
        "metadata": {"owner": "search", "version": 3},
    }
    assert api("PUT", f"/collections/{collection_name}", json=body).status_code == 200
    config = api("GET", f"/collections/{collection_name}").json()["result"]["config"]
    vectors = config["params"]["vectors"]
    assert vectors["image"] == {"size": 4, "distance": "Dot", "hnsw_config": {"m": 20}, "on_disk": True}
    assert vectors["audio"]["quantization_config"] == {"scalar": {"type": "int8", "quantile": 0.6}}
    assert (config["hnsw_config"]["m"], config["hnsw_config"]["ef_construct"]) == (10, 80)
    assert config["quantization_config"] == {"product": {"compression": "x16", "always_ram": True}}
    assert config["params"]["shard_number"] == 2
    assert config["metadata"] == {"owner": "search", "version": 3}


def test_new_collection_reports_no_quantization_and_no_warnings(api: Any, collection_name: str) -> None:
    _create(api, collection_name)
    info = api("GET", f"/collections/{collection_name}").json()["result"]
    assert info["config"]["quantization_config"] is None and "warnings" not in info


def test_inline_hnsw_storage_without_quantization_is_warned_about(api: Any, collection_name: str) -> None:
    body = {"vectors": {"v": {"size": 4, "distance": "Dot", "hnsw_config": {"inline_storage": True}}}}
    assert api("PUT", f"/collections/{collection_name}", json=body).status_code == 200
    warnings = api("GET", f"/collections/{collection_name}").json()["result"]["warnings"]
    assert warnings == [{"message": "The `hnsw_config.inline_storage` option for vector 'v' requires quantization to be enabled. This option will be ignored."}]


_METADATA_VALUES = st.one_of(st.none(), st.integers(-5, 5), st.text(max_size=3), st.lists(st.booleans(), max_size=2))


def test_metadata_patches_merge_and_null_removes_a_key(api: Any, collection_name: str) -> None:
    _create(api, collection_name)
    model: dict[str, Any] = {}

    @FAST
    @given(patch=st.dictionaries(st.sampled_from(["a", "b", "c", "d"]), _METADATA_VALUES, min_size=1, max_size=3))
    def apply(patch: dict[str, Any]) -> None:
        assert api("PATCH", f"/collections/{collection_name}", json={"metadata": patch}).status_code == 200
        for key, value in patch.items():  # the spec: merge; a key set to null is removed
            if value is None:
                model.pop(key, None)
            else:
                model[key] = value
        assert (api("GET", f"/collections/{collection_name}").json()["result"]["config"].get("metadata") or {}) == model

    apply()


def test_patch_updates_index_settings_and_keeps_the_points(api: Any, collection_name: str) -> None:
    _create(api, collection_name)
    points = [{"id": i, "vector": [float(i), 1, 0, 0]} for i in range(30)]
    assert api("PUT", f"/collections/{collection_name}/points?wait=true", json={"points": points}).status_code == 200
    patch = {
        "vectors": {"": {"hnsw_config": {"m": 32}, "quantization_config": {"scalar": {"type": "int8"}}, "on_disk": True}},
        "hnsw_config": {"ef_construct": 123},
        "quantization_config": {"binary": {"always_ram": True}},
        "params": {"on_disk_payload": False, "replication_factor": 2},
        "optimizers_config": {"indexing_threshold": 20000},
    }
    assert api("PATCH", f"/collections/{collection_name}", json=patch).status_code == 200
    config = api("GET", f"/collections/{collection_name}").json()["result"]["config"]
    assert config["params"]["vectors"]["hnsw_config"] == {"m": 32}
    assert config["params"]["vectors"]["quantization_config"] == {"scalar": {"type": "int8"}}
    assert config["params"]["vectors"]["on_disk"] is True and config["params"]["on_disk_payload"] is False
    assert config["params"]["replication_factor"] == 2 and config["hnsw_config"]["ef_construct"] == 123
    assert config["quantization_config"] == {"binary": {"always_ram": True}}
    assert config["optimizer_config"]["indexing_threshold"] == 20000
    assert api("POST", f"/collections/{collection_name}/points/count", json={}).json()["result"]["count"] == 30
    disabled = api("PATCH", f"/collections/{collection_name}", json={"quantization_config": "Disabled"})
    assert disabled.status_code == 200
    assert api("GET", f"/collections/{collection_name}").json()["result"]["config"]["quantization_config"] is None
    unknown = api("PATCH", f"/collections/{collection_name}", json={"vectors": {"nope": {"on_disk": True}}})
    assert unknown.status_code == 400 and "nope" in _error(unknown)


# ----- discovery, context and MMR queries: the same results as qdrant-client's local mode -----------------


@pytest.fixture
def twin(qdrant_url: str, qdrant_api_key: str | None, collection_name: str) -> Iterator[tuple[QdrantClient, QdrantClient, str]]:
    """The same 60 points in the embedded server and in qdrant-client's local mode."""
    rng = np.random.default_rng(11)
    vectors = rng.normal(size=(60, 8)).astype(np.float32)
    remote = QdrantClient(url=qdrant_url, api_key=qdrant_api_key, prefer_grpc=False, timeout=30)
    local = QdrantClient(":memory:")
    for client in (remote, local):
        client.create_collection(collection_name, vectors_config=models.VectorParams(size=8, distance=models.Distance.EUCLID))
        client.upsert(collection_name, [models.PointStruct(id=i, vector=vectors[i].tolist()) for i in range(60)], wait=True)
    yield remote, local, collection_name
    remote.delete_collection(collection_name)
    local.close()


QUERIES = {
    "discover": models.DiscoverQuery(discover=models.DiscoverInput(target=2, context=[models.ContextPair(positive=3, negative=4)])),
    "context": models.ContextQuery(context=[models.ContextPair(positive=5, negative=6), models.ContextPair(positive=7, negative=8)]),
    "mmr": models.NearestQuery(nearest=[0.1, -0.2, 0.3, 0.0, 0.5, -0.1, 0.2, 0.05], mmr=models.Mmr(diversity=0.6, candidates_limit=40)),
}


@pytest.mark.parametrize("kind", sorted(QUERIES))
def test_discovery_context_and_mmr_match_qdrant_client_local_mode(twin: tuple[QdrantClient, QdrantClient, str], kind: str) -> None:
    remote, local, name = twin
    limit = 60 if kind == "context" else 10  # context scores tie widely; compare the whole ranking's scores
    got, expected = (client.query_points(name, query=QUERIES[kind], limit=limit).points for client in (remote, local))
    if kind == "context":
        assert sorted(round(point.score, 3) for point in got) == sorted(round(point.score, 3) for point in expected)
    else:
        assert [point.id for point in got] == [point.id for point in expected]
    assert all(point.vector is None for point in got)


def test_query_by_id_from_another_collection_with_lookup_from(api: Any, collection_name: str) -> None:
    source = f"{collection_name}_source"
    _create(api, collection_name)
    _create(api, source)
    own = [{"id": i, "vector": [float(i % 4 == j) for j in range(4)]} for i in range(8)]
    assert api("PUT", f"/collections/{collection_name}/points?wait=true", json={"points": own}).status_code == 200
    assert api("PUT", f"/collections/{source}/points?wait=true", json={"points": [{"id": 1, "vector": [0, 0, 1, 0]}]}).status_code == 200
    body = {"query": 1, "limit": 8, "lookup_from": {"collection": source}}
    points = api("POST", f"/collections/{collection_name}/points/query", json=body).json()["result"]["points"]
    assert {point["id"] for point in points[:2]} == {2, 6}  # nearest to the source's point 1 (a tie), own point 1 kept
    assert 1 in {point["id"] for point in points}

