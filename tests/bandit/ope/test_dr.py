import numpy as np
import pytest

from ltrr.bandit.ope.base import LoggedBandit
from ltrr.bandit.ope.dr import DoublyRobust

R = [1.0, 0.0, 2.0, 1.0]
P0 = [0.5, 0.25, 0.5, 1.0]
P1 = [1.0, 0.5, 0.25, 0.5]  # w = (2, 2, 0.5, 0.5)


def test_dr_by_hand():
    log = LoggedBandit(R, P0, P1, q_logged=[0.5, 0.5, 1.0, 1.0], q_target=[1.0, 0.5, 1.5, 0.5])
    # r - q_logged = (0.5, -0.5, 1, 0); w * that = (1, -1, 0.5, 0)
    # q_target + ... = (2, -0.5, 2, 0.5), sum 4, over 4
    assert DoublyRobust().value(log) == pytest.approx(1.0)
    assert DoublyRobust().estimate(log, resamples=10).ess == pytest.approx(25 / 8.5)


def test_dr_with_a_zero_model_is_ips():
    log = LoggedBandit(R, P0, P1, q_logged=[0.0] * 4, q_target=[0.0] * 4)
    assert DoublyRobust().value(log) == pytest.approx(0.875)  # IPS: (2 + 0 + 1 + 0.5) / 4


def test_dr_needs_the_reward_model():
    with pytest.raises(ValueError, match="q_logged and q_target"):
        DoublyRobust().value(LoggedBandit(R, P0, P1))


# -- unbiasedness, by simulation ---------------------------------------------------------------
#
# Two arms, x = (1, u) with u ~ U(0, 1), reward = Σ_{j∈S} θ_j·x + N(0, 0.1²).
# Logging raw p = (0.5, 0.5): P({0}) = 0.25 + 0.25 (fallback) = 0.5, P({1}) = 0.25,
# P({0,1}) = 0.25. Target raw p = (0.8, 0.3): P({0}) = 0.8·0.7 + 0.2·0.7 = 0.70,
# P({1}) = 0.2·0.3 = 0.06, P({0,1}) = 0.8·0.3 = 0.24; marginals (0.94, 0.30).
# With E[x] = (1, 0.5): θ0·E[x] = 0.2 + 0.15 = 0.35, θ1·E[x] = 0.1 + 0.2 = 0.3, so the
# target's value is 0.94·0.35 + 0.30·0.3 = 0.329 + 0.09 = 0.419.
#
# Tolerance 0.02: with w ≤ 1.4 and |r - 0.5| ≤ 0.9 (noise past 0.4, four standard deviations,
# is negligible), every DR term below lies in 0.5 ± 1.4·0.9 = [-0.76, 1.76]. A variable in a
# range of 2.52 has a standard deviation of at most 1.26 (half the range), so with n = 40,000
# the standard error is at most 1.26 / 200 = 0.0063, and 0.02 is over 3 of them: a loose
# bound, the actual spread is far smaller. The same tolerance rejects the single-robust
# estimates below, which are off by 0.08 and more.

THETA = np.array([[0.2, 0.3], [0.1, 0.4]])
SETS = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
P_LOGGING = np.array([0.5, 0.25, 0.25])
P_TARGET = np.array([0.70, 0.06, 0.24])
TARGET_MARGINALS = np.array([0.94, 0.30])
TRUTH = 0.419
N = 40_000
TOL = 0.02


@pytest.fixture(scope="module")
def simulation():
    rng = np.random.default_rng(7)
    x = np.column_stack([np.ones(N), rng.uniform(0.0, 1.0, N)])
    which = rng.choice(3, size=N, p=P_LOGGING)
    included = SETS[which]
    per_arm = x @ THETA.T  # θ_j·x
    mean = (included * per_arm).sum(axis=1)
    r = mean + rng.normal(0.0, 0.1, N)
    return {
        "r": r,
        "p0": P_LOGGING[which],
        "p1": P_TARGET[which],
        "q_logged": mean,
        "q_target": per_arm @ TARGET_MARGINALS,
    }


def test_dr_is_unbiased_with_an_exact_model_and_wrong_weights(simulation):
    s = simulation
    wrong = np.ones(N)  # as if the logger had always taken the logged set
    log = LoggedBandit(s["r"], wrong, s["p1"], s["q_logged"], s["q_target"])
    assert DoublyRobust().value(log) == pytest.approx(TRUTH, abs=TOL)


def test_dr_is_unbiased_with_right_weights_and_a_wrong_model(simulation):
    s = simulation
    constant = np.full(N, 0.5)  # off by 0.5 - 0.419 = 0.081 on its own
    log = LoggedBandit(s["r"], s["p0"], s["p1"], constant, constant)
    assert DoublyRobust().value(log) == pytest.approx(TRUTH, abs=TOL)


def test_the_simulation_can_tell_a_biased_estimate(simulation):
    s = simulation
    # Wrong weights alone: E[p1·r] = 0.5·0.70·0.35 + 0.25·0.06·0.3 + 0.25·0.24·0.65 = 0.166
    biased = LoggedBandit(s["r"], np.ones(N), s["p1"], np.zeros(N), np.zeros(N))
    assert abs(DoublyRobust().value(biased) - TRUTH) > 10 * TOL
    # A wrong model with zero weights is the model alone: 0.5, off by 0.081
    blind = LoggedBandit(s["r"], s["p0"], np.zeros(N), np.full(N, 0.5), np.full(N, 0.5))
    assert abs(DoublyRobust().value(blind) - TRUTH) > 4 * TOL
