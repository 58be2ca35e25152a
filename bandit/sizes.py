"""How many candidates each included arm gets: page-filling floors, then the budget by score.

Sizes are a deterministic function of the drawn set and the scores, so they add no randomness
that off-policy estimates would have to account for.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from ltrr.bandit.decision import ArmSpec

SIZE_WEIGHT_FLOOR = 1e-3  # so an arm with a non-positive score still gets a sliver


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
