"""Effective sample size of importance weights (Kish): how many on-policy decisions they are worth.

A log of n decisions whose weights are all equal is worth n; one whose weight sits on a few
decisions is worth about those few, however large n is. A small ESS says that an estimate's
interval may be too optimistic.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ltrr.bandit.policies.base import Vector


def effective_sample_size(weights: Sequence[float] | Vector) -> float:
    """(Σw)² / Σw²; 0 when every weight is 0 (the target never takes a logged action)."""
    w = np.asarray(weights, dtype=np.float64)
    if w.ndim != 1:
        raise ValueError(f"weights must be a vector, got shape {w.shape}")
    if (w < 0.0).any() or not np.isfinite(w).all():
        raise ValueError("weights must be finite and non-negative")
    squares = float(np.dot(w, w))
    if squares == 0.0:
        return 0.0
    total = float(w.sum())
    return total * total / squares
