import re
from dataclasses import dataclass

import pytest

from ltrr.plugin.errors import LtrrError
from ltrr.plugin.ops.live.report import (
    NO_ROLLOUT,
    SECTIONS,
    _duration,
    comparison_tables,
    live_report,
)
from tests.plugin.ops.live._docs import period

IMAGE = re.compile(r'<img [^>]*src="data:image/png;base64,')
HEADINGS = re.compile(r"<h2>([^<]+)</h2>")


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    import matplotlib.pyplot as plt

    plt.close("all")


def test_the_page_has_every_section_and_figure(tmp_path):
    html = live_report(period(), tmp_path / "live.html", source="http://os:9200").read_text()
    assert HEADINGS.findall(html) == list(SECTIONS)
    assert len(IMAGE.findall(html)) == 4  # arm share, reward, fallbacks, latency
    # 4 searches, 3 events on them; 1 of 4 fell back, 1 of 4 lost an arm; p50 20, p99 40.
    assert (
        "4 searches and 3 feedback events in the last 200 seconds; 25.0% fell back to the "
        "static plan and 25.0% lost an arm; latency p50 20.0 ms, p99 40.0 ms."
    ) in html
    assert NO_ROLLOUT in html
    assert "<script" not in html
    assert "http://os:9200" in html


def test_without_logged_latency_the_section_says_so(tmp_path):
    html = live_report(period(with_latency=False), tmp_path / "live.html").read_text()
    assert "latency was not logged by this proxy version" in html
    assert len(IMAGE.findall(html)) == 3


@dataclass(frozen=True)
class Side:
    searches: int
    clicks_per_search: float
    interval: tuple[float, float]


@dataclass(frozen=True)
class Comparison:
    control: Side
    candidate: Side
    p_value: float
    significant: bool


COMPARISON = Comparison(Side(120, 0.25, (0.2, 0.3)), Side(118, 0.31, (0.25, 0.37)), 0.042, True)


def test_a_comparison_splits_into_its_sides_and_its_own_figures():
    scalars, sides = comparison_tables(COMPARISON)
    assert scalars == {"p_value": 0.042, "significant": True}
    assert sides == {
        "control": {"searches": 120, "clicks_per_search": 0.25, "interval": (0.2, 0.3)},
        "candidate": {"searches": 118, "clicks_per_search": 0.31, "interval": (0.25, 0.37)},
    }
    as_dict = {"control": {"searches": 1}, "p_value": 0.5}
    assert comparison_tables(as_dict) == ({"p_value": 0.5}, {"control": {"searches": 1}})


def test_the_rollout_section_renders_what_compare_returns(tmp_path):
    seen = []

    def compare(decisions, events):
        seen.append((len(decisions), len(events)))
        return COMPARISON

    html = live_report(period(), tmp_path / "live.html", compare=compare).read_text()
    assert seen == [(4, 4)]  # the raw documents of the period
    rollout = html.split("<h2>Rollout comparison</h2>")[1].split("<h2>")[0]
    assert "<th>control</th><th>candidate</th>" in rollout
    assert "<td>searches</td><td>120</td><td>118</td>" in rollout
    assert "<td>interval</td><td>[0.200, 0.300]</td><td>[0.250, 0.370]</td>" in rollout
    assert "<td>significant</td><td>yes</td>" in rollout
    assert NO_ROLLOUT not in html


def test_compare_returning_none_means_no_rollout(tmp_path):
    html = live_report(period(), tmp_path / "l.html", compare=lambda d, e: None).read_text()
    assert NO_ROLLOUT in html


def test_a_comparison_of_another_kind_is_refused():
    with pytest.raises(LtrrError, match="must be a dataclass or a mapping"):
        comparison_tables(42)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("seconds", "said"),
    [
        (86400, "24 hours"),
        (7 * 86400, "7 days"),
        (5400, "90 minutes"),
        (3600, "1 hour"),
        (60, "1 minute"),
        (200, "200 seconds"),
        (593785, "6.9 days"),  # 593785 / 86400 = 6.87
        (5 * 3600 + 730, "5.2 hours"),  # 18730 / 3600 = 5.20
    ],
)
def test_the_period_is_said_as_a_reader_says_it(seconds, said):
    assert _duration(seconds) == said
