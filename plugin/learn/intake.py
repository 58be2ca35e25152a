"""Intake: is a feedback event one its decision can take, and what does it pay each arm?

Pure functions of a decision record, the catalog and one event, so that ``/_ltrr/feedback``
and UBI events are judged by exactly the same rules.
"""

from __future__ import annotations

from dataclasses import dataclass

from ltrr.bandit.rewards import arm_rewards, position_factor
from ltrr.plugin.learn.feedback import FeedbackEvent
from ltrr.plugin.learn.records import DecisionRecord
from ltrr.query_plans.catalog import FeedbackConfig

# How much one decision can earn: a results page gets a handful of events per result, not
# thousands (the cap keeps one caller from steering the arms and the memory alone).
MAX_EVENTS_PER_DECISION = 100
MAX_EVENTS_PER_OBJECT = 10


@dataclass(frozen=True, slots=True)
class Accepted:
    event: FeedbackEvent
    value: float  # the catalog's weight for the event type (logged as ``base_weight``)
    weight: float  # ``value`` after position debiasing: what the arms and the memory earn
    rewards: dict[str, float]


def invalid(record: DecisionRecord, config: FeedbackConfig, event: FeedbackEvent) -> str | None:
    """Why the decision cannot take ``event``, or None when it can."""
    weights = config.events
    if event.type not in weights:
        return (
            f"type {event.type!r} is not an event type of the catalog for "
            f"{record.target!r}; known: {', '.join(sorted(weights))}"
        )
    if event.object_id not in record.returned:
        return f"object_id {event.object_id!r} was never shown for decision {record.decision_id!r}"
    return None


def accept(record: DecisionRecord, config: FeedbackConfig, event: FeedbackEvent) -> Accepted:
    """The event's weight (debiased by position when the catalog says so) and arm rewards."""
    value = float(config.events[event.type])
    weight = value
    if config.debias is not None:
        weight *= position_factor(event.position, config.debias.eta, config.debias.max_factor)
    rewards = arm_rewards(
        record.results,
        record.included,
        event.object_id,
        weight,
        unique=config.credit == "unique",
    )
    return Accepted(event, value, weight, rewards)


def _fresh(record: DecisionRecord, accepted: list[Accepted]) -> list[Accepted]:
    """Not applied before, nor repeated within ``accepted`` (duplicates are not counted)."""
    seen: set[str] = set(record.seen)
    out = []
    for item in accepted:
        if item.event.event_id not in seen:
            seen.add(item.event.event_id)
            out.append(item)
    return out


def within_caps(record: DecisionRecord, accepted: list[Accepted]) -> list[Accepted]:
    """The new events that fit the caps per decision and per object, in order; duplicates
    pass through (they are no-ops)."""
    total = len(record.seen)
    per_object = dict(record.per_object)
    fresh = {id(item) for item in _fresh(record, accepted)}
    kept = []
    for item in accepted:
        if id(item) in fresh:
            count = per_object.get(item.event.object_id, 0)
            if total >= MAX_EVENTS_PER_DECISION or count >= MAX_EVENTS_PER_OBJECT:
                continue
            total += 1
            per_object[item.event.object_id] = count + 1
        kept.append(item)
    return kept


def over_caps(record: DecisionRecord, accepted: list[Accepted]) -> str | None:
    """Why ``accepted`` cannot all be taken, or None when it can."""
    if len(within_caps(record, accepted)) == len(accepted):
        return None
    return (
        f"decision {record.decision_id!r} takes at most {MAX_EVENTS_PER_DECISION} events, and "
        f"{MAX_EVENTS_PER_OBJECT} per object; it has {len(record.seen)}"
    )
