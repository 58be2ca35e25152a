from statistics import NormalDist

import numpy as np
import pytest

from ltrr.bandit.decision import ArmSpec
from ltrr.bandit.policies.base import PolicyConfig
from ltrr.bandit.policies.thompson import LinearThompson, exceed_probability

ARMS = [ArmSpec("a", 0, 10, cost=0.25), ArmSpec("b", 0, 10, cost=0.6)]


def test_fresh_probability_is_closed_form():
    config = PolicyConfig("thompson", v=0.5, ridge=1.0, min_probability=0.0)
    policy = LinearThompson(ARMS, 2, config, seed=0)
    p, score = policy.probabilities(np.array([1.0, 0.0]))
    # s ~ N(0, 0.5^2): P(s > 0.25) = Phi(-0.5), P(s > 0.6) = Phi(-1.2)
    assert p.tolist() == pytest.approx([0.3085375387, 0.1150696702])
    assert score.tolist() == [0.0, 0.0]  # the posterior mean


def test_probability_matches_sampling_the_posterior():
    rng = np.random.default_rng(11)
    config = PolicyConfig("thompson", v=0.8, ridge=1.0, min_probability=0.0)
    policy = LinearThompson(ARMS, 3, config, seed=0)
    true_theta = np.array([0.3, -0.2, 0.5])
    for _ in range(8):
        x = rng.random(3)
        policy.update("a", x, float(x @ true_theta + rng.normal(scale=0.1)))
        policy.update("b", rng.random(3), float(rng.normal(loc=0.4, scale=0.3)))
    x = np.array([0.6, 0.3, 0.9])
    p, mean = policy.probabilities(x)
    n = 10_000
    for arm in range(2):
        # linear TS: theta ~ N(theta_hat, v^2 A^-1), include when theta'x beats the cost
        theta = rng.multivariate_normal(
            policy.stats.theta[arm], 0.8**2 * policy.stats.a_inv[arm], size=n
        )
        frequency = float(np.mean(theta @ x > ARMS[arm].cost))
        assert 0.05 < p[arm] < 0.95  # a case where the check is informative
        assert frequency == pytest.approx(p[arm], abs=0.015)
        assert mean[arm] == pytest.approx(policy.stats.theta[arm] @ x)


def test_clipped_to_the_floor():
    config = PolicyConfig("thompson", v=0.1, ridge=1.0, min_probability=0.05)
    policy = LinearThompson(ARMS, 2, config, seed=0)
    p, _ = policy.probabilities(np.array([1.0, 0.0]))
    assert p.tolist() == pytest.approx([0.05, 0.05])  # 2.5 and 6 sd below the cost
    for _ in range(100):
        policy.update("a", np.array([1.0, 0.0]), 1.0)
    p, _ = policy.probabilities(np.array([1.0, 0.0]))
    assert p[0] == pytest.approx(0.95)


def test_no_spread_means_the_mean_decides():
    config = PolicyConfig("thompson", v=0.0, min_probability=0.0)
    policy = LinearThompson(ARMS, 2, config, seed=0)
    policy.update("a", np.array([1.0, 0.0]), 1.0)  # theta_a = [0.5, 0]
    p, _ = policy.probabilities(np.array([1.0, 0.0]))
    assert p.tolist() == [1.0, 0.0]
    assert exceed_probability(0.0, 0.0) == 0.0  # s == cost does not beat it


def test_exceed_probability():
    assert exceed_probability(0.0, 1.0) == pytest.approx(0.5)
    assert exceed_probability(1.0, 2.0) == pytest.approx(NormalDist().cdf(0.5))
    assert exceed_probability(-30.0, 1.0) > 0.0  # erfc keeps the far tail
