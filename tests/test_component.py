"""QdrantComponent: the resource and the IO manager of a dg project, loaded from defs.yaml.

Dagster's own component test sandbox (``create_defs_folder_sandbox``) lays out a project's ``defs`` folder
with the component's ``defs.yaml`` beside a Python file of assets, and loads it as ``dg`` does. The points
written through the IO manager are compared with the DataFrame the asset returned, and a similarity query
with the same query on qdrant-client's local mode ``QdrantClient(":memory:")``.
"""

from __future__ import annotations

import random
import re
import textwrap
import tomllib
from pathlib import Path

import pytest
from dagster.components.core.package_entry import discover_package_objects
from dagster.components.testing import create_defs_folder_sandbox
from qdrant_client import QdrantClient, models

from dagster_qdrant import QdrantComponent
from dagster_qdrant.errors import QdrantConfigError

ROWS = 40
DIMENSION = 8
API_KEY = "component-test-key"

ASSETS = '''
import random

from dagster import asset
from pyspark.sql import SparkSession

from dagster_qdrant import QdrantResource

@asset(io_manager_key="qdrant_io_manager", metadata={"vector_field": "vector", "distance": "Cosine"})
def vectors():
    generator = random.Random(7)
    rows = [(i, f"title {i}", [generator.uniform(-1, 1) for _ in range({dimension})]) for i in range({rows})]
    spark = SparkSession.builder.getOrCreate()
    return spark.createDataFrame(rows, "id long, title string, vector array<float>")

@asset
def copied(vectors) -> list:
    return sorted((row["id"], row["title"], list(row["vector"])) for row in vectors.collect())

@asset(deps=[vectors])
def nearest(qdrant: QdrantResource) -> list:
    with qdrant.get_client() as client:
        name = "{prefix}vectors"
        hits = client.query_points(name, query=[0.5] * {dimension}, limit=5, with_payload=True).points
    return [(hit.id, hit.score, hit.payload) for hit in hits]
'''


def write_project(sandbox, attributes: dict, prefix: str, *, assets: bool = True) -> Path:
    defs_path = sandbox.scaffold_component(
        component_cls=QdrantComponent,
        defs_path="qdrant",
        defs_yaml_contents={"type": "dagster_qdrant.QdrantComponent", "attributes": attributes},
    )
    if assets:
        source = ASSETS.replace("{dimension}", str(DIMENSION)).replace("{rows}", str(ROWS))
        (sandbox.defs_folder_path / "assets.py").write_text(source.replace("{prefix}", prefix))
    return defs_path


def reference_nearest() -> list:
    generator = random.Random(7)
    rows = [(i, f"title {i}", [generator.uniform(-1, 1) for _ in range(DIMENSION)]) for i in range(ROWS)]
    client = QdrantClient(":memory:")
    client.create_collection("c", vectors_config=models.VectorParams(size=DIMENSION, distance=models.Distance.COSINE))
    client.upsert("c", points=[models.PointStruct(id=i, vector=v, payload={"title": t}) for i, t, v in rows])
    hits = client.query_points("c", query=[0.5] * DIMENSION, limit=5, with_payload=True).points
    stored, _ = client.scroll("c", limit=ROWS, with_vectors=True)  # Cosine: Qdrant keeps vectors normalized
    client.close()
    rows = sorted((point.id, point.payload["title"], point.vector) for point in stored)
    return [(hit.id, hit.score, hit.payload) for hit in hits], rows


