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
    0.0,  # entity_exact, entity_prefix, entity_similarity: no dictionary
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

    policy = make_policy(LINUCB, ARMS, 18, seed=None)
    with pytest.raises(ValueError, match="expects 18 features, the layout has 19"):
        Agent(policy, FeatureBuilder([("tier", "numeric")], 8))


def test_first_reward_updates_a_and_b():
    a = agent()
    x = np.array(AB)
    a.reward(AB, {"a": 2.0, "b": 0.0}, first=True)
    stats = a.policy.stats
    # A starts at ridge (1) * I; the first event of a decision adds x xᵀ to every arm it credits
    np.testing.assert_allclose(stats.a[0], np.eye(18) + np.outer(x, x))
    np.testing.assert_allclose(stats.a[1], np.eye(18) + np.outer(x, x))
    np.testing.assert_allclose(stats.b[0], 2.0 * x)
    np.testing.assert_allclose(stats.b[1], np.zeros(18))
    assert stats.counts.tolist() == [1, 1]
    assert a.version() == 2


def test_later_rewards_only_add_to_b():
    a = agent()
    x = np.array(AB)
    a.reward(AB, {"a": 1.0}, first=True)
    a.reward(AB, {"a": -0.5}, first=False)
    stats = a.policy.stats
    np.testing.assert_allclose(stats.a[0], np.eye(18) + np.outer(x, x))  # A unchanged
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
    np.testing.assert_allclose(a.policy.stats.b, np.zeros((2, 18)))
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
    np.testing.assert_allclose(stats.a[1], np.eye(18) + np.outer(x, x))
    np.testing.assert_allclose(stats.a[2], np.eye(18))  # the new arm starts from the prior
    np.testing.assert_allclose(stats.b[2], np.zeros(18))
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
    np.testing.assert_allclose(renewed.policy.stats.a[0], np.eye(19))


def test_the_random_stream_continues_across_renew():
    changed = PolicyConfig("linucb", alpha=0.45)
    old = agent(seed=11)
    decide(old)  # takes one draw per arm from the stream
    renewed, _ = old.renew(changed, list(ARMS), [], 8, 11)
    reference = agent(changed, seed=11)
    first, second = decide(reference), decide(reference)
    assert [c.included for c in first.choices] != [c.included for c in second.choices]
    assert decide(renewed) == second  # not `first`, as a freshly seeded stream would give


# --- plan policies ------------------------------------------------------------------------

SAFE = PolicyConfig("safe_plans", epsilon=0.2)
THIRD = 0.2 / 3  # each of the three plans that are not greedy (4 plans for 2 arms)


class FixedDraw:
    """An rng whose one uniform draw is whatever the test says."""

    def __init__(self, u):
        self.u = u

    def random(self):
        return self.u


def plan_agent(u):
    from ltrr.bandit.features import FeatureBuilder
    from ltrr.bandit.policies import make_policy

    return Agent(make_policy(SAFE, ARMS, 18, seed=None), FeatureBuilder([], 8), FixedDraw(u))


def rows(decision):
    return [(c.arm, c.included, c.size) for c in decision.choices]


def test_plan_decision_for_a_fresh_policy():
    # plans for budget 6, depth 2: floors 2 each; all (3, 3), all:half (2, 2), only:a (6, 0),
    # only:b (0, 6); cumulative probabilities 0.8, 0.8667, 0.9333, 1.0
    decision = decide(plan_agent(0.5))
    assert decision.policy == "safe_plans"
    assert decision.plan == "all"
    assert decision.plan_propensity == pytest.approx(0.8)
    assert rows(decision) == [("a", True, 3), ("b", True, 3)]
    # each arm: all + all:half + its own only
    assert [c.propensity for c in decision.choices] == pytest.approx([0.8 + 2 * THIRD] * 2)
    assert decision.features == pytest.approx(tuple(AB))
    assert decision.learnable
    half = decide(plan_agent(0.85))
    assert (half.plan, half.plan_propensity) == ("all:half", pytest.approx(THIRD))
    assert rows(half) == [("a", True, 2), ("b", True, 2)]
    alone = decide(plan_agent(0.95))
    assert (alone.plan, alone.plan_propensity) == ("only:b", pytest.approx(THIRD))
    assert rows(alone) == [("a", False, 0), ("b", True, 6)]
    assert [c.propensity for c in alone.choices] == pytest.approx([0.8 + 2 * THIRD] * 2)


