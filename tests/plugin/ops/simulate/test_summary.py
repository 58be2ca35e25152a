from dataclasses import replace

import pytest

from ltrr.plugin.errors import LtrrError
from ltrr.plugin.ops.simulate.results import PolicyRun, SessionRecord
from ltrr.plugin.ops.simulate.summary import (
    IntentSummary,
    InvalidRuns,
    PolicySummary,
    best_hybrid,
    best_static,
    cumulative,
    format_table,
    percentile,
    summarize,
    verdict,
)

QUERIES = ("q0", "q1", "q2", "q3", "q4", "q5")
INTENTS = ("nav", "info", "nav", "info", "nav", "info")


def make_run(name, learning, rewards, expected, **columns):
    """Six sessions on the shared stream; any column not given gets a neutral value."""
    n = len(rewards)
    recall = columns.get("recall", [1.0] * n)
    ndcg = columns.get("ndcg", [0.5] * n)
    retrieved = columns.get("retrieved", [100] * n)
    arms = columns.get("arms", [("a",)] * n)
    latency = columns.get("latency", [10.0] * n)
    queries = columns.get("queries", QUERIES[:n])
    sessions = [
        SessionRecord(
            session=i,
            intent=INTENTS[i % len(INTENTS)],
            query=queries[i],
            reward=rewards[i],
            expected_reward=expected[i],
            recall=recall[i],
            ndcg=ndcg[i],
            retrieved=retrieved[i],
            arms=arms[i],
            latency_ms=latency[i],
        )
        for i in range(n)
    ]
    return PolicyRun(name, f"{name} policy", learning, sessions)


def linucb():
    return make_run(
        "linucb",
        True,
        rewards=[0.0, 1.0, 1.0, 0.0, 2.0, 1.0],
        expected=[0.4, 0.6, 0.8, 0.9, 0.9, 0.95],
        recall=[0.5, None, 1.0, 0.5, 1.0, 1.0],
        ndcg=[0.1, 0.2, 0.3, 0.4, 0.5, 0.6],
        retrieved=[100, 200, 100, 50, 50, 100],
        arms=[("a",), ("a", "b"), ("a",), ("b",), ("b",), ("a",)],
        latency=[5.0, 1.0, 4.0, 2.0, 6.0, 3.0],
    )


def oracle():
    return make_run("oracle", False, [1.0] * 6, [1.0] * 6)


def static():
    return make_run("static", False, [1.0, 1.0, 1.0, 0.0, 0.0, 1.0], [0.7] * 6)


def line_up():
    return [linucb(), static(), oracle()]


def by_name(summaries):
    return {s.name: s for s in summaries}


def test_cumulative_is_the_running_total():
    # 1, 1+2, 1+2-0.5
    assert cumulative([1.0, 2.0, -0.5]) == [1.0, 3.0, 2.5]
    assert cumulative([]) == []


def test_percentile_is_nearest_rank():
    values = [5.0, 1.0, 4.0, 2.0]  # sorted: 1, 2, 4, 5
    assert percentile(values, 50) == 2.0  # rank ceil(0.50 * 4) = 2
    assert percentile(values, 99) == 5.0  # rank ceil(0.99 * 4) = 4
    assert percentile(values, 25) == 1.0  # rank ceil(0.25 * 4) = 1
    assert percentile(values, 26) == 2.0  # rank ceil(1.04) = 2
    assert percentile([7.0], 1) == 7.0


@pytest.mark.parametrize("p", [0, -1, 101])
def test_percentile_outside_its_range_is_rejected(p):
    with pytest.raises(ValueError, match="percentile"):
        percentile([1.0], p)


def test_summary_of_a_learner_against_the_oracle():
    s = by_name(summarize(line_up()))["linucb"]

    assert s.sessions == 6
    assert s.learning is True
    assert s.cumulative_reward == 5.0  # 0 + 1 + 1 + 0 + 2 + 1
    assert s.mean_reward == pytest.approx(5 / 6)
    # (0.4 + 0.6 + 0.8 + 0.9 + 0.9 + 0.95) / 6 = 4.55 / 6
    assert s.mean_expected_reward == pytest.approx(4.55 / 6)
    # gaps to the oracle's 1.0: 0.6, 0.4, 0.2, 0.1, 0.1, 0.05 -> 1.45
    assert s.regret == pytest.approx(1.45)
    # first third 0.6 + 0.4 = 1.0, last third 0.1 + 0.05 = 0.15 -> 0.15 / 1.0
    assert s.regret_growth == pytest.approx(0.15)
    # the None is skipped: (0.5 + 1 + 0.5 + 1 + 1) / 5
    assert s.mean_recall == pytest.approx(0.8)
    assert s.mean_ndcg == pytest.approx(0.35)  # 2.1 / 6
    assert s.mean_retrieved == pytest.approx(100.0)  # 600 / 6
    assert s.mean_arms == pytest.approx(7 / 6)  # 1 + 2 + 1 + 1 + 1 + 1
    # latencies sorted 1..6: p50 rank ceil(3) = 3, p99 rank ceil(5.94) = 6
    assert s.latency_p50_ms == 3.0
    assert s.latency_p99_ms == 6.0


