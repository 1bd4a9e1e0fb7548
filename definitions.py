"""Example pipeline: a small document corpus, embedded with Spark ML, stored and searched in Qdrant.

    documents ──> embedding_model ──> document_embeddings ──> daily_documents (one partition per day)
         └───────────────────────────────^        └─────────> similar_documents (a similarity query)

``document_embeddings`` and ``daily_documents`` are Spark DataFrames stored by QdrantPySparkIOManager; the
other assets are small Python values kept by Dagster's default IO manager. Qdrant is the embedded server
(started on demand, data in ``.qdrant/`` or DAGSTER_QDRANT_PATH) unless QDRANT_URL (and QDRANT_API_KEY)
name a real one.

Runs, asset values and the fitted model live in the Dagster instance at DAGSTER_HOME. Without it Dagster
uses a temporary one, deleted when the command ends, and the UI would show nothing of a run made from the
command line; so every command uses the project's ``.dagster_home/`` (its dagster.yaml also shows the
run's INFO lines only, and the embedded server's, on the console):

    export DAGSTER_HOME=$PWD/.dagster_home
    dagster asset materialize -f definitions.py --select '*' --partition 2024-05-03
    dagster dev -w workspace.yaml
    dagster asset materialize -f definitions.py --select similar_documents
"""

import importlib.resources
import os
import sys
from pathlib import Path
from typing import Any, Optional

import pandas as pd
from dagster import (
    AssetCheckExecutionContext,
    AssetCheckResult,
    AssetExecutionContext,
    AssetIn,
    Config,
    DailyPartitionsDefinition,
    Definitions,
    EnvVar,
    InitResourceContext,
    MetadataValue,
    asset,
    asset_check,
    in_process_executor,
)
from dagster_pyspark import PySparkResource

from dagster_qdrant import QdrantPySparkIOManager, QdrantResource, read_qdrant_points
from dagster_qdrant.spark.java import java_required

VECTOR_SIZE = 64
"""Dimension of the document vectors (Word2Vec vectorSize)."""
EMBEDDING_SEED = 42
"""Word2Vec's seed: the same corpus always gives the same vectors."""
QDRANT_IO_MANAGER = "qdrant_io_manager"
# Spark's Python workers must run this interpreter (the one dagster_qdrant is installed in), not
# whatever `python3` comes first on PATH.
os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
daily_partitions = DailyPartitionsDefinition(start_date="2024-05-01", end_date="2024-05-09")
"""One partition per publication day of the shipped corpus (2024-05-01 .. 2024-05-08)."""


def _corpus_path() -> Path:
    return Path(str(importlib.resources.files("dagster_qdrant") / "data" / "documents.jsonl"))


@asset(description="The shipped corpus: 320 short documents on 8 topics, one JSON object a line.")
def documents(context: AssetExecutionContext) -> pd.DataFrame:
    frame = pd.read_json(_corpus_path(), lines=True, dtype={"published": str})
    context.add_output_metadata(
        {"dagster/row_count": len(frame), "topics": MetadataValue.json(sorted(frame["topic"].unique()))}
    )
    return frame


def _embedding_pipeline() -> Any:
    """Title + text -> words -> Word2Vec document vector (mean of word vectors) -> unit length."""
    from pyspark.ml import Pipeline
    from pyspark.ml.feature import Normalizer, RegexTokenizer, StopWordsRemover, Word2Vec

    return Pipeline(
        stages=[
            RegexTokenizer(inputCol="content", outputCol="words", pattern="[^a-z]+", toLowercase=True),
            StopWordsRemover(inputCol="words", outputCol="terms"),
            Word2Vec(
                inputCol="terms",
                outputCol="mean_vector",
                vectorSize=VECTOR_SIZE,
                minCount=1,
                windowSize=8,
                maxIter=10,
                seed=EMBEDDING_SEED,
            ),
            Normalizer(inputCol="mean_vector", outputCol="unit_vector", p=2.0),
        ]
    )


