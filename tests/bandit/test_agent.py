"""The bandit's facade: decisions out as plain values, rewards back in, renewal on reload."""

from __future__ import annotations

import math
from datetime import datetime

import numpy as np
import pytest

from ltrr.bandit.agent import Agent
from ltrr.bandit.decision import ArmSpec
from ltrr.bandit.policies.base import PolicyConfig

NOW = datetime(2026, 1, 1, 12)  # a Thursday (weekday 3), noon
ARMS = [ArmSpec("a", 1, 10), ArmSpec("b", 1, 10)]
LINUCB = PolicyConfig("linucb", alpha=0.5)
# "ab" at noon on a Thursday, by hand: bias; 2 chars / 64; 1 token / 10; no digits, quotes,
# capitals, punctuation or non-ASCII; mean token length (2 - 1 + 1) / 1 / 10; a single token;
# no entities; hour angle 2π·12/24 = π; weekday angle 2π·3/7.
AB = [
    1.0,
    2 / 64,
    0.1,
    0.0,
    0.0,
    0.0,
    0.0,
    0.0,
    0.0,
    0.2,
    1.0,
    0.0,
    0.0,
    math.sin(math.pi),
    math.cos(math.pi),
    math.sin(6 * math.pi / 7),
    math.cos(6 * math.pi / 7),
]


def agent(config=LINUCB, arms=ARMS, fields=(), seed=7):
    return Agent.create(config, arms, list(fields), 8, seed)


def decide(a, query="ab", context=None):
    return a.decide(query, context or {}, NOW, None, budget=6, depth=2)


def test_decide_carries_the_feature_vector_as_plain_floats():
    decision = decide(agent(fields=[("tier", "numeric")]), context={"tier": 0.75})
    assert decision.features == pytest.approx((*AB, 0.75))
    assert all(type(v) is float for v in decision.features)
    assert decision.policy == "linucb"
    assert decision.learnable


def test_decide_is_deterministic_for_a_seed():
    first = [decide(agent(seed=3)) for _ in range(2)]
    one = agent(seed=3)
    stream = [decide(one) for _ in range(20)]
    assert first[0] == first[1] == stream[0]
    # the stream moves on: over 20 draws with P(include) near 1/2 the included sets vary
    assert len({tuple(c.included for c in d.choices) for d in stream}) > 1


def test_decide_checks_the_layout_against_the_policy():
    from ltrr.bandit.features import FeatureBuilder
    from ltrr.bandit.policies import make_policy

    policy = make_policy(LINUCB, ARMS, 17, seed=None)
    with pytest.raises(ValueError, match="expects 17 features, the layout has 18"):
        Agent(policy, FeatureBuilder([("tier", "numeric")], 8))


def test_first_reward_updates_a_and_b():
    a = agent()
    x = np.array(AB)
    a.reward(AB, {"a": 2.0, "b": 0.0}, first=True)
    stats = a.policy.stats
    # A starts at ridge (1) * I; the first event of a decision adds x xᵀ to every arm it credits
    np.testing.assert_allclose(stats.a[0], np.eye(17) + np.outer(x, x))
    np.testing.assert_allclose(stats.a[1], np.eye(17) + np.outer(x, x))
    np.testing.assert_allclose(stats.b[0], 2.0 * x)
    np.testing.assert_allclose(stats.b[1], np.zeros(17))
    assert stats.counts.tolist() == [1, 1]
    assert a.version() == 2


def test_later_rewards_only_add_to_b():
    a = agent()
    x = np.array(AB)
    a.reward(AB, {"a": 1.0}, first=True)
    a.reward(AB, {"a": -0.5}, first=False)
    stats = a.policy.stats
    np.testing.assert_allclose(stats.a[0], np.eye(17) + np.outer(x, x))  # A unchanged
    np.testing.assert_allclose(stats.b[0], 0.5 * x)  # 1.0 x - 0.5 x
    assert stats.counts.tolist() == [1, 0]


def test_later_zero_rewards_are_skipped(monkeypatch):
    a = agent()
    seen = []
    monkeypatch.setattr(a.policy, "add_reward", lambda arm, x, r: seen.append((arm, r)))
    a.reward(AB, {"a": 0.0, "b": 0.25}, first=False)
    assert seen == [("b", 0.25)]


def test_rewards_for_unknown_arms_are_ignored():
    a = agent()
    a.reward(AB, {"dropped": 5.0}, first=True)
    a.reward(AB, {"dropped": 5.0}, first=False)
    assert a.version() == 0
    np.testing.assert_allclose(a.policy.stats.b, np.zeros((2, 17)))
    assert a.arms == frozenset({"a", "b"})


def test_renew_with_nothing_changed_keeps_the_agent():
    a = agent()
    a.reward(AB, {"a": 1.0}, first=True)
    renewed, carried = a.renew(LINUCB, list(ARMS), [], 8, 7)
    assert renewed is a
    assert carried is None
    assert renewed.version() == 1


def test_renew_with_an_added_arm_carries_the_shared_arms():
    a = agent()
    x = np.array(AB)
    a.reward(AB, {"a": 1.0, "b": 3.0}, first=True)
    arms = [*ARMS, ArmSpec("c", 1, 10)]
    renewed, carried = a.renew(LINUCB, arms, [], 8, 7)
    assert renewed is not a
    assert carried == ["a", "b"]
    stats = renewed.policy.stats
    np.testing.assert_allclose(stats.b[0], x)
    np.testing.assert_allclose(stats.b[1], 3.0 * x)
    np.testing.assert_allclose(stats.a[1], np.eye(17) + np.outer(x, x))
    np.testing.assert_allclose(stats.a[2], np.eye(17))  # the new arm starts from the prior
    np.testing.assert_allclose(stats.b[2], np.zeros(17))
    assert stats.counts.tolist() == [1, 1, 0]
    assert renewed.arms == frozenset({"a", "b", "c"})


def test_renew_with_another_layout_carries_nothing():
    a = agent()
    a.reward(AB, {"a": 1.0}, first=True)
    renewed, carried = a.renew(LINUCB, list(ARMS), [("tier", "numeric")], 8, 7)
    assert renewed is not a
    assert carried == []
    assert renewed.feature_names[-1] == "ctx:tier"
    assert renewed.version() == 0
    np.testing.assert_allclose(renewed.policy.stats.a[0], np.eye(18))


def test_the_random_stream_continues_across_renew():
    changed = PolicyConfig("linucb", alpha=0.45)
    old = agent(seed=11)
    decide(old)  # takes one draw per arm from the stream
    renewed, _ = old.renew(changed, list(ARMS), [], 8, 11)
    reference = agent(changed, seed=11)
    first, second = decide(reference), decide(reference)
    assert [c.included for c in first.choices] != [c.included for c in second.choices]
    assert decide(renewed) == second  # not `first`, as a freshly seeded stream would give
