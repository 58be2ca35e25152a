"""The same line-up over several seeds through the real node: every figure as the mean and a
95% Student-t interval over the seeds, on tuning and held-out queries apart.

One seed is one sample: the interval is over seeds, never over sessions, which are not
independent (a learner's session 2,000 depends on its first 1,999). Differences are paired by
seed: a contender and its reference saw the same stream, so most of the stream's own variance
cancels. The reference of ``X+rerank`` is ``X`` (what the rerank adds), of every other
contender ``static`` (what learning adds).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from ltrr.plugin.ops.replay.bench import Interval, interval
from ltrr.plugin.ops.simulate.lineup import RERANK
from ltrr.plugin.ops.simulate.results import PolicyRun, SessionRecord

__all__ = ["SeedRow", "format_seed_table", "seed_table"]

BASELINE = "static"


@dataclass(frozen=True, slots=True)
class SeedRow:
    """One contender on one part of the queries, over the seeds."""

    name: str
    part: str  # "tuning" | "held-out" | "all"
    sessions: int  # per seed on this part (the mean, when the seeds' streams differ)
    clicks: Interval  # reward per search
    ndcg: Interval
    recall: Interval
    docs: Interval
    arms: Interval
    p50: Interval
    p99: Interval
    reference: str | None
    d_clicks: Interval | None
    d_ndcg: Interval | None


def _mean(values: Sequence[float]) -> float:
    return float(np.mean(values)) if values else 0.0


def _figures(sessions: Sequence[SessionRecord]) -> dict[str, float]:
    latency = [s.latency_ms for s in sessions]
    return {
        "clicks": _mean([s.reward for s in sessions]),
        "ndcg": _mean([s.ndcg for s in sessions]),
        "recall": _mean([s.recall for s in sessions if s.recall is not None]),
        "docs": _mean([float(s.retrieved) for s in sessions]),
        "arms": _mean([float(len(s.arms)) for s in sessions]),
        "p50": float(np.percentile(latency, 50)) if latency else 0.0,
        "p99": float(np.percentile(latency, 99)) if latency else 0.0,
    }


def _pick(key: str, values: Sequence[Mapping[str, float]]) -> Interval:
    return interval([v[key] for v in values])


def _paired(
    key: str, mine: Sequence[Mapping[str, float]], theirs: Sequence[Mapping[str, float]]
) -> Interval:
    return interval([a[key] - b[key] for a, b in zip(mine, theirs, strict=True)])


def _reference(name: str, names: Sequence[str]) -> str | None:
    if name.endswith(RERANK):
        base = name.removesuffix(RERANK)
        return base if base in names else None
    return BASELINE if name != BASELINE and BASELINE in names else None


def seed_table(
    runs: Mapping[int, Sequence[PolicyRun]], held_out: frozenset[str] = frozenset()
) -> list[SeedRow]:
    """Rows per contender (line-up order) and part; ``held_out`` holds dataset query ids."""
    if not runs:
        return []
    seeds = sorted(runs)
    names = [run.name for run in runs[seeds[0]]]
    for seed in seeds:
        if [run.name for run in runs[seed]] != names:
            raise ValueError(f"seed {seed} ran another line-up than seed {seeds[0]}")
    parts: list[tuple[str, Callable[[SessionRecord], bool]]] = [("all", lambda s: True)]
    if held_out:
        parts = [
            ("tuning", lambda s: s.query_id not in held_out),
            ("held-out", lambda s: s.query_id in held_out),
        ]
    rows: list[SeedRow] = []
    for part, keep in parts:
        figures: dict[str, list[dict[str, float]]] = {name: [] for name in names}
        counts: dict[str, list[int]] = {name: [] for name in names}
        for seed in seeds:
            for run in runs[seed]:
                chosen = [s for s in run.sessions if keep(s)]
                counts[run.name].append(len(chosen))
                figures[run.name].append(_figures(chosen))
        for name in names:
            per_seed = figures[name]
            ref = _reference(name, names)

            rows.append(
                SeedRow(
                    name,
                    part,
                    round(sum(counts[name]) / len(counts[name])),
                    _pick("clicks", per_seed),
                    _pick("ndcg", per_seed),
                    _pick("recall", per_seed),
                    _pick("docs", per_seed),
                    _pick("arms", per_seed),
                    _pick("p50", per_seed),
                    _pick("p99", per_seed),
                    ref,
                    _paired("clicks", per_seed, figures[ref]) if ref else None,
                    _paired("ndcg", per_seed, figures[ref]) if ref else None,
                )
            )
    return rows


def _pm(value: Interval, digits: int) -> str:
    return f"{value.mean:.{digits}f} ± {value.half:.{digits}f}"


def format_seed_table(rows: Sequence[SeedRow], seeds: Sequence[int]) -> str:
    """A Markdown table per part, the paired differences beside each row."""
    out: list[str] = []
    for part in dict.fromkeys(r.part for r in rows):
        mine = [r for r in rows if r.part == part]
        out.append(
            f"{part} queries ({mine[0].sessions:,} sessions per seed on average; seeds "
            f"{', '.join(map(str, seeds))}; mean ± 95% interval over seeds)"
        )
        out.append(
            "| contender | clicks/search | nDCG@10 | recall | docs | arms | p50 ms | p99 ms "
            "| vs | Δ clicks | Δ nDCG@10 |"
        )
        out.append("|---|---|---|---|---|---|---|---|---|---|---|")
        for r in mine:
            out.append(
                f"| {r.name} | {_pm(r.clicks, 3)} | {_pm(r.ndcg, 3)} | {_pm(r.recall, 3)} "
                f"| {r.docs.mean:.1f} | {r.arms.mean:.2f} | {_pm(r.p50, 1)} | {_pm(r.p99, 0)} "
                f"| {r.reference or '-'} "
                f"| {_pm(r.d_clicks, 3) if r.d_clicks else '-'} "
                f"| {_pm(r.d_ndcg, 3) if r.d_ndcg else '-'} |"
            )
        out.append("")
    return "\n".join(out).rstrip()
