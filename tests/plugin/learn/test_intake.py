"""Intake: which events a decision takes, and what each arm earns from one, by hand."""

from __future__ import annotations

from collections import Counter

import pytest

from ltrr.plugin.learn.feedback import FeedbackEvent
from ltrr.plugin.learn.intake import (
    MAX_EVENTS_PER_DECISION,
    MAX_EVENTS_PER_OBJECT,
    Accepted,
    accept,
    invalid,
    over_caps,
    within_caps,
)
from ltrr.plugin.learn.records import DecisionRecord
from ltrr.query_plans.catalog import DebiasConfig, FeedbackConfig

EVENTS = {"click": 1.0, "play": 2.0, "skip": -0.5}
RECORD = DecisionRecord(
    decision_id="d1",
    target="music",
    feature_names=("bias",),
    x=(1.0,),
    included=("a", "b"),  # c retrieved something but was not included
    results={"a": frozenset({"1", "2"}), "b": frozenset({"2", "3"}), "c": frozenset({"3", "4"})},
    returned={"1": "music", "2": "music", "3": "music", "4": "music"},
    query_key="daft punk",
    created=0.0,
    expires=60.0,
    owner=True,
)


def config(*, eta=1.0, max_factor=4.0, debias=True, credit="presence"):
    return FeedbackConfig(
        events=EVENTS,
        debias=DebiasConfig(eta=eta, max_factor=max_factor) if debias else None,
        credit=credit,
    )


def event(type_="click", object_id="2", position=None):
    return FeedbackEvent("e1", "d1", type_, object_id, position, None, 10.0, "api")


def test_a_shown_object_and_a_known_type_are_valid():
    assert invalid(RECORD, config(), event("play", "4")) is None


def test_an_unknown_type_is_invalid_and_the_known_ones_are_listed():
    assert invalid(RECORD, config(), event("like")) == (
        "type 'like' is not an event type of the catalog for 'music'; known: click, play, skip"
    )


def test_an_object_never_shown_is_invalid():
    assert invalid(RECORD, config(), event("click", "99")) == (
        "object_id '99' was never shown for decision 'd1'"
    )


def test_accept_debiases_by_position_and_pays_every_arm_that_retrieved_it():
    e = event("play", "2", position=3)
    # value 2.0, factor min(4, 3 ** 1) = 3: weight 6; "2" is in both a's and b's results.
    assert accept(RECORD, config(), e) == Accepted(e, 2.0, 6.0, {"a": 6.0, "b": 6.0})


@pytest.mark.parametrize(
    ("object_id", "credit", "rewards"),
    [
        ("1", "presence", {"a": 3.0, "b": 0.0}),
        ("1", "unique", {"a": 3.0, "b": 0.0}),  # only a found it: a alone earns it either way
        ("2", "unique", {"a": 0.0, "b": 0.0}),  # both found it: neither was needed
        # c also retrieved "3", but c was not included: b is the only one that found it.
        ("3", "unique", {"a": 0.0, "b": 3.0}),
        ("4", "presence", {"a": 0.0, "b": 0.0}),  # shown, but no included arm retrieved it
    ],
)
def test_presence_versus_unique_credit(object_id, credit, rewards):
    accepted = accept(RECORD, config(credit=credit), event("click", object_id, position=3))
    assert (accepted.value, accepted.weight) == (1.0, 3.0)
    assert accepted.rewards == rewards


@pytest.mark.parametrize(
    ("position", "eta", "max_factor", "weight"),
    [
        (None, 1.0, 4.0, 1.0),  # an unknown rank is not debiased
        (1, 1.0, 4.0, 1.0),
        (2, 1.0, 4.0, 2.0),
        (9, 1.0, 4.0, 4.0),  # 9 capped at max_factor
        (4, 0.5, 10.0, 2.0),  # 4 ** 0.5
        (8, 0.0, 10.0, 1.0),  # eta 0: debiasing off
    ],
)
def test_position_debias_weights(position, eta, max_factor, weight):
    accepted = accept(RECORD, config(eta=eta, max_factor=max_factor), event("click", "1", position))
    assert accepted.weight == pytest.approx(weight)
    assert accepted.rewards == {"a": pytest.approx(weight), "b": 0.0}


def test_without_debias_the_weight_is_the_catalogs_value_and_may_be_negative():
    accepted = accept(RECORD, config(debias=False), event("skip", "3", position=8))
    assert (accepted.value, accepted.weight) == (-0.5, -0.5)
    assert accepted.rewards == {"a": 0.0, "b": -0.5}


def test_a_negative_weight_is_debiased_too():
    accepted = accept(RECORD, config(), event("skip", "2", position=2))
    assert (accepted.value, accepted.weight) == (-0.5, -1.0)
    assert accepted.rewards == {"a": -1.0, "b": -1.0}


# -- caps: how much one decision can earn ------------------------------------------------------


def item(event_id, object_id="2"):
    e = FeedbackEvent(event_id, "d1", "click", object_id, None, None, 10.0, "api")
    return Accepted(e, 1.0, 1.0, {"a": 1.0})


def fresh_record(**changes):
    from dataclasses import replace

    return replace(RECORD, seen=set(), per_object=Counter(), **changes)


def test_the_events_of_one_object_stop_at_its_cap_and_the_others_go_on():
    record = fresh_record()
    record.per_object["2"] = MAX_EVENTS_PER_OBJECT - 2
    record.seen.update(f"old{i}" for i in range(MAX_EVENTS_PER_OBJECT - 2))
    batch = [item("n1"), item("n2"), item("n3"), item("n4", "3")]
    assert [i.event.event_id for i in within_caps(record, batch)] == ["n1", "n2", "n4"]
    assert over_caps(record, batch) == (
        f"decision 'd1' takes at most {MAX_EVENTS_PER_DECISION} events, and "
        f"{MAX_EVENTS_PER_OBJECT} per object; it has {MAX_EVENTS_PER_OBJECT - 2}"
    )
    assert over_caps(record, batch[:2]) is None


def test_a_decision_stops_at_its_cap_whatever_the_objects():
    record = fresh_record()
    record.seen.update(f"old{i}" for i in range(MAX_EVENTS_PER_DECISION - 1))
    batch = [item("n1", "1"), item("n2", "3")]
    assert [i.event.event_id for i in within_caps(record, batch)] == ["n1"]


def test_duplicates_are_not_counted_against_the_caps():
    record = fresh_record()
    record.seen.update(f"old{i}" for i in range(MAX_EVENTS_PER_DECISION))
    again = [item("old1"), item("old2")]  # already applied: no-ops, acknowledged as such
    assert within_caps(record, again) == again
    assert over_caps(record, again) is None
    twice = [item("n1"), item("n1")]
    record = fresh_record()
    record.per_object["2"] = MAX_EVENTS_PER_OBJECT - 1
    assert within_caps(record, twice) == twice  # the second is the same event
