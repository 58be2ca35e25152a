"""A period's decisions and events reduced to what the live report shows.

The decision documents are ``dynamic: false``: arms, context and timings are kept in
``_source`` but not indexed, so OpenSearch cannot aggregate them and the reduction is done
here, in one pass over the scrolled documents.
"""

from __future__ import annotations

import math
import re
import statistics
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from ltrr.bandit.features import TOKENS_SCALE
from ltrr.plugin.errors import LtrrError
from ltrr.plugin.ops.live.read import Period
from ltrr.plugin.ops.simulate.summary import percentile

__all__ = [
    "ArmReward",
    "Bins",
    "LiveSummary",
    "Quantiles",
    "query_shape",
    "summarize_period",
]

Grouping = Literal["auto", "intent", "shape"]

MAX_GROUPS = 6  # more panels than this do not read; the smallest groups become "other"
OTHER = "other"
NO_INTENT = "(no intent)"
# Bin widths tried in turn: the first that cuts the data's span into at most MAX_BINS.
_WIDTHS = (10, 30, 60, 300, 900, 1800, 3600, 3 * 3600, 6 * 3600, 12 * 3600, 86400, 7 * 86400)
MAX_BINS = 48
_QUOTED = re.compile(r'"[^"]+"')


@dataclass(frozen=True, slots=True)
class Quantiles:
    """Nearest-rank quantiles: each is a latency that was actually observed."""

    count: int
    p50: float
    p90: float
    p99: float
    max: float

    @classmethod
    def of(cls, values: Sequence[float]) -> Quantiles | None:
        if not values:
            return None
        return cls(
            len(values),
            percentile(values, 50),
            percentile(values, 90),
            percentile(values, 99),
            max(values),
        )


@dataclass(frozen=True, slots=True)
class ArmReward:
    """What one arm earned over the searches that asked for it."""

    arm: str
    searches: int  # decisions that included it
    failed: int  # of those, the ones where it did not answer
    credited: int  # events that paid it a non-zero reward
    reward: float  # the sum of what the events paid it
    mean: float | None  # reward per answered search that included it
    half_width: float | None  # of a normal 95% interval on ``mean`` (two searches or more)


