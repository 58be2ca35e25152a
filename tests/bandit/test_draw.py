from collections.abc import Sequence
from typing import ClassVar

import numpy as np
import pytest

from ltrr.bandit.decision import ArmSpec, Decision
from ltrr.bandit.draw import draw, draw_plan, fallback_propensity
from ltrr.bandit.plans import plan_names
from ltrr.bandit.policies import make_policy
from ltrr.bandit.policies.base import PlanPolicy, Policy, PolicyConfig
from tests.bandit._plans import ARMS as PLAN_ARMS
from tests.bandit._plans import PLANS as PLAN_NAMES

X = np.zeros(2)


class Fixed(Policy):
    """A policy whose probabilities and scores are whatever the test says."""

    name: ClassVar[str] = "fixed"

    def __init__(self, arms: Sequence[ArmSpec], p: Sequence[float], score: Sequence[float]):
        super().__init__(arms, 2, PolicyConfig("static"), seed=None)
        self.p = np.array(p, dtype=np.float64)
        self.score = np.array(score, dtype=np.float64)

    def probabilities(self, x):
        return self.p.copy(), self.score.copy()

    def update(self, arm, x, reward):
        pass


def arms(*bounds: tuple[int, int]) -> list[ArmSpec]:
    return [ArmSpec(f"arm{i}", lo, hi) for i, (lo, hi) in enumerate(bounds)]


def fixed(p: Sequence[float], score: Sequence[float] | None = None) -> Fixed:
    return Fixed(arms(*[(0, 100)] * len(p)), p, score if score is not None else [0.0] * len(p))


def frequencies(policy: Policy, n: int, seed: int) -> tuple[np.ndarray, list[float]]:
    rng = np.random.default_rng(seed)
    counts = np.zeros(len(policy.arms))
    logged: set[tuple[float, ...]] = set()
    for _ in range(n):
        decision = draw(policy, X, budget=50, rng=rng)
        counts += [c.included for c in decision.choices]
        logged.add(tuple(c.propensity for c in decision.choices))
    assert len(logged) == 1  # the propensity never depends on the draw
    return counts / n, list(logged.pop())


def test_fallback_propensity_by_hand():
    # p = (0.3, 0.1, 0.2): arm 0 is forced in when nothing was drawn (0.7 * 0.9 * 0.8 = 0.504)
    assert fallback_propensity([0.3, 0.1, 0.2], 0) == pytest.approx(0.3 + 0.7 * 0.9 * 0.8)
    assert fallback_propensity([0.5, 0.5], 0) == pytest.approx(0.75)
    assert fallback_propensity([1.0, 0.0], 0) == 1.0


@pytest.mark.parametrize(
    "p",
    [
        [0.3, 0.1, 0.2],  # "none drawn" half the time: the fallback matters
        [0.05, 0.05, 0.05, 0.05],  # ties: the first arm is the fallback
        [0.9, 0.5, 0.95, 0.2],  # fallback rare
        [0.0, 0.4],  # an arm that is never drawn
    ],
)
def test_logged_propensity_is_the_inclusion_frequency(p):
    n = 20_000
    observed, logged = frequencies(fixed(p), n, seed=42)
    chosen = int(np.argmax(p))
    expected = list(p)
    expected[chosen] = fallback_propensity(p, chosen)
    assert logged == pytest.approx(expected)
    for freq, prop in zip(observed, logged, strict=True):
        tolerance = 4.5 * max(np.sqrt(prop * (1 - prop) / n), 1e-12)
        assert abs(freq - prop) <= tolerance


def test_at_least_one_arm_and_outcome_probability():
    policy = fixed([0.0, 0.0, 0.0])
    decision = draw(policy, X, 30, np.random.default_rng(0))
    assert [c.included for c in decision.choices] == [True, False, False]
    assert decision.choices[0].propensity == 1.0
    assert decision.choices[1].outcome_probability == 1.0


