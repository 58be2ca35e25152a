"""Per-arm ridge regression kept as an incremental inverse, shared by the linear policies.

LinUCB, linear Thompson sampling and epsilon-greedy differ only in how they turn the same
posterior (mean θᵀx, spread xᵀA⁻¹x) into an inclusion probability, so the statistics live
here once. A⁻¹ is maintained with Sherman-Morrison, O(d²) per update, and no matrix is ever
inverted on the request path. Every arm's A⁻¹ is one slice of a stacked (arms, d, d) array,
so one request costs a couple of batched products whatever the number of arms.
"""

from __future__ import annotations

import math
from abc import abstractmethod
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from ltrr.bandit.decision import ArmSpec
from ltrr.bandit.policies.base import Policy, PolicyConfig, Vector


class RidgeStatistics:
    """A (start: ridge * I), its inverse, b and θ = A⁻¹b for every arm, and update counts.

    A and b are sums, so replicas can each add their own observations and merge: ``pending_*``
    hold what this process added since its last merge. A⁻¹ follows every update through
    Sherman-Morrison; it is recomputed from A only when a merge installs the shared sums.
    """

    __slots__ = ("a", "a_inv", "b", "counts", "pending_a", "pending_b", "pending_n", "theta")

    def __init__(self, n_arms: int, n_features: int, ridge: float) -> None:
        if ridge <= 0:
            raise ValueError(f"ridge must be > 0, got {ridge}")
        eye = np.eye(n_features, dtype=np.float64)
        self.a = np.repeat((eye * ridge)[np.newaxis], n_arms, axis=0)
        self.a_inv = np.repeat((eye / ridge)[np.newaxis], n_arms, axis=0)
        self.b = np.zeros((n_arms, n_features), dtype=np.float64)
        self.theta = np.zeros((n_arms, n_features), dtype=np.float64)
        self.counts = np.zeros(n_arms, dtype=np.int64)
        self.pending_a = np.zeros_like(self.a)
        self.pending_b = np.zeros_like(self.b)
        self.pending_n = np.zeros(n_arms, dtype=np.int64)

    def moments(self, x: Vector) -> tuple[Vector, Vector]:
        """Per arm, the posterior mean θᵀx and the spread xᵀA⁻¹x (never negative)."""
        mean: Vector = self.theta @ x
        spread: Vector = (self.a_inv @ x) @ x  # batched: one (arms, d) product, then a dot
        np.maximum(spread, 0.0, out=spread)  # rounding must not make a variance negative
        return mean, spread

    def update(self, arm: int, x: Vector, reward: float) -> None:
        """Add one observation: A += xxᵀ (A⁻¹ through Sherman-Morrison), b += reward·x."""
        a_inv = self.a_inv[arm]
        u = a_inv @ x  # A⁻¹ is symmetric, so xᵀA⁻¹ is uᵀ
        a_inv -= np.outer(u, u) / (1.0 + float(x @ u))
        outer = np.outer(x, x)
        self.a[arm] += outer
        self.pending_a[arm] += outer
        self.b[arm] += reward * x
        self.pending_b[arm] += reward * x
        self.theta[arm] = a_inv @ self.b[arm]
        self.counts[arm] += 1
        self.pending_n[arm] += 1

    def add_reward(self, arm: int, x: Vector, reward: float) -> None:
        """More reward for a context ``update`` already counted: b += reward·x, A unchanged."""
        self.b[arm] += reward * x
        self.pending_b[arm] += reward * x
        self.theta[arm] = self.a_inv[arm] @ self.b[arm]

    def take_pending(self, arm: int) -> tuple[Vector, Vector, int] | None:
        """This process's additions to one arm since the last merge (None: nothing), reset."""
        n = int(self.pending_n[arm])
        if n == 0 and not self.pending_b[arm].any():
            return None
        taken = (self.pending_a[arm].copy(), self.pending_b[arm].copy(), n)
        self.pending_a[arm] = 0.0
        self.pending_b[arm] = 0.0
        self.pending_n[arm] = 0
        return taken

    def restore_pending(self, arm: int, delta: tuple[Vector, Vector, int]) -> None:
        """Give back a delta whose merge failed, so that it is merged next time."""
        self.pending_a[arm] += delta[0]
        self.pending_b[arm] += delta[1]
        self.pending_n[arm] += delta[2]

    def install(self, arm: int, a: Vector, b: Vector, count: int) -> None:
        """Make the shared sums this arm's statistics, plus what is still pending here."""
        self.a[arm] = a + self.pending_a[arm]
        self.b[arm] = b + self.pending_b[arm]
        self.counts[arm] = count + int(self.pending_n[arm])
        self.a_inv[arm] = np.linalg.inv(self.a[arm])
        self.theta[arm] = self.a_inv[arm] @ self.b[arm]

    def state(self) -> dict[str, Any]:
        return {
            "a": self.a.tolist(),
            "b": self.b.tolist(),
            "counts": [int(c) for c in self.counts],
        }

    def load_state(self, state: Mapping[str, Any]) -> None:
        """Replace the statistics, after checking shapes and finiteness (nothing half-loaded)."""
        a = np.asarray(state["a"], dtype=np.float64)
        b = np.asarray(state["b"], dtype=np.float64)
        counts = np.asarray(state["counts"], dtype=np.int64)
        if a.shape != self.a.shape or b.shape != self.b.shape:
            raise ValueError(
                f"state has shapes {a.shape} and {b.shape}, "
                f"expected {self.a.shape} and {self.b.shape}"
            )
        if counts.shape != self.counts.shape or (counts < 0).any():
            raise ValueError("state counts must be one non-negative integer per arm")
        if not (np.isfinite(a).all() and np.isfinite(b).all()):
            raise ValueError("state holds non-finite statistics")
        a_inv: Vector = np.asarray(np.linalg.inv(a), dtype=np.float64)
        self.a = a
        self.a_inv = a_inv
        self.b = b
        self.theta = np.einsum("ijk,ik->ij", a_inv, b)
        self.counts = counts
        self.pending_a = np.zeros_like(a)
        self.pending_b = np.zeros_like(b)
        self.pending_n = np.zeros_like(counts)


