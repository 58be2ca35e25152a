"""``ltrr report --since 24h`` against the real node, rendered in a real headless Chromium.

Searches and feedback go through a real proxy (``ltrr serve``) in front of the real node, so
that the report reads decisions and events exactly as the proxy logged and shipped them. The
page is then loaded by Debian's chromium through Playwright (its own browser download is never
used), which reports console errors and uncaught page errors, and measures each figure.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
from opensearchpy import OpenSearch

from integration_tests.plugin.conftest import MusicIndex
from ltrr.plugin.learn.bulk import DECISIONS_INDEX, EVENTS_INDEX
from ltrr.plugin.learn.tokens import TOKEN_HEADER
from ltrr.plugin.ops.live.report import NO_ROLLOUT, SECTIONS

CHROMIUM = Path("/usr/bin/chromium")
# (query, intent): two entity names and two topics, asked in turn
QUERIES = [
    ("Daft Punk", "entity"),
    ("electronic", "topic"),
    ("Radiohead", "entity"),
    ("jazz", "topic"),
]
ROUNDS = 6  # per target: 24 searches each


def _search(url: str, target: str, query: str, intent: str) -> dict:
    body = {"size": 5, "ext": {"ltrr": {"query": query, "context": {"intent": intent}}}}
    response = requests.post(f"{url}/{target}/_search", json=body, timeout=30)
    assert response.status_code == 200, response.text
    return response.json()


def _click_first(url: str, answer: dict) -> bool:
    ext = answer["ext"]["ltrr"]
    hits = answer["hits"]["hits"]
    if not hits or "feedback_token" not in ext:
        return False
    response = requests.post(
        f"{url}/_ltrr/feedback",
        json={
            "decision_id": ext["decision_id"],
            "events": [{"type": "click", "object_id": hits[0]["_id"], "position": 1}],
        },
        headers={TOKEN_HEADER: ext["feedback_token"]},
        timeout=30,
    )
    assert response.status_code == 202, response.text
    return True


def _count(client: OpenSearch, pattern: str, targets: list[str]) -> int:
    client.indices.refresh(index=pattern, allow_no_indices=True)
    body = {"query": {"terms": {"target": targets}}}
    return int(client.count(index=pattern, body=body, allow_no_indices=True)["count"])


def _wait_for(condition, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"not met in {timeout}s")
        time.sleep(0.5)


@pytest.fixture(scope="module")
def logged(
    music: MusicIndex, start_proxy, client: OpenSearch, tmp_path_factory: pytest.TempPathFactory
) -> tuple[list[str], int, int]:
    """Searches on a learning target and a faulty one (two of its arms always fail), a
    click on the first hit of every other search, all stored and shipped."""
    learning, faulty = f"{music.name}-learning", f"{music.name}-faulty"
    log = tmp_path_factory.mktemp("live-proxy") / "proxy.log"
    searches = clicks = 0
    targets = [learning, faulty]
    # The music copies are the session's: earlier tests' searches on them (the metrics test's,
    # say) are in the logs too, and the report must count this module's alone.
    for pattern in (f"{DECISIONS_INDEX}*", f"{EVENTS_INDEX}*"):
        client.delete_by_query(
            index=pattern,
            body={"query": {"terms": {"target": targets}}},
            params={"refresh": "true", "conflicts": "proceed", "allow_no_indices": "true"},
        )
    with start_proxy([music.catalogs[learning], music.catalogs[faulty]], log) as proxy:
        for i in range(ROUNDS * len(QUERIES)):
            query, intent = QUERIES[i % len(QUERIES)]
            for target in (learning, faulty):
                answer = _search(proxy.url, target, query, intent)
                searches += 1
                if i % 2 == 0 and _click_first(proxy.url, answer):
                    clicks += 1
        _wait_for(lambda: _count(client, f"{DECISIONS_INDEX}*", targets) == searches)
        _wait_for(lambda: _count(client, f"{EVENTS_INDEX}*", targets) == clicks)
    return targets, searches, clicks


def test_the_live_report_renders_in_chromium_with_every_figure(
    logged: tuple[list[str], int, int], opensearch_url: str, tmp_path: Path
) -> None:
    if not CHROMIUM.exists() and shutil.which("chromium") is None:
        message = "Debian's chromium is not installed (apt-get install chromium)"
        if os.environ.get("CI") or os.environ.get("LTRR_CI"):
            pytest.fail(f"{message}; .ci/run installs it, so CI must have it")
        pytest.skip(message)
    from playwright.sync_api import sync_playwright

    targets, searches, clicks = logged
    out = tmp_path / "live-report.html"
    command = [sys.executable, "-m", "ltrr.plugin.ops.cli", "report", "--since", "24h"]
    command += ["--opensearch", opensearch_url, "--out", str(out)]
    for target in targets:
        command += ["--target", target]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    assert f"{searches:,} decisions and {clicks:,} events read" in done.stdout

    html = out.read_text()
    # What was sent is what is reported: every search, every click, grouped by the intent.
    assert f"<td>Searches (decisions logged)</td><td>{searches:,}</td>" in html
    assert f"<td>Feedback events on them</td><td>{clicks:,}</td>" in html
    assert "<th>Intent</th>" in html
    assert NO_ROLLOUT in html
    # The faulty catalog's arm on a missing index fails every time it is asked for.
    failures = html.split("<th>Failure rate</th>")[1].split("</table>")[0]
    assert "<td>missing_index</td><td>24</td><td>24</td><td>100.0%</td>" in failures

    problems: list[str] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM if CHROMIUM.exists() else shutil.which("chromium")),
            args=["--no-sandbox"],  # CI runs as root
        )
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.on(
                "console",
                lambda m: (
                    problems.append(f"console {m.type}: {m.text}") if m.type == "error" else None
                ),
            )
            page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
            page.goto(out.as_uri(), wait_until="load")
            headings = page.locator("h2").all_inner_texts()
            figures = page.evaluate(
                """() => [...document.querySelectorAll("figure img")].map(img => ({
                    complete: img.complete,
                    natural: [img.naturalWidth, img.naturalHeight],
                    shown: [img.getBoundingClientRect().width, img.getBoundingClientRect().height],
                    // the section a figure is in: the last heading before it
                    section: [...document.querySelectorAll("h2")].filter(h =>
                        h.compareDocumentPosition(img) & Node.DOCUMENT_POSITION_FOLLOWING
                    ).pop().textContent,
                }))"""
            )
            shot = tmp_path / "live-report.png"
            page.screenshot(path=str(shot), full_page=True)
        finally:
            browser.close()

    assert problems == []
    assert headings == list(SECTIONS)
    assert [f["section"] for f in figures] == [
        "Arm share over time",
        "Reward per arm",
        "Fallbacks and failures",
        "Latency",
    ]
    for figure in figures:
        assert figure["complete"], figure
        assert min(figure["natural"]) > 100, figure  # a decoded PNG, not a broken image
        assert min(figure["shown"]) > 100, figure  # laid out at a visible size
    assert shot.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    assert shot.stat().st_size > 50_000  # a full page of tables and figures, not a blank one
