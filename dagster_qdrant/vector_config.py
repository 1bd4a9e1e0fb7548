"""The one reading of a collection's vector config, from ``GET /collections/{name}``.

The config sits at ``result.config.params`` (openapi ``CollectionInfo`` -> ``CollectionConfig`` ->
``CollectionParams``): ``vectors`` is either one ``VectorParams`` (the unnamed vector) or an object of named
``VectorParams``; ``sparse_vectors`` is an object of named ``SparseVectorParams``. The two forms of
``vectors`` are told apart the way Qdrant's own untagged enum is: an object whose ``size`` is a number is
one ``VectorParams``; any other object is a map of names, even one with a vector named ``size``.

The writer checks rows against it, schema inference types the vector columns from it, empty versions and
staging collections are created like it, and the Dagster output metadata reports its sizes and distances.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

UNNAMED = ""
"""The name this package gives the unnamed (default) dense vector."""


@dataclass(frozen=True)
class DenseVector:
    """One dense vector: its name (``""`` unnamed), size, distance and Qdrant's params as the server gave them.

    ``size`` and ``distance`` are None only when a server left them out (the spec requires both).
    """

    name: str
    size: int | None
    distance: str | None
    multivector: bool
    params: Mapping[str, Any] = field(default_factory=dict, compare=False)


@dataclass(frozen=True)
class SparseVector:
    """One sparse vector: its name and Qdrant's params as the server gave them."""

    name: str
    params: Mapping[str, Any] = field(default_factory=dict, compare=False)


@dataclass(frozen=True)
class VectorConfig:
    """A collection's vectors: dense (the unnamed one, or named ones) and sparse, in the server's order."""

    dense: tuple[DenseVector, ...] = ()
    sparse: tuple[SparseVector, ...] = ()

    @property
    def unnamed(self) -> bool:
        """Whether the collection has the one unnamed dense vector (``vectors`` is a ``VectorParams``)."""
        return len(self.dense) == 1 and self.dense[0].name == UNNAMED

    def dense_sizes(self) -> dict[str, int]:
        """Dense vector sizes by name (``""`` = unnamed), for the vectors whose size the server gave."""
        return {vector.name: vector.size for vector in self.dense if vector.size is not None}

    def sparse_names(self) -> set[str]:
        return {vector.name for vector in self.sparse}

    def create_body(self) -> dict[str, Any]:
        """The ``vectors`` (and ``sparse_vectors``) of a create-collection body that configures the same
        vectors, with every per-vector parameter the server reported (HNSW, quantization, datatype, ...)."""
        if self.unnamed:
            vectors: dict[str, Any] = dict(self.dense[0].params)
        else:
            vectors = {vector.name: dict(vector.params) for vector in self.dense}
        body: dict[str, Any] = {"vectors": vectors}
        if self.sparse:
            body["sparse_vectors"] = {vector.name: dict(vector.params) for vector in self.sparse}
        return body


def read_vector_config(info: Mapping[str, Any] | None) -> VectorConfig | None:
    """The vector config of a collection info; None when the info carries no ``config.params`` (a server
    or proxy that answers with less), so callers can fall back to what the points show."""
    params = ((info or {}).get("config") or {}).get("params")
    if not isinstance(params, Mapping):
        return None
    return VectorConfig(_dense(params.get("vectors")), _sparse(params.get("sparse_vectors")))


def _dense(vectors: Any) -> tuple[DenseVector, ...]:
    if not isinstance(vectors, Mapping) or not vectors:
        return ()
    if _is_vector_params(vectors):
        return (_dense_vector(UNNAMED, vectors),)
    return tuple(_dense_vector(str(name), params if isinstance(params, Mapping) else {}) for name, params in vectors.items())


def _is_vector_params(vectors: Mapping[str, Any]) -> bool:
    size = vectors.get("size")
    return isinstance(size, (int, float)) and not isinstance(size, bool)


def _dense_vector(name: str, params: Mapping[str, Any]) -> DenseVector:
    size = params.get("size")
    distance = params.get("distance")
    return DenseVector(
        name=name,
        size=int(size) if isinstance(size, (int, float)) and not isinstance(size, bool) else None,
        distance=str(distance) if distance is not None else None,
        multivector=bool(params.get("multivector_config")),
        params=params,
    )


def _sparse(sparse: Any) -> tuple[SparseVector, ...]:
    if not isinstance(sparse, Mapping):
        return ()
    return tuple(SparseVector(str(name), params if isinstance(params, Mapping) else {}) for name, params in sparse.items())


__all__ = ["DenseVector", "SparseVector", "UNNAMED", "VectorConfig", "read_vector_config"]
