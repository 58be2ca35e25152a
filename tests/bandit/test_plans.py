"""Candidate plans: fixed names in a fixed order, sizes from the budget and depth by hand."""

import dataclasses

import pytest

from ltrr.bandit.decision import ArmSpec
from ltrr.bandit.plans import STATIC_PLAN, Plan, candidate_plans, plan_names

ARMS = [ArmSpec("a", 10, 100), ArmSpec("b", 0, 100), ArmSpec("c", 0, 50)]
NAMES = ("all", "all:half", "only:a", "only:b", "only:c")


def sizes(arms, budget, depth=0):
    return {plan.name: plan.sizes for plan in candidate_plans(arms, budget, depth)}


def test_names_and_order():
    plans = candidate_plans(ARMS, 120, 10)
    assert tuple(plan.name for plan in plans) == NAMES
    assert plans[0].name == STATIC_PLAN == "all"
    assert plan_names(ARMS) == NAMES


def test_names_do_not_depend_on_budget_or_depth():
    for budget, depth in [(0, 0), (1, 0), (20, 10), (1000, 50)]:
        assert tuple(p.name for p in candidate_plans(ARMS, budget, depth)) == NAMES
    assert plan_names([ArmSpec("x", 0, 5)]) == ("all", "all:half", "only:x")


def test_no_arms_no_plans():
    assert candidate_plans([], 120, 10) == ()
    assert plan_names([]) == ()


def test_sizes_by_hand_budget_120_depth_10():
    # floors max(min, min(10, max)) = 10, 10, 10.
    # all: 90 left, equal weights -> 30 each (nobody capped: rooms 90, 90, 40).
    # all:half: budget 60, 30 left -> 10 each.
    # only:x: floor 10 then its whole room fits in the 110 left: a 100, b 100, c 50.
    assert sizes(ARMS, 120, 10) == {
        "all": (40, 40, 40),
        "all:half": (20, 20, 20),
        "only:a": (100, 0, 0),
        "only:b": (0, 100, 0),
        "only:c": (0, 0, 50),
    }


def test_sizes_by_hand_a_capped_arm_gives_its_share_away():
    # all: 150 left, 50 each, but c has room for 40 only: c = 50, 110 left -> a, b 55 each.
    # all:half: budget 90, 60 left -> 20 each.
    assert sizes(ARMS, 180, 10) == {
        "all": (65, 65, 50),
        "all:half": (30, 30, 30),
        "only:a": (100, 0, 0),
        "only:b": (0, 100, 0),
        "only:c": (0, 0, 50),
    }


def test_sizes_by_hand_budget_below_the_floors():
    # all and all:half keep the floors (30 > budget); one arm alone: floor 10 + the 10 left.
    assert sizes(ARMS, 20, 10) == {
        "all": (10, 10, 10),
        "all:half": (10, 10, 10),
        "only:a": (20, 0, 0),
        "only:b": (0, 20, 0),
        "only:c": (0, 0, 20),
    }


def test_sizes_by_hand_depth_0():
    # depth 0 still asks every included arm for one candidate at least: floors a 10 (its
    # min_size), b 1, c 1. all: 108 left, 36 each. all:half: budget 60, 48 left, 16 each.
    assert sizes(ARMS, 120, 0) == {
        "all": (46, 37, 37),
        "all:half": (26, 17, 17),
        "only:a": (100, 0, 0),
        "only:b": (0, 100, 0),
        "only:c": (0, 0, 50),
    }


def test_plan_total_and_includes():
    plan = Plan("only:b", (0, 7, 0))
    assert plan.total == 7
    assert [plan.includes(i) for i in range(3)] == [False, True, False]
    assert Plan("all", (3, 4, 5)).total == 12


def test_plan_is_frozen():
    plan = Plan("all", (1, 2))
    with pytest.raises(dataclasses.FrozenInstanceError):
        plan.name = "other"  # type: ignore[misc]
    assert plan == Plan("all", (1, 2))
