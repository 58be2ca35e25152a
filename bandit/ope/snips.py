"""Self-normalised IPS: Σ(w·r) / Σw.

Slightly biased (a ratio), but invariant to adding a constant to every reward and far less
variable than IPS when the weights do not average to 1 on the sample at hand. Undefined (NaN)
when the target gives every logged set zero probability.
"""

from __future__ import annotations

from typing import ClassVar

from ltrr.bandit.ope.base import Estimator, LoggedBandit
from ltrr.bandit.policies.base import Vector


class SNIPS(Estimator):
    """IPS divided by the weights' own total, so the weights act as a distribution."""

    name: ClassVar[str] = "snips"

    def terms(self, data: LoggedBandit, w: Vector) -> tuple[Vector, Vector]:
        return w * data.r, w
