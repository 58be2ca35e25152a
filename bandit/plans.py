"""Whole query plans as actions: which arms to ask, and how many candidates from each.

Drawing arms one by one and crediting each arm for what it found cannot tell a redundant arm
from a useful one, and it never learns sizes. A plan is the whole action instead: a size per
arm (0 = not asked). The page a plan produces is a deterministic function of the arms' lists
and the catalog's fusion, so the probability of the plan is the probability of the page, fusion
included, and one page-level reward judges it.

The candidate plans come from the catalog's arms and budget alone, so that every catalog gets
the same kinds of choice without a new section to write:

- ``all``: every arm, the budget split evenly (capped by each arm's max size): the static plan
  a team runs today, and the first plan a learner tries;
- ``all:half``: every arm at half the budget (the same plan, fewer candidates);
- ``only:<arm>``: one arm alone, up to its max size within the budget;
- ``without:<arm>``: every arm but one, at the budget (with three arms or more), so that an arm
  that never pays stops being asked by the fused plans too.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ltrr.bandit.decision import ArmSpec
from ltrr.bandit.sizes import allocate_sizes

STATIC_PLAN = "all"


@dataclass(frozen=True, slots=True)
class Plan:
    """A name and one size per arm, in catalog order (0: the arm is not asked)."""

    name: str
    sizes: tuple[int, ...]

    @property
    def total(self) -> int:
        return sum(self.sizes)

    def includes(self, index: int) -> bool:
        return self.sizes[index] > 0

    @property
    def arm_set(self) -> tuple[bool, ...]:
        """Which arms it asks: plans that differ only in their sizes share it."""
        return tuple(size > 0 for size in self.sizes)


def _sized(
    name: str, arms: Sequence[ArmSpec], included: Sequence[bool], budget: int, depth: int
) -> Plan:
    scores = [1.0] * len(arms)  # even shares: a plan says how many, not which arm leads
    # At least one candidate per asked arm: a plan that asks an arm for nothing asks nothing.
    return Plan(name, tuple(allocate_sizes(arms, included, scores, budget, max(depth, 1))))


def candidate_plans(arms: Sequence[ArmSpec], budget: int, depth: int = 0) -> tuple[Plan, ...]:
    """The plans a plan policy chooses from, ``all`` first, always the same names in the same
    order (statistics are kept per name; only the sizes depend on the budget and depth).

    ``depth`` is the caller's from + size: every asked arm can fill that much on its own.
    """
    everything = [True] * len(arms)
    plans = [
        _sized(STATIC_PLAN, arms, everything, budget, depth),
        _sized(f"{STATIC_PLAN}:half", arms, everything, budget // 2, depth),
    ]
    for i, arm in enumerate(arms):
        alone = [j == i for j in range(len(arms))]
        plans.append(_sized(f"only:{arm.name}", arms, alone, budget, depth))
    if len(arms) > 2:  # with two arms, leaving one out is the other alone
        for i, arm in enumerate(arms):
            without = [j != i for j in range(len(arms))]
            plans.append(_sized(f"without:{arm.name}", arms, without, budget, depth))
    return tuple(plans) if arms else ()


def plan_names(arms: Sequence[ArmSpec]) -> tuple[str, ...]:
    return tuple(plan.name for plan in candidate_plans(arms, 0))
