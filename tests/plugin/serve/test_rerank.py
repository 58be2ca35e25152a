"""Rerank: one LTR rescore search over the fused candidates, or the fused order when it fails."""

from __future__ import annotations

import asyncio
import time

import orjson
import pytest

from ltrr.plugin.runtime.stats import Stats
from ltrr.plugin.runtime.upstream import UpstreamReply, UpstreamTimeout
from ltrr.plugin.serve.rerank import rerank
from ltrr.query_plans.catalog import RerankConfig
from ltrr.query_plans.fusion.base import FusedHit, Provenance

CONFIG = RerankConfig(model="m1", store="s1")
SHARDS = {"total": 2, "successful": 2, "skipped": 0, "failed": 0}


class FakeTransport:
    def __init__(self, reply=None, error=None):
        self.reply = reply
        self.error = error
        self.calls = []

    async def request(self, method, path, *, headers, body, timeout):
        self.calls.append((method, path, dict(headers), body, timeout))
        if self.error is not None:
            raise self.error
        return self.reply


def fused_hit(index, doc, score):
    return FusedHit(index, doc, score, None, (Provenance("a", 1, score),))


# fused order: books/1, films/2, books/3
FUSED = [
    fused_hit("books", "1", 0.03),
    fused_hit("films", "2", 0.02),
    fused_hit("books", "3", 0.01),
]


def model_reply(*scored, shards=SHARDS):
    hits = [{"_index": i, "_id": d, "_score": s} for i, d, s in scored]
    body = {"took": 4, "timed_out": False, "_shards": shards, "hits": {"hits": hits}}
    return UpstreamReply(200, orjson.dumps(body))


PARAMS = {"keywords": "daft punk", "from_a": '["1","2","3"]'}


def run(transport, config=CONFIG, fused=FUSED, stats=None, deadline=None):
    stats = stats if stats is not None else Stats()
    if deadline is None:
        deadline = time.perf_counter() + 2.0
    headers = {"Authorization": "Bearer t"}
    return asyncio.run(rerank(transport, config, fused, PARAMS, headers, deadline, stats))


def order(reranked):
    return [(r.hit.index, r.hit.id, r.score, r.ltr_score) for r in reranked.ranked]


FUSED_ORDER = [
    ("books", "1", 0.03, None),
    ("films", "2", 0.02, None),
    ("books", "3", 0.01, None),
]


@pytest.mark.parametrize(("config", "fused"), [(None, FUSED), (CONFIG, [])])
def test_no_config_or_no_candidates_keeps_the_fused_order(config, fused):
    transport = FakeTransport(error=AssertionError("no request expected"))
    reranked = run(transport, config=config, fused=fused)
    assert order(reranked) == FUSED_ORDER[: len(fused)]
    assert reranked.info == {"status": "none"}
    assert reranked.shards == {}
    assert transport.calls == []


def test_the_model_scores_reorder_the_candidates():
    # the model ranks books/3 (7.5), books/1 (2.0), films/2 (-1.0); a foreign hit is ignored
    reply = model_reply(
        ("books", "3", 7.5), ("films", "1", 99.0), ("books", "1", 2.0), ("films", "2", -1.0)
    )
    stats = Stats()
    reranked = run(FakeTransport(reply), stats=stats)
    assert order(reranked) == [
        ("books", "3", 7.5, 7.5),
        ("books", "1", 2.0, 2.0),
        ("films", "2", -1.0, -1.0),
    ]
    assert reranked.info == {"model": "m1", "status": "ok"}
    assert reranked.shards == SHARDS
    assert stats.counts["rerank_failures"] == 0


def test_a_candidate_the_model_did_not_score_follows_with_its_fused_score():
    reranked = run(FakeTransport(model_reply(("books", "3", 7.5), ("films", "2", 1.0))))
    assert order(reranked) == [
        ("books", "3", 7.5, 7.5),
        ("films", "2", 1.0, 1.0),
        ("books", "1", 0.03, None),
    ]


def test_the_request_goes_to_the_sorted_candidate_indices():
    transport = FakeTransport(model_reply(("books", "1", 1.0)))
    fused = [fused_hit("zeta", "1", 0.3), fused_hit("alpha", "2", 0.2), fused_hit("zeta", "3", 0.1)]
    run(transport, fused=fused, deadline=time.perf_counter() + 2.0)
    ((method, path, headers, body, timeout),) = transport.calls
    assert (method, path) == ("POST", "/alpha,zeta/_search")
    assert headers == {"Authorization": "Bearer t", "Content-Type": "application/json"}
    assert 0.0 < timeout <= 2.0
    sent = orjson.loads(body)
    assert sent["rescore"]["query"]["rescore_query"]["sltr"] == {
        "params": {"keywords": "daft punk", "from_a": '["1","2","3"]'},
        "model": "m1",
        "store": "s1",
    }
    assert sent["rescore"]["window_size"] == 3
    assert sent["size"] == 3


@pytest.mark.parametrize(
    ("transport", "reason"),
    [
        (FakeTransport(error=UpstreamTimeout("POST /_search: timed out")), "timed out"),
        (FakeTransport(UpstreamReply(200, b"<html>bad gateway</html>")), ""),
        (
            FakeTransport(
                UpstreamReply(500, b'{"error": {"type": "x", "reason": "model m1 not found"}}')
            ),
            "rerank search failed: model m1 not found",
        ),
        (
            FakeTransport(model_reply(("books", "1", 1.0), shards={**SHARDS, "failed": 1})),
            "rerank search: 1 of 2 shards failed",
        ),
        (
            FakeTransport(
                UpstreamReply(200, b'{"hits": {"hits": [{"_index": "books", "_id": "1"}]}}')
            ),
            "rerank hit books/1 has no score",
        ),
    ],
    ids=["upstream-timeout", "not-json", "error-body", "failed-shard", "no-score"],
)
def test_a_failed_rerank_keeps_the_fused_order(transport, reason):
    stats = Stats()
    reranked = run(transport, stats=stats)
    assert order(reranked) == FUSED_ORDER
    assert reranked.info["model"] == "m1"
    assert reranked.info["status"] == "failed"
    assert reason in reranked.info["reason"]
    assert reranked.shards == {}
    assert stats.counts["rerank_failures"] == 1


def test_a_reply_that_is_not_a_json_object_keeps_the_fused_order():
    stats = Stats()
    reranked = run(FakeTransport(UpstreamReply(200, b"[]")), stats=stats)
    assert order(reranked) == FUSED_ORDER
    assert reranked.info["status"] == "failed"
    assert stats.counts["rerank_failures"] == 1
