"""Spark in processes of its own, for tests: a standalone cluster on loopback, and driver programs.

A JVM holds one SparkContext at a time and the test run already has a local-mode one, so every program
that needs another Spark (a cluster client, a streaming driver to be killed) runs here in a subprocess:
``python tests/spark_cluster.py <program> '<json arguments>'``. The program prints one JSON line with
its results, prefixed by ``RESULT `` so that Spark's own output cannot be mistaken for it.

The cluster is started from the pyspark installation itself (its ``jars/`` are a full Spark), one master
and N workers, each a JVM in a process group of its own so that stopping a worker also ends the
executors and Python workers it launched.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pyspark
from waiting import wait_until

SPARK_HOME = Path(pyspark.__file__).resolve().parent
RESULT_PREFIX = "RESULT "


def free_port() -> int:
    """A loopback port nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def scala_version() -> str:
    """The Scala binary version of the bundled jars ("2.13"): the worker needs it to build executor commands."""
    for jar in (SPARK_HOME / "jars").glob("scala-library-*.jar"):
        major, minor = jar.stem.removeprefix("scala-library-").split(".")[:2]
        return f"{major}.{minor}"
    raise RuntimeError(f"no scala-library jar in {SPARK_HOME / 'jars'}")


def java_executable() -> str:
    java_home = os.environ.get("JAVA_HOME")
    if java_home and (Path(java_home) / "bin" / "java").exists():
        return str(Path(java_home) / "bin" / "java")
    found = shutil.which("java")
    if found is None:
        raise RuntimeError("java is not on PATH and JAVA_HOME is not set: PySpark needs Java 17 or newer")
    return found


