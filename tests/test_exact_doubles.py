"""What Qdrant gives back for doubles: within a bound that was measured, exactly where the README says so,
and bit for bit through the text path. Decimals the writer passes as numbers are checked against the
engine too.

Qdrant keeps a payload as serde_json text and parses it without serde_json's ``float_roundtrip`` feature,
so some doubles come back an ULP or two off. References: qdrant-client reading the server over REST, the
engine alone (``qdrant_edge`` in-process: no HTTP and no code of ours), Spark's own string casts, and the
input values.
"""

from __future__ import annotations

import decimal
import json
import math
import os
import random
import struct
from typing import Any

import pytest
from qdrant_client import QdrantClient
from reference_client import official_client, payloads_by_id

from dagster_qdrant.points.rows_to_points import from_records
from dagster_qdrant.errors import QdrantDataError
from dagster_qdrant.options import WriteOptions, build_qdrant_config, build_qdrant_write_config
from dagster_qdrant.points.payload_to_json import serde_json_parts
from dagster_qdrant.points.without_spark import read_qdrant_points, write_qdrant_points

OPTIONS = WriteOptions(endpoint="http://localhost:6333", collection="docs")
REAL_QDRANT = bool(os.environ.get("QDRANT_URL"))
BOUND_ULPS = 4 if REAL_QDRANT else 2
"""README: the engine moves a double by at most 2 ULP; a real Qdrant parses the request too (at most 4)."""


@pytest.fixture
def client(qdrant_url: str, qdrant_api_key: str | None) -> QdrantClient:
    return official_client(qdrant_url, qdrant_api_key)


def _config(url: str, collection: str, **options: Any) -> dict[str, Any]:
    return build_qdrant_write_config(url, collection, create_collection=True, distance="Dot", **options)


def _ulps(a: float, b: float) -> int:
    def ordered(value: float) -> int:
        bits = struct.unpack("<q", struct.pack("<d", value))[0]
        return bits if bits >= 0 else -(2**63) - bits

    return abs(ordered(a) - ordered(b))


def _doubles(count: int, seed: int) -> list[float]:
    """Random bit patterns, subnormals, huge and tiny exponents, 17-significant-digit values, whole numbers."""
    rng = random.Random(seed)

    def bits() -> float:
        return struct.unpack("<d", rng.getrandbits(64).to_bytes(8, "little"))[0]

    makers = [
        bits,
        lambda: struct.unpack("<d", rng.getrandbits(52).to_bytes(8, "little"))[0],  # subnormal
        lambda: float(f"{rng.randrange(10**16, 10**17)}e{rng.randrange(-340, 292)}"),  # 17 digits
        lambda: rng.uniform(-1e9, 1e9),
        lambda: float(rng.randrange(-(2**63), 2**63)),
        lambda: float(rng.randrange(10**15, 2**53)),  # whole numbers Qdrant writes with all 16 digits and ".0"
    ]
    values: list[float] = []
    while len(values) < count:
        value = makers[len(values) % len(makers)]()
        if math.isfinite(value):
            values.append(value)
    return values


def _short_doubles(count: int, seed: int) -> list[float]:
    """README's exact class: at most 15 significant digits, magnitude in [1e-7, 1e15), and 0."""
    rng = random.Random(seed)
    values = [0.0, -0.0, 1e-7, 999999999999999.0, 123456789.123456]
    while len(values) < count:
        digits = rng.randrange(1, 16)
        value = float(f"{rng.choice('+-')}{rng.randrange(10 ** (digits - 1), 10**digits)}e{rng.randrange(-30, 16)}")
        if 1e-7 <= abs(value) < 1e15:
            values += [value, float(rng.randrange(-(10**15) + 1, 10**15))]  # and a whole number below 1e15
    return values


def _check_doubles(given: list[float], back: list[float], exact: int) -> None:
    """The first ``exact`` values must come back bit for bit, the others within BOUND_ULPS."""
    assert len(back) == len(given)
    for index, (value, stored) in enumerate(zip(given, back)):
        limit = 0 if index < exact else BOUND_ULPS
        assert _ulps(value, stored) <= limit, f"{value!r} came back as {stored!r} ({_ulps(value, stored)} ULP)"


def test_doubles_come_back_within_the_stated_bound(client: QdrantClient, qdrant_url: str, collection_name: str) -> None:
    short = _short_doubles(1500, 1)
    values = short + _doubles(3000, 2)
    rows = [{"id": i, "vector": [1.0], "x": v, "nested": {"y": [v]}} for i, v in enumerate(values)]
    write_qdrant_points(rows, _config(qdrant_url, collection_name))
    by_client = payloads_by_id(client, collection_name)
    _check_doubles(values, [by_client[i]["x"] for i in range(len(values))], len(short))
    _check_doubles(values, [by_client[i]["nested"]["y"][0] for i in range(len(values))], len(short))
    ours = {p["id"]: p["payload"] for p in read_qdrant_points(build_qdrant_config(qdrant_url, collection_name))}
    assert ours == by_client


