"""The proxy app on a simulated clock (``ltrr serve --simulated-clock``), in process, in front
of an in-process fake OpenSearch that records what reached it."""

from __future__ import annotations

import asyncio
import math
from datetime import UTC, datetime

import orjson
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from ltrr.plugin.errors import HttpError
from ltrr.plugin.learn.tokens import TOKEN_HEADER
from ltrr.plugin.runtime.clock import SIM_TIME_HEADER, SimulatedClock
from ltrr.plugin.runtime.registry import CatalogRegistry
from ltrr.plugin.runtime.upstream import UpstreamReply
from ltrr.plugin.serve.server import SERVER_OPTIONS, Proxy, _settle, _sim_seconds, _sim_tick

CATALOG = """\
target: music
budget: 10
policy: {name: static}
arms:
  - name: lexical
    template: multi_match.json.j2
    params: {fields: [name]}
    size: {min: 5, max: 10}
feedback:
  events: {click: 1.0}
  window_seconds: 60
memory:
  name_fields: [name]
fallback: [{arm: lexical, size: 5}]
"""

T0 = 1_800_000_000.0  # 2027-01-15T08:00:00Z, a Friday
WINDOW = 60.0
SIM_CLOCK = "/_ltrr/_sim/clock"


class Upstream:
    """What the proxy's OpenSearch saw; ``merges`` scripts ``_stats/merge``'s current merges."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, str]] = []
        self.merges: list[int] = []

    def paths(self, *wanted: str) -> list[str]:
        return [p for _, p in self.requests if p.endswith(wanted)]

    def app(self) -> web.Application:
        async def handle(request: web.Request) -> web.StreamResponse:
            body = await request.read()
            path = request.path
            self.requests.append((request.method, path))
            if request.method == "HEAD":
                return web.Response(status=200)
            if path == "/_msearch":
                lines = body.decode().splitlines()
                hits = {"hits": [{"_index": "music", "_id": "1", "_score": 1.0, "_source": {}}]}
                responses = [{"status": 200, "hits": hits, "_shards": {}} for _ in lines[1::2]]
                return web.json_response({"responses": responses})
            if path == "/music/_mapping":
                return web.json_response({"music": {"mappings": {}}})
            if path.endswith("/_mapping"):
                return web.json_response({"acknowledged": True})
            if path == "/ltrr-memory/_mget":
                ids = orjson.loads(body)["ids"]
                docs = [{"_index": "ltrr-memory", "_id": i, "found": False} for i in ids]
                return web.json_response({"docs": docs})
            if path == "/_bulk":
                items = []
                lines = iter(body.splitlines())
                for line in lines:
                    ((op, meta),) = orjson.loads(line).items()
                    if op != "delete":
                        next(lines)
                    status = 201 if op in ("create", "index") else 200
                    items.append(
                        {op: {"_index": meta["_index"], "_id": meta["_id"], "status": status}}
                    )
                return web.json_response({"errors": False, "items": items})
            if path.endswith("/_stats/merge"):
                current = self.merges.pop(0) if self.merges else 0
                merges = {"merges": {"current": current}}
                return web.json_response({"_all": {"total": merges}})
            if path.endswith("/_refresh"):
                return web.json_response({"_shards": {"total": 1, "successful": 1, "failed": 0}})
            return web.json_response({"passthrough": path}, status=201)

        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", handle)
        return app


async def serving(proxy: Proxy) -> TestServer:
    """The proxy's app served as ``ltrr serve`` serves it (no automatic decompression)."""
    server = TestServer(proxy.app())
    await server.start_server(**SERVER_OPTIONS)
    return server


@pytest.fixture
def upstream():
    return Upstream()


