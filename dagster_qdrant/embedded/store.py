"""Collections on disk: one Qdrant Edge shard per collection, plus an alias table.

Layout under the data directory:
    collections/<name>/shard/        the Edge shard (segments + WAL; the WAL makes every update durable)
    collections/<name>/config.json   the REST config it was created with; written last, so a directory
                                     without it is an interrupted create and is removed at start
    aliases.json                     alias -> collection, replaced atomically (temp file + os.replace)

Writes to one collection are serialized by its lock (the WAL order is the apply order); reads run
without it. The engine holds the process-wide WAL lock, so only one server can own a directory.
"""

from __future__ import annotations

import itertools
import logging
import os
import shutil
import threading
import uuid
from pathlib import Path
from typing import Any

import orjson
import qdrant_edge as edge

from dagster_qdrant.embedded.collection_update import apply_update
from dagster_qdrant.embedded.config import edge_config, normalize_create_body
from dagster_qdrant.embedded.errors import (
    ApiError,
    bad_request,
    collection_not_found,
    conflict,
    from_engine,
    invalid_in,
    not_found,
)

LOG = logging.getLogger("dagster_qdrant.embedded")
_FORBIDDEN_NAME_CHARACTERS = '<>:"/\\|?*\0\x1f'
"""Qdrant's own list (common::validation::validate_collection_name), checked when a collection is created."""
MAX_NAME_LENGTH = 255
"""Qdrant's limit in characters (``length(min = 1, max = 255)`` on create); names are also directory names,
so their UTF-8 form must fit a file name (255 bytes) as well."""


class Collection:
    """One open shard with its REST config."""

    def __init__(self, name: str, directory: Path, shard: edge.EdgeShard, config: dict[str, Any]) -> None:
        self.name = name
        self.directory = directory
        self.shard = shard
        self.config = config
        self.write_lock = threading.Lock()
        self.closed = False
        self._operation_ids = itertools.count()
        self._generation = 0  # bumped each time the shard is reopened with a new config

    def update(self, operation: Any) -> int:
        """Apply one update operation; return its operation id. Durable on return (Edge WAL)."""
        with self.write_lock:
            if self.closed:
                raise collection_not_found(self.name)
            try:
                self.shard.update(operation)
            except Exception as error:  # the engine raises plain Exception with Qdrant's message
                raise from_engine(error) from None
            except BaseException as error:  # a panic in the engine (pyo3 PanicException) must answer 500
                if type(error).__name__ != "PanicException":
                    raise
                raise ApiError(500, f"Service internal error: {str(error).splitlines()[0]}") from None
            return next(self._operation_ids)

    def read(self, method: str, *arguments: Any) -> Any:
        """Call a read method of the shard, mapping engine errors to API errors.

        Reads take no lock; one that meets the shard while `reconfigure` reopens it is run again on the
        reopened shard (waiting for it through the write lock)."""
        generation = self._generation
        try:
            return getattr(self.shard, method)(*arguments)
        except ApiError:
            raise
        except Exception as error:
            if self.closed:
                raise collection_not_found(self.name) from None
            if self.write_lock.locked() or generation != self._generation:
                with self.write_lock:
                    pass
                if generation != self._generation:
                    return self.read(method, *arguments)
            raise from_engine(error) from None
        except BaseException as error:  # a panic in the engine (pyo3 PanicException) must answer 500
            if type(error).__name__ != "PanicException":
                raise
            raise ApiError(500, f"Service internal error: {str(error).splitlines()[0]}") from None

    def reconfigure(self, rest_config: dict[str, Any]) -> None:
        """Reopen the shard with the engine config of `rest_config` and keep that config (PATCH).

        If the engine refuses the new config, the shard is reopened as it was and the error answered."""
        with self.write_lock:
            if self.closed:
                raise collection_not_found(self.name)
            shard_path = str(self.directory / "shard")
            self.shard.flush()
            self.shard.close()
            self._generation += 1
            try:
                self.shard = edge.EdgeShard.load(shard_path, edge_config(rest_config))
            except Exception as error:
                self.shard = edge.EdgeShard.load(shard_path)
                raise bad_request(f"the collection cannot take this configuration: {error}") from None
            write_json_atomically(self.directory / "config.json", rest_config)
            self.config = rest_config

    def flush(self) -> None:
        """Persist segments so the WAL can be truncated; safe to call at any time."""
        with self.write_lock:
            if not self.closed:
                self.shard.flush()

    def close(self) -> None:
        with self.write_lock:
            if not self.closed:
                self.closed = True
                self.shard.close()