def test_deterministic_given_the_seed():
    policy = fixed([0.5, 0.5, 0.5, 0.5], [0.1, 0.7, 0.2, 0.0])
    first = [draw(policy, X, 40, np.random.default_rng(9), depth=10) for _ in range(3)]
    assert first[0] == first[1] == first[2]
    assert first[0].policy == "fixed"
    assert [c.score for c in first[0].choices] == pytest.approx([0.1, 0.7, 0.2, 0.0])


def test_policy_must_return_one_probability_per_arm():
    policy = fixed([0.5, 0.5])
    policy.p = np.array([0.5])
    with pytest.raises(ValueError, match="2 arms"):
        draw(policy, X, 10, np.random.default_rng(0))


def test_sizes_in_a_decision():
    policy = Fixed(arms((5, 50), (10, 20), (0, 100)), [1.0, 1.0, 0.0], [1.0, 3.0, 0.0])
    decision = draw(policy, X, 60, np.random.default_rng(0), depth=10)
    # arm 2 excluded: floors 10 and 10, 40 left, arm 1 capped at 20, arm 0 takes the rest
    assert [c.size for c in decision.choices] == [40, 20, 0]
    assert decision.total_size == 60


def test_static_policy_decision():
    specs = arms((0, 20), (0, 20))
    policy = make_policy(PolicyConfig("static"), specs, 2, seed=None)
    decision = draw(policy, X, 30, np.random.default_rng(0), depth=10)
    assert [(c.included, c.size, c.propensity) for c in decision.choices] == [
        (True, 15, 1.0),
        (True, 15, 1.0),
    ]


# --- plans --------------------------------------------------------------------------------

# dyadic, so the cumulative sums are exact:
# 0.5, 0.75, 0.8125, 0.84375, 0.875, 0.90625, 0.96875, 1.0
DYADIC = [0.5, 0.25, 0.0625, 0.03125, 0.03125, 0.03125, 0.0625, 0.03125]
# Per arm, the plans that ask it: all, all:half, only:<it> and the two without:<another>.
# a = 0.5 + 0.25 + only:a 0.0625 + without:b 0.0625 + without:c 0.03125 = 0.90625
# b = 0.5 + 0.25 + only:b 0.03125 + without:a 0.03125 + without:c 0.03125 = 0.84375
# c = 0.5 + 0.25 + only:c 0.03125 + without:a 0.03125 + without:b 0.0625 = 0.875
MARGINALS = [0.90625, 0.84375, 0.875]


class FixedDraw:
    """An rng whose one uniform draw is whatever the test says."""

    def __init__(self, u: float):
        self.u = u

    def random(self) -> float:
        return self.u


class FixedPlans(PlanPolicy):
    """A plan policy whose distribution is whatever the test says; it records the keys."""

    name: ClassVar[str] = "fixed_plans"

    def __init__(self, arms: Sequence[ArmSpec], p: Sequence[float], plans=None):
        super().__init__(arms, 2, PolicyConfig("safe_plans"), seed=None)
        self.p = np.array(p, dtype=np.float64)
        self._plans = plan_names(arms) if plans is None else tuple(plans)
        self.keys: list[str] = []

    @property
    def plans(self):
        return self._plans

    def distribution(self, x, key=""):
        self.keys.append(key)
        return self.p.copy(), np.zeros(len(self.p))

    def probabilities(self, x):
        raise AssertionError("draw_plan must not ask for per-arm probabilities")

    def set_probability(self, x, included):
        raise AssertionError("draw_plan must not ask for arm-set probabilities")

    def update_plan(self, plan, x, reward, key=""):
        pass

    def add_plan_reward(self, plan, x, reward, key=""):
        pass


def plan_of(p, u, budget=120, depth=10):
    return draw_plan(FixedPlans(PLAN_ARMS, p), X, budget, FixedDraw(u), depth=depth)


