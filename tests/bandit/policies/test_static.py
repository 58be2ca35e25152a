import numpy as np
import pytest

from ltrr.bandit.decision import ArmSpec
from ltrr.bandit.policies.base import PolicyConfig, PolicyConfigError
from ltrr.bandit.policies.static import StaticPolicy

ARMS = [ArmSpec("bm25", 0, 10), ArmSpec("knn", 0, 10), ArmSpec("exact", 0, 10)]
X = np.zeros(3)


def test_empty_include_means_every_arm():
    p, score = StaticPolicy(ARMS, 3, PolicyConfig("static"), seed=0).probabilities(X)
    assert p.tolist() == [1.0, 1.0, 1.0]
    assert score.tolist() == [1.0, 1.0, 1.0]


def test_include_is_deterministic_and_unclipped():
    config = PolicyConfig("static", include=("knn",), min_probability=0.1)
    policy = StaticPolicy(ARMS, 3, config, seed=0)
    p, score = policy.probabilities(X)
    assert p.tolist() == [0.0, 1.0, 0.0]
    assert score.tolist() == [0.0, 1.0, 0.0]
    p[0] = 0.5  # callers get a copy
    assert policy.probabilities(X)[0][0] == 0.0


def test_unknown_arm_in_include():
    with pytest.raises(PolicyConfigError) as info:
        StaticPolicy(ARMS, 3, PolicyConfig("static", include=("vector",)), seed=0)
    assert info.value.key == "include"


def test_update_learns_nothing_but_checks_the_arm():
    policy = StaticPolicy(ARMS, 3, PolicyConfig("static", include=("bm25",)), seed=0)
    policy.update("knn", X, 1.0)
    assert policy.probabilities(X)[0].tolist() == [1.0, 0.0, 0.0]
    with pytest.raises(KeyError):
        policy.update("nope", X, 1.0)


def test_state_is_only_the_layout():
    policy = StaticPolicy(ARMS, 3, PolicyConfig("static"), seed=0)
    state = policy.state()
    assert state == {"policy": "static", "arms": ["bm25", "knn", "exact"], "n_features": 3}
    policy.load_state(state)
    with pytest.raises(ValueError, match="arms"):
        policy.load_state({**state, "arms": ["bm25"]})
