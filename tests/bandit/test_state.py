import numpy as np
import pytest

from ltrr.bandit.decision import ArmSpec
from ltrr.bandit.policies import make_policy
from ltrr.bandit.policies.base import PolicyConfig
from ltrr.bandit.state import carry_over, layout_digest, shared_statistics

NAMES = ["f0", "f1", "f2"]


def policy(arms=("a", "b"), ridge=2.0):
    specs = [ArmSpec(name, 0, 10) for name in arms]
    return make_policy(PolicyConfig(name="linucb", ridge=ridge), specs, len(NAMES), seed=1)


def test_static_policies_share_nothing():
    static = make_policy(PolicyConfig(name="static"), [ArmSpec("a", 0, 10)], 3, seed=1)
    assert shared_statistics(static, NAMES) is None


def test_delta_is_what_was_added_since_the_last_take():
    p = policy()
    shared = shared_statistics(p, NAMES)
    assert shared.take("a") is None
    x = np.array([1.0, 2.0, 0.0])
    p.update("a", x, 1.0)
    p.add_reward("a", x, 0.5)
    delta = shared.take("a")
    np.testing.assert_allclose(delta.a, np.outer(x, x))
    np.testing.assert_allclose(delta.b, 1.5 * x)
    assert delta.n == 1
    assert shared.take("a") is None  # taken: nothing pending any more
    shared.restore("a", delta)
    assert shared.take("a").n == 1


def test_merge_adds_the_delta_to_the_stored_sum_or_to_the_prior():
    p = policy()
    shared = shared_statistics(p, NAMES)
    x = np.array([1.0, 0.0, 1.0])
    p.update("b", x, 2.0)
    delta = shared.take("b")
    fresh = shared.merged(None, delta)
    np.testing.assert_allclose(fresh["a"], 2.0 * np.eye(3) + np.outer(x, x))
    np.testing.assert_allclose(fresh["b"], 2.0 * x)
    assert fresh["n"] == 1
    again = shared.merged(fresh, delta)
    np.testing.assert_allclose(again["a"], 2.0 * np.eye(3) + 2 * np.outer(x, x))
    assert again["n"] == 2
    other_layout = {**fresh, "layout": layout_digest(["something", "else"])}
    assert not shared.readable(other_layout)
    np.testing.assert_allclose(shared.merged(other_layout, None)["a"], 2.0 * np.eye(3))


def test_install_serves_the_shared_sum_plus_what_is_still_pending():
    p = policy()
    shared = shared_statistics(p, NAMES)
    x, y = np.array([1.0, 0.0, 0.0]), np.array([0.0, 1.0, 0.0])
    stored = shared.merged(None, None)
    stored["a"] = (np.array(stored["a"]) + 5 * np.outer(y, y)).tolist()
    stored["b"] = (3.0 * y).tolist()
    stored["n"] = 5
    p.update("a", x, 1.0)  # pending here, not yet merged
    shared.install("a", stored)
    expected_a = 2.0 * np.eye(3) + 5 * np.outer(y, y) + np.outer(x, x)
    np.testing.assert_allclose(p.stats.a[0], expected_a)
    np.testing.assert_allclose(p.stats.a_inv[0], np.linalg.inv(expected_a))
    np.testing.assert_allclose(p.stats.b[0], 3.0 * y + x)
    assert p.stats.counts[0] == 6
    np.testing.assert_allclose(p.stats.theta[0], np.linalg.inv(expected_a) @ (3.0 * y + x))


def test_sherman_morrison_inverse_matches_the_inverse_of_the_kept_sum():
    p = policy()
    rng = np.random.default_rng(0)
    for _ in range(50):
        p.update("a", rng.normal(size=3), float(rng.normal()))
    np.testing.assert_allclose(p.stats.a_inv[0], np.linalg.inv(p.stats.a[0]), atol=1e-10)


def test_carry_over_keeps_shared_arms_and_starts_new_ones_at_the_prior():
    old = policy(("a", "b"))
    x = np.array([1.0, 1.0, 0.0])
    old.update("a", x, 1.0)
    old.update("b", x, 0.0)
    new = policy(("c", "a"))
    assert carry_over(old, new) == ["a"]
    np.testing.assert_allclose(new.stats.a[1], old.stats.a[0])
    np.testing.assert_allclose(new.stats.b[1], old.stats.b[0])
    np.testing.assert_allclose(new.stats.a[0], 2.0 * np.eye(3))
    assert new.stats.counts.tolist() == [0, 1]


def test_version_counts_updates_and_summary_tells_copies_apart():
    p = policy()
    assert p.version() == 0
    p.update("a", np.ones(3), 1.0)
    p.add_reward("a", np.ones(3), 1.0)  # no new context: the version stays
    assert p.version() == 1
    summary = p.summary()
    assert summary["a"]["n"] == 1
    assert summary["a"]["b_abs_sum"] == pytest.approx(6.0)
    assert summary["b"]["a_trace"] == pytest.approx(6.0)


def plans_policy(arms=("a", "b", "c"), ridge=1.0):
    specs = [ArmSpec(name, 0, 50) for name in arms]
    config = PolicyConfig(name="safe_plans", ridge=ridge, epsilon=0.1)
    return make_policy(config, specs, len(NAMES), seed=1)


def test_safe_plans_shares_one_slot_per_plan_named_apart_from_arms():
    p = plans_policy()
    shared = shared_statistics(p, NAMES)
    assert shared.arms == tuple(f"plan:{name}" for name in p.plans)
    assert shared.arms[:2] == ("plan:all", "plan:all:half")
    x = np.array([1.0, 0.0, 0.0])
    # The static plan learns the page reward: A += xxᵀ, b += 2x.
    p.update_plan("all", x, 2.0)
    delta = shared.take("plan:all")
    np.testing.assert_allclose(delta.a, np.outer(x, x))
    np.testing.assert_allclose(delta.b, 2.0 * x)
    assert delta.n == 1
    assert shared.take("plan:only:a") is None


def test_a_restarted_safe_plans_serves_what_the_shared_document_holds():
    before = plans_policy()
    x = np.array([1.0, 0.0, 0.0])
    for _ in range(3):
        before.update_plan("all", x, 2.0)
    doc = shared_statistics(before, NAMES).merged(
        None, shared_statistics(before, NAMES).take("plan:all")
    )
    after = plans_policy()  # a new process: the prior
    assert after.expected(x)[0] == pytest.approx(0.0)
    shared_statistics(after, NAMES).install("plan:all", doc)
    # ridge 1, three rewards of 2 at x = e0: theta = 6 / (1 + 3) = 1.5
    assert after.expected(x)[0] == pytest.approx(1.5)
    assert after.expected(x)[0] == pytest.approx(before.expected(x)[0])


def test_safe_plans_carries_its_plans_only_over_the_same_arms():
    old = plans_policy()
    x = np.array([1.0, 0.0, 0.0])
    old.update_plan("only:b", x, 1.0)
    same = plans_policy()
    assert carry_over(old, same) == list(old.plans)
    np.testing.assert_allclose(same.stats.b, old.stats.b)
    fewer = plans_policy(arms=("a", "b"))
    assert carry_over(old, fewer) == []
    assert not fewer.stats.b.any()
    assert carry_over(old, policy(arms=("a", "b", "c"))) == []  # another kind of policy
