"""The numbers a simulation is judged by, the one-paragraph verdict, and a terminal table.

Every policy saw the same seeded stream, so session ``i`` of one run can be compared with
session ``i`` of another: regret is that index-wise difference against the oracle.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from ltrr.plugin.errors import LtrrError
from ltrr.plugin.ops.html import format_cell
from ltrr.plugin.ops.simulate.lineup import RERANK
from ltrr.plugin.ops.simulate.results import PolicyRun, SessionRecord, mean

__all__ = [
    "IntentSummary",
    "InvalidRuns",
    "PolicySummary",
    "best_hybrid",
    "best_static",
    "cumulative",
    "format_table",
    "percentile",
    "regret_per_session",
    "summarize",
    "verdict",
]


# The native hybrid contenders' names (lineup.HYBRIDS): fixed plans, but OpenSearch's own.
HYBRID_PREFIX = "hybrid:"


class InvalidRuns(LtrrError, ValueError):
    """Runs that cannot be compared; a ``ValueError`` too, since it is bad input."""


@dataclass(frozen=True, slots=True)
class IntentSummary:
    """How a policy did on one intent: learners may win on some intents and lose on others."""

    intent: str
    sessions: int
    mean_reward: float
    mean_recall: float | None


@dataclass(frozen=True, slots=True)
class PolicySummary:
    """One row of the report: a policy's run reduced to the numbers a reader compares."""

    name: str
    description: str
    learning: bool
    sessions: int
    cumulative_reward: float
    mean_reward: float
    mean_expected_reward: float
    regret: float | None
    regret_growth: float | None
    mean_recall: float | None
    mean_ndcg: float
    mean_retrieved: float
    mean_arms: float
    latency_p50_ms: float
    latency_p99_ms: float
    intents: tuple[IntentSummary, ...]


def cumulative(values: Iterable[float]) -> list[float]:
    """Running totals: reward and regret are read as curves over the session stream."""
    total = 0.0
    out: list[float] = []
    for value in values:
        total += value
        out.append(total)
    return out


def percentile(values: Sequence[float], p: float) -> float:
    """Nearest-rank percentile: always a latency that was actually observed, never a blend."""
    if not 0 < p <= 100:
        raise InvalidRuns(f"percentile must be in (0, 100], got {p}")
    if not values:
        raise InvalidRuns("percentile of no values")
    ordered = sorted(values)
    rank = max(1, math.ceil(p * len(ordered) / 100))
    return ordered[rank - 1]


def regret_per_session(run: PolicyRun, oracle: PolicyRun) -> list[float]:
    """Expected-reward gap to the oracle at each session; expectation removes click noise."""
    _check_same_stream(oracle, run)
    return [
        o.expected_reward - s.expected_reward
        for o, s in zip(oracle.sessions, run.sessions, strict=True)
    ]


def summarize(runs: Sequence[PolicyRun], oracle: str | None = "oracle") -> list[PolicySummary]:
    """One summary per run, in the order given; regret is None when no oracle run is present."""
    names = [run.name for run in runs]
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise InvalidRuns(f"policy names must be unique, repeated: {', '.join(duplicates)}")
    for run in runs:
        if not run.sessions:
            raise InvalidRuns(f"run {run.name!r} has no sessions: nothing to summarize")
    reference = next((run for run in runs if run.name == oracle), None)
    if reference is not None:
        for run in runs:
            _check_same_stream(reference, run)
    return [_summarize_one(run, reference) for run in runs]


def best_static(
    summaries: Sequence[PolicySummary],
    *,
    full: str = "full",
    static_prefixes: Sequence[str] = ("static", "only:"),
) -> PolicySummary | None:
    """The fixed plan to beat: a learner is only worth its complexity if it beats this one."""
    candidates = [
        s
        for s in summaries
        if not s.learning
        and s.name != full
        and s.name.startswith(tuple(static_prefixes))
        and not s.name.endswith(RERANK)
    ]
    return max(candidates, key=lambda s: s.cumulative_reward, default=None)


def best_hybrid(
    summaries: Sequence[PolicySummary], *, prefix: str = HYBRID_PREFIX
) -> PolicySummary | None:
    """OpenSearch's own hybrid search at its best: what a search engineer would run instead."""
    candidates = [s for s in summaries if s.name.startswith(prefix)]
    return max(candidates, key=lambda s: s.cumulative_reward, default=None)


