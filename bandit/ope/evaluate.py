"""A target policy's value on a log of decisions: IPS, SNIPS and DR, side by side.

The action is the set of arms ``draw`` included. Its probability under the logging policy
comes from the logged marginals (undoing the fallback adjustment), and under the target from
the target's raw probabilities for the same context; see ``propensity``.

Limitations:
- Sizes are ignored. They are a deterministic function of the set and the scores, so two
  policies that size the same set differently are compared on their arm sets only.
- The target is evaluated as it stands, frozen: not as it would have learned along the log.
  A target whose statistics were learned from this very log is judged on its training data.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ltrr.bandit.ope.base import Estimate, Estimator, LoggedBandit
from ltrr.bandit.ope.bootstrap import bootstrap_interval
from ltrr.bandit.ope.dr import DoublyRobust
from ltrr.bandit.ope.ips import IPS
from ltrr.bandit.ope.propensity import marginal_inclusion, raw_from_marginals, set_probability
from ltrr.bandit.ope.reward_model import cross_fit
from ltrr.bandit.ope.snips import SNIPS
from ltrr.bandit.policies.base import PlanPolicy, Policy, Vector


@dataclass(frozen=True, slots=True, eq=False)
class LoggedDecision:
    """What off-policy evaluation needs from one logged decision, arms in the target's order."""

    x: Vector
    included: tuple[bool, ...]
    marginals: tuple[float, ...]
    reward: float
    # The logged set's own probability, when the logging policy drew whole plans: its arms
    # were not drawn one by one, so the marginals do not give it.
    set_propensity: float | None = None


@dataclass(frozen=True, slots=True)
class Evaluation:
    """The estimates, the logging policy's own average for comparison, and the target's support.

    ``zero_support`` is the share of decisions whose logged set the target would never choose;
    a large share means IPS leans on few decisions (see each estimate's ESS).
    """

    estimates: tuple[Estimate, ...]
    logged: Estimate
    zero_support: float
    n: int


def _check(i: int, d: LoggedDecision, n_arms: int, n_features: int) -> Vector:
    x = np.asarray(d.x, dtype=np.float64)
    if x.shape != (n_features,) or not np.isfinite(x).all():
        raise ValueError(f"decision {i}: expected {n_features} finite features, got {x.shape}")
    if len(d.included) != n_arms or len(d.marginals) != n_arms:
        raise ValueError(
            f"decision {i}: {len(d.included)} inclusion flags and {len(d.marginals)} "
            f"propensities for {n_arms} arms"
        )
    if not math.isfinite(d.reward):
        raise ValueError(f"decision {i}: reward must be finite, got {d.reward}")
    return x


def evaluate(
    logged: Sequence[LoggedDecision],
    target: Policy,
    *,
    resamples: int = 1000,
    level: float = 0.95,
    seed: int = 0,
    clip: float | None = None,
    folds: int = 2,
    ridge: float = 1.0,
) -> Evaluation:
    """IPS, SNIPS and DR of ``target`` on ``logged``, each with a bootstrap interval and ESS.

    Every interval uses the same resamples (one ``seed``), so their widths compare fairly.
    ``clip`` caps the importance weights; ``folds`` and ``ridge`` configure DR's cross-fitted
    reward model.
    """
    if not logged:
        raise ValueError("no logged decisions to evaluate")
    n_arms = len(target.arms)
    rows = len(logged)
    xs = np.empty((rows, target.n_features), dtype=np.float64)
    sets = np.empty((rows, n_arms), dtype=np.float64)
    target_marginals = np.empty((rows, n_arms), dtype=np.float64)
    r = np.empty(rows, dtype=np.float64)
    p0 = np.empty(rows, dtype=np.float64)
    p1 = np.empty(rows, dtype=np.float64)
    for i, d in enumerate(logged):
        x = _check(i, d, n_arms, target.n_features)
        if not any(d.included):
            raise ValueError(f"decision {i}: no arm included, which draw never logs")
        try:
            if d.set_propensity is not None:
                if not 0.0 < d.set_propensity <= 1.0:  # NaN fails this too
                    raise ValueError(
                        f"its set_propensity {d.set_propensity} is not a probability in (0, 1]"
                    )
                p0[i] = d.set_propensity
            else:
                p0[i] = set_probability(raw_from_marginals(d.marginals), d.included)
        except ValueError as exc:
            raise ValueError(f"decision {i}: {exc}") from None
        if p0[i] <= 0.0:
            raise ValueError(
                f"decision {i}: its logged propensities {list(d.marginals)} give the logged "
                f"arm set {list(d.included)} no chance; the log is inconsistent"
            )
        p_target = target.probabilities(x)[0]
        if isinstance(target, PlanPolicy):  # plans do not draw their arms one by one
            p1[i] = target.set_probability(x, d.included)
        else:
            p1[i] = set_probability(p_target, d.included)
        target_marginals[i] = marginal_inclusion(p_target)
        xs[i] = x
        sets[i] = d.included
        r[i] = d.reward
    q_logged, q_target = cross_fit(
        xs, sets, r, target_marginals, folds=folds, ridge=ridge, seed=seed
    )
    data = LoggedBandit(r, p0, p1, q_logged, q_target)
    estimators: tuple[Estimator, ...] = (IPS(clip=clip), SNIPS(clip=clip), DoublyRobust(clip=clip))
    estimates = tuple(
        e.estimate(data, resamples=resamples, level=level, seed=seed) for e in estimators
    )
    low, high = bootstrap_interval(r, np.ones(rows), resamples=resamples, level=level, seed=seed)
    on_log = Estimate("logged", float(r.mean()), low, high, float(rows), rows)
    return Evaluation(
        estimates=estimates,
        logged=on_log,
        zero_support=float((p1 == 0.0).mean()),
        n=rows,
    )