def _with_content(frame: Any) -> Any:
    from pyspark.sql import functions

    return frame.withColumn("content", functions.concat_ws(" ", "title", "text"))


def _embed(model: Any, frame: Any) -> Any:
    """Adds the ``vector`` column (array<float> of VECTOR_SIZE) to a DataFrame with ``content``."""
    from pyspark.ml.functions import vector_to_array

    transformed = model.transform(frame).withColumn("vector", vector_to_array("unit_vector", "float32"))
    return transformed.drop("content", "words", "terms", "mean_vector", "unit_vector")


@asset(description="A Spark ML Word2Vec pipeline fitted on the corpus, saved as a directory (its path).")
def embedding_model(context: AssetExecutionContext, documents: pd.DataFrame, pyspark: PySparkResource) -> str:
    if context.instance.is_ephemeral or not os.environ.get("DAGSTER_HOME"):
        context.log.warning(
            "DAGSTER_HOME is unset: this run, its asset values and the model saved here go to a temporary "
            "directory that Dagster deletes when the command ends, so `dagster dev` will not show them and "
            "later runs cannot load them. Run with DAGSTER_HOME=$PWD/.dagster_home, as the README does."
        )
    spark = pyspark.spark_session
    model = _embedding_pipeline().fit(_with_content(spark.createDataFrame(documents)))
    path = Path(context.instance.storage_directory()) / "spark_models" / f"embedding_model_{context.run.run_id}"
    model.write().overwrite().save(str(path))
    context.add_output_metadata({"path": str(path), "vector_size": VECTOR_SIZE})
    return str(path)


def _load_model(path: str) -> Any:
    from pyspark.ml import PipelineModel

    return PipelineModel.load(path)


@asset(
    io_manager_key=QDRANT_IO_MANAGER,
    kinds={"spark", "qdrant"},  # the UI's badges: kinds are part of the definition, not of the IO manager
    metadata={"id_field": "id", "vector_field": "vector", "distance": "Cosine"},
    description="One point per document: its Word2Vec vector and its fields as payload.",
)
def document_embeddings(documents: pd.DataFrame, embedding_model: str, pyspark: PySparkResource) -> Any:
    spark = pyspark.spark_session
    return _embed(_load_model(embedding_model), _with_content(spark.createDataFrame(documents)))


@asset(
    io_manager_key=QDRANT_IO_MANAGER,
    kinds={"spark", "qdrant"},
    partitions_def=daily_partitions,
    ins={
        "document_embeddings": AssetIn(
            metadata={"columns": ["id", "title", "topic", "published", "vector"]}
        )
    },
    metadata={"id_field": "id", "vector_field": "vector"},
    description="The documents published on each day, one partition per day, in one collection.",
)
def daily_documents(context: AssetExecutionContext, document_embeddings: Any) -> Any:
    from pyspark.sql import functions

    return document_embeddings.where(functions.col("published") == context.partition_key)


class SimilarityQuery(Config):
    query: str = "tomato plants in the garden"
    limit: int = 5


