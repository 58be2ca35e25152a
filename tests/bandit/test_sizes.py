"""Sizing: page-filling floors, then the budget water-filled by score (moved from test_draw)."""

import numpy as np

from ltrr.bandit.decision import ArmSpec
from ltrr.bandit.sizes import allocate_sizes


def arms(*bounds: tuple[int, int]) -> list[ArmSpec]:
    return [ArmSpec(f"arm{i}", lo, hi) for i, (lo, hi) in enumerate(bounds)]


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
