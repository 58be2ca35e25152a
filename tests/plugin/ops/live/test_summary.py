import pytest

from ltrr.plugin.errors import LtrrError
from ltrr.plugin.ops.live.read import Period
from ltrr.plugin.ops.live.summary import OTHER, Quantiles, query_shape, summarize_period
from tests.plugin.ops.live._docs import NAMES, decision, period


def test_searches_are_grouped_by_shape_and_counted_per_ten_second_bin():
    s = summarize_period(period())
    assert s.grouping == "shape"
    # Two names; then the single searches, ties by name ("4" sorts before "o").
    assert s.groups == ("entity name", "4+ words", "one word")
    assert s.group_sizes == {"entity name": 2, "4+ words": 1, "one word": 1}
    # A 30 s span cuts into 10 s bins starting on the round 1000.
    assert (s.bins.start, s.bins.width, s.bins.count) == (1000.0, 10.0, 4)
    assert s.searches_per_bin == (1, 1, 1, 1)
    assert s.searches["entity name"] == (1, 0, 0, 1)


def test_arm_share_is_per_group_and_bin_with_gaps_where_the_group_had_no_search():
    share = summarize_period(period()).share["entity name"]
    assert share["lexical"] == (1.0, None, None, 1.0)
    assert share["dense"] == (1.0, None, None, 0.0)  # d4 did not ask for it
    assert share["memory"] == (0.0, None, None, 0.0)


def test_reward_per_arm_counts_silent_searches_as_zero_and_leaves_failures_and_fallbacks_out():
    rewards = {r.arm: r for r in summarize_period(period()).rewards}
    lexical = rewards["lexical"]
    # Asked for by all four; d3 was a fallback (no feedback taken): d1 earned 1, d2 1, d4 0.
    assert (lexical.searches, lexical.failed, lexical.credited) == (4, 0, 2)
    assert lexical.reward == 2.0
    assert lexical.mean == pytest.approx(2 / 3)
    # sample sd of (1, 1, 0) is sqrt(1/3): 1.96 * sqrt(1/3) / sqrt(3) = 1.96 / 3
    assert lexical.half_width == pytest.approx(1.96 / 3)
    dense = rewards["dense"]
    # Asked for by d1 and d2, failed on d2: only d1 counts, which earned 1 + 2.
    assert (dense.searches, dense.failed, dense.credited, dense.reward) == (2, 1, 2, 3.0)
    assert dense.mean == 3.0
    assert dense.half_width is None  # one search: no interval
    memory = rewards["memory"]
    assert (memory.searches, memory.mean, memory.reward) == (0, None, 0.0)


def test_reward_by_group():
    by_group = summarize_period(period()).reward_by_group
    assert by_group["entity name"] == {"lexical": 0.5, "dense": 3.0, "memory": None}
    assert by_group["one word"] == {"lexical": 1.0, "dense": None, "memory": None}
    assert by_group["4+ words"] == {"lexical": None, "dense": None, "memory": None}


def test_events_for_decisions_outside_the_period_are_counted_apart():
    s = summarize_period(period())
    assert (s.events, s.unmatched_events) == (3, 1)
    assert s.event_types == {"click": 2, "play": 1}
    assert s.policies == {"linucb": 3, "static": 1}


def test_fallbacks_by_reason_and_failures_per_bin():
    s = summarize_period(period())
    assert s.fallbacks == {"policy error": 1}
    assert s.fallback_per_bin == (0, 0, 1, 0)
    assert s.failed_per_bin == (0, 1, 0, 0)


def test_latency_quantiles_are_nearest_rank_overall_per_stage_and_per_bin():
    s = summarize_period(period())
    # sorted 10, 20, 30, 40: p50 is the 2nd value, p90 and p99 the 4th.
    assert s.latency == Quantiles(4, 20.0, 40.0, 40.0, 40.0)
    assert s.stages["decide"] == Quantiles(4, 2.0, 4.0, 4.0, 4.0)
    assert s.stages["retrieve"] == Quantiles(3, 25.0, 30.0, 30.0, 30.0)
    assert s.latency_per_bin == ((10.0, 10.0), (30.0, 30.0), (20.0, 20.0), (40.0, 40.0))


def test_decisions_without_logged_latency_have_none():
    s = summarize_period(period(with_latency=False))
    assert s.latency is None
    assert s.stages == {}
    assert s.latency_per_bin == ((None, None),) * 4
    assert s.fallbacks == {}  # nor their fallback: older documents did not log it


def test_auto_groups_by_intent_when_a_search_carries_one():
    s = summarize_period(period(contexts=[{"intent": "nav"}, None, {"intent": "nav"}, None]))
    assert s.grouping == "intent"
    assert s.group_sizes == {"nav": 2, "(no intent)": 2}
    assert summarize_period(period(contexts=[{"intent": "nav"}] * 4), "shape").grouping == "shape"


def test_small_groups_merge_into_other():
    docs = [
        decision(f"d{i}", 1000.0 + i, "q", None, {"a": (True, True)}, context={"intent": name})
        for i, name in enumerate(["a"] * 3 + ["b"] * 2 + ["c", "d", "e", "f", "g"])
    ]
    s = summarize_period(Period(0.0, 2000.0, (), docs, []))
    assert s.groups == ("a", "b", "c", "d", "e", OTHER)
    assert s.group_sizes[OTHER] == 2  # f and g


def test_a_long_span_gets_wider_bins():
    docs = [decision(f"d{i}", 7200.0 * i, "q", None, {"a": (True, True)}) for i in range(13)]
    s = summarize_period(Period(0.0, 90000.0, (), docs, []))
    # 24 h is over 48 bins of 30 min; one hour cuts it into 25.
    assert (s.bins.width, s.bins.count) == (3600.0, 25)
    assert sum(s.searches_per_bin) == 13


@pytest.mark.parametrize(
    ("query", "features", "shape"),
    [
        ("daft punk", [1.0, 1.0, 0.0, 0.2], "entity name"),
        ("daft pu", [0.0, 1.0, 0.0, 0.2], "entity prefix"),
        ('"around the world"', [0.0, 0.0, 1.0, 0.3], "quoted phrase"),
        ("jazz", [0.0, 0.0, 0.0, 0.1], "one word"),
        ("french house music", [0.0, 0.0, 0.0, 0.3], "2-3 words"),
        ("best jazz of the sixties", [0.0, 0.0, 0.0, 0.5], "4+ words"),
        # a fallback logs no features: the text decides
        ('"around the world"', None, "quoted phrase"),
        ("french house", None, "2-3 words"),
        ("", None, "one word"),
    ],
)
def test_query_shape(query, features, shape):
    doc = {"query": query, "feature_names": NAMES if features else [], "features": features}
    assert query_shape(doc) == shape


def test_an_empty_period_is_an_error():
    with pytest.raises(LtrrError, match="no decisions in the period"):
        summarize_period(Period(0.0, 1.0, (), [], []))
