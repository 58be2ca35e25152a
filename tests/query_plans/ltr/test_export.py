import numpy as np
import orjson
import pytest
import xgboost as xgb

from ltrr.query_plans.ltr.export import (
    LINEAR,
    XGBOOST,
    createmodel_body,
    createmodel_path,
    definition_features,
    model_definition,
    score_linear,
    score_xgboost,
)
from ltrr.query_plans.ltr.featureset import Feature, FeatureSet
from ltrr.query_plans.ltr.train import TrainedModel, TrainingSet, train_final

NAMES = ("arm_lexical", "match_title", "popularity_sales")


def training_set(seed=3):
    rng = np.random.default_rng(seed)
    n_queries, n_docs = 8, 12
    X = rng.random((n_queries * n_docs, 3)).astype(np.float32)
    y = np.clip((X[:, 0] * 3 + X[:, 2] * 2).astype(int), 0, 4).astype(np.int32)
    qids = tuple(f"q{i // n_docs}" for i in range(len(y)))
    return TrainingSet(X, y, qids, tuple(f"d{i}" for i in range(len(y))), NAMES)


def featureset(names=NAMES):
    return FeatureSet("fs", tuple(Feature(n, {"match_all": {}}, "text") for n in names))


def test_xgboost_definition_scores_like_the_booster():
    ts = training_set()
    model = train_final(ts, "lambdamart")
    model_type, definition = model_definition(model)
    assert model_type == XGBOOST
    trees = orjson.loads(definition)
    assert isinstance(trees, list)
    assert len(trees) == 200
    assert definition_features(model_type, definition) <= set(NAMES)
    margin = model.booster.predict(xgb.DMatrix(ts.X, feature_names=list(NAMES)), output_margin=True)
    for row in range(0, len(ts.y), 7):
        values = dict(zip(NAMES, map(float, ts.X[row]), strict=True))
        assert score_xgboost(definition, values) == pytest.approx(float(margin[row]), abs=1e-5)


def test_xgboost_scorer_on_a_hand_written_tree():
    tree = {
        "nodeid": 0,
        "split": "a",
        "split_condition": 0.5,
        "yes": 1,
        "no": 2,
        "missing": 2,
        "children": [{"nodeid": 1, "leaf": 1.0}, {"nodeid": 2, "leaf": -2.0}],
    }
    definition = orjson.dumps([tree, tree]).decode()
    assert score_xgboost(definition, {"a": 0.4}) == 2.0  # 0.4 < 0.5: yes twice, 1 + 1
    assert score_xgboost(definition, {"a": 0.5}) == -4.0  # not < 0.5: no, -2 - 2
    assert score_xgboost(definition, {}) == -4.0  # missing goes to node 2


def test_linear_definition_has_raw_weights_and_scores_without_intercept():
    model = TrainedModel("linear", NAMES, weights=(2.0, -0.5, 0.25), intercept=7.0)
    model_type, definition = model_definition(model)
    assert model_type == LINEAR
    assert orjson.loads(definition) == {
        "arm_lexical": 2.0,
        "match_title": -0.5,
        "popularity_sales": 0.25,
    }
    # 2 * 1.5 - 0.5 * 4 + 0.25 * 8 = 3 - 2 + 2 = 3 (the intercept 7 is not part of the export)
    values = {"arm_lexical": 1.5, "match_title": 4.0, "popularity_sales": 8.0}
    assert score_linear(definition, values) == pytest.approx(3.0)
    assert score_linear(definition, {"arm_lexical": 1.0}) == pytest.approx(2.0)  # missing = 0


def test_trained_linear_export_matches_in_memory_scores():
    ts = training_set()
    model = train_final(ts, "linear")
    _, definition = model_definition(model)
    scores = model.score(ts.X)
    for row in range(0, len(ts.y), 9):
        values = dict(zip(NAMES, map(float, ts.X[row]), strict=True))
        assert score_linear(definition, values) == pytest.approx(scores[row], abs=1e-6)


def test_createmodel_body_and_path():
    definition = '{"arm_lexical": 1.0}'
    assert createmodel_body("m_v1", LINEAR, definition, featureset()) == {
        "model": {"name": "m_v1", "model": {"type": LINEAR, "definition": definition}}
    }
    assert createmodel_path("fs") == "/_ltr/_featureset/fs/_createmodel"
    assert createmodel_path("fs", "store1") == "/_ltr/store1/_featureset/fs/_createmodel"


def test_createmodel_refuses_unknown_features():
    with pytest.raises(ValueError, match="not in featureset"):
        createmodel_body("m", LINEAR, '{"other": 1.0}', featureset())
    with pytest.raises(ValueError, match="unknown model type"):
        createmodel_body("m", "model/ranklib", "<x/>", featureset())
