"""A real Prometheus (Debian's ``prometheus``) scrapes a real two-worker proxy in front of the
real node; what it stored is read back through its own query API, and every query of the
shipped Grafana dashboard is evaluated there."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from importlib.resources import files
from pathlib import Path
from typing import Any

import pytest
import requests
from opensearchpy import OpenSearch

from integration_tests.plugin.conftest import MusicIndex, _free_port
from ltrr.plugin.learn.bulk import DECISIONS_INDEX
from ltrr.plugin.learn.tokens import TOKEN_HEADER

PROMETHEUS = "/usr/bin/prometheus"  # Debian's package
DASHBOARD = files("ltrr.plugin.ops") / "grafana" / "ltrr.json"
# What Grafana puts in place of the dashboard's variables: every target, a one-minute rate.
GRAFANA_VARIABLES = {"$__rate_interval": "1m", "$target": ".*"}
WAIT_SECONDS = 90.0


def _prometheus_binary() -> str:
    found = shutil.which("prometheus") or (PROMETHEUS if Path(PROMETHEUS).exists() else None)
    if found is None:
        message = "Prometheus is not installed (Debian: apt-get install prometheus)"
        if os.environ.get("CI") or os.environ.get("LTRR_CI"):
            pytest.fail(f"{message}; .ci/run installs it, so CI must have it")
        pytest.skip(message)
    return found


def _config(proxy: str, token: str) -> str:
    """Two jobs on the same proxy: one with the admin token as a bearer credential, one
    without it (refused: its ``up`` is 0)."""
    job = """
  - job_name: {name}
    metrics_path: /_ltrr/metrics
    scrape_interval: 1s
    scrape_timeout: 1s{auth}
    static_configs:
      - targets: ["{proxy}"]
