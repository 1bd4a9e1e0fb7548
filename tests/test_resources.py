"""QdrantResource: where Qdrant is, the configs it hands to Spark, the search helper; the option configs."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import pytest
from dagster import Definitions, EnvVar, asset, materialize

from dagster_qdrant.options import ReadOptions, WriteOptions, build_qdrant_config, build_qdrant_write_config
from dagster_qdrant.resources import QdrantReadConfig, QdrantResource, QdrantWriteConfig


def test_endpoint_comes_from_the_field_then_from_qdrant_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("QDRANT_URL", "http://qdrant.example:6333/")
    assert QdrantResource().resolved_endpoint() == "http://qdrant.example:6333"
    assert QdrantResource(endpoint="http://other:6333").resolved_endpoint() == "http://other:6333"


def test_without_endpoint_an_embedded_qdrant_starts_on_demand(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("QDRANT_URL", raising=False)
    resource = QdrantResource(embedded_path=str(tmp_path / "qdrant"))
    try:
        url = resource.resolved_endpoint()
        assert url.startswith("http://127.0.0.1:")
        assert resource.http().server_version() >= (1, 19, 0)
        # A second resource for the same directory joins the running server instead of starting one.
        assert QdrantResource(embedded_path=str(tmp_path / "qdrant")).resolved_endpoint() == url
    finally:
        server_file = tmp_path / "qdrant" / ".server.json"
        if server_file.exists():
            pid = json.loads(server_file.read_text())["pid"]
            os.kill(pid, signal.SIGTERM)
            _wait_for_exit(pid)


def _wait_for_exit(pid: int, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.1)


def test_configs_carry_connection_settings_and_options() -> None:
    resource = QdrantResource(
        endpoint="http://qdrant.example:6333", api_key="secret-key", headers={"x-team": "search"}, timeout=7.0
    )
    read = resource.read_config("documents", with_vectors=True, limit=10)
    assert read == build_qdrant_config(
        "http://qdrant.example:6333",
        "documents",
        api_key="secret-key",
        headers={"x-team": "search"},
        timeout=7.0,
        max_retries=resource.max_retries,
        backoff_factor=resource.backoff_factor,
        with_vectors=True,
        limit=10,
    )
    write = resource.write_config("documents", vector_field="embedding", batch_size=64)
    assert write["vector_field"] == "embedding" and write["batch_size"] == 64
    assert write["api_key"] == "secret-key"
    options = WriteOptions.from_spark_options(resource.spark_write_options("documents", batch_size=64))
    assert options.collection == "documents" and options.batch_size == 64


def test_api_key_never_shows_in_repr_of_configs_or_options() -> None:
    resource = QdrantResource(endpoint="http://qdrant.example:6333", api_key="secret-key")
    shown = [
        repr(resource.read_config("documents")),
        repr(resource.write_config("documents")),
        repr(resource.connection_options()),
        repr(resource.http()),
    ]
    assert not any("secret-key" in text for text in shown)


def test_api_key_from_envvar_reaches_the_resource(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("QDRANT_API_KEY", "from-env")
    seen: list[str | None] = []

    @asset
    def uses_qdrant(qdrant: QdrantResource) -> None:
        seen.append(qdrant.resolved_api_key())

    resource = QdrantResource(endpoint="http://qdrant.example:6333", api_key=EnvVar("QDRANT_API_KEY"))
    assert materialize([uses_qdrant], resources={"qdrant": resource}).success
    assert seen == ["from-env"]


def test_option_configs_map_one_to_one_onto_reader_and_writer_options() -> None:
    write_fields = set(QdrantWriteConfig.model_fields)
    assert write_fields <= set(WriteOptions.option_names())
    read_options = QdrantReadConfig().to_options()
    assert set(read_options) <= set(ReadOptions.option_names())
    # Defaults are the options' own, and both configs are accepted as they are.
    assert build_qdrant_write_config("http://h:6333", "c", **QdrantWriteConfig().to_options())
    assert build_qdrant_config("http://h:6333", "c", **read_options)
    for config in (QdrantWriteConfig, QdrantReadConfig, QdrantResource):
        undocumented = [name for name, field in config.model_fields.items() if not field.description]
        assert undocumented == [], f"{config.__name__} fields without a description: {undocumented}"


def test_search_returns_the_nearest_points_best_first(qdrant_url: str, collection_name: str) -> None:
    resource = QdrantResource(endpoint=qdrant_url)
    http = resource.http()
    http.create_collection(collection_name, {"vectors": {"size": 2, "distance": "Cosine"}})
    http.upsert(
        collection_name,
        {
            "points": [
                {"id": 1, "vector": [1.0, 0.0], "payload": {"name": "east"}},
                {"id": 2, "vector": [0.0, 1.0], "payload": {"name": "north"}},
                {"id": 3, "vector": [0.7, 0.7], "payload": {"name": "north-east"}},
            ]
        },
    )
    hits = resource.search(collection_name, [1.0, 0.1], limit=2)
    assert [hit["id"] for hit in hits] == [1, 3]
    assert hits[0]["payload"] == {"name": "east"}
    assert hits[0]["score"] >= hits[1]["score"]
    filtered = resource.search(
        collection_name, [1.0, 0.1], limit=5, filter={"must": [{"key": "name", "match": {"value": "north"}}]}
    )
    assert [hit["id"] for hit in filtered] == [2]


def test_resource_works_inside_definitions(qdrant_url: str) -> None:
    versions: list[tuple[int, int, int]] = []

    @asset
    def server_version(qdrant: QdrantResource) -> None:
        versions.append(qdrant.http().server_version())

    defs = Definitions(assets=[server_version], resources={"qdrant": QdrantResource(endpoint=qdrant_url)})
    assert defs.resolve_implicit_global_asset_job_def().execute_in_process().success
    assert versions and versions[0] >= (1, 19, 0)
