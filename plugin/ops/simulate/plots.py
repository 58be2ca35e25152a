"""The simulation's figures: one question per plot, one colour per policy across all of them.

Pass the same ``colors`` (from :func:`policy_colors`) to every plot of a report, so that a
reader who found ``linucb`` in one legend finds it in the same colour in the next.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from ltrr.plugin.errors import LtrrError
from ltrr.plugin.ops.html import new_figure
from ltrr.plugin.ops.simulate.results import PolicyRun
from ltrr.plugin.ops.simulate.summary import (
    HYBRID_PREFIX,
    PolicySummary,
    best_hybrid,
    best_static,
    cumulative,
    regret_per_session,
    summarize,
)

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = [
    "arm_share",
    "latency_histograms",
    "policy_colors",
    "recall_vs_cost",
    "regret_curves",
    "reward_curves",
]

# tab10 then the lighter half of tab20: distinct enough for a dozen policies.
_PALETTE = (
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
    "#8c564b", "#e377c2", "#bcbd22", "#17becf", "#aec7e8",
    "#ffbb78", "#98df8a", "#ff9896", "#c5b0d5", "#c49c94",
)  # fmt: skip
_FIXED = {"oracle": "#000000", "full": "#7f7f7f"}

# Above this max/min ratio a linear latency axis squeezes the bulk into one bin.
_LOG_RANGE = 20.0


def policy_colors(names: Sequence[str]) -> dict[str, str]:
    """A colour per policy name; the oracle is black and ``full`` grey, as reference lines."""
    colors: dict[str, str] = {}
    free = 0
    for name in names:
        if name in colors:
            continue
        if name in _FIXED:
            colors[name] = _FIXED[name]
        else:
            colors[name] = _PALETTE[free % len(_PALETTE)]
            free += 1
    return colors


def _linestyle(run: PolicyRun) -> str:
    """Learners solid, our fixed plans dashed, OpenSearch's own hybrid search dotted."""
    if run.learning:
        return "-"
    return ":" if run.name.startswith(HYBRID_PREFIX) else "--"


def _styles_title(runs: Sequence[PolicyRun]) -> str:
    hybrid = any(run.name.startswith(HYBRID_PREFIX) for run in runs)
    return "learners solid, baselines dashed" + (", OpenSearch hybrid dotted" if hybrid else "")


def reward_curves(runs: Sequence[PolicyRun], colors: Mapping[str, str] | None = None) -> Figure:
    """Cumulative reward: a learner's curve should bend above the dashed baselines over time."""
    _require_runs(runs)
    palette = _palette(runs, colors)
    fig = new_figure(9.0, 4.5)
    ax = fig.add_subplot()
    for run in runs:
        ys = cumulative(s.reward for s in run.sessions)
        ax.plot(
            range(1, len(ys) + 1),
            ys,
            label=run.name,
            color=palette[run.name],
            linestyle=_linestyle(run),
            linewidth=1.8 if run.learning else 1.2,
        )
    ax.set_xlabel("session")
    ax.set_ylabel("cumulative reward")
    ax.set_title(f"Cumulative reward ({_styles_title(runs)})")
    _legend_outside(ax)
    return fig


def regret_curves(
    runs: Sequence[PolicyRun],
    oracle: str = "oracle",
    colors: Mapping[str, str] | None = None,
    *,
    full: str = "full",
    static_prefixes: Sequence[str] = ("static", "only:"),
) -> Figure:
    """Cumulative expected-reward regret of the learners, of the best static plan and of
    OpenSearch's best hybrid search (when one ran)."""
    reference = next((run for run in runs if run.name == oracle), None)
    if reference is None:
        raise LtrrError(f"no oracle run named {oracle!r}: regret needs one to compare against")
    summaries = summarize(runs, oracle)
    static = best_static(summaries, full=full, static_prefixes=static_prefixes)
    native = best_hybrid(summaries)
    labels = {s.name: f"{s.name} (best static)" for s in (static,) if s is not None}
    labels.update({s.name: f"{s.name} (best hybrid)" for s in (native,) if s is not None})
    shown = [run for run in runs if run.learning or run.name in labels]
    palette = _palette(runs, colors)
    fig = new_figure(9.0, 4.5)
    ax = fig.add_subplot()
    for run in shown:
        ys = cumulative(regret_per_session(run, reference))
        ax.plot(
            range(1, len(ys) + 1),
            ys,
            label=labels.get(run.name, run.name),
            color=palette[run.name],
            linestyle=_linestyle(run),
        )
    ax.axhline(0.0, color="#999999", linewidth=0.8)
    ax.set_xlabel("session")
    ax.set_ylabel(f"cumulative regret vs {oracle}")
    ax.set_title("Regret on expected reward (flattening = the learner found the best arm sets)")
    if shown:
        _legend_outside(ax)
    return fig


