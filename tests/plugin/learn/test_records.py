"""Decision records: made from a search, written to ltrr-decisions, read back; open windows."""

from __future__ import annotations

from dataclasses import replace

import orjson
import pytest

from ltrr.bandit.decision import ArmChoice, Decision
from ltrr.plugin.learn.records import (
    DecisionRecord,
    OpenWindows,
    Searched,
    Served,
    close_all,
    from_document,
)
from ltrr.query_plans.fusion.base import FusedHit, Provenance
from ltrr.query_plans.rerank import RankedHit

T0 = 1_800_000_000.0
WINDOW = 60.0
X = (1.0, 0.5, -0.25)
NAMES = ("bias", "len", "entity")


def hit(index, doc_id, arm):
    return RankedHit(FusedHit(index, doc_id, 0.5, None, (Provenance(arm, 1, 1.0),)), 0.5, None)


def searched(*, features=X, policy="linucb", results=None):
    choices = (
        ArmChoice("a", True, 10, 0.75, 0.25),
        ArmChoice("b", True, 5, 0.5, 0.125),
        ArmChoice("c", False, 0, 0.25, -0.5),
    )
    if results is None:
        results = {"a": frozenset({"1", "2"}), "b": frozenset({"2", "3"})}
    return Searched(
        decision_id="d1",
        target="music",
        catalog="digest",
        policy_version=4,
        feature_names=NAMES,
        query="  Daft  PUNK ",
        context={"segment": "pro"},
        decision=Decision(choices, policy, features),
        results=results,
        ranked=[hit("music", "2", "a"), hit("music", "1", "a"), hit("music-old", "3", "b")],
    )


def test_record_keeps_what_feedback_needs():
    record = searched().record(T0, WINDOW)
    assert record == DecisionRecord(
        decision_id="d1",
        target="music",
        feature_names=NAMES,
        x=X,
        included=("a", "b"),  # c was not included
        results={"a": frozenset({"1", "2"}), "b": frozenset({"2", "3"})},
        returned={"2": "music", "1": "music", "3": "music-old"},
        query_key="daft punk",
        created=T0,
        expires=T0 + WINDOW,
        owner=True,
        query="  Daft  PUNK ",  # as sent: a plan policy keys its query record from it
        plan=None,  # the arms were drawn one by one
    )
    assert record.open_without_feedback


def test_a_plan_decision_keeps_its_plan_in_the_record_and_the_log() -> None:
    choices = (ArmChoice("a", True, 10, 0.95, 1.0), ArmChoice("b", False, 0, 0.05, 0.0))
    decision = Decision(choices, "safe_plans", X, plan="only:a", plan_propensity=0.9)
    plan_search = Searched(
        "d2", "music", "digest", 1, NAMES, "daft punk", {}, decision, {"a": frozenset({"1"})}, []
    )
    record = plan_search.record(T0, WINDOW)
    assert record is not None
    assert record.plan == "only:a"
    doc = plan_search.document(T0, WINDOW)
    assert (doc["plan"], doc["plan_propensity"]) == ("only:a", 0.9)
    back = from_document("d2", doc)
    assert (back.plan, back.query) == ("only:a", "daft punk")


def test_an_included_arm_that_failed_is_not_in_the_record():
    record = searched(results={"a": frozenset({"1", "2"})}).record(T0, WINDOW)
    assert record.included == ("a",)
    assert record.results == {"a": frozenset({"1", "2"})}


@pytest.mark.parametrize(
    ("features", "policy"),
    [(None, "linucb"), (X, "static_fallback"), (X, "static_fallback (policy error: boom)")],
)
def test_nothing_to_learn_means_no_record(features, policy):
    assert searched(features=features, policy=policy).record(T0, WINDOW) is None


def test_document_is_what_the_decisions_index_stores():
    doc = searched(results={"a": frozenset({"2", "1"})}).document(T0, WINDOW)
    assert doc == {
        "decision_id": "d1",
        "target": "music",
        "catalog": "digest",
        "policy": "linucb",
        "policy_version": 4,
        "timestamp": T0,
        "window_seconds": WINDOW,
        "query": "  Daft  PUNK ",
        "context": {"segment": "pro"},
        "learnable": True,
        "plan": None,
        "nonce": "",
        "plan_propensity": None,
        "set_propensity": None,
        "feature_names": ["bias", "len", "entity"],
        "features": [1.0, 0.5, -0.25],
        "arms": {
            "a": {
                "included": True,
                "size": 10,
                "propensity": 0.75,
                "score": 0.25,
                "ok": True,
                "results": ["1", "2"],  # sorted
            },
            "b": {  # included, but it failed: no evidence either way
                "included": True,
                "size": 5,
                "propensity": 0.5,
                "score": 0.125,
                "ok": False,
                "results": [],
            },
            "c": {
                "included": False,
                "size": 0,
                "propensity": 0.25,
                "score": -0.5,
                "ok": False,
                "results": [],
            },
        },
        "returned": [["music", "2"], ["music", "1"], ["music-old", "3"]],
    }


