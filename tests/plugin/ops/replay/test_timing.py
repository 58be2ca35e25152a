"""The replay's latency: which sessions are timed, in which order, what is sent, the quantiles."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import orjson
import pytest

from ltrr.plugin.ops.replay import timing
from ltrr.plugin.ops.replay.loop import Served
from ltrr.plugin.ops.replay.timing import Latency, measure, sampled, turn_order
from ltrr.plugin.ops.simulate.stream import Session
from ltrr.plugin.ops.simulate.users import UserConfig
from ltrr.query_plans.catalog import Catalog, load_catalog
from tests.plugin.ops._scripted import scripted_cluster
from tests.plugin.ops.replay.test_capture import CATALOG


class Node:
    """Answers a search pipeline's creation and deletion, ``_msearch`` and a hybrid search, and
    records every call (path with its query string, and the body)."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, bytes | None]] = []

    def request(self, method, url, data=None, headers=None, timeout=None):
        path = url.removeprefix("http://os:9200")
        self.calls.append((method, path, data))
        if path == "/_msearch":
            lines = [line for line in (data or b"").split(b"\n") if line]
            reply: Any = {"responses": [{"hits": {"hits": []}}] * (len(lines) // 2)}
        else:
            reply = {"acknowledged": True, "hits": {"hits": []}}
        return SimpleNamespace(status_code=200, content=orjson.dumps(reply))


@pytest.fixture
def catalog(tmp_path: Path) -> Catalog:
    (tmp_path / "c.yml").write_text(CATALOG, encoding="utf-8")
    return load_catalog(tmp_path / "c.yml")


def _session(i: int) -> Session:
    when = datetime(2026, 1, 5, 12, tzinfo=UTC)
    return Session(i, f"q{i}", f"text {i}", "all", "casual", when, {}, UserConfig())


def _served(sizes: dict[str, int]) -> Served:
    return Served(0.0, 0.0, 0.0, 0.0, sum(sizes.values()), len(sizes), "p", tuple(sizes.items()))


def test_every_nth_session_is_timed_from_the_first() -> None:
    sessions = [_session(i) for i in range(10)]
    assert sampled(sessions, 4) == [0, 4, 8]
    assert sampled(sessions, 1) == list(range(10))
    assert sampled(sessions, 0) == []


def test_contenders_take_turns_in_an_order_that_rotates_with_the_session() -> None:
    names = ["a", "b", "c"]
    assert turn_order(names, 0) == ["a", "b", "c"]
    assert turn_order(names, 4) == ["b", "c", "a"]  # 4 % 3 = 1
    assert turn_order(names, 5) == ["c", "a", "b"]
    assert turn_order([], 3) == []


def test_quantiles_are_observed_values_rounded_up() -> None:
    # 100 samples 1..100: p50 sits at position 49.5, p99 at 98.01; "higher" takes 51 and 100.
    latency = Latency(tuple(float(v) for v in range(1, 101)))
    assert latency.quantile(0.5) == 51.0
    assert latency.quantile(0.99) == 100.0
    assert Latency(()).quantile(0.5) == 0.0


def test_each_contender_sends_its_own_request_for_every_timed_session(
    catalog: Catalog, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(timing, "WARM_UP", 1)
    node = Node()
    sessions = [_session(i) for i in range(5)]
    runs = {
        "plan": [_served({"a": 2, "b": 1})] * 5,
        "hybrid:rrf": [_served({})] * 5,
        "nothing": [],  # a contender without sessions is not timed
    }
    out = measure(scripted_cluster(node), catalog, "t", "KEY", sessions, runs, every=2, k=4)
    assert set(out) == {"plan", "hybrid:rrf"}
    assert all(len(latency.samples) == 3 for latency in out.values())  # sessions 0, 2, 4
    assert all(v >= 0.0 for latency in out.values() for v in latency.samples)
    paths = [(method, path) for method, path, _ in node.calls]
    pipelines = [f"/_search/pipeline/ltrr-timing-KEY-{m}" for m in ("rrf", "minmax")]
    assert paths[:2] == [("PUT", p) for p in pipelines]
    assert paths[-2:] == [("DELETE", p) for p in pipelines]
    searches = node.calls[2:-2]
    assert len(searches) == 2 * (1 + 3)  # one warm-up session, then three timed, two each
    plans = [data for method, path, data in searches if path == "/_msearch"]
    assert len(plans) == 4
    bodies = [orjson.loads(line) for line in plans[0].split(b"\n")[1::2] if line]
    assert [body["size"] for body in bodies] == [2, 1]  # the session's own sizes, arm by arm
    natives = [path for _, path, _ in searches if path != "/_msearch"]
    assert natives == ["/t/_search?search_pipeline=ltrr-timing-KEY-rrf"] * 4


def test_no_session_timed_sends_nothing(catalog: Catalog) -> None:
    node = Node()
    out = measure(
        scripted_cluster(node),
        catalog,
        "t",
        "K",
        [_session(0)],
        {"p": [_served({"a": 1})]},
        every=0,
        k=4,
    )
    assert out == {}
    assert node.calls == []
