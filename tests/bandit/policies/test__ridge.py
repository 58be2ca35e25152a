import numpy as np
import pytest

from ltrr.bandit.policies._ridge import RidgeStatistics

# Two observations on arm 0, ridge 1, in 2 dimensions:
#   x1 = (1, 0), r = 1;  x2 = (1, 1), r = 2
#   A = I + x1 x1ᵀ + x2 x2ᵀ = [[3, 1], [1, 2]]      b = 1·x1 + 2·x2 = (3, 2)
#   A⁻¹ = [[2, -1], [-1, 3]] / 5 = [[0.4, -0.2], [-0.2, 0.6]]
#   θ = A⁻¹ b = (1.2 - 0.4, -0.6 + 1.2) = (0.8, 0.6)
X1, X2 = np.array([1.0, 0.0]), np.array([1.0, 1.0])


def two_updates() -> RidgeStatistics:
    stats = RidgeStatistics(2, 2, ridge=1.0)
    stats.update(0, X1, 1.0)
    stats.update(0, X2, 2.0)
    return stats


def test_a_b_and_theta_after_two_observations():
    stats = two_updates()
    np.testing.assert_allclose(stats.a[0], [[3.0, 1.0], [1.0, 2.0]])
    np.testing.assert_allclose(stats.b[0], [3.0, 2.0])
    np.testing.assert_allclose(stats.a_inv[0], [[0.4, -0.2], [-0.2, 0.6]])
    np.testing.assert_allclose(stats.theta[0], [0.8, 0.6])
    assert stats.counts.tolist() == [2, 0]
    # the other arm is still at the prior
    np.testing.assert_array_equal(stats.a[1], np.eye(2))
    np.testing.assert_array_equal(stats.b[1], [0.0, 0.0])


def test_a_third_observation():
    # x3 = (0, 1), r = -1:  A = [[3, 1], [1, 3]], b = (3, 1)
    # A⁻¹ = [[3, -1], [-1, 3]] / 8,  θ = (9 - 1, -3 + 3) / 8 = (1, 0)
    stats = two_updates()
    stats.update(0, np.array([0.0, 1.0]), -1.0)
    np.testing.assert_allclose(stats.a[0], [[3.0, 1.0], [1.0, 3.0]])
    np.testing.assert_allclose(stats.b[0], [3.0, 1.0])
    np.testing.assert_allclose(stats.a_inv[0], [[0.375, -0.125], [-0.125, 0.375]])
    np.testing.assert_allclose(stats.theta[0], [1.0, 0.0], atol=1e-12)
    assert stats.counts[0] == 3


def test_ridge_scales_the_prior():
    # ridge 2, x = (2, 0), r = 0.5:  A = [[6, 0], [0, 2]], b = (1, 0), θ = (1/6, 0)
    stats = RidgeStatistics(1, 2, ridge=2.0)
    np.testing.assert_array_equal(stats.a_inv[0], [[0.5, 0.0], [0.0, 0.5]])
    stats.update(0, np.array([2.0, 0.0]), 0.5)
    np.testing.assert_allclose(stats.a[0], [[6.0, 0.0], [0.0, 2.0]])
    np.testing.assert_allclose(stats.a_inv[0], [[1 / 6, 0.0], [0.0, 0.5]])
    np.testing.assert_allclose(stats.theta[0], [1 / 6, 0.0])
    with pytest.raises(ValueError, match="ridge must be > 0, got 0"):
        RidgeStatistics(1, 2, ridge=0)


def test_moments_are_the_mean_and_spread_per_arm():
    stats = two_updates()
    # x = (1, 1): mean 0.8 + 0.6 = 1.4; spread 0.4 - 0.2 - 0.2 + 0.6 = 0.6
    # arm 1 at the prior: mean 0, spread xᵀx / ridge = 2
    mean, spread = stats.moments(np.array([1.0, 1.0]))
    np.testing.assert_allclose(mean, [1.4, 0.0])
    np.testing.assert_allclose(spread, [0.6, 2.0])
    mean, spread = stats.moments(np.array([0.0, 1.0]))
    np.testing.assert_allclose(mean, [0.6, 0.0])
    np.testing.assert_allclose(spread, [0.6, 1.0])


