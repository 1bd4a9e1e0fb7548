"""One measured figure: which case, how many points in how long, the memory peaks, and whether it was verified."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from benchmarks.memory import MemorySampler

WRITE = "write"
READ = "read"


@dataclass
class Result:
    """A measurement. ``points / seconds`` is the figure; ``verified`` says the server or Spark saw every point."""

    case: str
    operation: str
    points: int
    seconds: float
    memory: dict[str, Any] = field(default_factory=dict)
    verified: bool | None = None
    settings: dict[str, Any] = field(default_factory=dict)
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def points_per_second(self) -> float:
        return self.points / self.seconds if self.seconds > 0 else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "case": self.case,
            "operation": self.operation,
            "points": self.points,
            "seconds": round(self.seconds, 4),
            "points_per_second": round(self.points_per_second, 1),
            "verified": self.verified,
            "settings": self.settings,
            "memory": self.memory,
            "details": self.details,
        }


def timed(
    case: str,
    operation: str,
    action: Callable[[], int],
    *,
    server_pid: int | None,
    settings: dict[str, Any] | None = None,
    sample_memory: bool = True,
) -> Result:
    """Run ``action`` (which returns how many points it moved) under the clock and the memory sampler."""
    sampler = MemorySampler(server_pid=server_pid) if sample_memory else None
    if sampler is not None:
        sampler.start()
    started = time.perf_counter()
    try:
        points = action()
    finally:
        seconds = time.perf_counter() - started
        report = sampler.stop() if sampler is not None else None
    return Result(
        case=case,
        operation=operation,
        points=points,
        seconds=seconds,
        memory=report.as_dict() if report is not None else {},
        settings=dict(settings or {}),
    )
