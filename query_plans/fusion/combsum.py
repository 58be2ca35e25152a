"""CombSUM (Fox & Shaw, 1994): a document's fused score is the weighted sum of its normalised
scores over the arms that returned it.

The accumulation is shared: RRF is CombSUM over reciprocal ranks instead of normalised scores,
and CombMNZ multiplies CombSUM by the number of arms, so both call ``weighted_sum`` and every
fusion deduplicates, keeps provenance and breaks ties in exactly one way.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from ltrr.query_plans.fusion.base import ArmHit, FusedHit, Provenance
from ltrr.query_plans.fusion.normalize import get_normalizer

ArmValues = Callable[[Sequence[ArmHit]], Sequence[float]]


def weighted_sum(
    results: Mapping[str, Sequence[ArmHit]],
    weights: Mapping[str, float],
    values: ArmValues,
    *,
    by_arm_count: bool = False,
) -> list[FusedHit]:
    """Sum ``weight * value`` per (index, id) over the arms, in the arms' mapping order.

    ``values`` turns one arm's hits into one number per hit (a normalised score, a reciprocal
    rank). ``by_arm_count`` multiplies each total by the number of arms that returned the doc.
    A doc an arm lists twice counts once for that arm, at its first (best) rank, so that a
    duplicate can neither double its credit nor its arm count.

    Order: higher fused score, then better best rank, then more arms, then (index, id), so that
    equal scores never depend on dict or shard order.
    """
    # Running totals are plain lists, not objects: this loop runs once per hit on the search
    # path, and a list literal costs a fraction of an instance. Layout:
    # [score, best rank, source, provenance list, last arm seen].
    docs: dict[tuple[str, str], list[Any]] = {}
    get = docs.get
    for arm, hits in results.items():
        if not hits:
            continue
        weight = weights.get(arm, 1.0)
        for hit, value in zip(hits, values(hits), strict=True):
            key = (hit.index, hit.id)
            doc = get(key)
            if doc is None:
                docs[key] = [
                    weight * value,
                    hit.rank,
                    hit.source,
                    [(arm, hit.rank, hit.score)],
                    arm,
                ]
            elif doc[4] != arm:
                doc[0] += weight * value
                if hit.rank < doc[1]:
                    doc[1] = hit.rank
                if doc[2] is None:
                    doc[2] = hit.source
                doc[3].append((arm, hit.rank, hit.score))
                doc[4] = arm

    if by_arm_count:
        for doc in docs.values():
            doc[0] *= len(doc[3])
    # (index, id) is unique, so the sort never reaches the doc itself.
    ordered = sorted((-doc[0], doc[1], -len(doc[3]), key, doc) for key, doc in docs.items())
    # tuple.__new__ is what Provenance(...) runs underneath, without a Python-level call.
    new = tuple.__new__
    return [
        FusedHit(key[0], key[1], doc[0], doc[2], tuple([new(Provenance, p) for p in doc[3]]))
        for _, _, _, key, doc in ordered
    ]


def combsum(
    results: Mapping[str, Sequence[ArmHit]],
    weights: Mapping[str, float],
    *,
    norm: str = "minmax",
) -> list[FusedHit]:
    """Weighted CombSUM; ``norm`` (minmax or zscore) puts each arm's scores on one scale."""
    normalizer = get_normalizer(norm)
    return weighted_sum(results, weights, lambda hits: normalizer([h.score for h in hits]))
