"""SafePlans: the static plan first, other plans by their advantage over the static estimate."""

import math

import numpy as np
import pytest

from ltrr.bandit.plans import candidate_plans, plan_names
from ltrr.bandit.policies import make_policy
from ltrr.bandit.policies.base import PlanPolicy, PolicyConfig
from ltrr.bandit.policies.safe_plans import SILENT_AFTER, SafePlans, _asks
from tests.bandit._plans import ARMS, PLANS

X = np.array([1.0])
E = 0.2 / 7  # epsilon 0.2 over the 7 plans that are not greedy


def policy(epsilon=0.2, ridge=1.0, arms=ARMS, n_features=1):
    config = PolicyConfig("safe_plans", epsilon=epsilon, ridge=ridge)
    return SafePlans(arms, n_features, config, seed=0)


def greedy(p) -> str:
    return PLANS[int(np.argmax(p))]


def test_name_and_plans():
    p = policy()
    assert SafePlans.name == "safe_plans"
    assert isinstance(p, PlanPolicy)
    assert p.plans == PLANS == plan_names(ARMS)
    made = make_policy(PolicyConfig("safe_plans"), ARMS, 1, seed=None)
    assert isinstance(made, SafePlans)


def test_needs_at_least_one_feature():
    with pytest.raises(ValueError, match="n_features"):
        policy(n_features=0)


def test_fresh_distribution_is_the_static_plan_with_epsilon_spread():
    p, score = policy(epsilon=0.2).distribution(X)
    # 8 plans: 1 - 0.2 on "all", 0.2 / 7 on each of the others
    assert p.tolist() == pytest.approx([0.8] + [E] * 7)
    assert score.tolist() == [0.0] * 8
    assert p.sum() == pytest.approx(1.0)
    p, _ = policy(epsilon=0.1, arms=ARMS[:2]).distribution(X)  # 4 plans: no without plans
    assert p.tolist() == pytest.approx([0.9, 0.1 / 3, 0.1 / 3, 0.1 / 3])


def test_pure_greedy_and_pure_exploration():
    p, _ = policy(epsilon=0.0).distribution(X)
    assert p.tolist() == [1.0] + [0.0] * 7
    p, _ = policy(epsilon=1.0).distribution(X)
    assert p.tolist() == pytest.approx([0.0] + [1 / 7] * 7)


def test_static_plan_learns_the_reward_itself():
    p = policy()
    p.update_plan("all", X, 1.0, "q")
    # A = ridge + x² = 2, b = 1 -> theta = 0.5
    assert p.stats.theta[0, 0] == pytest.approx(0.5)
    assert p.stats.counts.tolist() == [1, 0, 0, 0, 0, 0, 0, 0]
    shown, residual = p.history.get("q")
    assert shown.tolist() == [1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]
    assert residual.tolist() == pytest.approx([1.0, 0, 0, 0, 0, 0, 0, 0])  # 1.0 - estimate 0
    p.update_plan("all", X, 1.0, "q")
    # A = 3, b = 2 -> 2/3; the residual was 1.0 - 0.5
    assert p.stats.theta[0, 0] == pytest.approx(2 / 3)
    assert p.history.get("q")[1][0] == pytest.approx(1.5)


def test_other_plans_learn_their_advantage_over_the_static_estimate():
    p = policy()
    p.update_plan("all", X, 1.0, "q")  # theta0 = 0.5
    p.update_plan("only:a", X, 2.0, "q")
    # target 2.0 - 0.5 = 1.5: A = 2, b = 1.5 -> theta = 0.75 (not 2.5 / 2, not 1.0)
    assert p.stats.theta[2, 0] == pytest.approx(0.75)
    assert p.stats.b[2, 0] == pytest.approx(1.5)
    assert p.stats.theta[0, 0] == pytest.approx(0.5)  # the static model is untouched
    assert p.stats.counts.tolist() == [1, 0, 1, 0, 0, 0, 0, 0]
    shown, residual = p.history.get("q")
    assert shown.tolist() == [1.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0]
    assert residual[2] == pytest.approx(1.5)  # 2.0 - static 0.5 - advantage 0.0
    # a second page for only:a: the residual takes off the advantage learned so far
    p.update_plan("only:a", X, 2.0, "q")
    assert p.history.get("q")[1][2] == pytest.approx(1.5 + (2.0 - 0.5 - 0.75))
    # target 1.5 again: A = 3, b = 3 -> theta = 1.0
    assert p.stats.theta[2, 0] == pytest.approx(1.0)
    assert p.version() == 3


