"""``ltrr replay``: the line-up over several seeds and two parts of the queries, with intervals.

The queries are split once, by a hash of their id, into a tuning part and a held-out part;
each part is simulated on its own (its sessions draw only its queries), so a constant chosen by
looking at the tuning part can be checked on queries it never saw. Every figure is the mean over
the seeds with a 95% Student-t interval; differences against the best static plan are paired
by seed (the same sessions, the same users, the same click noise).
"""

from __future__ import annotations

import math
import statistics
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from scipy.stats import t as student_t  # type: ignore[import-untyped]

from ltrr.bandit.features import EntityDictionary
from ltrr.plugin.errors import LtrrError
from ltrr.plugin.ops.client import Cluster
from ltrr.plugin.ops.data.beir import BeirDataset, read_beir
from ltrr.plugin.ops.replay.capture import capture
from ltrr.plugin.ops.replay.loop import (
    LEARNERS,
    Replay,
    Served,
    line_up,
    run_contender,
    run_oracle,
)
from ltrr.plugin.ops.replay.timing import Latency, measure
from ltrr.plugin.ops.simulate.clicks import from_spec
from ltrr.plugin.ops.simulate.run import prepare_index
from ltrr.plugin.ops.simulate.stream import session_stream
from ltrr.query_plans.catalog import load_catalog

PARTS = ("tuning", "held-out")
WINDOW = 500


@dataclass(frozen=True, slots=True)
class ReplayConfig:
    catalog: Path
    dataset: Path
    sessions: int = 3000
    seeds: tuple[int, ...] = (7, 8, 9)
    learners: tuple[str, ...] = LEARNERS
    held_out: float = 0.3
    click_model: str = "pbm"
    k: int = 100
    page: int = 10
    users: int = 1000
    opensearch: str = "http://127.0.0.1:9200"
    index: str | None = None
    work_dir: Path = Path("build/replay")
    progress: bool = True
    latency_every: int = 10  # time every N-th session's requests on the node (0: none)


@dataclass(frozen=True, slots=True)
class Interval:
    mean: float
    half: float  # half-width of the 95% interval (0 with one seed)

    def __str__(self) -> str:
        return f"{self.mean:.3f} ± {self.half:.3f}"


def interval(values: Sequence[float]) -> Interval:
    if not values:
        return Interval(0.0, 0.0)
    mean = statistics.fmean(values)
    if len(values) < 2:
        return Interval(mean, 0.0)
    t = float(student_t.ppf(0.975, len(values) - 1))
    return Interval(mean, t * statistics.stdev(values) / math.sqrt(len(values)))


def split_queries(ids: Sequence[str], held_out: float) -> tuple[frozenset[str], frozenset[str]]:
    """(tuning, held-out) by CRC-32 of the id: the same split on every machine and run."""
    if not 0.0 <= held_out < 1.0:
        raise LtrrError(f"--held-out must be in [0, 1), got {held_out}")
    out = frozenset(i for i in ids if zlib.crc32(i.encode()) % 1000 < held_out * 1000)
    return frozenset(ids) - out, out


def _part(data: BeirDataset, ids: frozenset[str]) -> BeirDataset:
    return replace(data, queries={q: v for q, v in data.queries.items() if q in ids})


@dataclass(slots=True)
class PartResult:
    """One part: per contender, per seed, the sessions served (oracle included)."""

    name: str
    queries: int
    runs: dict[str, list[list[Served]]] = field(default_factory=dict)
    descriptions: dict[str, str] = field(default_factory=dict)
    learning: set[str] = field(default_factory=set)
    latency: dict[str, list[Latency]] = field(default_factory=dict)  # per contender, per seed
    latency_every: int = 0


def _metric(served: Sequence[Served], pick: Callable[[Served], float]) -> float:
    return statistics.fmean(pick(s) for s in served) if served else 0.0


METRICS: dict[str, Callable[[Served], float]] = {
    "clicks": lambda s: s.clicks,
    "expected": lambda s: s.expected,
    "ndcg@10": lambda s: s.ndcg,
    "recall@k": lambda s: s.recall,
    "docs": lambda s: float(s.retrieved),
    "arms": lambda s: float(s.arms),
}


def run_replay(config: ReplayConfig, say: Callable[[str], None] = print) -> list[PartResult]:
    catalog = load_catalog(config.catalog)
    data = read_beir(config.dataset)
    http = Cluster(config.opensearch.rstrip("/"), timeout=300)
    index = prepare_index(http, catalog, data, say, config.progress, None, config.index)
    captured = capture(
        http, catalog, data, index, config.work_dir, k=config.k, say=say, progress=config.progress
    )
    g_max = max((g for judged in data.qrels.values() for g in judged.values()), default=1)
    clicks = from_spec(config.click_model, g_max=max(g_max, 1))
    entities = EntityDictionary(captured.entities) if captured.entities else None
    judged = sorted(q for q in data.queries if data.qrels.get(q))
    tuning, held = split_queries(judged, config.held_out)
    contenders = line_up(catalog, captured, config.learners)
    results: list[PartResult] = []
    for name, ids in zip(PARTS, (tuning, held), strict=True):
        if not ids:
            continue
        part = PartResult(name, len(ids), latency_every=config.latency_every)
        subset = _part(data, ids)
        for seed in config.seeds:
            sessions = session_stream(subset, config.sessions, seed=seed, users=config.users)
            replay = Replay(
                catalog, captured, data.qrels, clicks, seed, config.page, config.k, entities
            )
            for contender in contenders:
                part.descriptions[contender.name] = contender.description
                if contender.kind == "learner":
                    part.learning.add(contender.name)
                served = run_contender(replay, contender, sessions)
                part.runs.setdefault(contender.name, []).append(served)
            if config.latency_every > 0:
                timed = measure(
                    http,
                    catalog,
                    index,
                    captured.key,
                    sessions,
                    {c.name: part.runs[c.name][-1] for c in contenders},  # this seed's
                    every=config.latency_every,
                    k=config.k,
                )
                for contender_name, latency in timed.items():
                    part.latency.setdefault(contender_name, []).append(latency)
            part.descriptions["oracle"] = "best plan per session (replays every plan)"
            part.runs.setdefault("oracle", []).append(run_oracle(replay, sessions))
            say(f"{name}: seed {seed} done")
        results.append(part)
    return results


