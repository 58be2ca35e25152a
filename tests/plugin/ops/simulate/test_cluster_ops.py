"""clone_index, forget_targets and the search pipelines against a fake session that records
every call."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl

import orjson
import pytest

from ltrr.plugin.errors import LtrrError
from ltrr.plugin.learn.bulk import MEMORY_INDEX, STATE_INDEX
from ltrr.plugin.ops.client import Cluster
from ltrr.plugin.ops.simulate.cluster_ops import (
    clone_index,
    delete_pipelines,
    drop_indices,
    ensure_ubi_index,
    forget_targets,
    put_pipeline,
)
from tests.plugin.ops._scripted import scripted_cluster

URL = "http://os:9200"


class _Reply:
    def __init__(self, status: int = 200, body: dict[str, Any] | None = None) -> None:
        self.status_code = status
        self._body = body or {}
        self.text = orjson.dumps(self._body).decode()

    def json(self) -> dict[str, Any]:
        return self._body

    @property
    def content(self) -> bytes:
        return self.text.encode()


class _Session:
    """Records (method, path, json/params/data); ``answers`` maps (method, path) to replies,
    consumed in order (the last one repeats); unlisted calls answer 200 {}."""

    def __init__(self, answers: dict[tuple[str, str], list[_Reply]] | None = None) -> None:
        self.calls: list[tuple[str, str, Any]] = []
        self.answers = answers or {}

    def _answer(self, method: str, url: str, payload: Any) -> _Reply:
        path = url.removeprefix(URL)
        self.calls.append((method, path, payload))
        queue = self.answers.get((method, path))
        if not queue and path == "/_bulk":  # every item stored, as a cluster answers
            items = [{op: {**meta, "status": 200}} for line in payload for op, meta in line.items()]
            return _Reply(200, {"errors": False, "items": items})
        if not queue:
            return _Reply()
        return queue.pop(0) if len(queue) > 1 else queue[0]

    def request(self, method: str, url: str, data: Any = None, **_: Any) -> _Reply:
        """The scripted connection's entry: a GET records its parameters, a bulk its NDJSON
        bytes, anything else its JSON body."""
        path, _, query = url.partition("?")
        payload: Any = None
        if method == "GET":
            payload = dict(parse_qsl(query)) or None
        elif path.endswith("/_bulk"):
            payload = [orjson.loads(line) for line in data.splitlines() if line.strip()]
        elif data:
            payload = orjson.loads(data)
        return self._answer(method, path, payload)


def cluster(session: _Session) -> Cluster:
    return scripted_cluster(session)


BLOCK = ("PUT", "/src/_settings", {"index.blocks.write": True})
UNBLOCK = ("PUT", "/src/_settings", {"index.blocks.write": None})


def _clone(target: str) -> tuple[str, str, Any]:
    settings = {
        "index.blocks.write": None,
        "index.number_of_replicas": 0,
        "index.refresh_interval": "-1",  # only the simulated clock refreshes a copy
    }
    return ("POST", f"/src/_clone/{target}", {"settings": settings})


def test_clone_replaces_existing_copies_then_blocks_clones_and_unblocks() -> None:
    # t1 exists (HEAD 200) and is deleted first; t2 does not (404).
    http = _Session({("HEAD", "/t1"): [_Reply(200)], ("HEAD", "/t2"): [_Reply(404)]})
    clone_index(cluster(http), "src", ["t1", "t2"])
    assert http.calls == [
        ("HEAD", "/t1", None),
        ("DELETE", "/t1", None),
        ("HEAD", "/t2", None),
        BLOCK,
        _clone("t1"),
        _clone("t2"),
        ("GET", "/_cluster/health/t1,t2", {"wait_for_status": "yellow", "timeout": "60s"}),
        UNBLOCK,
    ]


def test_a_failed_clone_still_unblocks_the_source() -> None:
    http = _Session(
        {
            ("HEAD", "/t1"): [_Reply(404)],
            ("HEAD", "/t2"): [_Reply(404)],
            ("POST", "/src/_clone/t1"): [_Reply(400, {"error": "resource_already_exists"})],
        }
    )
    with pytest.raises(LtrrError, match="clone src to t1: OpenSearch answered 400"):
        clone_index(cluster(http), "src", ["t1", "t2"])
    # No second clone, no health wait, and the block is lifted last.
    assert http.calls[-3:] == [BLOCK, _clone("t1"), UNBLOCK]


def test_a_failed_write_block_clones_nothing() -> None:
    http = _Session({("HEAD", "/t1"): [_Reply(404)], ("PUT", "/src/_settings"): [_Reply(403)]})
    with pytest.raises(LtrrError, match="write-block src: OpenSearch answered 403"):
        clone_index(cluster(http), "src", ["t1"])
    assert not any(method == "POST" for method, _, _ in http.calls)


def test_drop_indices_deletes_each() -> None:
    http = _Session()
    drop_indices(cluster(http), ["a", "b"])
    assert http.calls == [("DELETE", "/a", None), ("DELETE", "/b", None)]


def _hits(*ids: str) -> _Reply:
    return _Reply(200, {"hits": {"hits": [{"_id": i} for i in ids]}})


def _deleted(index: str, ids: list[str]) -> list[dict[str, Any]]:
    return [{"delete": {"_index": index, "_id": i}} for i in ids]


def test_forget_deletes_exactly_the_found_ids_until_none_are_left() -> None:
    http = _Session(
        {
            ("HEAD", f"/{STATE_INDEX}"): [_Reply(200)],
            ("HEAD", f"/{MEMORY_INDEX}"): [_Reply(200)],
            # state: two rounds of hits, then none; memory: one round, then none.
            ("POST", f"/{STATE_INDEX}/_search"): [
                _hits("t1:lexical", "t1:_catalog"),
                _hits("t2:dense"),
                _hits(),
            ],
            ("POST", f"/{MEMORY_INDEX}/_search"): [_hits("t1:q:abc"), _hits()],
        }
    )
    # 2 + 1 state documents, 1 memory document
    assert forget_targets(cluster(http), ["t1", "t2"]) == 4
    bulks = [payload for method, path, payload in http.calls if path == "/_bulk"]
    assert bulks == [
        _deleted(STATE_INDEX, ["t1:lexical", "t1:_catalog"]),
        _deleted(STATE_INDEX, ["t2:dense"]),
        _deleted(MEMORY_INDEX, ["t1:q:abc"]),
    ]
    searches = [p for _, path, p in http.calls if path == f"/{STATE_INDEX}/_search"]
    assert len(searches) == 3
    assert searches[0]["query"]["bool"]["should"] == [
        {"terms": {"target": ["t1", "t2"]}},
        {"ids": {"values": ["t1:_catalog", "t2:_catalog"]}},
    ]
    # Each index is refreshed once before its first search.
    refreshes = [path for method, path, _ in http.calls if path.endswith("/_refresh")]
    assert refreshes == [f"/{STATE_INDEX}/_refresh", f"/{MEMORY_INDEX}/_refresh"]


def test_forget_skips_missing_indices() -> None:
    http = _Session(
        {("HEAD", f"/{STATE_INDEX}"): [_Reply(404)], ("HEAD", f"/{MEMORY_INDEX}"): [_Reply(404)]}
    )
    assert forget_targets(cluster(http), ["t1"]) == 0
    assert [m for m, _, _ in http.calls] == ["HEAD", "HEAD"]


def test_forget_fails_on_a_bulk_item_error_instead_of_looping() -> None:
    # On a cluster the document stays and would be found forever; a failed delete must raise.
    failed = _Reply(
        200,
        {
            "errors": True,
            "items": [{"delete": {"_id": "t1:a", "status": 403, "error": {"type": "blocked"}}}],
        },
    )
    http = _Session(
        {
            ("HEAD", f"/{STATE_INDEX}"): [_Reply(200)],
            ("HEAD", f"/{MEMORY_INDEX}"): [_Reply(404)],
            # Found once, then (as if deleted) never again: without the check, no error.
            ("POST", f"/{STATE_INDEX}/_search"): [_hits("t1:a"), _hits()],
            ("POST", "/_bulk"): [failed],
        }
    )
    with pytest.raises(LtrrError, match=f"delete from {STATE_INDEX}: document t1:a"):
        forget_targets(cluster(http), ["t1"])


def test_forget_reports_a_failed_search() -> None:
    http = _Session(
        {
            ("HEAD", f"/{STATE_INDEX}"): [_Reply(200)],
            ("POST", f"/{STATE_INDEX}/_search"): [_Reply(500, {"error": "x"})],
        }
    )
    with pytest.raises(LtrrError, match=f"search {STATE_INDEX}: OpenSearch answered 500"):
        forget_targets(cluster(http), ["t1"])


def test_the_ubi_index_is_created_with_the_replicas_the_cluster_can_hold() -> None:
    http = _Session({("HEAD", "/ubi_events"): [_Reply(404)]})
    ensure_ubi_index(cluster(http))
    settings = {"index": {"number_of_shards": 1, "auto_expand_replicas": "0-1"}}
    assert http.calls == [
        ("HEAD", "/ubi_events", None),
        ("PUT", "/ubi_events", {"settings": settings}),
    ]

    existing = _Session({("HEAD", "/ubi_events"): [_Reply(200)]})
    ensure_ubi_index(cluster(existing))
    assert existing.calls == [("HEAD", "/ubi_events", None)]


def test_pipelines_are_put_and_deleted_by_name() -> None:
    body = {"phase_results_processors": [{"score-ranker-processor": {}}]}
    http = _Session({("DELETE", "/_search/pipeline/p2"): [_Reply(404)]})
    put_pipeline(cluster(http), "p1", body)
    # p2 was never made (a start that failed half-way): a 404 is no error.
    delete_pipelines(cluster(http), ["p1", "p2"])
    assert http.calls == [
        ("PUT", "/_search/pipeline/p1", body),
        ("DELETE", "/_search/pipeline/p1", None),
        ("DELETE", "/_search/pipeline/p2", None),
    ]


def test_a_refused_pipeline_says_which() -> None:
    http = _Session({("PUT", "/_search/pipeline/p1"): [_Reply(400, {"error": "weights"})]})
    with pytest.raises(LtrrError, match="create the search pipeline p1: OpenSearch answered 400"):
        put_pipeline(cluster(http), "p1", {})
    failing = _Session({("DELETE", "/_search/pipeline/p1"): [_Reply(500)]})
    with pytest.raises(LtrrError, match="delete the search pipeline p1"):
        delete_pipelines(cluster(failing), ["p1"])
