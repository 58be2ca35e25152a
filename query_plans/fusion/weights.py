"""Fusion weights that follow the policy: an arm's catalog weight times its score this search.

A fixed weight lets an arm the policy barely trusts for this context push a trusted arm's
results down the page. Scaling by the policy's score (its estimated reward for the arm here,
floored so an included arm always counts a little) lets the arms it expects most from lead.
"""

from __future__ import annotations

from collections.abc import Mapping

SCORE_FLOOR = 0.05


def policy_weights(
    weights: Mapping[str, float], scores: Mapping[str, float], floor: float = SCORE_FLOOR
) -> dict[str, float]:
    """Per scored arm: its catalog weight (1 when unset) times max(score, floor)."""
    return {arm: weights.get(arm, 1.0) * max(score, floor) for arm, score in scores.items()}