@pytest.fixture
def run(tmp_path, upstream):
    path = tmp_path / "music.yml"
    path.write_text(CATALOG)

    def runner(scenario, *, clock=None, data_dir=True):
        async def go():
            server = TestServer(upstream.app())
            await server.start_server()
            registry = CatalogRegistry([path], seed=1)
            registry.load_all()
            proxy = Proxy(
                registry,
                str(server.make_url("")).rstrip("/"),
                data_dir=tmp_path / "data" if data_dir else None,
                clock=clock,
            )
            try:
                async with TestClient(await serving(proxy)) as client:
                    return await scenario(client, proxy)
            finally:
                await server.close()

        return asyncio.run(go())

    return runner


async def search(client, query="daft punk", at=None, **ltrr):
    headers = {} if at is None else {SIM_TIME_HEADER: str(at)}
    response = await client.post(
        "/music/_search",
        json={"ext": {"ltrr": {"query": query, "explain": True, **ltrr}}},
        headers=headers,
    )
    return response.status, await response.json()


async def tick(client, body):
    data = body if isinstance(body, bytes) else orjson.dumps(body)
    response = await client.post(SIM_CLOCK, data=data)
    return response.status, await response.json()


def hour_features(when: float) -> tuple[float, float]:
    now = datetime.fromtimestamp(when, UTC)
    hour = 2 * math.pi * (now.hour + now.minute / 60) / 24
    return math.sin(hour), math.cos(hour)


# --- the clock route ---


def test_the_clock_route_closes_the_due_windows_and_settles_the_written_targets(run, upstream):
    clock = SimulatedClock()

    async def scenario(client, proxy):
        status, body = await search(client, at=T0)
        assert status == 200
        decision_id = body["ext"]["ltrr"]["decision_id"]
        assert proxy.learner.background is False
        assert proxy.learner._tasks == []  # no wall-clock loops on a simulated clock
        assert proxy.learner.pending_decisions() == 1

        early = await tick(client, {"now": T0 + WINDOW - 1, "targets": ["music"]})
        merges_before = len(upstream.paths("/_stats/merge"))
        due = await tick(client, {"now": T0 + WINDOW, "targets": ["music"]})
        again = await tick(client, {"now": T0 + WINDOW + 1, "targets": ["music"]})
        return decision_id, early, due, again, merges_before, proxy

    upstream.merges = [0]
    decision_id, early, due, again, merges_before, proxy = run(scenario, clock=clock)
    assert decision_id
    # The first tick writes the search's memory (so it settles), closes nothing yet.
    assert early == (200, {"now": T0 + WINDOW - 1, "windows_closed": 0})
    assert due == (200, {"now": T0 + WINDOW, "windows_closed": 1})
    assert again == (200, {"now": T0 + WINDOW + 1, "windows_closed": 0})
    assert proxy.learner.pending_decisions() == 0
    assert clock.last == T0 + WINDOW + 1  # the tick set the clock
    # Only the tick that wrote memory waited for merges and refreshed the target, in order.
    after_memory = [p for _, p in upstream.requests if p.startswith(("/music/_", "/ltrr-memory"))]
    assert after_memory[-3:] == ["/ltrr-memory/_mget", "/music/_stats/merge", "/music/_refresh"]
    assert merges_before == 1
    assert len(upstream.paths("/_refresh")) == 1


def test_the_clock_route_without_a_data_directory_only_answers(run, upstream):
    async def scenario(client, _proxy):
        return await tick(client, {"now": T0, "targets": ["music"]})

    assert run(scenario, clock=SimulatedClock(), data_dir=False) == (
        200,
        {"now": T0, "windows_closed": 0},
    )
    assert upstream.paths("/_refresh", "/_stats/merge") == []


def test_a_tick_for_another_target_closes_nothing_of_this_one(run, upstream):
    async def scenario(client, proxy):
        await search(client, at=T0)
        answer = await tick(client, {"now": T0 + 10 * WINDOW, "targets": ["books"]})
        return answer, proxy.learner.pending_decisions(), proxy.learner.memory.pending_targets()

    answer, pending, memory = run(scenario, clock=SimulatedClock())
    assert answer == (200, {"now": T0 + 10 * WINDOW, "windows_closed": 0})
    assert (pending, memory) == (1, ["music"])
    assert upstream.paths("/_refresh", "/_stats/merge") == []


