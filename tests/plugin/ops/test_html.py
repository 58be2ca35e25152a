"""html.py: the self-contained report page (escaping, tables, inlined PNG figures, no external
references) and the cell formatting every table uses."""

from __future__ import annotations

import base64
import re
from datetime import UTC, datetime
from pathlib import Path

import pytest

from ltrr.plugin.ops import html as html_mod
from ltrr.plugin.ops.html import Report, format_cell, new_figure

PNG = b"\x89PNG\r\n\x1a\n"
STAMP = datetime(2024, 3, 5, 7, 9, 42, tzinfo=UTC)


class _FixedClock(datetime):
    @classmethod
    def now(cls, tz=None):
        return STAMP


@pytest.fixture(autouse=True)
def _clock(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(html_mod, "datetime", _FixedClock)


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    import matplotlib.pyplot as plt

    plt.close("all")


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (None, ""),
        (True, "True"),
        (False, "False"),
        (0, "0"),
        (1234567, "1,234,567"),
        (-42, "-42"),
        (float("nan"), "n/a"),
        (1234.6, "1,235"),
        (-250.0, "-250"),
        (100.0, "100"),
        (3.14159, "3.14"),
        (1.0, "1.00"),
        (0.12345, "0.123"),
        (-0.5, "-0.500"),
        ("a & b", "a & b"),
    ],
)
def test_format_cell(value: object, text: str) -> None:
    assert format_cell(value) == text


def test_title_and_subtitle_are_escaped_and_stamped() -> None:
    page = Report("Runs <v2> & more", "index 'a' \"b\"").render()
    assert "<title>Runs &lt;v2&gt; &amp; more</title>" in page
    assert "<h1>Runs &lt;v2&gt; &amp; more</h1>" in page
    assert (
        '<p class="subtitle">index &#x27;a&#x27; &quot;b&quot; · 2024-03-05 07:09 UTC</p>' in page
    )


def test_without_a_subtitle_the_stamp_stands_alone() -> None:
    assert '<p class="subtitle">2024-03-05 07:09 UTC</p>' in Report("t").render()


def test_blocks_are_escaped_and_kept_in_order() -> None:
    report = Report("t")
    report.heading("A <b>")
    report.paragraph("x < y & z")
    report.verdict("<script>alert(1)</script>")
    page = report.render()
    assert "<h2>A &lt;b&gt;</h2>" in page
    assert "<p>x &lt; y &amp; z</p>" in page
    assert '<p class="verdict">&lt;script&gt;alert(1)&lt;/script&gt;</p>' in page
    assert "<script" not in page
    assert page.index("<h2>") < page.index("<p>x") < page.index('class="verdict"')


def test_table_formats_escapes_and_highlights_one_row() -> None:
    report = Report("t")
    report.table(
        ["policy", "<reward>"],
        [["a&b", 1234], ["c", 0.5], ["d", None]],
        caption="best <first>",
        highlight=1,
    )
    page = report.render()
    assert (
        "<table><caption>best &lt;first&gt;</caption>"
        "<thead><tr><th>policy</th><th>&lt;reward&gt;</th></tr></thead>"
        "<tbody><tr><td>a&amp;b</td><td>1,234</td></tr>"
        '<tr class="best"><td>c</td><td>0.500</td></tr>'
        "<tr><td>d</td><td></td></tr></tbody></table>"
    ) in page


def test_table_without_caption_or_highlight() -> None:
    report = Report("t")
    report.table(["h"], [[1], [2]])
    page = report.render()
    assert "<table><thead><tr><th>h</th></tr></thead>" in page
    assert "<caption>" not in page
    assert 'class="best"' not in page


def test_an_empty_table_keeps_its_header() -> None:
    report = Report("t")
    report.table(["a", "b"], [])
    assert "<thead><tr><th>a</th><th>b</th></tr></thead><tbody></tbody>" in report.render()


def test_figure_is_inlined_as_a_png_data_uri_and_closed() -> None:
    import matplotlib.pyplot as plt

    fig = new_figure(2.0, 1.5)
    fig.add_subplot().plot([0, 1], [1, 0])
    number = fig.number
    report = Report("t")
    report.figure(fig, 'curve "a" <b>')
    page = report.render()

    match = re.search(
        r'<figure><img alt="([^"]*)" src="data:image/png;base64,([A-Za-z0-9+/=]+)">'
        r"<figcaption>([^<]*)</figcaption></figure>",
        page,
    )
    assert match is not None
    assert match.group(1) == "curve &quot;a&quot; &lt;b&gt;"
    assert match.group(3) == "curve &quot;a&quot; &lt;b&gt;"
    assert base64.b64decode(match.group(2)).startswith(PNG)
    assert not plt.fignum_exists(number)


def test_new_figure_has_the_asked_size_on_a_headless_backend() -> None:
    import matplotlib

    fig = new_figure(3.0, 2.0)
    assert tuple(fig.get_size_inches()) == (3.0, 2.0)
    assert matplotlib.get_backend().lower() == "agg"


def test_the_page_is_one_document_with_no_external_reference() -> None:
    report = Report("t")
    report.paragraph("see http://example.com")  # text, not a reference
    fig = new_figure(1.0, 1.0)
    fig.add_subplot().plot([1, 2])
    report.figure(fig, "f")
    page = report.render()
    assert page.startswith('<!doctype html><html lang="en"><head><meta charset="utf-8">')
    assert page.endswith("</body></html>\n")
    assert page.count("<html") == 1
    references = re.findall(r'(?:src|href)\s*=\s*"([^"]*)"', page)
    assert len(references) == 1
    assert references[0].startswith("data:image/png;base64,")
    for tag in ("<script", "<link", "<iframe", "@import", "url("):
        assert tag not in page


def test_write_creates_the_folder_and_writes_utf8(tmp_path: Path) -> None:
    report = Report("Résumé · ünïcode")
    path = report.write(tmp_path / "deep" / "er" / "r.html")
    assert path == tmp_path / "deep" / "er" / "r.html"
    assert path.read_bytes().decode("utf-8") == report.render()
    assert "<h1>Résumé · ünïcode</h1>" in path.read_text(encoding="utf-8")
