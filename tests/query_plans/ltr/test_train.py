import math

import numpy as np
import pytest
from sklearn.linear_model import Ridge
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from ltrr.query_plans.ltr.train import (
    CvResult,
    ModelCv,
    TrainingSet,
    cross_validate,
    ranked_ndcg,
    train_final,
    winner,
)


def synthetic(n_queries=12, n_docs=10, seed=0, reverse=True):
    """Feature 0 is the grade plus noise, feature 1 is noise; candidates come in the worst
    order (ascending grade) so that any sensible model beats the baseline."""
    rng = np.random.default_rng(seed)
    X, y, qids, docs = [], [], [], []
    for q in range(n_queries):
        grades = rng.integers(0, 5, size=n_docs)
        grades[0] = 4  # every query has a relevant document
        order = np.argsort(grades, kind="stable") if reverse else np.arange(n_docs)
        for i in order:
            X.append([grades[i] + rng.normal(0, 0.3), rng.normal()])
            y.append(grades[i])
            qids.append(f"q{q}")
            docs.append(f"q{q}-d{i}")
    return TrainingSet(
        X=np.asarray(X, dtype=np.float32),
        y=np.asarray(y, dtype=np.int32),
        query_ids=tuple(qids),
        doc_ids=tuple(docs),
        feature_names=("signal", "noise"),
    )


def test_rows_must_be_grouped_by_query():
    with pytest.raises(ValueError, match="contiguous"):
        TrainingSet(
            X=np.zeros((3, 1), dtype=np.float32),
            y=np.zeros(3, dtype=np.int32),
            query_ids=("a", "b", "a"),
            doc_ids=("1", "2", "3"),
            feature_names=("f",),
        )
    with pytest.raises(ValueError, match="shape"):
        TrainingSet(
            X=np.zeros((3, 2), dtype=np.float32),
            y=np.zeros(3, dtype=np.int32),
            query_ids=("a", "a", "a"),
            doc_ids=("1", "2", "3"),
            feature_names=("f",),
        )


def test_ranked_ndcg_hand_computed():
    ts = TrainingSet(
        X=np.zeros((5, 1), dtype=np.float32),
        y=np.asarray([0, 2, 1, 0, 0], dtype=np.int32),
        query_ids=("a", "a", "a", "b", "b"),
        doc_ids=("x", "y", "z", "u", "v"),
        feature_names=("f",),
        judged={"a": {"y": 2, "z": 1, "w": 3}},  # w is relevant but not a candidate
    )
    scores = np.asarray([3.0, 2.0, 1.0, 0.0, 0.0])  # a: x, y, z
    # DCG = 0/log2(2) + 3/log2(3) + 1/log2(4) = 1.8928 + 0.5 = 2.3928
    # ideal (all judged: 3, 2, 1) = 7 + 3/log2(3) + 1/2 = 7 + 1.8928 + 0.5 = 9.3928
    # b has no relevant document: left out
    got = ranked_ndcg(ts, scores)
    assert set(got) == {"a"}
    expected = (3 / math.log2(3) + 0.5) / (7 + 3 / math.log2(3) + 0.5)
    assert got["a"] == pytest.approx(expected)
    # equal scores keep candidate order: x, y, z again
    assert ranked_ndcg(ts, np.zeros(5))["a"] == pytest.approx(expected)


def test_cross_validate_beats_a_reversed_baseline():
    ts = synthetic()
    cv = cross_validate(ts, folds=4, seed=1)
    assert cv.folds == 4
    assert len(cv.baseline_folds) == 4
    assert cv.evaluated_queries == 12
    for kind in ("lambdamart", "linear"):
        m = cv.models[kind]
        assert len(m.fold_ndcg) == 4
        assert all(0.0 <= v <= 1.0 for v in m.fold_ndcg)
        assert m.oof_scores.shape == (len(ts.doc_ids),)
        assert m.mean_ndcg > cv.baseline_ndcg + 0.2
    # the out-of-fold scores rank the signal: reranked, every query beats its baseline
    held = ranked_ndcg(ts, cv.models["linear"].oof_scores)
    base = ranked_ndcg(ts, -np.arange(len(ts.doc_ids), dtype=float))
    assert all(held[q] > base[q] for q in held)


def test_cross_validate_needs_two_queries():
    ts = synthetic(n_queries=1)
    with pytest.raises(ValueError, match="at least 2 queries"):
        cross_validate(ts)