@pytest.mark.parametrize(
    ("u", "plan"),
    [
        (0.0, "all"),
        (0.4999, "all"),
        (0.5, "all:half"),  # a draw on a boundary belongs to the next plan: [0.5, 0.75)
        (0.7, "all:half"),
        (0.75, "only:a"),
        (0.8, "only:a"),
        (0.8125, "only:b"),
        (0.84375, "only:c"),
        (0.87, "only:c"),
        (0.875, "without:a"),
        (0.9, "without:a"),
        (0.90625, "without:b"),
        (0.95, "without:b"),
        (0.96875, "without:c"),
        (0.999999, "without:c"),
    ],
)
def test_one_uniform_draw_picks_the_plan(u, plan):
    decision = plan_of(DYADIC, u)
    assert decision.plan == plan
    assert decision.plan_propensity == DYADIC[PLAN_NAMES.index(plan)]


def test_plan_decision_by_hand():
    decision = plan_of(DYADIC, 0.83)  # only:b: [0.8125, 0.84375)
    # marginals (see MARGINALS): a 0.90625, b 0.84375, c 0.875
    assert [(c.arm, c.included, c.size, c.propensity, c.score) for c in decision.choices] == [
        ("a", False, 0, 0.90625, 0.0),
        ("b", True, 100, 0.84375, 1.0),
        ("c", False, 0, 0.875, 0.0),
    ]
    assert decision.plan == "only:b"
    assert decision.plan_propensity == 0.03125
    assert decision.policy == "fixed_plans"
    assert decision.features == (0.0, 0.0)
    assert decision.total_size == 100
    assert decision.learnable


def test_without_plan_decision_by_hand():
    decision = plan_of(DYADIC, 0.9)  # without:a: [0.875, 0.90625)
    # b and c share 120: floors 10, 10, 100 left, c capped at 50, b takes the other 70
    assert [(c.arm, c.included, c.size, c.propensity, c.score) for c in decision.choices] == [
        ("a", False, 0, 0.90625, 0.0),
        ("b", True, 70, 0.84375, 1.0),
        ("c", True, 50, 0.875, 1.0),
    ]
    assert decision.plan == "without:a"
    assert decision.plan_propensity == 0.03125
    assert decision.total_size == 120
    decision = plan_of(DYADIC, 0.99)  # without:c: a, b floors 10, 10, then 50 each
    assert [(c.included, c.size) for c in decision.choices] == [(True, 60), (True, 60), (False, 0)]
    assert decision.plan_propensity == 0.03125


def test_plan_sizes_follow_budget_and_depth():
    decision = plan_of(DYADIC, 0.0)  # "all" at budget 120, depth 10
    assert [(c.included, c.size) for c in decision.choices] == [(True, 40)] * 3
    decision = plan_of(DYADIC, 0.6, budget=180)  # "all:half": 90 -> 30 each
    assert [c.size for c in decision.choices] == [30, 30, 30]
    # the propensities do not depend on which plan was drawn
    assert [c.propensity for c in decision.choices] == MARGINALS


def test_rounding_at_the_top_of_the_cumulative_sum_never_picks_an_impossible_plan():
    p = [0.5, 0.4999999, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]  # sums to just under 1
    decision = plan_of(p, 0.99999995)
    assert decision.plan == "all:half"
    assert decision.plan_propensity == 0.4999999


def test_plans_of_probability_zero_are_skipped():
    p = [0.5, 0.0, 0.5, 0.0, 0.0, 0.0, 0.0, 0.0]
    assert plan_of(p, 0.5).plan == "only:a"
    assert plan_of(p, 0.4).plan == "all"
    p = [0.5, 0.0, 0.0, 0.0, 0.0, 0.0, 0.5, 0.0]
    assert plan_of(p, 0.5).plan == "without:b"


def test_marginal_propensity_is_capped_at_one():
    p = [0.5, 0.5 + 1e-12, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]
    decision = plan_of(p, 0.1)
    assert [c.propensity for c in decision.choices] == [1.0, 1.0, 1.0]


def test_plan_frequencies_match_the_logged_probabilities():
    policy = FixedPlans(PLAN_ARMS, DYADIC)
    rng = np.random.default_rng(42)
    n = 20_000
    counts = dict.fromkeys(PLAN_NAMES, 0)
    included = np.zeros(3)
    for _ in range(n):
        decision = draw_plan(policy, X, 120, rng, depth=10)
        counts[decision.plan] += 1
        included += [c.included for c in decision.choices]
    for name, q in zip(PLAN_NAMES, DYADIC, strict=True):
        assert abs(counts[name] / n - q) <= 4.5 * np.sqrt(q * (1 - q) / n)
    for freq, q in zip(included / n, MARGINALS, strict=True):
        assert abs(freq - q) <= 4.5 * np.sqrt(q * (1 - q) / n)


