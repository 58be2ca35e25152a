"""Stats: the counters behind GET /_ltrr/stats."""

from __future__ import annotations

import orjson

from ltrr.plugin.runtime.stats import Stats


def test_count_adds_one_or_n():
    stats = Stats()
    stats.count("intercepted")
    stats.count("intercepted")
    stats.count("feedback_events", 5)
    assert stats.counts == {"intercepted": 2, "feedback_events": 5}


def test_snapshot_sorts_each_level_and_nests_the_breakdowns():
    stats = Stats()
    stats.count("passthrough")
    stats.count("intercepted", 3)
    stats.arm_failures["dense"] += 2
    stats.arm_failures["bm25"] += 1
    stats.passthrough_reasons["not_a_match_query"] += 1

    snapshot = stats.snapshot()

    assert snapshot == {
        "intercepted": 3,
        "passthrough": 1,
        "arm_failures": {"bm25": 1, "dense": 2},
        "passthrough_reasons": {"not_a_match_query": 1},
    }
    assert list(snapshot) == ["intercepted", "passthrough", "arm_failures", "passthrough_reasons"]
    assert list(snapshot["arm_failures"]) == ["bm25", "dense"]
    assert orjson.loads(orjson.dumps(snapshot)) == snapshot  # plain JSON, as served


def test_snapshot_of_fresh_stats_has_empty_breakdowns_and_is_a_copy():
    stats = Stats()
    snapshot = stats.snapshot()
    assert snapshot == {"arm_failures": {}, "passthrough_reasons": {}}
    snapshot["arm_failures"]["x"] = 1
    assert stats.arm_failures == {}
