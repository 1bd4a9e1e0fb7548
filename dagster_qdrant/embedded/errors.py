"""Errors the embedded server answers with, in Qdrant's own status codes and wording.

Handlers raise `ApiError`; the HTTP layer turns it into `{"status": {"error": ...}, "time": ...}`
so clients (qdrant-client, `dagster_qdrant.http`) map it exactly as they map a real Qdrant's error.
"""

from __future__ import annotations


class ApiError(Exception):
    """A request the server refuses: HTTP status plus the message a user reads."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def bad_request(message: str) -> ApiError:
    """400: the body or parameters cannot be used as given (Qdrant prefixes these with 'Wrong input')."""
    return ApiError(400, f"Wrong input: {message}")


def bad_json(message: str) -> ApiError:
    """400: the body is not JSON or not of the expected shape."""
    return ApiError(400, f"Json deserialize error: {message}")


def invalid(message: str) -> ApiError:
    """422: the body parsed, but a value is out of its allowed range."""
    return ApiError(422, f"Validation error in JSON body: [{message}]")


def invalid_in(where: str, message: str) -> ApiError:
    """422 as Qdrant's validation handler words it for ``where`` ("path parameters", "JSON body", ...)."""
    return ApiError(422, f"Validation error in {where}: [{message}]")


def not_found(message: str) -> ApiError:
    """404: a collection, alias or point that does not exist."""
    return ApiError(404, f"Not found: {message}")


def collection_not_found(name: str) -> ApiError:
    """404 for a collection, worded like Qdrant."""
    return not_found(f"Collection `{name}` doesn't exist!")


def conflict(message: str) -> ApiError:
    """409: the thing to create is already there."""
    return ApiError(409, f"Wrong input: {message}")


def from_engine(error: Exception) -> ApiError:
    """Map an error raised by Qdrant Edge: the engine's own message is already the right words."""
    message = str(error) or type(error).__name__
    if isinstance(error, (ValueError, TypeError, OverflowError)):
        return bad_request(message)
    lowered = message.lower()
    if "not found" in lowered or "no point with id" in lowered:
        return not_found(message)
    if any(
        marker in lowered
        for marker in ("dimension", "vector name", "wrong input", "bad input", "bad request", "index", "expected")
    ):
        return bad_request(message)
    return ApiError(500, f"Service internal error: {message}")
