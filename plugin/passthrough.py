"""Forward a request to OpenSearch so faithfully that the client cannot tell the proxy is there.

Method, path, query string, body (streamed) and end-to-end headers go up unchanged; status,
headers and body (gzip and chunked included) come back unchanged. Hop-by-hop headers, and any
named in ``Connection``, are dropped as RFC 9110 section 7.6.1 says.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping

import aiohttp
from aiohttp import web
from multidict import CIMultiDict, CIMultiDictProxy

from ltrr.plugin.errors import PayloadTooLarge

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
    drop = HOP_BY_HOP | named | {"host", "content-length"}
    return CIMultiDict((k, v) for k, v in headers.items() if k.lower() not in drop)


async def _capped(stream: aiohttp.StreamReader, limit: int) -> AsyncIterator[bytes]:
    seen = 0
    async for chunk in stream.iter_chunked(CHUNK):
        seen += len(chunk)
        if seen > limit:
            raise PayloadTooLarge(f"request body is larger than the proxy's limit of {limit} bytes")
        yield chunk


async def forward(
    request: web.Request,
    session: aiohttp.ClientSession,
    base_url: str,
    *,
    max_body: int,
    body: bytes | None = None,
    extra_headers: Mapping[str, str] | None = None,
) -> web.StreamResponse:
    """Stream ``request`` to OpenSearch and its answer back; ``body`` replaces one already read."""
    if request.content_length is not None and request.content_length > max_body:
        raise PayloadTooLarge(
            f"request body of {request.content_length} bytes is larger than the proxy's limit of "
            f"{max_body} bytes"
        )
    headers = end_to_end(request.headers)
    data: bytes | AsyncIterator[bytes] | None
    if body is not None:
        data = body
    elif request.body_exists:
        if request.content_length is not None and request.content_length <= CHUNK:
            data = await request.content.read()
        else:
            data = _capped(request.content, max_body)
    else:
        data = None
    async with session.request(
        request.method,
        base_url + request.raw_path,
        headers=headers,
        data=data,
        allow_redirects=False,
        compress=None,
    ) as upstream:
        headers = end_to_end(upstream.headers)
        headers.update(extra_headers or {})
        length = upstream.headers.get("Content-Length")
        if length is not None and int(length) <= SMALL_RESPONSE and request.method != "HEAD":
            # Most answers are small and sized: one write is cheaper than a stream.
            body = await upstream.read()
            response = web.Response(
                status=upstream.status, reason=upstream.reason, body=body, headers=headers
            )
            await response.prepare(request)
            await response.write_eof()
            return response
        streamed = web.StreamResponse(status=upstream.status, reason=upstream.reason)
        streamed.headers.extend(headers)
        if length is not None:
            streamed.content_length = int(length)
        await streamed.prepare(request)
        if request.method != "HEAD":
            async for chunk in upstream.content.iter_any():
                await streamed.write(chunk)
        await streamed.write_eof()
        return streamed
