"""Forward a request to OpenSearch so faithfully that the client cannot tell the proxy is there.

Method, path, query string, body (streamed) and end-to-end headers go up unchanged; status,
headers and body (gzip and chunked included) come back unchanged. Hop-by-hop headers, and any
named in ``Connection``, are dropped as RFC 9110 section 7.6.1 says.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import aiohttp
from aiohttp import web
from multidict import CIMultiDict, CIMultiDictProxy

from ltrr.plugin.errors import HttpError, PayloadTooLarge
from ltrr.plugin.serve.body import BODY_SECONDS, body_chunks, read_body

HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-connection",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
    }
)
# The proxy's own secrets, meant for it alone: never sent on to OpenSearch, whatever the route.
PROXY_ONLY = frozenset({"x-ltrr-admin-token"})
CHUNK = 64 * 1024
SMALL_RESPONSE = 1024 * 1024


def end_to_end(headers: CIMultiDictProxy[str] | CIMultiDict[str]) -> CIMultiDict[str]:
    """The headers a proxy must pass on; ``Host`` and ``Content-Length`` are the sender's."""
    named = {
        token.strip().lower()
        for value in headers.getall("Connection", [])
        for token in value.split(",")
        if token.strip()
    }
    drop = HOP_BY_HOP | PROXY_ONLY | named | {"host", "content-length"}
    return CIMultiDict((k, v) for k, v in headers.items() if k.lower() not in drop)


class _Capped:
    """A streamed request body that stops at ``limit`` bytes or when the client stalls, and
    remembers why.

    aiohttp wraps an error raised while sending into a connection error; ``failed`` lets the
    caller tell "too large" or "too slow" from "OpenSearch went away".
    """

    def __init__(self, request: web.Request, limit: int, seconds: float) -> None:
        self.request = request
        self.limit = limit
        self.seconds = seconds
        self.failed: HttpError | None = None

    async def chunks(self) -> AsyncIterator[bytes]:
        seen = 0
        try:
            async for chunk in body_chunks(self.request, CHUNK, self.seconds):
                seen += len(chunk)
                if seen > self.limit:
                    raise PayloadTooLarge(self.message())
                yield chunk
        except HttpError as exc:
            self.failed = exc
            raise

    def message(self) -> str:
        return f"request body is larger than the proxy's limit of {self.limit} bytes"


async def forward(
    request: web.Request,
    session: aiohttp.ClientSession,
    base_url: str,
    *,
    max_body: int,
    body_seconds: float = BODY_SECONDS,
    body: bytes | None = None,
    plain: bool = False,
    buffer: bool = False,
    timeout: aiohttp.ClientTimeout,
) -> web.StreamResponse:
    """Stream ``request`` to OpenSearch and its answer back.

    ``body`` replaces one already read: the client's own bytes, or, with ``plain``, bytes the
    proxy rewrote uncompressed (so the client's ``Content-Encoding`` no longer applies).
    ``buffer`` reads the whole answer into a ``web.Response``, for a caller that reads it too.
    ``timeout`` bounds the exchange with OpenSearch.
    """
    if request.content_length is not None and request.content_length > max_body:
        raise PayloadTooLarge(
            f"request body of {request.content_length} bytes is larger than the proxy's limit of "
            f"{max_body} bytes"
        )
    headers = end_to_end(request.headers)
    if plain:
        headers.popall("Content-Encoding", None)
    data: bytes | AsyncIterator[bytes] | None = None
    capped: _Capped | None = None
    if body is not None:
        data = body
    elif request.body_exists:
        if request.content_length is not None and request.content_length <= CHUNK:
            data = await read_body(request, body_seconds)
        else:
            capped = _Capped(request, max_body, body_seconds)
            data = capped.chunks()
    try:
        return await _exchange(request, session, base_url, headers, data, buffer, timeout)
    except aiohttp.ClientError:
        if capped is not None and capped.failed is not None:
            raise capped.failed from None
        raise


async def _exchange(
    request: web.Request,
    session: aiohttp.ClientSession,
    base_url: str,
    headers: CIMultiDict[str],
    data: bytes | AsyncIterator[bytes] | None,
    buffer: bool,
    timeout: aiohttp.ClientTimeout,
) -> web.StreamResponse:
    async with session.request(
        request.method,
        base_url + request.raw_path,
        headers=headers,
        data=data,
        allow_redirects=False,
        compress=None,
        timeout=timeout,
    ) as upstream:
        answer_headers = end_to_end(upstream.headers)
        length = upstream.headers.get("Content-Length")
        small = length is not None and int(length) <= SMALL_RESPONSE
        if (small or buffer) and request.method != "HEAD":
            # Most answers are small and sized: one write is cheaper than a stream.
            body = await upstream.read()
            response = web.Response(
                status=upstream.status, reason=upstream.reason, body=body, headers=answer_headers
            )
            await response.prepare(request)
            await response.write_eof()
            return response
        streamed = web.StreamResponse(status=upstream.status, reason=upstream.reason)
        streamed.headers.extend(answer_headers)
        if length is not None:
            streamed.content_length = int(length)
        await streamed.prepare(request)
        if request.method != "HEAD":
            async for chunk in upstream.content.iter_any():
                await streamed.write(chunk)
        await streamed.write_eof()
        return streamed


@dataclass(frozen=True, slots=True)
class Fetched:
    """An answer read whole, for a caller that rewrites it before the client sees it."""

    status: int
    reason: str | None
    headers: CIMultiDict[str]
    body: bytes


async def fetch(
    request: web.Request,
    session: aiohttp.ClientSession,
    base_url: str,
    *,
    body: bytes,
    timeout: aiohttp.ClientTimeout,
) -> Fetched:
    """``request`` with the proxy's own plain ``body`` sent on, its answer read, not sent."""
    headers = end_to_end(request.headers)
    headers.popall("Content-Encoding", None)
    async with session.request(
        request.method,
        base_url + request.raw_path,
        headers=headers,
        data=body,
        allow_redirects=False,
        compress=None,
        timeout=timeout,
    ) as upstream:
        answer = await upstream.read()
        return Fetched(upstream.status, upstream.reason, end_to_end(upstream.headers), answer)
