"""Several partitions in one run (``BackfillPolicy.single_run()``, a partition key range): written and loaded.

Runs are real ``materialize`` runs with Dagster's range tags, as Dagster's own tests of single-run backfills
do. The collection is then read back whole and compared with the values the asset returned: the range's
partitions hold exactly the new rows, the others exactly what they held before.
"""

from __future__ import annotations

import random
import threading
from collections import defaultdict
from typing import Any

import numpy as np
import pandas as pd
import pytest
from dagster import AssetIn, AssetKey, BackfillPolicy, DailyPartitionsDefinition, asset, materialize
from dagster._core.storage.tags import ASSET_PARTITION_RANGE_END_TAG, ASSET_PARTITION_RANGE_START_TAG

from dagster_qdrant import QdrantPySparkIOManager, QdrantResource, QdrantWriteConfig
from dagster_qdrant.errors import QdrantConfigError

DAYS = DailyPartitionsDefinition(start_date="2024-05-01", end_date="2024-05-06")
KEYS = DAYS.get_partition_keys()  # 2024-05-01 .. 2024-05-05
RANGE = KEYS[1:4]
TAGS = {ASSET_PARTITION_RANGE_START_TAG: RANGE[0], ASSET_PARTITION_RANGE_END_TAG: RANGE[-1]}
METADATA = {"distance": "Dot", "partition_expr": "day"}


@pytest.fixture
def manager(qdrant_url: str, qdrant_api_key: str | None) -> QdrantPySparkIOManager:
    return QdrantPySparkIOManager(
        qdrant=QdrantResource(endpoint=qdrant_url, api_key=qdrant_api_key), progress_interval=3600
    )


def rows_of(key: str, generation: int) -> pd.DataFrame:
    """Seeded rows of one partition: ids unique to the partition, overlapping between generations."""
    generator = random.Random(f"{key}/{generation}")
    day = KEYS.index(key)
    count = generator.randrange(3, 9) + 4 * generation
    ids = sorted(generator.sample(range(day * 1000, day * 1000 + 30), count))
    return pd.DataFrame({
        "id": ids,
        "day": key,
        "text": [f"{key} g{generation} #{i}" for i in ids],
        "vector": [np.array([generator.uniform(-5, 5) for _ in range(3)], dtype=np.float32) for _ in ids],
    })


def documents_asset(name: str, generations: dict[str, int], kind: str, spark: Any = None) -> Any:
    def documents(context):  # type: ignore[no-untyped-def]
        frame = pd.concat([rows_of(key, generations[key]) for key in context.partition_keys], ignore_index=True)
        if kind == "pandas":
            return frame
        records = [(int(r.id), r.day, r.text, [float(v) for v in r.vector]) for r in frame.itertuples()]
        return spark.createDataFrame(records, "id long, day string, text string, vector array<float>")

    return asset(name=name, partitions_def=DAYS, backfill_policy=BackfillPolicy.single_run(), metadata=METADATA)(
        documents
    )


def stored(manager: QdrantPySparkIOManager, collection: str) -> dict[str, dict[int, Any]]:
    """partition key -> id -> (payload without the key, vector) as the server holds them."""
    http = manager.qdrant.http()
    found: dict[str, dict[int, Any]] = defaultdict(dict)
    offset = None
    while True:
        body: dict[str, Any] = {"limit": 256, "with_payload": True, "with_vector": True}
        if offset is not None:
            body["offset"] = offset
        points, offset = http.scroll(collection, body)
        for point in points:
            payload = dict(point["payload"])
            found[payload.pop("_partition")][point["id"]] = (payload, np.asarray(point["vector"], dtype=np.float32))
        if offset is None:
            return dict(found)


def expected(frame: pd.DataFrame) -> dict[int, Any]:
    return {int(r.id): ({"day": r.day, "text": r.text}, r.vector) for r in frame.itertuples()}


def assert_partition(held: dict[int, Any], frame: pd.DataFrame) -> None:
    want = expected(frame)
    assert sorted(held) == sorted(want)
    for point_id, (payload, vector) in want.items():
        assert held[point_id][0] == payload and np.array_equal(held[point_id][1], vector), point_id


def materialize_each_day(manager: QdrantPySparkIOManager, documents: Any) -> None:
    for key in KEYS:
        assert materialize([documents], resources={"io_manager": manager}, partition_key=key).success


@pytest.mark.parametrize("kind", ["pandas", "spark"])
def test_a_single_run_backfill_replaces_exactly_the_partitions_of_its_range(
    manager: QdrantPySparkIOManager, collection_name: str, kind: str, request: pytest.FixtureRequest
) -> None:
    spark = request.getfixturevalue("spark") if kind == "spark" else None
    generations = {key: 0 for key in KEYS}
    documents = documents_asset(collection_name, generations, kind, spark)
    materialize_each_day(manager, documents)
    before = stored(manager, collection_name)

    generations.update({key: 1 for key in RANGE})
    result = materialize([documents], resources={"io_manager": manager}, tags=TAGS)
    assert result.success
    after = stored(manager, collection_name)
    assert sorted(after) == KEYS
    for key in KEYS:
        if key in RANGE:
            assert_partition(after[key], rows_of(key, 1))
        else:
            assert after[key].keys() == before[key].keys()
            assert_partition(after[key], rows_of(key, 0))
    metadata = result.asset_materializations_for_node(collection_name)[0].metadata
    assert metadata["dagster/partition_row_count"].value == sum(len(rows_of(key, 1)) for key in RANGE)
    assert metadata["partitions"].value == {key: len(rows_of(key, 1)) for key in RANGE}
    assert metadata["dagster/row_count"].value == sum(len(points) for points in after.values())


