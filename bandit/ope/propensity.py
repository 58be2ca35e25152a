"""The probability of a logged arm set, rebuilt from the per-arm marginals the log keeps.

``draw`` draws every arm independently with its raw probability p_j and, when nothing was
drawn, forces in the arm m with the highest p (first of ties). The log keeps marginals: p_j
for j ≠ m, and p_m + (1 - p_m)·Q for m, where Q = Π_{j≠m}(1 - p_j). Off-policy estimators need
the probability of the whole set instead, which the raw p give exactly; so the fallback
adjustment is undone first.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from ltrr.bandit.draw import fallback_propensity
from ltrr.bandit.policies.base import Vector

# Below this, 1 - Q carries no information about p_m: every other arm is (almost) never drawn,
# so m is (almost) always in and any p_m gives the same set probabilities.
_SURE = 1e-12


def _as_probabilities(values: Sequence[float] | Vector, what: str) -> Vector:
    p = np.asarray(values, dtype=np.float64)
    if p.ndim != 1 or p.size == 0:
        raise ValueError(f"{what} must be a non-empty vector, got shape {p.shape}")
    if not np.isfinite(p).all() or (p < 0.0).any() or (p > 1.0).any():
        raise ValueError(f"{what} must lie in [0, 1], got {p.tolist()}")
    return p


def _fallback_arm(p: Vector) -> int:
    """The arm ``draw`` forces in: the first of the highest probabilities."""
    return int(np.argmax(p))  # numpy's argmax returns the first of equal maxima


def raw_from_marginals(marginals: Sequence[float] | Vector) -> Vector:
    """The raw per-arm probabilities a policy gave, from the marginals ``draw`` logged.

    The fallback arm is the first maximum of the marginals too (its marginal only grows, and
    an earlier arm with an equal raw p would have been chosen instead). Its raw p is
    (marginal - Q) / (1 - Q). When Q is 1 (no other arm can be drawn) the fallback arm is
    always in whatever its raw p, and its marginal (1) is returned as the raw p.
    """
    p = _as_probabilities(marginals, "marginals").copy()
    m = _fallback_arm(p)
    q = math.prod(1.0 - v for j, v in enumerate(p.tolist()) if j != m)
    if 1.0 - q > _SURE:
        p[m] = min(max((p[m] - q) / (1.0 - q), 0.0), 1.0)
    return p


def marginal_inclusion(p_raw: Sequence[float] | Vector) -> Vector:
    """Each arm's P(included) under ``draw``, as the decision log records it."""
    p = _as_probabilities(p_raw, "probabilities").copy()
    m = _fallback_arm(p)
    p[m] = fallback_propensity(p.tolist(), m)
    return p


def set_probability(p_raw: Sequence[float] | Vector, included: Sequence[bool]) -> float:
    """P(``draw`` includes exactly the arms in ``included``) under raw probabilities p.

    Π_{j∈S} p_j · Π_{j∉S} (1 - p_j), plus Π_j (1 - p_j) when S is the fallback arm alone
    (the empty draw that was turned into {m}). An empty set never happens: it has no
    probability to return, so it is refused.
    """
    p = _as_probabilities(p_raw, "probabilities")
    if len(included) != p.size:
        raise ValueError(f"{len(included)} inclusion flags for {p.size} arms")
    chosen = [bool(v) for v in included]
    if not any(chosen):
        raise ValueError("an arm set is never empty: decide always includes at least one arm")
    values: list[float] = p.tolist()
    probability: float = math.prod(v if s else 1.0 - v for v, s in zip(values, chosen, strict=True))
    m = _fallback_arm(p)
    if sum(chosen) == 1 and chosen[m]:
        probability += math.prod(1.0 - v for v in values)
    return probability
