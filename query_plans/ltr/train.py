"""Two rankers on logged features, compared honestly: folds by query, nDCG@10 held out.

LambdaMART (xgboost ``rank:ndcg``) can learn interactions; a linear model on standardised
features cannot, but it is hard to overfit on a few dozen queries and trivially exported. Which
one ships is decided by mean cross-validated nDCG@10, beside the baseline (the candidates in the
order they came, i.e. without any rerank) so that a reader sees whether LTR helps at all.

Queries none of whose judged documents is relevant are kept for training (they cost nothing)
but left out of every mean: nDCG is 0 for any order there, and would only dilute differences.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import numpy.typing as npt
import xgboost as xgb
from sklearn.linear_model import Ridge
from sklearn.model_selection import GroupKFold

from ltrr.query_plans.metrics import ndcg_at_k

__all__ = [
    "MODELS",
    "CvResult",
    "ModelCv",
    "ModelKind",
    "TrainedModel",
    "TrainingSet",
    "cross_validate",
    "ranked_ndcg",
    "train_final",
    "winner",
]

ModelKind = Literal["lambdamart", "linear"]
MODELS: tuple[ModelKind, ...] = ("lambdamart", "linear")
Floats = npt.NDArray[np.float32]
K = 10

LAMBDAMART_PARAMS: Mapping[str, object] = {
    "objective": "rank:ndcg",
    "eval_metric": f"ndcg@{K}",
    "eta": 0.1,
    "max_depth": 5,
    "min_child_weight": 1.0,
    "subsample": 0.9,
    "ndcg_exp_gain": True,  # gain 2**g - 1, as metrics.ndcg_at_k; fine for grades 0..4
    "lambdarank_pair_method": "topk",
    "base_score": 0.0,  # the exported trees then score exactly as the booster's margin
    "tree_method": "hist",
    "nthread": 2,
}
LAMBDAMART_ROUNDS = 200
RIDGE_ALPHA = 1.0


@dataclass(frozen=True)
class TrainingSet:
    """Rows grouped by query (each query's rows contiguous, in candidate order).

    ``judged`` holds each query's full judgments, so that nDCG's ideal counts the relevant
    documents the candidates missed; without it, the rows' own grades are used. A "query" here
    is one ranked list; ``fold_keys`` (default: the list ids) names the real query of each
    row, so that cross-validation never trains on one search of a query and tests on another.
    """

    X: Floats
    y: npt.NDArray[np.int32]
    query_ids: tuple[str, ...]
    doc_ids: tuple[str, ...]
    feature_names: tuple[str, ...]
    judged: Mapping[str, Mapping[str, int]] = field(default_factory=dict)
    fold_keys: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        n = len(self.doc_ids)
        if self.X.ndim != 2 or self.X.shape != (n, len(self.feature_names)):
            raise ValueError(
                f"X has shape {self.X.shape}; expected ({n}, {len(self.feature_names)})"
            )
        if self.y.shape != (n,) or len(self.query_ids) != n:
            raise ValueError("X, y, query_ids and doc_ids must have one entry per row")
        if self.fold_keys and len(self.fold_keys) != n:
            raise ValueError("fold_keys must have one entry per row")
        if n == 0:
            raise ValueError("a training set needs at least one row")
        seen: set[str] = set()
        previous = None
        for qid in self.query_ids:
            if qid != previous:
                if qid in seen:
                    raise ValueError(f"query {qid!r}: its rows must be contiguous")
                seen.add(qid)
                previous = qid
        if len(set(self.feature_names)) != len(self.feature_names):
            raise ValueError("feature names must be unique")

    def groups(self) -> list[tuple[str, int, int]]:
        """(query id, first row, end row) per query, in row order."""
        out: list[tuple[str, int, int]] = []
        start = 0
        for i in range(1, len(self.query_ids) + 1):
            if i == len(self.query_ids) or self.query_ids[i] != self.query_ids[start]:
                out.append((self.query_ids[start], start, i))
                start = i
        return out

    def grades_for(self, query_id: str, start: int, end: int) -> Mapping[str, int]:
        if query_id in self.judged:
            return self.judged[query_id]
        return {self.doc_ids[i]: int(self.y[i]) for i in range(start, end)}


def ranked_ndcg(
    ts: TrainingSet, scores: npt.NDArray[np.floating], rows: npt.NDArray[np.bool_] | None = None
) -> dict[str, float]:
    """nDCG@10 per evaluable query when each query's rows are sorted by ``scores`` (higher
    first; ties keep candidate order). ``rows`` limits it to the queries it selects."""
    out: dict[str, float] = {}
    for qid, start, end in ts.groups():
        if rows is not None and not rows[start]:
            continue
        grades = ts.grades_for(qid, start, end)
        if not any(g > 0 for g in grades.values()):
            continue
        order = np.argsort(-np.asarray(scores[start:end], dtype=np.float64), kind="stable")
        out[qid] = ndcg_at_k([ts.doc_ids[start + int(i)] for i in order], grades, K)
    return out


@dataclass(frozen=True)
class TrainedModel:
    """A fitted ranker; ``weights``/``intercept`` are in raw feature space (linear only)."""

    kind: ModelKind
    feature_names: tuple[str, ...]
    booster: xgb.Booster | None = None
    weights: tuple[float, ...] = ()
    intercept: float = 0.0
    std_weights: tuple[float, ...] = ()  # |weight| on standardised features (linear only)

    def score(self, X: Floats) -> npt.NDArray[np.float64]:
        """Ranking scores; the linear intercept is left out, as the exported model has none."""
        if self.kind == "lambdamart":
            assert self.booster is not None
            matrix = xgb.DMatrix(X, feature_names=list(self.feature_names))
            return np.asarray(self.booster.predict(matrix, output_margin=True), dtype=np.float64)
        return np.asarray(X, dtype=np.float64) @ np.asarray(self.weights, dtype=np.float64)

    def importances(self) -> dict[str, float]:
        """Total gain per feature (LambdaMART), or |weight| x feature std (linear: the effect
        of a typical change in the feature); features never used are 0."""
        if self.kind == "lambdamart":
            assert self.booster is not None
            gain = self.booster.get_score(importance_type="total_gain")
            return {n: float(np.sum(gain.get(n, 0.0))) for n in self.feature_names}
        return dict(zip(self.feature_names, self.std_weights, strict=True))


def _fit_lambdamart(ts: TrainingSet, rows: npt.NDArray[np.bool_], seed: int) -> TrainedModel:
    matrix = xgb.DMatrix(ts.X[rows], label=ts.y[rows], feature_names=list(ts.feature_names))
    sizes = [end - start for _, start, end in ts.groups() if rows[start]]
    matrix.set_group(sizes)
    params = {**LAMBDAMART_PARAMS, "seed": seed}
    booster = xgb.train(params, matrix, num_boost_round=LAMBDAMART_ROUNDS)
    return TrainedModel("lambdamart", ts.feature_names, booster=booster)


def _fit_linear(ts: TrainingSet, rows: npt.NDArray[np.bool_]) -> TrainedModel:
    """Ridge on standardised features (so the penalty treats features alike), then
    w_raw = w_std / std and intercept_raw = b - sum(w_std * mean / std)."""
    X = np.asarray(ts.X[rows], dtype=np.float64)
    mean = X.mean(axis=0)
    std = X.std(axis=0)
    std[std == 0] = 1.0  # a constant feature: its weight stays 0 whatever we divide by
    ridge = Ridge(alpha=RIDGE_ALPHA).fit((X - mean) / std, ts.y[rows].astype(np.float64))
    w_std = np.asarray(ridge.coef_, dtype=np.float64)
    raw = w_std / std
    intercept = float(ridge.intercept_) - float(np.sum(w_std * mean / std))
    return TrainedModel(
        "linear",
        ts.feature_names,
        weights=tuple(float(w) for w in raw),
        intercept=intercept,
        std_weights=tuple(float(abs(w)) for w in w_std),
    )


def _fit(ts: TrainingSet, kind: ModelKind, rows: npt.NDArray[np.bool_], seed: int) -> TrainedModel:
    if kind == "lambdamart":
        return _fit_lambdamart(ts, rows, seed)
    if kind == "linear":
        return _fit_linear(ts, rows)
    raise ValueError(f"unknown model {kind!r}; expected one of {MODELS}")


@dataclass(frozen=True)
class ModelCv:
    """One model's folds: nDCG@10 per fold, and its out-of-fold score for every row."""

    kind: ModelKind
    fold_ndcg: tuple[float, ...]
    oof_scores: npt.NDArray[np.float64]

    @property
    def mean_ndcg(self) -> float:
        return float(np.mean(self.fold_ndcg)) if self.fold_ndcg else float("nan")


