import base64
import re

import orjson
import pytest

from ltrr.plugin.errors import LtrrError
from ltrr.plugin.ops.simulate import plots
from ltrr.plugin.ops.simulate.report import load_runs, save_runs, simulation_report
from ltrr.plugin.ops.simulate.results import PolicyRun, SessionRecord
from ltrr.plugin.ops.simulate.summary import summarize

PNG = b"\x89PNG\r\n\x1a\n"
IMAGE = re.compile(r'<img [^>]*src="data:image/png;base64,([A-Za-z0-9+/=]+)"')
SESSIONS = 30


@pytest.fixture(autouse=True)
def _close_figures():
    """Figures drawn directly (not through a report) hold memory until closed."""
    yield
    import matplotlib.pyplot as plt

    plt.close("all")


def make_run(name, learning, reward, arms_for, *, recall=0.5, latency=10.0):
    """A run over the shared 30-session stream: two intents alternating, fixed values."""
    sessions = []
    for i in range(SESSIONS):
        intent = "nav" if i % 2 == 0 else "info"
        arms = arms_for(intent)
        sessions.append(
            SessionRecord(
                session=i,
                intent=intent,
                query=f"q{i}",
                reward=reward,
                expected_reward=reward,
                recall=recall,
                ndcg=0.4,
                retrieved=100 * len(arms),
                arms=arms,
                latency_ms=latency * (1 + i % 3),
            )
        )
    return PolicyRun(name, f"{name} policy", learning, sessions)


def line_up(*, oracle=True, recall=0.5):
    runs = [
        make_run(
            "linucb", True, 0.8, lambda n: ("bm25",) if n == "nav" else ("knn",), recall=recall
        ),
        make_run("thompson", True, 0.6, lambda n: ("bm25", "knn"), recall=recall),
        make_run("static", False, 0.7, lambda n: ("bm25", "knn"), recall=recall),
        make_run("full", False, 0.75, lambda n: ("bm25", "knn"), recall=recall, latency=500.0),
    ]
    if oracle:
        runs.append(make_run("oracle", False, 1.0, lambda n: ("bm25",), recall=recall))
    return runs


def images(document):
    return [base64.b64decode(data) for data in IMAGE.findall(document)]


def test_report_is_one_html_document_with_tables_and_figures(tmp_path):
    path = simulation_report(line_up(), tmp_path / "out" / "report.html", k=50, notes=["a & b"])
    document = path.read_text(encoding="utf-8")

    assert path == tmp_path / "out" / "report.html"
    assert document.startswith("<!doctype html>")
    assert document.count("<html") == 1
    assert document.rstrip().endswith("</html>")
    # summary + per intent
    assert document.count("<table>") == 2
    # reward, regret, one arm-share per learner (2), recall vs cost, latency
    pngs = images(document)
    assert len(pngs) == 6
    assert all(png.startswith(PNG) for png in pngs)
    assert "<script" not in document


def test_report_opens_with_the_verdict_on_linucb(tmp_path):
    document = simulation_report(line_up(), tmp_path / "r.html", k=50).read_text()

    verdict = re.search(r'<p class="verdict">(.*?)</p>', document).group(1)
    # linucb 30 * 0.8 = 24.0 against static 30 * 0.7 = 21.0: 3 / 21 = 14%
    assert verdict.startswith(
        "linucb earned 24.00 reward over 30 sessions, 14% more than the best static plan "
        "(static, 21.00)."
    )
    # 2 arms of 100 for full vs 1 for linucb: 100 / 200 = 50%
    assert "recall@50 is 0.50 against 0.50" in verdict
    assert "retrieving 50% of the documents" in verdict
    assert document.index('class="verdict"') < document.index("<table>")


def test_report_highlights_the_best_non_oracle_run(tmp_path):
    document = simulation_report(line_up(), tmp_path / "r.html").read_text()

    # oracle earns 30.0 but is excluded; linucb's 24.0 beats full's 22.5 and static's 21.0
    assert document.count('<tr class="best">') == 1
    assert '<tr class="best"><td>linucb (learns)</td><td>24.0</td>' in document


