"""QdrantResource: where Qdrant is, the configs it hands to Spark, the search helper; the option configs."""

from __future__ import annotations

import dataclasses
import json
import os
import signal
from pathlib import Path
from typing import Any

import pydantic
import pytest
from dagster import Definitions, EnvVar, asset, materialize

import dagster_qdrant
from dagster_qdrant.options import (
    ConnectionOptions,
    ReadOptions,
    WriteOptions,
    build_qdrant_config,
    build_qdrant_write_config,
)
from dagster_qdrant.dagster_io.resources import QdrantReadConfig, QdrantResource, QdrantWriteConfig
from waiting import wait_until


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
    def gone() -> bool:
        try:
            if os.waitpid(pid, os.WNOHANG)[0]:  # started by this process: reap it, or it stays a zombie
                return True
        except ChildProcessError:
            pass  # started by another process, which reaps it
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        return False

    wait_until(gone, timeout, f"the embedded server (pid {pid}) to exit")


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


CONNECTION_OPTIONS = set(ConnectionOptions.option_names())
"""On QdrantResource, shared by reads and writes."""
OPTIONS_NOT_IN_CONFIG = {"collection"}
"""The IO manager names the collection after the asset."""
WRITE_OPTIONS_NOT_IN_CONFIG = {"create_collection"}
"""The IO manager always creates the collection (and its alias) it writes."""
CONFIG_RENAMES = {"spark_schema": "schema"}
"""``schema`` is a reserved name on pydantic models."""
CONFIG_DEFAULTS_OF_THEIR_OWN = {("read", "with_vectors"): True}
"""An IO manager loads embeddings to use them; the bare reader reads payload only."""


@pytest.mark.parametrize(
    ("direction", "config", "options"), [("read", QdrantReadConfig, ReadOptions), ("write", QdrantWriteConfig, WriteOptions)]
)
def test_option_configs_map_one_to_one_onto_reader_and_writer_options(
    direction: str, config: type, options: type
) -> None:
    option_fields = {item.name: item for item in dataclasses.fields(options)}
    expected = set(option_fields) - CONNECTION_OPTIONS - OPTIONS_NOT_IN_CONFIG
    if direction == "write":
        expected -= WRITE_OPTIONS_NOT_IN_CONFIG
    config_fields = {CONFIG_RENAMES.get(name, name) for name in config.model_fields}
    assert sorted(expected - config_fields) == [], f"options missing from {config.__name__}"
    assert sorted(config_fields - expected) == [], f"{config.__name__} fields that are no option"
    # every default is the option's own (mutable ones come from default_factory on both sides)
    defaults = config().to_options()
    for name in expected:
        option = option_fields[name]
        default = option.default if option.default is not dataclasses.MISSING else option.default_factory()
        default = CONFIG_DEFAULTS_OF_THEIR_OWN.get((direction, name), default)
        assert defaults[name] == default and type(defaults[name]) is type(default), name
    # and the configs are accepted as they are
    build = build_qdrant_config if direction == "read" else build_qdrant_write_config
    assert build("http://h:6333", "c", **defaults)
    # each field shows the option's own description and type (or the type Dagster can show for it)
    declared = {item.name: item for item in options.declared()}
    for field_name, config_field in config.model_fields.items():
        option = declared[CONFIG_RENAMES.get(field_name, field_name)]
        assert config_field.description.startswith(option.doc), field_name
        shown = option.config_type if option.config_type is not None else option.type
        assert config_field.annotation == shown, field_name


def test_the_resource_takes_the_shared_connection_options_from_their_declarations() -> None:
    declared = {item.name: item for item in ConnectionOptions.declared()}
    for name in ("headers", "timeout", "max_retries", "backoff_factor"):
        field = QdrantResource.model_fields[name]
        assert field.description == declared[name].doc, name
        assert field.get_default(call_default_factory=True) == declared[name].default, name
    # the secret-bearing ones stay out of the resource's repr
    shown = repr(QdrantResource(endpoint="http://h:6333", headers={"authorization": "Bearer s3cret"}))
    assert "s3cret" not in shown


def test_option_configs_are_documented() -> None:
    for config in (QdrantWriteConfig, QdrantReadConfig, QdrantResource):
        undocumented = [name for name, field in config.model_fields.items() if not field.description]
        assert undocumented == [], f"{config.__name__} fields without a description: {undocumented}"


def test_new_config_fields_reach_the_options() -> None:
    read = build_qdrant_config(
        "http://h:6333",
        "c",
        **QdrantReadConfig(offset=7, partitioning="id_range", sample_size="all", schema_mismatch="error").to_options(),
    )
    assert (read["offset"], read["partitioning"], read["sample_size"], read["schema_mismatch"]) == (7, "id_range", "all", "error")
    write = build_qdrant_write_config(
        "http://h:6333", "c", **QdrantWriteConfig(non_finite="null", decimal_as="string").to_options()
    )
    assert (write["non_finite"], write["decimal_as"]) == ("null", "string")


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


@pytest.mark.parametrize("config", [QdrantReadConfig, QdrantWriteConfig, QdrantResource])
def test_dagsters_config_schema_shows_every_field_typed_and_described(config: type) -> None:
    """What the launchpad shows: Dagster's own schema of the class, a typed field per option with its text."""
    fields = config.to_config_schema().as_field().config_type.fields
    assert set(fields) == set(config.model_fields)
    untyped = {"offset", "sample_size"}  # Dagster config has no int-or-str type: Any, checked by the parser
    for name, dagster_field in fields.items():
        assert dagster_field.description == config.model_fields[name].description, name
        kind = dagster_field.config_type.key
        assert (kind == "Noneable.Any") == (name in untyped), (name, kind)


@pytest.mark.parametrize(
    "make",
    [
        lambda: dagster_qdrant.QdrantResource(endpont="http://localhost:6333"),
        lambda: dagster_qdrant.QdrantConfig(hots="localhost"),
        lambda: dagster_qdrant.QdrantPySparkIOManager(colection_prefix="dev_"),
        lambda: dagster_qdrant.QdrantWriteConfig(batchsize=64),
        lambda: dagster_qdrant.QdrantReadConfig(limt=10),
    ],
    ids=["resource", "community config", "io manager", "write config", "read config"],
)
def test_a_misspelt_field_is_refused_naming_it_never_ignored(make: Any) -> None:
    """Ignored, ``QdrantResource(endpont=...)`` would quietly write to the embedded server instead."""
    with pytest.raises(pydantic.ValidationError, match=r"(endpont|hots|colection_prefix|batchsize|limt)\n.*Extra inputs"):
        make()
