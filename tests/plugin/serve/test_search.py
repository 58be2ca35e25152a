"""The search path end to end over a fake transport: fallbacks, credentials, paging."""

from __future__ import annotations

import asyncio
from datetime import datetime

import orjson
import pytest

from ltrr.plugin.errors import DeadlineExceeded
from ltrr.plugin.runtime.registry import CatalogRegistry
from ltrr.plugin.runtime.stats import Stats
from ltrr.plugin.runtime.upstream import UpstreamReply, UpstreamTimeout
from ltrr.plugin.serve.intercept import SearchRequest
from ltrr.plugin.serve.pages import PageCache
from ltrr.plugin.serve.search import PassOn, SearchPath
from ltrr.query_plans.templates import TemplateRenderer

CATALOG = """\
target: music
budget: 6
policy: {name: static}
arms:
  - name: a
    template: multi_match.json.j2
    params: {fields: [name]}
    size: {min: 3, max: 3}
  - name: b
    template: multi_match.json.j2
    params: {fields: [tags]}
    size: {min: 3, max: 3}
fusion: {method: rrf, k: 60}
fallback: [{arm: a, size: 3}]
"""


def hits(*ids):
    return {
        "took": 1,
        "timed_out": False,
        "_shards": {"total": 1, "successful": 1, "skipped": 0, "failed": 0},
        "hits": {"hits": [{"_index": "m", "_id": i, "_score": 1.0, "_source": {}} for i in ids]},
        "status": 200,
    }


class FakeOpenSearch:
    """Answers ``_msearch`` from a table per arm field, and records every call."""

    def __init__(self, answers, rerank=None):
        self.answers = answers
        self.rerank = rerank
        self.calls = []

    async def request(self, method, path, *, headers, body, timeout):
        self.calls.append((path, dict(headers), body))
        if path == "/_msearch":
            lines = body.decode().splitlines()
            responses = []
            for line in lines[1::2]:
                fields = orjson.loads(line)["query"]["multi_match"]["fields"]
                responses.append(self.answers[fields[0]])
            return UpstreamReply(200, orjson.dumps({"responses": responses}))
        if path.endswith("/_search") and self.rerank is not None:
            return UpstreamReply(200, orjson.dumps(self.rerank))
        raise AssertionError(path)


@pytest.fixture
def runtime(tmp_path):
    path = tmp_path / "music.yml"
    path.write_text(CATALOG)
    registry = CatalogRegistry([path], seed=1)
    registry.load_all()
    return registry.runtimes()[0]


def run(transport, runtime, request, pages=None, stats=None):
    path = SearchPath(
        transport,
        pages if pages is not None else PageCache(),
        TemplateRenderer(),
        stats or Stats(),
        now=lambda: datetime(2026, 1, 1, 12),
    )
    return asyncio.run(path.run(runtime, request, {"Authorization": "Bearer t"}))


def test_fuses_both_arms_and_uses_the_callers_credentials(runtime):
    fake = FakeOpenSearch({"name": hits("1", "2", "3"), "tags": hits("3", "4")})
    answer = run(fake, runtime, SearchRequest("music", "x", size=10))
    ids = [h["_id"] for h in answer.body["hits"]["hits"]]
    assert ids == ["3", "1", "2", "4"]  # 3 is found by both arms
    assert all(headers["Authorization"] == "Bearer t" for _, headers, _ in fake.calls)
    assert answer.body["ext"]["ltrr"]["arms"]["a"]["propensity"] == 1.0
    assert answer.body["_shards"]["total"] == 2


def test_policy_exception_falls_back_to_the_static_plan_and_counts(runtime, monkeypatch):
    def broken(_x):
        raise RuntimeError("numerical trouble")

    monkeypatch.setattr(runtime.agent.policy, "probabilities", broken)
    stats = Stats()
    fake = FakeOpenSearch({"name": hits("1"), "tags": hits("2")})
    answer = run(fake, runtime, SearchRequest("music", "x"), stats=stats)
    ltrr = answer.body["ext"]["ltrr"]
    assert ltrr["fallback"].startswith("policy error")
    assert ltrr["arms"]["a"]["included"]
    assert not ltrr["arms"]["b"]["included"]
    assert stats.counts["policy_errors"] == 1


