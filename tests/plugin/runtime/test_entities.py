"""EntityCache: paged composite aggregations over an injected transport and clock."""

from __future__ import annotations

import asyncio

import orjson
import pytest

from ltrr.plugin.runtime.entities import PAGE, EntityCache
from ltrr.plugin.runtime.upstream import UpstreamError, UpstreamReply

HEADERS = {"Authorization": "Bearer t"}


class Clock:
    def __init__(self, now=100.0):
        self.now = now

    def __call__(self):
        return self.now


class Pages:
    """Answers each ``_search`` with the next scripted reply; records what was asked."""

    def __init__(self, *replies):
        self.replies = list(replies)
        self.requests = []

    async def request(self, method, path, *, headers, body, timeout):
        self.requests.append((method, path, dict(headers), orjson.loads(body), timeout))
        reply = self.replies.pop(0)
        if isinstance(reply, Exception):
            raise reply
        if isinstance(reply, UpstreamReply):
            return reply
        return UpstreamReply(200, orjson.dumps(reply))

    def composites(self):
        return [body["aggs"]["entities"]["composite"] for *_, body, _ in self.requests]


def page(names, after=True):
    agg = {"buckets": [{"key": {"name": n}, "doc_count": 1} for n in names]}
    if after and names:
        agg["after_key"] = {"name": names[-1]}
    return {"aggregations": {"entities": agg}}


def refresh(cache, transport, target="music"):
    asyncio.run(cache.refresh(transport, target, HEADERS))


@pytest.fixture
def clock():
    return Clock()


def test_refresh_pages_through_the_composite_aggregation(clock):
    transport = Pages(page(["Daft Punk", "Air"]), page(["Justice"]), page([]))
    cache = EntityCache("name.keyword", 300.0, 1000, clock=clock)

    refresh(cache, transport)

    assert len(transport.requests) == 3
    method, path, headers, body, timeout = transport.requests[0]
    assert (method, path, headers, timeout) == ("POST", "/music/_search", HEADERS, 30.0)
    assert body == {
        "size": 0,
        "aggs": {
            "entities": {
                "composite": {
                    "size": 1000,
                    "sources": [{"name": {"terms": {"field": "name.keyword"}}}],
                }
            }
        },
    }
    composites = transport.composites()
    assert [c.get("after") for c in composites] == [None, {"name": "Air"}, {"name": "Justice"}]
    assert [c["size"] for c in composites] == [1000, 998, 997]  # what is left of the maximum
    assert len(cache.current) == 3
    assert cache.current.exact("daft punk")
    assert not cache.current.exact("daft")
    assert cache.loaded_at == 100.0


def test_refresh_stops_at_max_entries_and_asks_no_more_than_is_left(clock):
    transport = Pages(page(["a1", "a2"]), page(["a3"]), page(["never asked"]))
    cache = EntityCache("name", 300.0, 3, clock=clock)

    refresh(cache, transport)

    assert [c["size"] for c in transport.composites()] == [3, 1]
    assert len(cache.current) == 3


def test_a_page_size_is_capped_at_page(clock):
    transport = Pages(page(["only"], after=False))
    cache = EntityCache("name", 300.0, PAGE * 3, clock=clock)

    refresh(cache, transport)

    # No after_key: the last page, whatever its size.
    assert [c["size"] for c in transport.composites()] == [PAGE]
    assert len(cache.current) == 1


@pytest.mark.parametrize(
    "failure",
    [
        UpstreamReply(403, b'{"error": "forbidden"}'),
        UpstreamError("POST /music/_search: connection reset"),
        {"took": 1},  # no aggregations: KeyError
        UpstreamReply(200, b"not json"),  # ValueError
    ],
)
def test_a_failed_refresh_keeps_the_previous_dictionary(clock, failure):
    cache = EntityCache("name", 300.0, 10, clock=clock)
    refresh(cache, Pages(page(["Air"], after=False)))
    previous = cache.current
    clock.now = 500.0

    refresh(cache, Pages(page(["Justice"]), failure))

    assert cache.current is previous
    assert cache.loaded_at == 100.0
    assert cache.stale()  # so the next search tries again


def test_stale_until_loaded_then_after_refresh_seconds(clock):
    cache = EntityCache("name", 60.0, 10, clock=clock)
    assert cache.stale()
    refresh(cache, Pages(page([])))
    assert cache.current is not None
    assert len(cache.current) == 0
    clock.now = 160.0  # exactly refresh_seconds later: still fresh
    assert not cache.stale()
    clock.now = 160.5
    assert cache.stale()


def test_maybe_refresh_runs_one_refresh_at_a_time_and_none_when_fresh(clock):
    transport = Pages(page(["Air"], after=False), page(["Justice"], after=False))
    cache = EntityCache("name", 60.0, 10, clock=clock)

    async def go():
        cache.maybe_refresh(transport, "music", HEADERS)
        first = cache._task
        cache.maybe_refresh(transport, "music", HEADERS)  # one is running: no second
        assert cache._task is first
        await first
        cache.maybe_refresh(transport, "music", HEADERS)  # fresh: nothing to do
        assert cache._task is first
        clock.now = 200.0
        cache.maybe_refresh(transport, "music", HEADERS)
        assert cache._task is not first
        await cache._task

    asyncio.run(go())

    assert len(transport.requests) == 2
    assert cache.current.exact("justice")
    assert cache.loaded_at == 200.0
