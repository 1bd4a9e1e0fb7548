"""Request bodies as Qdrant (actix-web) takes them: framed, size-capped, decompressed, parsed, depth-checked.

Everything here bounds what a request can cost before any handler sees it:
- ``Content-Length`` must be digits; a chunked body needs well-formed hex chunk sizes and line ends. A body
  whose framing cannot be read is a 400, and the connection is closed (its next bytes cannot be trusted).
- bodies over ``MAX_REQUEST_BYTES`` (Qdrant's ``max_request_size_mb`` = 32) are refused with actix's own
  words, before they are read when the length is declared, as they arrive when it is not;
- ``Content-Encoding: gzip``/``deflate`` bodies are decompressed in pieces and stop at the same cap, so a
  small bomb never grows to its full size in memory; a body that is not what its encoding says is a 400;
- JSON nested deeper than serde_json's recursion limit (128, which Qdrant keeps) is refused as Qdrant
  refuses it, so no handler (or engine call) recurses through it.
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import orjson

from dagster_qdrant.embedded.errors import ApiError

MAX_REQUEST_BYTES = 32 * 1024 * 1024
"""Qdrant's default ``service.max_request_size_mb`` (32), applied to the body after decompression."""
MAX_NESTING = 128
"""serde_json's recursion limit: a 128th array or object inside the others is an error in Qdrant."""
DISCARD_LIMIT = 2 * MAX_REQUEST_BYTES
"""An oversized body up to this size is read and dropped so the client sees the 400; a bigger one is not."""
_LINE_LIMIT = 4096
_PIECE = 1 << 16
_DIGITS = re.compile(rb"[0-9]+")
_HEX = re.compile(rb"[0-9A-Fa-f]+")
_STRING = re.compile(rb'"[^"]*"')
_ESCAPE = re.compile(rb"\\.", re.DOTALL)
_NOT_STRUCTURE = bytes(set(range(256)) - set(b'[]{}"\\/bfnrtu'))
"""Everything but brackets, quotes and escapes (a backslash and the character JSON allows after it)."""
_NOT_BRACKETS = bytes(set(range(256)) - set(b"[]{}"))
_DECODERS: dict[str, Callable[[], Any]] = {
    "gzip": lambda: zlib.decompressobj(16 + zlib.MAX_WBITS),
    "x-gzip": lambda: zlib.decompressobj(16 + zlib.MAX_WBITS),
    "deflate": lambda: zlib.decompressobj(zlib.MAX_WBITS),
}


class FramingError(ApiError):
    """400 for a body whose length or chunks cannot be read: the connection must be closed after it."""

    def __init__(self, message: str) -> None:
        super().__init__(400, message)


def too_large(length: int) -> ApiError:
    """actix's ``JsonPayloadError::OverflowKnownLength``, in Qdrant's envelope (400)."""
    return ApiError(400, f"JSON payload ({length} bytes) is larger than allowed (limit: {MAX_REQUEST_BYTES} bytes).")


def over_limit() -> ApiError:
    """actix's ``JsonPayloadError::Overflow``: the body outgrew the limit while it was read or decompressed."""
    return ApiError(400, f"JSON payload has exceeded limit ({MAX_REQUEST_BYTES} bytes).")


def declared_length(values: list[str]) -> int:
    """The ``Content-Length`` of a request (0 when absent); several must agree (RFC 9112 section 6.3)."""
    if not values:
        return 0
    lengths = {value.strip() for value in values}
    if len(lengths) != 1 or not _DIGITS.fullmatch(next(iter(lengths)).encode()):
        raise FramingError(f"Bad request: invalid Content-Length header {', '.join(values)!r}: expected one number of bytes")
    return int(next(iter(lengths)))