def _per_seed(runs: Sequence[Sequence[Served]], metric: str) -> list[float]:
    return [_metric(served, METRICS[metric]) for served in runs]


# Not a plan at the same budget: "full" asks every arm at its max size (the recall reference).
NOT_AT_BUDGET = ("full", "oracle")


def best_static(part: PartResult, metric: str = "clicks") -> str:
    """The best plan at the same budget that never learns: each arm alone, the static fusion,
    OpenSearch's hybrid query (RRF, min-max)."""
    static = [n for n in part.runs if n not in part.learning and n not in NOT_AT_BUDGET]
    return max(static, key=lambda n: statistics.fmean(_per_seed(part.runs[n], metric)))


def window_minimum(learner: Sequence[Served], baseline: Sequence[Served]) -> float:
    """The worst relative difference in expected clicks over consecutive windows of 500."""
    worst = math.inf
    for start in range(0, len(learner) - WINDOW + 1, WINDOW):
        a = sum(s.expected for s in learner[start : start + WINDOW])
        b = sum(s.expected for s in baseline[start : start + WINDOW])
        if b > 0:
            worst = min(worst, a / b - 1.0)
    return worst


def gap_share(learner: float, static: float, oracle: float) -> float:
    """The share of the gap from the best static plan to the oracle that the learner closes."""
    gap = oracle - static
    return (learner - static) / gap if gap > 0 else 0.0


def _worst(windows: Sequence[float]) -> str:
    worst = min(windows, default=math.inf)
    return f"{worst:+.1%}" if math.isfinite(worst) else f"n/a (fewer than {WINDOW} sessions)"


def _latency_cells(part: PartResult, name: str) -> list[str]:
    timed = part.latency.get(name)
    if not timed:
        return ["n/a", "n/a"]
    return [str(interval([t.quantile(q) for t in timed])) for q in (0.5, 0.99)]


def format_part(part: PartResult) -> str:
    columns = list(METRICS)
    timed = bool(part.latency)
    best = best_static(part)
    heads = columns + (["p50 ms", "p99 ms"] if timed else [])
    lines = [
        f"## {part.name} queries ({part.queries}), {len(part.runs[best])} seeds, "
        f"{len(part.runs[best][0])} sessions each",
        "",
        "| contender | " + " | ".join(heads) + " |",
        "|---|" + "---|" * len(heads),
    ]
    for name, runs in part.runs.items():
        cells = [str(interval(_per_seed(runs, m))) for m in columns]
        if timed:
            cells += _latency_cells(part, name)
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    lines.append("")
    if timed:
        samples = len(next(iter(part.latency.values()))[0].samples)
        lines.append(
            f"p50/p99 ms: wall-clock round trip of each contender's own retrieval on the node "
            f"({samples} searches per seed, one session in {part.latency_every}, contenders in "
            "turn; no embedding, no proxy overhead: see `ltrr bench overhead`). Not "
            "deterministic, unlike the rest of the table."
        )
        lines.append("")
    oracle = part.runs["oracle"]
    lines.append(
        f"best static plan at the same budget, on clicks: {best}. oracle = the best of every "
        "candidate plan for each session, replayed (an upper bound with these arms); regret = "
        "oracle minus contender, in expected clicks per search"
    )
    for name in sorted(part.learning):
        runs = part.runs[name]
        diff = {
            m: interval(
                [
                    a - b
                    for a, b in zip(_per_seed(runs, m), _per_seed(part.runs[best], m), strict=True)
                ]
            )
            for m in ("clicks", "ndcg@10")
        }
        shares = [
            gap_share(
                _metric(mine, METRICS["expected"]),
                _metric(base, METRICS["expected"]),
                _metric(top, METRICS["expected"]),
            )
            for mine, base, top in zip(runs, part.runs[best], oracle, strict=True)
        ]
        regret = [
            _metric(top, METRICS["expected"]) - _metric(mine, METRICS["expected"])
            for mine, top in zip(runs, oracle, strict=True)
        ]
        windows = [
            window_minimum(mine, base) for mine, base in zip(runs, part.runs["static"], strict=True)
        ]
        lines.append(
            f"- {name}: clicks vs {best} {diff['clicks']}, nDCG@10 vs {best} {diff['ndcg@10']}; "
            f"oracle gap closed {interval(shares)}; regret/search {interval(regret)}; "
            f"worst {WINDOW}-session window vs static {_worst(windows)}"
        )
    return "\n".join(lines)


def format_results(results: Sequence[PartResult]) -> str:
    return "\n\n".join(format_part(part) for part in results)
