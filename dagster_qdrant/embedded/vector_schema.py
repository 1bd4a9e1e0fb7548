"""Check the vectors of an update against the collection's vector config before anything is applied.

The engine checks vector shapes only while it applies an operation, point after point: a bad point late in
a request would leave the points before it written, and a ragged multivector makes it panic. Qdrant
validates the whole request first, so this module does too. The first problem found is answered in
Qdrant's words plus the point id (and vector name), and nothing is written.

Dense columns of a `batch` body (the bulk-load hot path) are checked with a few C-level passes
(`map(len, ...)`) instead of a Python loop per point; everything else is checked point by point.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from operator import itemgetter
from typing import Any

from dagster_qdrant.embedded.engine_settings import named_vectors
from dagster_qdrant.embedded.errors import bad_request, invalid

DENSE, MULTI, SPARSE = "dense", "multi", "sparse"
_first = itemgetter(0)


@dataclass(frozen=True)
class VectorSpec:
    """What one configured vector accepts: its kind (dense, multi, sparse) and size (dense and multi)."""

    kind: str
    size: int | None = None


def vector_specs(params: dict[str, Any]) -> dict[str, VectorSpec]:
    """Vector name -> spec from a collection's REST `params`; the unnamed vector is called ""."""
    vectors = params.get("vectors") or {}
    dense = named_vectors(vectors)
    specs = {
        name: VectorSpec(MULTI if value.get("multivector_config") else DENSE, value["size"])
        for name, value in dense.items()
    }
    specs.update({name: VectorSpec(SPARSE) for name in params.get("sparse_vectors") or {}})
    return specs


def check_vector_struct(struct: Any, specs: dict[str, VectorSpec], point_id: Any) -> None:
    """One point's `VectorStruct`: a list is the unnamed vector, an object maps names to vectors."""
    if isinstance(struct, dict):
        for name, value in struct.items():
            if value is not None:
                check_named_vector(name, value, specs, point_id)
    elif isinstance(struct, list):
        check_named_vector("", struct, specs, point_id)
    else:
        raise bad_request(
            f"vector of point {point_id} must be a list of numbers or an object of named vectors, "
            f"got {type(struct).__name__}"
        )


def check_column(name: str, column: Sequence[Any], ids: Sequence[Any], specs: dict[str, VectorSpec]) -> None:
    """The vectors of one `batch` column (`vectors`, or one name of named `vectors`), one per id."""
    spec = specs.get(name)
    if spec is not None and spec.kind == DENSE and _uniform_dense(column, spec.size):
        return
    for point_id, value in zip(ids, column):
        if value is None:
            if name == "":
                raise bad_request(f"vector of point {point_id} is null: give a list of numbers")
            continue
        check_named_vector(name, value, specs, point_id)


def _uniform_dense(column: Sequence[Any], size: int | None) -> bool:
    """True when every entry is a flat list of `size` items (element types are checked by the engine's
    constructors, which run before anything is applied)."""
    return (
        set(map(type, column)) == {list}
        and set(map(len, column)) == {size}
        and list not in set(map(type, map(_first, column)))
    )


def check_named_vector(name: str, value: Any, specs: dict[str, VectorSpec], point_id: Any) -> None:
    """One vector against the spec of its name."""
    spec = specs.get(name)
    where = _where(point_id, name)
    if spec is None:
        if isinstance(value, dict) and "indices" in value and "values" in value:
            _check_sparse(value, where)  # Qdrant validates the request's shape before it looks names up
        raise bad_request(f"Not existing vector name error: {name} ({where}; the collection has {_names(specs)})")
    if spec.kind == SPARSE:
        _check_sparse(value, where)
        return
    if isinstance(value, dict):
        if "indices" in value:
            raise bad_request(f"Wrong usage of sparse vectors: vector `{name}` is dense ({where}); send a list of numbers")
        raise bad_request(
            f"vector `{name}` ({where}): inference objects (text, image, document) are not supported by the "
            "embedded server; send numbers"
        )
    if not isinstance(value, list):
        raise bad_request(f"vector `{name}` ({where}) must be a list of numbers, got {type(value).__name__}")
    if spec.kind == DENSE:
        if value and isinstance(value[0], list):
            raise bad_request(
                f"Wrong usage of multi vectors: vector `{name}` takes one list of {spec.size} numbers ({where})"
            )
        _check_size(len(value), spec.size, where)
        return
    _check_multi(value, spec.size, where)


def _check_multi(value: list[Any], size: int | None, where: str) -> None:
    """A multivector: a non-empty list of vectors of `size` numbers (a single flat vector is accepted too)."""
    if not value or not isinstance(value[0], list):
        _check_size(len(value), size, where)
        return
    for vector in value:
        if not isinstance(vector, list):
            raise bad_request(f"multivector ({where}) must be a list of lists of {size} numbers, got an item {vector!r}")
        _check_size(len(vector), size, where)


def _check_size(got: int, size: int | None, where: str) -> None:
    if got != size:
        raise bad_request(f"Vector dimension error: expected dim: {size}, got {got} ({where})")


def _check_sparse(value: Any, where: str) -> None:
    if not isinstance(value, dict) or "indices" not in value or "values" not in value:
        raise bad_request(f"Wrong usage of sparse vectors: {where} is sparse; send {{\"indices\": [...], \"values\": [...]}}")
    indices, values = value["indices"], value["values"]
    if not isinstance(indices, list) or not isinstance(values, list):
        raise bad_request(f"sparse vector ({where}): indices and values must be lists")
    if len(indices) != len(values):
        raise invalid(
            f"{where}: values: Validation error: must be the same length as indices "
            f"({len(indices)} indices, {len(values)} values)"
        )
    try:
        distinct = len(set(indices))
    except TypeError:
        raise bad_request(f"sparse vector ({where}): indices must be unsigned integers") from None
    if distinct != len(indices):
        raise invalid(f"{where}: indices: Validation error: must be unique")


def _where(point_id: Any, name: str) -> str:
    return f"point id {point_id}" if name == "" else f"point id {point_id}, vector `{name}`"


def _names(specs: dict[str, VectorSpec]) -> str:
    named = [f"`{name}`" for name in specs if name]
    if "" in specs:
        named.insert(0, "one unnamed vector")
    return ", ".join(named) or "no vectors"
