"""The community dagster-qdrant 0.0.4 API: ``QdrantResource(config=QdrantConfig(...))`` and ``get_client()``.

The asset below is that package's README example with ``upsert``/``query_points`` in place of its
fastembed-based ``add``/``query`` (which download a model); the resources mirror its own test suite
(``dagster_qdrant_tests/test_resource.py``: a server with an API key over http, and ``location=":memory:"``).
Results are compared with qdrant-client's local mode ``QdrantClient(":memory:")`` doing the same operations,
and the URL a config names with the one qdrant-client itself builds from it.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import warnings
from pathlib import Path
from typing import Any

import pytest
from dagster import asset, materialize
from hypothesis import given, settings
from hypothesis import strategies as st
from qdrant_client import QdrantClient, models

from dagster_qdrant import QdrantConfig, QdrantResource
from dagster_qdrant.dagster_io.community import client_arguments, config_server_url
from dagster_qdrant.errors import QdrantConfigError
from waiting import wait_until

DOCUMENTS = [
    "This is a document about oranges",
    "This is a document about pineapples",
    "This is a document about strawberries",
    "This is a document about cucumbers",
]
DIMENSION = 16
API_KEY = "community-test-key"


def embed(text: str) -> list[float]:
    """A deterministic stand-in for fastembed: seeded by the text, so equal texts embed equally."""
    generator = random.Random(text)
    return [generator.uniform(-1.0, 1.0) for _ in range(DIMENSION)]


def points() -> list[models.PointStruct]:
    extra = [f"generated document {number}" for number in range(60)]
    return [
        models.PointStruct(id=number, vector=embed(text), payload={"document": text, "number": number})
        for number, text in enumerate(DOCUMENTS + extra)
    ]


def readme_asset(collection: str):
    """The community README's asset, unchanged but for add/query -> upsert/query_points."""

    @asset
    def my_table(qdrant_resource: QdrantResource) -> list[tuple[Any, float, dict]]:
        with qdrant_resource.get_client() as qdrant:
            if not qdrant.collection_exists(collection):
                qdrant.create_collection(
                    collection_name=collection,
                    vectors_config=models.VectorParams(size=DIMENSION, distance=models.Distance.COSINE),
                )
            qdrant.upsert(collection_name=collection, points=points())
            results = qdrant.query_points(collection_name=collection, query=embed("hawaii"), limit=3).points
            assert len(results) == 3
            return [(point.id, point.score, point.payload) for point in results]

    return my_table


def reference_results(collection: str) -> list[tuple[Any, float, dict]]:
    """The same operations on qdrant-client's local mode."""
    client = QdrantClient(":memory:")
    client.create_collection(
        collection_name=collection,
        vectors_config=models.VectorParams(size=DIMENSION, distance=models.Distance.COSINE),
    )
    client.upsert(collection_name=collection, points=points())
    results = client.query_points(collection_name=collection, query=embed("hawaii"), limit=3).points
    client.close()
    return [(point.id, point.score, point.payload) for point in results]


def assert_same_results(ours: list, reference: list) -> None:
    assert [(point_id, payload) for point_id, _, payload in ours] == [
        (point_id, payload) for point_id, _, payload in reference
    ]
    for (_, score, _), (_, expected, _) in zip(ours, reference):
        assert score == pytest.approx(expected, abs=1e-5)


def run_readme_example(resource: QdrantResource, collection: str) -> list:
    result = materialize([readme_asset(collection)], resources={"qdrant_resource": resource})
    assert result.success
    return result.output_for_node("my_table")


@pytest.fixture(scope="module")
def keyed_server(tmp_path_factory: pytest.TempPathFactory):
    """An embedded Qdrant that requires an API key, like the community tests' Qdrant container."""
    from dagster_qdrant.embedded import start_embedded_qdrant

    with start_embedded_qdrant(tmp_path_factory.mktemp("keyed"), api_key=API_KEY) as server:
        yield server


@pytest.fixture
def stop_embedded_servers():
    """Stops the detached embedded servers a test's ``path=`` started (listed data directories)."""
    directories: list[Path] = []
    yield directories
    for directory in directories:
        server_file = directory / ".server.json"
        if server_file.exists():
            pid = json.loads(server_file.read_text())["pid"]
            os.kill(pid, signal.SIGTERM)
            wait_until(lambda: not _alive(pid), 20.0, "the embedded Qdrant to exit")


