import json

import numpy as np
import pytest

from ltrr.bandit.decision import ArmSpec
from ltrr.bandit.policies._ridge import RidgeStatistics
from ltrr.bandit.policies.base import PolicyConfig
from ltrr.bandit.policies.linucb import LinUCB
from ltrr.bandit.policies.thompson import LinearThompson

ARMS = [ArmSpec("a", 0, 10, cost=0.2), ArmSpec("b", 0, 10, cost=0.4)]


def test_starts_at_the_prior():
    stats = RidgeStatistics(2, 3, ridge=4.0)
    assert stats.a_inv.shape == (2, 3, 3)
    np.testing.assert_array_equal(stats.a_inv[1], np.eye(3) / 4.0)
    assert stats.b.shape == (2, 3)
    assert stats.counts.tolist() == [0, 0]


def test_sherman_morrison_matches_direct_inverse():
    rng = np.random.default_rng(7)
    d, ridge = 5, 2.0
    stats = RidgeStatistics(3, d, ridge)
    a = np.stack([ridge * np.eye(d)] * 3)
    b = np.zeros((3, d))
    for _ in range(50):
        arm = int(rng.integers(3))
        x = rng.normal(size=d)
        r = float(rng.normal())
        stats.update(arm, x, r)
        a[arm] += np.outer(x, x)
        b[arm] += r * x
    for arm in range(3):
        direct = np.linalg.inv(a[arm])
        np.testing.assert_allclose(stats.a_inv[arm], direct, rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(stats.theta[arm], direct @ b[arm], rtol=1e-9, atol=1e-12)
    assert stats.counts.sum() == 50
    x = rng.normal(size=d)
    mean, spread = stats.moments(x)
    expected_spread = [x @ np.linalg.inv(a[k]) @ x for k in range(3)]
    np.testing.assert_allclose(spread, expected_spread, rtol=1e-9)
    np.testing.assert_allclose(mean, [np.linalg.solve(a[k], b[k]) @ x for k in range(3)])


def test_state_round_trips_through_json():
    rng = np.random.default_rng(3)
    policy = LinUCB(ARMS, 3, PolicyConfig("linucb"), seed=0)
    for _ in range(10):
        policy.update("a", rng.random(3), 1.0)
    policy.update("b", rng.random(3), 0.0)
    state = json.loads(json.dumps(policy.state()))
    assert state["arms"] == ["a", "b"]
    assert state["n_features"] == 3
    assert state["counts"] == [10, 1]
    # the statistics are shared, so a Thompson policy may resume from LinUCB's state
    other = LinearThompson(ARMS, 3, PolicyConfig("thompson"), seed=0)
    other.load_state(state)
    x = rng.random(3)
    np.testing.assert_allclose(other.moments(x)[0], policy.moments(x)[0])
    np.testing.assert_allclose(other.moments(x)[1], policy.moments(x)[1])
    assert other.stats.counts.tolist() == [10, 1]


def test_load_state_refuses_a_mismatch():
    policy = LinUCB(ARMS, 3, PolicyConfig("linucb"), seed=0)
    state = policy.state()
    with pytest.raises(ValueError, match="arms"):
        LinUCB(ARMS[:1], 3, PolicyConfig("linucb"), seed=0).load_state(state)
    with pytest.raises(ValueError, match="features"):
        LinUCB(ARMS, 4, PolicyConfig("linucb"), seed=0).load_state(state)
    with pytest.raises(ValueError, match="shapes"):
        policy.load_state({**state, "b": [[0.0] * 2] * 2})
    with pytest.raises(ValueError, match="non-finite"):
        policy.load_state({**state, "b": [[float("nan")] * 3] * 2})
    with pytest.raises(ValueError, match="counts"):
        policy.load_state({**state, "counts": [-1, 0]})


def test_update_refuses_bad_input():
    policy = LinUCB(ARMS, 2, PolicyConfig("linucb"), seed=0)
    with pytest.raises(KeyError):
        policy.update("nope", np.ones(2), 1.0)
    with pytest.raises(ValueError, match="features"):
        policy.update("a", np.ones(3), 1.0)
    with pytest.raises(ValueError, match="finite"):
        policy.update("a", np.ones(2), float("nan"))
    with pytest.raises(ValueError, match="finite"):
        policy.update("a", np.array([1.0, np.inf]), 1.0)
    with pytest.raises(ValueError, match="features"):
        policy.probabilities(np.ones(3))
    assert policy.stats.counts.tolist() == [0, 0]


def test_arm_names_must_be_unique():
    with pytest.raises(ValueError, match="unique"):
        LinUCB([ARMS[0], ARMS[0]], 2, PolicyConfig("linucb"), seed=0)
