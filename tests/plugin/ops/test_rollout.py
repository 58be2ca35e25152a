"""The rollout comparison against numbers worked out by hand."""

from __future__ import annotations

import math

import pytest
from scipy import stats

from ltrr.plugin.ops.cli import main
from ltrr.plugin.ops.rollout import (
    compare,
    first_significant,
    for_report,
    format_comparison,
    mean_interval,
    sign_test,
    sign_test_sequence,
    welch,
    welch_sequence,
)


def split_doc(decision_id, side, *, assigned=True, took=10.0, arms=None):
    return {
        "decision_id": decision_id,
        "rollout": {"mode": "split", "side": side, "share": 0.5, "unit": "u", "assigned": assigned},
        "arms": arms or {"a": {"included": True, "size": 10}, "b": {"included": False, "size": 0}},
        "took_ms": took,
    }


def clicks(decision_id, n, start=0):
    return [
        {
            "event_id": f"{decision_id}-{start + i}",
            "decision_id": decision_id,
            "type": "click",
            "object_id": "1",
        }
        for i in range(n)
    ]


def test_a_split_by_hand():
    docs = [
        split_doc("l1", "learner", took=10.0),
        split_doc("l2", "learner", took=20.0),
        split_doc("l3", "learner", took=30.0),
        split_doc(
            "b1",
            "baseline",
            arms={"a": {"included": True, "size": 4}, "b": {"included": True, "size": 6}},
        ),
        split_doc("b2", "baseline"),
        split_doc("b3", "baseline"),
        split_doc("n1", "baseline", assigned=False),  # no unit: served, not compared
        {"decision_id": "o1", "rollout": None, "arms": {}},  # before the rollout
    ]
    events = [*clicks("l1", 2), *clicks("l3", 1), *clicks("b3", 1), *clicks("n1", 3)]
    events.append(dict(events[0]))  # shipped twice: counted once
    events.append({"event_id": "x", "decision_id": "l2", "type": "skip", "object_id": "1"})
    result = compare(docs, events)
    assert (result.decisions, result.outside, result.unassigned) == (8, 1, 1)
    split = result.split
    assert split is not None
    assert result.interleave is None
    learner, baseline = split.learner, split.baseline
    assert (learner.searches, learner.clicks, baseline.searches, baseline.clicks) == (3, 3, 3, 1)
    # Learner clicks 2, 0, 1: mean 1, sd 1, t(0.975, 2) = 4.302653 -> 1 +- 4.302653 / sqrt 3.
    assert learner.clicks_per_search.estimate == 1.0
    assert learner.clicks_per_search.high == pytest.approx(1 + 4.302653 / math.sqrt(3), rel=1e-6)
    # Welch: variances of the means 1/3 and (1/3)/3, se = 2/3, diff 2/3, so t = 1, and
    # df = (4/9)^2 / ((1/3)^2 / 2 + (1/9)^2 / 2) = 3.2.
    assert split.difference.estimate == pytest.approx(2 / 3)
    assert split.p_value == pytest.approx(2 * stats.t.sf(1.0, 3.2))
    half = stats.t.ppf(0.975, 3.2) * 2 / 3
    assert split.difference.low == pytest.approx(2 / 3 - half)
    assert not split.significant
    assert split.share == 0.5
    assert (learner.cost.latency_ms_mean, learner.cost.latency_ms_p50) == (20.0, 20.0)
    assert (learner.cost.arms_per_search, learner.cost.docs_per_search) == (1.0, 10.0)
    # b1 asked two arms, 4 + 6 documents; b2 and b3 one arm of 10.
    assert baseline.cost.arms_per_search == pytest.approx(4 / 3)
    assert baseline.cost.docs_per_search == 10.0


def interleaved_doc(decision_id, teams, baseline=None):
    """An interleaved page whose position i shows document str(i), placed by ``teams[i]``."""
    by_team = {
        side: [str(i) for i, team in enumerate(teams) if team == side]
        for side in ("learner", "baseline")
    }
    return {
        "decision_id": decision_id,
        "rollout": {
            "mode": "interleave",
            "side": "interleaved",
            "teams": by_team,
            "baseline": baseline or {"b": 20},
        },
        "arms": {"a": {"included": True, "size": 10}, "b": {"included": False, "size": 0}},
        "took_ms": 5.0,
    }


def click_on(decision_id, *objects):
    return [
        {
            "event_id": f"{decision_id}-{o}",
            "decision_id": decision_id,
            "type": "click",
            "object_id": str(o),
        }
        for o in objects
    ]


def test_interleaving_attributes_clicks_to_teams():
    teams = ["learner", "baseline", "learner", "baseline", None]
    docs = [interleaved_doc(f"d{i}", teams) for i in range(4)]
    events = [
        *click_on("d0", 0, 2),  # learner 2, baseline 0: a win
        *click_on("d1", 1),  # a loss
        *click_on("d2", 0, 3),  # 1 - 1: a tie
        *click_on("d3", 4),  # a leftover's click: nobody's, a tie
    ]
    result = compare(docs, events).interleave
    assert result is not None
    assert (result.searches, result.wins, result.losses, result.ties) == (4, 1, 1, 2)
    assert result.preference.estimate == 0.0
    assert result.unattributed_clicks == 1
    assert result.learner_clicks_per_search.estimate == 3 / 4
    assert result.baseline_clicks_per_search.estimate == 2 / 4
    # Sign test, 1 win in 2 decisive searches: every outcome is as likely or less, p = 1.
    assert result.p_value == 1.0
    assert not result.significant
    # One msearch asks a at 10 and b at 20 (the baseline's own plan).
    assert (result.cost.arms_per_search, result.cost.docs_per_search) == (2.0, 30.0)
    assert (result.learner_docs_per_search, result.baseline_docs_per_search) == (10.0, 20.0)
    assert result.cost.latency_ms_mean == 5.0