def _alive(pid: int) -> bool:
    try:
        if os.waitpid(pid, os.WNOHANG)[0]:
            return False
    except ChildProcessError:
        pass
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_the_readme_example_runs_against_a_server_named_as_the_community_tests_do(keyed_server) -> None:
    host, port = keyed_server.url.removeprefix("http://").split(":")
    resource = QdrantResource(config=QdrantConfig(host=host, port=int(port), api_key=API_KEY, https=False))
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "Api key is used with an insecure connection")
        ours = run_readme_example(resource, "test_collection")
    assert_same_results(ours, reference_results("test_collection"))


def test_the_readme_example_runs_in_memory_as_the_community_tests_do() -> None:
    resource = QdrantResource(config=QdrantConfig(location=":memory:"))
    ours = run_readme_example(resource, "test_collection")
    assert_same_results(ours, reference_results("test_collection"))
    assert resource.resolved_endpoint().startswith("http://127.0.0.1:")
    # The resource's timeout fills what the config leaves unset, for the embedded Qdrant too.
    timed = QdrantResource(timeout=12.0, config=QdrantConfig(location=":memory:"))
    assert client_arguments(timed)["timeout"] == 12


def test_the_readme_example_runs_without_a_config_against_the_resources_own_endpoint(
    qdrant_url: str, collection_name: str
) -> None:
    ours = run_readme_example(QdrantResource(endpoint=qdrant_url), collection_name)
    assert_same_results(ours, reference_results(collection_name))


def test_path_is_the_embedded_qdrants_data_directory(
    tmp_path: Path, collection_name: str, stop_embedded_servers: list[Path]
) -> None:
    data = tmp_path / "qdrant"
    stop_embedded_servers.append(data)
    resource = QdrantResource(config=QdrantConfig(path=str(data)))
    ours = run_readme_example(resource, collection_name)
    assert_same_results(ours, reference_results(collection_name))
    # One resolution: the resource's own search and a resource naming the directory our way see the points.
    same_server = QdrantResource(embedded_path=str(data))
    assert same_server.resolved_endpoint() == resource.resolved_endpoint()
    found = same_server.search(collection_name, embed("hawaii"), limit=3)
    assert [hit["id"] for hit in found] == [point_id for point_id, _, _ in ours]


def test_a_directory_of_qdrant_client_local_mode_data_is_refused(tmp_path: Path) -> None:
    local = QdrantClient(path=str(tmp_path / "local"))
    local.create_collection("c", vectors_config=models.VectorParams(size=2, distance=models.Distance.DOT))
    local.close()
    resource = QdrantResource(config=QdrantConfig(path=str(tmp_path / "local")))
    with pytest.raises(QdrantConfigError, match="qdrant-client local-mode data.*new directory"):
        resource.resolved_endpoint()


def test_memory_qdrant_is_gone_when_the_process_exits(tmp_path: Path) -> None:
    script = (
        "import json\n"
        "from dagster_qdrant import QdrantConfig, QdrantResource\n"
        "from dagster_qdrant.dagster_io import community\n"
        "resource = QdrantResource(config=QdrantConfig(location=':memory:'))\n"
        "resource.resolved_endpoint()\n"
        "server = community._memory_server['server']\n"
        "print(json.dumps({'pid': server.pid, 'path': str(server.path)}))\n"
    )
    output = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    started = json.loads(output.stdout)
    assert not Path(started["path"]).exists()
    assert not _alive(started["pid"])


def test_prefer_grpc_is_refused_against_the_embedded_qdrant_and_passed_to_a_server() -> None:
    embedded = QdrantResource(config=QdrantConfig(location=":memory:", prefer_grpc=True))
    with pytest.raises(QdrantConfigError, match="serves REST only"):
        with embedded.get_client():
            pass
    remote = QdrantResource(config=QdrantConfig(host="qdrant.example", prefer_grpc=True, check_compatibility=False))
    with remote.get_client() as client:
        assert client._client._prefer_grpc is True
        assert client._client.rest_uri == "http://qdrant.example:6333"


@pytest.mark.parametrize(
    ("fields", "config", "message"),
    [
        ({"endpoint": "http://a:6333"}, {"host": "b"}, "endpoint .* and .*config.url/host/location"),
        ({"endpoint": "http://a:6333"}, {"path": "/tmp/x"}, "endpoint .* and .*config.path/location"),
        ({"api_key": "one"}, {"host": "a", "api_key": "two"}, "api_key"),
        ({"timeout": 10.0}, {"host": "a", "timeout": 20}, "timeout"),
        ({"embedded_path": "/tmp/one"}, {"path": "/tmp/two"}, "embedded_path"),
        ({}, {"host": "a", "url": "http://b"}, "url and host are all set"),
        ({}, {"location": ":memory:", "path": "/tmp/x"}, "location and path"),
    ],
)
def test_resource_fields_and_config_that_disagree_are_refused(fields, config, message) -> None:
    resource = QdrantResource(**fields, config=QdrantConfig(**config))
    with pytest.raises(QdrantConfigError, match=message):
        resource.connection_settings()


