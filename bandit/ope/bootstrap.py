"""Percentile-bootstrap intervals for ratio estimators, resampling decisions with replacement.

Every estimator in this package is Σnumerator / Σdenominator over decisions, so one resample
is one set of row indices applied to both columns. All resamples are drawn as index matrices
(in chunks, so memory stays bounded for long logs) and reduced at once: no Python loop per
resample. For DR the reward model is held fixed, so the interval leaves out the variance of
fitting it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from ltrr.bandit.policies.base import Vector

_CHUNK_CELLS = 2_000_000  # indices drawn at once: about 16 MB


def bootstrap_interval(
    numerator: Sequence[float] | Vector,
    denominator: Sequence[float] | Vector,
    *,
    resamples: int = 1000,
    level: float = 0.95,
    seed: int | np.random.Generator = 0,
) -> tuple[float, float]:
    """The (low, high) percentiles of Σnum/Σden over ``resamples`` bootstrap resamples.

    A resample whose denominator sums to 0 has no value and is left out; when all are, the
    interval is (NaN, NaN). The same seed gives the same interval.
    """
    num = np.asarray(numerator, dtype=np.float64)
    den = np.asarray(denominator, dtype=np.float64)
    if num.ndim != 1 or num.shape != den.shape:
        raise ValueError(f"numerator {num.shape} and denominator {den.shape} must be equal vectors")
    if num.size == 0:
        raise ValueError("cannot bootstrap an empty log")
    if isinstance(resamples, bool) or resamples < 1:
        raise ValueError(f"resamples must be a positive integer, got {resamples}")
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must be between 0 and 1, got {level}")
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    n = num.size
    rows = max(1, _CHUNK_CELLS // n)
    values: list[Vector] = []
    for start in range(0, resamples, rows):
        index = rng.integers(0, n, size=(min(rows, resamples - start), n))
        tops = num[index].sum(axis=1)
        bottoms = den[index].sum(axis=1)
        defined = bottoms != 0.0
        values.append(tops[defined] / bottoms[defined])
    ratios = np.concatenate(values)
    if ratios.size == 0:
        return math.nan, math.nan
    tail = (1.0 - level) / 2.0
    low, high = np.quantile(ratios, [tail, 1.0 - tail])
    return float(low), float(high)
