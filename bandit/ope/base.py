"""What every estimator shares: the logged arrays it reads, and the estimate it returns.

Each estimator here is a ratio of two sums of per-decision terms (IPS and DR divide by n,
SNIPS by the sum of the weights), so one vectorised bootstrap serves them all: a subclass
only says what its terms are.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from ltrr.bandit.ope.bootstrap import bootstrap_interval
from ltrr.bandit.ope.ess import effective_sample_size
from ltrr.bandit.policies.base import Vector

Column = Sequence[float] | Vector


@dataclass(frozen=True, slots=True)
class Estimate:
    """A policy value with its percentile-bootstrap interval and the weights' effective size."""

    name: str
    value: float
    low: float
    high: float
    ess: float
    n: int


def _column(values: Column, name: str, n: int | None) -> Vector:
    array = np.asarray(values, dtype=np.float64)
    if array.ndim != 1:
        raise ValueError(f"{name} must be one value per decision, got shape {array.shape}")
    if n is not None and array.size != n:
        raise ValueError(f"{name} has {array.size} values for {n} decisions")
    if not np.isfinite(array).all():
        raise ValueError(f"{name} must be finite")
    return array


@dataclass(frozen=True, slots=True, init=False, eq=False)  # arrays do not compare as a bool
class LoggedBandit:
    """One row per logged decision: the reward, and the logged set's probability under the
    logging policy (``p0``) and the target (``p1``). ``q_logged`` (the reward model's guess for
    the logged set) and ``q_target`` (its expectation under the target) are for DR only."""

    r: Vector
    p0: Vector
    p1: Vector
    q_logged: Vector | None = None
    q_target: Vector | None = None

    def __init__(
        self,
        r: Column,
        p0: Column,
        p1: Column,
        q_logged: Column | None = None,
        q_target: Column | None = None,
    ) -> None:
        rewards = _column(r, "r", None)
        n = rewards.size
        if n == 0:
            raise ValueError("no logged decisions to estimate from")
        logging = _column(p0, "p0", n)
        if (logging <= 0.0).any() or (logging > 1.0).any():
            raise ValueError("p0 must be in (0, 1]: a logged set had a chance to be logged")
        target = _column(p1, "p1", n)
        if (target < 0.0).any() or (target > 1.0).any():
            raise ValueError("p1 must be in [0, 1]")
        if (q_logged is None) != (q_target is None):
            raise ValueError("q_logged and q_target come together (both or neither)")
        object.__setattr__(self, "r", rewards)
        object.__setattr__(self, "p0", logging)
        object.__setattr__(self, "p1", target)
        object.__setattr__(
            self, "q_logged", None if q_logged is None else _column(q_logged, "q_logged", n)
        )
        object.__setattr__(
            self, "q_target", None if q_target is None else _column(q_target, "q_target", n)
        )

    @property
    def n(self) -> int:
        return int(self.r.size)


class Estimator(ABC):
    """An off-policy value estimate, sum(numerator terms) / sum(denominator terms).

    ``clip`` caps every importance weight p1/p0 (default: no cap). Clipping trades bias for
    variance: a few decisions the target likes far more than the logger did can no longer
    dominate the estimate, but the estimate is then biased towards the logged behaviour.
    """

    name: ClassVar[str]

    def __init__(self, *, clip: float | None = None) -> None:
        if clip is not None and not (math.isfinite(clip) and clip > 0.0):
            raise ValueError(f"clip must be a positive number, got {clip}")
        self.clip = clip

    def weights(self, data: LoggedBandit) -> Vector:
        w: Vector = data.p1 / data.p0
        if self.clip is not None:
            np.minimum(w, self.clip, out=w)
        return w

    @abstractmethod
    def terms(self, data: LoggedBandit, w: Vector) -> tuple[Vector, Vector]:
        """Per decision, the numerator and denominator terms of the estimate."""

    def value(self, data: LoggedBandit) -> float:
        """The point estimate (NaN when the denominator is zero, e.g. SNIPS with no support)."""
        numerator, denominator = self.terms(data, self.weights(data))
        total = float(denominator.sum())
        return float(numerator.sum()) / total if total != 0.0 else math.nan

    def estimate(
        self,
        data: LoggedBandit,
        *,
        resamples: int = 1000,
        level: float = 0.95,
        seed: int | np.random.Generator = 0,
    ) -> Estimate:
        """The point estimate, its percentile-bootstrap interval over decisions, and the ESS."""
        w = self.weights(data)
        numerator, denominator = self.terms(data, w)
        total = float(denominator.sum())
        value = float(numerator.sum()) / total if total != 0.0 else math.nan
        low, high = bootstrap_interval(
            numerator, denominator, resamples=resamples, level=level, seed=seed
        )
        return Estimate(
            name=self.name,
            value=value,
            low=low,
            high=high,
            ess=effective_sample_size(w),
            n=data.n,
        )
