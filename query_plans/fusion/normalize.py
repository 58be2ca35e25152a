"""Per-arm score normalisation for the Comb* fusions.

BM25, cosine similarity and function scores live on unrelated scales, so an arm's raw scores
cannot be summed with another's. Each arm's list is rescaled on its own, over the hits that
arm returned (the only scores we ever see).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

Normalizer = Callable[[Sequence[float]], list[float]]


def minmax(scores: Sequence[float]) -> list[float]:
    """Rescale to [0, 1]: the arm's best hit gets 1, its worst 0.

    With one hit, or all scores equal, there is no spread to rescale, and every hit gets 1.0:
    the arm still vouched for each of them as strongly as for its best, and 0.0 would silently
    erase a one-hit arm's contribution.
    """
    if not scores:
        return []
    low = min(scores)
    high = max(scores)
    if high == low:
        return [1.0] * len(scores)
    span = high - low
    return [(s - low) / span for s in scores]


def zscore(scores: Sequence[float]) -> list[float]:
    """Centre on the arm's mean and divide by its (population) standard deviation.

    With one hit, or all scores equal, the deviation is zero and every hit gets 0.0, the
    "average" z-score: the arm says nothing about which of its hits is better, so it adds
    nothing to the sum (CombMNZ still counts that it returned them). Equality is tested on the
    raw scores, because the mean of equal floats can round so that a zero spread looks tiny.
    """
    n = len(scores)
    if n == 0:
        return []
    if max(scores) == min(scores):
        return [0.0] * n
    mean = math.fsum(scores) / n
    std = math.sqrt(math.fsum((s - mean) ** 2 for s in scores) / n)
    if std == 0.0:  # distinct scores so close that the variance underflows
        return [0.0] * n
    return [(s - mean) / std for s in scores]


NORMALIZERS: dict[str, Normalizer] = {"minmax": minmax, "zscore": zscore}


def get_normalizer(name: str) -> Normalizer:
    try:
        return NORMALIZERS[name]
    except KeyError:
        known = ", ".join(sorted(NORMALIZERS))
        raise ValueError(f"unknown score normalisation {name!r} (known: {known})") from None
