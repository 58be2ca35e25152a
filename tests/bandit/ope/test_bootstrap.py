import math

import numpy as np
import pytest

from ltrr.bandit.ope.bootstrap import bootstrap_interval


def sample():
    rng = np.random.default_rng(11)
    return rng.exponential(1.0, 300), np.ones(300)


def test_interval_contains_the_point_estimate():
    num, den = sample()
    low, high = bootstrap_interval(num, den, seed=5)
    assert low < num.mean() < high


def test_same_seed_same_interval_other_seed_another():
    num, den = sample()
    first = bootstrap_interval(num, den, seed=5)
    assert bootstrap_interval(num, den, seed=5) == first
    assert bootstrap_interval(num, den, seed=6) != first


def test_a_generator_can_be_passed():
    num, den = sample()
    from_seed = bootstrap_interval(num, den, seed=5)
    assert bootstrap_interval(num, den, seed=np.random.default_rng(5)) == from_seed


def test_higher_level_is_wider():
    num, den = sample()
    low90, high90 = bootstrap_interval(num, den, level=0.90, seed=5)
    low99, high99 = bootstrap_interval(num, den, level=0.99, seed=5)
    assert low99 < low90
    assert high90 < high99


# Every resample of (3 / 2) is 3 / 2.
def test_single_decision():
    assert bootstrap_interval([3.0], [2.0], resamples=20) == (1.5, 1.5)


# Two decisions, r = (0, 1): a resample's mean is 0, 0.5 or 1 with probabilities
# 1/4, 1/2, 1/4. The 2.5% and 97.5% percentiles fall inside the 0 and the 1 blocks (each a
# quarter of the 4000 resamples, ±30 or so); the 30% and 70% ones inside the 0.5 block
# (positions 1200 and 2800 of 4000, the block spans about 1000 to 3000).
def test_percentiles_of_a_two_point_log():
    assert bootstrap_interval([0.0, 1.0], [1.0, 1.0], resamples=4000, seed=2) == (0.0, 1.0)
    assert bootstrap_interval(
        [0.0, 1.0], [1.0, 1.0], resamples=4000, level=0.4, seed=2
    ) == pytest.approx((0.5, 0.5))


# A ratio: num = w·r = (2, 0), den = w = (2, 0). Resamples with only the second decision have
# no value and are dropped; every other resample is 2 / 2 = 1.
def test_resamples_without_a_denominator_are_dropped():
    assert bootstrap_interval([2.0, 0.0], [2.0, 0.0], resamples=200) == (1.0, 1.0)


def test_no_defined_resample_gives_nan():
    low, high = bootstrap_interval([0.0, 0.0], [0.0, 0.0], resamples=50)
    assert math.isnan(low)
    assert math.isnan(high)


def test_long_logs_are_resampled_in_chunks_with_the_same_answer_shape():
    rng = np.random.default_rng(0)
    num = rng.normal(1.0, 1.0, 50_000)
    low, high = bootstrap_interval(num, np.ones(num.size), resamples=100, seed=1)
    # the mean's standard error is 1 / sqrt(50,000) = 0.0045; the 95% interval is about ±0.009
    assert low < num.mean() < high
    assert high - low == pytest.approx(2 * 1.96 / math.sqrt(50_000), rel=0.35)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"resamples": 0}, "resamples"),
        ({"level": 1.0}, "level"),
        ({"level": 0.0}, "level"),
    ],
)
def test_bad_settings_are_refused(kwargs, match):
    with pytest.raises(ValueError, match=match):
        bootstrap_interval([1.0], [1.0], **kwargs)


def test_columns_must_match():
    with pytest.raises(ValueError, match="must be equal vectors"):
        bootstrap_interval([1.0, 2.0], [1.0])
    with pytest.raises(ValueError, match="empty"):
        bootstrap_interval([], [])