def test_report_has_the_per_intent_table_notes_and_method(tmp_path):
    document = simulation_report(
        line_up(), tmp_path / "r.html", k=50, notes=["Index <v2> & new model"]
    ).read_text()

    assert "<th>Policy</th><th>info</th><th>nav</th>" in document
    # every session of every intent earns 0.8 with recall 0.5
    assert "<td>linucb</td><td>0.800 / 0.500</td><td>0.800 / 0.500</td>" in document
    assert "Index &lt;v2&gt; &amp; new model" in document
    assert "How this was measured" in document
    assert "same seeded stream" in document


def test_without_an_oracle_there_is_no_regret_figure(tmp_path):
    document = simulation_report(line_up(oracle=False), tmp_path / "r.html").read_text()
    # reward, two arm shares, recall vs cost, latency
    assert len(images(document)) == 5
    assert "flattening curve" not in document


def test_without_recall_there_is_no_recall_figure(tmp_path):
    document = simulation_report(line_up(recall=None), tmp_path / "r.html").read_text()
    # reward, regret, two arm shares, latency
    assert len(images(document)) == 5


def test_no_runs_is_an_error(tmp_path):
    with pytest.raises(LtrrError, match="no runs"):
        simulation_report([], tmp_path / "r.html")


def test_save_then_load_round_trips(tmp_path):
    runs = line_up()
    path = save_runs(runs, tmp_path / "deep" / "runs.json")

    assert load_runs(path) == runs
    assert orjson.loads(path.read_bytes())["version"] == 1


def test_loaded_runs_redraw_the_same_report(tmp_path):
    runs = load_runs(save_runs(line_up(), tmp_path / "runs.json"))
    document = simulation_report(runs, tmp_path / "r.html").read_text()
    assert len(images(document)) == 6


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"not json", "not a JSON runs file"),
        (b"[]", "expected an object with a 'runs' list"),
        (b'{"version": 9, "runs": []}', "version 9, expected 1"),
        (b'{"version": 1, "runs": [{"name": "x"}]}', "a run is malformed"),
    ],
)
def test_load_rejects_files_it_did_not_write(tmp_path, content, message):
    path = tmp_path / "runs.json"
    path.write_bytes(content)
    with pytest.raises(LtrrError, match=message):
        load_runs(path)


def test_load_of_a_missing_file_says_so(tmp_path):
    with pytest.raises(LtrrError, match="no such runs file"):
        load_runs(tmp_path / "absent.json")


def test_policy_colors_are_stable_and_reserve_oracle_and_full():
    colors = plots.policy_colors(["linucb", "oracle", "full", "static"])
    assert colors["oracle"] == "#000000"
    assert colors["full"] == "#7f7f7f"
    # the reserved names do not use up palette entries: static is the second colour
    assert colors["linucb"] == "#1f77b4"
    assert colors["static"] == "#ff7f0e"


def test_reward_curves_draw_learners_solid_and_baselines_dashed():
    fig = plots.reward_curves(line_up())
    lines = {line.get_label(): line for line in fig.axes[0].get_lines()}

    assert lines["linucb"].get_linestyle() == "-"
    assert lines["static"].get_linestyle() == "--"
    # cumulative 0.7 per session: 0.7, 1.4, ..., 30 * 0.7 = 21.0
    assert list(lines["static"].get_ydata())[-1] == pytest.approx(21.0)


def test_regret_curves_show_learners_and_the_best_static_plan_only():
    fig = plots.regret_curves(line_up(), "oracle")
    labels = [
        line.get_label() for line in fig.axes[0].get_lines() if not line.get_label().startswith("_")
    ]

    assert labels == ["linucb", "thompson", "static (best static)"]
    ys = {line.get_label(): list(line.get_ydata()) for line in fig.axes[0].get_lines()}
    # linucb loses 1.0 - 0.8 = 0.2 per session: 30 * 0.2 = 6.0
    assert ys["linucb"][-1] == pytest.approx(6.0)


def test_regret_curves_need_the_oracle():
    with pytest.raises(LtrrError, match="no oracle run named 'oracle'"):
        plots.regret_curves(line_up(oracle=False))


def test_arm_share_is_a_rolling_share_per_intent():
    fig = plots.arm_share(line_up()[0], ["bm25", "knn"], ["nav", "info"], window=4)
    nav, info = fig.axes[:2]
    shares = {line.get_label(): list(line.get_ydata()) for line in nav.get_lines()}

    # linucb asks for bm25 on every nav search and never for knn there
    assert shares["bm25"] == [1.0] * 15
    assert shares["knn"] == [0.0] * 15
    # nav is the even sessions: 0, 2, ..., 28
    assert list(nav.get_lines()[0].get_xdata()) == list(range(0, 30, 2))
    assert [line.get_label() for line in info.get_lines()] == ["bm25", "knn"]