def test_expected_is_static_estimate_plus_advantage():
    p = policy()
    p.update_plan("all", X, 1.0)
    p.update_plan("only:a", X, 2.0)
    # no key, no history: static 0.5, only:a 0.5 + 0.75, the others 0.5 + 0
    assert p.expected(X).tolist() == pytest.approx([0.5, 0.5, 1.25, 0.5, 0.5, 0.5, 0.5, 0.5])
    _, score = p.distribution(X)
    assert score.tolist() == pytest.approx([0.0, 0.0, 0.75, 0.0, 0.0, 0.0, 0.0, 0.0])


def test_query_history_correction_by_hand():
    p = policy()
    p.update_plan("all", X, 1.0, "q")  # residual 1.0 on "all"
    p.update_plan("only:a", X, 2.0, "q")  # residual 1.5 on "only:a"
    # weight n / (n + ridge) = 1/2 for both; corrections 1.0 and 1.5
    _, score = p.distribution(X, "q")
    assert score.tolist() == pytest.approx([0.5, 0.0, 0.75 + 0.75, 0.0, 0.0, 0.0, 0.0, 0.0])
    assert p.expected(X, "q").tolist() == pytest.approx([1.0, 0.5, 2.0, 0.5, 0.5, 0.5, 0.5, 0.5])
    # another query, or none, sees the contextual model alone
    assert p.distribution(X, "other")[1].tolist() == pytest.approx([0, 0, 0.75, 0, 0, 0, 0, 0])


@pytest.mark.parametrize(("ridge", "weight"), [(1.0, 2 / 3), (3.0, 2 / 5)])
def test_history_weight_is_n_over_n_plus_ridge(ridge, weight):
    p = policy(ridge=ridge)
    p.history.add("q", 3, 3.0)
    p.history.add("q", 3, 5.0)  # shown 2, mean residual 4
    _, score = p.distribution(X, "q")
    assert score.tolist() == pytest.approx([0.0, 0.0, 0.0, weight * 4.0, 0.0, 0.0, 0.0, 0.0])
    p_, _ = p.distribution(X, "q")
    assert greedy(p_) == "only:b"


def test_residual_never_shown_adds_no_correction():
    p = policy()
    p.history.add("q", 3, 5.0, shown=0.0)
    _, score = p.distribution(X, "q")
    assert score.tolist() == [0.0] * 8
    assert np.isfinite(score).all()


def test_greedy_switches_once_the_advantage_is_positive():
    p = policy(epsilon=0.2)
    p.update_plan("all", X, 1.0)  # static estimate 0.5
    p.update_plan("only:b", X, 0.5)  # target 0: advantage 0, a tie goes to the static plan
    assert greedy(p.distribution(X)[0]) == "all"
    p = policy(epsilon=0.2)
    p.update_plan("all", X, 1.0)
    p.update_plan("only:b", X, 0.4)  # target -0.1: advantage -0.05
    assert greedy(p.distribution(X)[0]) == "all"
    p = policy(epsilon=0.2)
    p.update_plan("all", X, 1.0)
    p.update_plan("only:b", X, 0.6)  # target 0.1: advantage 0.05 > 0
    dist, score = p.distribution(X)
    assert score[3] == pytest.approx(0.05)
    assert dist.tolist() == pytest.approx([E, E, E, 0.8, E, E, E, E])


def test_advantage_is_per_context():
    p = policy(n_features=2)
    here, there = np.array([1.0, 0.0]), np.array([0.0, 1.0])
    p.update_plan("only:c", there, 2.0)
    assert greedy(p.distribution(here)[0]) == "all"
    assert greedy(p.distribution(there)[0]) == "only:c"


def test_probabilities_are_the_per_arm_marginals():
    p = policy(epsilon=0.2)
    marginal, score = p.probabilities(X)
    # every arm: "all" 0.8 + "all:half", its own "only" and the two "without" another arm,
    # 0.2 / 7 each: 0.8 + 4 * 0.2 / 7 = 32 / 35
    assert marginal.tolist() == pytest.approx([32 / 35] * 3)
    assert score.tolist() == marginal.tolist()
    assert score is not marginal
    p.update_plan("only:a", X, 2.0)  # greedy only:a
    marginal, _ = p.probabilities(X)
    # a: only:a 0.8 + all, all:half, without:b, without:c = 0.8 + 4 * 0.2 / 7 = 32 / 35;
    # b and c: all, all:half, their own only and two without plans, 5 * 0.2 / 7 = 1 / 7
    assert marginal.tolist() == pytest.approx([32 / 35, 1 / 7, 1 / 7])
    p = policy(epsilon=0.2)
    p.update_plan("without:a", X, 2.0)  # greedy without:a
    marginal, _ = p.probabilities(X)
    # a: all, all:half, only:a, without:b, without:c = 5 * 0.2 / 7 = 1 / 7;
    # b and c: without:a 0.8 + all, all:half, their own only and the other's without
    assert marginal.tolist() == pytest.approx([1 / 7, 32 / 35, 32 / 35])


