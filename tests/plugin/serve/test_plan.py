"""Plan: embed only when an included arm (or the rerank's dense feature) needs a vector, fall
back when the embedder fails an included arm, and give the msearch what is left of the deadline
(less the rerank's share, if any)."""

from __future__ import annotations

import asyncio
import time
from datetime import datetime
from types import SimpleNamespace

import orjson
import pytest

from ltrr.plugin.runtime.registry import CatalogRegistry
from ltrr.plugin.runtime.stats import Stats
from ltrr.plugin.serve import plan as plan_module
from ltrr.plugin.serve.decide import decide
from ltrr.plugin.serve.intercept import SearchRequest
from ltrr.plugin.serve.plan import plan
from ltrr.query_plans.templates import TemplateRenderer

CATALOG = """\
target: music
budget: 9
deadline_ms: DEADLINE
policy: POLICY
arms:
  - name: a
    template: multi_match.json.j2
    params: {fields: [name]}
    size: {min: 3, max: 3}
  - name: b
    template: multi_match.json.j2
    params: {fields: [tags]}
    size: {min: 3, max: 3}
  - name: dense
    template: knn.json.j2
    params: {field: embedding}
    needs_vector: true
    size: {min: 3, max: 3}
embedding: {model: MODEL}
fusion: {method: rrf, k: 60}
fallback: [{arm: a, size: 3}]
"""


class FakeEmbedder:
    stats = None

    def __init__(self, vector=(0.5, -0.25), error=None, delay=0.0):
        self.vector = vector
        self.error = error
        self.delay = delay
        self.calls = []

    async def aembed(self, text):
        self.calls.append(text)
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.error is not None:
            raise self.error
        return self.vector


def make_runtime(
    tmp_path, monkeypatch, embedder, *, policy="{name: static}", deadline=1000, extra=""
):
    model = tmp_path / "model"
    model.mkdir(exist_ok=True)
    (model / "model.onnx").write_bytes(b"")
    (model / "tokenizer.json").write_text("{}")
    text = (
        CATALOG.replace("MODEL", str(model))
        .replace("POLICY", policy)
        .replace("DEADLINE", str(deadline))
    )
    path = tmp_path / "music.yml"
    path.write_text(text + extra)
    monkeypatch.setattr("ltrr.plugin.runtime.registry.Embedder", lambda *a, **k: embedder)
    registry = CatalogRegistry([path], seed=1)
    registry.load_all()
    (runtime,) = registry.runtimes()
    assert runtime.embedder is embedder
    return runtime


def run(runtime, request, *, deadline=None, stats=None, timings=None):
    decision = decide(runtime, request, datetime(2026, 1, 1, 12)).decision
    stats = stats if stats is not None else Stats()
    timings = timings if timings is not None else {}
    if deadline is None:
        deadline = time.perf_counter() + 5.0
    coro = plan(runtime, request, decision, deadline, TemplateRenderer(), stats, timings)
    return decision, asyncio.run(coro)


def test_the_vector_goes_into_the_knn_arm(tmp_path, monkeypatch):
    embedder = FakeEmbedder()
    runtime = make_runtime(tmp_path, monkeypatch, embedder)
    timings = {}
    decision, planned = run(runtime, SearchRequest("music", "daft punk"), timings=timings)
    assert embedder.calls == ["daft punk"]
    assert planned.decision is decision
    assert planned.fallback is None
    assert [s.arm for s in planned.plan.searches] == ["a", "b", "dense"]
    lines = planned.plan.ndjson().decode().splitlines()
    assert lines[4] == '{"index":"music"}'
    assert orjson.loads(lines[5])["query"] == {
        "knn": {"embedding": {"vector": [0.5, -0.25], "k": 3}}
    }
    assert set(timings) == {"embed", "plan"}
    assert all(v >= 0.0 for v in timings.values())


def test_no_embedding_when_no_included_arm_needs_a_vector(tmp_path, monkeypatch):
    embedder = FakeEmbedder(error=RuntimeError("must not be called"))
    runtime = make_runtime(
        tmp_path, monkeypatch, embedder, policy="{name: static, include: [a, b]}"
    )
    timings = {}
    stats = Stats()
    _, planned = run(runtime, SearchRequest("music", "x"), timings=timings, stats=stats)
    assert embedder.calls == []
    assert planned.fallback is None
    assert [s.arm for s in planned.plan.searches] == ["a", "b"]
    assert set(timings) == {"plan"}
    assert stats.counts["embedder_errors"] == 0


def test_an_embedder_failure_uses_the_static_plan(tmp_path, monkeypatch):
    runtime = make_runtime(tmp_path, monkeypatch, FakeEmbedder(error=RuntimeError("onnx exploded")))
    stats = Stats()
    timings = {}
    _, planned = run(runtime, SearchRequest("music", "x"), stats=stats, timings=timings)
    assert planned.fallback == "embedder error: RuntimeError('onnx exploded')"
    assert planned.decision.policy == "static_fallback (embedder error)"
    assert [(c.arm, c.included, c.size) for c in planned.decision.choices] == [
        ("a", True, 3),
        ("b", False, 0),
        ("dense", False, 0),
    ]
    assert [s.arm for s in planned.plan.searches] == ["a"]
    assert planned.plan.failures == {}
    assert stats.counts["embedder_errors"] == 1
    assert set(timings) == {"embed", "plan"}


