"""The live report: one self-contained HTML page over a period of a real cluster's logs.

It reads as the simulation's report does: the answer first (a line on traffic, fallbacks and
latency), then what the policy asked for, what each arm earned, what failed, how fast it was,
and the rollout comparison, then how the figures were computed.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar, Protocol, TypeAlias

from ltrr.plugin.errors import LtrrError
from ltrr.plugin.ops.html import Report, format_cell
from ltrr.plugin.ops.live import plots
from ltrr.plugin.ops.live.read import Period
from ltrr.plugin.ops.live.summary import Grouping, LiveSummary, Quantiles, summarize_period

__all__ = ["NO_ROLLOUT", "Compare", "Comparison", "comparison_tables", "live_report"]


class _Dataclass(Protocol):
    __dataclass_fields__: ClassVar[dict[str, Any]]


# A rollout comparison as its maker returns it: a (frozen) dataclass or a plain mapping, whose
# nested dataclasses or mappings are the sides being compared.
Comparison: TypeAlias = Mapping[str, object] | _Dataclass
Compare: TypeAlias = Callable[
    [Sequence[Mapping[str, Any]], Sequence[Mapping[str, Any]]], Comparison | None
]

NO_ROLLOUT = "No rollout configured in this period."
SECTIONS = (
    "Summary",
    "Arm share over time",
    "Reward per arm",
    "Fallbacks and failures",
    "Latency",
    "Rollout comparison",
    "How this was measured",
)


def live_report(
    period: Period,
    path: Path,
    *,
    grouping: Grouping = "auto",
    source: str = "",
    compare: Compare | None = None,
) -> Path:
    """Write the page; ``compare`` (decisions, events) -> comparison, or None when no rollout
    ran in the period, fills the rollout section."""
    summary = summarize_period(period, grouping)
    since = _duration(period.end - period.start)
    where = ", ".join(filter(None, [source, ", ".join(period.targets)]))
    span = f"{_stamp(period.start)} to {_stamp(period.end)}"
    report = Report("Learning to retrieve: live report", f"{where} · {span}" if where else span)
    report.verdict(_verdict(summary, since))
    _summary(report, summary)
    _arm_share(report, summary)
    _rewards(report, summary)
    _fallbacks(report, summary)
    _latency(report, summary)
    report.heading("Rollout comparison")
    _rollout(report, compare(period.decisions, period.events) if compare is not None else None)
    report.heading("How this was measured")
    for text in _METHOD:
        report.paragraph(text)
    return report.write(path)


def _verdict(summary: LiveSummary, since: str) -> str:
    n = summary.decisions
    fell = sum(summary.fallback_per_bin) / n
    failed = sum(summary.failed_per_bin) / n
    line = (
        f"{n:,} searches and {summary.events:,} feedback events in the last {since}; "
        f"{fell:.1%} fell back to the static plan and {failed:.1%} lost an arm"
    )
    if summary.latency is None:
        return line + "; latency was not logged by this proxy version."
    return line + f"; latency p50 {summary.latency.p50:,.1f} ms, p99 {summary.latency.p99:,.1f} ms."


def _summary(report: Report, summary: LiveSummary) -> None:
    report.heading("Summary")
    policies = ", ".join(f"{p} ({c:,})" for p, c in sorted(summary.policies.items()))
    types = ", ".join(f"{t} ({c:,})" for t, c in sorted(summary.event_types.items()))
    report.table(
        ["", "Value"],
        [
            ["Searches (decisions logged)", summary.decisions],
            ["Feedback events on them", summary.events],
            ["Events received for earlier searches (not counted)", summary.unmatched_events],
            ["Event types", types or "none"],
            ["Policies", policies],
            [f"Groups (by {summary.grouping})", len(summary.groups)],
        ],
    )


def _arm_share(report: Report, summary: LiveSummary) -> None:
    report.heading("Arm share over time")
    rows: list[list[object]] = []
    for group in summary.groups:
        size = summary.group_sizes[group]
        asked = [
            sum((s or 0.0) * t for s, t in zip(shares, summary.searches[group], strict=True))
            for shares in (summary.share[group][arm] for arm in summary.arms)
        ]
        rows.append([group, size, *(f"{a / size:.1%}" for a in asked)])
    report.table(
        [summary.grouping.capitalize(), "Searches", *summary.arms],
        rows,
        caption="The share of each group's searches that asked for each arm, over the period.",
    )
    report.figure(
        plots.arm_share(summary),
        f"Which arms the policy asked for, per {summary.grouping}, as a share of that "
        "group's searches in each time bin. Lines that separate by group mean it learned that "
        "they need different retrieval; gaps are bins where the group had no search.",
    )


def _rewards(report: Report, summary: LiveSummary) -> None:
    report.heading("Reward per arm")
    report.table(
        ["Arm", "Searches", "Failed", "Events paid", "Reward", "Mean reward", "95% ±"],
        [
            [r.arm, r.searches, r.failed, r.credited, r.reward, _num(r.mean), _num(r.half_width)]
            for r in summary.rewards
        ],
        caption=(
            "Reward is the sum of the weights the feedback events paid the arm (an event pays "
            "the arms that retrieved the document engaged with). The mean is per answered "
            "search that asked for the arm, counting searches without feedback as 0."
        ),
    )
    if summary.events and any(r.mean is not None for r in summary.rewards):
        report.figure(
            plots.reward_per_arm(summary),
            "Mean reward per search that asked for the arm, with a normal 95% interval.",
        )
    report.table(
        [summary.grouping.capitalize(), *summary.arms],
        [
            [g, *(_num(summary.reward_by_group[g][arm]) for arm in summary.arms)]
            for g in summary.groups
        ],
        caption=f"Mean reward per arm and {summary.grouping}: where each arm pays.",
    )


def _fallbacks(report: Report, summary: LiveSummary) -> None:
    report.heading("Fallbacks and failures")
    n = summary.decisions
    rows: list[list[object]] = [
        [reason, count, f"{count / n:.1%}"] for reason, count in sorted(summary.fallbacks.items())
    ]
    report.table(
        ["Fallback reason", "Searches", "Share"],
        rows or [["none", 0, "0.0%"]],
        caption=(
            "Searches the catalog's static plan answered instead of the policy's choice. A "
            "search that fell through to OpenSearch unchanged logs no decision and is not here."
        ),
    )
    report.table(
        ["Arm", "Asked for", "Failed", "Failure rate"],
        [
            [r.arm, r.searches, r.failed, f"{r.failed / r.searches:.1%}" if r.searches else ""]
            for r in summary.rewards
        ],
        caption="Arms that were asked for and did not answer (an error or a timeout).",
    )
    report.figure(
        plots.fallbacks(summary),
        "Searches per time bin, and those that fell back or lost an arm. A step up in either "
        "line points at the time an arm's index or the embedder started failing.",
    )


def _latency(report: Report, summary: LiveSummary) -> None:
    report.heading("Latency")
    if summary.latency is None:
        report.paragraph(
            "No decision of the period logged its latency (took_ms): they were made by a proxy "
            "version from before it was logged."
        )
        return
    rows = [_quantile_row("whole search", summary.latency)]
    rows += [_quantile_row(stage, q) for stage, q in summary.stages.items()]
    report.table(
        ["Stage", "Searches", "p50 ms", "p90 ms", "p99 ms", "max ms"],
        rows,
        caption=(
            "From the request's arrival at the proxy to its ranked list, and per stage. "
            "Percentiles are nearest-rank."
        ),
    )
    report.figure(
        plots.latency(summary),
        "The distribution of search latency over the period, and its median and p99 per bin.",
    )


def _quantile_row(name: str, q: Quantiles) -> list[object]:
    return [name, q.count, f"{q.p50:,.1f}", f"{q.p90:,.1f}", f"{q.p99:,.1f}", f"{q.max:,.1f}"]


def _rollout(report: Report, comparison: Comparison | None) -> None:
    if comparison is None:
        report.paragraph(NO_ROLLOUT)
        return
    scalars, sides = comparison_tables(comparison)
    if sides:
        names = list(sides)
        keys = list(dict.fromkeys(k for side in sides.values() for k in side))
        report.table(
            ["", *names],
            [[key, *(_cell(sides[s].get(key)) for s in names)] for key in keys],
            caption="Each side of the rollout over the period.",
        )
    if scalars:
        report.table(
            ["Comparison", "Value"],
            [[key, _cell(value)] for key, value in scalars.items()],
            caption="Between the sides: intervals are 95%.",
        )


def comparison_tables(
    comparison: Comparison,
) -> tuple[dict[str, object], dict[str, dict[str, object]]]:
    """The comparison's own figures, and its sides (nested objects) field by field."""
    fields = _fields(comparison)
    scalars: dict[str, object] = {}
    sides: dict[str, dict[str, object]] = {}
    for key, value in fields.items():
        if _is_record(value):
            sides[key] = _fields(value)
        else:
            scalars[key] = value
    return scalars, sides