def test_arm_share_window_is_a_trailing_mean():
    run = PolicyRun("x", "", True, [])
    for i, arms in enumerate([("a",), (), ("a",), ("a",), ()]):
        run.sessions.append(SessionRecord(i, "nav", f"q{i}", 0, 0, None, 0, 0, arms, 1.0))
    fig = plots.arm_share(run, ["a"], ["nav"], window=2)
    # 1/1, (1+0)/2, (0+1)/2, (1+1)/2, (1+0)/2
    assert list(fig.axes[0].get_lines()[0].get_ydata()) == [1.0, 0.5, 0.5, 1.0, 0.5]


def test_arm_share_rejects_an_empty_window():
    with pytest.raises(LtrrError, match="window must be at least 1"):
        plots.arm_share(line_up()[0], ["bm25"], ["nav"], window=0)


def test_recall_vs_cost_labels_each_point():
    summaries = summarize(line_up())
    fig = plots.recall_vs_cost(summaries, k=100)
    texts = sorted(t.get_text() for t in fig.axes[0].texts)
    # thompson, static and full all retrieve 200 with recall 0.5: one shared label
    assert texts == ["linucb, oracle", "thompson, static, full"]
    assert fig.axes[0].get_ylabel() == "recall@100 (mean)"


def test_latency_histograms_go_log_on_a_wide_range():
    # latencies span 10 .. 1500 ms (full is 500 * 3): ratio 150 > 20
    assert plots.latency_histograms(line_up()).axes[0].get_xscale() == "log"
    narrow = [run for run in line_up() if run.name != "full"]  # 10 .. 30 ms: ratio 3
    assert plots.latency_histograms(narrow).axes[0].get_xscale() == "linear"


def with_hybrids():
    """The line-up with OpenSearch's hybrid search beside it: RRF earns 0.65, min-max 0.5."""
    both = lambda n: ("bm25", "knn")  # noqa: E731
    return [
        *line_up(),
        make_run("hybrid:rrf", False, 0.65, both, recall=0.6),
        make_run("hybrid:minmax", False, 0.5, both, recall=0.6),
    ]


def test_regret_curves_add_the_best_hybrid_dotted():
    fig = plots.regret_curves(with_hybrids(), "oracle")
    lines = {
        line.get_label(): line
        for line in fig.axes[0].get_lines()
        if not line.get_label().startswith("_")
    }
    assert list(lines) == ["linucb", "thompson", "static (best static)", "hybrid:rrf (best hybrid)"]
    assert lines["hybrid:rrf (best hybrid)"].get_linestyle() == ":"
    # hybrid:rrf loses 1.0 - 0.65 = 0.35 per session: 30 * 0.35 = 10.5
    assert list(lines["hybrid:rrf (best hybrid)"].get_ydata())[-1] == pytest.approx(10.5)


def test_hybrid_runs_are_dotted_and_triangles():
    reward = plots.reward_curves(with_hybrids())
    styles = {line.get_label(): line.get_linestyle() for line in reward.axes[0].get_lines()}
    assert (styles["linucb"], styles["static"], styles["hybrid:minmax"]) == ("-", "--", ":")
    assert reward.axes[0].get_title().endswith("OpenSearch hybrid dotted)")
    assert "OpenSearch hybrid" not in plots.reward_curves(line_up()).axes[0].get_title()
    cost = plots.recall_vs_cost(summarize(with_hybrids()), k=100)
    assert "triangles are OpenSearch hybrid" in cost.axes[0].get_title()
    # One scatter per policy, in line-up order: the two hybrid ones are the last.
    markers = [c.get_paths()[0].vertices.shape[0] for c in cost.axes[0].collections]
    assert markers[-1] == markers[-2] != markers[2]  # same shape as each other, not static's


def test_the_report_says_how_the_hybrid_rows_were_measured(tmp_path):
    document = simulation_report(with_hybrids(), tmp_path / "r.html").read_text(encoding="utf-8")
    assert "The hybrid rows are OpenSearch&#x27;s own hybrid search" in document  # escaped
    plain = simulation_report(line_up(), tmp_path / "p.html").read_text(encoding="utf-8")
    assert "The hybrid rows" not in plain
