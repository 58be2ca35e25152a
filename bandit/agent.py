"""The one door between the proxy and the bandit: decide for a search, reward what it found.

The serving and learning layers hold an ``Agent`` per catalog and see only plain values: a
``Decision`` (whose ``features`` are a tuple of floats) goes out, and the same features come
back with per-arm rewards. The policy, its statistics, numpy and the random stream stay here,
so a policy can change its insides without the proxy noticing.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime

import numpy as np

from ltrr.bandit.decision import ArmSpec, Decision
from ltrr.bandit.draw import draw, draw_plan
from ltrr.bandit.features import EntityDictionary, FeatureBuilder
from ltrr.bandit.policies import make_policy
from ltrr.bandit.policies.base import PlanPolicy, Policy, PolicyConfig
from ltrr.bandit.state import SharedStatistics, carry_over, shared_statistics


class Agent:
    """A catalog's policy, feature layout and random stream behind ``decide`` and ``reward``."""

    __slots__ = ("_arm_names", "_features", "_policy", "_rng")

    def __init__(
        self,
        policy: Policy,
        features: FeatureBuilder,
        rng: np.random.Generator | None = None,
        *,
        seed: int | None = None,
    ) -> None:
        if policy.n_features != features.n_features:
            raise ValueError(
                f"policy {policy.name} expects {policy.n_features} features, the layout has "
                f"{features.n_features}"
            )
        self._policy = policy
        self._features = features
        self._rng = rng if rng is not None else np.random.default_rng(seed)
        self._arm_names = frozenset(arm.name for arm in policy.arms)

    @classmethod
    def create(
        cls,
        config: PolicyConfig,
        arms: Sequence[ArmSpec],
        context_fields: Sequence[tuple[str, str]],
        hash_buckets: int,
        seed: int | None = None,
    ) -> Agent:
        features = FeatureBuilder(context_fields, hash_buckets)
        return cls(make_policy(config, arms, features.n_features, seed), features, seed=seed)

    def renew(
        self,
        config: PolicyConfig,
        arms: Sequence[ArmSpec],
        context_fields: Sequence[tuple[str, str]],
        hash_buckets: int,
        seed: int | None = None,
    ) -> tuple[Agent, list[str] | None]:
        """This agent for a reloaded catalog: itself when nothing the bandit sees changed, else
        a new one on the same random stream, with the statistics of the arms both share when
        the feature layout is the same. Returns the agent and the arms carried (None: kept)."""
        features = FeatureBuilder(context_fields, hash_buckets)
        same_layout = features.names == self._features.names
        if same_layout and self._policy.config == config and self._policy.arms == tuple(arms):
            return self, None
        policy = make_policy(config, arms, features.n_features, seed)
        carried = carry_over(self._policy, policy) if same_layout else []
        return Agent(policy, features, self._rng), carried

    # -- what the proxy may read ---------------------------------------------------------------

    @property
    def name(self) -> str:
        return self._policy.name

    @property
    def feature_names(self) -> tuple[str, ...]:
        return self._features.names

    @property
    def arms(self) -> frozenset[str]:
        return self._arm_names

    def version(self) -> int:
        return self._policy.version()

    def summary(self) -> dict[str, dict[str, float]]:
        return self._policy.summary()

    # -- decide and reward ---------------------------------------------------------------------

    def decide(
        self,
        query: str,
        context: Mapping[str, object],
        now: datetime,
        entities: EntityDictionary | None,
        *,
        budget: int,
        depth: int,
    ) -> Decision:
        """Draw the arms and sizes for one search; the decision carries the features it saw."""
        x = self._features.build(query, context, now, entities)
        if isinstance(self._policy, PlanPolicy):
            key = EntityDictionary.normalize(query)
            return draw_plan(self._policy, x, budget, self._rng, depth=depth, key=key)
        return draw(self._policy, x, budget, self._rng, depth=depth)

    def features(
        self,
        query: str,
        context: Mapping[str, object],
        now: datetime,
        entities: EntityDictionary | None,
    ) -> tuple[float, ...]:
        """The context vector a decision would see, as plain floats (for ``explain``)."""
        return tuple(self._features.build(query, context, now, entities).tolist())

    def reward(
        self,
        features: Sequence[float],
        rewards: Mapping[str, float],
        *,
        first: bool,
        plan: str | None = None,
        page: float = 0.0,
        query: str = "",
    ) -> None:
        """Credit a decision. ``first``: its context is not counted yet, so it is observed
        (A and b); later events of the same decision only add reward (b).

        A plan policy learns ``page``, the reward of the whole page, for the ``plan`` the
        decision drew and its ``query``; the others credit each arm its entry of ``rewards``."""
        x = np.asarray(features, dtype=np.float64)
        if isinstance(self._policy, PlanPolicy):
            if plan is None or plan not in self._policy.plans:
                return  # made by another policy, or a plan this catalog no longer has
            key = EntityDictionary.normalize(query)
            self._policy.credit_arms(rewards, first)
            if first:
                self._policy.update_plan(plan, x, page, key)
            elif page != 0.0:
                self._policy.add_plan_reward(plan, x, page, key)
            return
        for arm, value in rewards.items():
            if arm not in self._arm_names:
                continue  # an arm the catalog has dropped since the decision
            if first:
                self._policy.update(arm, x, value)
            elif value != 0.0:
                self._policy.add_reward(arm, x, value)

    # -- for the learning I/O and the operations tools ----------------------------------------

    def shared_statistics(self) -> SharedStatistics | None:
        """The statistics replicas merge through OpenSearch (None: the policy learns nothing)."""
        return shared_statistics(self._policy, self._features.names)

    @property
    def policy(self) -> Policy:
        """For operations tools (off-policy estimates, benchmarks); the proxy never reads it."""
        return self._policy
