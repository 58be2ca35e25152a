"""results.py: the session record and a policy's run, their JSON form, and ``mean``."""

from __future__ import annotations

import dataclasses

import orjson
import pytest

from ltrr.plugin.ops.simulate.results import PolicyRun, SessionRecord, mean


def record(i: int, **extra: object) -> SessionRecord:
    return SessionRecord(
        session=i,
        intent="nav" if i % 2 == 0 else "info",
        query=f"q{i}",
        reward=1.5 * i,
        expected_reward=0.25 * i,
        recall=None if i == 1 else 0.5,
        ndcg=0.4,
        retrieved=30 + i,
        arms=("bm25", "knn") if i else (),
        latency_ms=12.5,
        **extra,  # type: ignore[arg-type]
    )


def test_session_defaults_and_immutability() -> None:
    s = record(0)
    assert (s.query_id, s.candidates) == ("", ())
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.reward = 2.0  # type: ignore[misc]


def test_to_json_is_plain_values_in_field_order() -> None:
    run = PolicyRun("linucb", "learns", True, [record(1, query_id="Q1", candidates=("d1", "d2"))])
    raw = run.to_json()
    assert list(raw) == ["name", "description", "learning", "sessions"]
    assert (raw["name"], raw["description"], raw["learning"]) == ("linucb", "learns", True)
    assert orjson.loads(orjson.dumps(raw))["sessions"] == [
        {
            "session": 1,
            "intent": "info",
            "query": "q1",
            "reward": 1.5,
            "expected_reward": 0.25,
            "recall": None,
            "ndcg": 0.4,
            "retrieved": 31,
            "arms": ["bm25", "knn"],
            "latency_ms": 12.5,
            "query_id": "Q1",
            "candidates": ["d1", "d2"],
        }
    ]


def test_a_run_round_trips_through_json_text() -> None:
    run = PolicyRun(
        "static",
        "bm25 only",
        False,
        [record(0), record(1), record(2, query_id="Q2", candidates=("a",))],
    )
    back = PolicyRun.from_json(orjson.loads(orjson.dumps(run.to_json())))
    assert back == run
    # JSON lists come back as tuples, as the record declares them
    assert back.sessions[1].arms == ("bm25", "knn")
    assert back.sessions[2].candidates == ("a",)


def test_from_json_fills_what_older_files_lack() -> None:
    session = {
        "session": 3,
        "intent": "nav",
        "query": "q3",
        "reward": 0.0,
        "expected_reward": 0.0,
        "recall": 1.0,
        "ndcg": 0.0,
        "retrieved": 10,
        "arms": ["bm25"],
        "latency_ms": 1.0,
    }  # no query_id nor candidates
    run = PolicyRun.from_json(
        {"name": "x", "description": "", "learning": 1, "sessions": [session]}
    )
    assert run.learning is True
    assert run.sessions[0].query_id == ""
    assert run.sessions[0].candidates == ()
    assert run.sessions[0].arms == ("bm25",)
    assert PolicyRun.from_json({"name": "y", "description": "d", "learning": 0}).sessions == []


def test_from_json_refuses_an_unknown_session_field() -> None:
    raw = PolicyRun("x", "", False, [record(0)]).to_json()
    raw["sessions"][0]["clicks"] = 3
    with pytest.raises(TypeError, match="clicks"):
        PolicyRun.from_json(raw)


def test_runs_do_not_share_their_session_lists() -> None:
    a = PolicyRun("a", "", True)
    b = PolicyRun("b", "", True)
    a.sessions.append(record(0))
    assert b.sessions == []


@pytest.mark.parametrize(
    ("values", "expected"),
    [([], 0.0), ([2.0], 2.0), ([1.0, 2.0, 4.0], 7.0 / 3.0), ([-1.0, 1.0], 0.0)],
)
def test_mean(values: list[float], expected: float) -> None:
    assert mean(values) == pytest.approx(expected)
