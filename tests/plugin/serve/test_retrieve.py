from __future__ import annotations

import asyncio

import orjson
import pytest

from ltrr.plugin.runtime.upstream import UpstreamReply, UpstreamTimeout
from ltrr.plugin.serve.retrieve import read_arm, retrieve
from ltrr.query_plans.fusion.base import ArmHit
from ltrr.query_plans.plan import ArmSearch, Plan


class FakeTransport:
    def __init__(self, reply=None, error=None):
        self.reply = reply
        self.error = error
        self.calls = []

    async def request(self, method, path, *, headers, body, timeout):
        self.calls.append((method, path, headers, body, timeout))
        if self.error:
            raise self.error
        return self.reply


def ok(*ids):
    return {
        "took": 3,
        "timed_out": False,
        "_shards": {"total": 1, "successful": 1, "skipped": 0, "failed": 0},
        "hits": {"hits": [{"_index": "i", "_id": d, "_score": 2.0 - n} for n, d in enumerate(ids)]},
        "status": 200,
    }


PLAN = Plan(
    (
        ArmSearch("a", "music", {"query": {"match_all": {}}, "size": 2}),
        ArmSearch("b", "other", {"query": {"match_all": {}}, "size": 2}),
    ),
    {"broken": "undefined params.x"},
)


def test_one_msearch_with_every_arm_and_the_callers_credentials():
    transport = FakeTransport(UpstreamReply(200, orjson.dumps({"responses": [ok("1"), ok("2")]})))
    retrieval = asyncio.run(retrieve(transport, PLAN, {"Authorization": "Basic x"}, 1.5))
    assert len(transport.calls) == 1
    method, path, headers, body, timeout = transport.calls[0]
    assert (method, path, timeout) == ("POST", "/_msearch", 1.5)
    assert headers == {"Authorization": "Basic x", "Content-Type": "application/x-ndjson"}
    assert body.decode().splitlines() == [
        '{"index":"music"}',
        '{"query":{"match_all":{}},"size":2}',
        '{"index":"other"}',
        '{"query":{"match_all":{}},"size":2}',
    ]
    assert retrieval.results["a"].hits == (ArmHit("i", "1", 2.0, 1, None),)
    assert retrieval.results["broken"].error == "not rendered: undefined params.x"
    assert set(retrieval.succeeded) == {"a", "b"}


@pytest.mark.parametrize(
    ("response", "error"),
    [
        (
            {
                "error": {"type": "index_not_found_exception", "reason": "no such index"},
                "status": 404,
            },
            "index_not_found_exception: no such index",
        ),
        ({**ok("1"), "timed_out": True}, "timed_out"),
        (
            {
                **ok("1"),
                "_shards": {
                    "total": 2,
                    "successful": 1,
                    "failed": 1,
                    "failures": [{"reason": {"type": "x", "reason": "boom"}}],
                },
            },
            "1 shard(s) failed: x: boom",
        ),
    ],
)
def test_failed_sub_searches_are_arm_failures(response, error):
    assert read_arm("a", response).error == error


def test_transport_failure_fails_every_arm():
    transport = FakeTransport(error=UpstreamTimeout("slow"))
    retrieval = asyncio.run(retrieve(transport, PLAN, {}, 0.1))
    assert retrieval.succeeded == {}
    assert retrieval.results["a"].error == "msearch failed: slow"


def test_msearch_level_error_fails_every_arm():
    transport = FakeTransport(UpstreamReply(401, b'{"error":{"type":"security","reason":"no"}}'))
    retrieval = asyncio.run(retrieve(transport, PLAN, {}, 0.1))
    assert retrieval.results["b"].error == "msearch status 401 security: no"
