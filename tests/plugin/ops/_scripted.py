"""A ``Cluster`` on a scripted ``opensearch-py`` connection: the official client's whole stack
(serialisation, error mapping) runs, only the socket is replaced by ``fake.request``.

``fake.request(method, url, data=..., headers=..., timeout=...)`` gets the full URL
(``http://os:9200/path?query``) and the body as bytes, and returns an object with
``status_code`` and ``content`` (a ``requests.Response`` shape), so one fake serves any tool.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from opensearchpy import OpenSearch
from opensearchpy.connection import Connection

from ltrr.plugin.ops.client import Cluster

URL = "http://os:9200"


class ScriptedConnection(Connection):
    def __init__(self, *, script: Any, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.script = script

    def perform_request(
        self, method, url, params=None, body=None, timeout=None, ignore=(), headers=None
    ):
        query = f"?{urlencode(params)}" if params else ""
        data = body.encode() if isinstance(body, str) else body
        reply = self.script.request(
            method, f"{URL}{url}{query}", data=data, headers=headers, timeout=timeout
        )
        status = int(reply.status_code)
        raw = reply.content.decode() if isinstance(reply.content, bytes) else reply.content
        if not 200 <= status < 300 and status not in ignore:
            self._raise_error(status, raw, "application/json")
        return status, {"content-type": "application/json"}, raw


def scripted_cluster(script: Any) -> Cluster:
    client = OpenSearch(hosts=[URL], connection_class=ScriptedConnection, script=script)
    return Cluster(URL, client=client)
