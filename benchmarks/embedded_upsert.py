"""Upsert throughput of the embedded Qdrant over HTTP: 128-d float vectors, `batch` bodies, keep-alive.

    /work/venv/bin/python benchmarks/embedded_upsert.py [--points 200000] [--batch 2000] [--threads 2]

Starts a server on a temporary directory, then for each (batch size, client threads) case uploads the
points with `wait=true` and prints points/s. "pre-encoded" times only the HTTP round trips (bodies are
built before the clock starts: the server's throughput); "end-to-end" also encodes each body with orjson
inside the timed loop, as a client would (client and server share this machine's cores).
"server-CPU" divides the points by the CPU seconds the server process used for them (from /proc): the
rate the server sustains on one free core, independent of what else runs on the machine.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import orjson
import requests

from dagster_qdrant.embedded import start_embedded_qdrant

DIMENSION = 128


def _body(ids: np.ndarray, vectors: np.ndarray) -> bytes:
    payloads = [{"group": int(point_id % 10)} for point_id in ids]
    return orjson.dumps(
        {"batch": {"ids": ids.tolist(), "vectors": vectors, "payloads": payloads}},
        option=orjson.OPT_SERIALIZE_NUMPY,
    )


def _create(session: requests.Session, url: str, name: str) -> None:
    session.delete(f"{url}/collections/{name}").raise_for_status()
    response = session.put(f"{url}/collections/{name}", json={"vectors": {"size": DIMENSION, "distance": "Cosine"}})
    response.raise_for_status()


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (Linux /proc), in seconds."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _run(url: str, name: str, vectors: np.ndarray, batch: int, threads: int, pre_encoded: bool) -> float:
    sessions = [requests.Session() for _ in range(threads)]
    _create(sessions[0], url, name)
    starts = list(range(0, len(vectors), batch))
    bodies = [_body(np.arange(s, min(s + batch, len(vectors))), vectors[s : s + batch]) for s in starts] if pre_encoded else None

    def send(index: int) -> None:
        start = starts[index]
        body = bodies[index] if bodies is not None else _body(np.arange(start, min(start + batch, len(vectors))), vectors[start : start + batch])
        session = sessions[index % threads]
        response = session.put(f"{url}/collections/{name}/points?wait=true", data=body, headers={"Content-Type": "application/json"})
        response.raise_for_status()

    began = time.perf_counter()
    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(send, range(len(starts))))
    seconds = time.perf_counter() - began
    count = sessions[0].post(f"{url}/collections/{name}/points/count", json={"exact": True}).json()["result"]["count"]
    assert count == len(vectors), f"expected {len(vectors)} points, server has {count}"
    return len(vectors) / seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--points", type=int, default=200_000)
    parser.add_argument("--batch", type=int, nargs="+", default=[1000, 5000, 20000])
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    arguments = parser.parse_args()
    vectors = np.random.default_rng(7).random((arguments.points, DIMENSION), dtype=np.float32)
    with tempfile.TemporaryDirectory() as directory, start_embedded_qdrant(directory) as server:
        print(f"{arguments.points} points of {DIMENSION}-d float32 into {server.url}")
        print(f"{'batch':>7} {'threads':>7} {'pre-encoded pts/s':>18} {'server-CPU pts/s':>17} {'end-to-end pts/s':>17}")
        for batch in arguments.batch:
            for threads in arguments.threads:
                cpu_before = _cpu_seconds(server.pid)
                server_rate = _run(server.url, "bench", vectors, batch, threads, pre_encoded=True)
                cpu_rate = len(vectors) / max(_cpu_seconds(server.pid) - cpu_before, 1e-9)
                total_rate = _run(server.url, "bench", vectors, batch, threads, pre_encoded=False)
                print(f"{batch:>7} {threads:>7} {server_rate:>18,.0f} {cpu_rate:>17,.0f} {total_rate:>17,.0f}")


if __name__ == "__main__":
    main()
