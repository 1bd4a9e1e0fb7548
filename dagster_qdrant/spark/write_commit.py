"""The driver's side of a Spark write: staging for ``mode("overwrite")``, the commit and the abort.

Why a write is settled on the driver rather than in each task: only the driver sees every task, so only
it can tell that two tasks wrote the same id (each task refuses repeats within itself), how many points
landed in all, and whether an overwrite may replace the target. Tasks therefore never raise a Qdrant error:
they hand it back in their commit message with what they wrote, and ``settle`` decides.

Overwrite: the tasks write into a fresh staging collection (a version of the target, see
``collections.py``), created on the driver with the target's configuration and payload indexes. Commit:

- target is an alias: one atomic alias update serves the staging collection, then the old one is dropped;
  readers see the old points or the new ones, never a mix, never none;
- target is a plain collection: the staged points are upserted into it, then the target's points that the
  staging collection lacks are deleted, then the staging collection is dropped; readers never see fewer
  points than the smaller of the old and the new set;
- anything refused (a bad value, duplicate ids, a task failure): the staging collection is dropped and the
  target is left exactly as it was.

A killed writer leaves at most a staging collection. Its name records the Spark driver's JVM (the
planning Python worker's ancestor), so a later overwrite of the same target on this host sweeps it as
soon as that JVM is gone; from another host, once it is older than ``collections.STALE_AFTER_SECONDS``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from dagster_qdrant import collection_versions as versions
from dagster_qdrant import collections as lifecycle
from dagster_qdrant.errors import QdrantDataError, QdrantError, QdrantWriteError, collection_not_found
from dagster_qdrant.http import QdrantHttp
from dagster_qdrant.options import WriteOptions

_SHOWN_IDS = 10


@dataclass
class WrittenIds:
    """The ids one task wrote, compactly: integer ids as one uint64 array, UUIDs as one array of their text."""

    integers: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=np.uint64))
    uuids: np.ndarray = field(default_factory=lambda: np.empty(0, dtype="S36"))

    @classmethod
    def of(cls, ids: Iterable[Any]) -> WrittenIds:
        integers, uuids = [], []
        for point_id in ids:
            (integers if isinstance(point_id, int) else uuids).append(point_id)
        return cls(np.array(integers, dtype=np.uint64), np.array([u.encode() for u in uuids], dtype="S36"))

    def __len__(self) -> int:
        return len(self.integers) + len(self.uuids)


def _joined(parts: Sequence[WrittenIds], kind: str) -> np.ndarray:
    empty = np.empty(0, dtype=np.uint64 if kind == "integers" else "S36")
    return np.concatenate([empty, *(getattr(part, kind) for part in parts)])


def repeated_ids(parts: Sequence[WrittenIds]) -> list[Any]:
    """Ids written by more than one task (each task's own ids are already distinct)."""
    repeated: list[Any] = []
    for kind in ("integers", "uuids"):
        values, counts = np.unique(_joined(parts, kind), return_counts=True)
        repeated += [int(v) if kind == "integers" else v.decode() for v in values[counts > 1]]
    return repeated


def distinct_ids(parts: Sequence[WrittenIds]) -> int:
    return sum(len(np.unique(_joined(parts, kind))) for kind in ("integers", "uuids"))


@dataclass(frozen=True)
class TaskOutcome:
    """What one task did: points it wrote (also when it failed part way), its ids, its error."""

    points_written: int
    ids: WrittenIds | None
    error: str | None = None
    error_type: str | None = None


@dataclass(frozen=True)
class Staging:
    """Where the tasks of an overwrite write, and what it replaces."""

    target: str
    staging: str
    target_existed: bool

    @classmethod
    def prepare(cls, options: WriteOptions) -> Staging:
        """On the driver, before any task: sweep dead stagings, create a fresh one like the target."""
        http = QdrantHttp(options)
        target = options.collection
        info = http.collection_info(target)
        if info is None and not options.create_collection:
            raise collection_not_found(
                target, http.endpoint, "mode('overwrite') replaces an existing collection: create it, or write "
                "with create_collection=True",
            )
        versions.sweep(http, target)
        staging = versions.new_version_name(target, owner=versions.Owner.java_ancestor())
        if info is not None:
            lifecycle.create_like(http, staging, info, versions.lease_metadata())
        return cls(target, staging, info is not None)

    def task_options(self, options: WriteOptions) -> WriteOptions:
        """The tasks' options: the staging collection, created by the tasks only when the target was missing."""
        return dataclasses.replace(
            options, collection=self.staging, create_collection=options.create_collection and not self.target_existed
        )

    def commit(self, options: WriteOptions, expected_points: int | None) -> int:
        """Replace the target by the staged points; returns how many points it holds now."""
        http = QdrantHttp(options)
        staged = http.count(self.staging, exact=True) if http.collection_exists(self.staging) else None
        if staged is None and not self.target_existed:
            return 0  # nothing written and nothing there: the target stays missing
        if staged is None:
            raise QdrantWriteError(
                f"The overwrite of {self.target!r} lost its staging collection {self.staging!r} (dropped by "
                f"another writer's sweep?); {self.target!r} is unchanged: run the write again",
                failed=None,
                collection=self.target,
            )
        if expected_points is not None and staged != expected_points:
            self.drop(options)
            raise QdrantWriteError(
                f"The overwrite of {self.target!r} staged {staged} points but its tasks wrote {expected_points} "
                f"distinct ids; {self.target!r} is unchanged and the staging collection was dropped: run the "
                "write again",
                failed=None,
                collection=self.target,
            )
        if versions.alias_target(http, self.target) is not None:
            previous = versions.swap_alias(http, self.target, self.staging)
            if previous is not None and previous != self.staging:
                versions.drop_quietly(http, previous)
            versions.sweep(http, self.target)
            return staged
        if http.collection_info(self.target) is None:
            lifecycle.create_like(http, self.target, http.collection_info(self.staging) or {})
        # Marked first: an abort after this point keeps the staged points, the only whole copy of the new set.
        versions.mark_served(http, self.staging)
        lifecycle.replace_points(http, self.staging, self.target, write_method=options.write_method)
        versions.drop_quietly(http, self.staging)
        return http.count(self.target, exact=True)

    def drop(self, options: WriteOptions) -> bool:
        """Roll back: drop the staging collection (or, when the server cannot be reached, record on this host
        that it is given up, so that the next overwrite's sweep drops it)."""
        try:
            return versions.drop_quietly(QdrantHttp(options), self.staging)
        except QdrantError:
            versions.mark_settled(self.staging)
            return False

    def commit_began(self, options: WriteOptions) -> bool | None:
        """Whether a commit started copying into the target (None: the server cannot say now)."""
        try:
            return versions.is_served(QdrantHttp(options), self.staging)
        except QdrantError:
            return None


def settle(
    options: WriteOptions, staging: Staging | None, outcomes: Sequence[TaskOutcome | None], *, aborting: bool
) -> int:
    """Commit or abort the write the tasks did; raises, saying what landed, when it cannot commit."""
    target = options.collection
    finished = [outcome for outcome in outcomes if outcome is not None]
    landed = sum(outcome.points_written for outcome in finished)
    errors = [outcome for outcome in finished if outcome.error is not None]
    lost_tasks = len(outcomes) - len(finished)
    ids = [outcome.ids for outcome in finished if outcome.ids is not None]
    repeated = repeated_ids(ids) if options.id_field is not None else []
    if len(ids) == len(finished) - len(errors):  # every finished task sent its ids: points, not rows
        landed = distinct_ids(ids) + sum(outcome.points_written for outcome in errors)
    if not errors and not repeated and not aborting and lost_tasks == 0:
        if staging is None:
            return landed
        expected = distinct_ids(ids) if len(ids) == len(finished) else None
        return staging.commit(options, expected)
    began = (staging.commit_began(options) if aborting else False) if staging is not None else False
    if staging is not None and began:
        where = (
            f"the commit stopped while copying the staged points into {target!r}, which may hold old and new "
            f"points together; the staged points are kept in {staging.staging!r}: run the overwrite again"
        )
    elif staging is not None and began is None:
        staging.drop(options)
        where = (
            f"Qdrant could not be reached to roll the overwrite back: {target!r} is unchanged unless the commit "
            f"had begun copying into it; the staging collection {staging.staging!r} is dropped by the next "
            "overwrite: run it again"
        )
    elif staging is not None:
        staging.drop(options)
        where = f"the overwrite was rolled back: {target!r} is unchanged (the {landed} staged points were dropped)"
    else:
        unknown = f", plus what the {lost_tasks} task(s) that failed outside this data source wrote" if lost_tasks else ""
        where = f"{landed} points landed in {target!r}{unknown}"
    if repeated:
        raise QdrantDataError(
            f"Duplicate ids across the tasks of one write (column {options.id_field!r}): {repeated[:_SHOWN_IDS]}; "
            f"a later row would silently replace an earlier one, so give every row its own id; {where}",
            collection=target,
            point_ids=repeated,
        )
    causes = "; ".join(f"{outcome.error_type}: {outcome.error}" for outcome in errors[:3]) or "a task failed"
    raise QdrantWriteError(
        f"Writing to {target!r} failed in {len(errors) + lost_tasks} of {len(outcomes)} task(s) ({causes}); {where}",
        written=0 if staging is not None else landed,
        failed=None,
        collection=target,
    )


__all__ = ["Staging", "TaskOutcome", "WrittenIds", "distinct_ids", "repeated_ids", "settle"]
