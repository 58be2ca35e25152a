"""An additive reward model over arm sets, for the doubly robust estimator.

q(x, S) = Σ_{j∈S} θ_j·x: each included arm adds its own linear share of the reward. It is a
ridge least-squares fit on φ(x, S) = concat_j(1{j∈S}·x). Additivity is what makes DR cheap:
E_target[q(x, S)] = Σ_j P_target(j∈S)·θ_j·x needs only the target's marginals, not a sum over
the 2^K arm sets. Rewards that depend on arm interactions (two arms finding the same
documents) are only approximated, which DR tolerates: its correction term reweights whatever
the model misses.

Cross-fitting: a model fitted on the very row it predicts has absorbed part of that row's
noise, so r - q_logged shrinks towards 0 and DR drifts towards the model's own (biased)
estimate. Fitting on the other folds and predicting each fold keeps the residuals honest.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from ltrr.bandit.policies.base import Vector

Matrix = npt.NDArray[np.float64]


def _matrix(values: Matrix | Sequence[Sequence[float]], name: str) -> Matrix:
    array = np.asarray(values, dtype=np.float64)
    if array.ndim != 2:
        raise ValueError(f"{name} must be one row per decision, got shape {array.shape}")
    if not np.isfinite(array).all():
        raise ValueError(f"{name} must be finite")
    return array


class AdditiveRewardModel:
    """Per-arm linear rewards that add up over the included arms."""

    def __init__(self, n_arms: int, n_features: int, *, ridge: float = 1.0) -> None:
        if n_arms < 1 or n_features < 1:
            raise ValueError(f"need at least one arm and one feature, got {n_arms}, {n_features}")
        if not ridge >= 0.0:
            raise ValueError(f"ridge must be >= 0, got {ridge}")
        self.n_arms = n_arms
        self.n_features = n_features
        self.ridge = ridge
        self.theta: Matrix = np.zeros((n_arms, n_features), dtype=np.float64)

    def _check(self, x: Matrix, per_arm: Matrix, name: str) -> None:
        if x.shape[1] != self.n_features:
            raise ValueError(f"x has {x.shape[1]} features, the model {self.n_features}")
        if per_arm.shape != (x.shape[0], self.n_arms):
            raise ValueError(
                f"{name} must be {x.shape[0]} rows of {self.n_arms} arms, got {per_arm.shape}"
            )

    def fit(
        self,
        x: Matrix | Sequence[Sequence[float]],
        included: Matrix | Sequence[Sequence[bool]],
        r: Vector | Sequence[float],
    ) -> AdditiveRewardModel:
        """Ridge least squares of r on φ(x, S); ``ridge`` 0 means minimum-norm least squares."""
        xs = _matrix(x, "x")
        sets = _matrix(included, "included")
        self._check(xs, sets, "included")
        rewards = np.asarray(r, dtype=np.float64)
        if rewards.shape != (xs.shape[0],) or not np.isfinite(rewards).all():
            raise ValueError(f"r must be {xs.shape[0]} finite rewards, got shape {rewards.shape}")
        phi = (sets[:, :, np.newaxis] * xs[:, np.newaxis, :]).reshape(xs.shape[0], -1)
        if self.ridge > 0.0:
            gram = phi.T @ phi + self.ridge * np.eye(phi.shape[1])
            flat = np.linalg.solve(gram, phi.T @ rewards)
        else:
            flat = np.linalg.lstsq(phi, rewards, rcond=None)[0]
        self.theta = np.asarray(flat, dtype=np.float64).reshape(self.n_arms, self.n_features)
        return self

    def predict(
        self, x: Matrix | Sequence[Sequence[float]], included: Matrix | Sequence[Sequence[bool]]
    ) -> Vector:
        """q(x, S) for each row's arm set."""
        return self.expected(x, included)  # a set is its own 0/1 marginals

    def expected(
        self, x: Matrix | Sequence[Sequence[float]], marginals: Matrix | Sequence[Sequence[float]]
    ) -> Vector:
        """E[q(x, S)] when arm j is in S with probability marginals[:, j]: Σ_j P(j∈S)·θ_j·x."""
        xs = _matrix(x, "x")
        weights = _matrix(marginals, "marginals")
        self._check(xs, weights, "marginals")
        per_arm = xs @ self.theta.T  # (rows, arms): θ_j·x
        out: Vector = (weights * per_arm).sum(axis=1)
        return out


def cross_fit(
    x: Matrix | Sequence[Sequence[float]],
    included: Matrix | Sequence[Sequence[bool]],
    r: Vector | Sequence[float],
    target_marginals: Matrix | Sequence[Sequence[float]],
    *,
    folds: int = 2,
    ridge: float = 1.0,
    seed: int | np.random.Generator = 0,
) -> tuple[Vector, Vector]:
    """(q_logged, q_target) for every row from a model fitted on the other folds only.

    Rows are shuffled into ``folds`` near-equal folds with ``seed``.
    """
    xs = _matrix(x, "x")
    sets = _matrix(included, "included")
    marginals = _matrix(target_marginals, "target_marginals")
    rewards = np.asarray(r, dtype=np.float64)
    n = xs.shape[0]
    if isinstance(folds, bool) or folds < 2:
        raise ValueError(f"cross-fitting needs at least 2 folds, got {folds}")
    if n < folds:
        raise ValueError(f"cross-fitting {folds} folds needs at least {folds} decisions, got {n}")
    if rewards.shape != (n,) or sets.shape[0] != n or marginals.shape != sets.shape:
        raise ValueError("x, included, r and target_marginals must have one row per decision")
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    q_logged = np.empty(n, dtype=np.float64)
    q_target = np.empty(n, dtype=np.float64)
    everyone = np.arange(n)
    for held_out in np.array_split(rng.permutation(n), folds):
        train = np.setdiff1d(everyone, held_out, assume_unique=True)
        model = AdditiveRewardModel(sets.shape[1], xs.shape[1], ridge=ridge)
        model.fit(xs[train], sets[train], rewards[train])
        q_logged[held_out] = model.predict(xs[held_out], sets[held_out])
        q_target[held_out] = model.expected(xs[held_out], marginals[held_out])
    return q_logged, q_target