def test_plan_draw_is_deterministic_given_the_seed():
    policy = FixedPlans(PLAN_ARMS, [0.125] * 8)
    runs = [
        [draw_plan(policy, X, 120, rng, depth=10) for _ in range(10)]
        for rng in (np.random.default_rng(3), np.random.default_rng(3))
    ]
    assert runs[0] == runs[1]
    assert len({d.plan for d in runs[0]}) > 1


def test_draw_plan_passes_the_key():
    policy = FixedPlans(PLAN_ARMS, DYADIC)
    draw_plan(policy, X, 120, FixedDraw(0.1), key="harry potter")
    draw_plan(policy, X, 120, FixedDraw(0.1))
    assert policy.keys == ["harry potter", ""]


def test_policy_plans_must_match_the_catalog():
    policy = FixedPlans(PLAN_ARMS, [1.0], plans=("all",))
    with pytest.raises(ValueError, match="has plans"):
        draw_plan(policy, X, 120, FixedDraw(0.1))


def test_draw_plan_with_no_arms():
    policy = make_policy(PolicyConfig("safe_plans"), [], 1, seed=None)
    decision = draw_plan(policy, np.zeros(1), 120, FixedDraw(0.1))
    assert decision == Decision(choices=(), policy="safe_plans", features=(0.0,))
    assert decision.plan is None


def test_draw_plan_with_safe_plans():
    policy = make_policy(PolicyConfig("safe_plans", epsilon=0.2), PLAN_ARMS, 1, seed=None)
    decision = draw_plan(policy, np.ones(1), 120, FixedDraw(0.5), depth=10)
    assert decision.plan == "all"
    assert decision.plan_propensity == pytest.approx(0.8)
    assert [c.size for c in decision.choices] == [40, 40, 40]
    # the logged marginals agree with the policy's own per-arm probabilities here
    marginal, _ = policy.probabilities(np.ones(1))
    assert [c.propensity for c in decision.choices] == pytest.approx(marginal.tolist())
    # 8 plans, 0.2 / 7 on each of the 7 others; each arm is asked by all, all:half, its own
    # only and two without plans: 0.8 + 4 * 0.2 / 7 = 32 / 35
    assert marginal.tolist() == pytest.approx([32 / 35] * 3)
    decision = draw_plan(policy, np.ones(1), 120, FixedDraw(0.84), depth=10)
    # cumulative 0.8, 0.8 + 0.2 / 7 = 0.8286, 0.8 + 0.4 / 7 = 0.8571, ...: 0.84 is only:a
    assert decision.plan == "only:a"
    assert decision.plan_propensity == pytest.approx(0.2 / 7)
    assert [(c.included, c.size) for c in decision.choices] == [(True, 100), (False, 0), (False, 0)]
    decision = draw_plan(policy, np.ones(1), 120, FixedDraw(0.99), depth=10)
    # the last plan starts at 0.8 + 6 * 0.2 / 7 = 0.9714: without:c
    assert decision.plan == "without:c"
    assert decision.plan_propensity == pytest.approx(0.2 / 7)
    assert [(c.included, c.size) for c in decision.choices] == [(True, 60), (True, 60), (False, 0)]


@pytest.mark.parametrize(
    ("u", "set_propensity"),
    [
        # all and all:half ask the same arms: the set's probability is 0.5 + 0.25
        (0.1, 0.75),
        (0.6, 0.75),
        (0.83, 0.03125),  # only:b asks a set no other plan asks
        (0.95, 0.0625),  # without:b likewise
    ],
)
def test_the_set_propensity_sums_the_plans_that_ask_the_same_arms(u, set_propensity):
    assert plan_of(DYADIC, u).set_propensity == set_propensity