"""
    auth = f"\n    authorization:\n      type: Bearer\n      credentials: {token}"
    return (
        "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nscrape_configs:"
        + job.format(name="ltrr", auth=auth, proxy=proxy)
        + job.format(name="ltrr-no-token", auth="", proxy=proxy)
    )


@contextmanager
def _prometheus(binary: str, folder: Path, proxy: str, token: str) -> Iterator[str]:
    folder.mkdir(parents=True, exist_ok=True)
    config = folder / "prometheus.yml"
    config.write_text(_config(proxy, token))
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    log = folder / "prometheus.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [
                binary,
                f"--config.file={config}",
                f"--storage.tsdb.path={folder / 'tsdb'}",
                f"--web.listen-address=127.0.0.1:{port}",
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + WAIT_SECONDS
        while True:
            if process.poll() is not None:
                pytest.fail(f"prometheus exited with {process.returncode}:\n{log.read_text()}")
            try:
                if requests.get(f"{url}/-/ready", timeout=2).status_code == 200:
                    break
            except requests.RequestException:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"prometheus was not ready in {WAIT_SECONDS} s:\n{log.read_text()}")
            time.sleep(0.2)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _query(prometheus: str, expr: str) -> list[dict[str, Any]]:
    answer = requests.get(f"{prometheus}/api/v1/query", params={"query": expr}, timeout=30)
    body = answer.json()
    assert answer.status_code == 200, (expr, body)
    assert body["status"] == "success", (expr, body)
    assert body["data"]["resultType"] == "vector", (expr, body)
    return list(body["data"]["result"])


def _scalar(prometheus: str, expr: str) -> float | None:
    result = _query(prometheus, expr)
    return float(result[0]["value"][1]) if result else None


def _until(prometheus: str, expected: dict[str, float]) -> dict[str, float | None]:
    """What each query answers, once all answer as expected or the wait is over (the last
    requests reach Prometheus with the next scrape)."""
    deadline = time.monotonic() + WAIT_SECONDS
    while True:
        seen = {expr: _scalar(prometheus, expr) for expr in expected}
        if seen == expected or time.monotonic() > deadline:
            return seen
        time.sleep(0.5)


def _search(url: str, target: str, query: str) -> dict[str, Any]:
    body = {"size": 5, "ext": {"ltrr": {"query": query}}}
    answer = requests.post(f"{url}/{target}/_search", json=body, timeout=60)
    assert answer.status_code == 200, answer.text
    return dict(answer.json())


def _logged(client: OpenSearch, decision_id: str) -> None:
    """Feedback may reach the other worker, which reads the decision from ``ltrr-decisions``."""
    deadline = time.monotonic() + WAIT_SECONDS
    # The log is an alias over day indices: a search, not a get, finds the decision in them.
    query = {"query": {"ids": {"values": [decision_id]}}}
    while True:
        client.indices.refresh(index=DECISIONS_INDEX)
        if client.count(index=DECISIONS_INDEX, body=query)["count"]:
            return
        assert time.monotonic() < deadline, f"decision {decision_id} was never logged"
        time.sleep(0.2)


def _feedback(url: str, answer: dict[str, Any], token: str, event_id: str) -> int:
    ltrr = answer["ext"]["ltrr"]
    event = {"type": "click", "object_id": answer["hits"]["hits"][0]["_id"], "id": event_id}
    response = requests.post(
        f"{url}/_ltrr/feedback",
        json={"decision_id": ltrr["decision_id"], "events": [event]},
        headers={TOKEN_HEADER: token},
        timeout=30,
    )
    return response.status_code


def _searched_by_worker(url: str, token: str) -> dict[int, int]:
    """Each worker's own count of the searches it answered (``/_ltrr/stats`` is per worker;
    each request is a new connection, so both workers answer in turn)."""
    seen: dict[int, int] = {}
    for _ in range(200):
        stats = requests.get(
            f"{url}/_ltrr/stats", headers={"Authorization": f"Bearer {token}"}, timeout=10
        ).json()
        seen[stats["pid"]] = stats.get("intercepted", 0)
        if len(seen) == 2:
            break
    return seen


def _until_both_workers_searched(url: str, target: str, token: str) -> list[dict[str, Any]]:
    """Searches until each worker has answered some, so that the sums Prometheus reads must
    come from both."""
    answers: list[dict[str, Any]] = []
    while True:
        answers.append(_search(url, target, "portishead"))
        counts = _searched_by_worker(url, token)
        if len(counts) == 2 and all(counts.values()):
            return answers
        assert len(answers) < 50, f"one worker answered every search: {counts}"


def _send_traffic(url: str, music: MusicIndex, client: OpenSearch, token: str) -> dict[str, float]:
    """Searches, passthroughs, errors and feedback; returns the queries' expected values."""
    learning, static, faulty = (f"{music.name}-{k}" for k in ("learning", "static", "faulty"))
    queries = ["radiohead", "daft punk", "trip-hop", "miles davis", "ambient", "beatles"]
    answers = [_search(url, learning, q) for q in queries]
    answers += _until_both_workers_searched(url, static, token)
    answers.append(_search(url, faulty, "bjork"))  # two of its arms fail
    searches = len(answers)
    assert sum(_searched_by_worker(url, token).values()) == searches
    fallbacks = sum(1 for a in answers if a["ext"]["ltrr"]["fallback"])
    for _ in range(3):  # not a catalogued target: passed through
        assert requests.get(f"{url}/{music.name}/_count", timeout=30).status_code == 200
    for _ in range(2):  # a catalogued target, with what the proxy does not read
        body = {"query": {"match_all": {}}, "aggs": {"g": {"terms": {"field": "genre"}}}}
        assert requests.post(f"{url}/{learning}/_search", json=body, timeout=30).ok
    bad = requests.post(
        f"{url}/{learning}/_search",
        data=b"{not json",
        headers={"Content-Type": "application/json"},
        timeout=30,
    )
    assert bad.status_code == 400
    for answer in answers[:4]:
        _logged(client, answer["ext"]["ltrr"]["decision_id"])
    for n, answer in enumerate(answers[:4]):
        token = answer["ext"]["ltrr"]["feedback_token"]
        assert _feedback(url, answer, token, f"metrics-{n}") == 202
    assert _feedback(url, answers[4], "not-its-token", "metrics-x") == 403
    return {
        'sum(ltrr_requests_total{route="search",outcome="intercepted"})': searches - fallbacks,
        'sum(ltrr_requests_total{route="search",outcome=~"intercepted|fallback"})': searches,
        'sum(ltrr_requests_total{route="search",outcome="passthrough"})': 2,
        'sum(ltrr_requests_total{route="search",outcome="error"})': 1,
        'sum(ltrr_error_responses_total{route="search",status="400"})': 1,
        'sum(ltrr_passthrough_total{route="other",reason="not intercepted"})': 3,
        'sum(ltrr_passthrough_total{route="search",reason="body key"})': 2,
        f'sum(ltrr_decisions_total{{target="{learning}"}})': 6,
        'sum(ltrr_stage_seconds_count{stage="decide"})': searches,
        'sum(ltrr_stage_seconds_count{stage="total"})': searches,
        # faulty: its missing index and its broken template
        f'sum(ltrr_arm_failures_total{{target="{faulty}"}})': 2,
        'sum(ltrr_feedback_events_total{source="api",outcome="accepted"})': 4,
        'sum(ltrr_feedback_refused_total{source="api",reason="forbidden"})': 1,
        'up{job="ltrr"}': 1,
        'up{job="ltrr-no-token"}': 0,
    }


