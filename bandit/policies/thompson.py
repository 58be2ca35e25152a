"""Linear Thompson sampling with exact inclusion probabilities instead of a sampled draw.

Sampling θ ~ N(θ̂, v²A⁻¹) and including an arm when θᵀx beats its cost is, for that arm, a draw
of s ~ N(θ̂ᵀx, v²·xᵀA⁻¹x). So P(include) = Φ((θ̂ᵀx - cost) / (v·sqrt(xᵀA⁻¹x))) in closed form:
``draw`` then draws the inclusion itself, and the logged propensity is exact, not estimated.
"""

from __future__ import annotations

import math
from typing import ClassVar

import numpy as np

from ltrr.bandit.policies._ridge import RidgePolicy
from ltrr.bandit.policies.base import Vector

_SQRT2 = math.sqrt(2.0)


def exceed_probability(margin: float, spread: float) -> float:
    """P(N(margin, spread²) > 0); with no spread the draw is the mean itself."""
    if spread > 0.0:
        return 0.5 * math.erfc(-margin / (spread * _SQRT2))  # erfc keeps the tails accurate
    return 1.0 if margin > 0.0 else 0.0


class LinearThompson(RidgePolicy):
    """Probability matching: an arm is included as often as it is likely to be worth its cost."""

    name: ClassVar[str] = "thompson"

    def probabilities(self, x: Vector) -> tuple[Vector, Vector]:
        mean, spread = self.moments(x)
        margins = (mean - self.costs).tolist()
        spreads = (self.config.v * np.sqrt(spread)).tolist()
        low = self.config.min_probability
        high = 1.0 - low
        p = np.array(
            [
                min(max(exceed_probability(m, s), low), high)
                for m, s in zip(margins, spreads, strict=True)
            ],
            dtype=np.float64,
        )
        return p, mean
