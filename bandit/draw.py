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

from ltrr.bandit.decision import ArmChoice, ArmSpec, Decision
from ltrr.bandit.policies.base import Policy, Vector

SIZE_WEIGHT_FLOOR = 1e-3  # so an arm with a non-positive score still gets a sliver


def fallback_propensity(p: Sequence[float], chosen: int) -> float:
    """P(arm ``chosen`` included) when it is also forced in whenever no arm was drawn."""
    none_of_the_others = math.prod(1.0 - q for j, q in enumerate(p) if j != chosen)
    return p[chosen] + (1.0 - p[chosen]) * none_of_the_others


def allocate_sizes(
    arms: Sequence[ArmSpec],
    included: Sequence[bool],
    scores: Sequence[float],
    budget: int,
    depth: int = 0,
) -> list[int]:
    """Candidates per arm: a page-filling floor each, then the budget left by water-filling.

    Each included arm first gets max(min_size, min(depth, max_size)), so any one arm can fill
    the page the caller asked for. What is left of ``budget`` is split in proportion to
    max(score, 0) + 1e-3, each arm capped at its max_size; what a capped arm cannot take goes
    to the arms that still have room. Shares are rounded down and the units left over go to the
    largest fractions (ties: catalog order). The total is at most max(budget, sum of floors);
    excluded arms get 0.
    """
    sizes = [0] * len(arms)
    active: list[int] = []  # included arms below their max_size
    room: list[int] = []
    weight: list[float] = []
    for i, arm in enumerate(arms):
        if not included[i]:
            continue
        size = max(arm.min_size, min(depth, arm.max_size))
        sizes[i] = size
        if arm.max_size > size:
            active.append(i)
            room.append(arm.max_size - size)
            score = float(scores[i])
            weight.append((score if score > 0.0 else 0.0) + SIZE_WEIGHT_FLOOR)
    left = budget - sum(sizes)
    if left >= sum(room):  # everyone fits: the common case when the budget is generous
        for i, r in zip(active, room, strict=True):
            sizes[i] += r
        return sizes
    for i, extra in _water_fill(left, active, room, weight):
        sizes[i] += extra
    return sizes


def _water_fill(
    left: int, active: list[int], room: list[int], weight: list[float]
) -> list[tuple[int, int]]:
    """Split ``left`` units over the ``active`` arms by ``weight``, each capped at its ``room``:
    what a full arm cannot take goes to the others; then whole units, the spare ones to the
    largest fractions (ties: catalog order). Returns (arm, units) pairs."""
    out: list[tuple[int, int]] = []
    while left > 0:
        unit = left / sum(weight)
        shares = [w * unit for w in weight]
        full = [k for k, share in enumerate(shares) if share >= room[k]]
        if full:
            for k in full:
                out.append((active[k], room[k]))
                left -= room[k]
            keep = [k for k in range(len(active)) if k not in full]
            active = [active[k] for k in keep]
            room = [room[k] for k in keep]
            weight = [weight[k] for k in keep]
            continue
        whole = [math.floor(share) for share in shares]
        spare = left - sum(whole)
        by_fraction = sorted(range(len(active)), key=lambda k: (whole[k] - shares[k], k))
        for rank, k in enumerate(by_fraction):
            out.append((active[k], min(whole[k] + (1 if rank < spare else 0), room[k])))
        left = 0
    return out


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