@pytest.mark.parametrize(
    ("body", "error_type"),
    [
        (b"not json", "parse_exception"),
        (b"", "parse_exception"),
        (b"[1, 2]", "parse_exception"),
        (b'"now"', "parse_exception"),
        ({"targets": ["music"]}, "parse_exception"),
        ({"now": T0}, "parse_exception"),
        ({"now": T0, "targets": "music"}, "illegal_argument_exception"),
        ({"now": T0, "targets": {"music": 1}}, "illegal_argument_exception"),
        ({"now": T0, "targets": ["music", ""]}, "illegal_argument_exception"),
        ({"now": T0, "targets": ["music", 3]}, "illegal_argument_exception"),
        (b'{"now": 1e999, "targets": ["music"]}', "parse_exception"),  # infinite
        ({"now": True, "targets": ["music"]}, "illegal_argument_exception"),
        ({"now": False, "targets": ["music"]}, "illegal_argument_exception"),
        ({"now": "1800000000", "targets": ["music"]}, "illegal_argument_exception"),
        ({"now": None, "targets": ["music"]}, "illegal_argument_exception"),
    ],
    ids=[
        "not-json",
        "empty",
        "list",
        "string",
        "no-now",
        "no-targets",
        "targets-string",
        "targets-object",
        "empty-target",
        "number-target",
        "infinite-now",
        "true-now",
        "false-now",
        "string-now",
        "null-now",
    ],
)
def test_a_bad_clock_body_is_a_400_in_opensearch_format(run, body, error_type):
    clock = SimulatedClock(T0)

    async def scenario(client, proxy):
        await search(client, at=T0)
        answer = await tick(client, body)
        return answer, proxy.learner.pending_decisions()

    (status, error), pending = run(scenario, clock=clock)
    assert status == 400
    assert error["status"] == 400
    assert error["error"]["type"] == error_type
    assert error["error"]["root_cause"] == [
        {"type": error_type, "reason": error["error"]["reason"]}
    ]
    assert pending == 1  # nothing ran
    assert clock.last == T0


def test_without_a_clock_there_is_no_clock_route(run, upstream):
    async def scenario(client, _proxy):
        return await tick(client, {"now": T0, "targets": ["music"]})

    status, body = run(scenario)
    assert (status, body) == (201, {"passthrough": SIM_CLOCK})  # passed to OpenSearch
    assert ("POST", SIM_CLOCK) in upstream.requests


def test_without_a_clock_even_a_bad_clock_body_is_passed_through(run, upstream):
    async def scenario(client, _proxy):
        return await tick(client, b"not json")

    assert run(scenario) == (201, {"passthrough": SIM_CLOCK})


@pytest.mark.parametrize(
    ("now", "error"),
    [
        (T0, None),
        (0, None),
        (-1.5, None),
        (float("inf"), "finite"),
        (float("-inf"), "finite"),
        (float("nan"), "finite"),
        (True, "finite"),
        ("1", "finite"),
        (None, "finite"),
    ],
)
def test_sim_seconds_takes_only_finite_numbers(now, error):
    if error is None:
        assert _sim_seconds(now, "now") == float(now)
        assert type(_sim_seconds(now, "now")) is float
        return
    with pytest.raises(HttpError, match="now must be a finite number") as caught:
        _sim_seconds(now, "now")
    assert caught.value.status == 400
    assert caught.value.error_type == "illegal_argument_exception"


def test_sim_tick_reads_now_and_targets():
    assert _sim_tick(b'{"now": 12, "targets": ["a", "b"]}') == (12.0, ["a", "b"])
    assert _sim_tick(b'{"now": 1.5, "targets": []}') == (1.5, [])


# --- the request's time ---


