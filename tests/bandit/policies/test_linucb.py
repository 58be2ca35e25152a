import math

import numpy as np
import pytest

from ltrr.bandit.decision import ArmSpec
from ltrr.bandit.policies.base import PolicyConfig
from ltrr.bandit.policies.linucb import LinUCB, squash

ARMS = [ArmSpec("a", 0, 10, cost=0.5), ArmSpec("b", 0, 10, cost=0.0)]
CONFIG = PolicyConfig("linucb", alpha=1.0, ridge=1.0, temperature=0.1, min_probability=0.05)


def sigmoid(z: float) -> float:
    return 1.0 / (1.0 + math.exp(-z))


def inclusion(score: float, cost: float) -> float:
    return 0.05 + 0.9 * sigmoid((score - cost) / 0.1)


def test_fresh_policy_is_pure_optimism():
    policy = LinUCB(ARMS, 2, CONFIG, seed=0)
    p, score = policy.probabilities(np.array([1.0, 0.0]))
    # theta = 0, x'A^-1 x = 1: score = 0 + 1 * 1
    assert score.tolist() == pytest.approx([1.0, 1.0])
    assert p.tolist() == pytest.approx([inclusion(1.0, 0.5), inclusion(1.0, 0.0)])


def test_scores_after_one_and_two_updates():
    policy = LinUCB(ARMS, 2, CONFIG, seed=0)
    policy.update("a", np.array([1.0, 0.0]), 1.0)
    # A = [[2, 0], [0, 1]], b = [1, 0], theta = [0.5, 0]
    _, score = policy.probabilities(np.array([1.0, 1.0]))
    assert score[0] == pytest.approx(0.5 + math.sqrt(1.5))
    assert score[1] == pytest.approx(math.sqrt(2.0))  # arm b untouched

    policy.update("a", np.array([1.0, 1.0]), 0.0)
    # A = [[3, 1], [1, 2]], A^-1 = [[2, -1], [-1, 3]] / 5, b = [1, 0], theta = [0.4, -0.2]
    p, score = policy.probabilities(np.array([1.0, 0.0]))
    assert score[0] == pytest.approx(0.4 + math.sqrt(0.4))
    assert p[0] == pytest.approx(inclusion(0.4 + math.sqrt(0.4), 0.5))
    _, score = policy.probabilities(np.array([0.0, 1.0]))
    assert score[0] == pytest.approx(-0.2 + math.sqrt(0.6))

    a = np.array([[3.0, 1.0], [1.0, 2.0]])
    direct = np.linalg.inv(a)
    np.testing.assert_allclose(policy.stats.a_inv[0], direct)
    np.testing.assert_allclose(policy.stats.theta[0], direct @ np.array([1.0, 0.0]))


def test_alpha_scales_the_bonus_only():
    config = PolicyConfig("linucb", alpha=0.0, ridge=1.0)
    policy = LinUCB(ARMS, 2, config, seed=0)
    policy.update("a", np.array([1.0, 0.0]), 1.0)
    _, score = policy.probabilities(np.array([1.0, 1.0]))
    assert score.tolist() == pytest.approx([0.5, 0.0])


def test_probability_stays_within_the_floor():
    policy = LinUCB(ARMS, 2, CONFIG, seed=0)
    p, _ = policy.probabilities(np.array([1000.0, 0.0]))
    assert p.tolist() == pytest.approx([0.95, 0.95])
    for _ in range(50):
        policy.update("a", np.array([1.0, 0.0]), -10.0)
    p, _ = policy.probabilities(np.array([1.0, 0.0]))
    assert p[0] == pytest.approx(0.05)


def test_squash_is_symmetric_and_overflow_free():
    margin = np.array([-1e6, -0.1, 0.0, 0.1, 1e6])
    p = squash(margin, 0.1, 0.05)
    assert p.tolist() == pytest.approx(
        [0.05, 0.05 + 0.9 * sigmoid(-1), 0.5, 0.05 + 0.9 * sigmoid(1), 0.95]
    )
