"""The one OpenSearch client of the operations tools: the official ``opensearch-py`` underneath.

Every command that talks to a cluster (``ltrr ltr``, ``ope``, ``memory predict``, ``data``,
``simulate``, ``opensearch status``) takes a ``Cluster``, so a unit test injects one built on
a scripted ``opensearch-py`` connection and needs no network. The official client brings
authentication (``https://user:pass@host`` URLs), TLS, retries and the bulk helpers; this
module only maps its errors into our hierarchy, with the request named, so that a command
fails with one clear line. The serving path keeps its own aiohttp transport.
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Iterable, Mapping
from typing import Any

from opensearchpy import OpenSearch, helpers
from opensearchpy.exceptions import ConnectionError as ClientConnectionError
from opensearchpy.exceptions import ConnectionTimeout, SerializationError, TransportError

from ltrr.plugin.errors import ClusterUnavailable, LtrrError

# The client logs every failed request at WARNING; our errors already say what failed, and a
# node being polled while it starts would fill the terminal with refused connections.
logging.getLogger("opensearch").setLevel(logging.ERROR)

DEFAULT_TIMEOUT = 60.0
NDJSON = {"content-type": "application/x-ndjson"}  # lower case: it replaces the default


class ClusterError(LtrrError):
    """OpenSearch answered a request of an operations tool with an error status."""

    def __init__(self, method: str, path: str, status: int, payload: Any) -> None:
        super().__init__(f"{method} {path} answered {status}: {str(payload)[:500]}")
        self.status = status
        self.payload = payload


class Cluster:
    """JSON (and NDJSON) requests to one cluster, and bulk indexing with the official helper."""

    def __init__(
        self,
        url: str,
        *,
        client: OpenSearch | None = None,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> None:
        self.url = url.rstrip("/")
        self.timeout = timeout
        self.client = client if client is not None else connect(self.url, timeout=timeout)

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        ndjson: bytes | None = None,
        params: Mapping[str, Any] | None = None,
        timeout: float | None = None,
    ) -> tuple[int, Any]:
        """(status, payload) whatever the status (any 2xx reads as 200); raises only when
        the cluster cannot be reached."""
        try:
            payload = self.client.transport.perform_request(
                method,
                path,
                params=dict(params or {}),
                body=ndjson if ndjson is not None else body,
                headers=NDJSON if ndjson is not None else None,
                timeout=timeout if timeout is not None else self.timeout,
            )
        except (ClientConnectionError, ConnectionTimeout) as exc:
            raise ClusterUnavailable(f"{self.url} did not answer {method} {path}: {exc}") from exc
        except SerializationError as exc:
            raise ClusterUnavailable(
                f"{method} {path} on {self.url} answered with something that is not JSON: {exc}"
            ) from exc
        except TransportError as exc:
            if not isinstance(exc.status_code, int):
                raise ClusterUnavailable(f"{method} {path} on {self.url} failed: {exc}") from exc
            return exc.status_code, exc.info if exc.info is not None else {}
        if method == "HEAD":
            return (200 if payload else 404), {}
        return 200, payload if payload is not None else {}

    def ok(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        ndjson: bytes | None = None,
        params: Mapping[str, Any] | None = None,
        timeout: float | None = None,
    ) -> Any:
        """The payload of a request that must succeed; ``ClusterError`` names it otherwise."""
        status, payload = self.request(
            method, path, body, ndjson=ndjson, params=params, timeout=timeout
        )
        if status >= 300:
            raise ClusterError(method, path, status, payload)
        return payload

    def exists(self, path: str) -> bool:
        return self.request("HEAD", path)[0] == 200

    def bulk(
        self, actions: Iterable[Mapping[str, Any]], *, chunk_size: int = 500, refresh: bool = False
    ) -> list[dict[str, Any]]:
        """Send ``actions`` (helper format: ``_op_type``, ``_index``, ``_id``, ``_source`` or
        ``doc``) with the official bulk helper; returns the items OpenSearch refused, each as
        ``{action: item}`` (empty when every one was stored)."""
        extra: dict[str, Any] = {"refresh": "true"} if refresh else {}
        try:
            _, errors = helpers.bulk(
                self.client,
                actions,
                chunk_size=chunk_size,
                raise_on_error=False,
                request_timeout=self.timeout,
                **extra,
            )
        except (ClientConnectionError, ConnectionTimeout) as exc:
            raise ClusterUnavailable(f"{self.url} did not answer a bulk request: {exc}") from exc
        except TransportError as exc:  # the whole request refused (a malformed body, say)
            raise ClusterError("POST", "/_bulk", int(exc.status_code or 0), exc.info) from exc
        return list(errors) if isinstance(errors, list) else []

    def close(self) -> None:
        self.client.close()


def connect(url: str, *, timeout: float = DEFAULT_TIMEOUT, **options: Any) -> OpenSearch:
    """The official client for ``url`` (credentials in the URL are used as basic auth);
    ``options`` go to ``OpenSearch`` (tests pass a scripted ``connection_class``)."""
    # No retries: a tool's POST (a model upload, a clone) must not be sent twice, and a caller
    # that wants to wait for a node polls on its own.
    return OpenSearch(hosts=[url], timeout=timeout, max_retries=0, **options)


def free_port(host: str = "127.0.0.1") -> int:
    """A port nothing listens on now (for a benchmark's own proxy)."""
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])