def test_a_search_with_a_simulated_time_runs_at_that_time(run):
    clock = SimulatedClock()
    at = T0 + 13.5 * 3600  # 21:30 UTC

    async def scenario(client, proxy):
        status, body = await search(client, at=at)
        decision_id = body["ext"]["ltrr"]["decision_id"]
        record = proxy.learner._open.get(decision_id)
        ((_, logged),) = proxy.learner.decisions._queue
        updated = proxy.learner.memory._pending["music"].keys["daft punk"].updated
        return status, body["ext"]["ltrr"]["features"], record, logged, updated

    status, features, record, logged, updated = run(scenario, clock=clock)
    assert status == 200
    assert (features["hour_sin"], features["hour_cos"]) == pytest.approx(hour_features(at))
    assert (features["hour_sin"], features["hour_cos"]) != pytest.approx(hour_features(T0))
    friday = 2 * math.pi * 4 / 7
    assert features["weekday_sin"] == pytest.approx(math.sin(friday))
    assert (record.created, record.expires) == (at, at + WINDOW)
    assert logged["timestamp"] == at
    assert updated == at  # the memory's decay reads it too
    assert clock.last == at


def test_concurrent_searches_each_run_at_their_own_time(run):
    clock = SimulatedClock()
    times = [T0 + h * 3600 for h in (1, 7, 13, 19)]

    async def scenario(client, proxy):
        answers = await asyncio.gather(*(search(client, at=t) for t in times))
        records = [proxy.learner._open.get(b["ext"]["ltrr"]["decision_id"]) for _, b in answers]
        return [b["ext"]["ltrr"]["features"] for _, b in answers], records

    features, records = run(scenario, clock=clock)
    assert [r.created for r in records] == times
    for at, seen in zip(times, features, strict=True):
        assert (seen["hour_sin"], seen["hour_cos"]) == pytest.approx(hour_features(at))


def test_a_search_without_the_header_runs_at_the_last_time_set(run):
    clock = SimulatedClock()

    async def scenario(client, proxy):
        await tick(client, {"now": T0 + 7200, "targets": []})
        _, body = await search(client)
        return proxy.learner._open.get(body["ext"]["ltrr"]["decision_id"]), body

    record, body = run(scenario, clock=clock)
    assert record.created == T0 + 7200
    features = body["ext"]["ltrr"]["features"]
    assert (features["hour_sin"], features["hour_cos"]) == pytest.approx(hour_features(T0 + 7200))


def test_feedback_with_a_simulated_time_is_judged_at_that_time(run):
    async def scenario(client, proxy):
        _, body = await search(client, at=T0)
        decision_id = body["ext"]["ltrr"]["decision_id"]
        token = {TOKEN_HEADER: body["ext"]["ltrr"]["feedback_token"]}
        payload = {"decision_id": decision_id, "events": [{"type": "click", "object_id": "1"}]}
        late = await client.post(
            "/_ltrr/feedback",
            json=payload,
            headers={SIM_TIME_HEADER: str(T0 + WINDOW + 1), **token},
        )
        in_time = await client.post(
            "/_ltrr/feedback", json=payload, headers={SIM_TIME_HEADER: str(T0 + WINDOW), **token}
        )
        return (late.status, await late.json()), (in_time.status, await in_time.json())

    (late_status, late), (status, answer) = run(scenario, clock=SimulatedClock())
    assert late_status == 400
    assert "past its feedback window" in late["error"]["reason"]
    assert status == 202
    assert answer["accepted"] == 1


@pytest.mark.parametrize("value", ["soon", "", "1e", "nan", "inf", "-inf", "0x10"])
def test_a_bad_simulated_time_header_is_a_400(run, upstream, value):
    clock = SimulatedClock(T0)

    async def scenario(client, proxy):
        status, body = await search(client, at=value)
        return status, body, proxy.learner.pending_decisions()

    status, error, pending = run(scenario, clock=clock)
    assert status == 400
    assert error["status"] == 400
    assert error["error"]["type"] == "illegal_argument_exception"
    assert SIM_TIME_HEADER in error["error"]["reason"]
    assert pending == 0
    assert upstream.paths("/_msearch") == []  # the search never ran
    assert clock.last == T0


