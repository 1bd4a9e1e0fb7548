"""Versions of a collection: their names, who writes them, the alias swap, and the sweep of leftovers.

A whole-collection replacement (``collections.py``) writes into a fresh *version* collection first, so
nothing that readers see changes until the data is complete:

- a version is named ``{base}__{UTC stamp}{nonce}[_r{run}][_h{host}p{pid}]``: when it was made and, when
  one process owns it for the whole write, which process (see ``Owner``);
- when ``base`` is (or becomes) an alias, ``swap_alias`` moves it to the version in one atomic alias
  update, which also gives the version a second alias ``{version}__served``: the mark of a version that
  has been served, so that once displaced it is known to be finished and can be dropped;
- ``sweep`` drops the versions of ``base`` nobody will serve: every displaced served version, and every
  never-served version whose writer is dead (``is_expired``), never one a live writer is still filling.

The rule for "dead": a version whose owner process is recorded in its name and runs on this host is dead
exactly when that process is gone (or the pid now belongs to a process started after the version, or the
writer recorded on this host that it gave the version up without being able to drop it); any
other version is dead when its last sign of life, the newest of the time in its name and the
``heartbeat`` its writer keeps in the collection's metadata (``dagster_qdrant.heartbeat``, refreshed by
``Heartbeat`` on servers that keep collection metadata), is older than ``stale_after`` seconds.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import os
import re
import socket
import tempfile
import threading
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dagster_qdrant.errors import QdrantError, QdrantNotFoundError

logger = logging.getLogger(__name__)

VERSION_SEPARATOR = "__"
SERVED_SUFFIX = "__served"
"""The alias that marks a version as served once (set in the same atomic request as the swap)."""
METADATA_KEY = "dagster_qdrant"
STALE_AFTER_SECONDS = 3600.0
"""Default bound after which a never-served version with no checkable owner counts as abandoned."""
HEARTBEAT_SECONDS = 60.0
_STAMP = "%Y%m%d%H%M%S"
_SUFFIX = re.compile(
    r"(?P<stamp>\d{14})(?P<nonce>[0-9a-f]{4})(?:_r(?P<run>[0-9a-z]{1,8}))?(?:_h(?P<host>[0-9a-f]{8})p(?P<pid>\d{1,10}))?"
)


@dataclass(frozen=True)
class Owner:
    """The process that writes a version from start to commit (a Dagster step), named in the version."""

    host: str
    pid: int

    @classmethod
    def this_process(cls) -> Owner:
        return cls(host_key(), os.getpid())

    @classmethod
    def java_ancestor(cls) -> Owner | None:
        """The JVM this Python process descends from: a Spark driver's, for the Python worker that plans a
        write (itself gone as soon as it has planned). None where /proc cannot tell."""
        pid = os.getpid()
        for _ in range(16):
            stat = _proc_stat(pid)
            if stat is None:
                return None
            command, parent = stat
            if command == "java":
                return cls(host_key(), pid)
            if parent < 1:  # pid 1 is looked at too: in a container the JVM may be pid 1
                return None
            pid = parent
        return None


def _proc_stat(pid: int) -> tuple[str, int] | None:
    """(command, parent pid) of a process, from /proc."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            text = stat.read().decode("utf-8", "replace")
    except OSError:
        return None
    command = text[text.index("(") + 1 : text.rindex(")")]
    return command, int(text[text.rindex(")") + 2 :].split()[1])


def host_key() -> str:
    """Eight hex digits naming this host, short enough for a collection name."""
    return hashlib.sha1(socket.gethostname().encode()).hexdigest()[:8]


def new_version_name(base: str, *, run: str = "", owner: Owner | None = None, now: float | None = None) -> str:
    """A fresh, unique version name for ``base``: the time, a nonce, the run and the owner process."""
    stamp = dt.datetime.fromtimestamp(time.time() if now is None else now, dt.timezone.utc).strftime(_STAMP)
    name = f"{base}{VERSION_SEPARATOR}{stamp}{uuid.uuid4().hex[:4]}"
    run = re.sub(r"[^0-9a-z]", "", run.lower())[:8]
    if run:
        name += f"_r{run}"
    if owner is not None:
        name += f"_h{owner.host}p{owner.pid}"
    return name


@dataclass(frozen=True)
class Version:
    name: str
    created: float
    owner: Owner | None


def parse_version(base: str, name: str) -> Version | None:
    """The version ``name`` describes when it is one of ``base``'s, else None (never someone else's)."""
    prefix = base + VERSION_SEPARATOR
    if not name.startswith(prefix):
        return None
    match = _SUFFIX.fullmatch(name[len(prefix) :])
    if match is None:
        return None
    created = dt.datetime.strptime(match["stamp"], _STAMP).replace(tzinfo=dt.timezone.utc).timestamp()
    owner = Owner(match["host"], int(match["pid"])) if match["host"] else None
    return Version(name, created, owner)


