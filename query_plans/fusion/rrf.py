"""Weighted Reciprocal Rank Fusion (Cormack, Clarke & Büttcher, 2009).

score(d) = sum over the arms a that returned d of w_a / (k + rank_a(d)).

Only ranks enter, so arms whose scores live on unrelated scales (BM25, cosine, function scores)
fuse without any normalisation; ``k`` damps the advantage of the very top ranks (60 in the
paper).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from ltrr.query_plans.fusion.base import ArmHit, FusedHit
from ltrr.query_plans.fusion.combsum import weighted_sum

DEFAULT_K = 60


def rrf(
    results: Mapping[str, Sequence[ArmHit]],
    weights: Mapping[str, float],
    *,
    k: int = DEFAULT_K,
) -> list[FusedHit]:
    """Fuse by weighted reciprocal rank; ranks are the arms' own (1 = top)."""
    if k < 0:
        # k + rank must stay positive for every rank >= 1, or the top hit would divide by zero.
        raise ValueError(f"rrf k must be >= 0, got {k}")
    return weighted_sum(results, weights, lambda hits: [1.0 / (k + h.rank) for h in hits])
