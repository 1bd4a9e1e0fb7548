"""Read-ahead: a Spark read task fetches its next scroll pages while it turns the current one into Arrow.

A scroll is sequential (each page names the next one), so the overlap to be had is the task's work on one
page (building Arrow columns) with the server's and the network's work on the next ones. Nothing here is
Spark-specific, but the Spark reader is its one user.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from typing import Any, TypeVar

Item = TypeVar("Item")


def read_ahead(items: Iterator[Item], depth: int = 2) -> Iterator[Item]:
    """``items``, fetched by a background thread up to ``depth`` ahead of the caller.

    An error of the fetching side is raised here, at the page where it happened; when the caller stops
    early the thread stops at its next page.
    """
    buffer: queue.Queue[tuple[str, Any]] = queue.Queue(maxsize=depth)
    stopped = threading.Event()

    def put(entry: tuple[str, Any]) -> bool:
        while not stopped.is_set():
            try:
                buffer.put(entry, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def fetch() -> None:
        try:
            for item in items:
                if not put(("item", item)):
                    return
        except BaseException as error:  # handed to the consumer's thread
            put(("error", error))
        else:
            put(("end", None))

    threading.Thread(target=fetch, name="qdrant-read-ahead", daemon=True).start()
    try:
        while True:
            kind, value = buffer.get()
            if kind == "item":
                yield value
            elif kind == "error":
                raise value
            else:
                return
    finally:
        stopped.set()


__all__ = ["read_ahead"]
