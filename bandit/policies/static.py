"""The baseline: always the same arms, so a learner can be compared with what it replaces.

Deterministic on purpose (propensities 1 and 0, no floor): it does not explore, and
off-policy estimates can only be made for the arms it includes.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

import numpy as np

from ltrr.bandit.decision import ArmSpec
from ltrr.bandit.policies.base import Policy, PolicyConfig, PolicyConfigError, Vector


class StaticPolicy(Policy):
    """Includes ``config.include`` (all arms when empty) and never learns."""

    name: ClassVar[str] = "static"

    def __init__(
        self, arms: Sequence[ArmSpec], n_features: int, config: PolicyConfig, seed: int | None
    ) -> None:
        super().__init__(arms, n_features, config, seed)
        names = [arm.name for arm in self.arms]
        unknown = [name for name in config.include if name not in names]
        if unknown:
            raise PolicyConfigError("include", f"unknown arms {unknown}; arms are {names}")
        chosen = set(config.include) if config.include else set(names)
        self._included: Vector = np.array([float(n in chosen) for n in names], dtype=np.float64)

    def probabilities(self, x: Vector) -> tuple[Vector, Vector]:
        return self._included.copy(), self._included.copy()

    def update(self, arm: str, x: Vector, reward: float) -> None:
        """Nothing to learn; the name is still checked so a misrouted reward is noticed."""
        if all(a.name != arm for a in self.arms):
            raise KeyError(arm)