def test_probabilities_ignore_the_query_history():
    p = policy(epsilon=0.2)
    p.history.add("q", 3, 10.0)
    assert p.probabilities(X)[0].tolist() == pytest.approx([32 / 35] * 3)


def test_add_plan_reward_adds_to_b_and_the_history_only():
    p = policy()
    p.update_plan("all", X, 1.0, "q")
    p.add_plan_reward("all", X, 1.0, "q")
    # A stays 2, b = 2 -> theta 1.0; one page counted
    assert p.stats.theta[0, 0] == pytest.approx(1.0)
    assert p.stats.counts.tolist() == [1, 0, 0, 0, 0, 0, 0, 0]
    assert p.version() == 1
    shown, residual = p.history.get("q")
    assert shown.tolist() == [1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]
    assert residual.tolist() == pytest.approx([2.0, 0, 0, 0, 0, 0, 0, 0])


@pytest.mark.parametrize("x", [np.zeros(2), np.zeros((1, 1)), np.zeros(0)])
def test_bad_vector_shape_raises(x):
    p = policy()
    with pytest.raises(ValueError, match="expected a vector of 1 features"):
        p.distribution(x)
    with pytest.raises(ValueError, match="expected a vector of 1 features"):
        p.probabilities(x)
    with pytest.raises(ValueError, match="expected a vector of 1 features"):
        p.update_plan("all", x, 1.0)
    with pytest.raises(ValueError, match="expected a vector of 1 features"):
        p.add_plan_reward("all", x, 1.0)


@pytest.mark.parametrize("reward", [math.nan, math.inf, -math.inf])
def test_non_finite_reward_raises_and_learns_nothing(reward):
    p = policy()
    with pytest.raises(ValueError, match="finite"):
        p.update_plan("only:a", X, reward, "q")
    with pytest.raises(ValueError, match="finite"):
        p.add_plan_reward("all", X, reward, "q")
    assert p.version() == 0
    assert np.all(p.stats.b == 0.0)
    assert len(p.history) == 0


def test_non_finite_features_raise():
    p = policy()
    with pytest.raises(ValueError, match="finite"):
        p.update_plan("all", np.array([math.nan]), 1.0)
    assert p.version() == 0


def test_unknown_plan_raises():
    with pytest.raises(KeyError):
        policy().update_plan("only:z", X, 1.0)


def test_per_arm_update_only_checks_the_name():
    p = policy()
    p.update("a", X, 1.0)
    assert p.version() == 0
    with pytest.raises(KeyError):
        p.update("z", X, 1.0)


def test_summary():
    p = policy()
    p.update_plan("all", X, 1.0)
    p.update_plan("only:a", X, -2.0)  # target -2.5
    summary = p.summary()
    assert list(summary) == list(PLANS)
    assert summary["all"] == {"n": 1, "b_abs_sum": pytest.approx(1.0)}
    assert summary["only:a"] == {"n": 1, "b_abs_sum": pytest.approx(2.5)}
    assert summary["only:c"] == {"n": 0, "b_abs_sum": 0.0}
    assert summary["without:c"] == {"n": 0, "b_abs_sum": 0.0}


@pytest.mark.parametrize(
    ("plan", "asked"),
    [
        ("all", (True, True, True)),
        ("all:half", (True, True, True)),
        ("only:a", (True, False, False)),
        ("only:b", (False, True, False)),
        ("only:c", (False, False, True)),
        ("without:a", (False, True, True)),
        ("without:b", (True, False, True)),
        ("without:c", (True, True, False)),
    ],
)
def test_asks_by_plan_kind(plan, asked):
    assert tuple(_asks(plan, arm) for arm in ("a", "b", "c")) == asked


def test_asks_agrees_with_the_plan_sizes():
    # the policy reads "who is asked" from the names; draw_plan reads it from the sizes
    for budget, depth in [(0, 0), (20, 10), (120, 10), (120, 0)]:
        for plan in candidate_plans(ARMS, budget, depth):
            assert [plan.includes(i) for i in range(3)] == [_asks(plan.name, a.name) for a in ARMS]


