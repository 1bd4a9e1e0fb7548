"""The options of one asset's write and one input's read, from the IO manager's config and Dagster metadata.

Per asset, definition metadata overrides any writer option; per input, ``AssetIn`` metadata overrides any
reader option, and names the ``columns`` to return. Values come as plain Python (``MetadataValue`` wrappers
unwrapped); they are validated once, when the IO manager builds the options object from them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Optional

from dagster import MetadataValue

from dagster_qdrant.errors import QdrantConfigError
from dagster_qdrant.option_parsers import optional_columns
from dagster_qdrant.options import ReadOptions, WriteOptions
from dagster_qdrant.spark_fuse_compat import unknown_option_error

_OWNED_BY_THE_IO_MANAGER = ("collection", "endpoint", "api_key")
INPUT_METADATA_KEYS = frozenset({"columns", *ReadOptions.option_names()} - set(_OWNED_BY_THE_IO_MANAGER))
"""What ``AssetIn`` metadata may set: the columns, and every reader option but the collection and server."""


def plain(value: Any) -> Any:
    """Definition metadata may arrive wrapped in MetadataValue objects: unwrap to the raw value."""
    if isinstance(value, MetadataValue):
        return value.value
    return value


def asset_write_options(
    configured: dict[str, Any], metadata: Mapping[str, Any], *, partition_field: Optional[str] = None
) -> dict[str, Any]:
    """The IO manager's writer options with the asset's metadata over them.

    A partitioned asset's points also carry ``partition_field``, so a ``payload_fields`` list gets it.
    """
    options = dict(configured)
    for key in options:
        if key in metadata:
            options[key] = plain(metadata[key])
    payload_fields = options.get("payload_fields")
    if partition_field is not None and payload_fields is not None:
        options["payload_fields"] = [*optional_columns("payload_fields", payload_fields), partition_field]
    return options


def input_read_options(configured: dict[str, Any], metadata: Mapping[str, Any]) -> dict[str, Any]:
    """The IO manager's reader options with the input's metadata over them: every reader option is honoured.

    The collection and the server (``endpoint``, ``api_key``) are the IO manager's; any other key that is
    neither a reader option nor ``columns`` is refused with its nearest known key, never dropped.
    """
    owned = sorted(key for key in metadata if key in _OWNED_BY_THE_IO_MANAGER)
    if owned:
        raise QdrantConfigError(
            f"Input metadata cannot set {owned!r}: the collection is the upstream asset's "
            "('collection' in its definition metadata) and the server is the IO manager's QdrantResource"
        )
    unknown = [key for key in metadata if key not in INPUT_METADATA_KEYS]
    if unknown:
        raise unknown_option_error(unknown, INPUT_METADATA_KEYS, "the input metadata (AssetIn metadata)")
    options = dict(configured)
    for key, value in metadata.items():
        if key != "columns":
            options[key] = plain(value)
    return options


def projection(columns: Sequence[str], write_options: WriteOptions) -> dict[str, Any]:
    """Ask the server only for the payload keys and vectors among the columns asked for."""
    vector_columns = set(write_options.dense_vector_columns()) | set(write_options.sparse_vector_fields)
    payload = [c for c in columns if c not in write_options.excluded_from_payload()]
    return {
        "with_payload": payload if payload else False,
        "with_vectors": any(column in vector_columns for column in columns),
    }
