"""Disjoint LinUCB: include an arm when its optimistic reward estimate beats its cost.

The upper confidence bound θᵀx + alpha·sqrt(xᵀA⁻¹x) is deterministic, so on its own it gives
no propensities; a logistic of its margin over the arm's cost makes inclusion a probability,
floored at ``min_probability`` so that every arm keeps being explored and logged.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from ltrr.bandit.policies._ridge import RidgePolicy
from ltrr.bandit.policies.base import Vector


def squash(margin: Vector, temperature: float, floor: float) -> Vector:
    """floor + (1 - 2·floor)·sigmoid(margin / temperature), through tanh so it never overflows.

    sigmoid(z) = (1 + tanh(z/2)) / 2; the result is in [floor, 1 - floor].
    """
    half_span = 0.5 * (1.0 - 2.0 * floor)
    result: Vector = np.tanh(margin * (0.5 / temperature))
    result *= half_span
    result += floor + half_span
    return result


class LinUCB(RidgePolicy):
    """Optimism under uncertainty: a rarely tried arm's wide bound earns it inclusions."""

    name: ClassVar[str] = "linucb"

    def probabilities(self, x: Vector) -> tuple[Vector, Vector]:
        mean, spread = self.moments(x)
        score: Vector = np.sqrt(spread)
        score *= self.config.alpha
        score += mean
        p = squash(score - self.costs, self.config.temperature, self.config.min_probability)
        return p, score