def verdict(
    summaries: Sequence[PolicySummary],
    *,
    learner: str = "linucb",
    full: str = "full",
    static_prefixes: Sequence[str] = ("static", "only:"),
    k: int | None = None,
) -> str:
    """The answer in two sentences: did learning pay, and what recall did it keep for its cost;
    a third, when OpenSearch's hybrid search ran: did it beat that."""
    by_name = {s.name: s for s in summaries}
    if learner not in by_name:
        known = ", ".join(by_name) or "none"
        raise InvalidRuns(f"no run named {learner!r} to judge; runs: {known}")
    me = by_name[learner]
    first = f"{me.name} earned {_number(me.cumulative_reward)} reward over {me.sessions:,} sessions"
    static = best_static(summaries, full=full, static_prefixes=static_prefixes)
    if static is None:
        first += " (no static plan to compare against)"
    else:
        gap = me.cumulative_reward - static.cumulative_reward
        against = f"the best static plan ({static.name}, {_number(static.cumulative_reward)})"
        if gap == 0:
            first += f", the same as {against}"
        elif static.cumulative_reward == 0:
            first += f", {'more' if gap > 0 else 'less'} than {against}"
        else:
            share = _percent(abs(gap) / abs(static.cumulative_reward))
            first += f", {share} {'more' if gap > 0 else 'less'} than {against}"
            if gap < 0:
                first += ": learning did not pay"
    rivals = [
        s for s in summaries if s.learning and s.name != me.name and not s.name.endswith(RERANK)
    ]
    top = max(rivals, key=lambda s: s.cumulative_reward, default=None)
    if top is not None and top.cumulative_reward > me.cumulative_reward:
        first += f"; {top.name} earned more ({_number(top.cumulative_reward)})"
    sentences = [first + "."]
    native = best_hybrid(summaries)
    if native is not None:
        gap = me.cumulative_reward - native.cumulative_reward
        against = (
            f"OpenSearch's own hybrid search at its best ({native.name}, "
            f"{_number(native.cumulative_reward)})"
        )
        if gap == 0:
            how = "the same"
        elif native.cumulative_reward == 0:
            how = "more" if gap > 0 else "less"
        else:
            share = _percent(abs(gap) / abs(native.cumulative_reward))
            how = f"{share} {'more' if gap > 0 else 'less'}"
        sentences.append(f"Against {against}, it earned {how}.")
    ceiling = by_name.get(full)
    if ceiling is not None and me.mean_recall is not None and ceiling.mean_recall is not None:
        label = f"recall@{k}" if k is not None else "recall"
        second = (
            f"Its {label} is {me.mean_recall:.2f} against {ceiling.mean_recall:.2f} "
            "for all arms at full size"
        )
        if ceiling.mean_retrieved > 0:
            share = _percent(me.mean_retrieved / ceiling.mean_retrieved)
            second += f", retrieving {share} of the documents"
        sentences.append(second + ".")
    reranked = by_name.get(me.name + RERANK)
    if reranked is not None:
        rerank = (
            f"Reranked by the LTR model, its nDCG@10 is {reranked.mean_ndcg:.3f} against "
            f"{me.mean_ndcg:.3f} fused ({_number(reranked.cumulative_reward)} reward)"
        )
        static_reranked = by_name.get("static" + RERANK)
        if static_reranked is not None:
            rerank += f"; the static plan with the same rerank: {static_reranked.mean_ndcg:.3f}"
        sentences.append(rerank + ".")
    return " ".join(sentences)


_COLUMNS = (
    ("policy", 0),
    ("reward", 10),
    ("regret", 9),
    ("recall@{k}", 10),
    ("nDCG@10", 8),
    ("docs/search", 12),
    ("arms/search", 12),
    ("p50 ms", 8),
    ("p99 ms", 8),
)


