"""Responses of the embedded server validate against Qdrant's official OpenAPI spec (v1.19).

The spec lives outside the repository (../shared/qdrant/openapi-v1.19.json from the repo root, or one level
further up for a checkout nested one directory deeper); the test skips, saying so, where that file is absent. The validator below covers the JSON Schema subset the
spec uses (OpenAPI 3.0: $ref, anyOf/oneOf/allOf, nullable, type, enum, required, properties, items).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import requests

_ROOT = Path(__file__).resolve().parents[2]
SPEC_PATH = next(
    (path for path in (_ROOT.parent / "shared" / "qdrant" / "openapi-v1.19.json",
                       _ROOT.parent.parent / "shared" / "qdrant" / "openapi-v1.19.json") if path.exists()),
    _ROOT.parent / "shared" / "qdrant" / "openapi-v1.19.json",
)
_TYPES = {
    "object": lambda value: isinstance(value, dict),
    "array": lambda value: isinstance(value, list),
    "string": lambda value: isinstance(value, str),
    "boolean": lambda value: isinstance(value, bool),
    "integer": lambda value: isinstance(value, int) and not isinstance(value, bool),
    "number": lambda value: isinstance(value, (int, float)) and not isinstance(value, bool),
}


@pytest.fixture(scope="module")
def spec() -> dict[str, Any]:
    if not SPEC_PATH.exists():
        pytest.skip(f"Qdrant's OpenAPI spec is not at {SPEC_PATH}; responses are still checked by qdrant-client's models")
    return json.loads(SPEC_PATH.read_text())


def _errors(spec: dict[str, Any], value: Any, schema: dict[str, Any], where: str) -> list[str]:
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        return _errors(spec, value, spec["components"]["schemas"][name], where)
    if value is None and (schema.get("nullable") or not schema):
        return []
    for key in ("anyOf", "oneOf"):
        if key in schema:
            branches = [_errors(spec, value, branch, where) for branch in schema[key]]
            if any(not branch for branch in branches):
                return []
            return [f"{where}: matches none of {key}: {min(branches, key=len)}"]
    problems: list[str] = []
    for branch in schema.get("allOf", []):
        problems += _errors(spec, value, branch, where)
    expected = schema.get("type")
    if expected and not _TYPES[expected](value):
        return [f"{where}: expected {expected}, got {value!r:.80}"]
    if "enum" in schema and value not in schema["enum"]:
        problems.append(f"{where}: {value!r} not in {schema['enum']}")
    if isinstance(value, dict):
        for key in schema.get("required", []):
            if key not in value:
                problems.append(f"{where}: missing required `{key}`")
        properties = schema.get("properties", {})
        extra = schema.get("additionalProperties")
        for key, item in value.items():
            if key in properties:
                problems += _errors(spec, item, properties[key], f"{where}.{key}")
            elif extra is False:
                problems.append(f"{where}: unexpected `{key}`")
            elif isinstance(extra, dict):
                problems += _errors(spec, item, extra, f"{where}.{key}")
    if isinstance(value, list) and "items" in schema:
        for index, item in enumerate(value):
            problems += _errors(spec, item, schema["items"], f"{where}[{index}]")
    return problems


def _check(spec: dict[str, Any], response: requests.Response, path: str, method: str) -> dict[str, Any]:
    assert response.status_code == 200, response.text
    schema = spec["paths"][path][method]["responses"]["200"]["content"]["application/json"]["schema"]
    body = response.json()
    assert _errors(spec, body, schema, "response") == []
    return body


def test_responses_match_the_spec(spec: dict[str, Any], qdrant_url: str, collection_name: str) -> None:
    base = f"{qdrant_url}/collections/{collection_name}"
    collection_path = "/collections/{collection_name}"
    _check(spec, requests.get(f"{qdrant_url}/"), "/", "get")
    create = {
        "vectors": {"dense": {"size": 3, "distance": "Cosine"}},
        "sparse_vectors": {"words": {"modifier": "idf"}},
    }
    _check(spec, requests.put(base, json=create), collection_path, "put")
    points = [
        {"id": 1, "vector": {"dense": [1, 0, 0], "words": {"indices": [1], "values": [0.5]}}, "payload": {"a": 1}},
        {"id": "b7e1d9a4-2a33-4c55-9a0f-6f1d2b3c4d5e", "vector": {"dense": [0, 1, 0]}, "payload": {"a": 2}},
    ]
    _check(spec, requests.put(f"{base}/points?wait=true", json={"points": points}), f"{collection_path}/points", "put")
    _check(spec, requests.put(f"{base}/index?wait=true", json={"field_name": "a", "field_schema": "integer"}), f"{collection_path}/index", "put")
    _check(spec, requests.get(base), collection_path, "get")
    _check(spec, requests.get(f"{qdrant_url}/collections"), "/collections", "get")
    _check(spec, requests.get(f"{base}/exists"), f"{collection_path}/exists", "get")
    scroll = _check(
        spec,
        requests.post(f"{base}/points/scroll", json={"limit": 1, "with_vector": True}),
        f"{collection_path}/points/scroll",
        "post",
    )
    assert scroll["result"]["next_page_offset"] == "b7e1d9a4-2a33-4c55-9a0f-6f1d2b3c4d5e"
    _check(spec, requests.post(f"{base}/points/count", json={"filter": {"must": [{"slice": {"total": 2, "index": 0}}]}}), f"{collection_path}/points/count", "post")
    _check(spec, requests.post(f"{base}/points", json={"ids": [1], "with_vector": ["words"]}), f"{collection_path}/points", "post")
    _check(spec, requests.get(f"{base}/points/1"), f"{collection_path}/points/{{id}}", "get")
    query = {"query": [1, 0, 0], "using": "dense", "with_payload": True, "with_vector": True}
    _check(spec, requests.post(f"{base}/points/query", json=query), f"{collection_path}/points/query", "post")
    _check(spec, requests.post(f"{base}/points/query/batch", json={"searches": [query]}), f"{collection_path}/points/query/batch", "post")
    alias = {"actions": [{"create_alias": {"collection_name": collection_name, "alias_name": f"{collection_name}_a"}}]}
    _check(spec, requests.post(f"{qdrant_url}/collections/aliases", json=alias), "/collections/aliases", "post")
    _check(spec, requests.get(f"{qdrant_url}/aliases"), "/aliases", "get")
    _check(spec, requests.get(f"{base}/aliases"), f"{collection_path}/aliases", "get")
    _check(spec, requests.post(f"{base}/points/payload?wait=true", json={"payload": {"b": 1}, "points": [1]}), f"{collection_path}/points/payload", "post")
    _check(spec, requests.post(f"{base}/points/delete?wait=true", json={"points": [1]}), f"{collection_path}/points/delete", "post")
    _check(spec, requests.delete(base), collection_path, "delete")


def test_configured_collection_matches_the_spec(spec: dict[str, Any], qdrant_url: str, collection_name: str) -> None:
    """Index parameters, quantization, per-vector settings, metadata and warnings in the spec's shapes."""
    base = f"{qdrant_url}/collections/{collection_name}"
    collection_path = "/collections/{collection_name}"
    create = {
        "vectors": {
            "v": {"size": 4, "distance": "Dot", "hnsw_config": {"m": 8, "inline_storage": True}, "on_disk": True},
            "w": {"size": 4, "distance": "Cosine", "quantization_config": {"scalar": {"type": "int8", "quantile": 0.9}}},
        },
        "quantization_config": {"binary": {"always_ram": True, "encoding": "two_bits"}},
        "metadata": {"team": "search"},
    }
    _check(spec, requests.put(base, json=create), collection_path, "put")
    schemas = [
        {"type": "text", "tokenizer": "word", "lowercase": False, "phrase_matching": True,
         "stopwords": {"languages": ["english"], "custom": ["x"]}, "stemmer": {"type": "snowball", "language": "english"}},
        {"type": "integer", "lookup": False, "range": True},
        {"type": "keyword", "is_tenant": True, "prefix": True},
        "datetime",
    ]
    for number, schema in enumerate(schemas):
        body = {"field_name": f"f{number}", "field_schema": schema}
        _check(spec, requests.put(f"{base}/index?wait=true", json=body), f"{collection_path}/index", "put")
    patch = {"metadata": {"owner": "me"}, "hnsw_config": {"ef_construct": 64}, "vectors": {"w": {"on_disk": True}}}
    _check(spec, requests.patch(base, json=patch), collection_path, "patch")
    info = _check(spec, requests.get(base), collection_path, "get")["result"]
    assert info["payload_schema"]["f0"]["params"]["stemmer"] == {"type": "snowball", "language": "english"}
    assert "params" not in info["payload_schema"]["f3"]
    assert "warnings" not in info  # inline storage on `v` is covered by the collection's quantization
    _check(spec, requests.delete(base), collection_path, "delete")


def test_error_body_matches_the_spec(spec: dict[str, Any], qdrant_url: str) -> None:
    response = requests.get(f"{qdrant_url}/collections/no_such_collection")
    assert response.status_code == 404
    schema = {"$ref": "#/components/schemas/ErrorResponse"}
    assert _errors(spec, response.json(), schema, "error") == []
    assert "no_such_collection" in response.json()["status"]["error"]