def test_resource_fields_that_agree_with_the_config_or_fill_it_are_used() -> None:
    resource = QdrantResource(
        endpoint="https://a:6333/", api_key="k", timeout=12.0, config=QdrantConfig(url="https://a:6333")
    )
    settings_ = resource.connection_settings()
    assert (settings_["endpoint"], settings_["api_key"], settings_["timeout"]) == ("https://a:6333", "k", 12.0)
    arguments = client_arguments(resource)
    assert (arguments["api_key"], arguments["timeout"]) == ("k", 12)


def test_without_a_config_the_client_uses_the_endpoint_as_given() -> None:
    # qdrant-client adds port 6333 to a URL without one; our endpoint is a whole URL (https: port 443).
    resource = QdrantResource(endpoint="https://qdrant.example/", api_key="k", timeout=7.5)
    client = QdrantClient(**client_arguments(resource), check_compatibility=False)
    assert client._client.rest_uri == "https://qdrant.example"
    assert client._client._rest_headers["api-key"] == "k"
    client.close()


def test_repr_of_the_resource_and_its_config_hide_the_api_key() -> None:
    resource = QdrantResource(config=QdrantConfig(host="qdrant.example", api_key="hidden-key-123"))
    for shown in (resource, resource.config):
        assert "hidden-key-123" not in repr(shown) and "hidden-key-123" not in str(shown)


def test_a_missing_qdrant_client_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "qdrant_client", None)
    resource = QdrantResource(endpoint="http://qdrant.example:6333")
    with pytest.raises(ImportError, match=r"dagster-qdrant\[client\]"):
        with resource.get_client():
            pass


# The URL a config names, checked against qdrant-client building its own from the same arguments.
HOSTS = st.sampled_from(["localhost", "127.0.0.1", "qdrant.example", "xyz-example.eu-central.aws.cloud.qdrant.io"])
URLS = st.builds(
    lambda scheme, host, port, path: f"{scheme}{host}{port}{path}",
    st.sampled_from(["", "http://", "https://", "grpc://"]),
    HOSTS,
    st.sampled_from(["", ":6333", ":443", ":8080"]),
    st.sampled_from(["", "/", "/service/v1", "/a/"]),
)
CONFIGS = st.fixed_dictionaries(
    {},
    optional={
        "host": st.one_of(HOSTS, st.just("https://qdrant.example")),
        "url": URLS,
        "location": URLS,
        "port": st.one_of(st.none(), st.sampled_from([6333, 443, 1234])),
        "https": st.one_of(st.none(), st.booleans()),
        "api_key": st.one_of(st.none(), st.just("k")),
        "prefix": st.one_of(st.none(), st.sampled_from(["", "service/v1", "/p"])),
    },
)


@settings(derandomize=True, max_examples=200, deadline=None)
@given(CONFIGS)
def test_the_url_a_config_names_is_the_one_qdrant_client_builds(fields: dict) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            client = QdrantClient(**fields, check_compatibility=False)
        except ValueError:
            with pytest.raises(QdrantConfigError):
                config_server_url(QdrantConfig(**fields), fields.get("api_key"))
            return
        expected = client._client.rest_uri.rstrip("/")
        client.close()
    assert config_server_url(QdrantConfig(**fields), fields.get("api_key")) == expected
    # get_client() hands a server config to QdrantClient as the community package does: the fields verbatim.
    resource = QdrantResource(config=QdrantConfig(**fields))
    assert resource.resolved_endpoint() == expected
    assert client_arguments(resource) == QdrantConfig(**fields).model_dump()


def test_the_config_fields_and_defaults_are_the_community_packages() -> None:
    # dagster-qdrant 0.0.4's QdrantConfig (dagster_qdrant/config.py), field by field.
    expected = {
        "location": None, "url": None, "port": 6333, "grpc_port": 6334, "prefer_grpc": False, "https": None,
        "api_key": None, "prefix": None, "timeout": None, "host": None, "path": None,
        "force_disable_check_same_thread": False, "check_compatibility": True,
    }  # fmt: skip
    assert QdrantConfig().model_dump() == expected
