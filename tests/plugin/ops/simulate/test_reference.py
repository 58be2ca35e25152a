"""reference.compare (ours against MABWiser) and logged_updates against a fake session."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest

from ltrr.bandit.decision import ArmSpec
from ltrr.bandit.policies.base import Policy, PolicyConfig
from ltrr.plugin.errors import LtrrError
from ltrr.plugin.learn.bulk import DECISIONS_INDEX, EVENTS_INDEX
from ltrr.plugin.ops.simulate import reference
from ltrr.plugin.ops.simulate.reference import compare, logged_updates
from tests.plugin.ops._scripted import scripted_cluster

ARMS = ["lexical", "dense", "memory"]
COSTS = [0.05, 0.3, 0.02]


def _updates(n: int, seed: int) -> list[tuple[np.ndarray, dict[str, float]]]:
    """Seeded contexts (4 features) and rewards for a random subset of arms (never empty)."""
    rng = np.random.default_rng(seed)
    out: list[tuple[np.ndarray, dict[str, float]]] = []
    for _ in range(n):
        x = rng.normal(size=4)
        included = [a for a in ARMS if rng.random() < 0.6] or [ARMS[0]]
        out.append((x, {a: float(rng.integers(0, 4)) * 0.5 for a in included}))
    return out


def test_ours_and_mabwiser_agree() -> None:
    updates = _updates(200, seed=1)
    check = compare(ARMS, updates, alpha=0.7, ridge=2.0, costs=COSTS)
    assert check.decisions == 200
    assert check.updates == sum(len(per_arm) for _, per_arm in updates)
    assert check.max_abs_difference < 1e-9
    assert check.same_best_arm == 1.0
    assert check.same_inclusion == 1.0


def test_one_decision_by_hand() -> None:
    # One update of arm a with x = (1, 2), reward 1; alpha 1, ridge 1.
    # A_a = I + x x^T = [[2, 2], [2, 5]], det 6, A_a^-1 = [[5, -2], [-2, 2]] / 6;
    # b_a = (1, 2), theta_a = A^-1 b = (5 - 4, -2 + 4) / 6 = (1/6, 1/3).
    # At x: mean = 1/6 + 2/3 = 5/6; x^T A^-1 x = (5 - 8 + 8) / 6 = 5/6;
    # UCB_a = 5/6 + sqrt(5/6) = 0.8333 + 0.9129 = 1.7462.
    # Arm b is untouched: UCB_b = 0 + sqrt(x^T x) = sqrt(5) = 2.2361.
    # (MABWiser answers a single context with a dict, not a list of one: compare copes.)
    x = np.array([1.0, 2.0])
    check = compare(["a", "b"], [(x, {"a": 1.0})], alpha=1.0, ridge=1.0, costs=[0.0, 2.0])
    assert check.max_abs_difference < 1e-9
    assert (check.decisions, check.updates) == (1, 1)
    assert check.same_best_arm == 1.0
    # a: 1.7462 > 0 and b: 2.2361 > 2.0 on both sides: inclusion agrees.
    assert check.same_inclusion == 1.0
    ours = reference.make_policy(
        PolicyConfig(name="linucb", alpha=1.0, ridge=1.0),
        [ArmSpec("a", 0, 1, 0.0), ArmSpec("b", 0, 1, 2.0)],
        2,
        0,
    )
    ours.update("a", x, 1.0)
    assert ours.probabilities(x)[1] == pytest.approx(
        [5 / 6 + math.sqrt(5 / 6), math.sqrt(5.0)], abs=1e-12
    )


def test_a_reward_changed_for_ours_only_is_detected(monkeypatch: pytest.MonkeyPatch) -> None:
    """Negative control: ours sees one reward off by 1.0, MABWiser the logged one."""
    real = reference.make_policy

    def skewed(config: PolicyConfig, arms: list[ArmSpec], n: int, seed: int | None) -> Policy:
        policy = real(config, arms, n, seed)
        update = policy.update
        calls = [0]

        def first_off(arm: str, x: np.ndarray, reward: float) -> None:
            calls[0] += 1
            update(arm, x, reward + (1.0 if calls[0] == 1 else 0.0))

        policy.update = first_off  # type: ignore[method-assign]
        return policy

    monkeypatch.setattr(reference, "make_policy", skewed)
    check = compare(ARMS, _updates(50, seed=2), alpha=0.7, ridge=2.0, costs=COSTS)
    assert check.max_abs_difference > 1e-6


def test_nothing_to_replay_raises() -> None:
    with pytest.raises(LtrrError, match="no logged LinUCB decisions"):
        compare(ARMS, [], alpha=1.0, ridge=1.0, costs=COSTS)
    with pytest.raises(LtrrError, match="include no arm"):
        compare(ARMS, [(np.ones(4), {})], alpha=1.0, ridge=1.0, costs=COSTS)


# --- logged_updates ------------------------------------------------------------------------


class _Reply:
    def __init__(self, body: dict[str, Any], status: int = 200) -> None:
        self.status_code = status
        self._body = body
        self.text = str(body)

    def json(self) -> dict[str, Any]:
        return self._body


class _Session:
    """Answers decision and event searches from lists, honouring terms, size and search_after."""

    def __init__(self, decisions: list[dict[str, Any]], events: list[dict[str, Any]]) -> None:
        self.decisions = decisions
        self.events = events
        self.searches: list[tuple[str, dict[str, Any]]] = []
        self.refreshed: list[str] = []

    def post(self, url: str, json: dict[str, Any] | None = None, **_: Any) -> _Reply:
        path = url.removeprefix("http://os")
        if path.endswith("/_refresh"):
            self.refreshed.append(path)
            return _Reply({})
        assert json is not None
        self.searches.append((path, json))
        if path == f"/{DECISIONS_INDEX}/_search":
            docs = self.decisions
        else:
            assert path == f"/{EVENTS_INDEX}/_search"
            wanted = set(json["query"]["terms"]["decision_id"])
            docs = [e for e in self.events if e["decision_id"] in wanted]
        hits = [{"_source": d, "sort": [n]} for n, d in enumerate(docs)]
        start = json["search_after"][0] + 1 if "search_after" in json else 0
        return _Reply({"hits": {"hits": hits[start : start + json["size"]]}})


def _decision(
    did: str, features: list[float] | None, arms: dict[str, dict[str, Any]], **extra: Any
) -> dict[str, Any]:
    return {"decision_id": did, "features": features, "arms": arms, **extra}


IN = {"included": True, "ok": True}
OUT = {"included": False, "ok": True}
FAILED = {"included": True, "ok": False}


def test_logged_updates_sum_rewards_per_decision_and_arm() -> None:
    decisions = [
        _decision("d1", [1.0, 0.0], {"a": IN, "b": IN, "c": OUT}),
        _decision("d2", [0.0, 1.0], {"a": IN, "b": FAILED, "c": IN}),  # no events at all
        _decision("d3", [1.0, 1.0], {"a": IN, "b": IN, "c": IN}, learnable=False),
        _decision("d4", None, {"a": IN, "b": IN, "c": IN}),  # no features: nothing to learn
        _decision("d5", [2.0, 2.0], {"a": OUT, "b": FAILED, "c": IN}),
    ]
    events = [
        {"decision_id": "d1", "rewards": {"a": 1.0, "b": 0.5}},
        {"decision_id": "d1", "rewards": {"a": 2.0, "c": 9.0}},  # c was not included
        {"decision_id": "d3", "rewards": {"a": 5.0}},
        {"decision_id": "d5", "rewards": {"b": 4.0, "c": -0.5}},  # b failed
        {"decision_id": "d5", "rewards": {"c": 1.5}},
        {"decision_id": "d5"},  # an event without rewards adds nothing
    ]
    http = _Session(decisions, events)
    arms, updates = logged_updates(scripted_cluster(http, "http://os"), "music", 100.0)
    assert arms == ["a", "b", "c"]
    got = [(x.tolist(), per_arm) for x, per_arm in updates]
    assert got == [
        ([1.0, 0.0], {"a": 3.0, "b": 0.5}),  # a: 1 + 2 = 3; b: 0.5; c excluded
        ([0.0, 1.0], {"a": 0.0, "c": 0.0}),  # no events: 0 for each included, working arm
        ([2.0, 2.0], {"c": 1.0}),  # c: -0.5 + 1.5 = 1.0; b failed, a excluded
    ]
    assert sorted(http.refreshed) == sorted(
        [f"/{DECISIONS_INDEX}/_refresh", f"/{EVENTS_INDEX}/_refresh"]
    )
    path, body = http.searches[0]
    assert path == f"/{DECISIONS_INDEX}/_search"
    assert body["query"]["bool"]["filter"] == [
        {"term": {"target": "music"}},
        {"range": {"timestamp": {"gte": 100.0}}},
    ]


def test_logged_updates_pages_through_many_events() -> None:
    # 2001 events of reward 1 for one decision: one full page of 2000, then 1 after it.
    decisions = [_decision("d1", [1.0], {"a": IN})]
    events = [{"decision_id": "d1", "rewards": {"a": 1.0}} for _ in range(2001)]
    http = _Session(decisions, events)
    _, updates = logged_updates(scripted_cluster(http, "http://os"), "t", 0.0)
    assert updates[0][1] == {"a": 2001.0}
    event_searches = [b for p, b in http.searches if p == f"/{EVENTS_INDEX}/_search"]
    assert len(event_searches) == 2
    assert event_searches[1]["search_after"] == [1999]


def test_logged_updates_reports_a_failed_search() -> None:
    class Failing(_Session):
        def post(self, url: str, json: dict[str, Any] | None = None, **_: Any) -> _Reply:
            if url.endswith("/_search"):
                return _Reply({"error": "boom"}, status=503)
            return super().post(url, json)

    with pytest.raises(LtrrError, match=f"reading {DECISIONS_INDEX}: 503"):
        logged_updates(scripted_cluster(Failing([], []), "http://os"), "t", 0.0)