def test_explain_shows_the_features_the_failed_policy_saw(runtime, monkeypatch):
    def broken(_x):
        raise RuntimeError("numerical trouble")

    monkeypatch.setattr(runtime.agent.policy, "probabilities", broken)
    fake = FakeOpenSearch({"name": hits("1"), "tags": hits("2")})
    answer = run(fake, runtime, SearchRequest("music", "x", explain=True))
    features = answer.body["ext"]["ltrr"]["features"]
    assert list(features) == list(runtime.agent.feature_names)
    assert features["bias"] == 1.0


def test_one_failed_arm_is_left_out_and_recorded(runtime):
    failed = {"error": {"type": "index_not_found_exception", "reason": "gone"}, "status": 404}
    stats = Stats()
    fake = FakeOpenSearch({"name": failed, "tags": hits("4")})
    answer = run(fake, runtime, SearchRequest("music", "x"), stats=stats)
    assert [h["_id"] for h in answer.body["hits"]["hits"]] == ["4"]
    assert answer.body["ext"]["ltrr"]["arms"]["a"]["status"] == "failed"
    assert answer.body["ext"]["ltrr"]["fallback"] is None
    assert stats.arm_failures["a"] == 1


def test_every_arm_failing_tries_static_then_passes_through(runtime):
    failed = {"error": {"type": "x", "reason": "y"}, "status": 500}
    stats = Stats()
    fake = FakeOpenSearch({"name": failed, "tags": failed})
    passed = run(fake, runtime, SearchRequest("music", "x"), stats=stats)
    assert isinstance(passed, PassOn)
    # The passthrough gets what is left of the deadline, no more.
    assert 0 < passed.seconds <= runtime.catalog.deadline_ms / 1000
    assert len(fake.calls) == 2  # the decision's msearch, then the static plan's
    assert stats.counts["fell_through_to_passthrough"] == 1


class Stalled:
    """OpenSearch answering only after the caller's whole timeout (the arms' deadline)."""

    def __init__(self):
        self.calls = 0

    async def request(self, method, path, *, headers, body, timeout):
        self.calls += 1
        await asyncio.sleep(timeout)
        raise UpstreamTimeout(f"{method} {path} took longer than {timeout}s")


def test_a_search_past_its_deadline_is_a_504_without_a_second_try(runtime):
    stats = Stats()
    stalled = Stalled()
    with pytest.raises(DeadlineExceeded) as caught:
        run(stalled, runtime, SearchRequest("music", "x"), stats=stats)
    assert caught.value.status == 504
    assert caught.value.body()["error"]["type"] == "timeout_exception"
    assert stalled.calls == 1  # no time was left for the static plan, nor a passthrough
    assert stats.counts["deadline_exceeded"] == 1


def test_next_page_comes_from_the_same_list(runtime):
    pages = PageCache()
    fake = FakeOpenSearch({"name": hits("1", "2", "3"), "tags": hits("4", "5", "6")})
    first = run(fake, runtime, SearchRequest("music", "x", size=2), pages=pages)
    decision_id = first.decision_id
    second = run(
        fake,
        runtime,
        SearchRequest("music", "x", size=2, from_=2, decision_id=decision_id),
        pages=pages,
    )
    assert len(fake.calls) == 1
    page1 = [h["_id"] for h in first.body["hits"]["hits"]]
    page2 = [h["_id"] for h in second.body["hits"]["hits"]]
    assert not set(page1) & set(page2)
    assert second.body["hits"]["total"]["value"] == 6


VECTOR_CATALOG = CATALOG.replace(
    "fusion:",
    """  - name: dense
    template: knn.json.j2
    params: {field: embedding}
    needs_vector: true
    size: {min: 3, max: 3}
embedding: {model: MODEL}
fusion:""",
).replace("budget: 6", "budget: 9")


class BrokenEmbedder:
    stats = None

    async def aembed(self, text):
        raise RuntimeError("onnx exploded")


def vector_runtime(tmp_path, monkeypatch, policy="{name: static}"):
    """A catalog with a vector arm whose embedder always fails (a model folder of stubs)."""
    model = tmp_path / "model"
    model.mkdir()
    (model / "model.onnx").write_bytes(b"")
    (model / "tokenizer.json").write_text("{}")
    path = tmp_path / "music.yml"
    catalog = VECTOR_CATALOG.replace("MODEL", str(model))
    path.write_text(catalog.replace("policy: {name: static}", f"policy: {policy}"))
    monkeypatch.setattr("ltrr.plugin.runtime.registry.Embedder", lambda *a, **k: BrokenEmbedder())
    registry = CatalogRegistry([path], seed=1)
    registry.load_all()
    (runtime,) = registry.runtimes()
    return runtime


