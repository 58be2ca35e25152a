"""Doubly robust: mean(q_target + w·(r - q_logged)).

The reward model's expectation under the target, corrected by the importance-weighted error
it makes on the logged set. Unbiased when either the weights or the reward model are right,
and less variable than IPS when the model is close (only its residuals are reweighted).
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from ltrr.bandit.ope.base import Estimator, LoggedBandit
from ltrr.bandit.policies.base import Vector


class DoublyRobust(Estimator):
    """A reward model's guess for the target, plus IPS on what the model got wrong."""

    name: ClassVar[str] = "dr"

    def terms(self, data: LoggedBandit, w: Vector) -> tuple[Vector, Vector]:
        if data.q_logged is None or data.q_target is None:
            raise ValueError("doubly robust needs the reward model's q_logged and q_target")
        return data.q_target + w * (data.r - data.q_logged), np.ones_like(w)
