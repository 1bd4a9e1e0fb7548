"""Structured Streaming sink: ``df.writeStream.format("qdrant")``.

Why a restarted query neither loses nor duplicates points: with a checkpoint location, Spark's
micro-batch engine records each batch's input offsets before running it and the batch's commit after
the sink has written it. A query that crashes in between is replayed on restart with the same rows and
the same batch id. Every point is upserted under an id that depends only on its row (the ``id_field``
column, or, with ``id_field`` None, a UUID the writer derives from the row content), so the replay
overwrites the points the crashed run already wrote instead of adding new ones: at-least-once delivery
plus idempotent writes gives each row exactly once in the collection.

The consequence users must know: with derived ids, two identical rows are one point. Give the rows an
id column when identical rows must stay distinct.

Each micro-batch task writes its Arrow record batches with the same ``PointWriter`` the batch writer
uses (byte- and point-budgeted requests, several in flight, retries), so streaming inherits every
write option: ``batch_size``, ``max_in_flight``, ``create_collection``, vectors, payload fields.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from pyspark.sql.datasource import DataSourceStreamArrowWriter, WriterCommitMessage

from dagster_qdrant.errors import QdrantConfigError

if TYPE_CHECKING:
    import pyarrow as pa
    from pyspark.sql.types import StructType

    from dagster_qdrant.options import WriteOptions

logger = logging.getLogger(__name__)

STREAM_ENGINE_OPTIONS = frozenset({"checkpointlocation"})
"""Options of ``writeStream`` that Spark's streaming engine reads and also hands to the sink."""


def sink_options(options: Mapping[str, str]) -> dict[str, str]:
    """Spark's options for the sink without the streaming engine's own, which are no write options."""
    return {key: value for key, value in options.items() if key.lower() not in STREAM_ENGINE_OPTIONS}


@dataclass(frozen=True)
class QdrantStreamCommitMessage(WriterCommitMessage):
    """What one task of a micro-batch wrote; the driver sums these when the batch commits."""

    points_written: int
    requests: int
    seconds: float


@dataclass(frozen=True)
class MicroBatchSummary:
    """Totals of one micro-batch, for the commit and abort log lines."""

    batch_id: int
    points_written: int
    requests: int
    tasks: int
    failed_tasks: int


def summarize(messages: list[WriterCommitMessage | None], batch_id: int) -> MicroBatchSummary:
    """Add up the tasks' commit messages; a failed task sends None."""
    written = [m for m in messages if isinstance(m, QdrantStreamCommitMessage)]
    return MicroBatchSummary(
        batch_id=batch_id,
        points_written=sum(m.points_written for m in written),
        requests=sum(m.requests for m in written),
        tasks=len(messages),
        failed_tasks=sum(1 for m in messages if m is None),
    )


class QdrantStreamWriter(DataSourceStreamArrowWriter):
    """Writes each micro-batch into a Qdrant collection with idempotent upserts.

    Built on the driver by ``QdrantDataSource.streamWriter(schema, overwrite)`` from parsed
    ``WriteOptions`` (or Spark's raw option strings): the options and columns are checked there, so a bad option stops the query at ``start()`` instead of failing every task.
    The writer is then pickled to the executors, where ``write`` runs once per task of each batch.
    """

    def __init__(
        self,
        options: WriteOptions | Mapping[str, str],
        schema: StructType,
        overwrite: bool = False,
    ) -> None:
        from dagster_qdrant.options import WriteOptions

        if overwrite:
            raise QdrantConfigError(
                "The qdrant streaming sink does not support outputMode('complete'): it would have to "
                "empty the collection on every micro-batch. Use outputMode('append') (or 'update', "
                "which upserts changed rows by id)."
            )
        if not isinstance(options, WriteOptions):
            options = WriteOptions.from_spark_options(sink_options(options))
        self.options: WriteOptions = options
        self.schema = schema
        check_columns(self.options, schema)

    def write(self, iterator: Iterator[pa.RecordBatch]) -> QdrantStreamCommitMessage:
        """Upsert this task's rows; runs on an executor."""
        from dagster_qdrant.points.points_to_qdrant import PointWriter

        report = PointWriter(self.options).write_batches(iterator)
        return QdrantStreamCommitMessage(
            points_written=report.points_written,
            requests=report.requests,
            seconds=report.seconds,
        )

    def commit(self, messages: list[WriterCommitMessage | None], batchId: int) -> None:
        """Every task wrote its points; nothing is staged, so committing only reports the totals."""
        summary = summarize(messages, batchId)
        logger.info(
            "qdrant stream batch %d committed: %d points in %d requests to collection %r",
            summary.batch_id,
            summary.points_written,
            summary.requests,
            self.options.collection,
        )

    def abort(self, messages: list[WriterCommitMessage | None], batchId: int) -> None:
        """A task failed. Points already written stay: the replay rewrites them under the same ids."""
        summary = summarize(messages, batchId)
        logger.warning(
            "qdrant stream batch %d aborted after %d of %d tasks wrote %d points to collection %r; "
            "the batch is replayed when the query restarts from its checkpoint",
            summary.batch_id,
            summary.tasks - summary.failed_tasks,
            summary.tasks,
            summary.points_written,
            self.options.collection,
        )


def check_columns(options: WriteOptions, schema: StructType) -> None:
    """Name a missing id or vector column at query start rather than in a failed task."""
    columns = set(schema.fieldNames())
    if options.id_field is not None and options.id_field not in columns:
        raise QdrantConfigError(
            f"Option 'id_field' is {options.id_field!r} but the stream has no such column "
            f"(columns: {sorted(columns)}). Set id_field to an existing column, or to none to derive "
            "each point's id from its row content (identical rows then become one point)."
        )
    vector_columns = set(options.dense_vector_columns()) | set(options.sparse_vector_fields)
    missing = sorted(vector_columns - columns)
    if missing:
        raise QdrantConfigError(
            f"The stream has no vector column {missing} (columns: {sorted(columns)}). Set vector_field "
            "or vector_fields to the columns that hold the embeddings."
        )
