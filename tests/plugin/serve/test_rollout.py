"""The rollout on the search path: a split sends each unit to one side, interleaving drafts
both sides' pages from one ``_msearch``, and the decision log says which side did what."""

from __future__ import annotations

import asyncio
import hashlib
from datetime import datetime

import pytest

from ltrr.plugin.learn.learner import Learner
from ltrr.plugin.runtime.registry import CatalogRegistry
from ltrr.plugin.runtime.stats import Stats
from ltrr.plugin.serve.intercept import SearchRequest
from ltrr.plugin.serve.pages import PageCache
from ltrr.plugin.serve.search import SearchPath
from ltrr.query_plans.templates import TemplateRenderer
from tests.plugin.serve.test_search import FakeOpenSearch, hits

CATALOG = """\
target: music
budget: 6
policy: {name: static, include: [a]}
arms:
  - name: a
    template: multi_match.json.j2
    params: {fields: [name]}
    size: {min: 0, max: 3}
  - name: b
    template: multi_match.json.j2
    params: {fields: [tags]}
    size: {min: 0, max: 3}
fusion: {method: rrf, k: 60}
fallback: [{arm: a, size: 3}]
"""
SALT = "test-salt"


def make_runtime(tmp_path, rollout):
    path = tmp_path / "music.yml"
    path.write_text(CATALOG + rollout)
    registry = CatalogRegistry([path], seed=1)
    registry.load_all()
    return registry, registry.runtimes()[0]


@pytest.fixture
def learned(tmp_path):
    made = []

    def make(registry, transport):
        learner = Learner(transport, registry, tmp_path / "data", Stats(), fsync=False)
        made.append(learner)
        return learner

    yield make
    for learner in made:
        learner.events.close()


def search(transport, runtime, learner, request):
    path = SearchPath(
        transport,
        PageCache(),
        TemplateRenderer(),
        Stats(),
        now=lambda: datetime(2026, 1, 1, 12),
        learner=learner,
    )
    return asyncio.run(path.run(runtime, request, {}))


def point(unit):
    """The unit's hash point, as the split computes it (keyed BLAKE2b, 8 bytes)."""
    digest = hashlib.blake2b(unit.encode(), key=SALT.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


def units(share):
    """A unit on the learner's side (point below the share) and one on the baseline's."""
    names = [f"s{i}" for i in range(100)]
    mine = next(u for u in names if point(u) < share)
    theirs = next(u for u in names if point(u) >= share)
    return mine, theirs


SPLIT = f"""\
rollout:
  mode: split
  share: 0.5
  unit: session_id
  baseline: [{{arm: b, size: 3}}]
  salt: {SALT}
"""


def test_a_split_serves_each_unit_its_own_side_and_logs_it(tmp_path, learned):
    registry, runtime = make_runtime(tmp_path, SPLIT)
    fake = FakeOpenSearch({"name": hits("1", "2"), "tags": hits("8", "9")})
    learner = learned(registry, fake)
    mine, theirs = units(0.5)
    pages = {}
    for unit in (mine, theirs, None):
        context = {"session_id": unit} if unit is not None else {}
        answer = search(fake, runtime, learner, SearchRequest("music", "x", context=context))
        pages[unit] = answer.body
    assert [h["_id"] for h in pages[mine]["hits"]["hits"]] == ["1", "2"]  # the policy: a
    assert [h["_id"] for h in pages[theirs]["hits"]["hits"]] == ["8", "9"]  # the baseline: b
    assert [h["_id"] for h in pages[None]["hits"]["hits"]] == ["8", "9"]  # no unit: baseline
    assert len([c for c in fake.calls if c[0] == "/_msearch"]) == 3  # one per search
    logged = [doc for _, doc in learner.decisions._queue]
    assert [d["rollout"] for d in logged] == [
        {"mode": "split", "side": side, "share": 0.5, "unit": "session_id", "assigned": known}
        for side, known in (("learner", True), ("baseline", True), ("baseline", False))
    ]
    assert [d["policy"] for d in logged] == ["static", "rollout_baseline", "rollout_baseline"]
    baseline = logged[1]
    assert baseline["learnable"] is False
    assert baseline["arms"]["b"] == {
        "included": True,
        "size": 3,
        "propensity": 1.0,  # a fixed plan, given the side
        "score": 0.0,
        "ok": True,
        "results": ["8", "9"],
    }
    assert baseline["arms"]["a"]["included"] is False
    assert all(isinstance(d["took_ms"], float) and d["took_ms"] > 0 for d in logged)
    assert pages[theirs]["ext"]["ltrr"]["rollout"]["side"] == "baseline"
    # The baseline's searches keep a window, so that their clicks are taken and logged.
    assert learner.pending_decisions() == 3


INTERLEAVE = f"""\
rollout:
  mode: interleave
  baseline: [{{arm: b, size: 3}}]
  salt: {SALT}
"""


def test_interleaving_drafts_both_pages_from_one_msearch(tmp_path, learned):
    registry, runtime = make_runtime(tmp_path, INTERLEAVE)
    fake = FakeOpenSearch({"name": hits("1", "2", "3"), "tags": hits("7", "8", "9")})
    learner = learned(registry, fake)
    request = SearchRequest("music", "x", size=2, decision_id="d1")
    answer = search(fake, runtime, learner, request)
    (msearch,) = [body for path, _, body in fake.calls if path == "/_msearch"]
    lines = msearch.decode().splitlines()
    assert len(lines) == 4  # both arms, in the one request
    ((_, doc),) = learner.decisions._queue
    shown = [doc_id for _, doc_id in doc["returned"]]
    # Each round gives one to each team, whichever picks first: 1 and 7, then 2 and 8, then
    # 3 and 9; both lists end together, so every document has a team.
    assert [set(shown[i : i + 2]) for i in (0, 2, 4)] == [{"1", "7"}, {"2", "8"}, {"3", "9"}]
    assert [h["_id"] for h in answer.body["hits"]["hits"]] == shown[:2]
    assert answer.body["hits"]["hits"][0]["_score"] > answer.body["hits"]["hits"][1]["_score"]
    rollout = doc["rollout"]
    assert rollout["mode"] == "interleave"
    assert rollout["baseline"] == {"b": 3}
    assert rollout["teams"] == {"learner": ["1", "2", "3"], "baseline": ["7", "8", "9"]}
    # The learner's decision is logged as it made it; only its own arm's results are kept.
    assert doc["policy"] == "static"
    assert doc["learnable"] is True
    assert doc["arms"]["a"]["included"]
    assert not doc["arms"]["b"]["included"]
    assert doc["arms"]["a"]["results"] == ["1", "2", "3"]
    assert doc["arms"]["b"]["results"] == []
    assert "teams" not in answer.body["ext"]["ltrr"]["rollout"]


def test_the_interleaved_page_is_the_same_for_the_same_decision(tmp_path, learned):
    registry, runtime = make_runtime(tmp_path, INTERLEAVE)
    fake = FakeOpenSearch({"name": hits("1", "2", "3"), "tags": hits("7", "8", "9")})
    learner = learned(registry, fake)
    pages = []
    for _ in range(2):
        answer = search(fake, runtime, learner, SearchRequest("music", "x", decision_id="same"))
        pages.append([h["_id"] for h in answer.body["hits"]["hits"]])
    assert pages[0] == pages[1]
