"""Where a read puts the payload, and the check that no column of a given schema comes back all null.

Layouts (the ``payload_layout`` option): ``columns``, one column per payload key, this package's
default; ``struct``, spark-fuse's shape, ``id``, ``payload`` (a struct, or a map, of the payload) and the
vectors; ``json``, a ``payload`` string column holding each payload's JSON text, for payloads with no
stable shape. ``auto`` reads an inferred schema as ``columns`` and a given schema in spark-fuse's shape
(a ``payload`` struct or map and otherwise only ``id`` and vector columns) as ``struct``, so a
``schema.json`` written for spark-fuse reads the same rows here.

A column of a given schema that no point carries reads as null on every row, which looks like data.
Before a read with a given schema, a sample spread over the read (``schema_sampling``) is checked: a
payload column no sampled point carries fails the read, naming the key, the keys the points do carry
and the fix; ``missing_columns="null"`` reads such columns as null instead.
"""

from __future__ import annotations

import collections
from collections.abc import Collection, Mapping, Sequence
from typing import Any

from pyspark.sql.types import MapType, StringType, StructType

from dagster_qdrant.spark_fuse_compat import nearest_key
from dagster_qdrant.errors import QdrantSchemaError
from dagster_qdrant.http import QdrantHttp
from dagster_qdrant.options import ReadOptions
from dagster_qdrant.spark.schema import ID_COLUMN, PAYLOAD_COLUMN, VECTOR_COLUMN
from dagster_qdrant.spark.schema_sampling import sample_pages

_SHOWN_KEYS = 20


def resolve_layout(option: str, schema: StructType, vector_columns: Collection[str], inferred: bool) -> str:
    """The layout ``schema`` is read in: ``columns``, ``struct`` or ``json``; refuses a schema that cannot be.

    ``vector_columns`` are the collection's vector columns (they are never payload).
    """
    if option == "auto":
        if inferred or not _spark_fuse_shape(schema, vector_columns):
            return "columns"
        return "struct"
    if option == "columns" or inferred:
        return option
    names = schema.fieldNames()
    wanted = "a struct or a map" if option == "struct" else "a string"
    payload = schema[PAYLOAD_COLUMN].dataType if PAYLOAD_COLUMN in names else None
    fits = isinstance(payload, (StructType, MapType)) if option == "struct" else isinstance(payload, StringType)
    if not fits:
        raise QdrantSchemaError(
            f"payload_layout={option!r} reads the payload into one {PAYLOAD_COLUMN!r} column of {wanted} type, "
            f"but the schema's columns are {names!r}: add that column, or use payload_layout='columns' to read "
            "each payload key as its own column"
        )
    others = [name for name in names if name not in {ID_COLUMN, PAYLOAD_COLUMN, *vector_columns}]
    if others:
        raise QdrantSchemaError(
            f"payload_layout={option!r} reads only {ID_COLUMN!r}, {PAYLOAD_COLUMN!r} and vector columns, but "
            f"the schema also has {others!r}: move them into the {PAYLOAD_COLUMN!r} column's type, or use "
            "payload_layout='columns'"
        )
    return option


def _spark_fuse_shape(schema: StructType, vector_columns: Collection[str]) -> bool:
    names = set(schema.fieldNames())
    if PAYLOAD_COLUMN not in names or not isinstance(schema[PAYLOAD_COLUMN].dataType, (StructType, MapType)):
        return False
    return names <= {ID_COLUMN, PAYLOAD_COLUMN, *vector_columns}


def expected_keys(schema: StructType, layout: str, read_vectors: Collection[str]) -> list[str]:
    """The payload keys a given schema expects points to carry, and its vector columns read as none.

    ``read_vectors`` are the vector columns the read fills (``with_vectors``). Maps and JSON text name
    no keys to check.
    """
    unread = [name for name in schema.fieldNames() if name not in {ID_COLUMN, *read_vectors}]
    if layout == "columns":
        return unread
    unread.remove(PAYLOAD_COLUMN)
    payload = schema[PAYLOAD_COLUMN].dataType
    keys = list(payload.fieldNames()) if layout == "struct" and isinstance(payload, StructType) else []
    return keys + unread


def check_carried(
    http: QdrantHttp, options: ReadOptions, keys: Sequence[str], collection_vectors: Collection[str]
) -> None:
    """Fail when some of ``keys`` is carried by no sampled point of the read (see the module docstring).

    ``collection_vectors`` names the collection's vector columns, so a vector column read without
    ``with_vectors`` is told apart from a payload key. An empty read has nothing to check.
    """
    if not keys or options.missing_columns == "null":
        return
    request = {"with_payload": options.selection()["with_payload"], "with_vector": False}
    missing = set(keys)
    carried: collections.Counter[str] = collections.Counter()
    sampled = 0
    for page in sample_pages(http, options, request):
        for point in page:
            sampled += 1
            carried.update((point.get("payload") or {}).keys())
        missing -= carried.keys()
        if not missing:
            return
    if sampled == 0:
        return
    raise QdrantSchemaError(
        _message(sorted(missing, key=list(keys).index), carried, sampled, options, collection_vectors),
        collection=options.collection,
    )


def _message(
    missing: list[str],
    carried: Mapping[str, int],
    sampled: int,
    options: ReadOptions,
    collection_vectors: Collection[str],
) -> str:
    parts = []
    for key in missing:
        if key in collection_vectors or key == VECTOR_COLUMN:
            parts.append(f"{key!r} (a vector: read it with with_vectors=True)")
            continue
        near = nearest_key(key, carried)
        parts.append(f"{key!r}" + (f" (did you mean {near!r}?)" if near else ""))
    shown = sorted(carried, key=lambda key: (-carried[key], key))[:_SHOWN_KEYS]
    more = f" and {len(carried) - len(shown)} more" if len(carried) > len(shown) else ""
    layout_hint = ""
    if PAYLOAD_COLUMN in missing:
        layout_hint = (
            f"; a {PAYLOAD_COLUMN!r} column holding the whole payload is payload_layout='struct' "
            "(spark-fuse's shape) or 'json'"
        )
    if options.with_payload is not True:
        layout_hint += f"; the read's with_payload={options.with_payload!r} selects which keys are read"
    return (
        f"The given schema has column(s) {', '.join(parts)} that none of {sampled} sampled point(s) of "
        f"collection {options.collection!r} carries, so they would read as null on every row. The points "
        f"carry the payload key(s) {shown!r}{more}. Fix: correct the schema's column names{layout_hint}; "
        "a key only rare points carry shows up with sample_size='all'; missing_columns='null' reads such "
        "columns as null"
    )


def layout_request(layout: str, schema: StructType, payload_columns: Sequence[str], with_payload: Any) -> Any:
    """``with_payload`` of a given schema's scroll: only the keys the schema reads, when it names them."""
    if with_payload is not True:
        return with_payload
    if layout == "columns":
        return list(payload_columns) or False
    payload = schema[PAYLOAD_COLUMN].dataType if PAYLOAD_COLUMN in schema.fieldNames() else None
    if layout == "struct" and isinstance(payload, StructType):
        return payload.fieldNames() or False
    return True


__all__ = ["check_carried", "expected_keys", "layout_request", "resolve_layout"]