def test_without_a_clock_the_header_is_ignored(run):
    async def scenario(client, _proxy):
        return await search(client, at="soon")

    status, body = run(scenario, data_dir=False)
    assert status == 200
    assert body["hits"]["hits"][0]["_id"] == "1"


# --- settling the targets' merges before a refresh ---


class Scripted:
    """A transport answering from a list of replies, recording each request."""

    def __init__(self, *replies: UpstreamReply) -> None:
        self.replies = list(replies)
        self.requests: list[tuple[str, str, bytes | None]] = []

    async def request(self, method, path, *, headers, body, timeout):
        self.requests.append((method, path, body))
        return self.replies.pop(0)


def merging(current: int, status: int = 200) -> UpstreamReply:
    return UpstreamReply(
        status, orjson.dumps({"_all": {"total": {"merges": {"current": current, "total": 9}}}})
    )


REFRESHED = UpstreamReply(200, b'{"_shards": {"total": 1, "successful": 1, "failed": 0}}')


def test_settle_waits_for_the_running_merges_then_refreshes():
    transport = Scripted(merging(2), merging(1), merging(0), REFRESHED)
    asyncio.run(_settle(transport, ["music"]))
    assert transport.requests == [
        ("GET", "/music/_stats/merge", None),
        ("GET", "/music/_stats/merge", None),
        ("GET", "/music/_stats/merge", None),
        ("POST", "/music/_refresh", None),
    ]
    assert transport.replies == []


def test_settle_refreshes_at_once_when_no_merge_runs():
    transport = Scripted(merging(0), REFRESHED)
    asyncio.run(_settle(transport, ["music", "books"]))
    assert [(m, p) for m, p, _ in transport.requests] == [
        ("GET", "/music,books/_stats/merge"),
        ("POST", "/music,books/_refresh"),
    ]


def test_settle_does_not_refresh_while_a_merge_runs(monkeypatch):
    transport = Scripted(merging(1), merging(3), merging(0), REFRESHED)
    refreshed_after = []
    real_sleep = asyncio.sleep

    async def sleep(seconds):
        refreshed_after.append([p for _, p, _ in transport.requests].count("/music/_refresh"))
        await real_sleep(0)

    monkeypatch.setattr(asyncio, "sleep", sleep)
    asyncio.run(_settle(transport, ["music"]))
    assert refreshed_after == [0, 0]  # slept twice, before any refresh
    assert transport.requests[-1][:2] == ("POST", "/music/_refresh")


def test_settle_quotes_the_target_names():
    transport = Scripted(merging(0), REFRESHED)
    asyncio.run(_settle(transport, ["logs-*", "a b"]))
    assert [p for _, p, _ in transport.requests] == [
        "/logs-*,a%20b/_stats/merge",
        "/logs-*,a%20b/_refresh",
    ]


@pytest.mark.parametrize(
    ("replies", "reason"),
    [
        ((merging(0, status=503),), "merge stats answered 503"),
        ((merging(0), UpstreamReply(500, b"{}")), "refresh answered 500"),
    ],
)
def test_settle_failing_is_a_502(replies, reason):
    with pytest.raises(HttpError, match=reason) as caught:
        asyncio.run(_settle(Scripted(*replies), ["music"]))
    assert caught.value.status == 502


def test_the_clock_route_sets_the_time_even_without_a_data_directory(run):
    clock = SimulatedClock()

    async def scenario(client, _proxy):
        await tick(client, {"now": T0 + 7200, "targets": []})
        return await search(client)

    _, body = run(scenario, clock=clock, data_dir=False)
    assert clock.last == T0 + 7200
    features = body["ext"]["ltrr"]["features"]
    assert (features["hour_sin"], features["hour_cos"]) == pytest.approx(hour_features(T0 + 7200))
