"""The live report's figures: one question per plot, one colour per arm across all of them."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from ltrr.plugin.ops.html import new_figure
from ltrr.plugin.ops.live.summary import LiveSummary
from ltrr.plugin.ops.simulate.plots import policy_colors

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = ["arm_share", "fallbacks", "latency", "reward_per_arm"]

_COLUMNS = 3
_LOG_RANGE = 20.0  # above this max/min ratio a linear latency axis squeezes the bulk


def arm_share(summary: LiveSummary) -> Figure:
    """Per group, the share of its searches that asked for each arm, bin by bin: a policy
    that learned to tell the groups apart draws different lines in different panels."""
    groups = summary.groups
    columns = min(_COLUMNS, len(groups))
    rows = -(-len(groups) // columns)
    fig = new_figure(4.2 * columns, 3.3 * rows)
    axes = fig.subplots(rows, columns, sharey=True, squeeze=False)
    colors = policy_colors(list(summary.arms))
    times = _times(summary)
    for i, group in enumerate(groups):
        ax = axes[i // columns][i % columns]
        ax.set_title(f"{group} ({summary.group_sizes[group]:,} searches)", fontsize=10)
        ax.set_ylim(-0.03, 1.03)
        for arm in summary.arms:
            ys = [float("nan") if v is None else v for v in summary.share[group][arm]]
            ax.plot(times, ys, marker="o", markersize=3, label=arm, color=colors[arm])
        _time_axis(ax, summary)
    for j in range(len(groups), rows * columns):
        axes[j // columns][j % columns].set_visible(False)
    for row in axes:
        row[0].set_ylabel("share of searches")
    fig.suptitle(f"Arms asked for, by {summary.grouping}, per {_width(summary.bins.width)} (UTC)")
    fig.tight_layout()
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="center left", bbox_to_anchor=(1.0, 0.5), frameon=False)
    return fig


def reward_per_arm(summary: LiveSummary) -> Figure:
    """Mean reward per answered search that asked for the arm, with its 95% interval."""
    shown = [r for r in summary.rewards if r.mean is not None]
    colors = policy_colors(list(summary.arms))
    fig = new_figure(8.0, 0.9 + 0.5 * max(1, len(shown)))
    ax = fig.add_subplot()
    ys = list(range(len(shown)))
    ax.barh(
        ys,
        [r.mean or 0.0 for r in shown],
        xerr=[r.half_width or 0.0 for r in shown],
        color=[colors[r.arm] for r in shown],
        capsize=3,
    )
    ax.set_yticks(ys, [f"{r.arm} (n={r.searches - r.failed:,})" for r in shown])
    ax.invert_yaxis()
    ax.axvline(0.0, color="#999999", linewidth=0.8)
    ax.set_xlabel("mean reward per search that asked for the arm (95% interval)")
    ax.set_title("Reward per arm")
    ax.grid(axis="x", alpha=0.3)
    return fig


def fallbacks(summary: LiveSummary) -> Figure:
    """Searches per bin, and how many fell back to the static plan or lost an arm."""
    fig = new_figure(9.0, 3.8)
    ax = fig.add_subplot()
    times = _times(summary)
    series = (
        ("searches", summary.searches_per_bin, "#7f7f7f"),
        ("fell back to the static plan", summary.fallback_per_bin, "#ff7f0e"),
        ("an arm asked for failed", summary.failed_per_bin, "#d62728"),
    )
    for label, counts, color in series:
        ax.plot(times, list(counts), marker="o", markersize=3, label=label, color=color)
    ax.set_ylabel(f"searches per {_width(summary.bins.width)}")
    ax.set_ylim(bottom=0)
    ax.set_title("Fallbacks and failures (UTC)")
    _time_axis(ax, summary)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False)
    return fig


def latency(summary: LiveSummary) -> Figure:
    """The distribution of search latency, and its median and p99 bin by bin."""
    values = list(summary.latencies)
    fig = new_figure(11.0, 3.8)
    hist, over_time = fig.subplots(1, 2)
    low, high = min(values), max(values)
    log = low > 0 and high / low > _LOG_RANGE
    hist.hist(values, bins=_edges(low, high, 40, log=log), color="#1f77b4")
    if log:
        hist.set_xscale("log")
    hist.set_xlabel("latency per search (ms" + (", log scale)" if log else ")"))
    hist.set_ylabel("searches")
    hist.set_title("Search latency")
    times = _times(summary)
    for k, (label, color) in enumerate((("p50", "#1f77b4"), ("p99", "#d62728"))):
        ys = [float("nan") if pair[k] is None else pair[k] for pair in summary.latency_per_bin]
        over_time.plot(times, ys, marker="o", markersize=3, label=label, color=color)
    over_time.set_ylabel("ms")
    over_time.set_ylim(bottom=0)
    over_time.set_title(f"Latency per {_width(summary.bins.width)} (UTC)")
    over_time.legend(fontsize=8, frameon=False)
    _time_axis(over_time, summary)
    fig.tight_layout()
    return fig


def _times(summary: LiveSummary) -> list[float]:
    """Bin centres, so that a point sits mid-way in the span it counts."""
    half = summary.bins.width / 2
    return [_date(t + half) for t in summary.bins.starts()]


def _date(epoch: float) -> float:
    """Epoch seconds as a matplotlib date number."""
    import matplotlib.dates as mdates

    when = datetime.fromtimestamp(epoch, UTC)
    return float(mdates.date2num(when))  # type: ignore[no-untyped-call]


def _time_axis(ax: Axes, summary: LiveSummary) -> None:
    """The bins' own span (one bin alone would otherwise be drawn over years)."""
    import matplotlib.dates as mdates

    bins = summary.bins
    ax.set_xlim(_date(bins.start), _date(bins.start + bins.count * bins.width))

    locator = mdates.AutoDateLocator(minticks=3, maxticks=7)  # type: ignore[no-untyped-call]
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))  # type: ignore[no-untyped-call]
    ax.grid(alpha=0.3)


def _width(seconds: float) -> str:
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size and seconds % size == 0:
            count = int(seconds // size)
            return unit if count == 1 else f"{count} {unit}s"
    return f"{seconds:g} seconds"


def _edges(low: float, high: float, count: int, *, log: bool) -> Sequence[float]:
    if high <= low:
        return [low - 0.5, low + 0.5]
    if log:
        ratio = (high / low) ** (1 / count)
        return [low * ratio**i for i in range(count)] + [high]
    step = (high - low) / count
    return [low + step * i for i in range(count)] + [high]
