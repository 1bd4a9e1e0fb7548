"""``python -m benchmarks.run``: every way to move points in and out of Qdrant, side by side, in one run.

One embedded Qdrant (started in a temporary directory, or ``--qdrant-url``), one generated data set (N points,
d-dimensional float32 vectors, int/float/string/bool payload), and for each part its points/s and peak memory:

- ``ceiling``: the HTTP path's ceiling (pre-encoded columnar bodies, tight loop; large-page scroll);
- ``spark``: this data source through Spark, write and read;
- ``points``: ``write_qdrant_points`` without Spark;
- ``client``: the official qdrant-client over REST at its defaults and at its best settings;
- ``edge``: the engine's in-process ingest and scroll (no HTTP), for reference.

The best settings of the ceiling and of qdrant-client are tried once on a sample; then every case runs once per
round, for ``--rounds`` rounds (default 3), and each figure is the case's median round. The table (with ours /
ceiling and ours / qdrant-client) is printed and written to ``benchmarks/results/run.json`` (every round too)
and ``run.md`` (``--out`` to change the folder).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path
from typing import Any

import pyarrow as pa

from benchmarks import ceiling, client, edge, points, spark
from benchmarks.data import Dataset, generate_dataset
from benchmarks.measure import WRITE, Result
from benchmarks.report import ceiling_over_defaults, environment, text_table, write_outputs
from benchmarks.server import Target, qdrant_target

PARTS = ("ceiling", "spark", "points", "client", "edge")
RESULTS = Path(__file__).resolve().parent / "results"
READ_COLLECTION = "bench_read"


def parse_arguments(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.run", description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=200_000, help="points in the data set (default 200000)")
    parser.add_argument("--dim", type=int, default=384, help="vector dimension (default 384)")
    parser.add_argument("--rounds", type=int, default=3,
                        help="measure every case this many times, interleaved; the table shows medians (default 3)")
    parser.add_argument("--skip", default="", help=f"comma-separated parts to leave out: {','.join(PARTS)}")
    parser.add_argument("--only", default="", help="comma-separated parts to run (default: all)")
    parser.add_argument("--tune-points", type=int, default=20_000,
                        help="sample size on which the ceiling's and qdrant-client's best settings are chosen")
    parser.add_argument("--client-default-read-cap", type=int, default=None,
                        help="stop qdrant-client's default scroll (10 per page) after this many points")
    parser.add_argument("--cores", type=int, default=None, help="Spark local cores (default: all)")
    parser.add_argument("--spark-write-option", action="append", default=[], metavar="KEY=VALUE",
                        help="extra option for the Spark write (repeatable), e.g. batch_size=512")
    parser.add_argument("--spark-read-option", action="append", default=[], metavar="KEY=VALUE",
                        help="extra option for the Spark read (repeatable), e.g. page_size=1024")
    parser.add_argument("--qdrant-url", default=None, help="use this running Qdrant instead of an embedded one")
    parser.add_argument("--api-key", default=None, help="API key for --qdrant-url")
    parser.add_argument("--out", type=Path, default=RESULTS, help="folder for run.json and run.md")
    parser.add_argument("--work-dir", type=Path, default=None, help="where the data and server files go (temp)")
    return parser.parse_args(argv)


def selected_parts(arguments: argparse.Namespace) -> list[str]:
    names = [name.strip() for name in (arguments.only or ",".join(PARTS)).split(",") if name.strip()]
    skipped = {name.strip() for name in arguments.skip.split(",") if name.strip()}
    unknown = sorted((set(names) | skipped) - set(PARTS))
    if unknown:
        raise SystemExit(f"Unknown part(s) {unknown}: choose among {', '.join(PARTS)}")
    return [name for name in PARTS if name in names and name not in skipped]


def key_values(pairs: list[str]) -> dict[str, str]:
    found = {}
    for pair in pairs:
        key, separator, value = pair.partition("=")
        if not separator:
            raise SystemExit(f"Option {pair!r} is not KEY=VALUE")
        found[key.strip()] = value.strip()
    return found


def _announce(result: Result) -> Result:
    mark = "" if result.verified is not False else "  (NOT VERIFIED)"
    print(f"  {result.case:26s} {result.operation:5s} {result.points:>10,} in {result.seconds:8.2f} s = "
          f"{result.points_per_second:>10,.0f} points/s{mark}", flush=True)
    return result


def tune(
    parts: list[str], target: Target, dataset: Dataset, table: pa.Table, tune_points: int
) -> dict[str, Any]:
    """Settings tried once on a sample before the rounds: the ceiling's and qdrant-client's best.

    Also loads the collection every read scrolls (the ceiling's write rewrites it in each round)."""
    tuned: dict[str, Any] = {}
    if "ceiling" in parts:
        tuned["ceiling_write"] = ceiling.tune_write(target, dataset, table, READ_COLLECTION, tune_points)
    if {"ceiling", "spark", "client"} & set(parts):
        target.create_collection(READ_COLLECTION, dataset.dim)
        ceiling.send_bodies(target, READ_COLLECTION, ceiling.encode_bodies(table, 1024), 2)
    if "ceiling" in parts:
        tuned["ceiling_read"] = ceiling.tune_read(target, dataset, READ_COLLECTION, tune_points)
    if "client" in parts:
        tuned["client_write"] = client.tune_write_best(target, dataset, table, "bench_client", tune_points)
        tuned["client_read"] = client.tune_read_best(target, dataset, READ_COLLECTION, tune_points)
        target.delete_collection("bench_client")
    return tuned


def run_round(
    parts: list[str], arguments: argparse.Namespace, target: Target, dataset: Dataset, table: pa.Table,
    tuned: dict[str, Any], session: Any, work_dir: Path,
) -> list[Result]:
    """Every selected case once, in a fixed order (so that rounds line up case by case)."""
    results: list[Result] = []
    if "ceiling" in parts:
        results.append(_announce(
            ceiling.measure_write(target, dataset, table, READ_COLLECTION, tuned["ceiling_write"])))
        results.append(_announce(ceiling.measure_read(target, dataset, READ_COLLECTION, tuned["ceiling_read"])))
    if "spark" in parts:
        # Spark stops Python workers idle for a minute: each round starts them untimed (round 1: the session's
        # first use of the data source, whose cost the notes report)
        warm_up = spark.warm_up(session, target, dataset)
        write = _announce(spark.measure_write(
            session, target, dataset, "bench_spark", key_values(arguments.spark_write_option)))
        write.details["warm_up"] = warm_up
        results.append(write)
        target.delete_collection("bench_spark")
        results.append(_announce(spark.measure_read(
            session, target, dataset, READ_COLLECTION, key_values(arguments.spark_read_option))))
    if "points" in parts:
        results.append(_announce(points.measure_write(target, dataset, table, "bench_points")))
        target.delete_collection("bench_points")
    if "client" in parts:
        results.append(_announce(client.measure_write_defaults(target, dataset, table, "bench_client")))
        results.append(_announce(
            client.measure_write_best(target, dataset, table, "bench_client", tuned["client_write"])))
        target.delete_collection("bench_client")
        results.append(_announce(client.measure_read_defaults(
            target, dataset, READ_COLLECTION, arguments.client_default_read_cap)))
        results.append(_announce(client.measure_read_best(target, dataset, READ_COLLECTION, tuned["client_read"])))
    if "edge" in parts:
        for result in edge.measure(dataset, table, work_dir):
            results.append(_announce(result))
    return results


def median_results(rounds: list[list[Result]]) -> list[Result]:
    """For each case, the round with the median points/s (the lower middle one for an even count).

    One run of a case on a shared 2-CPU machine moves by up to ±30%; interleaved rounds expose every case to
    the same spells of load, and the median keeps one slow or fast spell from deciding a ratio. Each chosen
    result lists every round's points/s in ``details["rounds_points_per_second"]``.
    """
    chosen = []
    for runs in zip(*rounds):
        ordered = sorted(runs, key=lambda result: result.points_per_second)
        median = ordered[(len(ordered) - 1) // 2]
        median.details["rounds_points_per_second"] = [round(result.points_per_second, 1) for result in runs]
        chosen.append(median)
    return chosen


def run_parts(
    arguments: argparse.Namespace, target: Target, work_dir: Path
) -> tuple[list[list[Result]], list[str], dict[str, Any]]:
    """Tune once, then ``--rounds`` rounds of every selected case; returns each round's results, notes, tuning."""
    parts = selected_parts(arguments)
    dataset = generate_dataset(work_dir / "data", arguments.n, arguments.dim)
    table = dataset.table()
    notes: list[str] = []
    print(f"Data: {dataset.points:,} points, dim {dataset.dim}, parquet {dataset.bytes_on_disk / 1e6:.0f} MB; "
          f"Qdrant {target.url} (version {target.version()}); parts: {', '.join(parts)}; "
          f"{arguments.rounds} round(s)", flush=True)
    tuned = tune(parts, target, dataset, table, arguments.tune_points)
    session = spark.start_spark(arguments.cores) if "spark" in parts else None
    rounds: list[list[Result]] = []
    try:
        for number in range(1, arguments.rounds + 1):
            print(f"Round {number} of {arguments.rounds}", flush=True)
            rounds.append(run_round(parts, arguments, target, dataset, table, tuned, session, work_dir))
    finally:
        if session is not None:
            spark.stop_spark(session)
    for result in rounds[0]:
        if result.case == "http ceiling" and result.operation == WRITE:
            notes.append(f"HTTP ceiling write sends bodies encoded before the clock starts; encoding them alone ran "
                         f"at {result.details['encode_points_per_second']:,.0f} points/s.")
        if result.case == "spark data source" and result.operation == WRITE:
            first_use = result.details["warm_up"]
            notes.append(f"Spark's first data source write and read in a session (a few rows, untimed above) took "
                         f"{first_use['first_write_seconds']:.1f} s and {first_use['first_read_seconds']:.1f} s: "
                         "Python worker start-up and planning, independent of N.")
            notes.append(f"Spark write includes reading its Parquet input: the same plan into the noop sink takes "
                         f"{result.details['parquet_source_seconds']:.2f} s; "
                         f"{result.details['input_partitions']} input partitions.")
    return rounds, notes, tuned


def main(argv: list[str] | None = None) -> int:
    arguments = parse_arguments(argv)
    selected_parts(arguments)
    if arguments.rounds < 1:
        raise SystemExit("--rounds must be at least 1")
    parameters: dict[str, Any] = {"n": arguments.n, "dim": arguments.dim, "cores": arguments.cores or "all",
                                  "rounds": arguments.rounds}
    load_before = environment()["load_average"]
    with tempfile.TemporaryDirectory(prefix="dagster-qdrant-bench-", dir=arguments.work_dir) as scratch:
        work_dir = Path(scratch)
        with qdrant_target(arguments.qdrant_url, arguments.api_key, work_dir / "qdrant") as target:
            rounds, notes, tuned = run_parts(arguments, target, work_dir)
    results = median_results(rounds)
    notes.insert(0, f"Each figure is the median of {arguments.rounds} interleaved round(s) (every case once per "
                    "round, same order); every round's points/s is in run.json.")
    bound = ceiling_over_defaults(results)
    if bound:
        notes.append("The HTTP ceiling itself ran at " + " and ".join(
            f"{ratio:.2f}x ({operation}s)" for operation, ratio in bound.items())
            + " qdrant-client's defaults: about the most any client of this server can show against them here.")
    notes.append(f"Load average before the run {load_before}, after {environment()['load_average']} "
                 "(figures are only comparable on a quiet machine).")
    print()
    print(text_table(results))
    json_path, markdown_path = write_outputs(
        arguments.out, "run", "dagster_qdrant benchmark", parameters, results, notes,
        {"tuning": tuned, "rounds": [[result.as_dict() for result in results] for results in rounds]})
    print(f"\nWritten {json_path} and {markdown_path}")
    unverified = sorted({f"{result.case} {result.operation}" for results in rounds for result in results
                         if result.verified is False})
    if unverified:
        print(f"Not every point arrived for: {', '.join(unverified)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
