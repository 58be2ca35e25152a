import numpy as np
import pytest

from ltrr.bandit.ope.reward_model import AdditiveRewardModel, cross_fit

THETA = np.array([[1.0, 2.0], [3.0, 0.0]])
X = np.array([[1.0, 0.5]])  # θ0·x = 1 + 1 = 2, θ1·x = 3


def model_with(theta):
    model = AdditiveRewardModel(*theta.shape)
    model.theta = theta.copy()
    return model


@pytest.mark.parametrize(
    ("included", "expected"),
    [([1, 0], 2.0), ([0, 1], 3.0), ([1, 1], 5.0)],  # the included arms' θ_j·x, added
)
def test_predict_adds_the_included_arms(included, expected):
    assert model_with(THETA).predict(X, [included]) == pytest.approx([expected])


def test_expected_weighs_each_arm_by_its_marginal():
    # 0.5 · 2 + 0.2 · 3 = 1.6
    assert model_with(THETA).expected(X, [[0.5, 0.2]]) == pytest.approx([1.6])


def synthetic(n, seed, noise=0.0):
    rng = np.random.default_rng(seed)
    theta = np.array([[0.5, -1.0, 2.0], [1.5, 0.3, 0.0], [-0.2, 0.8, 1.1]])
    x = np.column_stack([np.ones(n), rng.uniform(-1, 1, (n, 2))])
    included = rng.random((n, 3)) < 0.5
    included[~included.any(axis=1), 0] = True  # never an empty set
    r = ((x @ theta.T) * included).sum(axis=1) + rng.normal(0.0, noise, n)
    return theta, x, included.astype(float), r


@pytest.mark.parametrize("ridge", [0.0, 1e-9])
def test_fit_recovers_theta_without_noise(ridge):
    theta, x, included, r = synthetic(200, seed=1)
    model = AdditiveRewardModel(3, 3, ridge=ridge).fit(x, included, r)
    assert model.theta == pytest.approx(theta, abs=1e-6)


def test_ridge_shrinks_towards_zero():
    theta, x, included, r = synthetic(200, seed=1)
    shrunk = AdditiveRewardModel(3, 3, ridge=1e4).fit(x, included, r)
    assert np.abs(shrunk.theta).sum() < 0.5 * np.abs(theta).sum()


def test_cross_fit_never_predicts_a_row_from_its_own_reward():
    _, x, included, r = synthetic(40, seed=2, noise=0.1)
    marginals = np.full((40, 3), 0.5)
    q_logged, q_target = cross_fit(x, included, r, marginals, seed=3)
    changed = r.copy()
    changed[0] += 100.0
    q_logged2, q_target2 = cross_fit(x, included, changed, marginals, seed=3)
    # row 0 is predicted by the model of the other fold: its own reward cannot move it
    assert q_logged2[0] == q_logged[0]
    assert q_target2[0] == q_target[0]
    # ...while the other fold's rows, predicted by a model that saw row 0, do move
    assert (q_logged2 != q_logged).sum() >= 15


def test_cross_fit_is_exact_on_noiseless_data():
    theta, x, included, r = synthetic(100, seed=4)
    marginals = np.full((100, 3), 0.25)
    q_logged, q_target = cross_fit(x, included, r, marginals, ridge=1e-9, folds=3)
    assert q_logged == pytest.approx(r, abs=1e-6)
    assert q_target == pytest.approx(0.25 * (x @ theta.T).sum(axis=1), abs=1e-6)


def test_cross_fit_needs_enough_rows_and_folds():
    _, x, included, r = synthetic(3, seed=5)
    with pytest.raises(ValueError, match="at least 2 folds"):
        cross_fit(x, included, r, included, folds=1)
    with pytest.raises(ValueError, match="at least 4 decisions"):
        cross_fit(x, included, r, included, folds=4)


def test_shapes_are_checked():
    model = AdditiveRewardModel(2, 2)
    with pytest.raises(ValueError, match="x has 3 features"):
        model.predict([[1.0, 2.0, 3.0]], [[1, 0]])
    with pytest.raises(ValueError, match="included must be 1 rows of 2 arms"):
        model.fit([[1.0, 2.0]], [[1, 0, 1]], [1.0])
    with pytest.raises(ValueError, match="ridge"):
        AdditiveRewardModel(2, 2, ridge=-1.0)