def _is_record(value: object) -> bool:
    return isinstance(value, Mapping) or (
        dataclasses.is_dataclass(value) and not isinstance(value, type)
    )


def _fields(value: object) -> dict[str, object]:
    if isinstance(value, Mapping):
        return {str(k): v for k, v in value.items()}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}
    raise LtrrError(f"a rollout comparison must be a dataclass or a mapping, not {value!r}")


def _cell(value: object) -> str:
    if isinstance(value, tuple | list):
        return "[" + ", ".join(format_cell(v) for v in value) + "]"
    if isinstance(value, bool):
        return "yes" if value else "no"
    return format_cell(value)


def _num(value: float | None) -> str:
    return "" if value is None else f"{value:,.3f}"


def _stamp(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%d %H:%M UTC")


def _duration(seconds: float) -> str:
    """A period as a reader says it: 90 minutes, 24 hours, 7 days."""
    whole = round(seconds)
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        count, rest = divmod(whole, size)
        if rest == 0 and count >= (2 if size == 86400 else 1):
            return f"{count} {unit}s" if count != 1 else f"1 {unit}"
    if whole >= 2 * 86400:  # a period of a log's own span (``--until``), not a round one
        return f"{whole / 86400:.1f} days"
    if whole >= 3600:
        return f"{whole / 3600:.1f} hours"
    return f"{whole} seconds"


_METHOD = (
    "Every search the proxy answered with a plan logs one decision document to "
    "ltrr-decisions: the arms it asked for with their propensities, which of them answered, "
    "its features and context, whether the catalog's fallback plan stood in, and its latency. "
    "Feedback events, once stored, are shipped to ltrr-events with the reward each included "
    "arm earned. The report reads both (ltrr-decisions* and ltrr-events*, so daily indices "
    "behind an alias are read too) with a scroll, filtered on the decision's timestamp and the "
    "event's time of receipt.",
    "Groups are the callers' context.intent when the searches send one, else query shapes "
    "from the features the policy saw: a known entity name (entity_exact), the start of one "
    "(entity_prefix), a quoted phrase, then one word, two or three, or more. The largest five "
    "groups are shown, the rest as 'other'.",
    "An event counts when the decision it answers was made in the period; a search without "
    "feedback earned 0 for its arms, as the learner counts it when its window closes. "
    "Searches that fell through to OpenSearch unchanged (every plan failed) log no decision, "
    "so they appear in the proxy's /_ltrr/stats counters, not here.",
)
