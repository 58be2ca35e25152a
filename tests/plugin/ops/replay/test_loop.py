"""The replayed loop on a two-arm catalog whose pages are fused by hand.

The catalog: arms a and b, each size {min: 0, max: 4}, budget 4, RRF with k = 1 and weights
a = 2, b = 3, so a hit's fused score is the sum of weight / (1 + rank). Pages are 2 deep.

The capture: for q1 only arm b finds the relevant document r (at its rank 1); for q2 only arm a
finds the relevant document s (at its rank 1). So the best plan is b for q1 and a for q2.
"""

from __future__ import annotations

import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

from ltrr.plugin.errors import LtrrError
from ltrr.plugin.ops.data.beir import BeirDataset, Query
from ltrr.plugin.ops.replay import loop
from ltrr.plugin.ops.replay.capture import Capture, QueryCapture
from ltrr.plugin.ops.replay.loop import (
    Contender,
    Learner,
    Page,
    Replay,
    Served,
    line_up,
    oracle_plans,
    run_contender,
    run_oracle,
)
from ltrr.plugin.ops.simulate.clicks import from_spec
from ltrr.plugin.ops.simulate.stream import Session, session_stream
from ltrr.query_plans.catalog import Catalog, load_catalog
from ltrr.query_plans.fusion.base import ArmHit
from ltrr.query_plans.metrics import grades_for

CATALOG = """\
target: t
budget: 4
policy: {name: static}
arms:
  - {name: a, template: multi_match.json.j2, params: {fields: [x]}, size: {min: 0, max: 4}}
  - {name: b, template: multi_match.json.j2, params: {fields: [y]}, size: {min: 0, max: 4}}
fusion: {method: rrf, k: 1, weights: {a: 2.0, b: 3.0}}
fallback: [{arm: a, size: 2}]
"""

PAGE = 2
K = 4
SEED = 7
QRELS = {"q1": {"r": 1}, "q2": {"s": 1}}


def _hits(*ids: str) -> tuple[ArmHit, ...]:
    return tuple(ArmHit("i", doc, 10.0 - rank, rank) for rank, doc in enumerate(ids, 1))


CAPTURE = Capture(
    index="i",
    key="k",
    queries={
        "q1": QueryCapture(
            lists={"a": _hits("a1", "a2", "a3", "a4"), "b": _hits("r", "b2", "b3", "b4")},
            natives={"rrf": ("r", "a1", "b2"), "minmax": ("a1", "a2")},
        ),
        "q2": QueryCapture(
            lists={"a": _hits("s", "a2"), "b": _hits("b1", "b2")},
            natives={"rrf": ("b1", "s"), "minmax": ("s",)},
        ),
    },
    native_candidates=8,
)


def load(folder: Path) -> Catalog:
    (folder / "c.yml").write_text(CATALOG, encoding="utf-8")
    return load_catalog(folder / "c.yml")


def dataset(folder: Path, queries: tuple[str, ...] = ("q1", "q2")) -> BeirDataset:
    texts = {"q1": "first query", "q2": "second query"}
    return BeirDataset(
        corpus=[],
        queries={q: Query(q, texts[q]) for q in queries},
        qrels={q: QRELS[q] for q in queries},
        split="test",
        path=folder,
    )


def replay_of(catalog: Catalog, seed: int = SEED) -> Replay:
    clicks = from_spec("pbm", g_max=1)
    return Replay(catalog, CAPTURE, QRELS, clicks, seed, PAGE, K, None)


@pytest.fixture
def catalog(tmp_path: Path) -> Catalog:
    return load(tmp_path)


@pytest.fixture
def sessions(tmp_path: Path) -> list[Session]:
    return session_stream(dataset(tmp_path), 60, seed=SEED, users=20)


def _expected(replay: Replay, session: Session, page_ids: list[str]) -> float:
    grades = grades_for(page_ids, replay.grades.get(session.query_id, {}))
    return session.click_model(replay.clicks).expected_clicks(grades)


def _ndcg(session: Session, page_ids: list[str]) -> float:
    """One relevant document of grade 1: 1 at rank 1, 1 / log2(3) at rank 2, else 0."""
    (found,) = QRELS[session.query_id]
    if found not in page_ids:
        return 0.0
    return 1.0 / math.log2(page_ids.index(found) + 2)


