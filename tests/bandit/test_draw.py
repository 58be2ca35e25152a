from collections.abc import Sequence
from typing import ClassVar

import numpy as np
import pytest

from ltrr.bandit.decision import ArmSpec
from ltrr.bandit.draw import allocate_sizes, draw, fallback_propensity
from ltrr.bandit.policies import make_policy
from ltrr.bandit.policies.base import Policy, PolicyConfig

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


# --- sizing -------------------------------------------------------------------------------

THREE = arms((5, 50), (10, 20), (0, 100))


def test_water_filling_by_hand():
    # floors: max(min, min(10, max)) = 10, 10, 10; 30 left, weights 1.001, 3.001, 0.001.
    # arm 1's share 22.5 exceeds its room 10: it takes 10, 20 left for arms 0 and 2,
    # shares 19.98 and 0.02 -> 19 and 0, and the spare unit goes to the larger fraction.
    assert allocate_sizes(THREE, [True] * 3, [1.0, 3.0, 0.0], 60, depth=10) == [30, 20, 10]


def test_budget_below_the_floors_keeps_the_floors():
    sizes = allocate_sizes(THREE, [True] * 3, [1.0, 3.0, 0.0], 15, depth=10)
    assert sizes == [10, 10, 10]  # total = max(budget, sum of floors)


def test_generous_budget_fills_every_arm():
    assert allocate_sizes(THREE, [True] * 3, [1.0, 3.0, 0.0], 1000, depth=10) == [50, 20, 100]


def test_floor_uses_min_size_and_max_size():
    # min_size 20 beats depth 10; max_size 5 caps it; 5 left goes to the arm with room
    specs = arms((20, 50), (0, 5))
    assert allocate_sizes(specs, [True, True], [0.0, 9.0], 30, depth=10) == [25, 5]
    assert allocate_sizes(specs, [True, True], [0.0, 9.0], 0, depth=0) == [20, 0]


def test_equal_split_and_ties_go_first():
    specs = arms((0, 100), (0, 100), (0, 100))
    # non-positive scores all weigh 1e-3: 7 / 3 = 2.33 each, the spare unit goes to arm 0
    assert allocate_sizes(specs, [True] * 3, [-1.0, -2.0, -3.0], 7) == [3, 2, 2]
    assert allocate_sizes(specs[:2], [True, True], [0.5, 0.5], 5) == [3, 2]


def test_cascading_caps():
    # arms 0 and 1 each ask for ~10 but hold 2 and 3; arm 2 takes the 15 left
    specs = arms((0, 2), (0, 3), (0, 100))
    assert allocate_sizes(specs, [True] * 3, [10.0, 10.0, 0.0], 20) == [2, 3, 15]


def test_excluded_arms_get_nothing():
    specs = arms((0, 10), (0, 100))
    assert allocate_sizes(specs, [True, False], [1.0, 1.0], 50) == [10, 0]
    assert allocate_sizes(specs, [False, False], [1.0, 1.0], 50) == [0, 0]


def test_total_never_exceeds_budget_or_floors():
    rng = np.random.default_rng(5)
    for _ in range(500):
        n = int(rng.integers(1, 6))
        lows = rng.integers(0, 20, size=n)
        specs = arms(*[(int(lo), int(lo + rng.integers(0, 60))) for lo in lows])
        included = (rng.random(n) < 0.7).tolist()
        scores = rng.normal(size=n).tolist()
        budget, depth = int(rng.integers(0, 150)), int(rng.integers(0, 40))
        sizes = allocate_sizes(specs, included, scores, budget, depth)
        floors = [
            max(a.min_size, min(depth, a.max_size)) if inc else 0
            for a, inc in zip(specs, included, strict=True)
        ]
        room = sum(a.max_size for a, inc in zip(specs, included, strict=True) if inc)
        assert sum(sizes) == max(sum(floors), min(budget, room))
        for size, floor, spec, inc in zip(sizes, floors, specs, included, strict=True):
            assert size == 0 if not inc else floor <= size <= max(spec.max_size, floor)