def test_a_slow_embedder_times_out_at_its_share_of_the_deadline(tmp_path, monkeypatch):
    # deadline 40 ms: the embedder may take EMBED_SHARE x 0.04 s = 10 ms, not the 2 s it needs
    embedder = FakeEmbedder(delay=2.0)
    runtime = make_runtime(tmp_path, monkeypatch, embedder, deadline=40)
    stats = Stats()
    started = time.perf_counter()
    _, planned = run(runtime, SearchRequest("music", "x"), stats=stats)
    assert time.perf_counter() - started < 1.0
    assert planned.fallback == "embedder error: TimeoutError()"
    assert planned.decision.is_fallback
    assert [s.arm for s in planned.plan.searches] == ["a"]
    assert stats.counts["embedder_errors"] == 1


class FrozenClock:
    """``time`` for the plan module, stopped at ``now`` (``perf_counter`` only)."""

    def __init__(self, now):
        self.module = SimpleNamespace(perf_counter=lambda: now)


@pytest.mark.parametrize(
    ("extra", "deadline", "timeout", "body_timeout"),
    [
        ("", 101.0, 1.0, "1000ms"),  # no rerank: all of what is left
        ("rerank: {model: m1}\n", 101.0, 0.7, "700ms"),  # RERANK_SHARE x 1 s reserved
        ("rerank: {model: m1}\n", 100.2, 0.001, "1ms"),  # less left than the reserve
        ("", 99.0, 0.001, "1ms"),  # already late
    ],
)
def test_msearch_timeout_reserves_the_rerank_share_only_with_a_rerank(
    tmp_path, monkeypatch, extra, deadline, timeout, body_timeout
):
    runtime = make_runtime(
        tmp_path,
        monkeypatch,
        FakeEmbedder(),
        policy="{name: static, include: [a, b]}",
        extra=extra,
    )
    monkeypatch.setattr(plan_module, "time", FrozenClock(100.0).module)
    _, planned = run(runtime, SearchRequest("music", "x"), deadline=deadline)
    assert planned.timeout == pytest.approx(timeout)
    assert [s.body["timeout"] for s in planned.plan.searches] == [body_timeout] * 2
    assert plan_module.RERANK_SHARE == 0.3


RERANK = "rerank: {model: m1}\n"


def test_the_query_is_embedded_for_the_rerank_when_no_included_arm_needs_it(tmp_path, monkeypatch):
    embedder = FakeEmbedder()
    runtime = make_runtime(
        tmp_path, monkeypatch, embedder, policy="{name: static, include: [a, b]}", extra=RERANK
    )
    timings = {}
    decision, planned = run(runtime, SearchRequest("music", "daft punk"), timings=timings)
    assert embedder.calls == ["daft punk"]
    assert planned.vector == (0.5, -0.25)  # for the rerank's dense feature
    assert planned.decision is decision
    assert planned.fallback is None
    assert [s.arm for s in planned.plan.searches] == ["a", "b"]  # dense still not asked
    assert set(timings) == {"embed", "plan"}


def test_an_embedder_failure_only_the_rerank_needed_keeps_the_decision(tmp_path, monkeypatch):
    embedder = FakeEmbedder(error=RuntimeError("onnx exploded"))
    runtime = make_runtime(
        tmp_path, monkeypatch, embedder, policy="{name: static, include: [a, b]}", extra=RERANK
    )
    stats = Stats()
    timings = {}
    decision, planned = run(runtime, SearchRequest("music", "x"), stats=stats, timings=timings)
    assert embedder.calls == ["x"]
    # no static plan: no included arm lacks its vector; the rerank just goes without one
    assert planned.fallback is None
    assert planned.decision is decision
    assert not planned.decision.is_fallback
    assert planned.vector is None
    assert [s.arm for s in planned.plan.searches] == ["a", "b"]
    assert planned.plan.failures == {}
    assert stats.counts["embedder_errors"] == 1
    assert set(timings) == {"embed", "plan"}


def test_the_vector_serves_both_an_included_arm_and_the_rerank(tmp_path, monkeypatch):
    embedder = FakeEmbedder()
    runtime = make_runtime(tmp_path, monkeypatch, embedder, extra=RERANK)
    _, planned = run(runtime, SearchRequest("music", "x"))
    assert embedder.calls == ["x"]  # embedded once
    assert planned.vector == (0.5, -0.25)
    assert [s.arm for s in planned.plan.searches] == ["a", "b", "dense"]


def test_no_embedding_for_a_rerank_when_the_catalog_has_no_vector_arm(tmp_path, monkeypatch):
    embedder = FakeEmbedder(error=RuntimeError("must not be called"))
    runtime = make_runtime(tmp_path, monkeypatch, embedder, extra=RERANK)
    # the same catalog without its dense arm
    path = tmp_path / "music.yml"
    text = path.read_text()
    start = text.index("  - name: dense")
    path.write_text(text[:start] + text[text.index("embedding:", start) :])
    registry = CatalogRegistry([path], seed=1)
    registry.load_all()
    (runtime,) = registry.runtimes()
    assert runtime.embedder is None  # the registry loads none for such a catalog
    runtime.embedder = embedder  # ... and plan() would not call one anyway
    assert runtime.catalog.rerank is not None
    assert not any(arm.needs_vector for arm in runtime.catalog.arms)
    timings = {}
    _, planned = run(runtime, SearchRequest("music", "x"), timings=timings)
    assert embedder.calls == []
    assert planned.vector is None
    assert "embed" not in timings
