"""Whole plans, starting from the static one: switch where another plan is expected to pay more.

The plans are ``ltrr.bandit.plans``'s: all arms (the static plan), all arms at half the
budget, each arm alone, every arm but one. The static plan has a ridge regression of the page
reward on the context; every other plan has one of its *advantage* over that estimate (the page
reward it earned minus what the static plan was expected to earn in the same context). The prior
pulls every advantage toward 0, so a new learner serves exactly the static plan, and another
plan takes over, per context, only as its evidence outweighs the prior.

Repeated queries, most of real traffic, also carry their own record (``ltrr.bandit.history``):
what each plan earned for this query beyond the models' estimate, weighted n / (n + ridge).

The greedy plan gets 1 - epsilon of the traffic and the others epsilon / (n - 1) each, which is
where the evidence comes from; so the probability of the plan drawn is exact whatever the
statistics. Knobs: ``ridge`` (the prior's weight, in pages) and ``epsilon``.

An arm that has been asked ``SILENT_AFTER`` times and never earned credit (it never found what a
user engaged with, as the catalog's credit rule counts it: with ``unique`` credit, never found it
alone) is *silent*: no plan that asks it can be the greedy one. A plan with or without such an arm
earns the same page, so the page reward alone could never tell them apart, and the arm would
keep costing a sub-search and a share of the budget. The plans that ask it keep their
exploration share, so an arm that starts to pay is noticed, and comes back, at its first credit.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import ClassVar

import numpy as np
import numpy.typing as npt

from ltrr.bandit.decision import ArmSpec
from ltrr.bandit.history import QueryHistory
from ltrr.bandit.plans import plan_names
from ltrr.bandit.policies._ridge import RidgeStatistics
from ltrr.bandit.policies.base import PlanPolicy, PolicyConfig, Vector


def _asks(plan: str, arm: str) -> bool:
    """ "all" and "all:half" ask every arm, "only:a" asks a, "without:a" every arm but a."""
    kind, _, named = plan.partition(":")
    if kind == "only":
        return named == arm
    if kind == "without":
        return named != arm
    return True


# "Within a few hundred searches": an arm asked this often that never found an engaged result.
SILENT_AFTER = 200


class SafePlans(PlanPolicy):
    """Serves the static plan until another plan is known to be worth more in this context."""

    name: ClassVar[str] = "safe_plans"

    def __init__(
        self, arms: Sequence[ArmSpec], n_features: int, config: PolicyConfig, seed: int | None
    ) -> None:
        super().__init__(arms, n_features, config, seed)
        if n_features < 1:
            raise ValueError(f"n_features must be >= 1, got {n_features}")
        self._plans = plan_names(self.arms)
        self._index = {name: i for i, name in enumerate(self._plans)}
        self.stats = RidgeStatistics(len(self._plans), n_features, config.ridge)
        self.history = QueryHistory(len(self._plans))
        # Which plans ask each arm (by name: "probabilities" has no sizes to read it from).
        self._asks = np.array(
            [[_asks(name, arm.name) for name in self._plans] for arm in self.arms],
            dtype=np.float64,
        )
        self._arm_index = {arm.name: i for i, arm in enumerate(self.arms)}
        self.asked = np.zeros(len(self.arms), dtype=np.int64)  # decisions that asked each arm
        self.paid = np.zeros(len(self.arms), dtype=np.int64)  # events it found the engaged one

    @property
    def plans(self) -> tuple[str, ...]:
        return self._plans

    def _vector(self, x: Vector) -> Vector:
        vector = np.asarray(x, dtype=np.float64)
        if vector.shape != (self.n_features,):
            raise ValueError(f"expected a vector of {self.n_features} features, got {np.shape(x)}")
        return vector

    def _advantages(self, x: Vector, key: str) -> tuple[Vector, Vector]:
        """Per plan, the estimated reward above the static model's, and the static estimate.

        The contextual model's advantage (0 for the static plan itself) is corrected by the
        query's own record: the mean of what its n pages earned beyond the models' estimates,
        weighted n / (n + ridge), the same prior weight the ridge gives its zero start."""
        mean, _ = self.stats.moments(self._vector(x))
        advantage: Vector = mean.copy()
        advantage[0] = 0.0
        record = self.history.get(key) if key else None
        if record is not None:
            shown, residual = record
            weight = shown / (shown + self.config.ridge)
            correction = np.divide(residual, shown, out=np.zeros_like(residual), where=shown > 0)
            advantage += weight * correction
        return advantage, mean[:1].copy()

    def _quiet(self) -> npt.NDArray[np.bool_]:
        quiet: npt.NDArray[np.bool_] = (self.asked >= SILENT_AFTER) & (self.paid == 0)
        return quiet

    def silent(self) -> tuple[str, ...]:
        """The arms asked ``SILENT_AFTER`` times that never found what a user engaged with."""
        return tuple(arm.name for arm, q in zip(self.arms, self._quiet(), strict=True) if q)

    def distribution(self, x: Vector, key: str = "") -> tuple[Vector, Vector]:
        score, _ = self._advantages(x, key)
        n = len(self._plans)
        if n == 1:
            return np.ones(1, dtype=np.float64), score
        candidates = score
        quiet = self._quiet()
        if quiet.any():
            asks_quiet = (self._asks[quiet] > 0).any(axis=0)
            if not asks_quiet.all():  # some plan asks no silent arm: the greedy one is among them
                candidates = np.where(asks_quiet, -np.inf, score)
        epsilon = self.config.epsilon
        p: Vector = np.full(n, epsilon / (n - 1), dtype=np.float64)
        p[int(np.argmax(candidates))] = 1.0 - epsilon  # argmax: the first of equal maxima
        return p, score

    def credit_arms(self, rewards: Mapping[str, float], first: bool) -> None:
        for arm, value in rewards.items():
            i = self._arm_index.get(arm)
            if i is None:
                continue  # an arm the catalog has dropped since the decision
            if first:
                self.asked[i] += 1
            if value > 0.0:
                self.paid[i] += 1

    def expected(self, x: Vector, key: str = "") -> Vector:
        """Per plan, the estimated page reward: the static estimate plus the advantage."""
        advantage, static = self._advantages(x, key)
        out: Vector = advantage + static
        return out

    def probabilities(self, x: Vector) -> tuple[Vector, Vector]:
        """Per arm, the chance that the plan drawn asks it (from the contextual model alone)."""
        p, _ = self.distribution(x)  # no query: the contextual model alone
        marginal: Vector = self._asks @ p
        return marginal, marginal.copy()

    def set_probability(self, x: Vector, included: Sequence[bool]) -> float:
        p, _ = self.distribution(x)  # no query: the contextual model alone, as ``probabilities``
        wanted = np.asarray(included, dtype=bool)
        if wanted.shape != (len(self.arms),):
            raise ValueError(f"expected {len(self.arms)} inclusion flags, got {len(included)}")
        asks = self._asks.astype(bool).T  # plans x arms
        same = np.all(np.equal(asks, wanted), axis=1)
        return float(p[same].sum())

    def _checked(self, plan: str, x: Vector, reward: float) -> tuple[int, Vector]:
        index = self._index[plan]
        vector = self._vector(x)
        if not math.isfinite(reward) or not np.isfinite(vector).all():
            raise ValueError("rewards and features must be finite")
        return index, vector

    def update_plan(self, plan: str, x: Vector, reward: float, key: str = "") -> None:
        """The static plan learns the reward; the others what it beat the static estimate by.
        The query's record keeps what the page earned beyond the models' estimate."""
        index, vector = self._checked(plan, x, reward)
        mean = self.stats.theta @ vector
        target = reward - (float(mean[0]) if index != 0 else 0.0)
        self.history.add(
            key, index, reward - float(mean[0]) - (float(mean[index]) if index else 0.0)
        )
        self.stats.update(index, vector, target)

    def add_plan_reward(self, plan: str, x: Vector, reward: float, key: str = "") -> None:
        index, vector = self._checked(plan, x, reward)
        self.history.add(key, index, reward, shown=0.0)
        self.stats.add_reward(index, vector, float(reward))

    def version(self) -> int:
        return int(self.stats.counts.sum())

    def summary(self) -> dict[str, dict[str, float]]:
        s = self.stats
        return {
            name: {"n": int(s.counts[i]), "b_abs_sum": float(np.abs(s.b[i]).sum())}
            for i, name in enumerate(self._plans)
        }