def test_document_logs_how_the_search_was_served():
    served = Served(12.34567, {"decide": 0.1234, "retrieve": 9.87654}, "every arm failed")
    doc = replace(searched(), served=served).document(T0, WINDOW)
    assert doc["took_ms"] == 12.346  # to the microsecond
    assert doc["timings_ms"] == {"decide": 0.123, "retrieve": 9.877}
    assert doc["fallback"] == "every arm failed"
    assert "took_ms" not in searched().document(T0, WINDOW)  # nothing said, nothing logged


def test_an_unlearnable_document_has_no_features():
    doc = searched(features=None).document(T0, WINDOW)
    assert (doc["learnable"], doc["features"]) == (False, None)


def test_from_document_rebuilds_the_record_another_replica_made():
    made = searched()
    doc = orjson.loads(orjson.dumps(made.document(T0, WINDOW)))  # as stored and read back
    record = from_document(doc["decision_id"], doc)
    expected = made.record(T0, WINDOW)
    # c was not included and answered nothing: it reads back as an empty result set.
    assert record == replace(expected, owner=False, results={**expected.results, "c": frozenset()})
    assert not record.open_without_feedback  # the other replica closes its window


def test_from_document_leaves_out_an_included_arm_that_failed():
    made = searched(results={"a": frozenset({"1"})})
    record = from_document(made.decision_id, made.document(T0, WINDOW))
    assert record.included == made.record(T0, WINDOW).included == ("a",)


# --- OpenWindows ---


def rec(decision_id, expires, **kwargs):
    return DecisionRecord(
        decision_id=decision_id,
        target="music",
        feature_names=(),
        x=(),
        included=(),
        results={},
        returned={},
        query_key="",
        created=0.0,
        expires=expires,
        owner=kwargs.pop("owner", True),
        **kwargs,
    )


def test_expired_takes_records_out_in_expiry_order():
    windows = OpenWindows(limit=10)
    for decision_id, expires in (("late", 30.0), ("early", 10.0), ("mid", 20.0)):
        windows.put(rec(decision_id, expires))

    assert list(windows.expired(9.9)) == []
    assert [r.decision_id for r in windows.expired(10.0)] == ["early"]  # the end is inclusive
    assert len(windows) == 2
    assert windows.get("early") is None
    assert [r.decision_id for r in windows.expired(100.0)] == ["mid", "late"]
    assert len(windows) == 0


def test_over_limit_takes_out_the_oldest_first():
    windows = OpenWindows(limit=2)
    for decision_id, expires in (("c", 30.0), ("a", 10.0), ("d", 40.0), ("b", 20.0)):
        windows.put(rec(decision_id, expires))
    assert [r.decision_id for r in windows.over_limit()] == ["a", "b"]
    assert len(windows) == 2
    assert list(windows.over_limit()) == []


def test_a_reused_id_replaces_the_record_and_its_old_expiry_is_ignored():
    windows = OpenWindows(limit=10)
    first, second = rec("d1", 10.0), rec("d1", 20.0)
    assert windows.put(first) is None
    assert windows.put(second) is first
    assert len(windows) == 1
    assert windows.get("d1") is second

    assert list(windows.expired(15.0)) == []  # the old window's end no longer counts
    assert windows.get("d1") is second
    assert list(windows.expired(20.0)) == [second]


def test_a_reused_id_is_taken_out_once_by_over_limit():
    windows = OpenWindows(limit=1)
    windows.put(rec("d1", 10.0))
    newer = rec("d1", 20.0)
    windows.put(newer)
    windows.put(rec("d2", 30.0))
    assert list(windows.over_limit()) == [newer]
    assert [r.decision_id for r in windows.expired(100.0)] == ["d2"]


def test_close_all_rewards_zero_only_the_owned_records_without_feedback():
    records = [
        rec("open", 1.0),
        rec("observed", 1.0, observed=True),
        rec("pending", 1.0, seen={"e1"}),
        rec("theirs", 1.0, owner=False),
        rec("open2", 1.0),
    ]
    zeroed = []

    def zero(record):
        zeroed.append(record.decision_id)
        return 2  # e.g. the arms it included

    assert close_all(iter(records), zero) == 4
    assert zeroed == ["open", "open2"]


# --- OpenWindows.expired_for ---