class RidgePolicy(Policy):
    """A policy backed by ``RidgeStatistics``; subclasses only map the posterior to P(include)."""

    def __init__(
        self, arms: Sequence[ArmSpec], n_features: int, config: PolicyConfig, seed: int | None
    ) -> None:
        super().__init__(arms, n_features, config, seed)
        if n_features < 1:
            raise ValueError(f"n_features must be >= 1, got {n_features}")
        self.stats = RidgeStatistics(len(self.arms), n_features, config.ridge)
        self.costs: Vector = np.array([arm.cost for arm in self.arms], dtype=np.float64)
        self._index = {arm.name: i for i, arm in enumerate(self.arms)}
        if len(self._index) != len(self.arms):
            raise ValueError("arm names must be unique")

    @abstractmethod
    def probabilities(self, x: Vector) -> tuple[Vector, Vector]:
        """Return (P(include arm), score) for every arm, in ``self.arms`` order."""

    def moments(self, x: Vector) -> tuple[Vector, Vector]:
        """Posterior mean and spread per arm, after checking the vector fits the model."""
        if x.shape != (self.n_features,):
            raise ValueError(f"expected a vector of {self.n_features} features, got {x.shape}")
        return self.stats.moments(x)

    def _checked(self, arm: str, x: Vector, reward: float) -> tuple[int, Vector]:
        """A non-finite input would poison the statistics forever, so refuse it."""
        index = self._index[arm]
        vector = np.asarray(x, dtype=np.float64)
        if vector.shape != (self.n_features,):
            raise ValueError(f"expected a vector of {self.n_features} features, got {x.shape}")
        if not math.isfinite(reward) or not np.isfinite(vector).all():
            raise ValueError("rewards and features must be finite")
        return index, vector

    def update(self, arm: str, x: Vector, reward: float) -> None:
        index, vector = self._checked(arm, x, reward)
        self.stats.update(index, vector, float(reward))

    def add_reward(self, arm: str, x: Vector, reward: float) -> None:
        index, vector = self._checked(arm, x, reward)
        self.stats.add_reward(index, vector, float(reward))

    def version(self) -> int:
        return int(self.stats.counts.sum())

    def summary(self) -> dict[str, dict[str, float]]:
        s = self.stats
        return {
            arm.name: {
                "n": int(s.counts[i]),
                "b_abs_sum": float(np.abs(s.b[i]).sum()),
                "a_trace": float(np.trace(s.a[i])),
            }
            for i, arm in enumerate(self.arms)
        }

    def state(self) -> dict[str, Any]:
        return {**super().state(), "ridge": self.config.ridge, **self.stats.state()}

    def load_state(self, state: Mapping[str, Any]) -> None:
        super().load_state(state)
        self.stats.load_state(state)
