"""The simulation's HTML report, and the JSON file of runs it can be redrawn from.

The report answers first (the verdict), then shows the evidence (tables, then curves), then
says how it was measured, so that a reader can stop as soon as they have what they need.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import orjson

from ltrr.plugin.errors import LtrrError
from ltrr.plugin.ops.html import Report, format_cell
from ltrr.plugin.ops.simulate import plots
from ltrr.plugin.ops.simulate.results import PolicyRun
from ltrr.plugin.ops.simulate.summary import HYBRID_PREFIX, PolicySummary, summarize, verdict

__all__ = ["load_runs", "save_runs", "simulation_report"]

_FORMAT_VERSION = 1
_DEFAULT_LEARNER = "safe_plans"  # the example catalogs' policy
_FULL = "full"


def simulation_report(
    runs: Sequence[PolicyRun],
    path: Path,
    *,
    k: int = 100,
    oracle: str | None = "oracle",
    title: str = "Learning to retrieve: simulated sessions",
    notes: Sequence[str] = (),
) -> Path:
    """Write one self-contained HTML file comparing every policy's pass over the stream."""
    if not runs:
        raise LtrrError("no runs to report on: run the simulation first")
    summaries = summarize(runs, oracle)
    reference = oracle if oracle is not None and any(r.name == oracle for r in runs) else None
    colors = plots.policy_colors([run.name for run in runs])
    counts = sorted({s.sessions for s in summaries})
    stream = f"{counts[0]:,} sessions each" if len(counts) == 1 else "runs of different lengths"
    report = Report(title, f"{len(runs)} policies, {stream}")

    report.verdict(_verdict(summaries, reference, k))

    report.heading("Summary")
    contenders = [i for i, s in enumerate(summaries) if s.name != reference]
    winner = max(contenders, key=lambda i: summaries[i].cumulative_reward, default=None)
    report.table(
        [
            "Policy", "Reward", "Mean reward", "Mean expected", "Regret", "Regret growth",
            f"Recall@{k}", "nDCG@10", "Docs/search", "Arms/search", "p50 ms", "p99 ms",
        ],
        [
            [
                s.name + (" (learns)" if s.learning else ""), _fixed(s.cumulative_reward, 1),
                _fixed(s.mean_reward, 3), _fixed(s.mean_expected_reward, 3), _fixed(s.regret, 1),
                _fixed(s.regret_growth, 2), _fixed(s.mean_recall, 3), _fixed(s.mean_ndcg, 3),
                _fixed(s.mean_retrieved, 1), _fixed(s.mean_arms, 2),
                _fixed(s.latency_p50_ms, 1), _fixed(s.latency_p99_ms, 1),
            ]
            for s in summaries
        ],
        caption=(
            "Reward is the sum of the click weights users sent back; the highlighted row "
            "earned the most (the oracle excluded). Regret is the expected reward lost "
            "against the oracle; regret growth is the regret added in the last third of the "
            "sessions over that in the first third, below 1 when the curve flattens."
        ),
        highlight=winner,
    )  # fmt: skip

    report.heading("By intent")
    intents = sorted({i.intent for s in summaries for i in s.intents})
    report.table(
        ["Policy", *intents],
        [[s.name, *(_intent_cell(s, intent) for intent in intents)] for s in summaries],
        caption=(
            f"Mean reward / mean recall@{k} per intent: a learner that loses overall may "
            "still win on the intents it has seen most."
        ),
    )

    report.heading("Curves")
    report.figure(
        plots.reward_curves(runs, colors),
        "Cumulative reward per session. A learner starts at or below the static plans while "
        "it explores; its curve should then bend above the dashed baselines.",
    )
    if reference is not None and any(run.learning for run in runs):
        report.figure(
            plots.regret_curves(runs, reference, colors, full=_FULL),
            "Cumulative regret on expected reward against the oracle. A flattening curve means "
            "the learner has found the oracle's arm sets; a straight line means it never does.",
        )
    arms = _arms_in_catalog_order(runs)
    if arms:
        for run in runs:
            if run.learning:
                report.figure(
                    plots.arm_share(run, arms, intents, window=_window(run)),
                    f"Which arms {run.name} asks for, per intent, as a rolling share of that "
                    "intent's searches. Lines that separate by intent mean it learned that "
                    "intents need different retrieval; flat lines near 1 mean it asks for all.",
                )
    if any(s.mean_recall is not None for s in summaries):
        report.figure(
            plots.recall_vs_cost(summaries, k, colors),
            f"Mean recall@{k} against documents retrieved per search. The learner should sit "
            "near the top (recall close to all arms at full size) and well to the left of it.",
        )
    report.figure(
        plots.latency_histograms(runs, colors),
        "Distribution of per-search latency. Fewer, smaller arms should move a policy's "
        "histogram left; a long right tail is what the p99 column reports.",
    )

    if notes:
        report.heading("Notes")
        for note in notes:
            report.paragraph(note)

    report.heading("How this was measured")
    for text in _METHOD:
        report.paragraph(text)
    if any(run.name.startswith(HYBRID_PREFIX) for run in runs):
        report.paragraph(_HYBRID_METHOD)
    return report.write(path)