def test_plan_reward_moves_the_greedy_plan_and_the_propensities():
    a = plan_agent(0.5)
    a.reward(AB, {}, first=True, plan="only:a", page=2.0, query="cd")
    stats = a.policy.stats
    x = np.array(AB)
    assert stats.counts.tolist() == [0, 0, 1, 0]
    np.testing.assert_allclose(stats.b[2], 2.0 * x)  # 2.0 above a static estimate of 0
    np.testing.assert_allclose(stats.a[2], np.eye(18) + np.outer(x, x))
    assert a.version() == 1
    decision = decide(a)  # only:a is now greedy: cumulative THIRD, 2 THIRD, 2 THIRD + 0.8, 1
    assert decision.plan == "only:a"
    assert decision.plan_propensity == pytest.approx(0.8)
    assert rows(decision) == [("a", True, 6), ("b", False, 0)]
    # a: all + all:half + only:a; b: all + all:half + only:b
    assert [c.propensity for c in decision.choices] == pytest.approx([0.8 + 2 * THIRD, 0.2])


def test_plan_rewards_first_then_later():
    a = plan_agent(0.5)
    x = np.array(AB)
    a.reward(AB, {"a": 9.0}, first=True, plan="all", page=1.5, query="  AB! ")
    a.reward(AB, {"a": 9.0}, first=False, plan="all", page=0.5, query="  AB! ")
    stats = a.policy.stats
    np.testing.assert_allclose(stats.a[0], np.eye(18) + np.outer(x, x))  # counted once
    np.testing.assert_allclose(stats.b[0], 2.0 * x)  # the page rewards, not the arm rewards
    assert stats.counts.tolist() == [1, 0, 0, 0]
    shown, residual = a.policy.history.get("ab")  # the query is normalised
    assert shown.tolist() == [1.0, 0.0, 0.0, 0.0]
    assert residual.tolist() == pytest.approx([2.0, 0.0, 0.0, 0.0])
    # The arms' credit reaches the policy too: one decision asked a and b, a found twice.
    a.reward(AB, {"a": 0.0, "b": 0.0}, first=True, plan="all", page=0.0, query="x")
    assert a.policy.asked.tolist() == [2, 1]  # the first call's rewards named a only
    assert a.policy.paid.tolist() == [2, 0]


def test_later_zero_page_rewards_are_skipped(monkeypatch):
    a = plan_agent(0.5)
    seen = []
    monkeypatch.setattr(a.policy, "add_plan_reward", lambda *args: seen.append(args))
    a.reward(AB, {"a": 1.0}, first=False, plan="all", page=0.0)
    assert seen == []
    a.reward(AB, {}, first=False, plan="all", page=0.25, query="Q")
    assert [(plan, reward, key) for plan, _, reward, key in seen] == [("all", 0.25, "q")]


@pytest.mark.parametrize("plan", [None, "only:z", "a"])
def test_plan_rewards_without_a_known_plan_are_ignored(plan):
    a = plan_agent(0.5)
    a.reward(AB, {"a": 5.0, "b": 5.0}, first=True, plan=plan, page=3.0, query="ab")
    a.reward(AB, {"a": 5.0}, first=False, plan=plan, page=3.0, query="ab")
    assert a.version() == 0
    np.testing.assert_allclose(a.policy.stats.b, np.zeros((4, 18)))
    assert len(a.policy.history) == 0


def test_plan_decision_uses_the_normalised_query_history():
    a = plan_agent(0.5)
    a.policy.history.add("ab", 3, 10.0)  # only:b earned 10 above the estimate for "ab"
    decision = decide(a, query="AB!")
    assert decision.plan == "only:b"  # advantage 0.5 * 10 for this query
    assert decision.plan_propensity == pytest.approx(0.8)
    assert rows(decision) == [("a", False, 0), ("b", True, 6)]
    # the per-arm marginals are the query's own: b is in all, all:half and only:b
    assert [c.propensity for c in decision.choices] == pytest.approx([0.2, 0.8 + 2 * THIRD])
    assert decide(a, query="cd").plan == "all"  # another query: the static plan


def test_plan_decisions_are_deterministic_for_a_seed():
    first = [decide(agent(SAFE, seed=3)) for _ in range(2)]
    one = agent(SAFE, seed=3)
    stream = [decide(one) for _ in range(40)]
    assert first[0] == first[1] == stream[0]
    assert {d.plan for d in stream} > {"all"}  # mostly "all", sometimes another plan