def spark_environment(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """Environment for every Spark process here: loopback only, this Python for drivers and workers.

    SPARK_SCALA_VERSION is what ``load-spark-env.sh`` sets in a Spark distribution; without it a worker
    started from pip's pyspark cannot build the executor's class path.
    """
    environment = dict(os.environ)
    environment.update(
        {
            "SPARK_HOME": str(SPARK_HOME),
            "SPARK_SCALA_VERSION": scala_version(),
            "SPARK_LOCAL_IP": "127.0.0.1",
            "PYSPARK_PYTHON": sys.executable,
            "PYSPARK_DRIVER_PYTHON": sys.executable,
        }
    )
    environment.pop("PYSPARK_SUBMIT_ARGS", None)
    environment.update(extra or {})
    return environment


def stop_process_group(process: subprocess.Popen, grace_seconds: float = 10.0) -> None:
    """SIGTERM the group the process leads, then SIGKILL what is left after the grace period."""
    if process.poll() is None:
        try:
            os.killpg(process.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            process.wait(timeout=grace_seconds)
        except subprocess.TimeoutExpired:
            pass
    # The leader may be gone while executors or Python workers it started still run in its group.
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    try:
        process.wait(timeout=grace_seconds)
    except subprocess.TimeoutExpired:
        pass


class SparkStandaloneCluster:
    """One master and ``workers`` workers on 127.0.0.1, each a separate JVM; logs under ``work_dir``."""

    def __init__(
        self,
        work_dir: Path,
        *,
        workers: int = 2,
        cores_per_worker: int = 1,
        memory_per_worker: str = "1g",
    ) -> None:
        self.work_dir = Path(work_dir)
        self.workers = workers
        self.cores_per_worker = cores_per_worker
        self.memory_per_worker = memory_per_worker
        self.port = free_port()
        self.webui_port = free_port()
        self.processes: list[subprocess.Popen] = []
        self.log_files: list[Path] = []

    @property
    def master_url(self) -> str:
        return f"spark://127.0.0.1:{self.port}"

    def _launch(self, name: str, arguments: list[str]) -> None:
        log_path = self.work_dir / f"{name}.log"
        self.log_files.append(log_path)
        with log_path.open("wb") as log:
            command = [
                java_executable(),
                "-Xmx256m",
                # Master and workers only coordinate: a light JIT and GC leave the CPU to the job.
                "-XX:TieredStopAtLevel=1",
                "-XX:+UseSerialGC",
                "-Dspark.master.rest.enabled=false",
                "-cp",
                str(SPARK_HOME / "jars" / "*"),
                *arguments,
            ]
            self.processes.append(
                subprocess.Popen(
                    command,
                    cwd=self.work_dir,
                    env=spark_environment(),
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                    start_new_session=True,
                )
            )

    def start(self, timeout: float = 120.0, wait_for_workers: bool = True) -> SparkStandaloneCluster:
        """Start the master and the workers; return once the master is up and, with
        ``wait_for_workers``, every worker registered. A driver may connect before the workers are in:
        its executors start as workers arrive, so starting both at once saves a JVM start-up."""
        self.work_dir.mkdir(parents=True, exist_ok=True)
        self._launch(
            "master",
            [
                "org.apache.spark.deploy.master.Master",
                "--host", "127.0.0.1",
                "--port", str(self.port),
                "--webui-port", str(self.webui_port),
            ],
        )  # fmt: skip
        for number in range(1, self.workers + 1):
            worker_dir = self.work_dir / f"worker-{number}"
            worker_dir.mkdir(exist_ok=True)
            # Workers retry registering until the master is up, so they start alongside it.
            self._launch(
                f"worker-{number}",
                [
                    "org.apache.spark.deploy.worker.Worker",
                    self.master_url,
                    "--host", "127.0.0.1",
                    "--cores", str(self.cores_per_worker),
                    "--memory", self.memory_per_worker,
                    "--webui-port", "0",
                    "--work-dir", str(worker_dir),
                ],
            )  # fmt: skip
        wait_until(
            lambda: self._check_alive() and self.master_status() == "ALIVE",
            timeout,
            f"the master at {self.master_url} (logs in {self.work_dir})",
            interval=0.25,
        )
        if wait_for_workers:
            self.wait_for_workers(timeout)
        return self

    def wait_for_workers(self, timeout: float = 120.0) -> None:
        wait_until(
            lambda: self._check_alive() and self.alive_workers() == self.workers,
            timeout,
            f"{self.workers} workers to register with {self.master_url} (logs in {self.work_dir})",
            interval=0.25,
        )

    def _check_alive(self) -> bool:
        for process, log in zip(self.processes, self.log_files):
            if process.poll() is not None:
                raise RuntimeError(f"{log.stem} exited with {process.returncode}:\n{tail(log)}")
        return True

    def master_state(self) -> dict[str, Any]:
        """The master's JSON status page (workers, applications)."""
        with urllib.request.urlopen(f"http://127.0.0.1:{self.webui_port}/json/", timeout=2) as response:
            return json.loads(response.read())

    def master_status(self) -> str | None:
        try:
            return self.master_state().get("status")
        except OSError:
            return None

    def alive_workers(self) -> int:
        try:
            return int(self.master_state().get("aliveworkers", 0))
        except OSError:
            return 0

    def stop(self) -> None:
        """Stop the workers (and their executors), then the master."""
        for process in reversed(self.processes):
            stop_process_group(process)


def tail(path: Path, lines: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def start_program(
    program: str, arguments: Mapping[str, Any], log_path: Path, extra_env: Mapping[str, str] | None = None
) -> subprocess.Popen:
    """Start ``program`` of this module in a new process group, output to ``log_path``."""
    with log_path.open("wb") as log:
        return subprocess.Popen(
            [sys.executable, str(Path(__file__).resolve()), program, json.dumps(arguments)],
            env=spark_environment(extra_env),
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )


def run_program(
    program: str,
    arguments: Mapping[str, Any],
    log_path: Path,
    timeout: float,
    extra_env: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """Run ``program`` to the end and return the JSON it reports; its process group never outlives it."""
    process = start_program(program, arguments, log_path, extra_env)
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        raise TimeoutError(f"{program} ran longer than {timeout:.0f}s:\n{tail(log_path)}") from None
    finally:
        stop_process_group(process)
    if process.returncode != 0:
        raise RuntimeError(f"{program} exited with {process.returncode}:\n{tail(log_path, 80)}")
    for line in reversed(log_path.read_text(errors="replace").splitlines()):
        if line.startswith(RESULT_PREFIX):
            return json.loads(line[len(RESULT_PREFIX) :])
    raise RuntimeError(f"{program} reported no result:\n{tail(log_path, 80)}")


# ----------------------------------------------------------------------------------------------------
# Programs run in the subprocess.


def report(result: Mapping[str, Any]) -> None:
    print(RESULT_PREFIX + json.dumps(result), flush=True)


def cluster_round_trip(arguments: Mapping[str, Any]) -> None:
    """Write ``rows`` generated rows through format("qdrant") on the cluster, read them back the same way."""
    from pyspark.sql import SparkSession
    from pyspark.sql import functions as F

    from dagster_qdrant import register_qdrant_data_source

    timings: dict[str, float] = {}
    clock = time.monotonic()

    def lap(name: str) -> None:
        nonlocal clock
        now = time.monotonic()
        timings[name] = round(now - clock, 2)
        clock = now

    spark = (
        SparkSession.builder.master(arguments["master"])
        .appName("dagster-qdrant-cluster-test")
        .config("spark.driver.host", "127.0.0.1")
        .config("spark.executor.memory", "512m")
        .config("spark.executor.cores", "1")
        .config("spark.ui.enabled", "false")
        .config("spark.sql.shuffle.partitions", "4")
        .getOrCreate()
    )
    try:
        lap("session")
        register_qdrant_data_source(spark)
        context = spark.sparkContext
        # Both executors must be up before the write, or one of them could do all the work.
        wait_until(
            lambda: context._jsc.sc().getExecutorMemoryStatus().size() >= arguments["executors"] + 1,
            240,
            f"{arguments['executors']} executors",
            interval=0.25,
        )
        lap("executors")
        rows, dimension = int(arguments["rows"]), int(arguments["dimension"])
        frame = (
            spark.range(rows, numPartitions=int(arguments["partitions"]))
            .withColumn(
                "vector",
                F.array(*[((F.col("id") * (k + 1)) % 97 / F.lit(8.0)).cast("float") for k in range(dimension)]),
            )
            .withColumn("text", F.concat(F.lit("row-"), F.col("id").cast("string")))
        )
        connection = {"endpoint": arguments["url"], "collection": arguments["collection"]}
        if arguments.get("api_key"):
            connection["api_key"] = arguments["api_key"]
        (
            frame.write.format("qdrant")
            .options(**connection)
            .options(create_collection="true", distance="Euclid", batch_size="64")
            .mode("append")
            .save()
        )
        lap("write")

        read = (
            spark.read.format("qdrant")
            .options(**connection)
            .option("with_vectors", "true")
            .option("num_partitions", str(arguments["partitions"]))
            .load()
        )
        collected = read.select("id", "vector", "text").collect()
        lap("read")
        # Python worker processes that ran tasks, as (host, pid): proves the work left the driver.
        task_processes = (
            context.parallelize(range(8), 8)
            .map(lambda _: (socket.gethostname(), os.getpid(), os.getppid()))
            .distinct()
            .collect()
        )
        report(
            {
                "points": [[row["id"], list(row["vector"]), row["text"]] for row in collected],
                "read_partitions": read.rdd.getNumPartitions(),
                "executors": context._jsc.sc().getExecutorMemoryStatus().size() - 1,
                "driver_pid": os.getpid(),
                "task_parent_pids": sorted({parent for _, _, parent in task_processes}),
                "timings": timings,
            }
        )
    finally:
        spark.stop()


def file_stream(arguments: Mapping[str, Any]) -> None:
    """Stream JSON files from ``input`` into Qdrant, ``files_per_batch`` files (default 1) per
    micro-batch, until no file is left.

    With ``"forever": true`` the query uses a processing-time trigger and never ends by itself: the
    test kills this process part way through.
    """
    from pyspark.sql import SparkSession

    from dagster_qdrant import register_qdrant_data_source

    spark = (
        SparkSession.builder.master("local[2]")
        .appName("dagster-qdrant-stream-test")
        .config("spark.ui.enabled", "false")
        .config("spark.sql.shuffle.partitions", "2")
        .getOrCreate()
    )
    try:
        register_qdrant_data_source(spark)
        stream = (
            spark.readStream.schema(arguments["schema"])
            .option("maxFilesPerTrigger", str(arguments.get("files_per_batch", 1)))
            .json(arguments["input"])
            .writeStream.format("qdrant")
            .options(**arguments["options"])
            .option("checkpointLocation", arguments["checkpoint"])
        )
        if arguments.get("forever"):
            query = stream.trigger(processingTime="100 milliseconds").start()
        else:
            query = stream.trigger(availableNow=True).start()
        print(f"query started {query.id}", flush=True)
        query.awaitTermination()
        report({"batches": [progress["batchId"] for progress in query.recentProgress]})
    finally:
        spark.stop()


PROGRAMS: dict[str, Callable[[Mapping[str, Any]], None]] = {
    "cluster_round_trip": cluster_round_trip,
    "file_stream": file_stream,
}


if __name__ == "__main__":
    PROGRAMS[sys.argv[1]](json.loads(sys.argv[2]))