@asset(
    ins={"document_embeddings": AssetIn(metadata={"columns": ["id", "title", "topic", "vector"]})},
    description="The documents nearest to a text query: asked of Qdrant, checked against Spark.",
)
def similar_documents(
    context: AssetExecutionContext,
    config: SimilarityQuery,
    document_embeddings: Any,
    embedding_model: str,
    pyspark: PySparkResource,
    qdrant: QdrantResource,
) -> pd.DataFrame:
    import numpy

    spark = pyspark.spark_session
    query_frame = spark.createDataFrame([(config.query,)], ["content"])
    query_vector = _embed(_load_model(embedding_model), query_frame).first()["vector"]
    hits = qdrant.search("document_embeddings", query_vector, limit=config.limit)
    answer = pd.DataFrame(
        [
            {
                "rank": rank,
                "id": hit["id"],
                "score": round(float(hit["score"]), 4),
                "title": hit["payload"]["title"],
                "topic": hit["payload"]["topic"],
            }
            for rank, hit in enumerate(hits, start=1)
        ]
    )
    # The same question answered exactly by Spark over the loaded collection (vectors are unit length).
    rows = document_embeddings.select("id", "vector").collect()
    scores = sorted(
        ((float(numpy.dot(query_vector, row["vector"])), row["id"]) for row in rows), reverse=True
    )
    exact_ids = [point_id for _, point_id in scores[: config.limit]]
    context.log.info(
        f"Read {len(rows)} points back from Qdrant; nearest to {config.query!r}:\n{answer.to_string(index=False)}"
    )
    context.add_output_metadata(
        {
            "query": config.query,
            "answer": MetadataValue.md(answer.to_markdown(index=False)),
            "dagster/row_count": len(answer),
            "points_loaded": len(rows),
            "matches_exact_search": [int(i) for i in answer["id"]] == exact_ids,
        }
    )
    return answer


@asset_check(
    asset=document_embeddings,
    additional_ins={"documents": AssetIn("documents")},
    description="Qdrant holds one point per document, and every vector has the declared size.",
)
def embeddings_complete(
    context: AssetCheckExecutionContext, documents: pd.DataFrame, qdrant: QdrantResource
) -> AssetCheckResult:
    http = qdrant.http()
    points = http.count("document_embeddings", exact=True)
    sizes: dict[int, int] = {}
    config = qdrant.read_config("document_embeddings", with_payload=False, with_vectors=True, page_size=256)
    for point in read_qdrant_points(config):
        size = len(point.get("vector") or [])
        sizes[size] = sizes.get(size, 0) + 1
    return AssetCheckResult(
        passed=points == len(documents) and set(sizes) == {VECTOR_SIZE},
        metadata={"points": points, "rows": len(documents), "vector_sizes": MetadataValue.json(sizes)},
    )


class JavaCheckedPySparkResource(PySparkResource):
    """PySparkResource that, when Spark cannot start its JVM, says Java 17+ is needed and how to get it
    (PySpark itself only says that the Java gateway exited)."""

    def setup_for_execution(self, context: InitResourceContext) -> None:
        with java_required():
            super().setup_for_execution(context)


def _env_or_none(name: str) -> Optional[EnvVar]:
    """EnvVar(name) when the variable is set: the UI then shows where the value comes from."""
    return EnvVar(name) if os.environ.get(name) else None


def build_definitions(qdrant: Optional[QdrantResource] = None, spark_config: Optional[dict] = None) -> Definitions:
    """The example Definitions; tests pass their own Qdrant connection."""
    if qdrant is None:
        qdrant = QdrantResource(endpoint=_env_or_none("QDRANT_URL"), api_key=_env_or_none("QDRANT_API_KEY"))
    pyspark = JavaCheckedPySparkResource(
        spark_config=spark_config
        or {
            "spark.master": "local[2]",
            "spark.ui.enabled": "false",
            "spark.ui.showConsoleProgress": "false",  # progress bars would cut through Dagster's log lines
            "spark.sql.shuffle.partitions": "2",
            "spark.sql.execution.arrow.pyspark.enabled": "true",
        }
    )
    return Definitions(
        assets=[documents, embedding_model, document_embeddings, daily_documents, similar_documents],
        asset_checks=[embeddings_complete],
        resources={
            "qdrant": qdrant,
            "pyspark": pyspark,
            QDRANT_IO_MANAGER: QdrantPySparkIOManager(qdrant=qdrant, pyspark=pyspark),
        },
        # One process per run: every step shares one SparkSession (one JVM) instead of starting its own.
        executor=in_process_executor,
    )


defs = build_definitions()

__all__ = ["build_definitions", "defs"]
