from collections.abc import Sequence
from typing import ClassVar

import numpy as np
import pytest

from ltrr.bandit.decision import ArmSpec
from ltrr.bandit.ope.evaluate import LoggedDecision, evaluate
from ltrr.bandit.policies import make_policy
from ltrr.bandit.policies.base import Policy, PolicyConfig

ARMS = [ArmSpec("lexical", 1, 10), ArmSpec("popular", 1, 10)]


class Fixed(Policy):
    """A target whose raw probabilities are whatever the test says."""

    name: ClassVar[str] = "fixed"

    def __init__(self, p: Sequence[float]):
        super().__init__(ARMS, 2, PolicyConfig("static"), seed=None)
        self.p = np.array(p, dtype=np.float64)
        self.seen: list[list[float]] = []

    def probabilities(self, x):
        self.seen.append(x.tolist())
        return self.p.copy(), np.zeros(2)

    def update(self, arm, x, reward):
        pass


# Logged with raw p = (0.5, 0.5): marginals (0.5 + 0.5·0.5, 0.5) = (0.75, 0.5), and
# P({0}) = 0.25 + 0.25 = 0.5, P({1}) = 0.25, P({0,1}) = 0.25.
MARGINALS = (0.75, 0.5)


def decision(included, reward, x=(1.0, 0.0)):
    return LoggedDecision(np.array(x), included, MARGINALS, reward)


LOG = [
    decision((True, False), 1.0, (1.0, 0.1)),
    decision((False, True), 2.0, (1.0, 0.2)),
    decision((True, True), 1.0, (1.0, 0.3)),
]


def by_name(evaluation):
    return {e.name: e for e in evaluation.estimates}


def test_estimates_for_a_stochastic_target_by_hand():
    # Target raw p = (0.8, 0.3): P({0}) = 0.8·0.7 + 0.2·0.7 = 0.70, P({1}) = 0.2·0.3 = 0.06,
    # P({0,1}) = 0.24. Weights: 0.70/0.5 = 1.4, 0.06/0.25 = 0.24, 0.24/0.25 = 0.96.
    target = Fixed([0.8, 0.3])
    result = evaluate(LOG, target, resamples=200, seed=1)
    estimates = by_name(result)
    assert list(estimates) == ["ips", "snips", "dr"]
    # IPS: (1.4·1 + 0.24·2 + 0.96·1) / 3 = 2.84 / 3
    assert estimates["ips"].value == pytest.approx(2.84 / 3)
    # SNIPS: 2.84 / (1.4 + 0.24 + 0.96) = 2.84 / 2.6
    assert estimates["snips"].value == pytest.approx(2.84 / 2.6)
    # ESS: 2.6² / (1.96 + 0.0576 + 0.9216) = 6.76 / 2.9392
    assert estimates["ips"].ess == pytest.approx(6.76 / 2.9392)
    assert np.isfinite(estimates["dr"].value)
    # logged average (1 + 2 + 1) / 3
    assert result.logged.value == pytest.approx(4 / 3)
    assert result.logged.name == "logged"
    assert result.zero_support == 0.0
    assert result.n == 3
    # the target saw each decision's own context
    assert target.seen == [[1.0, 0.1], [1.0, 0.2], [1.0, 0.3]]


def test_a_static_target_and_its_zero_support():
    # static {lexical}: raw p = (1, 0), so P({0}) = 1 and every other set has probability 0.
    target = make_policy(PolicyConfig("static", include=("lexical",)), ARMS, 2, seed=0)
    log = [*LOG, decision((True, False), 0.5)]
    result = evaluate(log, target, resamples=100)
    estimates = by_name(result)
    # w = (1/0.5, 0, 0, 1/0.5) = (2, 0, 0, 2); IPS = (2·1 + 2·0.5) / 4 = 0.75
    assert estimates["ips"].value == pytest.approx(0.75)
    # SNIPS = 3 / 4
    assert estimates["snips"].value == pytest.approx(0.75)
    assert estimates["ips"].ess == pytest.approx(2.0)  # 4² / 8
    assert result.zero_support == pytest.approx(0.5)  # 2 of 4 logged sets


def test_same_seed_same_evaluation():
    a = evaluate(LOG, Fixed([0.8, 0.3]), resamples=100, seed=3)
    b = evaluate(LOG, Fixed([0.8, 0.3]), resamples=100, seed=3)
    assert a == b


def test_an_inconsistent_log_is_refused():
    # arm 0 logged with propensity 0 yet included: raw p = (0, 1), P({0}) = 0
    bad = LoggedDecision(np.array([1.0, 0.0]), (True, False), (0.0, 1.0), 1.0)
    with pytest.raises(ValueError, match=r"decision 1: .* no chance"):
        evaluate([LOG[0], bad], Fixed([0.5, 0.5]))


@pytest.mark.parametrize(
    ("bad", "match"),
    [
        (LoggedDecision(np.array([1.0]), (True, False), MARGINALS, 1.0), "expected 2 finite"),
        (LoggedDecision(np.array([1.0, 0.0]), (True,), (0.5,), 1.0), "1 inclusion flags"),
        (LoggedDecision(np.array([1.0, 0.0]), (False, False), MARGINALS, 1.0), "no arm"),
        (LoggedDecision(np.array([1.0, 0.0]), (True, False), MARGINALS, float("nan")), "reward"),
    ],
)
def test_malformed_decisions_are_refused(bad, match):
    with pytest.raises(ValueError, match=match):
        evaluate([LOG[0], bad], Fixed([0.5, 0.5]))


def test_an_empty_log_is_refused():
    with pytest.raises(ValueError, match="no logged decisions"):
        evaluate([], Fixed([0.5, 0.5]))
