import math

import pytest

from ltrr.bandit.ope.base import LoggedBandit
from ltrr.bandit.ope.snips import SNIPS

# w = (2, 2, 0.5, 0.5), as in test_ips
LOG = LoggedBandit(r=[1.0, 0.0, 2.0, 1.0], p0=[0.5, 0.25, 0.5, 1.0], p1=[1.0, 0.5, 0.25, 0.5])


def test_snips_by_hand():
    # Σ w r = 2 + 0 + 1 + 0.5 = 3.5; Σ w = 5
    assert SNIPS().value(LOG) == pytest.approx(0.7)


def test_clipped_snips_by_hand():
    # clip 1: w = (1, 1, 0.5, 0.5), Σ w r = 2.5, Σ w = 3
    assert SNIPS(clip=1.0).value(LOG) == pytest.approx(2.5 / 3)


def test_snips_ignores_a_constant_added_to_every_reward():
    # Σ w (r + 10) / Σ w = 0.7 + 10
    shifted = LoggedBandit(r=LOG.r + 10.0, p0=LOG.p0, p1=LOG.p1)
    assert SNIPS().value(shifted) == pytest.approx(10.7)


def test_snips_without_support_is_undefined():
    log = LoggedBandit(r=[1.0, 2.0], p0=[0.5, 0.5], p1=[0.0, 0.0])
    estimate = SNIPS().estimate(log, resamples=50)
    assert math.isnan(estimate.value)
    assert math.isnan(estimate.low)
    assert math.isnan(estimate.high)
    assert estimate.ess == 0.0


def test_snips_estimate_interval_brackets_the_value():
    estimate = SNIPS().estimate(LOG, resamples=500, seed=4)
    assert estimate.name == "snips"
    assert estimate.low <= 0.7 <= estimate.high
