"""Errors raised by dagster_qdrant.

Every error a user can cause carries what went wrong and how to fix it. Errors coming from the server
also carry the HTTP status, the collection and, for writes, a sample of the point ids involved, so a
failing Spark task or Dagster step can be traced to the rows that caused it. Secrets (the API key) are
never part of any message: a server or a proxy in front of it may quote the request's headers in an error
body, so the HTTP client passes every error through ``redact`` before raising it.
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Iterable
from typing import Any
from urllib.parse import quote

_ID_SAMPLE_SIZE = 10
MASK = "***"
_SECRET_HEADER = re.compile(r"key|token|secret|auth|cookie|pass", re.IGNORECASE)


def secret_values(headers: dict[str, str]) -> tuple[str, ...]:
    """The credentials among request headers: whole values, and the token of ``Bearer <token>`` forms."""
    secrets: set[str] = set()
    for name, value in headers.items():
        if _SECRET_HEADER.search(name) and value.strip():
            secrets.add(value.strip())
            token = value.strip().partition(" ")[2].strip()
            if token:
                secrets.add(token)
    return tuple(sorted(secrets, key=len, reverse=True))


def secret_forms(secret: str) -> set[str]:
    """The ways a secret can appear when a server quotes it: as sent, JSON-escaped, URL- or HTML-encoded."""
    if not secret:
        return set()
    return {secret, json.dumps(secret)[1:-1], quote(secret, safe=""), html.escape(secret)} - {""}


def redact(text: str, secrets: Iterable[str]) -> str:
    """``text`` with every form of every secret replaced by ``***`` (longest first, so none is left in part)."""
    forms = {form for secret in secrets for form in secret_forms(secret)}
    for form in sorted(forms, key=len, reverse=True):
        text = text.replace(form, MASK)
    return text


def _sample(point_ids: Iterable[Any] | None) -> list[Any]:
    """The first few ids, enough to find the rows without flooding a log."""
    if point_ids is None:
        return []
    sample: list[Any] = []
    for point_id in point_ids:
        if len(sample) >= _ID_SAMPLE_SIZE:
            break
        sample.append(point_id)
    return sample


class QdrantError(Exception):
    """Base class: anything that went wrong talking to Qdrant or preparing data for it."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        collection: str | None = None,
        point_ids: Iterable[Any] | None = None,
    ) -> None:
        self.message = message
        self.status = status
        self.collection = collection
        self.point_ids = _sample(point_ids)
        super().__init__(self._full_message())

    def _full_message(self) -> str:
        details = []
        if self.status is not None:
            details.append(f"HTTP {self.status}")
        if self.collection is not None:
            details.append(f"collection {self.collection!r}")
        if self.point_ids:
            details.append(f"first point ids {self.point_ids!r}")
        if not details:
            return self.message
        return f"{self.message} ({', '.join(details)})"

    def redact(self, secrets: Iterable[str]) -> None:
        """Mask the secrets in this error's message (and so in its str, repr and args)."""
        self.message = redact(self.message, secrets)
        self.args = (self._full_message(),)

    def __reduce__(self) -> tuple[Any, ...]:
        # Spark ships exceptions from executors to the driver by pickling them; keyword-only
        # constructor arguments need an explicit recipe.
        return (_rebuild, (type(self), self.__dict__.copy()))


def _rebuild(cls: type[QdrantError], state: dict[str, Any]) -> QdrantError:
    error = cls.__new__(cls)
    error.__dict__.update(state)
    Exception.__init__(error, error._full_message())
    return error


class QdrantConfigError(QdrantError, ValueError):
    """An option has a value that cannot work: the message names the option, the value and what is allowed."""


class QdrantSchemaError(QdrantConfigError):
    """The Spark schema and the points do not fit: a value of another type, or a type that cannot be read.

    A configuration error (the schema is an option the user gives or lets be inferred), so code that
    catches QdrantConfigError also sees it.
    """


class QdrantDataError(QdrantError, ValueError):
    """A row cannot become a Qdrant point (bad id, vector or payload value); nothing of it was sent."""


class QdrantConnectionError(QdrantError, ConnectionError):
    """The server could not be reached, or kept timing out after every retry."""


class QdrantAuthError(QdrantError):
    """The server refused the credentials (401/403): set api_key or QDRANT_API_KEY."""


class QdrantNotFoundError(QdrantError):
    """The collection (or point) does not exist (404)."""


def collection_not_found(
    collection: str, endpoint: str, fix: str, *, detail: str | None = None, point_ids: Iterable[Any] | None = None
) -> QdrantNotFoundError:
    """The one wording of a missing collection, whoever finds it missing: the name, the server, what the
    server said (``detail``, when a request came back 404) and the fix that fits where it was found."""
    said = f" ({detail})" if detail else ""
    return QdrantNotFoundError(
        f"Collection {collection!r} does not exist at {endpoint}{said}; {fix}",
        status=404,
        collection=collection,
        point_ids=point_ids,
    )


class QdrantRequestError(QdrantError):
    """The server rejected a request (a 4xx other than 401/403/404) or data could not become a request."""


class QdrantWriteError(QdrantError):
    """A write stopped part way: some points were written, others were not."""

    def __init__(
        self,
        message: str,
        *,
        written: int = 0,
        failed: int | None = 0,
        unread_from: int | None = None,
        failed_ids: Iterable[Any] | None = None,
        status: int | None = None,
        collection: str | None = None,
    ) -> None:
        self.written = written
        self.failed = failed
        self.unread_from = unread_from
        self.failed_ids = _sample(failed_ids)
        counts = f"{written} points written"
        # failed None: the writer cannot know (the driver of a Spark write never sees the rows); 0 with
        # unread_from: every row read before the refusal was written, so only the unread rows are missing.
        if failed is not None and (failed or unread_from is None):
            counts += f", {failed} points not written"
        if unread_from is not None:
            counts += f"; no row from row {unread_from} on was written (the input was not read further)"
        super().__init__(
            f"{message}; {counts}",
            status=status,
            collection=collection,
            point_ids=self.failed_ids,
        )


__all__ = [
    "QdrantAuthError",
    "QdrantConfigError",
    "QdrantConnectionError",
    "QdrantDataError",
    "QdrantError",
    "QdrantNotFoundError",
    "QdrantRequestError",
    "QdrantSchemaError",
    "QdrantWriteError",
    "collection_not_found",
    "redact",
    "secret_values",
]
