import pytest

from ltrr.bandit.ope.base import Estimate, LoggedBandit


def test_logged_bandit_keeps_float_arrays():
    log = LoggedBandit([1, 2], [0.5, 1], [0, 1])
    assert log.n == 2
    assert log.r.dtype.kind == "f"
    assert log.q_logged is None
    assert log.q_target is None


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"r": [], "p0": [], "p1": []}, "no logged decisions"),
        ({"r": [1.0], "p0": [0.0], "p1": [1.0]}, "p0 must be in"),
        ({"r": [1.0], "p0": [1.5], "p1": [1.0]}, "p0 must be in"),
        ({"r": [1.0], "p0": [1.0], "p1": [-0.1]}, "p1 must be in"),
        ({"r": [1.0, 2.0], "p0": [1.0], "p1": [1.0]}, "p0 has 1 values for 2"),
        ({"r": [float("nan")], "p0": [1.0], "p1": [1.0]}, "r must be finite"),
        ({"r": [1.0], "p0": [1.0], "p1": [1.0], "q_logged": [1.0]}, "both or neither"),
    ],
)
def test_logged_bandit_refuses_bad_columns(kwargs, match):
    with pytest.raises(ValueError, match=match):
        LoggedBandit(**kwargs)


def test_estimate_is_immutable():
    estimate = Estimate("ips", 1.0, 0.5, 1.5, 3.0, 4)
    with pytest.raises(AttributeError):
        estimate.value = 2.0  # type: ignore[misc]
