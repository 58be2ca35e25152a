"""Decide: the agent's decision for a search, or the catalog's static plan when it fails."""

from __future__ import annotations

import math
from datetime import datetime

import pytest

from ltrr.bandit.decision import ArmChoice
from ltrr.plugin.runtime.registry import CatalogRegistry
from ltrr.plugin.serve.decide import decide, static_decision
from ltrr.plugin.serve.intercept import SearchRequest

CATALOG = """\
target: music
budget: 30
policy: {name: static, include: [a, b]}
arms:
  - name: a
    template: multi_match.json.j2
    params: {fields: [name]}
    size: {min: 1, max: 20}
  - name: b
    template: multi_match.json.j2
    params: {fields: [tags]}
    size: {min: 1, max: 20}
  - name: c
    template: multi_match.json.j2
    params: {fields: [genre]}
    size: {min: 1, max: 5}
fusion: {method: rrf, k: 60}
fallback: [{arm: a, size: 3}, {arm: c, size: 4}]
"""

NOW = datetime(2026, 1, 1, 12)  # a Thursday, noon


@pytest.fixture
def runtime(tmp_path):
    path = tmp_path / "music.yml"
    path.write_text(CATALOG)
    registry = CatalogRegistry([path], seed=1)
    registry.load_all()
    (runtime,) = registry.runtimes()
    return runtime


@pytest.mark.parametrize(
    ("depth", "sizes"),
    [
        # a: max(3, min(10, 20)) = 10; c: max(4, min(10, 5)) = 5 (capped by its max_size)
        (10, (10, 0, 5)),
        # a: max(3, min(2, 20)) = 3; c: max(4, min(2, 5)) = 4 (the fallback sizes win)
        (2, (3, 0, 4)),
        (0, (3, 0, 4)),
    ],
)
def test_static_decision_sizes(runtime, depth, sizes):
    decision = static_decision(runtime.catalog, depth, "embedder error")
    assert tuple(c.size for c in decision.choices) == sizes


def test_static_decision_propensities_and_policy_name(runtime):
    decision = static_decision(runtime.catalog, 10, "policy error")
    assert decision.choices == (
        ArmChoice("a", True, 10, 1.0, 0.0),
        ArmChoice("b", False, 0, 0.0, 0.0),
        ArmChoice("c", True, 5, 1.0, 0.0),
    )
    assert decision.policy == "static_fallback (policy error)"
    assert decision.features is None
    assert decision.is_fallback
    assert not decision.learnable


def test_decide_returns_the_agents_decision_with_its_features(runtime):
    decided = decide(runtime, SearchRequest("music", "ab", size=4, from_=2), NOW)
    assert decided.fallback is None
    decision = decided.decision
    assert decision.policy == "static"
    # static include [a, b]: floors max(1, min(depth 6, 20)) = 6 each, 18 of the budget of 30
    # left split equally (scores 1 and 1) = 9 each; c is out
    assert [(c.arm, c.included, c.size, c.propensity) for c in decision.choices] == [
        ("a", True, 15, 1.0),
        ("b", True, 15, 1.0),
        ("c", False, 0, 0.0),
    ]
    # the 18 base features of "ab" at noon on a Thursday, by hand (no entity dictionary)
    shape = (1.0, 2 / 64, 0.1, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.2, 1.0, 0.0, 0.0, 0.0)
    clock = (0.0, -1.0, math.sin(6 * math.pi / 7), math.cos(6 * math.pi / 7))
    assert decision.features == pytest.approx((*shape, *clock))
    assert decision.learnable


def test_a_policy_that_raises_gives_the_static_plan_and_the_reason(runtime, monkeypatch):
    def broken(_x):
        raise RuntimeError("singular matrix")

    monkeypatch.setattr(runtime.agent.policy, "probabilities", broken)
    decided = decide(runtime, SearchRequest("music", "ab", size=10), NOW)
    assert decided.fallback == "policy error: singular matrix"
    assert decided.decision == static_decision(runtime.catalog, 10, "policy error")
    assert [c.size for c in decided.decision.choices] == [10, 0, 5]
    assert not decided.decision.learnable
