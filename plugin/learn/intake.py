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
