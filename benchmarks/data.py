"""The generated data set every benchmark case reads: N points, d-dimensional float32 vectors, four payload fields.

The data is written once to a Parquet file so that Spark reads it the way a user's job would (from files, in
parallel, never through the driver), while the cases without Spark load the same rows as Arrow or numpy.
Generation is seeded, so two runs with the same N and d move the same bytes.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

CHUNK_ROWS = 50_000
ROW_GROUP_ROWS = 10_000
SEED = 20_240_605
PAYLOAD_FIELDS = ("count", "score", "label", "flag")


@dataclass(frozen=True)
class Dataset:
    """Where the generated rows live and their shape."""

    path: Path
    points: int
    dim: int

    @property
    def bytes_on_disk(self) -> int:
        return self.path.stat().st_size

    def table(self) -> pa.Table:
        """All rows as one Arrow table (ids, vectors as list<float32>, payload columns)."""
        return pq.read_table(self.path)

    def chunks(self, rows: int = CHUNK_ROWS) -> Iterator[pa.RecordBatch]:
        """Rows in record batches of about ``rows``, without holding the whole file."""
        yield from pq.ParquetFile(self.path).iter_batches(batch_size=rows)


def arrow_schema(dim: int) -> pa.Schema:
    """id, vector and the four payload kinds the issue asks for: int, float, string, bool."""
    return pa.schema(
        [
            pa.field("id", pa.int64(), nullable=False),
            pa.field("vector", pa.list_(pa.float32()), nullable=False),
            pa.field("count", pa.int64()),
            pa.field("score", pa.float64()),
            pa.field("label", pa.string()),
            pa.field("flag", pa.bool_()),
        ]
    )


def generate_batch(start: int, rows: int, dim: int, rng: np.random.Generator) -> pa.RecordBatch:
    """Rows ``start .. start+rows-1``: unit-length random vectors and payload derived from the id."""
    ids = np.arange(start, start + rows, dtype=np.int64)
    vectors = rng.standard_normal((rows, dim), dtype=np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    flat = pa.array(vectors.reshape(-1), type=pa.float32())
    offsets = pa.array(np.arange(0, (rows + 1) * dim, dim, dtype=np.int32))
    labels = pa.array([f"label-{value % 1000:04d}" for value in ids.tolist()], type=pa.string())
    return pa.RecordBatch.from_arrays(
        [
            pa.array(ids),
            pa.ListArray.from_arrays(offsets, flat),
            pa.array(ids % 97),
            pa.array(rng.random(rows)),
            labels,
            pa.array(ids % 2 == 0),
        ],
        schema=arrow_schema(dim),
    )


def generate_dataset(directory: Path, points: int, dim: int) -> Dataset:
    """Write the data set to ``directory/points-N-dD.parquet`` (reused if already there) and describe it."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"points-{points}-d{dim}.parquet"
    if not path.exists():
        rng = np.random.default_rng(SEED)
        partial = path.with_suffix(".partial")
        with pq.ParquetWriter(partial, arrow_schema(dim), compression="none") as writer:
            for start in range(0, points, CHUNK_ROWS):
                batch = generate_batch(start, min(CHUNK_ROWS, points - start), dim, rng)
                writer.write_batch(batch, row_group_size=ROW_GROUP_ROWS)
        partial.rename(path)
    return Dataset(path=path, points=points, dim=dim)


def columns(batch: pa.RecordBatch | pa.Table) -> tuple[list[int], np.ndarray, list[dict]]:
    """ids, an (n, d) float32 matrix and payload dicts: the shapes the non-Spark clients take."""
    ids = batch.column("id").to_numpy().tolist()
    vector_column = batch.column("vector")
    if isinstance(vector_column, pa.ChunkedArray):
        vector_column = vector_column.combine_chunks()
    dim = len(vector_column[0]) if len(vector_column) else 0
    vectors = vector_column.flatten().to_numpy(zero_copy_only=False).reshape(-1, dim)
    payload_table = pa.table({name: batch.column(name) for name in PAYLOAD_FIELDS})
    return ids, vectors, payload_table.to_pylist()