def test_expired_for_takes_out_only_the_given_targets_ended_records_oldest_first():
    windows = OpenWindows(limit=10)
    for decision_id, target, expires in (
        ("m-late", "music", 30.0),
        ("b-early", "books", 5.0),
        ("m-early", "music", 10.0),
        ("m-open", "music", 50.0),
        ("v-early", "videos", 1.0),
        ("m-mid", "music", 20.0),
    ):
        windows.put(replace(rec(decision_id, expires), target=target))

    ended = list(windows.expired_for(30.0, frozenset({"music"})))
    # The end is inclusive; books and videos ended too, but were not asked for.
    assert [r.decision_id for r in ended] == ["m-early", "m-mid", "m-late"]
    assert len(windows) == 3
    assert [windows.get(d) is None for d in ("m-early", "m-mid", "m-late")] == [True] * 3
    assert windows.get("m-open") is not None
    assert windows.get("b-early") is not None
    assert windows.get("v-early") is not None
    assert list(windows.expired_for(30.0, frozenset({"music"}))) == []  # taken out once

    both = list(windows.expired_for(100.0, frozenset({"books", "videos"})))
    assert [r.decision_id for r in both] == ["v-early", "b-early"]  # oldest first, across targets
    assert [r.decision_id for r in windows.expired_for(100.0, frozenset())] == []
    assert len(windows) == 1


def test_expired_for_breaks_equal_ends_by_decision_id():
    windows = OpenWindows(limit=10)
    for decision_id in ("c", "a", "b"):
        windows.put(rec(decision_id, 10.0))
    assert [r.decision_id for r in windows.expired_for(10.0, frozenset({"music"}))] == [
        "a",
        "b",
        "c",
    ]


def test_expired_for_leaves_stale_heap_entries_that_expired_skips():
    windows = OpenWindows(limit=10)
    windows.put(rec("m1", 10.0))
    windows.put(replace(rec("b1", 15.0), target="books"))
    windows.put(rec("m2", 20.0))
    taken = list(windows.expired_for(20.0, frozenset({"music"})))
    assert [r.decision_id for r in taken] == ["m1", "m2"]

    # The heap still names m1 and m2: expired must skip them, never yield them twice.
    assert [r.decision_id for r in windows.expired(100.0)] == ["b1"]
    assert len(windows) == 0
    assert list(windows.expired(100.0)) == []


def test_a_stale_entry_does_not_take_out_a_reused_id():
    windows = OpenWindows(limit=10)
    windows.put(rec("d1", 10.0))
    assert [r.decision_id for r in windows.expired_for(10.0, frozenset({"music"}))] == ["d1"]
    newer = rec("d1", 40.0)
    windows.put(newer)  # the client reuses the id after the window closed
    assert list(windows.expired(20.0)) == []  # the stale (10.0, d1) entry is not the newer one
    assert windows.get("d1") is newer
    assert list(windows.expired(40.0)) == [newer]


def test_stale_entries_do_not_make_over_limit_take_out_too_many():
    windows = OpenWindows(limit=1)
    windows.put(rec("m1", 10.0))
    windows.put(rec("m2", 20.0))
    assert [r.decision_id for r in windows.expired_for(10.0, frozenset({"music"}))] == ["m1"]
    windows.put(rec("m3", 30.0))
    # Two open (m2, m3), limit 1: only the oldest open one goes; m1's entry is skipped.
    assert [r.decision_id for r in windows.over_limit()] == ["m2"]
    assert windows.get("m3") is not None
    assert len(windows) == 1


def test_the_footprint_counts_by_hand():
    record = replace(
        rec("d1", 60.0),
        x=(1.0, 2.0),
        query="ab",
        results={"a": frozenset({"x1"})},
        returned={"x1": "music"},
    )
    # 1000 + 2 features x 40 + 2 characters x 2 + one set (250 + 90 + 2) + one shown (110 + 2)
    assert record.footprint() == 1000 + 80 + 4 + 342 + 112 == 1538


def test_the_open_windows_hold_at_most_their_bytes_and_the_oldest_go_first():
    one = rec("d0", 10.0).footprint()
    windows = OpenWindows(limit=1000, max_bytes=2 * one + one // 2)
    for i in range(4):
        windows.put(rec(f"d{i}", 10.0 + i))
    assert windows.bytes == 4 * one
    early = [r.decision_id for r in windows.over_limit()]
    assert early == ["d0", "d1"]  # two records fit
    assert windows.bytes == 2 * one
    assert [r.decision_id for r in windows.expired(100.0)] == ["d2", "d3"]
    assert windows.bytes == 0


def test_a_reused_decision_id_counts_its_bytes_once():
    windows = OpenWindows(limit=10)
    windows.put(rec("d1", 10.0))
    windows.put(rec("d1", 20.0))
    assert windows.bytes == rec("d1", 20.0).footprint()