@dataclass(frozen=True, slots=True)
class Bins:
    """Equal time bins over the span of the period's decisions."""

    start: float
    width: float
    count: int

    def index(self, timestamp: float) -> int:
        return min(self.count - 1, max(0, int((timestamp - self.start) // self.width)))

    def starts(self) -> list[float]:
        return [self.start + i * self.width for i in range(self.count)]


@dataclass(frozen=True, slots=True)
class LiveSummary:
    start: float
    end: float
    grouping: Literal["intent", "shape"]
    decisions: int
    events: int
    unmatched_events: int  # received in the period for decisions made before it
    policies: Mapping[str, int]
    event_types: Mapping[str, int]
    arms: tuple[str, ...]  # as the decisions list them (catalog order)
    groups: tuple[str, ...]  # largest first, ``other`` last
    group_sizes: Mapping[str, int]
    bins: Bins
    searches: Mapping[str, tuple[int, ...]]  # group -> decisions per bin
    share: Mapping[str, Mapping[str, tuple[float | None, ...]]]  # group -> arm -> per bin
    rewards: tuple[ArmReward, ...]
    reward_by_group: Mapping[str, Mapping[str, float | None]]  # group -> arm -> mean
    fallbacks: Mapping[str, int]  # reason (before its detail) -> decisions
    fallback_per_bin: tuple[int, ...]
    failed_per_bin: tuple[int, ...]  # decisions where an arm asked for did not answer
    searches_per_bin: tuple[int, ...]
    latency: Quantiles | None  # None: the decisions predate the logging of ``took_ms``
    stages: Mapping[str, Quantiles]
    latencies: tuple[float, ...]
    latency_per_bin: tuple[tuple[float | None, float | None], ...]  # (p50, p99)


@dataclass(frozen=True, slots=True)
class _Decision:
    decision_id: str
    timestamp: float
    group: str
    included: tuple[str, ...]
    failed: tuple[str, ...]
    fallback: str | None
    took_ms: float | None
    learnable: bool  # a fallback plan's decision takes no feedback: it earns nothing


def query_shape(doc: Mapping[str, Any]) -> str:
    """A few kinds of query told apart by the features the policy saw (by the text itself
    when a fallback decision logged none): known names, quoted phrases, and length."""
    names = doc.get("feature_names") or ()
    values = doc.get("features")
    features = dict(zip(names, values, strict=False)) if values else {}
    text = str(doc.get("query") or "")
    if features.get("entity_exact", 0.0) >= 0.5:
        return "entity name"
    if features.get("entity_prefix", 0.0) >= 0.5:
        return "entity prefix"
    quoted = features["quoted_phrase"] >= 0.5 if "quoted_phrase" in features else None
    if quoted or (quoted is None and _QUOTED.search(text)):
        return "quoted phrase"
    if "query_tokens" in features:
        tokens = round(float(features["query_tokens"]) * TOKENS_SCALE)
    else:
        tokens = len(text.split())
    if tokens <= 1:
        return "one word"
    return "2-3 words" if tokens <= 3 else "4+ words"


def _intent(doc: Mapping[str, Any]) -> str | None:
    context = doc.get("context")
    value = context.get("intent") if isinstance(context, Mapping) else None
    return str(value) if isinstance(value, str | int) and not isinstance(value, bool) else None


def summarize_period(period: Period, grouping: Grouping = "auto") -> LiveSummary:
    """The period's figures; ``auto`` groups by the callers' ``context.intent`` when any
    decision carries one, else by query shape."""
    if not period.decisions:
        raise LtrrError("no decisions in the period: nothing to report")
    chosen: Literal["intent", "shape"]
    if grouping == "auto":
        chosen = "intent" if any(_intent(d) is not None for d in period.decisions) else "shape"
    else:
        chosen = grouping
    decisions = [_parse(doc, chosen) for doc in period.decisions]
    groups, rename = _top_groups(Counter(d.group for d in decisions))
    decisions = [_regroup(d, rename) for d in decisions]
    arms = _arm_order(period.decisions)
    bins = _bins([d.timestamp for d in decisions])
    known = {d.decision_id for d in decisions}
    matched = [e for e in period.events if e.get("decision_id") in known]
    paid = _rewards_by_decision(matched)
    rewards = tuple(_arm_reward(arm, decisions, paid, matched) for arm in arms)
    latencies = [d.took_ms for d in decisions if d.took_ms is not None]
    return LiveSummary(
        start=period.start,
        end=period.end,
        grouping=chosen,
        decisions=len(decisions),
        events=len(matched),
        unmatched_events=len(period.events) - len(matched),
        policies=dict(Counter(str(doc.get("policy")) for doc in period.decisions)),
        event_types=dict(Counter(str(e.get("type")) for e in matched)),
        arms=arms,
        groups=groups,
        group_sizes=dict(Counter(d.group for d in decisions)),
        bins=bins,
        searches={g: _per_bin(bins, (d for d in decisions if d.group == g)) for g in groups},
        share={g: _share(bins, [d for d in decisions if d.group == g], arms) for g in groups},
        rewards=rewards,
        reward_by_group={
            g: {
                arm: _mean_reward(arm, [d for d in decisions if d.group == g], paid)[0]
                for arm in arms
            }
            for g in groups
        },
        fallbacks=dict(Counter(_reason(d.fallback) for d in decisions if d.fallback)),
        fallback_per_bin=_per_bin(bins, (d for d in decisions if d.fallback)),
        failed_per_bin=_per_bin(bins, (d for d in decisions if d.failed)),
        searches_per_bin=_per_bin(bins, decisions),
        latency=Quantiles.of(latencies),
        stages=_stages(period.decisions),
        latencies=tuple(latencies),
        latency_per_bin=_latency_per_bin(bins, decisions),
    )


def _parse(doc: Mapping[str, Any], grouping: Literal["intent", "shape"]) -> _Decision:
    arms = doc.get("arms") or {}
    included = tuple(a for a, info in arms.items() if info.get("included"))
    took = doc.get("took_ms")
    return _Decision(
        decision_id=str(doc["decision_id"]),
        timestamp=float(doc["timestamp"]),
        group=(_intent(doc) or NO_INTENT) if grouping == "intent" else query_shape(doc),
        included=included,
        failed=tuple(a for a in included if not arms[a].get("ok", True)),
        fallback=doc.get("fallback") or None,
        took_ms=float(took) if isinstance(took, int | float) else None,
        learnable=bool(doc.get("learnable", True)),
    )


def _top_groups(sizes: Counter[str]) -> tuple[tuple[str, ...], dict[str, str]]:
    """The largest groups by name, the rest merged into ``other`` (ties broken by name)."""
    ranked = sorted(sizes, key=lambda g: (-sizes[g], g))
    if len(ranked) <= MAX_GROUPS:
        return tuple(ranked), {}
    kept = ranked[: MAX_GROUPS - 1]
    return (*kept, OTHER), {g: OTHER for g in ranked[MAX_GROUPS - 1 :]}


def _regroup(decision: _Decision, rename: Mapping[str, str]) -> _Decision:
    group = rename.get(decision.group)
    if group is None:
        return decision
    return _Decision(
        decision.decision_id,
        decision.timestamp,
        group,
        decision.included,
        decision.failed,
        decision.fallback,
        decision.took_ms,
        decision.learnable,
    )


def _arm_order(docs: Iterable[Mapping[str, Any]]) -> tuple[str, ...]:
    arms: dict[str, None] = {}
    for doc in docs:
        arms.update(dict.fromkeys(doc.get("arms") or {}))
    return tuple(arms)


def _bins(timestamps: Sequence[float]) -> Bins:
    low, high = min(timestamps), max(timestamps)
    span = high - low
    width = next((w for w in _WIDTHS if span / w < MAX_BINS), _WIDTHS[-1])
    start = math.floor(low / width) * width  # on the clock's round numbers
    return Bins(float(start), float(width), int((high - start) // width) + 1)


def _per_bin(bins: Bins, decisions: Iterable[_Decision]) -> tuple[int, ...]:
    counts = [0] * bins.count
    for d in decisions:
        counts[bins.index(d.timestamp)] += 1
    return tuple(counts)


def _share(
    bins: Bins, decisions: Sequence[_Decision], arms: Sequence[str]
) -> dict[str, tuple[float | None, ...]]:
    """Per arm and bin, the share of the group's searches that asked for it (None: no
    search of the group in that bin)."""
    totals = _per_bin(bins, decisions)
    out: dict[str, tuple[float | None, ...]] = {}
    for arm in arms:
        asked = _per_bin(bins, (d for d in decisions if arm in d.included))
        out[arm] = tuple(a / t if t else None for a, t in zip(asked, totals, strict=True))
    return out


def _rewards_by_decision(events: Iterable[Mapping[str, Any]]) -> dict[str, dict[str, float]]:
    """Per decision, what its events paid each arm in all."""
    paid: dict[str, dict[str, float]] = {}
    for event in events:
        rewards = event.get("rewards") or {}
        into = paid.setdefault(str(event["decision_id"]), {})
        for arm, value in rewards.items():
            into[arm] = into.get(arm, 0.0) + float(value)
    return paid


def _mean_reward(
    arm: str, decisions: Iterable[_Decision], paid: Mapping[str, Mapping[str, float]]
) -> tuple[float | None, float | None, int]:
    """Mean reward per answered search that asked for ``arm``, its 95% half-width, and n.

    A search with no event earned 0: its window closed without feedback. Fallback plans'
    searches are left out: they take no feedback, so their zeros would say nothing."""
    values = [
        paid.get(d.decision_id, {}).get(arm, 0.0)
        for d in decisions
        if d.learnable and arm in d.included and arm not in d.failed
    ]
    if not values:
        return None, None, 0
    mean = statistics.fmean(values)
    half = 1.96 * statistics.stdev(values) / math.sqrt(len(values)) if len(values) > 1 else None
    return mean, half, len(values)


def _arm_reward(
    arm: str,
    decisions: Sequence[_Decision],
    paid: Mapping[str, Mapping[str, float]],
    events: Iterable[Mapping[str, Any]],
) -> ArmReward:
    mean, half, _ = _mean_reward(arm, decisions, paid)
    credited = sum(1 for e in events if float((e.get("rewards") or {}).get(arm, 0.0)) != 0.0)
    return ArmReward(
        arm=arm,
        searches=sum(1 for d in decisions if arm in d.included),
        failed=sum(1 for d in decisions if arm in d.failed),
        credited=credited,
        reward=sum(p.get(arm, 0.0) for p in paid.values()),
        mean=mean,
        half_width=half,
    )


def _reason(fallback: str) -> str:
    """``policy error: KeyError('x')`` and its kin count as one reason."""
    return fallback.split(":", 1)[0].strip()


def _stages(docs: Iterable[Mapping[str, Any]]) -> dict[str, Quantiles]:
    values: dict[str, list[float]] = {}
    for doc in docs:
        for stage, ms in (doc.get("timings_ms") or {}).items():
            if isinstance(ms, int | float):
                values.setdefault(stage, []).append(float(ms))
    return {stage: q for stage, v in values.items() if (q := Quantiles.of(v)) is not None}


def _latency_per_bin(
    bins: Bins, decisions: Iterable[_Decision]
) -> tuple[tuple[float | None, float | None], ...]:
    values: list[list[float]] = [[] for _ in range(bins.count)]
    for d in decisions:
        if d.took_ms is not None:
            values[bins.index(d.timestamp)].append(d.took_ms)
    return tuple((percentile(v, 50), percentile(v, 99)) if v else (None, None) for v in values)
