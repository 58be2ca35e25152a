"""Graded judgments (0..4) per (query, document): from qrels, or estimated from clicks.

Clicks are biased by position: a document shown at rank 8 gets few clicks because few users
look there, not because it is bad. Both estimators divide that out:

- COEC (clicks over expected clicks): clicks(q, d) / sum over its impressions of the
  examination prior at the rank shown (default 1/rank). Cheap, no fitting, but the prior is
  assumed, not learned. ``position_ctr`` gives the prior OpenSearch's Search Relevance
  Workbench uses for its COEC judgments from UBI: each rank's click-through over all queries.
- PBM (position-based model, Chuklin, Markov and de Rijke, "Click Models for Web Search",
  2015, ch. 3-4): P(click) = attractiveness(q, d) * examination(rank), both fitted by EM.
  Rank 1 is taken as always examined (examination[1] = 1): PBM's likelihood depends only on
  the products, so without an anchor any (a * c, e / c) fits equally well.

Either estimate maps to a grade by ``thresholds`` (default 0.05, 0.15, 0.30, 0.50): grade = how
many thresholds the estimate reaches, so 0.04 -> 0, 0.15 -> 2, 0.7 -> 4. The scale reads as
"chance a user who sees it clicks it"; COEC can exceed 1 (clicked more often than its prior
predicts) and then grades 4.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Literal, NamedTuple

import numpy as np

__all__ = [
    "DEFAULT_THRESHOLDS",
    "Impression",
    "Judgments",
    "from_clicks",
    "from_qrels",
    "grade",
    "pbm_em",
    "position_ctr",
]

DEFAULT_THRESHOLDS = (0.05, 0.15, 0.30, 0.50)
MAX_GRADE = 4


class Impression(NamedTuple):
    """A document shown for a query at a 1-based rank, and whether it was clicked."""

    query_id: str
    doc_id: str
    rank: int
    clicked: bool


@dataclass(frozen=True, slots=True)
class Judgments:
    """Grades per query and document; ``scores`` keeps the continuous estimate behind each
    click grade, and ``examination`` PBM's fitted per-rank examination (index 0 = rank 1)."""

    grades: Mapping[str, Mapping[str, int]]
    method: str
    scores: Mapping[str, Mapping[str, float]] = field(default_factory=dict)
    examination: tuple[float, ...] = ()

    def grade(self, query_id: str, doc_id: str) -> int:
        """Unjudged documents are grade 0, as in the metrics."""
        return self.grades.get(query_id, {}).get(doc_id, 0)

    @property
    def query_ids(self) -> tuple[str, ...]:
        return tuple(self.grades)


def grade(value: float, thresholds: Sequence[float] = DEFAULT_THRESHOLDS) -> int:
    """How many thresholds ``value`` reaches (0..len(thresholds))."""
    return sum(1 for t in thresholds if value >= t)


def _check_thresholds(thresholds: Sequence[float]) -> tuple[float, ...]:
    out = tuple(float(t) for t in thresholds)
    if len(out) != MAX_GRADE:
        raise ValueError(f"thresholds: need {MAX_GRADE} (for grades 1..4), got {len(out)}")
    if any(b <= a for a, b in itertools.pairwise(out)) or out[0] <= 0:
        raise ValueError(f"thresholds must be positive and strictly increasing, got {out}")
    return out


def from_qrels(qrels: Mapping[str, Mapping[str, int]]) -> Judgments:
    """Qrels as they are; a negative grade (spam in some collections) becomes 0."""
    grades: dict[str, Mapping[str, int]] = {}
    for qid, docs in qrels.items():
        row: dict[str, int] = {}
        for doc_id, g in docs.items():
            if isinstance(g, bool) or not isinstance(g, int | np.integer):
                raise ValueError(f"qrels {qid!r}/{doc_id!r}: grade {g!r} is not an integer")
            row[str(doc_id)] = max(0, int(g))
        grades[str(qid)] = MappingProxyType(row)
    return Judgments(MappingProxyType(grades), "qrels")


def _inverse_rank(rank: int) -> float:
    return 1.0 / rank


def _impressions(
    impressions: Iterable[Impression | tuple[str, str, int, bool]],
) -> list[Impression]:
    out: list[Impression] = []
    for item in impressions:
        qid, doc_id, rank, clicked = item
        if isinstance(rank, bool) or not isinstance(rank, int | np.integer) or rank < 1:
            raise ValueError(f"impression {qid!r}/{doc_id!r}: rank must be an int >= 1: {rank!r}")
        out.append(Impression(str(qid), str(doc_id), int(rank), bool(clicked)))
    if not out:
        raise ValueError("no impressions: clicks cannot be turned into judgments")
    return out


def _coec(
    impressions: Sequence[Impression], prior: Mapping[int, float] | None
) -> dict[tuple[str, str], float]:
    clicks: dict[tuple[str, str], float] = {}
    expected: dict[tuple[str, str], float] = {}
    for imp in impressions:
        key = (imp.query_id, imp.doc_id)
        e = prior.get(imp.rank, 0.0) if prior is not None else _inverse_rank(imp.rank)
        expected[key] = expected.get(key, 0.0) + e
        clicks[key] = clicks.get(key, 0.0) + (1.0 if imp.clicked else 0.0)
    return {key: (clicks[key] / e if e > 0 else 0.0) for key, e in expected.items()}


