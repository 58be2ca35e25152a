"""The metric definitions and helpers, read back from the registry they write to."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from prometheus_client.parser import text_string_to_metric_families

from ltrr.bandit.decision import ArmChoice, Decision
from ltrr.plugin.errors import Forbidden, InvalidEvent
from ltrr.plugin.runtime import metrics


def value(name: str, **labels: str) -> float:
    return metrics.REGISTRY.get_sample_value(name, labels) or 0.0


@pytest.mark.parametrize(
    ("path", "api"),
    [
        ("/_msearch", "_msearch"),
        ("/music,films/_search?timeout=10ms", "_search"),
        ("/ltrr-decisions/_doc/a_b", "_doc"),
        ("/ltrr-state/_mget", "_mget"),
        ("/_plugins/_ltr/_featureset/x", "_plugins"),
        ("/ltrr-events", "index"),
    ],
)
def test_api_of_names_the_first_api_segment(path, api):
    assert metrics.api_of(path) == api


def test_stage_times_fall_into_the_buckets_their_seconds_say():
    target = "t-buckets"
    metrics.observe_search(target, {"decide": 0.4, "retrieve": 30.0}, total_ms=120.0)
    metrics.observe_search(target, {"decide": 2.0, "retrieve": 3.0}, total_ms=9.0)
    stage = "ltrr_stage_seconds_bucket"
    # decide: 0.0004 s and 0.002 s
    assert value(stage, target=target, stage="decide", le="0.0005") == 1
    assert value(stage, target=target, stage="decide", le="0.001") == 1
    assert value(stage, target=target, stage="decide", le="0.0025") == 2
    # retrieve: 0.03 s and 0.003 s
    assert value(stage, target=target, stage="retrieve", le="0.0025") == 0
    assert value(stage, target=target, stage="retrieve", le="0.005") == 1
    assert value(stage, target=target, stage="retrieve", le="0.025") == 1
    assert value(stage, target=target, stage="retrieve", le="0.05") == 2
    # total: 0.12 s and 0.009 s
    assert value(stage, target=target, stage="total", le="0.01") == 1
    assert value(stage, target=target, stage="total", le="0.1") == 1
    assert value(stage, target=target, stage="total", le="0.25") == 2
    assert value(stage, target=target, stage="total", le="+Inf") == 2
    assert value("ltrr_stage_seconds_count", target=target, stage="total") == 2
    assert value("ltrr_stage_seconds_sum", target=target, stage="total") == pytest.approx(0.129)
    assert value("ltrr_stage_seconds_sum", target=target, stage="decide") == pytest.approx(0.0024)


def test_a_decision_counts_its_included_arms_and_their_sizes():
    target = "t-arms"
    decision = Decision(
        (ArmChoice("a", True, 7, 0.9, 0.0), ArmChoice("b", False, 4, 0.2, 0.0)), "linucb"
    )
    for _ in range(3):
        metrics.observe_decision(target, decision)
    metrics.arms_failed(target, ["a", "b"])
    metrics.arms_failed(target, ["b"])
    assert value("ltrr_decisions_total", target=target) == 3
    assert value("ltrr_arm_included_total", target=target, arm="a") == 3
    assert value("ltrr_arm_included_total", target=target, arm="b") == 0
    assert value("ltrr_arm_candidates_total", target=target, arm="a") == 21  # 3 x 7
    assert value("ltrr_arm_candidates_total", target=target, arm="b") == 0  # excluded
    assert value("ltrr_arm_failures_total", target=target, arm="a") == 1
    assert value("ltrr_arm_failures_total", target=target, arm="b") == 2


def test_rewards_are_a_count_and_a_sum_per_arm():
    target = "t-rewards"
    metrics.observe_rewards(target, {"a": 2.0, "b": 0.0})
    metrics.observe_rewards(target, {"a": 0.5})
    assert value("ltrr_arm_reward_count", target=target, arm="a") == 2
    assert value("ltrr_arm_reward_sum", target=target, arm="a") == 2.5
    assert value("ltrr_arm_reward_count", target=target, arm="b") == 1
    assert value("ltrr_arm_reward_sum", target=target, arm="b") == 0.0


def test_a_refusal_reason_is_the_error_class_in_snake_case():
    assert metrics.refusal_reason(InvalidEvent("x")) == "invalid_event"
    assert metrics.refusal_reason(Forbidden("x")) == "forbidden"
    assert metrics.refusal_reason(ValueError("x")) == "value_error"


def test_the_exposition_is_the_classic_text_format(monkeypatch):
    monkeypatch.delenv(metrics.MULTIPROC_ENV, raising=False)
    metrics.set_learning(open_decisions=3, open_bytes=4096, unshipped=10, lag=1.5)
    text = metrics.exposition().decode()
    families = {f.name: f for f in text_string_to_metric_families(text)}
    assert families["ltrr_open_decisions"].samples[0].value == 3
    assert families["ltrr_open_decisions_bytes"].samples[0].value == 4096
    assert families["ltrr_event_log_unshipped_bytes"].samples[0].value == 10
    assert families["ltrr_event_log_lag_seconds"].samples[0].value == 1.5
    assert families["ltrr_requests"].type == "counter"
    assert metrics.CONTENT_TYPE.startswith("text/plain; version=0.0.4")


def test_resident_memory_is_read_from_proc():
    if not os.path.exists("/proc/self/statm"):
        pytest.skip("no /proc on this system")
    metrics.set_resident_memory()
    assert value("ltrr_resident_memory_bytes") > 1024 * 1024  # an interpreter is megabytes


WORKER = """
import os, sys
from ltrr.plugin.runtime import metrics
metrics.REQUESTS.labels("search", "intercepted").inc(int(sys.argv[1]))
metrics.OPEN_DECISIONS.set(int(sys.argv[2]))
print(os.getpid())
"""


def _worker(folder, intercepted: int, open_decisions: int) -> int:
    env = {**os.environ, metrics.MULTIPROC_ENV: str(folder)}
    done = subprocess.run(
        [sys.executable, "-c", WORKER, str(intercepted), str(open_decisions)],
        env=env,
        capture_output=True,
        check=True,
        timeout=120,
    )
    return int(done.stdout)


def _scraped(monkeypatch, folder) -> dict[str, float]:
    monkeypatch.setenv(metrics.MULTIPROC_ENV, str(folder))
    text = metrics.exposition().decode()
    out = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "ltrr_requests_total" and sample.labels == {
                "route": "search",
                "outcome": "intercepted",
            }:
                out["intercepted"] = sample.value
            if sample.name == "ltrr_open_decisions":
                out["open"] = sample.value
    return out


def test_a_scrape_in_multiprocess_mode_sums_every_workers_files(monkeypatch, tmp_path):
    monkeypatch.delenv(metrics.MULTIPROC_ENV, raising=False)
    folder, made = metrics.multiprocess_dir()
    try:
        assert made
        assert not list(folder.iterdir())
        first = _worker(folder, intercepted=2, open_decisions=3)
        second = _worker(folder, intercepted=5, open_decisions=4)
        assert _scraped(monkeypatch, folder) == {"intercepted": 7, "open": 7}
        # A worker gone: its live gauge leaves the sum, its counts stay in the totals.
        metrics.worker_exited(first, folder)
        assert _scraped(monkeypatch, folder) == {"intercepted": 7, "open": 4}
        metrics.worker_exited(second, folder)
        assert _scraped(monkeypatch, folder) == {"intercepted": 7}
    finally:
        metrics.remove_dir(folder)
    assert not folder.exists()


def test_an_operators_own_directory_is_emptied_of_a_previous_run(monkeypatch, tmp_path):
    folder = tmp_path / "prom"
    folder.mkdir()
    (folder / "counter_123.db").write_bytes(b"old")
    (folder / "notes.txt").write_text("kept")
    monkeypatch.setenv(metrics.MULTIPROC_ENV, str(folder))
    assert metrics.multiprocess_dir() == (folder, False)
    assert sorted(p.name for p in folder.iterdir()) == ["notes.txt"]