def test_folds_capped_at_query_count():
    assert cross_validate(synthetic(n_queries=3), folds=5, models=("linear",)).folds == 3


def test_linear_weights_are_in_raw_feature_space():
    ts = synthetic()
    model = train_final(ts, "linear")
    reference = make_pipeline(StandardScaler(), Ridge(alpha=1.0)).fit(ts.X, ts.y)
    raw = np.asarray(ts.X, dtype=np.float64) @ np.asarray(model.weights) + model.intercept
    assert raw == pytest.approx(reference.predict(ts.X), abs=1e-6)
    assert model.score(ts.X) == pytest.approx(raw - model.intercept)  # no intercept exported
    imp = model.importances()
    assert imp["signal"] > 10 * imp["noise"]


def test_lambdamart_uses_the_feature_names():
    model = train_final(synthetic(), "lambdamart")
    gain = model.importances()
    assert set(gain) == {"signal", "noise"}
    assert gain["signal"] > gain["noise"]


def _cv(lm, lin):
    empty = np.zeros(0)
    return CvResult(
        {"lambdamart": ModelCv("lambdamart", lm, empty), "linear": ModelCv("linear", lin, empty)},
        (0.1,),
        2,
        4,
    )


def test_winner_by_mean_and_tie_goes_to_linear():
    assert winner(_cv((0.6, 0.8), (0.6, 0.6))) == "lambdamart"  # 0.7 vs 0.6
    assert winner(_cv((0.5, 0.5), (0.4, 0.7))) == "linear"  # 0.5 vs 0.55
    assert winner(_cv((0.5, 0.5), (0.5, 0.5))) == "linear"  # tie


def two_lists_per_query(n_queries=3, n_docs=6, seed=0):
    """Each query logged twice (two lists, "q<i>#1" and "q<i>#2"), fold_keys the query."""
    base = synthetic(n_queries=n_queries, n_docs=n_docs, seed=seed)
    rows, groups, keys, docs = [], [], [], []
    for qid, start, end in base.groups():
        for copy in (1, 2):
            rows.extend(range(start, end))
            groups.extend([f"{qid}#{copy}"] * (end - start))
            keys.extend([qid] * (end - start))
            docs.extend(base.doc_ids[start:end])
    index = np.asarray(rows)
    return TrainingSet(
        X=base.X[index],
        y=base.y[index],
        query_ids=tuple(groups),
        doc_ids=tuple(docs),
        feature_names=base.feature_names,
        fold_keys=tuple(keys),
    )


def test_fold_keys_must_match_the_rows():
    with pytest.raises(ValueError, match="fold_keys must have one entry per row"):
        TrainingSet(
            X=np.zeros((3, 1), dtype=np.float32),
            y=np.zeros(3, dtype=np.int32),
            query_ids=("a#1", "a#2", "b#1"),
            doc_ids=("1", "1", "2"),
            feature_names=("f",),
            fold_keys=("a", "a"),
        )


def test_two_lists_of_one_query_never_land_in_different_folds(monkeypatch):
    import ltrr.query_plans.ltr.train as train_module

    splits = []

    class Recording(train_module.GroupKFold):
        def split(self, X, y=None, groups=None):
            for train_index, test_index in super().split(X, y, groups):
                splits.append((set(train_index.tolist()), set(test_index.tolist())))
                yield train_index, test_index

    monkeypatch.setattr(train_module, "GroupKFold", Recording)
    ts = two_lists_per_query()
    assert len(ts.groups()) == 6  # six lists, three queries
    cv = cross_validate(ts, folds=5, seed=3, models=("linear",))
    # folds are capped at the 3 real queries, not the 6 lists
    assert cv.folds == 3
    assert len(splits) == 3
    rows_of: dict[str, set[int]] = {}
    for row, key in enumerate(ts.fold_keys):
        rows_of.setdefault(key, set()).add(row)
    for _, test in splits:
        for key, rows in rows_of.items():
            # both lists of the query are held out together, or both trained on
            assert rows <= test or not rows & test, key
    # every list is still scored and evaluated on its own
    assert cv.evaluated_queries == 6


def test_without_fold_keys_each_list_is_its_own_fold_group():
    ts = two_lists_per_query()
    by_list = TrainingSet(
        X=ts.X,
        y=ts.y,
        query_ids=ts.query_ids,
        doc_ids=ts.doc_ids,
        feature_names=ts.feature_names,
    )
    assert by_list.fold_keys == ()
    assert cross_validate(by_list, folds=5, seed=3, models=("linear",)).folds == 5