def test_spark_doubles_and_their_exact_text_path(spark: Any, qdrant_url: str, collection_name: str) -> None:
    """Doubles within the bound through Spark both ways; cast to string before the write and back to double
    after the read, they come back bit for bit (README's exact path)."""
    short = _short_doubles(500, 3)
    values = short + _doubles(1500, 4)
    frame = spark.createDataFrame([(i, [1.0], v) for i, v in enumerate(values)], "id long, vector array<float>, x double")
    text_frame = frame.withColumn("x_text", frame.x.cast("string"))
    config = WriteOptions.from_mapping(_config(qdrant_url, collection_name)).spark_options()
    text_frame.write.format("qdrant").options(**config).mode("append").save()
    options = {"qdrant.config": json.dumps(build_qdrant_config(qdrant_url, collection_name))}
    back = spark.read.format("qdrant").options(**options).load()
    rows = back.selectExpr("id", "x", "cast(x_text as double) as exact").orderBy("id").collect()
    _check_doubles(values, [row["x"] for row in rows], len(short))
    _check_doubles(values, [row["exact"] for row in rows], len(values))


def _edge_round_trip(values: list[float], directory: str, rewrites: int = 0) -> list[float]:
    """Write each value in-process, rewrite every payload ``rewrites`` times (set_payload), read them back."""
    import qdrant_edge as edge

    config = edge.EdgeConfig(vectors=edge.EdgeVectorParams(size=1, distance=edge.Distance.Dot))
    shard = edge.EdgeShard.create(directory, config)
    try:
        for start in range(0, len(values), 1000):
            chunk = range(start, min(start + 1000, len(values)))
            shard.update(edge.UpdateOperation.upsert_points([edge.Point(i, [1.0], {"x": values[i]}) for i in chunk]))
        for rewrite in range(rewrites):
            shard.update(edge.UpdateOperation.set_payload(list(range(len(values))), {"rewrite": rewrite}, None))
        records = shard.retrieve(list(range(len(values))), True, False)
        return [record.payload["x"] for record in sorted(records, key=lambda record: record.id)]
    finally:
        shard.close()


def _serde_json_reads_back(value: float) -> float:
    """serde_json without ``float_roundtrip`` reading Qdrant's text of ``value`` (its de.rs, f64_from_parts)."""
    if value == 0:
        return value
    significand, exponent = serde_json_parts(value)
    number = float(significand)
    while abs(exponent) > 308:
        number, exponent = number / 1e308, exponent + 308
    power = float(f"1e{abs(exponent)}")  # serde_json's POW10 table: the double nearest each power
    number = number * power if exponent >= 0 else number / power
    return math.copysign(number, value)


def test_the_engine_alone_moves_doubles_as_serde_json_parses_them(tmp_path: Any) -> None:
    """qdrant_edge in-process (no HTTP, no code of ours) changes doubles: within the bound, never the exact
    class, and exactly as serde_json's default parser of its own text does; applied twice (a real Qdrant
    parses the request too) the model stays within 4 ULP."""
    short = _short_doubles(2000, 5)
    values = short + _doubles(8000, 6)
    back = _edge_round_trip(values, str(tmp_path / "shard"))
    _check_doubles(values, back, len(short))
    assert [struct.pack("<d", _serde_json_reads_back(v)) for v in values] == [struct.pack("<d", b) for b in back]
    assert max(_ulps(v, _serde_json_reads_back(_serde_json_reads_back(v))) for v in values) <= 4
    assert sum(v != b for v, b in zip(values, back)) > 0, "the engine changed no double: the bound needs measuring again"


def test_each_rewrite_inside_the_engine_parses_doubles_once_more(tmp_path: Any) -> None:
    """README: after four set_payloads a double has been read through serde_json five times (at most 7 ULP
    off over 100,000 generated doubles, by the same parser); the exact class never moves."""
    short = _short_doubles(500, 10)
    values = short + _doubles(2500, 11)
    back = _edge_round_trip(values, str(tmp_path / "shard"), rewrites=4)
    expected = list(values)
    for _ in range(5):
        expected = [_serde_json_reads_back(value) for value in expected]
    assert [struct.pack("<d", b) for b in back] == [struct.pack("<d", e) for e in expected]
    assert back[: len(short)] == short
    assert max(_ulps(v, b) for v, b in zip(values, back)) <= 7


def test_the_bound_holds_over_100k_generated_doubles(tmp_path: Any) -> None:
    short = _short_doubles(20000, 7)
    values = short + _doubles(100000, 8)
    back = _edge_round_trip(values, str(tmp_path / "shard"))
    _check_doubles(values, back, len(short))


def test_decimals_the_engine_would_change_are_refused(tmp_path: Any) -> None:
    """Against the engine alone: 16 and 17 digit decimals a double names exactly, written in-process; every
    one the writer accepts by default comes back unchanged (none it accepts is changed by Qdrant)."""
    rng = random.Random(9)
    values = []
    while len(values) < 3000:
        candidate = decimal.Decimal(rng.randrange(10**15, 10**17)).scaleb(-rng.randrange(0, 25))
        if decimal.Decimal(repr(float(candidate))) == candidate:
            values.append(candidate)
    back = _edge_round_trip([float(v) for v in values], str(tmp_path / "shard"))
    accepted = changed = 0
    for index, (value, stored) in enumerate(zip(values, back)):
        changed += stored != float(value)
        try:
            from_records([{"id": index, "vector": [1.0], "price": value}], OPTIONS)
        except QdrantDataError as error:
            assert "decimal_as='string'" in str(error)
            continue
        accepted += 1
        assert stored == float(value), f"{value} was accepted but Qdrant gives back {stored!r}"
    assert changed and accepted, (changed, accepted)