def format_table(summaries: Sequence[PolicySummary], k: int) -> str:
    """Fixed-width text for the terminal, where the HTML report is not at hand."""
    headers = [name.format(k=k) for name, _ in _COLUMNS]
    rows = [
        [
            s.name,
            _number(s.cumulative_reward),
            "-" if s.regret is None else _number(s.regret),
            "-" if s.mean_recall is None else f"{s.mean_recall:.3f}",
            f"{s.mean_ndcg:.3f}",
            f"{s.mean_retrieved:,.1f}",
            f"{s.mean_arms:.2f}",
            f"{s.latency_p50_ms:.1f}",
            f"{s.latency_p99_ms:.1f}",
        ]
        for s in summaries
    ]
    first = max([len(headers[0]), *(len(row[0]) for row in rows)])
    widths = [first] + [
        max(minimum, len(h), *(len(row[i]) for row in rows))
        for i, (h, (_, minimum)) in enumerate(zip(headers, _COLUMNS, strict=True))
        if i > 0
    ]

    def line(cells: Sequence[str]) -> str:
        parts = [cells[0].ljust(widths[0])]
        parts += [cell.rjust(width) for cell, width in zip(cells[1:], widths[1:], strict=True)]
        return "  ".join(parts).rstrip()

    rule = "  ".join("-" * width for width in widths)
    return "\n".join([line(headers), rule, *(line(row) for row in rows)])


def _summarize_one(run: PolicyRun, oracle: PolicyRun | None) -> PolicySummary:
    sessions = run.sessions
    regret: float | None = None
    growth: float | None = None
    if oracle is not None:
        gaps = regret_per_session(run, oracle)
        regret = sum(gaps)
        growth = _growth(gaps)
    recalls = [s.recall for s in sessions if s.recall is not None]
    latencies = [s.latency_ms for s in sessions]
    return PolicySummary(
        name=run.name,
        description=run.description,
        learning=run.learning,
        sessions=len(sessions),
        cumulative_reward=sum(s.reward for s in sessions),
        mean_reward=mean([s.reward for s in sessions]),
        mean_expected_reward=mean([s.expected_reward for s in sessions]),
        regret=regret,
        regret_growth=growth,
        mean_recall=mean(recalls) if recalls else None,
        mean_ndcg=mean([s.ndcg for s in sessions]),
        mean_retrieved=mean([float(s.retrieved) for s in sessions]),
        mean_arms=mean([float(len(s.arms)) for s in sessions]),
        latency_p50_ms=percentile(latencies, 50),
        latency_p99_ms=percentile(latencies, 99),
        intents=_by_intent(sessions),
    )


def _growth(gaps: Sequence[float]) -> float | None:
    """Last third over first third; undefined when the first third added no positive regret."""
    third = len(gaps) // 3
    if third == 0:
        return None
    early = sum(gaps[:third])
    late = sum(gaps[len(gaps) - third :])
    return late / early if early > 0 else None


def _by_intent(sessions: Sequence[SessionRecord]) -> tuple[IntentSummary, ...]:
    groups: dict[str, list[SessionRecord]] = {}
    for s in sessions:
        groups.setdefault(s.intent, []).append(s)
    out = []
    for intent in sorted(groups):
        group = groups[intent]
        recalls = [s.recall for s in group if s.recall is not None]
        out.append(
            IntentSummary(
                intent=intent,
                sessions=len(group),
                mean_reward=mean([s.reward for s in group]),
                mean_recall=mean(recalls) if recalls else None,
            )
        )
    return tuple(out)


def _check_same_stream(reference: PolicyRun, run: PolicyRun) -> None:
    """Index-wise comparison is only meaningful when both runs replayed the same stream."""
    if len(run.sessions) != len(reference.sessions):
        raise InvalidRuns(
            f"run {run.name!r} has {len(run.sessions)} sessions but {reference.name!r} has "
            f"{len(reference.sessions)}: runs must replay the same seeded stream"
        )
    for i, (ours, theirs) in enumerate(zip(run.sessions, reference.sessions, strict=True)):
        if ours.query != theirs.query:
            raise InvalidRuns(
                f"session {i} of run {run.name!r} is {ours.query!r} but {theirs.query!r} in "
                f"{reference.name!r}: runs must replay the same seeded stream"
            )


def _number(value: float) -> str:
    return format_cell(float(value))


def _percent(fraction: float) -> str:
    """Whole percents read best; one decimal only when rounding would show 0%."""
    return f"{fraction:.0%}" if fraction >= 0.005 else f"{fraction:.1%}"
