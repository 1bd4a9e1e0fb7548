"""``write_qdrant_points`` without Spark: the whole Arrow table in one call, with the library's defaults."""

from __future__ import annotations

import dataclasses
from typing import Any

import pyarrow as pa

from benchmarks.data import Dataset
from benchmarks.measure import WRITE, Result, timed
from benchmarks.server import Target


def measure_write(
    target: Target, dataset: Dataset, table: pa.Table, collection: str, options: dict[str, Any] | None = None
) -> Result:
    from dagster_qdrant import build_qdrant_write_config, write_qdrant_points

    target.create_collection(collection, dataset.dim)
    config = build_qdrant_write_config(target.url, collection, api_key=target.api_key, **(options or {}))
    report: dict[str, Any] = {}

    def write() -> int:
        outcome = write_qdrant_points(table, config)
        if dataclasses.is_dataclass(outcome):
            report.update(dataclasses.asdict(outcome))
        return dataset.points

    result = timed("write_qdrant_points", WRITE, write, server_pid=target.pid, settings=dict(options or {}))
    result.verified = target.count(collection) == dataset.points
    result.details = {"report": {key: value for key, value in report.items() if isinstance(value, (int, float, str))}}
    return result
