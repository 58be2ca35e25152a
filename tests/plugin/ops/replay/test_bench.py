"""The replay bench's statistics: intervals, the query split, windows, gap share, best static."""

from __future__ import annotations

import math

import pytest

from ltrr.plugin.errors import LtrrError
from ltrr.plugin.ops.replay.bench import (
    WINDOW,
    Interval,
    PartResult,
    best_static,
    format_part,
    gap_share,
    interval,
    split_queries,
    window_minimum,
)
from ltrr.plugin.ops.replay.loop import Served
from ltrr.plugin.ops.replay.timing import Latency


def _served(expected: float = 0.0, clicks: float = 0.0, ndcg: float = 0.0) -> Served:
    return Served(clicks, expected, ndcg, 0.0, 10, 1, "p")


# -- interval ------------------------------------------------------------------------------------


def test_interval_of_three_values_is_the_student_t_half_width() -> None:
    # mean 2; sample stdev sqrt(((1-2)^2 + 0 + (3-2)^2) / 2) = 1; t(2 df) = 4.303.
    result = interval([1.0, 2.0, 3.0])
    assert result.mean == pytest.approx(2.0)
    assert result.half == pytest.approx(4.303 * 1.0 / math.sqrt(3), rel=1e-3)


def test_interval_of_two_values_uses_one_degree_of_freedom() -> None:
    # mean 1; stdev sqrt((1 + 1) / 1) = sqrt(2); t(1 df) = 12.706; n = 2.
    result = interval([0.0, 2.0])
    assert result.mean == pytest.approx(1.0)
    assert result.half == pytest.approx(12.706 * math.sqrt(2) / math.sqrt(2), rel=1e-3)


def test_interval_of_one_value_has_no_width() -> None:
    assert interval([0.7]) == Interval(0.7, 0.0)


def test_interval_of_nothing_is_zero() -> None:
    assert interval([]) == Interval(0.0, 0.0)


def test_interval_at_the_end_of_the_table_uses_nine_degrees_of_freedom() -> None:
    values = [float(i) for i in range(10)]  # 9 degrees of freedom: the table's last row
    sd = math.sqrt(sum((v - 4.5) ** 2 for v in values) / 9)
    assert interval(values).half == pytest.approx(2.262 * sd / math.sqrt(10), rel=1e-3)


def test_interval_beyond_the_table_is_still_a_student_t_interval() -> None:
    values = [float(i) for i in range(11)]  # 10 degrees of freedom: t(0.975, 10) = 2.228
    sd = math.sqrt(sum((v - 5.0) ** 2 for v in values) / 10)
    assert interval(values).half == pytest.approx(2.228 * sd / math.sqrt(11), rel=1e-3)


def test_interval_prints_mean_and_half_width() -> None:
    assert str(Interval(1.23456, 0.1)) == "1.235 ± 0.100"


# -- split_queries -------------------------------------------------------------------------------

IDS = [f"q{i}" for i in range(200)]


def test_split_is_deterministic_disjoint_and_covers_every_query() -> None:
    tuning, held = split_queries(IDS, 0.3)
    assert split_queries(list(reversed(IDS)), 0.3) == (tuning, held)  # order does not matter
    assert not tuning & held
    assert tuning | held == frozenset(IDS)
    assert tuning
    assert held
    # The hash is spread: roughly the asked share is held out.
    assert 0.15 < len(held) / len(IDS) < 0.45


def test_a_larger_fraction_only_moves_queries_into_the_held_out_part() -> None:
    _, small = split_queries(IDS, 0.2)
    _, large = split_queries(IDS, 0.6)
    assert small < large


def test_fraction_zero_holds_nothing_out() -> None:
    assert split_queries(IDS, 0.0) == (frozenset(IDS), frozenset())


def test_no_queries_split_into_two_empty_parts() -> None:
    assert split_queries([], 0.3) == (frozenset(), frozenset())


@pytest.mark.parametrize("fraction", [1.0, 1.5, -0.1])
def test_a_fraction_outside_zero_to_one_is_refused(fraction: float) -> None:
    with pytest.raises(LtrrError, match="--held-out must be in"):
        split_queries(IDS, fraction)


# -- window_minimum ------------------------------------------------------------------------------


def test_window_minimum_is_the_worst_relative_window() -> None:
    baseline = [_served(1.0)] * (2 * WINDOW)
    # First window: 500 * 1.2 / 500 - 1 = +0.2; second: 500 * 0.5 / 500 - 1 = -0.5.
    learner = [_served(1.2)] * WINDOW + [_served(0.5)] * WINDOW
    assert window_minimum(learner, baseline) == pytest.approx(-0.5)