@pytest.mark.parametrize("kind", ["pandas", "spark"])
def test_a_range_loads_as_one_input(
    manager: QdrantPySparkIOManager, collection_name: str, kind: str, request: pytest.FixtureRequest
) -> None:
    if kind == "spark":
        request.getfixturevalue("spark")
    documents = documents_asset(collection_name, {key: 0 for key in KEYS}, "pandas")
    materialize_each_day(manager, documents)
    captured: list[Any] = []

    def reader(documents):  # type: ignore[no-untyped-def]
        captured.append(documents)

    reader.__annotations__ = {"documents": pd.DataFrame if kind == "pandas" else Any, "return": None}
    reader_asset = asset(
        name=f"{collection_name}_reader", partitions_def=DAYS, backfill_policy=BackfillPolicy.single_run(),
        ins={"documents": AssetIn(key=AssetKey(collection_name))},
    )(reader)
    assert materialize([documents.to_source_asset(), reader_asset], resources={"io_manager": manager},
                       tags=TAGS).success
    loaded = captured[0] if kind == "pandas" else captured[0].toPandas()
    assert "_partition" not in loaded.columns
    held = {
        int(r.id): ({"day": r.day, "text": r.text}, np.asarray(r.vector, dtype=np.float32))
        for r in loaded.itertuples()
    }
    want = pd.concat([rows_of(key, 0) for key in RANGE], ignore_index=True)
    assert_partition(held, want)


def test_rows_outside_the_range_or_without_a_key_are_refused_before_anything_is_deleted(
    manager: QdrantPySparkIOManager, collection_name: str
) -> None:
    generations = {key: 0 for key in KEYS}
    documents = documents_asset(collection_name, generations, "pandas")
    materialize_each_day(manager, documents)
    before = stored(manager, collection_name)

    def run_with(frame: pd.DataFrame, metadata: dict[str, Any] = METADATA) -> str:
        @asset(name=collection_name, partitions_def=DAYS, backfill_policy=BackfillPolicy.single_run(),
               metadata=metadata)
        def replaced(context) -> pd.DataFrame:  # type: ignore[no-untyped-def]
            return frame

        with pytest.raises(QdrantConfigError) as refused:
            materialize([replaced], resources={"io_manager": manager}, tags=TAGS)
        assert stored(manager, collection_name).keys() == before.keys()
        for key in KEYS:
            assert_partition(stored(manager, collection_name)[key], rows_of(key, 0))
        return str(refused.value)

    new = pd.concat([rows_of(key, 1) for key in RANGE], ignore_index=True)
    outside = pd.concat([new, rows_of(KEYS[4], 1)], ignore_index=True)
    message = run_with(outside)
    assert f"'{KEYS[4]}' ({len(rows_of(KEYS[4], 1))} rows)" in message and "nothing was written" in message
    keyless = new.astype({"day": object})
    keyless.loc[2, "day"] = None
    assert "1 row(s) have no partition key in column 'day'" in run_with(keyless)
    assert "set the asset's metadata 'partition_expr'" in run_with(new, {"distance": "Dot"})
    assert "names the column 'date', which the DataFrame does not have" in run_with(
        new, {"distance": "Dot", "partition_expr": "date"}
    )


def test_readers_see_each_partition_of_a_range_replaced_after_the_one_before_it(
    manager: QdrantPySparkIOManager, collection_name: str
) -> None:
    """A reader counting the range's partitions while the run writes them: once it has seen a partition
    change, every later count of the partition before it is that partition's new count (the partitions are
    replaced one after the other, never all deleted at once)."""
    generations = {key: 0 for key in KEYS}
    documents = documents_asset(collection_name, generations, "pandas")
    materialize_each_day(manager, documents)
    old = {key: len(rows_of(key, 0)) for key in RANGE}
    new = {key: len(rows_of(key, 1)) for key in RANGE}
    http = manager.qdrant.http()
    seen: list[tuple[str, int]] = []
    stop = threading.Event()

    def count_partitions() -> None:
        reader = QdrantResource(endpoint=manager.qdrant.endpoint, api_key=manager.qdrant.api_key).http()
        while not stop.is_set():
            for key in RANGE:
                match = {"must": [{"key": "_partition", "match": {"value": key}}]}
                seen.append((key, reader.count(collection_name, filter=match, exact=True)))

    generations.update({key: 1 for key in RANGE})
    slow = manager.model_copy(update={"write": QdrantWriteConfig(batch_size=1, max_in_flight=1)})
    thread = threading.Thread(target=count_partitions)
    thread.start()
    try:
        assert materialize([documents], resources={"io_manager": slow}, tags=TAGS).success
    finally:
        stop.set()
        thread.join()
    changed = {key: next((i for i, (k, n) in enumerate(seen) if k == key and n != old[key]), None) for key in RANGE}
    assert changed[RANGE[0]] is not None and changed[RANGE[-1]] is not None, "the reader saw the writes"
    for before, after in zip(RANGE, RANGE[1:]):
        if changed[after] is None:
            continue
        later = [n for k, n in seen[changed[after]:] if k == before]
        assert later and set(later) == {new[before]}, (before, after, later)
    assert {key: http.count(collection_name, filter={"must": [{"key": "_partition", "match": {"value": key}}]})
            for key in RANGE} == new
