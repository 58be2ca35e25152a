"""The one small interface every policy implements, and its validated, immutable config.

A policy maps a context vector to a per-arm inclusion probability and a score. Drawing the
arms and sizing them happens in ``ltrr.bandit.draw``, so every policy's propensities are
exact by construction.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt

from ltrr.bandit.decision import ArmSpec
from ltrr.bandit.errors import LtrrError

Vector = npt.NDArray[np.float64]


class PolicyConfigError(LtrrError, ValueError):
    """A bad policy setting; ``key`` names it so the catalog loader can point at its line."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(f"{key}: {message}")
        self.key = key
        self.message = message


@dataclass(frozen=True, slots=True)
class PolicyConfig:
    """Settings shared by the learning policies; each policy reads the ones it needs.

    - ``alpha``: LinUCB's exploration width.
    - ``v``: linear Thompson sampling's posterior scale.
    - ``epsilon``: epsilon-greedy's exploration rate.
    - ``ridge``: the prior precision (A starts as ridge * I).
    - ``temperature``: how sharply a score above the arm's cost turns into inclusion.
    - ``min_probability``: floor (and 1 - ceiling) on every inclusion probability, so that
      every arm keeps being explored and off-policy estimates stay bounded.
    - ``include``: the static plan's arms (empty means all).
    """

    name: str
    alpha: float = 1.0
    v: float = 0.5
    epsilon: float = 0.1
    ridge: float = 1.0
    temperature: float = 0.1
    min_probability: float = 0.05
    include: tuple[str, ...] = field(default_factory=tuple)


POLICY_NAMES = ("linucb", "thompson", "epsilon_greedy", "safe_plans", "static")


def parse_policy_config(name: str, params: Mapping[str, object]) -> PolicyConfig:
    """Validate raw catalog settings; raises ``PolicyConfigError`` naming the bad key."""
    if name not in POLICY_NAMES:
        raise PolicyConfigError(
            "name", f"unknown policy {name!r}; one of {', '.join(POLICY_NAMES)}"
        )
    values: dict[str, object] = {}
    floats = {
        "alpha": (0.0, None),
        "v": (0.0, None),
        "epsilon": (0.0, 1.0),
        "ridge": (1e-9, None),
        "temperature": (1e-9, None),
        "min_probability": (0.0, 0.5),
    }
    for key, raw in params.items():
        if key in floats:
            if isinstance(raw, bool) or not isinstance(raw, int | float):
                raise PolicyConfigError(key, f"must be a number, got {raw!r}")
            low, high = floats[key]
            value = float(raw)
            if value < low or (high is not None and value > high):
                bound = f"between {low} and {high}" if high is not None else f">= {low}"
                raise PolicyConfigError(key, f"must be {bound}, got {value}")
            values[key] = value
        elif key == "include":
            if not isinstance(raw, list) or not all(isinstance(a, str) for a in raw):
                raise PolicyConfigError(key, "must be a list of arm names")
            values[key] = tuple(raw)
        else:
            raise PolicyConfigError(key, f"unknown setting for policy {name!r}")
    return PolicyConfig(name=name, **values)  # type: ignore[arg-type]


class Policy(ABC):
    """Per-arm inclusion probabilities from a context vector, and online updates."""

    name: ClassVar[str]

    def __init__(
        self, arms: Sequence[ArmSpec], n_features: int, config: PolicyConfig, seed: int | None
    ) -> None:
        self.arms = tuple(arms)
        self.n_features = n_features
        self.config = config
        self.rng = np.random.default_rng(seed)

    @abstractmethod
    def probabilities(self, x: Vector) -> tuple[Vector, Vector]:
        """Return (P(include arm), score) for every arm, in ``self.arms`` order."""

    @abstractmethod
    def update(self, arm: str, x: Vector, reward: float) -> None:
        """Learn from one arm's reward for the context it was included in."""

    def add_reward(self, arm: str, x: Vector, reward: float) -> None:
        """Add reward to a context ``update`` already counted (feedback that came later).

        A decision's context must weigh once however many events it gets, so only the first
        reward goes through ``update``. Policies that learn nothing ignore it.
        """
        del arm, x, reward

    def summary(self) -> dict[str, dict[str, float]]:
        """Per arm, a few numbers that tell two copies of the statistics apart (for stats)."""
        return {}

    def version(self) -> int:
        """How many updates the policy has learned from; the decision log records it."""
        return 0

    def state(self) -> dict[str, Any]:
        """Plain, JSON-ready values a restart needs to resume; learning policies add theirs."""
        return {
            "policy": self.name,
            "arms": [arm.name for arm in self.arms],
            "n_features": self.n_features,
        }

    def load_state(self, state: Mapping[str, Any]) -> None:
        """Resume from ``state()``; refuses one recorded for other arms or another feature set."""
        arms = [arm.name for arm in self.arms]
        if list(state.get("arms", ())) != arms:
            raise ValueError(f"state is for arms {state.get('arms')!r}, this policy has {arms!r}")
        if state.get("n_features") != self.n_features:
            raise ValueError(
                f"state is for {state.get('n_features')!r} features, "
                f"this policy has {self.n_features}"
            )


class PlanPolicy(Policy):
    """A distribution over whole plans (``ltrr.bandit.plans``), learned from page rewards.

    ``probabilities`` still answers per arm, as the marginal chance that a plan asking the arm
    is drawn, so tools that read inclusion probabilities see the same kind of numbers.
    """

    @property
    @abstractmethod
    def plans(self) -> tuple[str, ...]:
        """The plan names, in the order ``distribution`` answers."""

    @abstractmethod
    def distribution(self, x: Vector, key: str = "") -> tuple[Vector, Vector]:
        """Return (P(plan), score) for every plan; ``key`` is the normalised query (its own
        history, when the policy keeps one)."""

    @abstractmethod
    def set_probability(self, x: Vector, included: Sequence[bool]) -> float:
        """P(the plan drawn for ``x`` asks exactly the ``included`` arms): what an off-policy
        estimate over arm sets needs, since plans do not draw their arms one by one."""

    @abstractmethod
    def update_plan(self, plan: str, x: Vector, reward: float, key: str = "") -> None:
        """Learn from the page reward of ``plan`` shown for context ``x`` and query ``key``."""

    @abstractmethod
    def add_plan_reward(self, plan: str, x: Vector, reward: float, key: str = "") -> None:
        """More page reward for a context ``update_plan`` already counted."""

    def credit_arms(self, rewards: Mapping[str, float], first: bool) -> None:
        """What each asked arm found of what the user engaged with (``first``: the decision's
        first event, or its window closing empty). A plan policy learns from the page; this
        only lets it notice an arm that never finds anything engaged. Default: ignored."""

    def update(self, arm: str, x: Vector, reward: float) -> None:
        """Per-arm credit means nothing to a plan policy: only the name is checked."""
        if all(a.name != arm for a in self.arms):
            raise KeyError(arm)
