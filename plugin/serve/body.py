"""Request bodies the proxy itself reads: decoded here, forwarded as the client sent them.

The server does not decompress (aiohttp would, and forward the plain bytes still labelled
gzip). A body is decoded only where the proxy parses it: intercepted searches, ``_msearch``
line counts, feedback and UBI writes. Decoding is bounded, so a small compressed body cannot
grow past the proxy's body limit.
"""

from __future__ import annotations

import asyncio
import zlib
from collections.abc import AsyncIterator, Mapping

from aiohttp import web

from ltrr.plugin.errors import BadRequest, HttpError, PayloadTooLarge

# A client gets this long to send its whole body (and then each chunk of a streamed one), so
# half-sent requests cannot hold connections and memory for good.
BODY_SECONDS = 30.0

# zlib's window bits: gzip framing, zlib framing, or raw deflate (some clients send it bare).
_GZIP = 16 + zlib.MAX_WBITS
_WBITS = {"gzip": _GZIP, "x-gzip": _GZIP, "deflate": zlib.MAX_WBITS, "x-deflate": zlib.MAX_WBITS}


def _inflate(raw: bytes, wbits: int, limit: int) -> bytes:
    """Every member of a gzip body (the format allows several, and OpenSearch reads them
    all); anything after the last one, or after a deflate stream, is an error."""
    out = bytearray()
    rest = raw
    while True:
        inflater = zlib.decompressobj(wbits)
        out += inflater.decompress(rest, limit + 1 - len(out))
        if len(out) > limit:
            raise PayloadTooLarge(f"request body inflates past the proxy's limit of {limit} bytes")
        if not inflater.eof:
            raise zlib.error("incomplete or truncated stream")
        rest = inflater.unused_data
        if not rest:
            return bytes(out)
        if wbits != _GZIP:
            raise zlib.error("data after the end of the stream")


def decoded(headers: Mapping[str, str], raw: bytes, limit: int) -> bytes:
    """The body as its ``Content-Encoding`` says it was written; a 400 if it was not."""
    encodings = [
        e.strip().lower() for e in headers.get("Content-Encoding", "").split(",") if e.strip()
    ]
    body = raw
    if not raw:
        return raw  # an empty body is empty, however it is labelled
    for encoding in reversed(encodings):  # listed in the order they were applied
        if encoding == "identity":
            continue
        wbits = _WBITS.get(encoding)
        if wbits is None:
            raise BadRequest(
                f"unsupported Content-Encoding [{encoding}]; the proxy reads gzip and deflate",
                error_type="illegal_argument_exception",
            )
        try:
            body = _inflate(body, wbits, limit)
        except zlib.error as exc:
            if encoding != "deflate":
                raise _not_encoded(encoding, exc) from None
            try:  # "deflate" is often sent without the zlib header
                body = _inflate(body, -zlib.MAX_WBITS, limit)
            except zlib.error:
                raise _not_encoded(encoding, exc) from None
    return body


def _not_encoded(encoding: str, exc: zlib.error) -> BadRequest:
    return BadRequest(
        f"request body is labelled Content-Encoding [{encoding}] but is not: {exc}",
        error_type="parse_exception",
    )


def _too_slow(seconds: float) -> HttpError:
    return HttpError(
        f"the request body did not arrive within {seconds:g} s",
        status=408,
        error_type="timeout_exception",
    )


async def read_body(request: web.Request, seconds: float = BODY_SECONDS) -> bytes:
    """The whole body as sent (not decoded), or a 408 when the client stalls."""
    try:
        return await asyncio.wait_for(request.read(), seconds)
    except TimeoutError:
        raise _too_slow(seconds) from None


async def body_chunks(
    request: web.Request, size: int, seconds: float = BODY_SECONDS
) -> AsyncIterator[bytes]:
    """A streamed body, each chunk within ``seconds`` of the last."""
    while True:
        try:
            chunk = await asyncio.wait_for(request.content.read(size), seconds)
        except TimeoutError:
            raise _too_slow(seconds) from None
        if not chunk:
            return
        yield chunk
