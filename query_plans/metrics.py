"""Ranking metrics over graded judgments: recall@k, nDCG@k, and the grades of a ranking.

One definition for everyone who scores a ranking (the LTR trainer, the simulator's reports), so
that a number in one place means the same thing in another.

Conventions:
- a document is *relevant* when its grade is > 0; unjudged documents have grade 0, and a
  negative grade (some qrels mark spam with one) counts as 0 rather than as a penalty;
- a document id repeated in a ranking counts once, at its first rank, so neither metric can
  exceed 1 because of a duplicate;
- nDCG uses the exponential gain ``2**g - 1`` and the discount ``1 / log2(rank + 1)``; its ideal
  ranking is built from *all* judged grades for the query, not only the retrieved ones, so a
  ranking that misses a relevant document is penalised for it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

__all__ = ["dcg", "grades_for", "ndcg_at_k", "recall_at_k"]


def _check_k(k: int) -> None:
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise ValueError(f"k must be a positive integer, got {k!r}")


def _first_k_unique(ranked_ids: Sequence[str], k: int) -> list[str]:
    seen: set[str] = set()
    out: list[str] = []
    for doc_id in ranked_ids:
        if len(out) == k:
            break
        if doc_id not in seen:
            seen.add(doc_id)
            out.append(doc_id)
    return out


def grades_for(ranked_ids: Sequence[str], grades: Mapping[str, int]) -> list[int]:
    """The grade at each rank (0 when unjudged): what a click model needs to simulate a page."""
    return [max(0, grades.get(doc_id, 0)) for doc_id in ranked_ids]


def dcg(grades: Sequence[int]) -> float:
    """Discounted cumulative gain of grades in rank order (rank 1 first)."""
    return sum(
        (2.0 ** max(0, g) - 1.0) / math.log2(rank + 1) for rank, g in enumerate(grades, start=1)
    )


def recall_at_k(ranked_ids: Sequence[str], relevant: Mapping[str, int], k: int) -> float | None:
    """Share of the relevant documents found in the first ``k`` distinct ids.

    None, not 0.0, when the query has no relevant document: such a query cannot be recalled
    at all, and averaging it in as a zero would blame the ranking for the judgments.
    """
    _check_k(k)
    wanted = {doc_id for doc_id, g in relevant.items() if g > 0}
    if not wanted:
        return None
    found = sum(1 for doc_id in _first_k_unique(ranked_ids, k) if doc_id in wanted)
    return found / len(wanted)


def ndcg_at_k(ranked_ids: Sequence[str], grades: Mapping[str, int], k: int = 10) -> float:
    """nDCG@k against the ideal order of all judged grades; 0.0 when nothing is relevant.

    A query without relevant documents scores 0.0 (not None) so that a page-level average is
    always defined; callers who want to skip such queries can test ``recall_at_k`` for None.
    """
    _check_k(k)
    ideal_grades = sorted((g for g in grades.values() if g > 0), reverse=True)[:k]
    ideal = dcg(ideal_grades)
    if ideal <= 0.0:
        return 0.0
    shown = grades_for(_first_k_unique(ranked_ids, k), grades)
    return dcg(shown) / ideal
