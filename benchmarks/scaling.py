"""``python -m benchmarks.scaling``: the Spark write and read at growing N, to show cost grows linearly.

For each size (default 10k, 100k, 1M points of dimension 384) the data source writes the generated rows into a
fresh collection and reads them all back, against one embedded Qdrant. The summary gives, for the two largest
sizes, time(large)/time(small) next to the size ratio (linear means about equal; the goal is <= 1.1 times the
size ratio, i.e. <= 11 for 1M/100k) and the peak memory of Spark's Python workers during the largest read
(goal < 1 GB). ``--with-ceiling`` adds the HTTP ceiling at each size for reference.
Results: ``benchmarks/results/scaling.json`` and ``scaling.md``.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path
from typing import Any

from benchmarks import ceiling, spark
from benchmarks.data import generate_dataset
from benchmarks.measure import READ, WRITE, Result
from benchmarks.report import environment, write_outputs
from benchmarks.run import RESULTS, key_values
from benchmarks.server import qdrant_target

WORKER_MEMORY_GOAL_MB = 1024
LINEARITY_SLACK = 1.1


def parse_arguments(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.scaling", description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="10000,100000,1000000", help="comma-separated N values")
    parser.add_argument("--dim", type=int, default=384)
    parser.add_argument("--cores", type=int, default=None, help="Spark local cores (default: all)")
    parser.add_argument("--with-ceiling", action="store_true", help="also measure the HTTP ceiling at each size")
    parser.add_argument("--spark-write-option", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--spark-read-option", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--qdrant-url", default=None)
    parser.add_argument("--api-key", default=None)
    parser.add_argument("--out", type=Path, default=RESULTS, help="folder for scaling.json and scaling.md")
    parser.add_argument("--work-dir", type=Path, default=None)
    return parser.parse_args(argv)


def _seconds(results: list[Result], case: str, operation: str, points: int) -> float | None:
    for result in results:
        if (result.case, result.operation, result.points) == (case, operation, points):
            return result.seconds
    return None


def summarize(results: list[Result], sizes: list[int]) -> dict[str, Any]:
    """Growth of time between the two largest sizes and worker memory at the largest read, with the goals."""
    summary: dict[str, Any] = {"sizes": sizes}
    if len(sizes) >= 2:
        small, large = sizes[-2], sizes[-1]
        allowed = LINEARITY_SLACK * large / small
        for operation in (WRITE, READ):
            before = _seconds(results, "spark data source", operation, small)
            after = _seconds(results, "spark data source", operation, large)
            if before and after:
                summary[f"{operation}_time_ratio"] = {
                    "ratio": round(after / before, 2), "points_ratio": large / small,
                    "allowed": round(allowed, 2), "met": after / before <= allowed,
                }
    largest_read = [r for r in results if r.case == "spark data source" and r.operation == READ
                    and r.points == sizes[-1]]
    if largest_read:
        workers = largest_read[0].memory.get("groups", {}).get("workers", {})
        summary["largest_read_workers_mb"] = {
            "pss_total": workers.get("pss_mb"), "rss_total": workers.get("rss_mb"),
            "largest_process_rss": workers.get("largest_process_rss_mb"), "goal_below": WORKER_MEMORY_GOAL_MB,
            "met": workers.get("pss_mb") is not None and workers["pss_mb"] < WORKER_MEMORY_GOAL_MB,
        }
    return summary


def summary_notes(summary: dict[str, Any]) -> list[str]:
    notes = []
    for operation in (WRITE, READ):
        growth = summary.get(f"{operation}_time_ratio")
        if growth:
            notes.append(f"Spark {operation}: time grew {growth['ratio']}x for {growth['points_ratio']:.0f}x the points "
                         f"(goal <= {growth['allowed']}): {'met' if growth['met'] else 'NOT met'}.")
    memory = summary.get("largest_read_workers_mb")
    if memory:
        notes.append(f"Python workers during the largest read: {memory['pss_total']} MB PSS in total, largest process "
                     f"{memory['largest_process_rss']} MB RSS (goal < {memory['goal_below']} MB): "
                     f"{'met' if memory['met'] else 'NOT met'}.")
    return notes


def main(argv: list[str] | None = None) -> int:
    arguments = parse_arguments(argv)
    sizes = sorted(int(size) for size in arguments.sizes.split(",") if size.strip())
    results: list[Result] = []
    first_use: dict[str, float] = {}
    load_before = environment()["load_average"]
    with tempfile.TemporaryDirectory(prefix="dagster-qdrant-scaling-", dir=arguments.work_dir) as scratch:
        work_dir = Path(scratch)
        with qdrant_target(arguments.qdrant_url, arguments.api_key, work_dir / "qdrant") as target:
            session = spark.start_spark(arguments.cores)
            try:
                first_use = spark.warm_up(session, target, generate_dataset(work_dir / "data", 1000, arguments.dim))
                print(f"First data source write/read of the session (untimed): {first_use}", flush=True)
                for size in sizes:
                    dataset = generate_dataset(work_dir / "data", size, arguments.dim)
                    print(f"N = {size:,} (dim {arguments.dim})", flush=True)
                    collection = f"scale_{size}"
                    for result in (
                        spark.measure_write(session, target, dataset, collection,
                                            key_values(arguments.spark_write_option)),
                        spark.measure_read(session, target, dataset, collection,
                                           key_values(arguments.spark_read_option)),
                    ):
                        results.append(result)
                        print(f"  spark {result.operation:5s} {result.seconds:8.2f} s = "
                              f"{result.points_per_second:>10,.0f} points/s", flush=True)
                    target.delete_collection(collection)
                    if arguments.with_ceiling:
                        table = dataset.table()
                        tuned_write = ceiling.tune_write(target, dataset, table, collection, 20_000)
                        write = ceiling.measure_write(target, dataset, table, collection, tuned_write)
                        tuned_read = ceiling.tune_read(target, dataset, collection, 20_000)
                        read = ceiling.measure_read(target, dataset, collection, tuned_read)
                        write.details["tuning"], read.details["tuning"] = tuned_write, tuned_read
                        for result in (write, read):
                            results.append(result)
                            print(f"  ceiling {result.operation:5s} {result.seconds:8.2f} s = "
                                  f"{result.points_per_second:>10,.0f} points/s", flush=True)
                        del table
                        target.delete_collection(collection)
                    dataset.path.unlink()
            finally:
                spark.stop_spark(session)
    summary = summarize(results, sizes)
    notes = summary_notes(summary) + [
        f"Spark's first write/read of the session (1000 rows, before the timed runs): {first_use}.",
        f"Load average before the run {load_before}, after {environment()['load_average']}."]
    print("\n" + "\n".join(notes))
    parameters = {"sizes": ",".join(map(str, sizes)), "dim": arguments.dim, "cores": arguments.cores or "all"}
    json_path, markdown_path = write_outputs(arguments.out, "scaling", "dagster_qdrant scaling", parameters,
                                             results, notes, {"summary": summary})
    print(f"Written {json_path} and {markdown_path}")
    return 0 if all(result.verified is not False for result in results) else 1


if __name__ == "__main__":
    raise SystemExit(main())
