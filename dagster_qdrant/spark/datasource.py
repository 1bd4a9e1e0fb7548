"""``format("qdrant")``: a PySpark Python Data Source over Qdrant's REST API.

Reading: ``schema()`` infers the columns from a sample (or takes the given schema, whose payload columns
a sample must carry: ``payload_layout.py``, which also reads the payload as one column per key or as
spark-fuse's ``payload`` struct); the reader pushes
the filters Qdrant answers exactly, plans disjoint read splits (``read_splits.py``: hash slices on Qdrant
1.19+, id ranges before), scrolls each with the one scroll loop (``points/scroll.py``) and read-ahead, and
turns every scroll page into one Arrow record batch, so no Python row objects are built and a
task holds one page at a time. Writing: one ``DataSourceArrowWriter`` per task hands Spark's Arrow batches
to ``PointWriter``; the driver settles the write in ``commit``/``abort`` (``write_commit.py``): ``overwrite``
writes into a staging collection and replaces the target only once every task has succeeded.

Options come through ``options.py`` (``qdrant.config`` JSON and/or per-key options), validated there;
``partitioning`` (``auto``: slices when the server has them, else id ranges; ``slice``; ``id_range``)
chooses how a parallel read is split.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import pyarrow as pa
from pyspark.sql.datasource import (
    DataSource,
    DataSourceArrowWriter,
    DataSourceReader,
    DataSourceStreamWriter,
    Filter,
    InputPartition,
    WriterCommitMessage,
)
from pyspark.sql.types import StructType

from dagster_qdrant.spark.points_to_arrow import PointBatchBuilder, check_readable
from dagster_qdrant.errors import collection_not_found
from dagster_qdrant.http import QdrantHttp
from dagster_qdrant.options import QDRANT_FORMAT, ReadOptions, WriteOptions
from dagster_qdrant.spark.write_commit import Staging, TaskOutcome, WrittenIds, settle
from dagster_qdrant.spark.payload_layout import check_carried, expected_keys, layout_request, resolve_layout
from dagster_qdrant.points.scroll import scroll_pages
from dagster_qdrant.spark.read_ahead import read_ahead
from dagster_qdrant.spark.read_splits import (
    ReadSplit,
    id_range_splits,
    partition_filter,
    single_split,
    slice_splits,
    supports_slice,
)
from dagster_qdrant.spark.pushdown import Condition, FilterTranslator, combine_filters, pushdown_is_scan_scoped
from dagster_qdrant.spark.schema import (
    ID_COLUMN,
    INFERRED_METADATA_KEY,
    PAYLOAD_COLUMN,
    VECTOR_COLUMN,
    VectorColumn,
    select_vectors,
    vector_columns_from_collection,
)
from dagster_qdrant.spark.schema_findings import SchemaFindings
from dagster_qdrant.spark.schema_sampling import infer_sampled_schema

def _collection_info(http: QdrantHttp, collection: str) -> dict[str, Any]:
    info = http.collection_info(collection)
    if info is None:
        raise collection_not_found(
            collection, http.endpoint, "check option 'collection' (or the .load() path), or write to it first"
        )
    return info


def _listed(value: Any) -> Any:
    """Option values as request JSON: tuples become lists."""
    if isinstance(value, tuple):
        return list(value)
    if isinstance(value, Mapping):
        return {key: _listed(item) for key, item in value.items()}
    return value


def _vector_request(vectors: Sequence[VectorColumn]) -> bool | list[str]:
    """``with_vector`` for the chosen vectors: a list of names, or True when the unnamed one is among them."""
    if not vectors:
        return False
    if any(vector.name == "" for vector in vectors):
        return True
    return [vector.name for vector in vectors]


def infer_read_schema(options: ReadOptions) -> StructType:
    """The schema of a read, inferred from a sample spread over the points it reads (``schema_sampling``)."""
    http = QdrantHttp(options)
    return infer_sampled_schema(http, options, _collection_info(http, options.collection))


class QdrantDataSource(DataSource):
    """Reads and writes Qdrant points: ``spark.read.format("qdrant")`` / ``df.write.format("qdrant")``.

    ``default_num_partitions`` is the read parallelism when the ``num_partitions`` option is not set;
    ``register_qdrant_data_source`` sets it to Spark's default parallelism.
    """

    default_num_partitions: ClassVar[int | None] = None

    @classmethod
    def name(cls) -> str:
        return QDRANT_FORMAT

    def schema(self) -> StructType:
        options = ReadOptions.from_spark_options(self.options)
        explicit = options.explicit_schema()
        if explicit is not None:
            return StructType.fromJson(json.loads(explicit))
        return infer_read_schema(options)

    def reader(self, schema: StructType) -> QdrantReader:
        options = ReadOptions.from_spark_options(self.options)
        return QdrantReader(options, schema, default_partitions=self.default_num_partitions)

    def writer(self, schema: StructType, overwrite: bool) -> QdrantArrowWriter:
        options = WriteOptions.from_spark_options(self.options)
        return QdrantArrowWriter(options, Staging.prepare(options) if overwrite else None)

    def streamWriter(self, schema: StructType, overwrite: bool) -> DataSourceStreamWriter:
        # Imported here: streaming is optional and most reads and writes never need it.
        from dagster_qdrant.spark.streaming import QdrantStreamWriter

        # The raw options: the stream writer drops the streaming engine's own (checkpointLocation).
        return QdrantStreamWriter(dict(self.options), schema, overwrite)


class QdrantReader(DataSourceReader):
    """Plans and runs one read. Built once on the driver, pickled to every task (holds no connection)."""

    def __init__(
        self,
        options: ReadOptions,
        schema: StructType,
        *,
        default_partitions: int | None = None,
    ) -> None:
        check_readable(schema)
        self.options = options
        self.schema = schema
        self.default_partitions = default_partitions
        http = QdrantHttp(options)
        info = _collection_info(http, options.collection)
        self.server_version = http.server_version()
        declared = vector_columns_from_collection(info)
        if declared is None:  # a server without vector config in its collection info
            declared = [VectorColumn(f.name, "", f.dataType) for f in schema.fields if f.name == VECTOR_COLUMN]
        wanted = select_vectors(declared, options.with_vectors) if options.with_vectors is not False else []
        names = set(schema.fieldNames())
        self.vectors = [vector for vector in wanted if vector.column in names]
        self.payload_indexes: dict[str, Any] = info.get("payload_schema") or {}
        self.pushed: list[Condition] = []
        collection_vectors = {vector.column for vector in declared}
        self.layout = resolve_layout(options.payload_layout, schema, collection_vectors, self.sample is not None)
        if self.sample is None:
            keys = expected_keys(schema, self.layout, self.vector_names)
            check_carried(http, options, keys, collection_vectors)

    # -- planning --------------------------------------------------------------------------------

    @property
    def vector_names(self) -> dict[str, str]:
        return {vector.column: vector.name for vector in self.vectors}

    @property
    def payload_columns(self) -> list[str]:
        """The columns holding one payload key each (none in the struct and json layouts)."""
        if self.layout != "columns":
            return []
        return [name for name in self.schema.fieldNames() if name != ID_COLUMN and name not in self.vector_names]

    def pushFilters(self, filters: list[Filter]) -> list[Filter]:
        """Give Spark back the filters it must apply (the same objects); push the rest, where Spark allows.

        Spark pickles this reader right after this call into the read plan of the scan, so the pushed
        conditions travel with it. Where that plan is shared by every scan of the DataFrame (PySpark 4.x),
        nothing is pushed: see ``pushdown.pushdown_is_scan_scoped``.
        """
        if not pushdown_is_scan_scoped():
            return filters
        return self.push(filters)

    def push(self, filters: Sequence[Filter]) -> list[Filter]:
        """Push the filters Qdrant answers exactly, in place of any pushed before; return the others."""
        schema = self.schema
        if self.layout != "columns":  # filters on payload.* fields stay in Spark; ids are still pushed
            schema = StructType([field for field in schema.fields if field.name != PAYLOAD_COLUMN])
        translator = FilterTranslator(
            schema,
            list(self.vector_names),
            prefix_match=supports_slice(self.server_version),
            payload_indexes=self.payload_indexes,
        )
        self.pushed, kept = translator.split(filters)
        return kept

    @property
    def query_filter(self) -> dict | None:
        """The user's ``filter`` option and every pushed condition, all required."""
        return combine_filters(self.options.filter, conditions=self.pushed)

    def partitions(self) -> list[InputPartition]:
        """The read's splits, one per Spark task (``read_splits``)."""
        options = self.options
        if options.limit is not None or options.max_pages is not None or options.offset is not None:
            return list(single_split(options.offset, options.limit, options.max_pages))
        count = options.num_partitions or self.default_partitions or 1
        if count == 1:
            return [ReadSplit(index=0)]
        mode = options.partitioning
        if mode == "auto":
            mode = "slice" if supports_slice(self.server_version) else "id_range"
        if mode == "slice":
            return list(slice_splits(count))
        return list(id_range_splits(QdrantHttp(options), options.collection, self.query_filter, count))

    # -- reading ---------------------------------------------------------------------------------

    def scroll_request(self) -> dict[str, Any]:
        """What each scroll asks for: the payload keys of the schema and its vectors.

        A read of an inferred schema asks for the payload the sample was drawn from, so the keys the sample
        missed come back and are reported (``schema_findings``) instead of never being seen.
        """
        with_payload: Any = _listed(self.options.with_payload)
        if self.sample is None:
            with_payload = layout_request(self.layout, self.schema, self.payload_columns, with_payload)
            if self.layout == "columns" and not self.payload_columns:
                with_payload = False
        return {"with_payload": with_payload, "with_vector": _vector_request(self.vectors)}

    @property
    def sample(self) -> dict[str, Any] | None:
        """What an inferred schema was inferred from; None for a schema the user gave."""
        if ID_COLUMN not in self.schema.fieldNames():
            return None
        return self.schema[ID_COLUMN].metadata.get(INFERRED_METADATA_KEY)

    def read(self, partition: InputPartition) -> Iterator[pa.RecordBatch]:
        split = partition
        assert isinstance(split, ReadSplit)
        sample = self.sample
        findings = None
        if sample is not None:
            findings = SchemaFindings(
                self.options.schema_mismatch, self.options.collection, sample, partition=split.index
            )
        builder = PointBatchBuilder(
            self.schema, self.vector_names, self.options.collection, findings, layout=self.layout
        )
        try:
            yield from self._batches(builder, split)
        finally:
            if findings is not None:
                findings.warn()

    def _batches(self, builder: PointBatchBuilder, split: ReadSplit) -> Iterator[pa.RecordBatch]:
        """One Arrow batch per scroll page of ``split``; dense vectors come as numpy arrays, taken whole."""
        pages = scroll_pages(
            QdrantHttp(self.options),
            self.options.collection,
            page_size=self.options.page_size,
            filter=partition_filter(split, self.query_filter),
            start=split.start,
            end=split.end,
            limit=split.limit,
            max_pages=split.max_pages,
            vectors_as_arrays=True,
            **self.scroll_request(),
        )
        for page in read_ahead(pages):
            yield builder.to_batch(page.points)