def test_nine_wins_in_ten_is_significant():
    teams = ["learner", "baseline"]
    docs = [interleaved_doc(f"d{i}", teams) for i in range(12)]
    events = [e for i in range(9) for e in click_on(f"d{i}", 0)]
    events += click_on("d9", 1)  # d10, d11: no clicks, ties
    result = compare(docs, events).interleave
    assert result is not None
    assert (result.wins, result.losses, result.ties) == (9, 1, 2)
    # P(X >= 9 | n = 10, 1/2) = (10 + 1) / 1024, doubled: 22 / 1024.
    assert result.p_value == pytest.approx(22 / 1024)
    assert result.significant
    assert result.preference.estimate == pytest.approx(8 / 12)
    # Checked after each search: 6 wins and no loss give 2 / 2^6 = 0.031 < 5%, and every later
    # step stays below (after the loss, 2 (1 + 10) / 1024 = 0.021).
    assert result.significant_since == 6


def test_the_small_statistics():
    assert sign_test(0, 0) is None
    assert sign_test(3, 0) == pytest.approx(2 / 8)  # both tails of 3 of 3
    interval = mean_interval([1.0, 3.0])  # mean 2, sd sqrt 2, t(0.975, 1) = 12.706205
    assert interval.estimate == 2.0
    assert interval.high == pytest.approx(2 + 12.706205 * math.sqrt(2) / math.sqrt(2))
    assert welch([1.0], [0.0, 1.0])[1] is None  # one search on a side: nothing to test
    assert welch([1.0, 1.0], [0.0, 0.0])[1] is None  # no variance at all


def test_first_significant_is_when_the_test_stayed_significant():
    assert first_significant([0.5, 0.01, 0.2, 0.04, 0.03]) == 4
    assert first_significant([0.01, 0.02]) == 1
    assert first_significant([0.01, 0.2]) is None
    assert first_significant([0.01, None]) is None
    assert first_significant([]) is None


def test_the_report_says_whether_it_is_significant():
    teams = ["learner", "baseline"]
    docs = [interleaved_doc(f"d{i}", teams) for i in range(12)]
    events = [e for i in range(9) for e in click_on(f"d{i}", 0)] + click_on("d9", 1)
    text = format_comparison(compare(docs, events))
    assert "learner wins 9, loses 1, ties 2" in text
    assert "p = 0.02148: significant at 5%, and has been since search 6" in text
    quiet = format_comparison(compare([split_doc("l1", "learner")], []))
    assert "not enough searches to test" in quiet


def test_the_command_refuses_a_bad_duration(capsys):
    assert main(["rollout", "--since", "3y"]) == 1
    assert "--since '3y': expected a whole number and a unit" in capsys.readouterr().err


def test_the_live_report_gets_the_sides_and_the_figures_between_them():
    teams = ["learner", "baseline"]
    docs = [interleaved_doc(f"d{i}", teams) for i in range(12)]
    events = [e for i in range(9) for e in click_on(f"d{i}", 0)] + click_on("d9", 1)
    view = for_report(docs, events)
    assert view is not None
    assert view["learner team"] == {
        # 9 of 12: sd sqrt(2.25 / 11) = 0.4523, half-width 2.2010 * 0.4523 / sqrt(12) = 0.2874
        "clicks per search": "0.750 [0.463, 1.037]",
        "documents its plan asks": 10.0,
    }
    assert view["learner wins / losses / ties"] == "9 / 1 / 2"
    assert (view["verdict"], view["significant since search"]) == ("significant at 5%", 6)
    split = for_report([split_doc("l1", "learner"), split_doc("b1", "baseline")], [])
    assert split is not None
    assert split["learner"]["searches"] == 1
    assert split["verdict"] == "not significant"
    assert for_report([{"decision_id": "x", "arms": {}}], []) is None


def test_the_sequences_agree_with_the_tests_at_every_step():
    outcomes = [1, 0, 1, -1, 1, 1, 0, 1, 1, 1, -1, 1, 1, 1]
    sequence = sign_test_sequence(outcomes)
    for n in range(1, len(outcomes) + 1):
        seen = outcomes[:n]
        expected = sign_test(seen.count(1), seen.count(-1))
        assert sequence[n - 1] == (None if expected is None else pytest.approx(expected))
    sides = [True, False, True, True, False, False, True, False, True, False]
    values = [2.0, 0.0, 1.0, 3.0, 1.0, 0.0, 2.0, 2.0, 1.0, 0.0]
    pvalues = welch_sequence(sides, values)
    for n in range(1, len(values) + 1):
        a = [v for v, s in zip(values[:n], sides[:n], strict=True) if s]
        b = [v for v, s in zip(values[:n], sides[:n], strict=True) if not s]
        expected = welch(a, b)[1] if a and b else None
        assert pvalues[n - 1] == (None if expected is None else pytest.approx(expected))
