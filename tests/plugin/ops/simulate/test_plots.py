"""plots.py on small hand-made runs: every figure renders to a PNG, colours and styles follow the
rules, and empty or degenerate inputs are handled as the code says (test_report.py covers the
curves' values on the full line-up)."""

from __future__ import annotations

import io

import pytest
from matplotlib.colors import to_hex

from ltrr.plugin.errors import LtrrError
from ltrr.plugin.ops.simulate import plots
from ltrr.plugin.ops.simulate.results import PolicyRun, SessionRecord
from ltrr.plugin.ops.simulate.summary import InvalidRuns, summarize

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    import matplotlib.pyplot as plt

    plt.close("all")


def png(fig) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=40)
    return buffer.getvalue()


def run(
    name: str,
    learning: bool,
    rewards: list[float],
    *,
    latency: list[float] | None = None,
    recall: float | None = 0.5,
    arms: tuple[str, ...] = ("bm25",),
    intent: str = "nav",
) -> PolicyRun:
    lat = latency if latency is not None else [10.0] * len(rewards)
    sessions = [
        SessionRecord(i, intent, f"q{i}", r, r, recall, 0.3, 10 * len(arms), arms, lat[i])
        for i, r in enumerate(rewards)
    ]
    return PolicyRun(name, f"{name} policy", learning, sessions)


# --- colours -------------------------------------------------------------------------------------


def test_colours_skip_repeated_names_and_cycle_past_the_palette() -> None:
    assert plots.policy_colors(["a", "a", "b"]) == {"a": "#1f77b4", "b": "#ff7f0e"}
    names = [f"p{i}" for i in range(16)]
    colors = plots.policy_colors(names)
    # 15 palette entries: the 16th policy wraps to the first colour
    assert colors["p15"] == colors["p0"] == "#1f77b4"
    assert colors["p14"] == "#c49c94"
    assert len(set(colors.values())) == 15


def test_given_colours_override_the_fallback_per_name() -> None:
    runs = [run("a", True, [1.0, 2.0]), run("b", False, [0.5, 0.5])]
    fig = plots.reward_curves(runs, colors={"b": "#123456"})
    lines = {line.get_label(): line for line in fig.axes[0].get_lines()}
    assert to_hex(lines["b"].get_color()) == "#123456"
    assert to_hex(lines["a"].get_color()) == "#1f77b4"  # not given: the fallback
    assert (lines["a"].get_linewidth(), lines["b"].get_linewidth()) == (1.8, 1.2)


# --- reward curves -------------------------------------------------------------------------------


def test_reward_curves_render_a_png_of_running_totals() -> None:
    fig = plots.reward_curves([run("a", True, [1.0, 0.0, 2.5])])
    line = fig.axes[0].get_lines()[0]
    assert list(line.get_xdata()) == [1, 2, 3]
    assert list(line.get_ydata()) == [1.0, 1.0, 3.5]
    assert fig.axes[0].get_title() == "Cumulative reward (learners solid, baselines dashed)"
    assert png(fig).startswith(PNG)


@pytest.mark.parametrize("function", [plots.reward_curves, plots.latency_histograms])
def test_nothing_to_plot_is_an_error(function) -> None:
    with pytest.raises(LtrrError, match="nothing to plot: no run has any session"):
        function([])
    with pytest.raises(LtrrError, match="nothing to plot"):
        function([run("a", True, []), run("b", False, [])])


def test_a_run_without_sessions_beside_one_with_is_drawn_empty() -> None:
    fig = plots.reward_curves([run("a", True, [1.0]), run("b", False, [])])
    ys = {line.get_label(): list(line.get_ydata()) for line in fig.axes[0].get_lines()}
    assert ys == {"a": [1.0], "b": []}
    assert png(fig).startswith(PNG)


# --- regret curves -------------------------------------------------------------------------------


def test_regret_without_learner_or_static_plan_draws_only_the_zero_line() -> None:
    runs = [run("oracle", False, [1.0, 1.0]), run("full", False, [0.5, 0.5])]
    fig = plots.regret_curves(runs)
    ax = fig.axes[0]
    # ``full`` is neither a learner nor a static candidate: nothing but the axhline
    assert [line.get_label() for line in ax.get_lines()] == ["_child0"]
    assert ax.get_legend() is None
    assert png(fig).startswith(PNG)


def test_regret_curves_refuse_runs_of_another_stream() -> None:
    runs = [run("oracle", False, [1.0, 1.0]), run("linucb", True, [0.5])]
    with pytest.raises(InvalidRuns, match="runs must replay the same seeded stream"):
        plots.regret_curves(runs)


def test_regret_is_the_expected_reward_gap_summed() -> None:
    runs = [
        run("oracle", False, [1.0, 1.0, 1.0]),
        run("linucb", True, [0.5, 1.0, 0.75]),
        run("static:a", False, [0.0, 0.0, 0.0]),
    ]
    fig = plots.regret_curves(runs, colors={"linucb": "#000001"})
    ys = {line.get_label(): list(line.get_ydata()) for line in fig.axes[0].get_lines()}
    # gaps 0.5, 0.0, 0.25 then 1, 1, 1
    assert ys["linucb"] == pytest.approx([0.5, 0.5, 0.75])
    assert ys["static:a (best static)"] == pytest.approx([1.0, 2.0, 3.0])
    assert png(fig).startswith(PNG)


