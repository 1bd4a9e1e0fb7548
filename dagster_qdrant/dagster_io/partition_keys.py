"""Which partition each row of a run belongs to, when one run writes several (a single-run backfill, a range).

As in Dagster's database IO managers, the asset names the column that holds each row's partition in its
``partition_expr`` metadata; here the column holds the partition key as Dagster names it (a time window's
key such as ``2024-05-03``, a multi-partition key such as ``2024-05-03|b``), which becomes the point's
partition payload field. Every row's key is checked against the run's partitions before anything is
deleted, so a row of another partition, or of none, fails the run with the collection untouched.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Optional

from dagster import MetadataValue, OutputContext

from dagster_qdrant.errors import QdrantConfigError

PARTITION_EXPR = "partition_expr"
"""The definition-metadata key (Dagster's) naming the column with each row's partition key."""


def partition_column(context: OutputContext, keys: Sequence[str], columns: Sequence[str]) -> Optional[str]:
    """The ``partition_expr`` column that gives each row its partition key (None: the run has one key)."""
    column = _plain((context.definition_metadata or {}).get(PARTITION_EXPR))
    asset = context.asset_key.to_user_string()
    if column is None:
        if len(keys) != 1:
            raise QdrantConfigError(
                f"{asset}: one run writes {len(keys)} partitions ({keys[0]!r} to {keys[-1]!r}), so each row "
                "must say which one it belongs to: set the asset's metadata 'partition_expr' to the column "
                "holding each row's partition key (e.g. metadata={'partition_expr': 'day'}), or backfill "
                "one partition per run (BackfillPolicy.multi_run(1))"
            )
        return None
    if not isinstance(column, str):
        raise QdrantConfigError(
            f"{asset}: metadata 'partition_expr' is {column!r}; it must name one column holding each row's "
            "partition key as Dagster writes it (for a multi-partitioned asset the whole key, e.g. '2024-05-03|b')"
        )
    if column not in columns:
        raise QdrantConfigError(
            f"{asset}: metadata 'partition_expr' names the column {column!r}, which the DataFrame does not "
            f"have; it has {list(columns)!r}"
        )
    return column


def check_partition_keys(
    context: OutputContext, column: str, keys: Sequence[str], counts: Mapping[Optional[str], int]
) -> None:
    """Every row's key is one of the run's partitions: else nothing is deleted or written."""
    asset = context.asset_key.to_user_string()
    missing = counts.get(None, 0)
    if missing:
        raise QdrantConfigError(
            f"{asset}: {missing} row(s) have no partition key in column {column!r} (partition_expr): give every "
            "row the key of its partition"
        )
    outside = sorted(key for key in counts if key is not None and key not in set(keys))
    if outside:
        shown = ", ".join(f"{key!r} ({counts[key]} rows)" for key in outside[:5])
        more = f" and {len(outside) - 5} more" if len(outside) > 5 else ""
        raise QdrantConfigError(
            f"{asset}: column {column!r} (partition_expr) holds keys outside the partitions of this run "
            f"({keys[0]!r} to {keys[-1]!r}, {len(keys)} partitions): {shown}{more}; nothing was written. "
            "Keep only the rows of the run's partitions (context.partition_keys), keyed as Dagster names them"
        )


def _plain(value: Any) -> Any:
    return value.value if isinstance(value, MetadataValue) else value


__all__ = ["PARTITION_EXPR", "check_partition_keys", "partition_column"]