def test_embedder_exception_falls_back_to_the_static_plan(tmp_path, monkeypatch):
    runtime = vector_runtime(tmp_path, monkeypatch)
    stats = Stats()
    fake = FakeOpenSearch({"name": hits("1"), "tags": hits("2")})
    answer = run(fake, runtime, SearchRequest("music", "x"), stats=stats)
    ltrr = answer.body["ext"]["ltrr"]
    assert ltrr["fallback"].startswith("embedder error")
    assert ltrr["arms"]["a"]["included"]
    assert not ltrr["arms"]["dense"]["included"]
    assert stats.counts["embedder_errors"] == 1
    assert [h["_id"] for h in answer.body["hits"]["hits"]] == ["1"]


def test_the_query_is_embedded_only_when_a_vector_arm_is_included(tmp_path, monkeypatch):
    # The embedder would fail the search into the static plan if it were called.
    runtime = vector_runtime(tmp_path, monkeypatch, policy="{name: static, include: [a, b]}")
    fake = FakeOpenSearch({"name": hits("1"), "tags": hits("2")})
    answer = run(fake, runtime, SearchRequest("music", "x"))
    ltrr = answer.body["ext"]["ltrr"]
    assert ltrr["fallback"] is None
    assert "embed" not in ltrr["timings_ms"]
    assert ltrr["arms"]["dense"] == {"included": False, "size": 0, "propensity": 0.0, "score": 0.0}


def test_rerank_orders_by_the_model_and_slices_after(tmp_path):
    path = tmp_path / "music.yml"
    path.write_text(CATALOG.replace("fallback:", "rerank: {model: m1, store: s1}\nfallback:"))
    registry = CatalogRegistry([path], seed=1)
    registry.load_all()
    (runtime,) = registry.runtimes()
    model_scores = {
        "took": 2,
        "timed_out": False,
        "_shards": {"total": 1, "successful": 1, "skipped": 0, "failed": 0},
        "hits": {
            "hits": [
                {"_index": "m", "_id": "4", "_score": 9.0},
                {"_index": "m", "_id": "2", "_score": 5.0},
                {"_index": "m", "_id": "1", "_score": 1.0},
                {"_index": "m", "_id": "3", "_score": 0.5},
            ]
        },
    }
    fake = FakeOpenSearch({"name": hits("1", "2", "3"), "tags": hits("3", "4")}, model_scores)
    request = SearchRequest("music", "Punk, Daft!", size=2, from_=1, explain=True)
    answer = run(fake, runtime, request)
    rerank_path, rerank_headers, rerank_body = fake.calls[1]
    assert rerank_path == "/m/_search"
    assert rerank_headers["Authorization"] == "Bearer t"
    sent = orjson.loads(rerank_body)
    # The search's feature params: the query's text and memory keys, and what each arm found
    # (sorted ids); no vector arm, so no query_vector.
    assert sent["rescore"]["query"]["rescore_query"]["sltr"] == {
        "params": {
            "keywords": "Punk, Daft!",
            "memory_exact": "punk daft",
            "memory_near": "~daftpunk",
            "from_a": '["1","2","3"]',
            "from_b": '["3","4"]',
        },
        "model": "m1",
        "store": "s1",
    }
    assert sent["rescore"]["window_size"] == 4
    assert sent["rescore"]["query"]["query_weight"] == 0
    # The model's order is 4, 2, 1, 3; the page is from=1, size=2.
    page = answer.body["hits"]["hits"]
    assert [h["_id"] for h in page] == ["2", "1"]
    assert [h["_ltrr"]["ltr_score"] for h in page] == [5.0, 1.0]
    assert answer.body["ext"]["ltrr"]["rerank"] == {"model": "m1", "status": "ok"}
    assert answer.body["_shards"]["total"] == 3  # two arms plus the rerank