# --- arm share -----------------------------------------------------------------------------------


def test_arm_share_needs_arms_and_intents() -> None:
    with pytest.raises(LtrrError, match="at least one arm and one intent"):
        plots.arm_share(run("a", True, [1.0]), [], ["nav"])
    with pytest.raises(LtrrError, match="at least one arm and one intent"):
        plots.arm_share(run("a", True, [1.0]), ["bm25"], [])


def test_arm_share_marks_an_intent_without_sessions_and_keeps_one_legend() -> None:
    fig = plots.arm_share(run("a", True, [1.0, 1.0], arms=("bm25",)), ["bm25", "knn"], ["x", "nav"])
    empty, nav = fig.axes[:2]
    assert [t.get_text() for t in empty.texts] == ["no sessions"]
    assert len(empty.get_lines()) == 0
    assert {line.get_label(): list(line.get_ydata()) for line in nav.get_lines()} == {
        "bm25": [1.0, 1.0],
        "knn": [0.0, 0.0],
    }
    assert len(fig.legends) == 1
    assert fig.axes[0].get_ylabel() == "share of searches (last 200)"
    assert png(fig).startswith(PNG)


def test_arm_share_with_no_session_in_any_intent_has_no_legend() -> None:
    fig = plots.arm_share(run("a", True, []), ["bm25"], ["nav", "info"])
    assert [t.get_text() for ax in fig.axes for t in ax.texts] == ["no sessions", "no sessions"]
    assert fig.legends == []
    assert png(fig).startswith(PNG)


def test_rolling_mean_averages_what_exists_then_the_window() -> None:
    assert plots._rolling_mean([], 3) == []
    # 1/1, (1+0)/2, (1+0+1)/3, (0+1+1)/3
    assert plots._rolling_mean([1.0, 0.0, 1.0, 1.0], 3) == pytest.approx([1.0, 0.5, 2 / 3, 2 / 3])
    assert plots._rolling_mean([2.0, 4.0], 1) == [2.0, 4.0]


# --- recall against cost -------------------------------------------------------------------------


def test_recall_vs_cost_skips_policies_without_recall() -> None:
    summaries = summarize([run("a", True, [1.0], recall=None), run("b", False, [1.0])])
    fig = plots.recall_vs_cost(summaries, k=10)
    ax = fig.axes[0]
    assert len(ax.collections) == 1
    assert [t.get_text() for t in ax.texts] == ["b"]
    assert list(ax.collections[0].get_offsets()[0]) == [10.0, 0.5]
    assert png(fig).startswith(PNG)


def test_recall_vs_cost_with_no_recall_at_all_is_an_empty_axis() -> None:
    fig = plots.recall_vs_cost(summarize([run("a", True, [1.0], recall=None)]), k=5)
    assert len(fig.axes[0].collections) == 0
    assert len(fig.axes[0].texts) == 0
    assert png(fig).startswith(PNG)


def test_recall_vs_cost_greys_a_policy_missing_from_the_given_colours() -> None:
    summaries = summarize([run("a", True, [1.0]), run("b", False, [1.0], arms=("x", "y"))])
    fig = plots.recall_vs_cost(summaries, k=10, colors={"a": "#abcdef"})
    faces = [to_hex(c.get_facecolor()[0]) for c in fig.axes[0].collections]
    assert faces == ["#abcdef", "#333333"]


# --- latency -------------------------------------------------------------------------------------


def test_one_latency_everywhere_gets_a_one_unit_bin() -> None:
    fig = plots.latency_histograms([run("a", True, [1.0, 1.0], latency=[5.0, 5.0])])
    ax = fig.axes[0]
    assert ax.get_xscale() == "linear"
    xs = [x for x, _ in ax.patches[0].get_xy()]
    assert (min(xs), max(xs)) == (4.5, 5.5)
    assert png(fig).startswith(PNG)


def test_a_zero_latency_keeps_the_axis_linear() -> None:
    # 1000 / 0 would be a wide range, but a log axis cannot show 0
    fig = plots.latency_histograms([run("a", True, [1.0, 1.0], latency=[0.0, 1000.0])])
    assert fig.axes[0].get_xscale() == "linear"
    assert fig.axes[0].get_xlabel() == "latency per search (ms)"
    assert png(fig).startswith(PNG)


def test_a_wide_latency_range_is_drawn_on_a_log_axis() -> None:
    fig = plots.latency_histograms([run("a", True, [1.0, 1.0], latency=[1.0, 21.0])])
    assert fig.axes[0].get_xscale() == "log"
    assert fig.axes[0].get_xlabel() == "latency per search (ms, log scale)"
    assert png(fig).startswith(PNG)


def test_bins() -> None:
    assert plots._bins(3.0, 3.0, 40, log=False) == [2.5, 3.5]
    assert plots._bins(3.0, 3.0, 40, log=True) == [2.5, 3.5]
    assert plots._bins(0.0, 10.0, 4, log=False) == [0.0, 2.5, 5.0, 7.5, 10.0]
    assert plots._bins(1.0, 100.0, 2, log=True) == pytest.approx([1.0, 10.0, 100.0])