def _contender(catalog: Catalog, name: str) -> Contender:
    (found,) = [c for c in line_up(catalog, CAPTURE, ["safe_plans", "linucb"]) if c.name == name]
    return found


# -- Page ----------------------------------------------------------------------------------------


def test_results_cut_each_arm_to_its_size(catalog: Catalog) -> None:
    lists = {"a": _hits("x", "y", "z", "w"), "b": _hits("z", "x", "v")}
    results = Page(catalog, K).results(lists, {"a": 2, "b": 2})
    assert {arm: [h.id for h in hits] for arm, hits in results.items()} == {
        "a": ["x", "y"],
        "b": ["z", "x"],
    }
    # A size of 0 asks nothing; an arm with no captured list returns nothing.
    assert Page(catalog, K).results(lists, {"a": 1, "b": 0, "c": 3}) == {
        "a": [lists["a"][0]],
        "c": [],
    }


def test_fused_is_weighted_rrf_over_the_cut_lists(catalog: Catalog) -> None:
    lists = {"a": _hits("x", "y", "z", "w"), "b": _hits("z", "x", "v")}
    page = Page(catalog, K)
    # a gives x (rank 1), y (2); b gives z (1), x (2).
    # x = 2/2 + 3/3 = 2; z = 3/2 = 1.5; y = 2/3. (z's rank 3 in a and w are cut off.)
    assert page.fused(page.results(lists, {"a": 2, "b": 2})) == ["x", "z", "y"]
    # k bounds the fused list.
    assert Page(catalog, 2).fused(page.results(lists, {"a": 2, "b": 2})) == ["x", "z"]
    # a alone: its own order.
    assert page.fused(page.results(lists, {"a": 3})) == ["x", "y", "z"]


# -- static and native contenders ----------------------------------------------------------------


def test_line_up_lists_learners_static_plans_and_native_hybrids(catalog: Catalog) -> None:
    contenders = line_up(catalog, CAPTURE, ["safe_plans"])
    assert [(c.name, c.kind, c.sizes) for c in contenders] == [
        ("safe_plans", "learner", None),
        ("static", "plan", {"a": 2, "b": 2}),
        ("full", "plan", {"a": 4, "b": 4}),
        ("only:a", "plan", {"a": 4}),
        ("only:b", "plan", {"b": 4}),
        ("hybrid:rrf", "native", None),
        ("hybrid:minmax", "native", None),
    ]


def test_static_contenders_serve_the_fused_page_of_their_plan(
    catalog: Catalog, sessions: list[Session]
) -> None:
    replay = replay_of(catalog)
    # The page (2) of each plan, per query, fused by hand:
    # static {a: 2, b: 2}, q1: r = 3/2, a1 = 2/2 = 1, b2 = 3/3 = 1 (a1 wins on rank), a2 = 2/3.
    #                      q2: b1 = 3/2, s = 2/2 = 1, b2 = 1 (s wins on rank), a2 = 2/3.
    pages = {
        "static": {"q1": ["r", "a1"], "q2": ["b1", "s"]},
        "only:a": {"q1": ["a1", "a2"], "q2": ["s", "a2"]},
        "only:b": {"q1": ["r", "b2"], "q2": ["b1", "b2"]},
    }
    costs = {"static": (4, 2), "only:a": (4, 1), "only:b": (4, 1)}
    for name, by_query in pages.items():
        served = run_contender(replay, _contender(catalog, name), sessions)
        assert len(served) == len(sessions)
        for session, s in zip(sessions, served, strict=True):
            page_ids = by_query[session.query_id]
            assert s.plan == name
            assert (s.retrieved, s.arms) == costs[name]
            assert s.expected == pytest.approx(_expected(replay, session, page_ids))
            assert s.ndcg == pytest.approx(_ndcg(session, page_ids))


def test_recall_reads_the_whole_fused_list_not_only_the_page(
    catalog: Catalog, sessions: list[Session]
) -> None:
    served = run_contender(replay_of(catalog), _contender(catalog, "only:a"), sessions)
    for session, s in zip(sessions, served, strict=True):
        # a never finds r (q1) and finds s (q2) at rank 1.
        assert s.recall == (1.0 if session.query_id == "q2" else 0.0)


