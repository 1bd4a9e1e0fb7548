"""Peak memory of the processes a benchmark case uses, sampled from /proc in a background thread.

Every sample walks the process tree once and sums resident memory per group:

- ``driver``: this Python process alone (it holds the generated data, so cases report its growth);
- ``children``: this process's other descendants (qdrant-client's parallel upload workers, ...);
- ``jvm``: the Spark JVM (a ``java`` descendant of this process);
- ``workers``: Spark's Python workers and their daemon (descendants of the JVM);
- ``server``: the embedded Qdrant server and its descendants.

For each group the peak of the sum of RSS and of PSS (resident set with shared pages split between the sharers,
which is what forked Python workers really cost together) and the largest single process RSS are kept. psutil is
not needed: /proc is read directly (Linux only; elsewhere the figures are empty).
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

PROC = Path("/proc")
PAGE_BYTES = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096
MIB = 1024 * 1024


@dataclass
class GroupPeak:
    """Peak figures of one group of processes, in bytes."""

    rss: int = 0
    pss: int = 0
    largest_process_rss: int = 0
    processes: int = 0

    def as_dict(self) -> dict[str, float]:
        return {
            "rss_mb": round(self.rss / MIB, 1),
            "pss_mb": round(self.pss / MIB, 1),
            "largest_process_rss_mb": round(self.largest_process_rss / MIB, 1),
            "processes": self.processes,
        }


@dataclass
class MemoryReport:
    """What a sampler saw: per-group peaks and the driver's RSS when sampling started."""

    groups: dict[str, GroupPeak] = field(default_factory=dict)
    driver_start_rss: int = 0
    samples: int = 0
    cpu_seconds: dict[str, float] = field(default_factory=dict)

    def as_dict(self) -> dict[str, object]:
        driver = self.groups.get("driver", GroupPeak())
        return {
            "groups": {name: peak.as_dict() for name, peak in self.groups.items() if peak.processes},
            "driver_growth_mb": round(max(0, driver.rss - self.driver_start_rss) / MIB, 1),
            "cpu_seconds": {name: round(value, 2) for name, value in self.cpu_seconds.items() if value},
            "samples": self.samples,
        }


def _process_table() -> dict[int, tuple[int, str]]:
    """pid -> (parent pid, command name) for every process visible in /proc."""
    table: dict[int, tuple[int, str]] = {}
    for entry in PROC.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # The command name is in parentheses and may contain spaces; fields after it are positional.
        name = stat[stat.index("(") + 1 : stat.rindex(")")]
        parent = int(stat[stat.rindex(")") + 2 :].split()[1])
        table[int(entry.name)] = (parent, name)
    return table


def _descendants(root: int, table: dict[int, tuple[int, str]]) -> set[int]:
    children: dict[int, list[int]] = {}
    for pid, (parent, _) in table.items():
        children.setdefault(parent, []).append(pid)
    found: set[int] = set()
    stack = [root]
    while stack:
        for child in children.get(stack.pop(), []):
            if child not in found:
                found.add(child)
                stack.append(child)
    return found


def _rss(pid: int) -> int:
    try:
        fields = (PROC / str(pid) / "statm").read_text().split()
    except OSError:
        return 0
    return int(fields[1]) * PAGE_BYTES


CLOCK_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _cpu_seconds(pid: int) -> float | None:
    """User + system CPU time the process has used so far (all its threads)."""
    try:
        stat = (PROC / str(pid) / "stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def _pss(pid: int) -> int:
    try:
        for line in (PROC / str(pid) / "smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return _rss(pid)


def classify(driver: int, server: int | None) -> dict[str, set[int]]:
    """Split the driver's and the server's process trees into the groups described in the module docstring."""
    table = _process_table()
    server_tree = set()
    if server is not None and server in table:
        server_tree = {server} | _descendants(server, table)
    below_driver = _descendants(driver, table) - server_tree
    jvm = {pid for pid in below_driver if table[pid][1] == "java"}
    workers: set[int] = set()
    for pid in jvm:
        workers |= _descendants(pid, table)
    children = below_driver - jvm - workers
    return {"driver": {driver}, "children": children, "jvm": jvm, "workers": workers, "server": server_tree}


class MemorySampler:
    """Samples process-tree memory between ``start()`` and ``stop()``, cheaply enough not to skew the figures.

    Walking /proc to find the processes costs about 20 ms and reading PSS can cost far more, so the tree is
    walked and PSS read every ``slow_interval`` seconds, and RSS of the known processes every ``interval``.
    """

    def __init__(
        self, server_pid: int | None = None, interval: float = 0.2, slow_interval: float = 1.0, with_pss: bool = True
    ) -> None:
        self.server_pid = server_pid
        self.interval = interval
        self.slow_interval = slow_interval
        self.with_pss = with_pss and PROC.exists()
        self.report = MemoryReport()
        self._groups: dict[str, set[int]] = {}
        self._last_slow = 0.0
        self._starting = False
        self._cpu_first: dict[int, float] = {}
        self._cpu_last: dict[int, tuple[str, float]] = {}
        self._stopped = threading.Event()
        self._thread: threading.Thread | None = None

    def sample(self, slow: bool | None = None) -> None:
        """Take one sample now and fold it into the peaks (``slow``: also re-walk the tree and read PSS)."""
        if not PROC.exists():
            return
        now = time.monotonic()
        if slow is None:
            slow = now - self._last_slow >= self.slow_interval
        if slow or not self._groups:
            self._groups = classify(os.getpid(), self.server_pid)
            self._last_slow = now
        for name, pids in self._groups.items():
            if slow:
                self._account_cpu(name, pids)
            sizes = [_rss(pid) for pid in pids]
            peak = self.report.groups.setdefault(name, GroupPeak())
            peak.rss = max(peak.rss, sum(sizes))
            peak.largest_process_rss = max(peak.largest_process_rss, max(sizes, default=0))
            peak.processes = max(peak.processes, sum(1 for size in sizes if size))
            if self.with_pss and name in ("workers", "children"):
                if slow and pids:
                    peak.pss = max(peak.pss, sum(_pss(pid) for pid in pids))
            else:
                peak.pss = peak.rss
        self.report.samples += 1

    def _account_cpu(self, name: str, pids: set[int]) -> None:
        """CPU used since start: a process seen at start counts from there, a newer one from zero."""
        for pid in pids:
            used = _cpu_seconds(pid)
            if used is None:
                continue
            self._cpu_first.setdefault(pid, used if self._starting else 0.0)
            self._cpu_last[pid] = (name, used)
        totals: dict[str, float] = {}
        for pid, (group, used) in self._cpu_last.items():
            totals[group] = totals.get(group, 0.0) + used - self._cpu_first[pid]
        self.report.cpu_seconds = totals

    def _run(self) -> None:
        while not self._stopped.wait(self.interval):
            self.sample()

    def start(self) -> MemorySampler:
        self.report = MemoryReport(driver_start_rss=_rss(os.getpid()))
        self._cpu_first.clear()
        self._cpu_last.clear()
        self._starting = True
        self.sample(slow=True)
        self._starting = False
        self._stopped.clear()
        self._thread = threading.Thread(target=self._run, name="memory-sampler", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> MemoryReport:
        self._stopped.set()
        if self._thread is not None:
            self._thread.join()
        self.sample(slow=True)
        return self.report
