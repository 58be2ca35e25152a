"""Inverse propensity scoring: mean(w·r), w = p_target(set) / p_logging(set).

Unbiased whenever the logging policy gave every set the target can choose a positive
probability; its variance grows with the weights, which ``clip`` can cap at the cost of bias.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from ltrr.bandit.ope.base import Estimator, LoggedBandit
from ltrr.bandit.policies.base import Vector


class IPS(Estimator):
    """Reweights each logged reward by how much more (or less) the target would take its set."""

    name: ClassVar[str] = "ips"

    def terms(self, data: LoggedBandit, w: Vector) -> tuple[Vector, Vector]:
        return w * data.r, np.ones_like(w)
