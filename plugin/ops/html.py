"""Self-contained HTML reports: headings, prose, tables and PNG figures inlined as data URIs.

One file to mail or attach to a ticket: no scripts, no external assets. Every tool that
writes a report (simulate, ope, ltr, demo) composes it from these few blocks.
"""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from matplotlib.figure import Figure

_STYLE = """
body { font: 15px/1.45 system-ui, sans-serif; max-width: 1100px; margin: 2em auto;
       padding: 0 1em; color: #222; }
h1 { font-size: 1.6em; margin-bottom: 0.1em; } h2 { margin-top: 1.8em; }
.subtitle { color: #666; margin-top: 0; }
table { border-collapse: collapse; margin: 1em 0; font-variant-numeric: tabular-nums; }
th, td { border-bottom: 1px solid #ddd; padding: 0.3em 0.7em; text-align: right; }
th:first-child, td:first-child { text-align: left; }
th { background: #f4f4f4; } tr.best td { font-weight: 600; background: #eef7ee; }
figure { margin: 1.2em 0; } figure img { max-width: 100%; }
figcaption, caption { color: #555; font-size: 0.92em; caption-side: bottom; text-align: left; }
.verdict { font-size: 1.1em; padding: 0.7em 1em; background: #f6f8fa;
           border-left: 4px solid #3b7; }
"""


def format_cell(value: object) -> str:
    """Numbers at a readable precision; everything else as text."""
    if isinstance(value, bool) or value is None:
        return "" if value is None else str(value)
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if value != value:  # NaN
            return "n/a"
        magnitude = abs(value)
        if magnitude >= 100:
            return f"{value:,.0f}"
        if magnitude >= 1:
            return f"{value:.2f}"
        return f"{value:.3f}"
    return str(value)


class Report:
    """An HTML document built block by block, then written once."""

    def __init__(self, title: str, subtitle: str = "") -> None:
        self.title = title
        self._parts: list[str] = [f"<h1>{html.escape(title)}</h1>"]
        stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
        line = f"{subtitle} · {stamp}" if subtitle else stamp
        self._parts.append(f'<p class="subtitle">{html.escape(line)}</p>')

    def heading(self, text: str) -> None:
        self._parts.append(f"<h2>{html.escape(text)}</h2>")

    def paragraph(self, text: str) -> None:
        self._parts.append(f"<p>{html.escape(text)}</p>")

    def verdict(self, text: str) -> None:
        """The one-line answer a reader looks for first."""
        self._parts.append(f'<p class="verdict">{html.escape(text)}</p>')

    def table(
        self,
        headers: Sequence[str],
        rows: Sequence[Sequence[object]],
        caption: str = "",
        highlight: int | None = None,
    ) -> None:
        """A table; ``highlight`` is the index of a row to emphasise (the winner)."""
        head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
        body = []
        for i, row in enumerate(rows):
            cells = "".join(f"<td>{html.escape(format_cell(v))}</td>" for v in row)
            cls = ' class="best"' if i == highlight else ""
            body.append(f"<tr{cls}>{cells}</tr>")
        cap = f"<caption>{html.escape(caption)}</caption>" if caption else ""
        self._parts.append(
            f"<table>{cap}<thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"
        )

    def figure(self, fig: Figure, caption: str) -> None:
        """Inline the figure as a PNG, then close it (figures hold memory until closed)."""
        import matplotlib.pyplot as plt

        buffer = io.BytesIO()
        fig.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
        plt.close(fig)
        data = base64.b64encode(buffer.getvalue()).decode("ascii")
        self._parts.append(
            f'<figure><img alt="{html.escape(caption)}" src="data:image/png;base64,{data}">'
            f"<figcaption>{html.escape(caption)}</figcaption></figure>"
        )

    def render(self) -> str:
        return (
            '<!doctype html><html lang="en"><head><meta charset="utf-8">'
            f"<title>{html.escape(self.title)}</title><style>{_STYLE}</style></head>"
            f"<body>{''.join(self._parts)}</body></html>\n"
        )

    def write(self, path: Path) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(self.render(), encoding="utf-8")
        return path


def new_figure(width: float = 8.0, height: float = 4.0) -> Figure:
    """A figure on the non-interactive backend, so reports render on a headless server."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    fig: Figure = plt.figure(figsize=(width, height))
    return fig
