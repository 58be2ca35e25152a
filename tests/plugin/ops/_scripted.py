"""A ``Cluster`` on a scripted ``opensearch-py`` connection: the official client's whole stack
(serialisation, error mapping, the bulk helper) runs, only the socket is replaced.

The script answers either through ``request(method, url, data=..., headers=..., timeout=...)``
or, shaped like a ``requests.Session``, through ``head``/``get``/``put``/``post``/``delete``
(``url``, ``json=``, ``data=``). Either way it gets the full URL (``{base}/path?query``) and
returns an object with ``status_code`` and ``content`` (or ``json()``).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

import orjson
from opensearchpy.connection import Connection

from ltrr.plugin.ops.client import Cluster, connect

URL = "http://os:9200"


def _content(reply: Any) -> str:
    raw = getattr(reply, "content", None)
    if raw is None:
        raw = orjson.dumps(reply.json())
    return raw.decode() if isinstance(raw, bytes) else str(raw)


class ScriptedConnection(Connection):
    def __init__(self, *, script: Any, base: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.script = script
        self.base = base

    def _call(self, method: str, url: str, data: bytes | None, headers: Any, timeout: Any) -> Any:
        handler = getattr(self.script, "request", None)
        if handler is not None:
            return handler(method, url, data=data, headers=headers, timeout=timeout)
        ndjson = "ndjson" in str((headers or {}).get("content-type", ""))
        json = orjson.loads(data) if data and not ndjson else None
        verb = getattr(self.script, method.lower())
        if method in ("HEAD", "DELETE", "GET") and json is None:
            return verb(url, timeout=timeout)
        return verb(url, json=json, data=data, timeout=timeout)

    def perform_request(
        self, method, url, params=None, body=None, timeout=None, ignore=(), headers=None
    ):
        query = f"?{urlencode(params)}" if params else ""
        data = body.encode() if isinstance(body, str) else body
        reply = self._call(method, f"{self.base}{url}{query}", data, headers, timeout)
        status = int(reply.status_code)
        raw = _content(reply)
        if not 200 <= status < 300 and status not in ignore:
            self._raise_error(status, raw, "application/json")
        return status, {"content-type": "application/json"}, raw


def scripted_cluster(script: Any, url: str = URL) -> Cluster:
    """The client ``connect`` makes (its options included), on the scripted connection."""
    client = connect(URL, connection_class=ScriptedConnection, script=script, base=url)
    return Cluster(url, client=client)