@dataclass(frozen=True)
class CvResult:
    models: Mapping[str, ModelCv]
    baseline_folds: tuple[float, ...]
    folds: int
    evaluated_queries: int

    @property
    def baseline_ndcg(self) -> float:
        return float(np.mean(self.baseline_folds)) if self.baseline_folds else float("nan")


def cross_validate(
    ts: TrainingSet,
    folds: int = 5,
    seed: int = 0,
    models: Sequence[ModelKind] = MODELS,
) -> CvResult:
    """GroupKFold by query (shuffled by ``seed``); ``folds`` is capped at the query count."""
    qids = np.asarray(ts.fold_keys or ts.query_ids)
    distinct = len(set(qids.tolist()))
    if distinct < 2:
        raise ValueError(f"cross-validation needs at least 2 queries, got {distinct}")
    if folds < 2:
        raise ValueError(f"folds must be >= 2, got {folds}")
    n_folds = min(folds, distinct)
    splitter = GroupKFold(n_splits=n_folds, shuffle=True, random_state=seed)
    baseline = -np.arange(len(ts.doc_ids), dtype=np.float64)  # candidate order, as given
    oof = {kind: np.zeros(len(ts.doc_ids), dtype=np.float64) for kind in models}
    per_fold: dict[str, list[float]] = {kind: [] for kind in models}
    baseline_folds: list[float] = []
    evaluated = 0
    for train_index, test_index in splitter.split(ts.X, ts.y, groups=qids):
        train_rows = np.zeros(len(ts.doc_ids), dtype=bool)
        train_rows[train_index] = True
        test_rows = ~train_rows
        base = ranked_ndcg(ts, baseline, test_rows)
        if not base:
            continue  # no evaluable query held out in this fold
        evaluated += len(base)
        baseline_folds.append(float(np.mean(list(base.values()))))
        for kind in models:
            model = _fit(ts, kind, train_rows, seed)
            oof[kind][test_index] = model.score(ts.X[test_index])
            held = ranked_ndcg(ts, oof[kind], test_rows)
            per_fold[kind].append(float(np.mean(list(held.values()))))
    return CvResult(
        {kind: ModelCv(kind, tuple(per_fold[kind]), oof[kind]) for kind in models},
        tuple(baseline_folds),
        n_folds,
        evaluated,
    )


def winner(cv: CvResult) -> ModelKind:
    """Highest mean CV nDCG@10; a tie goes to the linear model (simpler, cheaper to serve)."""
    ranked = sorted(
        cv.models.values(),
        key=lambda m: (-(m.mean_ndcg if m.mean_ndcg == m.mean_ndcg else -1.0), m.kind != "linear"),
    )
    if not ranked:
        raise ValueError("no model was cross-validated")
    return ranked[0].kind


def train_final(ts: TrainingSet, model: ModelKind, seed: int = 0) -> TrainedModel:
    """The chosen model fitted on every row."""
    return _fit(ts, model, np.ones(len(ts.doc_ids), dtype=bool), seed)
