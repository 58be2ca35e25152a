"""The seeds table: figures per seed, then mean and Student-t interval over the seeds, with
paired differences; every expected value is computed by hand."""

from __future__ import annotations

import pytest

from ltrr.plugin.ops.simulate.results import PolicyRun, SessionRecord
from ltrr.plugin.ops.simulate.seeds import format_seed_table, seed_table

T_975_1 = 12.706204736  # Student-t 97.5% quantile, 1 degree of freedom


def _session(i: int, query_id: str, reward: float, ndcg: float, latency: float) -> SessionRecord:
    return SessionRecord(
        session=i,
        intent="entity",
        query=query_id,
        reward=reward,
        expected_reward=reward,
        recall=None if query_id == "q9" else 0.5,
        ndcg=ndcg,
        retrieved=40,
        arms=("lexical", "dense"),
        latency_ms=latency,
        query_id=query_id,
    )


def _run(name: str, rewards: list[float], ndcgs: list[float]) -> PolicyRun:
    queries = ["q1", "q2", "q9"]
    sessions = [
        _session(i, q, r, n, 10.0 * (i + 1))
        for i, (q, r, n) in enumerate(zip(queries, rewards, ndcgs, strict=True))
    ]
    return PolicyRun(name, name, name != "static", sessions)


RUNS = {
    1: [
        _run("static", [1.0, 0.0, 1.0], [0.5, 0.1, 0.3]),
        _run("safe_plans", [1.0, 1.0, 1.0], [0.6, 0.3, 0.3]),
        _run("safe_plans+rerank", [2.0, 1.0, 1.0], [0.9, 0.3, 0.6]),
    ],
    2: [
        _run("static", [0.0, 0.0, 1.0], [0.2, 0.1, 0.3]),
        _run("safe_plans", [1.0, 0.0, 2.0], [0.2, 0.4, 0.3]),
        _run("safe_plans+rerank", [1.0, 0.0, 2.0], [0.5, 0.4, 0.3]),
    ],
}


def test_all_queries_means_intervals_and_references() -> None:
    rows = {r.name: r for r in seed_table(RUNS)}
    static, learner, reranked = rows["static"], rows["safe_plans"], rows["safe_plans+rerank"]
    assert static.part == "all"
    assert static.sessions == 3
    # static clicks per search: seed 1 2/3, seed 2 1/3 -> mean 0.5, sd = (1/3)/sqrt(2)
    assert static.clicks.mean == pytest.approx(0.5)
    assert static.clicks.half == pytest.approx(T_975_1 * (1 / 3) / 2**0.5 / 2**0.5)
    assert static.reference is None
    assert static.d_clicks is None
    # safe_plans vs static, paired: seed 1 1 - 2/3 = 1/3, seed 2 1 - 1/3 = 2/3
    assert learner.reference == "static"
    assert learner.d_clicks is not None
    assert learner.d_clicks.mean == pytest.approx(0.5)
    # the rerank's reference is the same learner fused: nDCG seed 1 0.6 - 0.4 = 0.2, seed 2
    # 0.4 - 0.3 = 0.1
    assert reranked.reference == "safe_plans"
    assert reranked.d_ndcg is not None
    assert reranked.d_ndcg.mean == pytest.approx(0.15)
    assert reranked.d_ndcg.half == pytest.approx(T_975_1 * (0.1 / 2**0.5) / 2**0.5)
    # recall leaves out the query with no relevant document (q9); latency percentiles
    assert static.recall.mean == pytest.approx(0.5)
    assert static.p50.mean == pytest.approx(20.0)
    assert static.p99.mean == pytest.approx(29.8)
    assert static.docs.mean == 40.0
    assert static.arms.mean == 2.0


def test_held_out_queries_are_reported_apart() -> None:
    rows = [r for r in seed_table(RUNS, frozenset({"q9"})) if r.name == "safe_plans"]
    tuning, held = rows
    assert (tuning.part, tuning.sessions, held.part, held.sessions) == (
        "tuning",
        2,
        "held-out",
        1,
    )
    # held-out safe_plans clicks: seed 1 1.0, seed 2 2.0; vs static 1.0 and 1.0
    assert held.clicks.mean == pytest.approx(1.5)
    assert held.d_clicks is not None
    assert held.d_clicks.mean == pytest.approx(0.5)
    assert tuning.clicks.mean == pytest.approx(0.75)


def test_a_seed_with_another_line_up_is_refused() -> None:
    with pytest.raises(ValueError, match="another line-up"):
        seed_table({1: RUNS[1], 2: RUNS[2][:2]})


def test_the_table_has_one_row_per_contender_and_part() -> None:
    text = format_seed_table(seed_table(RUNS, frozenset({"q9"})), [1, 2])
    assert text.count("| safe_plans+rerank |") == 2
    assert "held-out queries (1 sessions per seed on average; seeds 1, 2" in text
    assert "| safe_plans | 1.500 ± " in text