class Store:
    """The collections and aliases of one data directory."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path).resolve()
        self.collections_path = self.path / "collections"
        self.collections_path.mkdir(parents=True, exist_ok=True)
        self.aliases_path = self.path / "aliases.json"
        self._lock = threading.RLock()
        self._collections: dict[str, Collection] = {}
        self._aliases: dict[str, str] = {}
        self._load()

    def _load(self) -> None:
        for directory in sorted(self.collections_path.iterdir()):
            config_path = directory / "config.json"
            if directory.name.startswith(".") or not config_path.exists():
                shutil.rmtree(directory, ignore_errors=True)  # interrupted create or delete
                continue
            config = orjson.loads(config_path.read_bytes())
            shard = edge.EdgeShard.load(str(directory / "shard"))
            self._collections[directory.name] = Collection(directory.name, directory, shard, config)
        if self.aliases_path.exists():
            aliases = orjson.loads(self.aliases_path.read_bytes())
            self._aliases = {alias: target for alias, target in aliases.items() if target in self._collections}

    # collections -------------------------------------------------------------------------------

    def names(self) -> list[str]:
        with self._lock:
            return sorted(self._collections)

    def resolve(self, name: str) -> Collection:
        """The collection called `name`, directly or through an alias (aliases first, like Qdrant)."""
        with self._lock:
            target = self._aliases.get(name, name)
            collection = self._collections.get(target)
        if collection is None:
            raise collection_not_found(name)
        return collection

    def exists(self, name: str) -> bool:
        with self._lock:
            return name in self._collections or name in self._aliases

    def create(self, name: str, body: Any) -> None:
        validate_name(name)
        rest_config = normalize_create_body(body)
        if not rest_config["params"]["vectors"] and not rest_config["params"].get("sparse_vectors"):
            raise bad_request(
                "a collection needs at least one vector: give `vectors` ({size, distance}) or `sparse_vectors` "
                "(the embedded server cannot hold payload-only collections)"
            )
        try:
            config = edge_config(rest_config)
        except (TypeError, ValueError, OverflowError) as error:  # a setting of the wrong type or range
            raise bad_request(f"collection config: {error}") from None
        with self._lock:
            if name in self._collections:
                raise conflict(f"Collection `{name}` already exists!")
            if name in self._aliases:
                raise bad_request(f"Can't create collection with name {name}. Alias with the same name already exists")
            directory = self.collections_path / name
            shutil.rmtree(directory, ignore_errors=True)
            try:
                shard = edge.EdgeShard.create(str(directory / "shard"), config)
            except Exception as error:
                shutil.rmtree(directory, ignore_errors=True)
                raise from_engine(error) from None
            shard.flush()
            write_json_atomically(directory / "config.json", rest_config)
            self._collections[name] = Collection(name, directory, shard, rest_config)

    def update(self, name: str, body: Any) -> None:
        """Apply an `UpdateCollection` diff (see `collection_update`) to a collection or an alias's target."""
        collection = self.resolve(name)
        collection.reconfigure(apply_update(collection.config, body))

    def delete(self, name: str) -> bool:
        """Delete a collection (not an alias) and its aliases; False when there was none.

        One rename is the moment of deletion, on disk as in memory: the directory moves to a hidden name of
        fixed length (removed now, or at the next start if this process dies first), and only then does the
        collection leave the table. When the rename fails, the collection stays, open, and the answer is an
        error: a restart never brings back a collection the server said it deleted, nor loses one it kept.
        """
        with self._lock:
            collection = self._collections.get(name)
            if collection is None:
                return False
            trash = self.collections_path / f".deleted-{uuid.uuid4().hex}"
            collection.close()
            try:
                os.replace(collection.directory, trash)
            except OSError as error:
                self._collections[name] = self._open(name, collection.directory, collection.config)
                raise ApiError(500, f"Service internal error: could not delete collection `{name}`: {error}") from None
            del self._collections[name]
            remaining = {alias: target for alias, target in self._aliases.items() if target != name}
            if remaining != self._aliases:
                self._aliases = remaining
                try:
                    write_json_atomically(self.aliases_path, remaining)
                except OSError:  # the collection is gone either way: at start, aliases to it are dropped
                    LOG.warning("could not rewrite %s after deleting %r", self.aliases_path, name, exc_info=True)
        shutil.rmtree(trash, ignore_errors=True)
        return True

    @staticmethod
    def _open(name: str, directory: Path, config: dict[str, Any]) -> Collection:
        return Collection(name, directory, edge.EdgeShard.load(str(directory / "shard")), config)

    # aliases -----------------------------------------------------------------------------------

    def aliases(self, collection: str | None = None) -> list[dict[str, str]]:
        with self._lock:
            items = sorted(self._aliases.items())
        return [
            {"alias_name": alias, "collection_name": target}
            for alias, target in items
            if collection is None or target == collection
        ]

    def update_aliases(self, actions: list[Any]) -> None:
        """Apply create/delete/rename actions all together or none of them."""
        with self._lock:
            aliases = dict(self._aliases)
            for action in actions:
                self._apply_alias_action(aliases, action)
            self._save_aliases(aliases)

    def _apply_alias_action(self, aliases: dict[str, str], action: Any) -> None:
        if not isinstance(action, dict) or len([key for key in action if action[key] is not None]) != 1:
            raise ApiError(400, f"Json deserialize error: alias action must be one of create_alias, delete_alias, rename_alias, got {action!r}")
        kind, spec = next((key, value) for key, value in action.items() if value is not None)
        if kind == "create_alias":
            alias, target = _require(spec, "alias_name"), _require(spec, "collection_name")
            if target not in self._collections:
                raise collection_not_found(target)
            if alias in self._collections:
                raise conflict(f"Collection `{alias}` already exists!")
            validate_name(alias, "JSON body")
            aliases[alias] = target
        elif kind == "delete_alias":
            alias = _require(spec, "alias_name")
            if aliases.pop(alias, None) is None:
                raise not_found(f"Alias {alias} does not exists!")
        elif kind == "rename_alias":
            old, new = _require(spec, "old_alias_name"), _require(spec, "new_alias_name")
            if old not in aliases:
                raise not_found(f"Alias {old} does not exists!")
            if new in self._collections:
                raise conflict(f"Collection with the same name `{new}` already exists!")
            validate_name(new, "JSON body")
            aliases[new] = aliases.pop(old)
        else:
            raise ApiError(400, f"Json deserialize error: unknown alias action `{kind}`: expected create_alias, delete_alias or rename_alias")

    def _save_aliases(self, aliases: dict[str, str]) -> None:
        write_json_atomically(self.aliases_path, aliases)
        self._aliases = aliases

    # lifetime ----------------------------------------------------------------------------------

    def flush_all(self) -> None:
        with self._lock:
            collections = list(self._collections.values())
        for collection in collections:
            try:
                collection.flush()
            except Exception:  # a collection deleted meanwhile; nothing to persist
                pass

    def close(self) -> None:
        with self._lock:
            collections = list(self._collections.values())
            self._collections.clear()
        for collection in collections:
            collection.close()


