import itertools

import numpy as np
import pytest

from ltrr.bandit.ope.propensity import marginal_inclusion, raw_from_marginals, set_probability


def all_sets(n):
    return [s for s in itertools.product([False, True], repeat=n) if any(s)]


# raw p = (0.5, 0.2, 0.1): the fallback arm is 0, Q = 0.8 * 0.9 = 0.72,
# its marginal = 0.5 + 0.5 * 0.72 = 0.86; the others keep their raw p.
def test_marginals_add_the_fallback_to_the_first_arm():
    assert marginal_inclusion([0.5, 0.2, 0.1]) == pytest.approx([0.86, 0.2, 0.1])


# raw p = (0.2, 0.6): the fallback arm is 1, Q = 0.8, marginal = 0.6 + 0.4 * 0.8 = 0.92.
def test_marginals_add_the_fallback_to_the_highest_arm():
    assert marginal_inclusion([0.2, 0.6]) == pytest.approx([0.2, 0.92])


# (0.86 - 0.72) / (1 - 0.72) = 0.14 / 0.28 = 0.5
def test_raw_undoes_the_fallback():
    assert raw_from_marginals([0.86, 0.2, 0.1]) == pytest.approx([0.5, 0.2, 0.1])


# raw (0.2, 0.6): Q = 0.8, (0.92 - 0.8) / 0.2 = 0.6
def test_raw_undoes_the_fallback_on_a_later_arm():
    assert raw_from_marginals([0.2, 0.92]) == pytest.approx([0.2, 0.6])


# raw (0.3, 0.3): ties go to arm 0, Q = 0.7, marginal = 0.3 + 0.7 * 0.7 = 0.79;
# back: (0.79 - 0.7) / 0.3 = 0.3
def test_raw_with_tied_probabilities():
    assert marginal_inclusion([0.3, 0.3]) == pytest.approx([0.79, 0.3])
    assert raw_from_marginals([0.79, 0.3]) == pytest.approx([0.3, 0.3])


# A static plan of arm 0 alone: Q = 1, arm 0 is always in, its marginal 1 is kept.
def test_raw_when_no_other_arm_can_be_drawn():
    assert raw_from_marginals([1.0, 0.0, 0.0]).tolist() == [1.0, 0.0, 0.0]


# A static plan of every arm: Q = 0, (1 - 0) / (1 - 0) = 1.
def test_raw_of_a_static_plan_of_all_arms():
    assert raw_from_marginals([1.0, 1.0]).tolist() == [1.0, 1.0]


def test_raw_round_trips_random_probabilities():
    rng = np.random.default_rng(3)
    for _ in range(50):
        p = rng.uniform(0.05, 0.95, size=4)
        assert raw_from_marginals(marginal_inclusion(p)) == pytest.approx(p, abs=1e-9)


@pytest.mark.parametrize(
    ("included", "expected"),
    [
        # 0.5 * 0.8 * 0.9 drawn, plus the empty draw 0.5 * 0.8 * 0.9 turned into {0}
        ((True, False, False), 0.72),
        ((False, True, False), 0.5 * 0.2 * 0.9),  # 0.09
        ((False, False, True), 0.5 * 0.8 * 0.1),  # 0.04: arm 2 alone is no fallback
        ((True, True, False), 0.5 * 0.2 * 0.9),  # 0.09
        ((False, True, True), 0.5 * 0.2 * 0.1),  # 0.01
        ((True, True, True), 0.5 * 0.2 * 0.1),  # 0.01
    ],
)
def test_set_probability_by_hand(included, expected):
    assert set_probability([0.5, 0.2, 0.1], included) == pytest.approx(expected)


@pytest.mark.parametrize("n", [1, 2, 3, 5])
def test_set_probabilities_sum_to_one(n):
    rng = np.random.default_rng(n)
    for _ in range(20):
        p = rng.uniform(0.0, 1.0, size=n)
        total = sum(set_probability(p, s) for s in all_sets(n))
        assert total == pytest.approx(1.0, abs=1e-12)


def test_set_probabilities_sum_to_one_with_certain_arms():
    for p in ([1.0, 0.0, 0.0], [0.0, 0.0, 0.0], [1.0, 1.0, 0.3], [0.0, 1.0, 0.0]):
        assert sum(set_probability(p, s) for s in all_sets(3)) == pytest.approx(1.0)


# With nothing drawable, decide forces arm 0 (first of the equal zeros): {0} is certain.
def test_all_zero_probabilities_fall_back_to_the_first_arm():
    assert set_probability([0.0, 0.0], (True, False)) == 1.0
    assert set_probability([0.0, 0.0], (False, True)) == 0.0


def test_marginals_are_the_sum_over_sets_containing_the_arm():
    p = [0.4, 0.7, 0.1]
    expected = [sum(set_probability(p, s) for s in all_sets(3) if s[j]) for j in range(3)]
    assert marginal_inclusion(p) == pytest.approx(expected)


def test_empty_set_is_refused():
    with pytest.raises(ValueError, match="never empty"):
        set_probability([0.5, 0.5], (False, False))


def test_flags_must_match_the_arms():
    with pytest.raises(ValueError, match="2 inclusion flags for 3 arms"):
        set_probability([0.5, 0.5, 0.5], (True, False))


@pytest.mark.parametrize("bad", [[1.2, 0.1], [-0.1, 0.5], [float("nan"), 0.5], []])
def test_probabilities_out_of_range_are_refused(bad):
    with pytest.raises(ValueError, match="must"):
        raw_from_marginals(bad)