def arm_share(
    run: PolicyRun, arms: Sequence[str], intents: Sequence[str], window: int = 200
) -> Figure:
    """Per intent, how often each arm is asked for: a learner should specialise by intent."""
    if window < 1:
        raise LtrrError(f"window must be at least 1 session, got {window}")
    if not arms or not intents:
        raise LtrrError("arm_share needs at least one arm and one intent to draw")
    fig = new_figure(max(4.0, 3.6 * len(intents)), 3.6)
    axes = fig.subplots(1, len(intents), sharey=True, squeeze=False)[0]
    arm_colors = {arm: _PALETTE[i % len(_PALETTE)] for i, arm in enumerate(arms)}
    for ax, intent in zip(axes, intents, strict=True):
        picked = [s for s in run.sessions if s.intent == intent]
        ax.set_title(intent)
        ax.set_xlabel("session")
        ax.set_ylim(-0.03, 1.03)
        if not picked:
            ax.text(0.5, 0.5, "no sessions", ha="center", va="center", transform=ax.transAxes)
            continue
        xs = [s.session for s in picked]
        for arm in arms:
            included = [1.0 if arm in s.arms else 0.0 for s in picked]
            ax.plot(xs, _rolling_mean(included, window), label=arm, color=arm_colors[arm])
    axes[0].set_ylabel(f"share of searches (last {window})")
    fig.suptitle(f"{run.name}: arms asked for, by intent")
    fig.tight_layout()
    drawn = [ax.get_legend_handles_labels() for ax in axes]
    handles, labels = next(((h, lab) for h, lab in drawn if h), ([], []))
    if handles:
        # Right of the panels: the report saves with a tight bounding box, so it is kept.
        fig.legend(handles, labels, loc="center left", bbox_to_anchor=(1.0, 0.5), frameon=False)
    return fig


def recall_vs_cost(
    summaries: Sequence[PolicySummary], k: int, colors: Mapping[str, str] | None = None
) -> Figure:
    """Recall bought per document retrieved: up and to the left is cheap recall."""
    hybrid = any(s.name.startswith(HYBRID_PREFIX) for s in summaries)
    palette = dict(colors) if colors is not None else policy_colors([s.name for s in summaries])
    fig = new_figure(7.5, 5.0)
    ax = fig.add_subplot()
    # Policies that land on the same point (static and full often do) share one label.
    labels: dict[tuple[float, float], list[str]] = {}
    for s in summaries:
        if s.mean_recall is None:
            continue
        ax.scatter(
            [s.mean_retrieved],
            [s.mean_recall],
            color=palette.get(s.name, "#333333"),
            marker="o" if s.learning else "^" if s.name.startswith(HYBRID_PREFIX) else "s",
            s=46,
            zorder=3,
        )
        labels.setdefault((round(s.mean_retrieved, 1), round(s.mean_recall, 3)), []).append(s.name)
    for (x, y), names in labels.items():
        ax.annotate(", ".join(names), (x, y), xytext=(5, 4), textcoords="offset points", fontsize=8)
    ax.set_xlabel("documents retrieved per search (mean)")
    ax.set_ylabel(f"recall@{k} (mean)")
    shapes = "circles learn, squares are fixed" + (
        ", triangles are OpenSearch hybrid" if hybrid else ""
    )
    ax.set_title(f"Recall@{k} against retrieval cost ({shapes})")
    ax.grid(alpha=0.3)
    return fig


def latency_histograms(
    runs: Sequence[PolicyRun], colors: Mapping[str, str] | None = None
) -> Figure:
    """Per-session latency distributions overlaid: a long right tail is what p99 hides."""
    _require_runs(runs)
    palette = _palette(runs, colors)
    everything = [s.latency_ms for run in runs for s in run.sessions]
    low, high = min(everything), max(everything)
    log = low > 0 and high / low > _LOG_RANGE
    bins = _bins(low, high, 40, log=log)
    fig = new_figure(9.0, 4.5)
    ax = fig.add_subplot()
    for run in runs:
        ax.hist(
            [s.latency_ms for s in run.sessions],
            bins=bins,
            histtype="step",
            linewidth=1.4,
            label=run.name,
            color=palette[run.name],
            linestyle=_linestyle(run),
        )
    if log:
        ax.set_xscale("log")
    ax.set_xlabel("latency per search (ms" + (", log scale)" if log else ")"))
    ax.set_ylabel("sessions")
    ax.set_title("Search latency as the client sees it")
    _legend_outside(ax)
    return fig


def _bins(low: float, high: float, count: int, *, log: bool) -> list[float]:
    """Bin edges; equal widths on the axis the histogram is drawn on."""
    if high <= low:
        return [low - 0.5, low + 0.5]
    if log:
        ratio = (high / low) ** (1 / count)
        return [low * ratio**i for i in range(count)] + [high]
    step = (high - low) / count
    return [low + step * i for i in range(count)] + [high]


def _rolling_mean(values: Sequence[float], window: int) -> list[float]:
    """Trailing mean; the first points average what exists so the curve starts at session 1."""
    out: list[float] = []
    total = 0.0
    for i, value in enumerate(values):
        total += value
        if i >= window:
            total -= values[i - window]
        out.append(total / min(i + 1, window))
    return out


def _palette(runs: Sequence[PolicyRun], colors: Mapping[str, str] | None) -> dict[str, str]:
    fallback = policy_colors([run.name for run in runs])
    return {**fallback, **colors} if colors is not None else fallback


def _require_runs(runs: Sequence[PolicyRun]) -> None:
    if not runs or not any(run.sessions for run in runs):
        raise LtrrError("nothing to plot: no run has any session")


def _legend_outside(ax: Axes) -> None:
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False)