def position_ctr(
    impressions: Iterable[Impression | tuple[str, str, int, bool]],
) -> dict[int, float]:
    """Per rank, clicks over impressions pooled over every query and document.

    As COEC's prior this is the Search Relevance Workbench's "rank-aggregated click-through":
    a document's expected clicks are what an average document at its rank gets. The Workbench
    multiplies one rank's rate (the document's best rank) by all its impressions, where
    ``from_clicks`` sums the rate of each impression's own rank: the two agree whenever a
    document is shown at one rank for a query, and the sum is the fairer one otherwise."""
    shown: dict[int, int] = {}
    clicked: dict[int, int] = {}
    for imp in _impressions(impressions):
        shown[imp.rank] = shown.get(imp.rank, 0) + 1
        clicked[imp.rank] = clicked.get(imp.rank, 0) + int(imp.clicked)
    return {rank: clicked[rank] / n for rank, n in sorted(shown.items())}


def pbm_em(
    impressions: Sequence[Impression], *, iterations: int = 200, tolerance: float = 1e-6
) -> tuple[dict[tuple[str, str], float], tuple[float, ...]]:
    """PBM by EM: (attractiveness per (query, doc), examination per rank from 1).

    E-step, for an impression not clicked (a click means examined and attracted, both 1):
      P(attracted | no click) = a (1 - e) / (1 - a e)
      P(examined | no click) = e (1 - a) / (1 - a e)
    M-step: each parameter is the mean of those posteriors over its impressions. Stops after
    ``iterations`` or when no parameter moves by more than ``tolerance``.
    """
    if iterations < 1 or tolerance <= 0:
        raise ValueError("iterations must be >= 1 and tolerance > 0")
    keys: dict[tuple[str, str], int] = {}
    pair = np.empty(len(impressions), dtype=np.int64)
    rank = np.empty(len(impressions), dtype=np.int64)
    clicked = np.empty(len(impressions), dtype=bool)
    for i, imp in enumerate(impressions):
        pair[i] = keys.setdefault((imp.query_id, imp.doc_id), len(keys))
        rank[i] = imp.rank - 1
        clicked[i] = imp.clicked
    n_ranks = int(rank.max()) + 1
    pair_count = np.bincount(pair, minlength=len(keys)).astype(np.float64)
    rank_count = np.bincount(rank, minlength=n_ranks).astype(np.float64)
    alpha = np.full(len(keys), 0.5)
    gamma = np.full(n_ranks, 0.5)
    gamma[0] = 1.0
    for _ in range(iterations):
        a, e = alpha[pair], gamma[rank]
        denominator = np.maximum(1.0 - a * e, 1e-12)
        post_a = np.where(clicked, 1.0, a * (1.0 - e) / denominator)
        post_e = np.where(clicked, 1.0, e * (1.0 - a) / denominator)
        new_alpha = np.bincount(pair, weights=post_a, minlength=len(keys)) / pair_count
        seen = rank_count > 0
        new_gamma = gamma.copy()
        new_gamma[seen] = (
            np.bincount(rank, weights=post_e, minlength=n_ranks)[seen] / rank_count[seen]
        )
        new_gamma[0] = 1.0  # the anchor: rank 1 is always examined
        change = max(np.max(np.abs(new_alpha - alpha)), np.max(np.abs(new_gamma - gamma)))
        alpha, gamma = new_alpha, new_gamma
        if change < tolerance:
            break
    attractiveness = {key: float(alpha[i]) for key, i in keys.items()}
    return attractiveness, tuple(float(g) for g in gamma)


def from_clicks(
    impressions: Iterable[Impression | tuple[str, str, int, bool]],
    *,
    method: Literal["coec", "pbm"],
    prior: Mapping[int, float] | None = None,
    thresholds: Sequence[float] = DEFAULT_THRESHOLDS,
    min_impressions: int = 1,
    iterations: int = 200,
    tolerance: float = 1e-6,
) -> Judgments:
    """Grades from impressions; a (query, doc) shown fewer than ``min_impressions`` times is
    left unjudged (grade 0) rather than graded on noise. ``prior`` (rank -> examination) is
    COEC's only; PBM learns its own."""
    limits = _check_thresholds(thresholds)
    if min_impressions < 1:
        raise ValueError(f"min_impressions must be >= 1, got {min_impressions}")
    rows = _impressions(impressions)
    examination: tuple[float, ...] = ()
    if method == "coec":
        estimates = _coec(rows, prior)
    elif method == "pbm":
        estimates, examination = pbm_em(rows, iterations=iterations, tolerance=tolerance)
    else:
        raise ValueError(f"method must be 'coec' or 'pbm', got {method!r}")
    shown: dict[tuple[str, str], int] = {}
    for imp in rows:
        key = (imp.query_id, imp.doc_id)
        shown[key] = shown.get(key, 0) + 1
    grades: dict[str, dict[str, int]] = {}
    scores: dict[str, dict[str, float]] = {}
    for (qid, doc_id), value in estimates.items():
        if shown[(qid, doc_id)] < min_impressions:
            continue
        grades.setdefault(qid, {})[doc_id] = grade(value, limits)
        scores.setdefault(qid, {})[doc_id] = value
    return Judgments(
        MappingProxyType({q: MappingProxyType(g) for q, g in grades.items()}),
        method,
        MappingProxyType({q: MappingProxyType(s) for q, s in scores.items()}),
        examination,
    )