def test_summary_per_intent_in_name_order():
    s = by_name(summarize(line_up()))["linucb"]

    assert s.intents == (
        # info: sessions 1, 3, 5 -> rewards 1, 0, 1; recall None, 0.5, 1.0
        IntentSummary("info", 3, pytest.approx(2 / 3), pytest.approx(0.75)),
        # nav: sessions 0, 2, 4 -> rewards 0, 1, 2; recall 0.5, 1.0, 1.0
        IntentSummary("nav", 3, pytest.approx(1.0), pytest.approx(2.5 / 3)),
    )


def test_a_constant_gap_grows_linearly():
    s = by_name(summarize(line_up()))["static"]
    # gap 1.0 - 0.7 = 0.3 each session: 6 * 0.3 = 1.8; thirds 0.6 and 0.6 -> 1.0
    assert s.regret == pytest.approx(1.8)
    assert s.regret_growth == pytest.approx(1.0)


def test_the_oracle_has_no_regret_and_no_growth():
    s = by_name(summarize(line_up()))["oracle"]
    assert s.regret == 0.0
    assert s.regret_growth is None  # 0 / 0 is not a slope


def test_growth_is_undefined_for_fewer_than_three_sessions():
    runs = [
        make_run("linucb", True, [0.0, 0.0], [0.5, 0.5]),
        make_run("oracle", False, [1.0, 1.0], [1.0, 1.0]),
    ]
    s = by_name(summarize(runs))["linucb"]
    assert s.regret == pytest.approx(1.0)  # 0.5 + 0.5
    assert s.regret_growth is None


def test_without_an_oracle_there_is_no_regret():
    summaries = summarize([linucb(), static()])
    assert [s.regret for s in summaries] == [None, None]
    assert [s.regret_growth for s in summaries] == [None, None]
    assert [s.name for s in summaries] == ["linucb", "static"]


def test_oracle_none_ignores_a_run_named_oracle():
    summaries = summarize(line_up(), oracle=None)
    assert all(s.regret is None for s in summaries)


def test_recall_is_none_when_no_session_has_one():
    run = make_run("linucb", True, [1.0, 1.0, 1.0], [1.0] * 3, recall=[None] * 3)
    (s,) = summarize([run])
    assert s.mean_recall is None
    assert s.intents[0].mean_recall is None


def test_a_stream_of_different_length_is_rejected():
    short = make_run("static", False, [1.0] * 5, [0.7] * 5)
    with pytest.raises(InvalidRuns, match=r"'static' has 5 sessions but 'oracle' has 6"):
        summarize([linucb(), short, oracle()])


def test_a_different_query_at_the_same_index_is_rejected():
    queries = ("q0", "q1", "q2", "other", "q4", "q5")
    shifted = make_run("static", False, [1.0] * 6, [0.7] * 6, queries=queries)
    with pytest.raises(ValueError, match=r"session 3 of run 'static' is 'other' but 'q3'"):
        summarize([shifted, oracle()])


def test_mismatch_errors_are_ltrr_errors_too():
    short = make_run("static", False, [1.0] * 5, [0.7] * 5)
    with pytest.raises(LtrrError):
        summarize([short, oracle()])


def test_duplicate_names_and_empty_runs_are_rejected():
    with pytest.raises(InvalidRuns, match="repeated: static"):
        summarize([static(), static()])
    with pytest.raises(InvalidRuns, match="'empty' has no sessions"):
        summarize([PolicyRun("empty", "", False)])


# Verdicts are judged on summaries made by hand, so each case states only what it needs.

BASE = PolicySummary(
    name="",
    description="",
    learning=False,
    sessions=3000,
    cumulative_reward=0.0,
    mean_reward=0.0,
    mean_expected_reward=0.0,
    regret=None,
    regret_growth=None,
    mean_recall=None,
    mean_ndcg=0.0,
    mean_retrieved=0.0,
    mean_arms=0.0,
    latency_p50_ms=0.0,
    latency_p99_ms=0.0,
    intents=(),
)


def summary(name, reward, *, learning=False, recall=None, retrieved=0.0):
    return replace(
        BASE,
        name=name,
        learning=learning,
        cumulative_reward=reward,
        mean_recall=recall,
        mean_retrieved=retrieved,
    )


def field(learner_reward, static_reward):
    return [
        summary("linucb", learner_reward, learning=True, recall=0.71, retrieved=114.0),
        summary("static", static_reward, recall=0.6, retrieved=200.0),
        summary("only:bm25", 900.0, recall=0.5, retrieved=100.0),
        summary("full", 1300.0, recall=0.73, retrieved=300.0),
        summary("oracle", 1500.0, recall=0.9, retrieved=150.0),
    ]