def test_add_reward_changes_only_b():
    # b = (3, 2) + 1·(1, 1) = (4, 3);  θ = A⁻¹ b = (1.6 - 0.6, -0.8 + 1.8) = (1, 1)
    stats = two_updates()
    a_before, a_inv_before = stats.a.copy(), stats.a_inv.copy()
    stats.add_reward(0, X2, 1.0)
    np.testing.assert_array_equal(stats.a, a_before)
    np.testing.assert_array_equal(stats.a_inv, a_inv_before)
    np.testing.assert_allclose(stats.b[0], [4.0, 3.0])
    np.testing.assert_allclose(stats.theta[0], [1.0, 1.0])
    assert stats.counts.tolist() == [2, 0]
    assert stats.pending_n.tolist() == [2, 0]
    np.testing.assert_allclose(stats.pending_b[0], [4.0, 3.0])
    np.testing.assert_array_equal(stats.pending_a[0], [[2.0, 1.0], [1.0, 1.0]])


def test_take_pending_returns_the_delta_once_and_restore_gives_it_back():
    stats = two_updates()
    assert stats.take_pending(1) is None
    taken = stats.take_pending(0)
    assert taken is not None
    delta_a, delta_b, n = taken
    np.testing.assert_array_equal(delta_a, [[2.0, 1.0], [1.0, 1.0]])
    np.testing.assert_array_equal(delta_b, [3.0, 2.0])
    assert n == 2
    assert stats.take_pending(0) is None  # reset
    # the statistics themselves are untouched by taking
    np.testing.assert_allclose(stats.a[0], [[3.0, 1.0], [1.0, 2.0]])
    stats.update(0, X1, 1.0)  # a new delta: A += x1 x1ᵀ, b += x1
    stats.restore_pending(0, taken)
    again = stats.take_pending(0)
    assert again is not None
    np.testing.assert_array_equal(again[0], [[3.0, 1.0], [1.0, 1.0]])
    np.testing.assert_array_equal(again[1], [4.0, 2.0])
    assert again[2] == 3


def test_a_reward_alone_is_a_pending_delta():
    stats = RidgeStatistics(1, 2, ridge=1.0)
    stats.add_reward(0, X1, 0.5)
    taken = stats.take_pending(0)
    assert taken is not None
    np.testing.assert_array_equal(taken[0], np.zeros((2, 2)))
    np.testing.assert_array_equal(taken[1], [0.5, 0.0])
    assert taken[2] == 0


def test_install_adds_what_is_still_pending():
    # shared A = 5·I, b = (1, 1), count 4; pending here: x = (1, 0), r = 1
    #   A = [[6, 0], [0, 5]], b = (2, 1), θ = (1/3, 1/5), count 5
    stats = RidgeStatistics(1, 2, ridge=1.0)
    stats.update(0, X1, 1.0)
    stats.install(0, 5.0 * np.eye(2), np.array([1.0, 1.0]), 4)
    np.testing.assert_allclose(stats.a[0], [[6.0, 0.0], [0.0, 5.0]])
    np.testing.assert_allclose(stats.b[0], [2.0, 1.0])
    np.testing.assert_allclose(stats.a_inv[0], [[1 / 6, 0.0], [0.0, 0.2]])
    np.testing.assert_allclose(stats.theta[0], [1 / 3, 0.2])
    assert stats.counts[0] == 5
    assert stats.pending_n[0] == 1  # still to merge


def test_load_state_recomputes_theta_and_clears_pending():
    stats = RidgeStatistics(1, 2, ridge=1.0)
    stats.update(0, X1, 1.0)
    stats.load_state({"a": [[[3.0, 1.0], [1.0, 2.0]]], "b": [[3.0, 2.0]], "counts": [2]})
    np.testing.assert_allclose(stats.theta[0], [0.8, 0.6])
    np.testing.assert_allclose(stats.a_inv[0], [[0.4, -0.2], [-0.2, 0.6]])
    assert stats.take_pending(0) is None
    assert stats.state() == {"a": [[[3.0, 1.0], [1.0, 2.0]]], "b": [[3.0, 2.0]], "counts": [2]}