def _grafana(expr: str) -> str:
    for variable, value in GRAFANA_VARIABLES.items():
        expr = expr.replace(variable, value)
    assert "$" not in expr, expr
    return expr


def _dashboard() -> dict[str, Any]:
    dashboard = json.loads(DASHBOARD.read_text())
    assert dashboard["schemaVersion"] >= 39
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    panels = [p for p in dashboard["panels"] if p["type"] != "row"]
    assert len({p["id"] for p in dashboard["panels"]}) == len(dashboard["panels"])
    for panel in panels:
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
        assert panel["targets"], panel["title"]
    return dashboard


def test_prometheus_reads_what_every_worker_counted_and_the_dashboard_evaluates(
    music: MusicIndex, start_proxy, client: OpenSearch, tmp_path: Path
) -> None:
    binary = _prometheus_binary()
    dashboard = _dashboard()
    token = f"metrics-{uuid.uuid4().hex}"
    catalogs = [music.catalogs[f"{music.name}-{k}"] for k in ("learning", "static", "faulty")]
    with start_proxy(
        catalogs,
        tmp_path / "proxy.log",
        admin_token=token,
        extra_args=("--workers", "2"),
    ) as proxy:
        refused = requests.get(f"{proxy.url}/_ltrr/metrics", timeout=10)
        assert refused.status_code == 403
        assert refused.json()["error"]["type"] == "security_exception"
        scraped = requests.get(
            f"{proxy.url}/_ltrr/metrics", headers={"Authorization": f"Bearer {token}"}, timeout=10
        )
        assert scraped.status_code == 200
        assert scraped.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        host_port = proxy.url.removeprefix("http://")
        with _prometheus(binary, tmp_path / "prometheus", host_port, token) as prometheus:
            expected = _send_traffic(proxy.url, music, client, token)
            assert _until(prometheus, expected) == expected
            targets = requests.get(f"{prometheus}/api/v1/targets", timeout=30).json()
            (no_token,) = [
                t for t in targets["data"]["activeTargets"] if t["labels"]["job"] == "ltrr-no-token"
            ]
            assert "403" in no_token["lastError"]
            _evaluate_dashboard(prometheus, dashboard)


def _evaluate_dashboard(prometheus: str, dashboard: dict[str, Any]) -> None:
    """Every target is valid PromQL; every panel shows data once the series have two samples
    in the rate window (the traffic exercised all of them)."""
    panels = [p for p in dashboard["panels"] if p["type"] != "row"]
    deadline = time.monotonic() + WAIT_SECONDS
    empty: list[str] = []
    while True:
        empty = [
            panel["title"]
            for panel in panels
            if not any(_query(prometheus, _grafana(t["expr"])) for t in panel["targets"])
        ]
        if not empty or time.monotonic() > deadline:
            break
        time.sleep(1.0)
    assert empty == []