_METHOD = (
    "Every policy replayed the same seeded stream of sessions through a real proxy in front "
    "of the same index: session i is the same query by the same simulated user in every run, "
    "so the runs differ only by the retrieval plan each policy chose.",
    "A click model plays the user: it scans the page shown and clicks, dwells or skips by the "
    "relevance of each result. The reward of a session is the sum of the weights of the "
    "events it sent back, which is what the learners learn from.",
    "Expected reward is what the click model would pay on average for the page shown. It "
    "removes the click noise, so regret (the oracle's expected reward minus the policy's, "
    "summed over sessions) measures decisions rather than luck. Recall is measured on the "
    "fused candidate set before reranking, nDCG@10 on the page shown; latency is each search's "
    "wall time as the simulated client sees it. Percentiles are nearest-rank.",
)
_HYBRID_METHOD = (
    "The hybrid rows are OpenSearch's own hybrid search, the peer to beat: one hybrid query "
    "holding every arm's clause (rendered as the proxy renders it) over the same copy of the "
    "index, each sub-query retrieving an even share of the same candidate budget, fused by a "
    "search pipeline (the score-ranker-processor's RRF, or the normalization-processor's "
    "min-max and weighted arithmetic mean). It is sent straight to the node, as it would be "
    "deployed, and never learns; its pages are judged by the same simulated users."
)


def save_runs(runs: Sequence[PolicyRun], path: Path) -> Path:
    """Keep the raw runs, so a report can be redrawn or restyled without the node."""
    document = {"version": _FORMAT_VERSION, "runs": [run.to_json() for run in runs]}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(orjson.dumps(document, option=orjson.OPT_INDENT_2))
    return path


def load_runs(path: Path) -> list[PolicyRun]:
    """Read runs written by :func:`save_runs`, with a message that says which file is wrong."""
    try:
        document: Any = orjson.loads(path.read_bytes())
    except FileNotFoundError:
        raise LtrrError(f"{path}: no such runs file") from None
    except orjson.JSONDecodeError as exc:
        raise LtrrError(f"{path}: not a JSON runs file ({exc})") from None
    if not isinstance(document, dict) or not isinstance(document.get("runs"), list):
        raise LtrrError(f"{path}: expected an object with a 'runs' list, as save_runs writes")
    version = document.get("version")
    if version != _FORMAT_VERSION:
        raise LtrrError(f"{path}: runs file version {version!r}, expected {_FORMAT_VERSION}")
    try:
        return [PolicyRun.from_json(raw) for raw in document["runs"]]
    except (KeyError, TypeError) as exc:
        raise LtrrError(f"{path}: a run is malformed ({exc!r})") from None


def _verdict(summaries: Sequence[PolicySummary], oracle: str | None, k: int) -> str:
    """Judge safe_plans when it ran, else the best learner, so any line-up gets an answer."""
    learners = [s for s in summaries if s.learning]
    if not learners:
        field = [s for s in summaries if s.name != oracle]
        top = max(field or summaries, key=lambda s: s.cumulative_reward)
        return (
            f"No learning policy ran; {top.name} earned the most reward "
            f"({format_cell(top.cumulative_reward)} over {top.sessions:,} sessions)."
        )
    names = {s.name for s in learners}
    learner = (
        _DEFAULT_LEARNER
        if _DEFAULT_LEARNER in names
        else max(learners, key=lambda s: s.cumulative_reward).name
    )
    return verdict(summaries, learner=learner, full=_FULL, k=k)


def _intent_cell(summary: PolicySummary, intent: str) -> str:
    found = next((i for i in summary.intents if i.intent == intent), None)
    if found is None:
        return ""
    return f"{_fixed(found.mean_reward, 3)} / {_fixed(found.mean_recall, 3) or 'n/a'}"


def _fixed(value: float | None, digits: int) -> str:
    """One precision per column, so that a column of numbers lines up and reads evenly."""
    return "" if value is None else f"{value:,.{digits}f}"


def _arms_in_catalog_order(runs: Sequence[PolicyRun]) -> list[str]:
    """Arms as sessions list them (catalog order); the all-arms run first gives the full order."""
    ordered = sorted(runs, key=lambda run: run.name != _FULL)
    arms: dict[str, None] = {}
    for run in ordered:
        for s in run.sessions:
            arms.update(dict.fromkeys(s.arms))
    return list(arms)


def _window(run: PolicyRun) -> int:
    """200 sessions in a long run; a tenth of a short one, so the curve still moves."""
    return max(1, min(200, len(run.sessions) // 10))
