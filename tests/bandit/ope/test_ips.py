import math

import pytest

from ltrr.bandit.ope.base import LoggedBandit
from ltrr.bandit.ope.ips import IPS

# w = p1 / p0 = (1/0.5, 0.5/0.25, 0.25/0.5, 0.5/1) = (2, 2, 0.5, 0.5)
LOG = LoggedBandit(r=[1.0, 0.0, 2.0, 1.0], p0=[0.5, 0.25, 0.5, 1.0], p1=[1.0, 0.5, 0.25, 0.5])


def test_ips_by_hand():
    # w * r = (2, 0, 1, 0.5), sum 3.5, over n = 4
    assert IPS().value(LOG) == pytest.approx(0.875)


def test_ips_estimate_carries_ess_and_n():
    estimate = IPS().estimate(LOG, resamples=200, seed=1)
    assert estimate.name == "ips"
    assert estimate.value == pytest.approx(0.875)
    assert estimate.n == 4
    # (2 + 2 + 0.5 + 0.5)^2 / (4 + 4 + 0.25 + 0.25) = 25 / 8.5
    assert estimate.ess == pytest.approx(25 / 8.5)
    assert estimate.low <= estimate.value <= estimate.high


def test_clipped_ips_by_hand():
    # clip 1: w = (1, 1, 0.5, 0.5), w * r = (1, 0, 1, 0.5), sum 2.5, over 4
    assert IPS(clip=1.0).value(LOG) == pytest.approx(0.625)
    # ESS of the clipped weights: 3^2 / (1 + 1 + 0.25 + 0.25) = 9 / 2.5
    assert IPS(clip=1.0).estimate(LOG, resamples=10).ess == pytest.approx(3.6)


def test_ips_of_a_target_that_takes_no_logged_set_is_zero():
    log = LoggedBandit(r=[1.0, 2.0, 3.0], p0=[0.5, 0.5, 0.5], p1=[0.0, 0.0, 0.0])
    estimate = IPS().estimate(log, resamples=50)
    assert (estimate.value, estimate.low, estimate.high, estimate.ess) == (0.0, 0.0, 0.0, 0.0)


@pytest.mark.parametrize("clip", [0.0, -1.0, math.inf, math.nan])
def test_clip_must_be_positive(clip):
    with pytest.raises(ValueError, match="clip"):
        IPS(clip=clip)
