import pytest

from ltrr.bandit.ope.ess import effective_sample_size


@pytest.mark.parametrize(
    ("weights", "expected"),
    [
        ([2.0, 2.0, 0.5, 0.5], 25 / 8.5),  # 5^2 / (4 + 4 + 0.25 + 0.25)
        ([3.0, 3.0, 3.0], 3.0),  # 9^2 / 27: equal weights are worth every decision
        ([0.0, 0.0, 5.0], 1.0),  # 5^2 / 25: all the weight on one decision
        ([1.0, 0.0], 1.0),
        ([0.0, 0.0], 0.0),  # no support at all
    ],
)
def test_ess_by_hand(weights, expected):
    assert effective_sample_size(weights) == pytest.approx(expected)


@pytest.mark.parametrize("bad", [[-1.0, 1.0], [float("inf")], [[1.0]]])
def test_ess_refuses_bad_weights(bad):
    with pytest.raises(ValueError, match="weights must"):
        effective_sample_size(bad)