def test_by_policy_fusion_scales_each_arm_by_its_score(tmp_path, monkeypatch):
    import numpy as np

    path = tmp_path / "music.yml"
    path.write_text(CATALOG.replace("fusion: {method: rrf, k: 60}", "fusion: {by_policy: true}"))
    registry = CatalogRegistry([path], seed=1)
    registry.load_all()
    (runtime,) = registry.runtimes()
    scores = (np.array([1.0, 1.0]), np.array([0.1, 2.0]))
    monkeypatch.setattr(runtime.agent.policy, "probabilities", lambda _x: scores)
    fake = FakeOpenSearch({"name": hits("1", "2", "3"), "tags": hits("3", "4")})
    answer = run(fake, runtime, SearchRequest("music", "x", size=10))
    # RRF (k 60) with weights a = 1 x 0.1, b = 1 x 2.0: "3" = 0.1/63 + 2/61 = 0.0344,
    # "4" = 2/62 = 0.0323, "1" = 0.1/61 = 0.0016, "2" = 0.1/62 = 0.0016. With the catalog's
    # own equal weights the order was 3, 1, 2, 4 (the first test).
    assert [h["_id"] for h in answer.body["hits"]["hits"]] == ["3", "4", "1", "2"]


class WorkingEmbedder:
    stats = None

    def __init__(self):
        self.calls = []

    async def aembed(self, text):
        self.calls.append(text)
        return (0.5, -0.25)


MODEL_SCORES = {
    "took": 2,
    "timed_out": False,
    "_shards": {"total": 1, "successful": 1, "skipped": 0, "failed": 0},
    "hits": {"hits": [{"_index": "m", "_id": "2", "_score": 3.0}]},
}


def reranked_vector_runtime(tmp_path, monkeypatch, embedder):
    """The vector catalog with a rerank, asking only the text arms a and b."""
    model = tmp_path / "model"
    model.mkdir()
    (model / "model.onnx").write_bytes(b"")
    (model / "tokenizer.json").write_text("{}")
    text = (
        VECTOR_CATALOG.replace("MODEL", str(model))
        .replace("policy: {name: static}", "policy: {name: static, include: [a, b]}")
        .replace("fallback:", "rerank: {model: m1}\nfallback:")
    )
    path = tmp_path / "music.yml"
    path.write_text(text)
    monkeypatch.setattr("ltrr.plugin.runtime.registry.Embedder", lambda *a, **k: embedder)
    registry = CatalogRegistry([path], seed=1)
    registry.load_all()
    (runtime,) = registry.runtimes()
    return runtime


def test_the_rerank_gets_the_query_vector_and_empty_provenance_for_arms_not_asked(
    tmp_path, monkeypatch
):
    embedder = WorkingEmbedder()
    runtime = reranked_vector_runtime(tmp_path, monkeypatch, embedder)
    fake = FakeOpenSearch({"name": hits("1", "2"), "tags": hits("2")}, MODEL_SCORES)
    answer = run(fake, runtime, SearchRequest("music", "x"))
    assert embedder.calls == ["x"]  # for the rerank alone: no included arm needs it
    (_, _, body) = fake.calls[1]
    assert orjson.loads(body)["rescore"]["query"]["rescore_query"]["sltr"]["params"] == {
        "keywords": "x",
        "memory_exact": "x",
        "memory_near": "~x",
        "query_vector": "[0.5,-0.25]",
        "from_a": '["1","2"]',
        "from_b": '["2"]',
        "from_dense": "[]",  # not asked: it found nothing
    }
    ltrr = answer.body["ext"]["ltrr"]
    assert ltrr["fallback"] is None
    assert ltrr["rerank"] == {"model": "m1", "status": "ok"}
    assert "embed" in ltrr["timings_ms"]


def test_an_embedder_failure_leaves_the_rerank_without_a_vector(tmp_path, monkeypatch):
    stats = Stats()
    runtime = reranked_vector_runtime(tmp_path, monkeypatch, BrokenEmbedder())
    fake = FakeOpenSearch({"name": hits("1", "2"), "tags": hits("2")}, MODEL_SCORES)
    answer = run(fake, runtime, SearchRequest("music", "x"), stats=stats)
    ltrr = answer.body["ext"]["ltrr"]
    assert ltrr["fallback"] is None  # the decision stands: its arms need no vector
    assert ltrr["arms"]["b"]["included"]
    assert stats.counts["embedder_errors"] == 1
    (_, _, body) = fake.calls[1]
    params = orjson.loads(body)["rescore"]["query"]["rescore_query"]["sltr"]["params"]
    assert "query_vector" not in params
    assert params["from_dense"] == "[]"
