"""Candidate plans: fixed names in a fixed order, sizes from the budget and depth by hand."""

import dataclasses

import pytest

from ltrr.bandit.decision import ArmSpec
from ltrr.bandit.plans import STATIC_PLAN, Plan, candidate_plans, plan_names
from tests.bandit._plans import ARMS
from tests.bandit._plans import PLANS as NAMES


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
    # without:a: b, c floors 10, 10, 100 left, 50 each, but c has room for 40 only: c = 50,
    # the 60 left go to b: 70. without:b: a and c the same way: a 70, c 50.
    # without:c: a, b floors 10, 10, 100 left, 50 each (rooms 90, 90): 60, 60.
    assert sizes(ARMS, 120, 10) == {
        "all": (40, 40, 40),
        "all:half": (20, 20, 20),
        "only:a": (100, 0, 0),
        "only:b": (0, 100, 0),
        "only:c": (0, 0, 50),
        "without:a": (0, 70, 50),
        "without:b": (70, 0, 50),
        "without:c": (60, 60, 0),
    }


def test_sizes_by_hand_a_capped_arm_gives_its_share_away():
    # all: 150 left, 50 each, but c has room for 40 only: c = 50, 110 left -> a, b 55 each.
    # all:half: budget 90, 60 left -> 20 each.
    # without:a: floors 10, 10, 160 left >= rooms 90 + 40: b and c at their max, 100 and 50.
    # without:b: the same for a and c: 100, 50. without:c: 160 left, 80 each (rooms 90, 90).
    assert sizes(ARMS, 180, 10) == {
        "all": (65, 65, 50),
        "all:half": (30, 30, 30),
        "only:a": (100, 0, 0),
        "only:b": (0, 100, 0),
        "only:c": (0, 0, 50),
        "without:a": (0, 100, 50),
        "without:b": (100, 0, 50),
        "without:c": (90, 90, 0),
    }


def test_sizes_by_hand_budget_below_the_floors():
    # all and all:half keep the floors (30 > budget); one arm alone: floor 10 + the 10 left.
    # every arm but one: two floors of 10 use the whole budget, nothing left to share.
    assert sizes(ARMS, 20, 10) == {
        "all": (10, 10, 10),
        "all:half": (10, 10, 10),
        "only:a": (20, 0, 0),
        "only:b": (0, 20, 0),
        "only:c": (0, 0, 20),
        "without:a": (0, 10, 10),
        "without:b": (10, 0, 10),
        "without:c": (10, 10, 0),
    }


def test_sizes_by_hand_depth_0():
    # depth 0 still asks every included arm for one candidate at least: floors a 10 (its
    # min_size), b 1, c 1. all: 108 left, 36 each. all:half: budget 60, 48 left, 16 each.
    # without:a: floors 1, 1, 118 left, 59 each, but c has room for 49: c 50, b 1 + 69 = 70.
    # without:b: floors 10, 1, 109 left, 54.5 each, c capped: c 50, a 10 + 60 = 70.
    # without:c: floors 10, 1, 109 left, 54.5 each (rooms 90, 99): 54 each and the spare
    # unit to the first of the equal fractions, a: a 10 + 55 = 65, b 1 + 54 = 55.
    assert sizes(ARMS, 120, 0) == {
        "all": (46, 37, 37),
        "all:half": (26, 17, 17),
        "only:a": (100, 0, 0),
        "only:b": (0, 100, 0),
        "only:c": (0, 0, 50),
        "without:a": (0, 70, 50),
        "without:b": (70, 0, 50),
        "without:c": (65, 55, 0),
    }


def test_no_without_plans_with_two_arms():
    # with two arms, "without:a" would be "only:b": 4 plans, the same as before
    two = ARMS[:2]
    assert plan_names(two) == ("all", "all:half", "only:a", "only:b")
    # all: floors 10, 10, 100 left, 50 each; all:half: budget 60, 40 left, 20 each
    assert sizes(two, 120, 10) == {
        "all": (60, 60),
        "all:half": (30, 30),
        "only:a": (100, 0),
        "only:b": (0, 100),
    }
    assert not any(name.startswith("without:") for name in plan_names(ARMS[:1]))


def test_without_plans_with_four_arms_in_catalog_order():
    arms = [*ARMS, ArmSpec("d", 0, 30)]
    names = plan_names(arms)
    assert names[-4:] == ("without:a", "without:b", "without:c", "without:d")
    assert len(names) == 2 + 4 + 4
    plans = {plan.name: plan.sizes for plan in candidate_plans(arms, 120, 10)}
    # without:a: b, c, d floors 10 each, 90 left, 30 each, but d has room for 20 only: d 30,
    # the 70 left split 35 / 35, c room 40 fits: b 45, c 45.
    assert plans["without:a"] == (0, 45, 45, 30)
    # without:d: a, b, c floors 10 each, 90 left, 30 each (rooms 90, 90, 40): 40 each.
    assert plans["without:d"] == (40, 40, 40, 0)


def test_without_plans_use_the_full_budget_and_the_depth_floor():
    # the same budget as "all", not the half: without:c at budget 60 (depth 10) is a, b
    # floors 10, 10, 40 left, 20 each: 30, 30; and depth 0 still floors b at 1.
    assert sizes(ARMS, 60, 10)["without:c"] == (30, 30, 0)
    # depth 0, budget 12: without:c floors a 10 (min_size), b 1, 1 left: 0.5 each, the
    # spare unit to a (ties: catalog order): 11, 1.
    assert sizes(ARMS, 12, 0)["without:c"] == (11, 1, 0)


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