def _require(spec: Any, key: str) -> str:
    if not isinstance(spec, dict) or not isinstance(spec.get(key), str):
        raise ApiError(400, f"Json deserialize error: missing field `{key}` in alias action")
    return spec[key]


def validate_name(name: str, where: str = "path parameters") -> None:
    """Refuse, as Qdrant does on create (422), a name no collection may have; names become directory names,
    so a name a file system cannot hold, or one starting with ``.`` (the store's own files), is refused too."""
    if not name or len(name) > MAX_NAME_LENGTH or len(name.encode("utf-8", "surrogatepass")) > MAX_NAME_LENGTH:
        raise invalid_in(where, f"name: must be 1 to {MAX_NAME_LENGTH} characters (and {MAX_NAME_LENGTH} bytes in UTF-8)")
    forbidden = next((character for character in _FORBIDDEN_NAME_CHARACTERS if character in name), None)
    if forbidden is not None:
        raise invalid_in(where, f"name: collection name cannot contain {orjson.dumps(forbidden).decode()} char")
    if name.startswith("."):
        raise invalid_in(where, "name: must not start with `.` (the embedded server keeps its own files under such names)")


def write_json_atomically(path: Path, value: Any) -> None:
    """Write JSON so a reader (or a restart after a crash) sees the old file or the new one, never half."""
    temporary = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    with open(temporary, "wb") as handle:
        handle.write(orjson.dumps(value))
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)
