"""Draw which arms to ask and size them, logging each arm's exact inclusion probability.

Policies only say how likely each arm should be; the draw happens here, once, for all of them,
so that every policy's propensities are exact by the same construction. Sizes are a
deterministic function of the drawn set and the scores, so they add no randomness that
off-policy estimates would have to account for.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from ltrr.bandit.decision import ArmChoice, Decision
from ltrr.bandit.plans import candidate_plans
from ltrr.bandit.policies.base import PlanPolicy, Policy, Vector
from ltrr.bandit.sizes import allocate_sizes


def fallback_propensity(p: Sequence[float], chosen: int) -> float:
    """P(arm ``chosen`` included) when it is also forced in whenever no arm was drawn."""
    none_of_the_others = math.prod(1.0 - q for j, q in enumerate(p) if j != chosen)
    return p[chosen] + (1.0 - p[chosen]) * none_of_the_others


def draw(
    policy: Policy, x: Vector, budget: int, rng: np.random.Generator, depth: int = 0
) -> Decision:
    """One decision: each arm drawn independently with the policy's P(include), then sized.

    Arm j is included when a uniform draw falls below p_j (one vectorised draw for all arms).
    A search needs at least one arm, so when none is drawn the arm m with the highest p (ties:
    the first in catalog order) is added. Arm m is then included with probability
    p_m + (1 - p_m)·Π_{j≠m}(1 - p_j), and that marginal is what is logged as its propensity;
    every other arm's inclusion is untouched, so its propensity stays p_j. The marginals are
    exact; the arms are no longer independent (m fills in exactly when the others are all out).
    ``depth`` is the caller's from + size, which every included arm can fill on its own.
    """
    p, score = policy.probabilities(x)
    n = len(policy.arms)
    if p.shape != (n,) or score.shape != (n,):
        raise ValueError(f"policy {policy.name} returned {p.shape} probabilities for {n} arms")
    if n == 0:
        return Decision(choices=(), policy=policy.name, features=tuple(x.tolist()))
    included: list[bool] = (rng.random(n) < p).tolist()
    propensities: list[float] = p.tolist()
    chosen = max(range(n), key=propensities.__getitem__)  # the first of equal maxima
    propensities[chosen] = fallback_propensity(p.tolist(), chosen)
    if not any(included):
        included[chosen] = True
    scores: list[float] = score.tolist()
    sizes = allocate_sizes(policy.arms, included, scores, budget, depth)
    return Decision(
        choices=tuple(
            ArmChoice(
                arm=arm.name,
                included=included[i],
                size=sizes[i],
                propensity=propensities[i],
                score=scores[i],
            )
            for i, arm in enumerate(policy.arms)
        ),
        policy=policy.name,
        features=tuple(x.tolist()),
    )


def draw_plan(
    policy: PlanPolicy,
    x: Vector,
    budget: int,
    rng: np.random.Generator,
    depth: int = 0,
    key: str = "",
) -> Decision:
    """One decision of a plan policy: one uniform draw picks the plan from its distribution.

    Each arm's logged propensity is its exact marginal, the summed probability of the plans
    that ask it at these sizes; the plan's own probability is logged beside it.
    """
    plans = candidate_plans(policy.arms, budget, depth)
    names = tuple(plan.name for plan in plans)
    if names != policy.plans:
        raise ValueError(f"policy {policy.name} has plans {policy.plans}, the catalog {names}")
    if not plans:
        return Decision(choices=(), policy=policy.name, features=tuple(x.tolist()))
    p, _ = policy.distribution(x, key)
    chosen = min(int(np.searchsorted(np.cumsum(p), rng.random(), side="right")), len(plans) - 1)
    while p[chosen] <= 0.0:  # rounding at the top of the cumulative sum
        chosen -= 1
    plan = plans[chosen]
    probabilities: list[float] = p.tolist()
    choices = []
    for i, arm in enumerate(policy.arms):
        marginal = sum(
            q for q, other in zip(probabilities, plans, strict=True) if other.includes(i)
        )
        choices.append(
            ArmChoice(
                arm=arm.name,
                included=plan.includes(i),
                size=plan.sizes[i],
                propensity=min(1.0, marginal),
                score=1.0 if plan.includes(i) else 0.0,
            )
        )
    return Decision(
        choices=tuple(choices),
        policy=policy.name,
        features=tuple(x.tolist()),
        plan=plan.name,
        plan_propensity=probabilities[chosen],
        set_propensity=min(
            1.0,
            sum(
                q
                for q, other in zip(probabilities, plans, strict=True)
                if other.arm_set == plan.arm_set
            ),
        ),
    )