def test_a_without_plan_learns_its_advantage_and_takes_over():
    p = policy(epsilon=0.2)
    p.update_plan("all", X, 1.0, "q")  # theta0 = 0.5
    p.update_plan("without:b", X, 1.5, "q")  # target 1.5 - 0.5 = 1.0: A = 2 -> theta 0.5
    assert p.stats.theta[6, 0] == pytest.approx(0.5)
    assert p.stats.counts.tolist() == [1, 0, 0, 0, 0, 0, 1, 0]
    assert p.history.get("q")[1][6] == pytest.approx(1.0)  # 1.5 - static 0.5 - 0.0
    dist, score = p.distribution(X)
    assert score.tolist() == pytest.approx([0.0] * 6 + [0.5, 0.0])
    assert greedy(dist) == "without:b"
    assert dist.tolist() == pytest.approx([E] * 6 + [0.8, E])
    # a: without:b 0.8 + all, all:half, only:a, without:c; b: 5 * 0.2 / 7; c like a
    assert p.probabilities(X)[0].tolist() == pytest.approx([32 / 35, 1 / 7, 32 / 35])


@pytest.mark.parametrize(
    ("included", "expected"),
    [
        ((True, True, True), 0.8 + E),  # all (greedy) and all:half ask the same arms
        ((False, True, False), E),  # only:b
        ((False, True, True), E),  # without:a
        ((False, False, False), 0.0),  # no plan asks nothing
    ],
)
def test_set_probability_sums_the_plans_that_ask_exactly_those_arms(included, expected):
    assert policy().set_probability(X, included) == pytest.approx(expected)


def test_set_probability_needs_one_flag_per_arm():
    with pytest.raises(ValueError, match="3 inclusion flags"):
        policy().set_probability(X, (True, False))


# -- an arm that never pays ----------------------------------------------------------------------


def _asked(p: SafePlans, times: int, paying: dict[str, float] | None = None) -> None:
    """``times`` decisions that asked every arm, closed without an engaged result (or with
    ``paying``'s credit on the last one)."""
    for i in range(times):
        credit = paying if paying is not None and i == times - 1 else {}
        p.credit_arms({"a": 0.0, "b": 0.0, "c": 0.0, **credit}, first=True)


def test_an_arm_asked_200_times_without_paying_is_silent_and_no_plan_asking_it_leads():
    p = policy(epsilon=0.2)
    _asked(p, SILENT_AFTER - 1, {"a": 1.0, "b": 2.0})
    assert p.silent() == ()
    assert greedy(p.distribution(X)[0]) == "all"  # 199 asks: not yet
    _asked(p, 1)
    assert p.silent() == ("c",)
    dist, score = p.distribution(X)
    # Every advantage is 0: the first plan that does not ask c leads, every other plan keeps
    # epsilon / 7, and the scores themselves are unchanged.
    assert greedy(dist) == "only:a"
    assert dist.tolist() == pytest.approx([E, E, 0.8, E, E, E, E, E])
    assert score.tolist() == [0.0] * 8
    # The arm-set probability follows the same distribution (OPE reads it).
    assert p.set_probability(X, [True, False, False]) == pytest.approx(0.8)


def test_the_best_plan_without_the_silent_arm_leads():
    p = policy(epsilon=0.2)
    _asked(p, SILENT_AFTER, {"a": 1.0, "b": 1.0})
    p.update_plan("all", X, 1.0)
    p.update_plan("without:c", X, 1.5)  # advantage (1.5 - 0.5) / 2 = 0.5 over the static 0.5
    p.update_plan("only:c", X, 3.0)  # larger, but it asks c
    assert greedy(p.distribution(X)[0]) == "without:c"


def test_a_silent_arm_that_pays_once_is_asked_again():
    p = policy(epsilon=0.2)
    _asked(p, SILENT_AFTER, {"a": 1.0, "b": 1.0})
    assert p.silent() == ("c",)
    p.credit_arms({"c": 0.5}, first=False)  # a later event of an exploring decision
    assert p.silent() == ()
    assert greedy(p.distribution(X)[0]) == "all"


def test_only_first_events_count_as_asks_and_unknown_arms_are_ignored():
    p = policy()
    p.credit_arms({"a": 1.0, "gone": 1.0}, first=True)
    p.credit_arms({"a": 1.0, "b": 0.0}, first=False)
    assert p.asked.tolist() == [1, 0, 0]
    assert p.paid.tolist() == [2, 0, 0]


def test_when_every_arm_is_silent_the_scores_decide_as_before():
    p = policy(epsilon=0.2)
    _asked(p, SILENT_AFTER)
    assert p.silent() == ("a", "b", "c")
    assert greedy(p.distribution(X)[0]) == "all"
