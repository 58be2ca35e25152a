"""clone_index, forget_targets and the search pipelines against a fake session that records
every call."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from ltrr.plugin.errors import LtrrError
from ltrr.plugin.learn.bulk import MEMORY_INDEX, STATE_INDEX
from ltrr.plugin.ops.simulate.cluster_ops import (
    clone_index,
    delete_pipelines,
    drop_indices,
    ensure_ubi_index,
    forget_targets,
    put_pipeline,
)

URL = "http://os"


class _Reply:
    def __init__(self, status: int = 200, body: dict[str, Any] | None = None) -> None:
        self.status_code = status
        self._body = body or {}
        self.text = orjson.dumps(self._body).decode()

    def json(self) -> dict[str, Any]:
        return self._body


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
        if not queue:
            return _Reply()
        return queue.pop(0) if len(queue) > 1 else queue[0]

    def head(self, url: str, **_: Any) -> _Reply:
        return self._answer("HEAD", url, None)

    def delete(self, url: str, **_: Any) -> _Reply:
        return self._answer("DELETE", url, None)

    def get(self, url: str, params: Any = None, **_: Any) -> _Reply:
        return self._answer("GET", url, params)

    def put(self, url: str, json: Any = None, **_: Any) -> _Reply:
        return self._answer("PUT", url, json)

    def post(self, url: str, json: Any = None, data: Any = None, **_: Any) -> _Reply:
        return self._answer("POST", url, json if json is not None else data)


BLOCK = ("PUT", "/src/_settings", {"index.blocks.write": True})
UNBLOCK = ("PUT", "/src/_settings", {"index.blocks.write": None})


def _clone(target: str) -> tuple[str, str, Any]:
    settings = {"index.blocks.write": None, "index.number_of_replicas": 0}
    return ("POST", f"/src/_clone/{target}", {"settings": settings})


def test_clone_replaces_existing_copies_then_blocks_clones_and_unblocks() -> None:
    # t1 exists (HEAD 200) and is deleted first; t2 does not (404).
    http = _Session({("HEAD", "/t1"): [_Reply(200)], ("HEAD", "/t2"): [_Reply(404)]})
    clone_index(http, URL, "src", ["t1", "t2"])  # type: ignore[arg-type]
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
        clone_index(http, URL, "src", ["t1", "t2"])  # type: ignore[arg-type]
    # No second clone, no health wait, and the block is lifted last.
    assert http.calls[-3:] == [BLOCK, _clone("t1"), UNBLOCK]


def test_a_failed_write_block_clones_nothing() -> None:
    http = _Session({("HEAD", "/t1"): [_Reply(404)], ("PUT", "/src/_settings"): [_Reply(403)]})
    with pytest.raises(LtrrError, match="write-block src: OpenSearch answered 403"):
        clone_index(http, URL, "src", ["t1"])  # type: ignore[arg-type]
    assert not any(method == "POST" for method, _, _ in http.calls)


def test_drop_indices_deletes_each() -> None:
    http = _Session()
    drop_indices(http, URL, ["a", "b"])  # type: ignore[arg-type]
    assert http.calls == [("DELETE", "/a", None), ("DELETE", "/b", None)]


def _hits(*ids: str) -> _Reply:
    return _Reply(200, {"hits": {"hits": [{"_id": i} for i in ids]}})


def _deleted(index: str, ids: list[str]) -> bytes:
    return b"".join(orjson.dumps({"delete": {"_index": index, "_id": i}}) + b"\n" for i in ids)


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
    assert forget_targets(http, URL, ["t1", "t2"]) == 4  # type: ignore[arg-type]
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
    assert forget_targets(http, URL, ["t1"]) == 0  # type: ignore[arg-type]
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
        forget_targets(http, URL, ["t1"])  # type: ignore[arg-type]


def test_forget_reports_a_failed_search() -> None:
    http = _Session(
        {
            ("HEAD", f"/{STATE_INDEX}"): [_Reply(200)],
            ("POST", f"/{STATE_INDEX}/_search"): [_Reply(500, {"error": "x"})],
        }
    )
    with pytest.raises(LtrrError, match=f"search {STATE_INDEX}: OpenSearch answered 500"):
        forget_targets(http, URL, ["t1"])  # type: ignore[arg-type]


def test_the_ubi_index_is_created_with_the_replicas_the_cluster_can_hold() -> None:
    http = _Session({("HEAD", "/ubi_events"): [_Reply(404)]})
    ensure_ubi_index(http, URL)  # type: ignore[arg-type]
    settings = {"index": {"number_of_shards": 1, "auto_expand_replicas": "0-1"}}
    assert http.calls == [
        ("HEAD", "/ubi_events", None),
        ("PUT", "/ubi_events", {"settings": settings}),
    ]

    existing = _Session({("HEAD", "/ubi_events"): [_Reply(200)]})
    ensure_ubi_index(existing, URL)  # type: ignore[arg-type]
    assert existing.calls == [("HEAD", "/ubi_events", None)]


def test_pipelines_are_put_and_deleted_by_name() -> None:
    body = {"phase_results_processors": [{"score-ranker-processor": {}}]}
    http = _Session({("DELETE", "/_search/pipeline/p2"): [_Reply(404)]})
    put_pipeline(http, URL, "p1", body)  # type: ignore[arg-type]
    # p2 was never made (a start that failed half-way): a 404 is no error.
    delete_pipelines(http, URL, ["p1", "p2"])  # type: ignore[arg-type]
    assert http.calls == [
        ("PUT", "/_search/pipeline/p1", body),
        ("DELETE", "/_search/pipeline/p1", None),
        ("DELETE", "/_search/pipeline/p2", None),
    ]


def test_a_refused_pipeline_says_which() -> None:
    http = _Session({("PUT", "/_search/pipeline/p1"): [_Reply(400, {"error": "weights"})]})
    with pytest.raises(LtrrError, match="create the search pipeline p1: OpenSearch answered 400"):
        put_pipeline(http, URL, "p1", {})  # type: ignore[arg-type]
    failing = _Session({("DELETE", "/_search/pipeline/p1"): [_Reply(500)]})
    with pytest.raises(LtrrError, match="delete the search pipeline p1"):
        delete_pipelines(failing, URL, ["p1"])  # type: ignore[arg-type]
