"""The proxy's side of OpenSearch: one pooled keep-alive session, behind an injectable transport.

The search path talks to a ``Transport`` so that unit tests run without a network; the real one
wraps one ``aiohttp.ClientSession`` whose connection pool every request shares.
"""

from __future__ import annotations

import gzip
import ssl
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import aiohttp
import orjson

from ltrr.bandit.errors import LtrrError
from ltrr.plugin.runtime import metrics


@dataclass(frozen=True, slots=True)
class UpstreamReply:
    status: int
    body: bytes

    def json(self) -> Any:
        return orjson.loads(self.body)


class UpstreamError(LtrrError):
    """OpenSearch could not be reached, or its answer could not be read."""


class UpstreamTimeout(UpstreamError):
    """OpenSearch did not answer within the time the deadline left."""


class Transport(Protocol):
    async def request(
        self,
        method: str,
        path: str,
        *,
        headers: Mapping[str, str],
        body: bytes | None,
        timeout: float | None,
    ) -> UpstreamReply: ...


class UpstreamTLSError(LtrrError):
    """The CA bundle given for OpenSearch's certificate cannot be used."""


def upstream_ssl(ca_file: Path | str | None = None) -> ssl.SSLContext:
    """How the proxy checks an ``https://`` OpenSearch: always verified, certificate chain and
    host name, against ``ca_file`` alone (a private CA's bundle) or, without one, the system
    trust store. There is deliberately no way to turn verification off: the proxy forwards
    its callers' credentials, which must never go to a node it cannot authenticate."""
    if ca_file is None:
        return ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
    path = Path(ca_file)
    if not path.is_file():
        raise UpstreamTLSError(f"the OpenSearch CA bundle {path} is not a readable file")
    try:
        return ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=str(path))
    except (ssl.SSLError, ValueError) as exc:
        raise UpstreamTLSError(
            f"the OpenSearch CA bundle {path} holds no usable PEM certificate: {exc}"
        ) from None


def make_session(limit: int = 64, tls: ssl.SSLContext | None = None) -> aiohttp.ClientSession:
    """One pool for everything: keep-alive, no automatic decompression (byte-exact
    passthrough), and ``tls`` (default: ``upstream_ssl()``) for an ``https://`` node."""
    connector = aiohttp.TCPConnector(
        limit=limit,
        keepalive_timeout=60.0,
        enable_cleanup_closed=True,
        ssl=tls if tls is not None else upstream_ssl(),
    )
    return aiohttp.ClientSession(
        connector=connector,
        auto_decompress=False,
        skip_auto_headers=("User-Agent", "Accept-Encoding", "Accept", "Content-Type"),
        timeout=aiohttp.ClientTimeout(total=None, sock_connect=10.0),
    )


class AiohttpTransport:
    """The real transport, sharing the proxy's session."""

    def __init__(self, base_url: str, session: aiohttp.ClientSession) -> None:
        self.base_url = base_url.rstrip("/")
        self.session = session

    async def request(
        self,
        method: str,
        path: str,
        *,
        headers: Mapping[str, str],
        body: bytes | None,
        timeout: float | None,
    ) -> UpstreamReply:
        sent = dict(headers)
        if body is not None and "Content-Type" not in sent:
            sent["Content-Type"] = "application/json"
        started = time.perf_counter()
        failed = True
        try:
            async with self.session.request(
                method,
                self.base_url + path,
                headers=sent,
                data=body,
                timeout=aiohttp.ClientTimeout(total=timeout),
                allow_redirects=False,
            ) as reply:
                raw = await reply.read()
                if reply.headers.get("Content-Encoding", "").lower() == "gzip":
                    raw = gzip.decompress(raw)
                failed = False
                return UpstreamReply(reply.status, raw)
        except TimeoutError as exc:
            raise UpstreamTimeout(f"{method} {path} took longer than {timeout}s") from exc
        except aiohttp.ClientError as exc:
            raise UpstreamError(f"{method} {path}: {exc}") from exc
        finally:
            metrics.upstream(metrics.api_of(path), time.perf_counter() - started, failed=failed)


class WithHeaders:
    """A transport that adds fixed headers: the proxy's own identity for its own writes."""

    def __init__(self, inner: Transport, headers: Mapping[str, str]) -> None:
        self.inner = inner
        self.headers = dict(headers)

    async def request(
        self,
        method: str,
        path: str,
        *,
        headers: Mapping[str, str],
        body: bytes | None,
        timeout: float | None,
    ) -> UpstreamReply:
        return await self.inner.request(
            method, path, headers={**headers, **self.headers}, body=body, timeout=timeout
        )
