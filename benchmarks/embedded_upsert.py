"""Upsert and scroll throughput of the embedded Qdrant over HTTP: float32 vectors, keep-alive connections.

    /work/venv/bin/python benchmarks/embedded_upsert.py [--points 200000] [--batch 1000 5000] [--threads 1 2]
    /work/venv/bin/python benchmarks/embedded_upsert.py --skip-upsert --scroll-dimensions 128 384

Starts a server on a temporary directory.

Upsert: for each (batch size, client threads) case uploads `--points` 128-d points with `wait=true` in
`batch` bodies and prints points/s. "pre-encoded" times only the HTTP round trips (bodies are built before
the clock starts: the server's throughput); "end-to-end" also encodes each body with orjson inside the timed
loop, as a client would (client and server share this machine's cores).

Scroll: for each vector size and page size reads `--scroll-points` points back page by page with
`with_vector` and `with_payload` true, as the data source reads them, and prints points/s and the
response bytes per point.

"server-CPU" divides the points by the CPU seconds the server process used for them (from /proc): the
rate the server sustains on one free core, independent of what else runs on the machine. The 1-minute
load average is printed with each table, since wall-clock rates on a shared machine depend on it.
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

UPSERT_DIMENSION = 128


def _body(ids: np.ndarray, vectors: np.ndarray) -> bytes:
    payloads = [{"group": int(point_id % 10)} for point_id in ids]
    return orjson.dumps(
        {"batch": {"ids": ids.tolist(), "vectors": vectors, "payloads": payloads}},
        option=orjson.OPT_SERIALIZE_NUMPY,
    )


def _create(session: requests.Session, url: str, name: str, dimension: int) -> None:
    session.delete(f"{url}/collections/{name}").raise_for_status()
    response = session.put(f"{url}/collections/{name}", json={"vectors": {"size": dimension, "distance": "Cosine"}})
    response.raise_for_status()


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (Linux /proc), in seconds."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _load() -> str:
    return f"{os.getloadavg()[0]:.1f}"


def _upload(url: str, name: str, vectors: np.ndarray, batch: int, threads: int, pre_encoded: bool) -> float:
    """Create `name` and upload `vectors` into it; return points/s."""
    sessions = [requests.Session() for _ in range(threads)]
    _create(sessions[0], url, name, vectors.shape[1])
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


def _scroll(url: str, name: str, page: int, expected: int) -> tuple[float, float]:
    """Read the whole collection page by page; return (points/s, response bytes per point)."""
    session = requests.Session()
    offset, points, size = None, 0, 0
    began = time.perf_counter()
    while True:
        body = {"limit": page, "offset": offset, "with_vector": True, "with_payload": True}
        response = session.post(f"{url}/collections/{name}/points/scroll", data=orjson.dumps(body), headers={"Content-Type": "application/json"})
        response.raise_for_status()
        size += len(response.content)
        result = orjson.loads(response.content)["result"]
        points += len(result["points"])
        offset = result["next_page_offset"]
        if offset is None:
            break
    seconds = time.perf_counter() - began
    assert points == expected, f"expected {expected} points, scrolled {points}"
    return points / seconds, size / points


def _upsert_table(server, points: int, batches: list[int], threads_cases: list[int]) -> None:
    vectors = np.random.default_rng(7).random((points, UPSERT_DIMENSION), dtype=np.float32)
    print(f"upsert: {points} points of {UPSERT_DIMENSION}-d float32 into {server.url} (load {_load()})")
    print(f"{'batch':>7} {'threads':>7} {'pre-encoded pts/s':>18} {'server-CPU pts/s':>17} {'end-to-end pts/s':>17} {'load':>5}")
    for batch in batches:
        for threads in threads_cases:
            cpu_before = _cpu_seconds(server.pid)
            server_rate = _upload(server.url, "bench", vectors, batch, threads, pre_encoded=True)
            cpu_rate = points / max(_cpu_seconds(server.pid) - cpu_before, 1e-9)
            total_rate = _upload(server.url, "bench", vectors, batch, threads, pre_encoded=False)
            print(f"{batch:>7} {threads:>7} {server_rate:>18,.0f} {cpu_rate:>17,.0f} {total_rate:>17,.0f} {_load():>5}")


def _scroll_table(server, points: int, dimensions: list[int], pages: list[int]) -> None:
    print(f"scroll: {points} points, with_vector + with_payload, one client (load {_load()})")
    print(f"{'dim':>5} {'page':>6} {'pts/s':>9} {'server-CPU pts/s':>17} {'bytes/pt':>9} {'load':>5}")
    for dimension in dimensions:
        vectors = np.random.default_rng(dimension).random((points, dimension), dtype=np.float32)
        _upload(server.url, f"scroll{dimension}", vectors, 2000, 1, pre_encoded=False)
        for page in pages:
            cpu_before = _cpu_seconds(server.pid)
            rate, size = _scroll(server.url, f"scroll{dimension}", page, points)
            cpu_rate = points / max(_cpu_seconds(server.pid) - cpu_before, 1e-9)
            print(f"{dimension:>5} {page:>6} {rate:>9,.0f} {cpu_rate:>17,.0f} {size:>9,.0f} {_load():>5}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--points", type=int, default=200_000, help="points per upsert case")
    parser.add_argument("--batch", type=int, nargs="+", default=[1000, 5000, 20000])
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--skip-upsert", action="store_true")
    parser.add_argument("--scroll-points", type=int, default=50_000, help="points per scroll case (0: no scroll)")
    parser.add_argument("--scroll-dimensions", type=int, nargs="+", default=[128, 384])
    parser.add_argument("--pages", type=int, nargs="+", default=[256, 512, 1024, 2048])
    arguments = parser.parse_args()
    with tempfile.TemporaryDirectory() as directory, start_embedded_qdrant(directory) as server:
        if not arguments.skip_upsert:
            _upsert_table(server, arguments.points, arguments.batch, arguments.threads)
        if arguments.scroll_points:
            _scroll_table(server, arguments.scroll_points, arguments.scroll_dimensions, arguments.pages)


if __name__ == "__main__":
    main()
