"""The operations tools' client: the official opensearch-py stack on a scripted connection."""

from __future__ import annotations

from types import SimpleNamespace

import orjson
import pytest
from opensearchpy.exceptions import ConnectionError as ClientConnectionError

from ltrr.plugin.errors import ClusterUnavailable, LtrrError
from ltrr.plugin.ops.client import ClusterError
from tests.plugin.ops._scripted import scripted_cluster


class Script:
    """Answers (method, path) from ``routes``; records every call with its headers and body."""

    def __init__(self, routes):
        self.routes = routes
        self.calls = []

    def request(self, method, url, data=None, headers=None, timeout=None):
        path = url.removeprefix("http://os:9200")
        self.calls.append((method, path, dict(headers or {}), data))
        if path not in self.routes:
            raise ClientConnectionError("N/A", f"refused {path}", None)
        status, body = self.routes[path]
        return SimpleNamespace(status_code=status, content=orjson.dumps(body))


def test_request_reads_any_status_and_ok_names_a_failed_request():
    script = Script({"/a": (201, {"result": "created"}), "/b": (409, {"error": "conflict"})})
    http = scripted_cluster(script)
    assert http.request("PUT", "/a", {"x": 1}) == (200, {"result": "created"})  # 2xx as 200
    assert http.request("PUT", "/b") == (409, {"error": "conflict"})
    with pytest.raises(ClusterError, match=r"PUT /b answered 409: \{'error': 'conflict'\}") as err:
        http.ok("PUT", "/b")
    assert err.value.status == 409
    assert isinstance(err.value, LtrrError)
    assert script.calls[0][3] == b'{"x":1}'


def test_exists_is_head_200_and_a_missing_index_is_false():
    http = scripted_cluster(Script({"/here": (200, {}), "/gone": (404, {})}))
    assert http.exists("/here") is True
    assert http.exists("/gone") is False


def test_ndjson_goes_as_bytes_with_its_own_content_type_only():
    script = Script({"/_msearch": (200, {"responses": []})})
    body = b'{"index":"m"}\n{"query":{"match_all":{}}}\n'
    assert scripted_cluster(script).ok("POST", "/_msearch", ndjson=body) == {"responses": []}
    (_, _, headers, data) = script.calls[0]
    assert data == body
    assert [v for k, v in headers.items() if k.lower() == "content-type"] == [
        "application/x-ndjson"
    ]


def test_an_unreachable_cluster_is_cluster_unavailable():
    with pytest.raises(ClusterUnavailable, match="http://os:9200 did not answer GET /nowhere"):
        scripted_cluster(Script({})).request("GET", "/nowhere")


def test_bulk_sends_helper_actions_and_returns_only_the_refused_items():
    items = [
        {"index": {"_id": "1", "status": 201}},
        {"index": {"_id": "2", "status": 400, "error": {"type": "mapper_parsing_exception"}}},
    ]
    script = Script({"/_bulk": (200, {"errors": True, "items": items})})
    refused = scripted_cluster(script).bulk(
        [{"_index": "m", "_id": "1", "_source": {"a": 1}}, {"_index": "m", "_id": "2", "b": 2}]
    )
    assert refused == [
        {"index": {"_id": "2", "status": 400, "error": {"type": "mapper_parsing_exception"}}}
    ]
    (_, path, _, data) = script.calls[0]
    lines = [orjson.loads(line) for line in data.splitlines() if line.strip()]
    assert path == "/_bulk"
    assert lines == [
        {"index": {"_index": "m", "_id": "1"}},
        {"a": 1},
        {"index": {"_index": "m", "_id": "2"}},
        {"b": 2},
    ]


def test_bulk_refresh_is_asked_for_only_when_wanted():
    items = [{"delete": {"_id": "1", "status": 200}}]
    script = Script(
        {
            "/_bulk": (200, {"errors": False, "items": items}),
            "/_bulk?refresh=true": (200, {"errors": False, "items": items}),
        }
    )
    http = scripted_cluster(script)
    assert http.bulk([{"_op_type": "delete", "_index": "m", "_id": "1"}]) == []
    assert http.bulk([{"_op_type": "delete", "_index": "m", "_id": "1"}], refresh=True) == []
    assert [path for _, path, _, _ in script.calls] == ["/_bulk", "/_bulk?refresh=true"]


def test_a_failed_request_is_sent_once():
    script = Script({})  # every path refused
    with pytest.raises(ClusterUnavailable):
        scripted_cluster(script).request("POST", "/_ltr/_featureset/fs/_createmodel", {"m": 1})
    assert len(script.calls) == 1
