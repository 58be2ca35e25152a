"""Off-policy estimates of a target policy's value from logged decisions."""

from __future__ import annotations

from ltrr.bandit.ope.base import Estimate, Estimator, LoggedBandit
from ltrr.bandit.ope.bootstrap import bootstrap_interval
from ltrr.bandit.ope.dr import DoublyRobust
from ltrr.bandit.ope.ess import effective_sample_size
from ltrr.bandit.ope.evaluate import Evaluation, LoggedDecision, evaluate
from ltrr.bandit.ope.ips import IPS
from ltrr.bandit.ope.propensity import marginal_inclusion, raw_from_marginals, set_probability
from ltrr.bandit.ope.reward_model import AdditiveRewardModel, cross_fit
from ltrr.bandit.ope.snips import SNIPS

__all__ = [
    "IPS",
    "SNIPS",
    "AdditiveRewardModel",
    "DoublyRobust",
    "Estimate",
    "Estimator",
    "Evaluation",
    "LoggedBandit",
    "LoggedDecision",
    "bootstrap_interval",
    "cross_fit",
    "effective_sample_size",
    "evaluate",
    "marginal_inclusion",
    "raw_from_marginals",
    "set_probability",
]