def test_native_contenders_serve_the_captured_hybrid_page(
    catalog: Catalog, sessions: list[Session]
) -> None:
    replay = replay_of(catalog)
    served = run_contender(replay, _contender(catalog, "hybrid:rrf"), sessions)
    for session, s in zip(sessions, served, strict=True):
        natives = CAPTURE.queries[session.query_id].natives["rrf"]
        assert s.expected == pytest.approx(_expected(replay, session, list(natives[:PAGE])))
        assert (s.retrieved, s.arms, s.plan) == (8, 2, "hybrid:rrf")
        assert s.recall == 1.0  # both relevant documents are in the native lists


def test_clicks_are_the_same_for_every_contender_showing_the_same_page(
    catalog: Catalog, sessions: list[Session]
) -> None:
    replay = replay_of(catalog)
    # b at 4 and b at 2 show the same page (b's top 2) for both queries, so the simulated
    # user clicks the same ranks on both, session by session.
    only_b = run_contender(replay, _contender(catalog, "only:b"), sessions)
    half_b = run_contender(replay, Contender("b2", "plan", "b at 2", {"b": 2}), sessions)
    assert [s.clicks for s in only_b] == [s.clicks for s in half_b]
    assert [s.expected for s in only_b] == [s.expected for s in half_b]


def test_a_session_on_a_query_never_captured_is_an_error(catalog: Catalog, tmp_path: Path) -> None:
    data = BeirDataset([], {"q9": Query("q9", "nine")}, {"q9": {"r": 1}}, "test", tmp_path)
    sessions = session_stream(data, 3, seed=SEED, users=5)
    with pytest.raises(LtrrError, match="query q9 was not captured"):
        run_contender(replay_of(catalog), _contender(catalog, "static"), sessions)


# -- the oracle ----------------------------------------------------------------------------------


def test_oracle_plans_are_every_arm_set_at_the_budget_and_half(catalog: Catalog) -> None:
    plans = oracle_plans(catalog, PAGE)
    assert sorted(sorted(p.items()) for p in plans) == sorted(
        [
            [("a", 4)],
            [("a", 2)],
            [("b", 4)],
            [("b", 2)],
            [("a", 2), ("b", 2)],
        ]
    )


def test_oracle_picks_the_one_arm_that_finds_the_relevant_document(
    catalog: Catalog, sessions: list[Session]
) -> None:
    replay = replay_of(catalog)
    served = run_oracle(replay, sessions)
    assert {s.query_id for s in sessions} == {"q1", "q2"}
    for session, s in zip(sessions, served, strict=True):
        # q1: only b has r; {b: 4} and {b: 2} both show r first, the cheaper one wins.
        # q2: only a has s; {a, b} would put b1 above s, so a alone is best.
        arm = "b" if session.query_id == "q1" else "a"
        found = "r" if session.query_id == "q1" else "s"
        assert (s.plan, s.retrieved, s.arms) == (arm, 2, 1)
        page_ids = [found, f"{arm}2"]
        assert s.expected == pytest.approx(_expected(replay, session, page_ids))
        assert s.ndcg == pytest.approx(1.0)


def test_oracle_is_never_beaten_by_a_plan_it_tries(
    catalog: Catalog, sessions: list[Session]
) -> None:
    replay = replay_of(catalog)
    oracle = run_oracle(replay, sessions)
    for name in ("static", "only:a", "only:b"):
        served = run_contender(replay, _contender(catalog, name), sessions)
        for best, s in zip(oracle, served, strict=True):
            assert best.expected >= s.expected - 1e-12
    # And strictly better than every static plan on average here (each misses one query).
    for name in ("static", "only:a", "only:b"):
        served = run_contender(replay, _contender(catalog, name), sessions)
        assert sum(s.expected for s in oracle) > sum(s.expected for s in served)


# -- learners ------------------------------------------------------------------------------------


