"""``QdrantComponent``: the resource and the PySpark IO manager of a ``dg`` project, configured in YAML.

A ``defs.yaml`` such as::

    type: dagster_qdrant.QdrantComponent
    attributes:
      api_key_env_var: QDRANT_API_KEY      # optional: the key stays an EnvVar, never a value in the UI
      resource:
        endpoint: "{{ env.QDRANT_URL }}"   # or config: {host: ..., port: ...}; unset: the embedded Qdrant
      io_manager:
        collection_prefix: docs_
        write: {distance: Dot}

binds ``QdrantResource`` under ``resource_key`` ("qdrant") and ``QdrantPySparkIOManager`` (on that same
resource) under ``io_manager_key`` ("qdrant_io_manager") for every asset of the project. ``resource`` and
``io_manager`` take the fields of those classes by name, so nothing here repeats their declarations; a key
they do not have is refused with the nearest one (Dagster's resources ignore unknown keys otherwise). A
literal ``api_key`` is refused: a value resolved from ``{{ env.X }}`` would be shown as resource config in
the UI, so the key is named by its environment variable (``api_key_env_var``) and read at run time.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from typing import Any, Optional

from dagster import Definitions, EnvVar

try:
    from dagster import Component, ComponentLoadContext, Model, Resolvable
except ImportError as error:  # Dagster before 1.11 has no components
    raise ImportError("QdrantComponent needs Dagster 1.11 or later (dagster.Component): pip install -U dagster") from error
from pydantic import Field

from dagster_qdrant.dagster_io.community import QdrantConfig
from dagster_qdrant.dagster_io.io_manager import QdrantPySparkIOManager
from dagster_qdrant.dagster_io.resources import QdrantReadConfig, QdrantResource, QdrantWriteConfig
from dagster_qdrant.errors import QdrantConfigError

# Nested config objects whose keys are checked too: (where, field) -> the class that field holds.
_NESTED: dict[tuple[str, str], type] = {
    ("resource", "config"): QdrantConfig,
    ("io_manager", "write"): QdrantWriteConfig,
    ("io_manager", "read"): QdrantReadConfig,
}


class QdrantComponent(Component, Model, Resolvable):
    """Qdrant for a dg project: QdrantResource and QdrantPySparkIOManager, configured in defs.yaml."""

    resource_key: str = Field(
        default="qdrant", description="Resource key of the QdrantResource (the name assets take it by)."
    )
    io_manager_key: str = Field(
        default="qdrant_io_manager", description="Resource key of the IO manager (assets' io_manager_key)."
    )
    api_key_env_var: Optional[str] = Field(
        default=None,
        description="Environment variable holding the API key, read at run time (unset: QDRANT_API_KEY, "
        "read by the resource itself when it has no config).",
    )
    resource: dict[str, Any] = Field(
        default_factory=dict,
        description="QdrantResource fields: endpoint, embedded_path, timeout, headers, config (QdrantConfig: "
        "host, url, port, https, prefix, path, ...), ...",
    )
    io_manager: dict[str, Any] = Field(
        default_factory=dict,
        description="QdrantPySparkIOManager fields: collection_prefix, key_separator, partition_field, write "
        "(writer options), read (reader options), progress_interval, stale_after.",
    )

    def build_resource(self) -> QdrantResource:
        """The resource these attributes describe (checked: unknown keys and literal API keys refused)."""
        fields = _checked("resource", self.resource, QdrantResource, forbidden=set())
        if self.api_key_env_var:
            config = fields.get("config")
            if config is not None:
                fields["config"] = {**config, "api_key": EnvVar(self.api_key_env_var)}
            else:
                fields["api_key"] = EnvVar(self.api_key_env_var)
        return QdrantResource(**fields)

    def build_io_manager(self, resource: QdrantResource) -> QdrantPySparkIOManager:
        fields = _checked("io_manager", self.io_manager, QdrantPySparkIOManager, forbidden={"qdrant"})
        return QdrantPySparkIOManager(qdrant=resource, **fields)

    def build_defs(self, context: ComponentLoadContext) -> Definitions:
        resource = self.build_resource()
        return Definitions(
            resources={self.resource_key: resource, self.io_manager_key: self.build_io_manager(resource)}
        )


def _checked(where: str, given: Mapping[str, Any], model: type, *, forbidden: set[str]) -> dict[str, Any]:
    """``given`` as keyword arguments of ``model``, every key (and nested key) one of its fields."""
    for key in given:
        if key == "api_key" or (key == "config" and "api_key" in (given.get("config") or {})):
            raise QdrantConfigError(
                f"QdrantComponent: {where}.{'config.' if key == 'config' else ''}api_key is not accepted in "
                "YAML (its value would show as resource config in the UI); name its environment variable "
                "with api_key_env_var instead"
            )
        if key in forbidden:
            raise QdrantConfigError(
                f"QdrantComponent: {where}.{key} is set by the component itself; leave it out"
            )
        _refuse_unknown(f"{where}.{key}", key, model)
        nested = _NESTED.get((where, key))
        if nested is not None and isinstance(given[key], Mapping):
            for inner in given[key]:
                _refuse_unknown(f"{where}.{key}.{inner}", inner, nested)
    return dict(given)


def _refuse_unknown(path: str, key: str, model: type) -> None:
    known = sorted(name for name in model.model_fields if not name.startswith("_"))
    if key not in known:
        nearest = difflib.get_close_matches(key, known, n=1)
        hint = f"did you mean {nearest[0]!r}? " if nearest else ""
        raise QdrantConfigError(
            f"QdrantComponent: {path} is not a field of {model.__name__}; {hint}known: {', '.join(known)}"
        )