def process_started_after(pid: int, moment: float) -> bool | None:
    """Whether process ``pid`` (alive) started after ``moment``; None when this host cannot tell."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            fields = stat.read().rsplit(b")", 1)[1].split()
        with open("/proc/stat", "rb") as system:
            boot = next(float(line.split()[1]) for line in system if line.startswith(b"btime"))
    except (OSError, StopIteration, IndexError, ValueError):
        return None
    started = boot + int(fields[19]) / os.sysconf("SC_CLK_TCK")
    return started > moment + 1.0  # btime and the name's stamp are whole seconds


def process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: it exists
        return True
    return True


def _settled_path(name: str) -> Path:
    return Path(tempfile.gettempdir()) / "dagster_qdrant-settled" / hashlib.sha1(name.encode()).hexdigest()


def mark_settled(name: str) -> None:
    """Record on this host that nobody writes ``name`` any more, though it could not be dropped (the server
    was unreachable): its owner process may live on (a notebook's Spark driver), so without this record the
    version would wait for that process to end."""
    path = _settled_path(name)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch()
    except OSError as error:
        logger.warning("could not record %r as settled: %s", name, error)


def is_settled(name: str) -> bool:
    return _settled_path(name).exists()


def is_expired(version: Version, info: dict[str, Any] | None, *, stale_after: float, now: float | None = None) -> bool:
    """Whether the writer of a never-served version is gone (the rule in the module docstring)."""
    owner = version.owner
    if owner is not None and owner.host == host_key():
        if not process_alive(owner.pid) or is_settled(version.name):
            return True
        return bool(process_started_after(owner.pid, version.created))
    last = max(version.created, _heartbeat(info))
    return (time.time() if now is None else now) - last > stale_after


def _heartbeat(info: dict[str, Any] | None) -> float:
    metadata = ((info or {}).get("config") or {}).get("metadata") or {}
    value = (metadata.get(METADATA_KEY) or {}).get("heartbeat") if isinstance(metadata, dict) else None
    return float(value) if isinstance(value, (int, float)) else 0.0


def lease_metadata() -> dict[str, Any]:
    """Collection metadata for a version being written: its heartbeat, now."""
    return {METADATA_KEY: {"heartbeat": time.time()}}


class Heartbeat:
    """Refreshes a version's heartbeat every ``interval`` seconds while its write runs (a thread).

    Servers that keep collection metadata (Qdrant 1.16+) see the version alive; on others the refresh is a
    no-op and the owner in the name or the time in it is what counts.
    """

    def __init__(self, http: Any, collection: str, interval: float = HEARTBEAT_SECONDS) -> None:
        self.http, self.collection, self.interval = http, collection, interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="qdrant-version-heartbeat", daemon=True)

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join(timeout=self.interval + 5)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                if self.http.collection_exists(self.collection):
                    self.http.update_collection(self.collection, {"metadata": lease_metadata()})
            except QdrantError as error:  # a missed beat is harmless; the next one may pass
                logger.debug("heartbeat of %r failed: %s", self.collection, error)


# ----- reading the server's state ----------------------------------------------------------------


def alias_target(http: Any, alias: str) -> str | None:
    """The collection the alias points to now, or None when there is no such alias."""
    for entry in http.list_aliases():
        if entry.get("alias_name") == alias:
            return entry.get("collection_name")
    return None


def drop_quietly(http: Any, collection: str) -> bool:
    """Drop a collection that may already be gone; True when this call dropped it."""
    try:
        return bool(http.delete_collection(collection))
    except QdrantNotFoundError:
        return False


# ----- the alias swap and the sweep --------------------------------------------------------------


def served_marker(version: str) -> str:
    return version + SERVED_SUFFIX


def mark_served(http: Any, version: str) -> None:
    """Mark a version served on its own (a plain target's commit, which copies instead of swapping)."""
    http.update_aliases([{"create_alias": {"collection_name": version, "alias_name": served_marker(version)}}])


def is_served(http: Any, version: str) -> bool:
    marker = served_marker(version)
    return any(entry.get("alias_name") == marker for entry in http.list_aliases())


def swap_alias(http: Any, alias: str, version: str) -> str | None:
    """Point ``alias`` at ``version`` in one atomic update that also marks ``version`` served.

    Returns the collection the alias served before (None when there was no alias). Another writer may swap
    at the same moment: the update is retried against the alias as it then is, so the last swap wins and
    the displaced version is found and dropped by a sweep.
    """
    served = {"create_alias": {"collection_name": version, "alias_name": served_marker(version)}}
    create = {"create_alias": {"collection_name": version, "alias_name": alias}}
    for attempt in range(5):
        previous = alias_target(http, alias)
        actions = [create, served] if previous is None else [{"delete_alias": {"alias_name": alias}}, create, served]
        try:
            http.update_aliases(actions)
            return previous
        except QdrantError as error:
            if attempt == 4 or error.status not in (400, 404, 409):
                raise
            if not http.collection_exists(version):
                raise
    raise AssertionError("unreachable")  # pragma: no cover


def sweep(
    http: Any, base: str, *, stale_after: float = STALE_AFTER_SECONDS, keep: Iterable[str] = ()
) -> list[str]:
    """Drop the versions of ``base`` that nobody will serve; returns their names.

    Kept: the alias's target, the names in ``keep``, and never-served versions whose writer may be alive.
    Dropped: displaced served versions, and never-served versions whose writer is dead (``is_expired``).
    """
    aliases = http.list_aliases()
    target = next((a.get("collection_name") for a in aliases if a.get("alias_name") == base), None)
    served = {a.get("collection_name") for a in aliases if a.get("alias_name", "").endswith(SERVED_SUFFIX)}
    kept = {target, *keep}
    dropped = []
    for name in http.list_collections():
        version = parse_version(base, name)
        if version is None or name in kept:
            continue
        if name not in served and not is_expired(version, http.collection_info(name), stale_after=stale_after):
            continue
        if drop_quietly(http, name):
            dropped.append(name)
        _settled_path(name).unlink(missing_ok=True)
    return dropped


__all__ = [
    "HEARTBEAT_SECONDS",
    "Heartbeat",
    "Owner",
    "STALE_AFTER_SECONDS",
    "VERSION_SEPARATOR",
    "Version",
    "alias_target",
    "drop_quietly",
    "host_key",
    "is_expired",
    "is_served",
    "is_settled",
    "lease_metadata",
    "mark_served",
    "mark_settled",
    "new_version_name",
    "parse_version",
    "process_alive",
    "process_started_after",
    "served_marker",
    "swap_alias",
    "sweep",
]