@pytest.mark.parametrize("policy", ["safe_plans", "linucb"])
def test_a_learner_gives_the_same_sessions_for_the_same_seed(
    catalog: Catalog, sessions: list[Session], tmp_path: Path, policy: str
) -> None:
    contender = _contender(catalog, policy)
    first = run_contender(replay_of(catalog), contender, sessions)
    # A new catalog, a new replay and a new stream: nothing shared but the seed.
    again_catalog = load(tmp_path)
    again_sessions = session_stream(dataset(tmp_path), 60, seed=SEED, users=20)
    second = run_contender(replay_of(again_catalog), contender, again_sessions)
    assert len(first) == len(sessions)
    assert all(isinstance(s, Served) for s in first)
    assert first == second


@pytest.mark.parametrize("policy", ["safe_plans", "linucb"])
def test_a_learner_depends_on_the_seed(catalog: Catalog, tmp_path: Path, policy: str) -> None:
    contender = _contender(catalog, policy)
    runs = [
        run_contender(
            replay_of(catalog, seed),
            contender,
            session_stream(dataset(tmp_path), 60, seed=seed, users=20),
        )
        for seed in (7, 8)
    ]
    assert runs[0] != runs[1]


def _served_in_a_fresh_process(folder: str, policy: str) -> list[Served]:
    """Run in a child process by the determinism test (through ``runpy``)."""
    catalog = load(Path(folder))
    sessions = session_stream(dataset(Path(folder)), 60, seed=SEED, users=20)
    return run_contender(replay_of(catalog), _contender(catalog, policy), sessions)


@pytest.mark.parametrize("policy", ["safe_plans", "linucb"])
def test_a_learner_gives_the_same_sessions_in_any_process(
    catalog: Catalog, sessions: list[Session], tmp_path: Path, policy: str
) -> None:
    # Python salts str hashes per process: a set or hash() reaching the result would show here.
    here = run_contender(replay_of(catalog), _contender(catalog, policy), sessions)
    code = (
        "import runpy, sys\n"
        "g = runpy.run_path(sys.argv[1])\n"
        "print(repr(g['_served_in_a_fresh_process'](sys.argv[2], sys.argv[3])))\n"
    )
    outputs = []
    for hash_seed in ("1", "2"):
        env = {**os.environ, "PYTHONHASHSEED": hash_seed}
        done = subprocess.run(
            [sys.executable, "-c", code, __file__, str(tmp_path), policy],
            capture_output=True,
            text=True,
            env=env,
            cwd=Path(__file__).resolve().parents[4],
            check=True,
        )
        outputs.append(done.stdout.strip())
    assert outputs[0] == outputs[1] == repr(here)


@pytest.mark.parametrize("policy", ["safe_plans", "linucb"])
def test_a_learner_learns_only_from_the_queries_it_is_given(
    catalog: Catalog, sessions: list[Session], monkeypatch: pytest.MonkeyPatch, policy: str
) -> None:
    learnt: list[str] = []
    original = Learner.learn

    def spy(self, decision, results, page_ids, clicked, query):
        learnt.append(query)
        return original(self, decision, results, page_ids, clicked, query)

    monkeypatch.setattr(loop.Learner, "learn", spy)
    run_contender(replay_of(catalog), _contender(catalog, policy), sessions, frozenset({"q1"}))
    assert learnt == [s.text for s in sessions if s.query_id == "q1"]
    learnt.clear()
    run_contender(replay_of(catalog), _contender(catalog, policy), sessions)
    assert learnt == [s.text for s in sessions]


@pytest.mark.parametrize("policy", ["safe_plans", "linucb"])
def test_a_learner_without_feedback_serves_as_an_untrained_one(
    catalog: Catalog, sessions: list[Session], policy: str
) -> None:
    replay = replay_of(catalog)
    held_out = run_contender(replay, _contender(catalog, policy), sessions, frozenset())
    # An untrained learner on the same seed, asked for every session and never rewarded.
    untrained = Learner(catalog, policy, SEED)
    for session, s in zip(sessions, held_out, strict=True):
        decision = untrained.decide(session, None, PAGE)
        sizes = {c.arm: c.size for c in decision.included}
        assert s.plan == (decision.plan or "+".join(sizes))
        assert (s.retrieved, s.arms) == (sum(sizes.values()), len(sizes))
    # With feedback it does learn: the sessions served differ.
    trained = run_contender(replay, _contender(catalog, policy), sessions)
    assert trained != held_out