def read_chunked(readline: Callable[[int], bytes], read: Callable[[int], bytes]) -> bytes:
    """A ``Transfer-Encoding: chunked`` body, kept while it is within ``MAX_REQUEST_BYTES``.

    Past the limit the rest is read and dropped (up to ``DISCARD_LIMIT``) so the client gets the answer on a
    connection that stays usable; past that, or on a malformed chunk, the connection is given up.
    """
    parts: list[bytes] = []
    total = 0
    while True:
        line = readline(_LINE_LIMIT)
        size_text = line.split(b";", 1)[0].strip()
        if not line.endswith(b"\n") or not _HEX.fullmatch(size_text):
            raise FramingError(f"Bad request: invalid chunk size line {line[:40]!r} in a chunked body")
        size = int(size_text, 16)
        if size == 0:
            _skip_trailers(readline)
            if total > MAX_REQUEST_BYTES:
                raise over_limit()
            return b"".join(parts)
        total += size
        if total > DISCARD_LIMIT:
            raise FramingError(over_limit().message)
        keep = total <= MAX_REQUEST_BYTES
        for piece in _pieces(read, size):
            if keep:
                parts.append(piece)
        if keep is False:
            parts.clear()
        if readline(_LINE_LIMIT) not in (b"\r\n", b"\n"):
            raise FramingError("Bad request: a chunk of a chunked body is longer than its size says")


def _pieces(read: Callable[[int], bytes], size: int) -> Iterator[bytes]:
    """``size`` bytes in pieces of at most 1 MiB: a chunk's declared size never becomes one allocation."""
    remaining = size
    while remaining:
        piece = read(min(remaining, 1 << 20))
        if not piece:
            raise ConnectionError("the client closed the connection in the middle of a chunk")
        remaining -= len(piece)
        yield piece


def _skip_trailers(readline: Callable[[int], bytes]) -> None:
    for _ in range(100):
        line = readline(_LINE_LIMIT)
        if line in (b"\r\n", b"\n", b""):
            return
    raise FramingError("Bad request: too many trailer lines after a chunked body")


def decoded(raw: bytes | bytearray, encoding: str) -> bytes | bytearray:
    """The body without its ``Content-Encoding``, decompressed piece by piece up to ``MAX_REQUEST_BYTES``."""
    encoding = encoding.strip().lower()
    if encoding in ("", "identity") or not raw:
        return raw
    if encoding not in _DECODERS:
        raise ApiError(400, f"Error that occur during reading payload: unsupported Content-Encoding {encoding!r}")
    decoder = _DECODERS[encoding]()
    parts: list[bytes] = []
    total = 0
    pending: bytes | bytearray = raw
    try:
        while not decoder.eof:
            part = decoder.decompress(pending, _PIECE)
            pending = decoder.unconsumed_tail
            if not part and not pending:
                break  # the input ended before the compressed stream did
            total += len(part)
            if total > MAX_REQUEST_BYTES:
                raise over_limit()
            parts.append(part)
    except zlib.error:
        raise ApiError(400, "Error that occur during reading payload: Can not decode content-encoding.") from None
    if not decoder.eof:
        raise ApiError(400, "Error that occur during reading payload: Can not decode content-encoding.")
    return b"".join(parts)


def parse_json(raw: bytes | bytearray) -> Any:
    """The body as JSON (None when empty), refused when not JSON or nested past ``MAX_NESTING``."""
    if not raw or raw.isspace():
        return None
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError as error:
        raise ApiError(400, f"Json deserialize error: {error}") from None
    check_nesting(raw)
    return value


def check_nesting(raw: bytes | bytearray) -> None:
    """Refuse valid JSON with more than ``MAX_NESTING`` arrays/objects inside each other, as serde_json does.

    Cheap for ordinary bodies (numbers, the bulk of an upsert, are dropped first, in one C pass): what is
    left is brackets, quotes and escapes; escapes then strings are cut out and the depth is the running sum
    of opening minus closing brackets. Call it on JSON that has already parsed (the brackets balance).
    """
    structure = bytes(raw.translate(None, _NOT_STRUCTURE))
    if structure.count(b"[") + structure.count(b"{") < MAX_NESTING:
        return
    brackets = _STRING.sub(b"", _ESCAPE.sub(b"", structure)).translate(None, _NOT_BRACKETS)
    steps = np.frombuffer(brackets, dtype=np.uint8)
    depth = np.cumsum(np.where((steps == ord("[")) | (steps == ord("{")), 1, -1), dtype=np.int64)
    if len(depth) and int(depth.max()) >= MAX_NESTING:
        raise nesting_error()


def nesting_error() -> ApiError:
    """serde_json's error for a too-deep body, as Qdrant words a body it cannot deserialize (400)."""
    return ApiError(
        400,
        f"Format error in JSON body: recursion limit exceeded (more than {MAX_NESTING - 1} arrays or objects "
        "nested in each other)",
    )

