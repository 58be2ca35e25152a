"""Epsilon-greedy on the ridge estimate: the simplest learner, and a floor for the others.

Each arm is a separate include/exclude choice, so the greedy choice is "θᵀx ≥ cost", and
exploration flips it with probability ε/2: an arm is included with 1 - ε/2 or ε/2.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from ltrr.bandit.policies._ridge import RidgePolicy
from ltrr.bandit.policies.base import Vector


class EpsilonGreedy(RidgePolicy):
    """Trusts the point estimate, explores at a fixed rate whatever the uncertainty."""

    name: ClassVar[str] = "epsilon_greedy"

    def probabilities(self, x: Vector) -> tuple[Vector, Vector]:
        mean, _ = self.moments(x)
        floor = self.config.min_probability
        explore = min(max(self.config.epsilon / 2.0, floor), 1.0 - floor)
        exploit = 1.0 - explore  # the floor is symmetric, so clipping commutes with 1 - p
        p: Vector = (mean >= self.costs).astype(np.float64)
        p *= exploit - explore
        p += explore
        return p, mean
