"""The plain values a policy's decision hands the proxy: choices, sizes and what is learnable."""

from __future__ import annotations

import pytest

from ltrr.bandit.decision import FALLBACK_POLICY, ArmChoice, Decision


def choices():
    return (
        ArmChoice("lexical", True, 12, 0.8, 1.5),
        ArmChoice("dense", False, 7, 0.3, 0.2),  # a size on an excluded arm counts for nothing
        ArmChoice("popular", True, 5, 1.0, 0.0),
    )


def test_outcome_probability_is_the_propensity_of_what_happened():
    lexical, dense, popular = choices()
    assert lexical.outcome_probability == 0.8
    assert dense.outcome_probability == pytest.approx(0.7)  # excluded: 1 - 0.3
    assert popular.outcome_probability == 1.0
    assert ArmChoice("never", False, 0, 0.0, 0.0).outcome_probability == 1.0


def test_included_keeps_catalog_order_and_total_size_counts_only_them():
    decision = Decision(choices(), policy="linucb")
    assert [c.arm for c in decision.included] == ["lexical", "popular"]
    assert decision.total_size == 12 + 5
    assert Decision((), policy="linucb").total_size == 0
    assert Decision((), policy="linucb").included == ()


def test_choice_by_arm_name_and_unknown_arm():
    decision = Decision(choices(), policy="linucb")
    assert decision.choice("dense") == ArmChoice("dense", False, 7, 0.3, 0.2)
    with pytest.raises(KeyError, match="memory"):
        decision.choice("memory")


@pytest.mark.parametrize(
    ("policy", "features", "learnable", "is_fallback"),
    [
        ("linucb", (1.0, 0.5), True, False),
        ("linucb", None, False, False),  # no features: nothing to hand back with the rewards
        (f"{FALLBACK_POLICY} (policy error)", None, False, True),
        (f"{FALLBACK_POLICY} (embedder error)", (1.0, 0.5), False, True),
        ("static", (), True, False),  # an empty layout is still a layout
    ],
)
def test_learnable_and_is_fallback(policy, features, learnable, is_fallback):
    decision = Decision(choices(), policy=policy, features=features)
    assert decision.learnable is learnable
    assert decision.is_fallback is is_fallback


def test_fallback_policy_name_and_default_features():
    assert FALLBACK_POLICY == "static_fallback"
    assert Decision(choices(), policy="thompson").features is None
