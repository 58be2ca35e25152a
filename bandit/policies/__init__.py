"""Bandit policies, one per module behind the small interface in ``base``."""

from __future__ import annotations

from collections.abc import Sequence

from ltrr.bandit.decision import ArmSpec
from ltrr.bandit.policies.base import Policy, PolicyConfig, PolicyConfigError
from ltrr.bandit.policies.epsilon_greedy import EpsilonGreedy
from ltrr.bandit.policies.linucb import LinUCB
from ltrr.bandit.policies.safe_plans import SafePlans
from ltrr.bandit.policies.static import StaticPolicy
from ltrr.bandit.policies.thompson import LinearThompson

__all__ = [
    "POLICIES",
    "EpsilonGreedy",
    "LinUCB",
    "LinearThompson",
    "Policy",
    "PolicyConfig",
    "PolicyConfigError",
    "SafePlans",
    "StaticPolicy",
    "make_policy",
]

POLICIES: dict[str, type[Policy]] = {
    cls.name: cls for cls in (LinUCB, LinearThompson, EpsilonGreedy, SafePlans, StaticPolicy)
}


def make_policy(
    config: PolicyConfig, arms: Sequence[ArmSpec], n_features: int, seed: int | None
) -> Policy:
    """The policy ``config.name`` names, fresh (no statistics yet)."""
    try:
        cls = POLICIES[config.name]
    except KeyError:
        raise PolicyConfigError(
            "name", f"unknown policy {config.name!r}; one of {', '.join(POLICIES)}"
        ) from None
    return cls(arms, n_features, config, seed)