def test_verdict_when_the_learner_wins():
    text = verdict(field(1242.0, 1150.0), k=100)
    # (1242 - 1150) / 1150 = 0.08; 114 / 300 = 0.38
    assert text == (
        "linucb earned 1,242 reward over 3,000 sessions, 8% more than the best static plan "
        "(static, 1,150). Its recall@100 is 0.71 against 0.73 for all arms at full size, "
        "retrieving 38% of the documents."
    )


def test_verdict_says_plainly_when_the_learner_loses():
    text = verdict(field(1000.0, 1250.0))
    # (1250 - 1000) / 1250 = 0.2
    assert text.startswith(
        "linucb earned 1,000 reward over 3,000 sessions, 20% less than the best static plan "
        "(static, 1,250): learning did not pay."
    )
    assert "Its recall is 0.71" in text  # no k given: no @K


def test_verdict_ignores_full_and_oracle_when_naming_the_best_static_plan():
    # full (1300) and oracle (1500) earn more than only:bm25, but neither is a static plan
    text = verdict([s for s in field(1000.0, 0.0) if s.name != "static"])
    assert "(only:bm25, 900)" in text
    assert "11% more" in text  # (1000 - 900) / 900 = 0.111


def test_verdict_names_a_learner_that_did_better():
    summaries = [*field(1242.0, 1150.0), summary("thompson", 1300.0, learning=True)]
    assert "; thompson earned more (1,300)." in verdict(summaries)


def test_verdict_on_a_tie_and_without_full():
    summaries = [s for s in field(1150.0, 1150.0) if s.name != "full"]
    text = verdict(summaries)
    assert text == (
        "linucb earned 1,150 reward over 3,000 sessions, the same as the best static plan "
        "(static, 1,150)."
    )


def test_verdict_for_an_unknown_learner_lists_the_runs():
    with pytest.raises(InvalidRuns, match=r"no run named 'ucb'.*linucb, static"):
        verdict(field(1.0, 1.0), learner="ucb")


def test_best_static_is_none_without_a_fixed_plan():
    assert best_static([summary("linucb", 1.0, learning=True), summary("oracle", 2.0)]) is None


def test_format_table_is_aligned_and_marks_missing_values():
    table = format_table(summarize([linucb(), static()]), k=100)
    lines = table.splitlines()

    assert lines[0].split() == [
        "policy", "reward", "regret", "recall@100", "nDCG@10",
        "docs/search", "arms/search", "p50", "ms", "p99", "ms",
    ]  # fmt: skip
    assert set(lines[1]) == {"-", " "}
    # linucb: reward 5, no oracle, recall 0.8, nDCG 0.35, 100 docs, 7/6 arms, p50 3, p99 6
    assert lines[2].split() == [
        "linucb", "5.00", "-", "0.800", "0.350", "100.0", "1.17", "3.0", "6.0",
    ]  # fmt: skip
    assert lines[3].split()[:2] == ["static", "4.00"]  # 1 + 1 + 1 + 0 + 0 + 1
    # every column is right-aligned to the same edge, so every line is as long as the rule
    assert len({len(line) for line in lines}) == 1


def test_verdict_measures_the_learner_against_the_best_hybrid():
    summaries = [
        *field(1242.0, 1150.0),
        summary("hybrid:rrf", 1080.0),
        summary("hybrid:minmax", 900.0),
    ]
    assert best_hybrid(summaries) == summaries[-2]
    # (1242 - 1080) / 1080 = 0.15; the hybrid runs are not static plans of ours.
    assert verdict(summaries, k=100) == (
        "linucb earned 1,242 reward over 3,000 sessions, 8% more than the best static plan "
        "(static, 1,150). Against OpenSearch's own hybrid search at its best (hybrid:rrf, "
        "1,080), it earned 15% more. Its recall@100 is 0.71 against 0.73 for all arms at full "
        "size, retrieving 38% of the documents."
    )
    losing = [*field(1000.0, 900.0), summary("hybrid:rrf", 1250.0)]
    assert "(hybrid:rrf, 1,250), it earned 20% less." in verdict(losing)
    tied = [*field(1000.0, 900.0), summary("hybrid:minmax", 1000.0)]
    assert "(hybrid:minmax, 1,000), it earned the same." in verdict(tied)


def test_best_hybrid_is_none_without_one():
    assert best_hybrid(field(1.0, 1.0)) is None


def test_reranked_contenders_are_compared_fused_with_fused_and_get_their_own_sentence():
    summaries = [
        *field(1242.0, 1150.0),
        replace(summary("linucb+rerank", 1400.0, learning=True), mean_ndcg=0.61),
        replace(summary("static+rerank", 1350.0), mean_ndcg=0.55),
    ]
    summaries[0] = replace(summaries[0], mean_ndcg=0.5)
    text = verdict(summaries, k=100)
    # static+rerank (1,350) earns more than static (1,150), but the fused learner is measured
    # against fused plans; linucb+rerank is not a rival learner either.
    assert "8% more than the best static plan (static, 1,150)." in text
    assert "earned more" not in text
    assert text.endswith(
        "Reranked by the LTR model, its nDCG@10 is 0.610 against 0.500 fused (1,400 reward); "
        "the static plan with the same rerank: 0.550."
    )
