"""What a policy decided for one search: per arm, included or not, a size, and a propensity.

The plan and the proxy read a ``Decision``; they never see the policy or numpy (the bandit's
``Agent`` makes decisions and takes their rewards back).
"""

from __future__ import annotations

from dataclasses import dataclass

# The policy name of a plan no policy chose (the catalog's static fallback): never learned from.
FALLBACK_POLICY = "static_fallback"


@dataclass(frozen=True, slots=True)
class ArmSpec:
    """The numbers the bandit needs about an arm; the DSL stays in the catalog."""

    name: str
    min_size: int
    max_size: int
    cost: float = 1.0
    needs_vector: bool = False


@dataclass(slots=True)  # not frozen: built per arm per search, and frozen doubles the cost
class ArmChoice:
    """One arm's outcome. ``propensity`` is P(included) under the policy, whatever the draw."""

    arm: str
    included: bool
    size: int
    propensity: float
    score: float

    @property
    def outcome_probability(self) -> float:
        """Probability of what actually happened, which off-policy estimators divide by."""
        return self.propensity if self.included else 1.0 - self.propensity


@dataclass(frozen=True, slots=True)
class Decision:
    """The policy's choice for one search, in catalog arm order.

    ``features`` is the context vector the policy saw, as plain floats, so that the learner
    can hand it back with the rewards; a fallback plan that no policy made has None. A plan
    policy also names the ``plan`` it drew and that plan's exact probability
    (``plan_propensity``): the page follows from the plan and the fusion, so that is the
    probability of the page. ``set_propensity`` is the probability of its arm set (the summed
    probability of every plan asking exactly those arms): what an off-policy estimate over arm
    sets needs, since a plan policy's arms are not drawn one by one.
    """

    choices: tuple[ArmChoice, ...]
    policy: str
    features: tuple[float, ...] | None = None
    plan: str | None = None
    plan_propensity: float | None = None
    set_propensity: float | None = None

    @property
    def learnable(self) -> bool:
        """A policy made it and it carries what the policy saw: its rewards can be learned."""
        return self.features is not None and not self.is_fallback

    @property
    def is_fallback(self) -> bool:
        return self.policy.startswith(FALLBACK_POLICY)

    @property
    def included(self) -> tuple[ArmChoice, ...]:
        return tuple(c for c in self.choices if c.included)

    @property
    def total_size(self) -> int:
        return sum(c.size for c in self.choices if c.included)

    def choice(self, arm: str) -> ArmChoice:
        for c in self.choices:
            if c.arm == arm:
                return c
        raise KeyError(arm)