def test_window_minimum_sums_within_a_window() -> None:
    baseline = [_served(1.0)] * WINDOW
    # 250 sessions at 0 and 250 at 1.6: 400 / 500 - 1 = -0.2.
    learner = [_served(0.0)] * (WINDOW // 2) + [_served(1.6)] * (WINDOW // 2)
    assert window_minimum(learner, baseline) == pytest.approx(-0.2)


def test_a_trailing_partial_window_is_not_counted() -> None:
    baseline = [_served(1.0)] * (WINDOW + 200)
    learner = [_served(1.1)] * WINDOW + [_served(0.0)] * 200
    assert window_minimum(learner, baseline) == pytest.approx(0.1)


def test_a_window_where_the_baseline_earned_nothing_is_skipped() -> None:
    baseline = [_served(0.0)] * WINDOW + [_served(2.0)] * WINDOW
    learner = [_served(1.0)] * WINDOW + [_served(1.0)] * WINDOW
    assert window_minimum(learner, baseline) == pytest.approx(-0.5)


def test_fewer_sessions_than_a_window_leave_no_minimum() -> None:
    assert window_minimum([_served(1.0)] * 10, [_served(1.0)] * 10) == math.inf


# -- gap_share -----------------------------------------------------------------------------------


def test_gap_share_is_the_part_of_the_oracle_gap_closed() -> None:
    assert gap_share(1.5, 1.0, 3.0) == pytest.approx(0.25)
    assert gap_share(3.0, 1.0, 3.0) == pytest.approx(1.0)
    assert gap_share(0.5, 1.0, 3.0) == pytest.approx(-0.25)  # worse than static: negative


def test_gap_share_without_a_gap_is_zero() -> None:
    assert gap_share(2.0, 1.0, 1.0) == 0.0
    assert gap_share(2.0, 1.0, 0.5) == 0.0  # an oracle below static is no gap either


# -- best_static ---------------------------------------------------------------------------------


def test_best_static_ignores_learners_and_the_oracle() -> None:
    part = PartResult("tuning", 10)
    part.runs = {
        "linucb": [[_served(clicks=9.0)], [_served(clicks=9.0)]],
        "static": [[_served(clicks=1.0)], [_served(clicks=1.0)]],
        "only:a": [[_served(clicks=2.0)], [_served(clicks=1.0)]],  # mean 1.5
        "only:b": [[_served(clicks=0.5, ndcg=0.9)], [_served(clicks=0.5, ndcg=0.9)]],
        "oracle": [[_served(clicks=10.0)], [_served(clicks=10.0)]],
    }
    part.learning = {"linucb"}
    assert best_static(part) == "only:a"
    assert best_static(part, "ndcg@10") == "only:b"


# -- the table -----------------------------------------------------------------------------------


def _part_with(latency: dict[str, list[Latency]]) -> PartResult:
    part = PartResult("tuning", 3, latency=latency, latency_every=10)
    part.runs = {
        "linucb": [[_served(expected=1.0)], [_served(expected=1.0)]],
        "static": [[_served(expected=1.0)], [_served(expected=1.0)]],
        "oracle": [[_served(expected=2.0)], [_served(expected=2.0)]],
    }
    part.learning = {"linucb"}
    return part


def test_the_table_gives_each_contenders_p50_and_p99_over_the_seeds() -> None:
    # linucb's seeds: p50 of (1, 2, 3) is 2 and of (3, 4, 5) is 4: mean 3; p99 3 and 5: mean 4.
    # static: p50 10 and 20 (mean 15), p99 the same. The oracle is not a request: n/a.
    table = format_part(
        _part_with(
            {
                "linucb": [Latency((1.0, 2.0, 3.0)), Latency((3.0, 4.0, 5.0))],
                "static": [Latency((10.0,) * 3), Latency((20.0,) * 3)],
            }
        )
    )
    rows = {line.split(" | ")[0].strip("| "): line.split(" | ") for line in table.splitlines()}
    assert rows["contender"][-2:] == ["p50 ms", "p99 ms |"]
    assert rows["linucb"][-2].startswith("3.000 ± ")
    assert rows["linucb"][-1].startswith("4.000 ± ")
    assert rows["static"][-2].startswith("15.000 ± ")
    assert rows["oracle"][-2:] == ["n/a", "n/a |"]
    assert "3 searches per seed, one session in 10" in table


def test_a_table_without_latency_has_no_latency_columns() -> None:
    table = format_part(_part_with({}))
    assert "p50 ms" not in table
    assert "not deterministic" not in table.lower()
