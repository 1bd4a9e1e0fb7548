"""Qdrant's background optimizers for the embedded server: after updates, a collection's segments are
optimized (vacuumed, merged, HNSW-indexed past `optimizer_config.indexing_threshold`) off the request path.

Qdrant runs its optimizers in the background and answers updates without waiting for them; so does this:
one daemon thread takes the collections that were updated and runs the engine's `optimize()` on each.
Updates keep flowing meanwhile (the engine takes its own locks); a collection is never optimized while it
is being reopened or closed (`Collection.maintenance_lock`).
"""

from __future__ import annotations

import logging
import threading
from typing import Any

LOG = logging.getLogger(__name__)


class BackgroundOptimizer:
    """A queue of collections to optimize and the thread that optimizes them."""

    def __init__(self) -> None:
        self._pending: dict[int, Any] = {}
        self._condition = threading.Condition()
        self._stopped = False
        self._busy = False
        self._thread = threading.Thread(target=self._run, name="qdrant-optimizer", daemon=True)
        self._thread.start()

    def request(self, collection: Any) -> None:
        """Optimize `collection` soon (a collection already waiting is not queued twice)."""
        with self._condition:
            self._pending[id(collection)] = collection
            self._condition.notify()

    def wait_idle(self, timeout: float | None = None) -> bool:
        """Wait until nothing is queued or running; True when idle (for tests and shutdown)."""
        with self._condition:
            return self._condition.wait_for(lambda: not self._pending and not self._busy, timeout)

    def stop(self) -> None:
        with self._condition:
            self._stopped = True
            self._pending.clear()
            self._condition.notify_all()
        self._thread.join(timeout=30)

    def _run(self) -> None:
        while True:
            with self._condition:
                self._busy = False
                self._condition.notify_all()
                self._condition.wait_for(lambda: self._pending or self._stopped)
                if self._stopped:
                    return
                _, collection = self._pending.popitem()
                self._busy = True
            try:
                collection.optimize()
            except Exception:  # an optimization that fails leaves the data as it was; the next update retries
                LOG.warning("optimizing collection %s failed", getattr(collection, "name", "?"), exc_info=True)