@dataclass
class QdrantCommitMessage(WriterCommitMessage):
    """What one task wrote (also when it stopped on a Qdrant error): the driver settles the write with these."""

    points_written: int
    requests: int
    seconds: float
    ids: WrittenIds | None = None
    error: str | None = None
    error_type: str | None = None

    def outcome(self) -> TaskOutcome:
        return TaskOutcome(self.points_written, self.ids, self.error, self.error_type)


class QdrantArrowWriter(DataSourceArrowWriter):
    """One per task: Spark's Arrow batches straight into ``PointWriter`` (validated, batched upserts).

    Built on the driver (with the overwrite's staging collection, if any), pickled to every task and to
    ``commit``/``abort``. A task's Qdrant error is returned, not raised, so that the driver sees every
    task's count and ids and can say exactly what landed.
    """

    def __init__(self, options: WriteOptions, staging: Staging | None = None) -> None:
        self.options = options
        self.staging = staging
        self.points_written = 0

    def write(self, iterator: Iterator[pa.RecordBatch]) -> QdrantCommitMessage:
        import time

        from dagster_qdrant.errors import QdrantError
        from dagster_qdrant.points.points_to_qdrant import PointWriter

        options = self.staging.task_options(self.options) if self.staging else self.options
        writer = PointWriter(options)
        started = time.perf_counter()
        try:
            report = writer.write_batches(iterator)
        except QdrantError as error:
            written = int(getattr(error, "written", 0))
            return QdrantCommitMessage(
                written, 0, time.perf_counter() - started, None, str(error), type(error).__name__
            )
        ids = WrittenIds.of(writer.ids_seen)
        return QdrantCommitMessage(report.points_written, report.requests, report.seconds, ids)

    def commit(self, messages: list[WriterCommitMessage | None]) -> None:
        self.points_written = settle(self.options, self.staging, _outcomes(messages), aborting=False)

    def abort(self, messages: list[WriterCommitMessage | None]) -> None:
        """Spark calls this when a task or ``commit`` failed: roll an overwrite back, say what landed."""
        settle(self.options, self.staging, _outcomes(messages), aborting=True)


def _outcomes(messages: list[WriterCommitMessage | None]) -> list[TaskOutcome | None]:
    return [m.outcome() if isinstance(m, QdrantCommitMessage) else None for m in messages]


__all__ = [
    "QdrantArrowWriter",
    "QdrantCommitMessage",
    "QdrantDataSource",
    "QdrantReader",
    "infer_read_schema",
]
