import numpy as np
import pytest

from ltrr.bandit.decision import ArmSpec
from ltrr.bandit.policies.base import PolicyConfig
from ltrr.bandit.policies.epsilon_greedy import EpsilonGreedy

ARMS = [ArmSpec("a", 0, 10, cost=0.0), ArmSpec("b", 0, 10, cost=0.5)]


def test_greedy_or_explore():
    config = PolicyConfig("epsilon_greedy", epsilon=0.2, min_probability=0.01)
    policy = EpsilonGreedy(ARMS, 2, config, seed=0)
    p, score = policy.probabilities(np.array([1.0, 0.0]))
    # theta = 0: arm a's estimate 0 >= cost 0 (greedy include), arm b's 0 < 0.5
    assert p.tolist() == pytest.approx([0.9, 0.1])
    assert score.tolist() == [0.0, 0.0]


def test_learning_flips_the_greedy_choice():
    config = PolicyConfig("epsilon_greedy", epsilon=0.2, min_probability=0.01, ridge=1.0)
    policy = EpsilonGreedy(ARMS, 2, config, seed=0)
    for _ in range(3):
        policy.update("b", np.array([1.0, 0.0]), 1.0)
    # A = 4, b = 3: theta = 0.75 > 0.5
    p, score = policy.probabilities(np.array([1.0, 0.0]))
    assert score[1] == pytest.approx(0.75)
    assert p[1] == pytest.approx(0.9)


def test_floor_wins_over_a_small_epsilon():
    config = PolicyConfig("epsilon_greedy", epsilon=0.02, min_probability=0.1)
    policy = EpsilonGreedy(ARMS, 2, config, seed=0)
    p, _ = policy.probabilities(np.array([1.0, 0.0]))
    assert p.tolist() == pytest.approx([0.9, 0.1])


def test_pure_greedy():
    config = PolicyConfig("epsilon_greedy", epsilon=0.0, min_probability=0.0)
    p, _ = EpsilonGreedy(ARMS, 2, config, seed=0).probabilities(np.array([1.0, 0.0]))
    assert p.tolist() == [1.0, 0.0]