def test_the_component_from_yaml_serves_the_io_manager_and_the_resource(
    spark, qdrant_url: str, collection_name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("QDRANT_URL_UNDER_TEST", qdrant_url)
    prefix = f"{collection_name}_"
    attributes = {
        "resource": {"endpoint": "{{ env.QDRANT_URL_UNDER_TEST }}"},
        "io_manager": {"collection_prefix": prefix, "write": {"batch_size": 16}},
    }
    with create_defs_folder_sandbox() as sandbox:
        defs_path = write_project(sandbox, attributes, prefix)
        with sandbox.load_component_and_build_defs(defs_path=defs_path) as (component, _):
            assert isinstance(component, QdrantComponent)
        with sandbox.build_all_defs() as defs:
            result = defs.resolve_implicit_global_asset_job_def().execute_in_process()
    assert result.success
    expected_nearest, expected_rows = reference_nearest()
    copied = result.output_for_node("copied")
    assert [(i, t) for i, t, _ in copied] == [(i, t) for i, t, _ in expected_rows]
    for (_, _, vector), (_, _, expected) in zip(copied, expected_rows):
        assert vector == pytest.approx(expected, abs=1e-6)  # float32, as Qdrant stores them
    nearest = result.output_for_node("nearest")
    assert [(i, payload["title"]) for i, _, payload in nearest] == [(i, p["title"]) for i, _, p in expected_nearest]
    assert [score for _, score, _ in nearest] == pytest.approx([score for _, score, _ in expected_nearest], abs=1e-5)


def test_the_component_reads_the_api_key_from_the_named_variable_at_run_time(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    from dagster_qdrant.embedded import start_embedded_qdrant

    monkeypatch.setenv("COMPONENT_QDRANT_KEY", API_KEY)
    with start_embedded_qdrant(tmp_path_factory.mktemp("keyed"), api_key=API_KEY) as server:
        host, port = server.url.removeprefix("http://").split(":")
        attributes = {
            "api_key_env_var": "COMPONENT_QDRANT_KEY",
            "resource": {"config": {"host": host, "port": int(port), "https": False}},
        }
        with create_defs_folder_sandbox() as sandbox:
            write_project(sandbox, attributes, "", assets=False)
            (sandbox.defs_folder_path / "assets.py").write_text(
                textwrap.dedent(
                    """
                    from dagster import asset
                    from dagster_qdrant import QdrantResource

                    @asset
                    def collections(qdrant: QdrantResource) -> list:
                        with qdrant.get_client() as client:
                            return [c.name for c in client.get_collections().collections]
                    """
                )
            )
            with sandbox.build_all_defs() as defs:
                resource = defs.resources["qdrant"]
                # Outside a run the key is only the variable's name: nothing to show in the UI.
                assert resource.config.api_key == "COMPONENT_QDRANT_KEY"
                result = defs.resolve_implicit_global_asset_job_def().execute_in_process()
    assert result.success
    assert result.output_for_node("collections") == []


@pytest.mark.parametrize(
    ("attributes", "message"),
    [
        ({"resource": {"endpont": "http://x"}}, r"resource.endpont is not a field of QdrantResource; did you mean 'endpoint'"),
        ({"resource": {"config": {"hots": "x"}}}, r"resource.config.hots .* did you mean 'host'"),
        ({"io_manager": {"write": {"batch_sise": 1}}}, r"io_manager.write.batch_sise .* did you mean 'batch_size'"),
        ({"resource": {"api_key": "plain"}}, r"api_key is not accepted in YAML .* api_key_env_var"),
        ({"resource": {"config": {"api_key": "plain"}}}, r"config.api_key is not accepted"),
        ({"io_manager": {"qdrant": {}}}, r"io_manager.qdrant is set by the component itself"),
    ],
)
def test_yaml_the_resource_would_ignore_is_refused(attributes: dict, message: str) -> None:
    with create_defs_folder_sandbox() as sandbox:
        defs_path = write_project(sandbox, attributes, "", assets=False)
        with pytest.raises(Exception) as raised:
            with sandbox.load_component_and_build_defs(defs_path=defs_path):
                pass
    chain = []
    error: BaseException | None = raised.value
    while error is not None:
        chain.append(error)
        error = error.__cause__ or error.__context__
    assert any(isinstance(e, QdrantConfigError) for e in chain), chain
    assert any(re.search(message, str(e)) for e in chain), [str(e) for e in chain]


def test_dg_finds_the_component_through_the_registered_module() -> None:
    pyproject = tomllib.loads((Path(__file__).parent.parent / "pyproject.toml").read_text())
    module = pyproject["project"]["entry-points"]["dagster_dg_cli.registry_modules"]["dagster_qdrant"]
    found = {key.to_typename(): value for key, value in discover_package_objects([module]).items()}
    assert found == {"dagster_qdrant.QdrantComponent": QdrantComponent}


def test_api_key_env_var_becomes_an_env_var_of_the_resource_or_of_its_config() -> None:
    plain = QdrantComponent(api_key_env_var="MY_QDRANT_KEY").build_resource()
    configured = QdrantComponent(api_key_env_var="MY_QDRANT_KEY", resource={"config": {"host": "h"}}).build_resource()
    # An EnvVar outside a run is its name (Dagster reads the value when the run starts).
    assert (plain.api_key, configured.config.api_key) == ("MY_QDRANT_KEY", "MY_QDRANT_KEY")
    assert type(plain.api_key).__name__ == type(configured.config.api_key).__name__ == "EnvVar"
