"""Prometheus metrics: every series the proxy exports is defined here, and only here.

Labels are low-cardinality by construction: route classes (never raw paths), bounded outcome
and reason words, the proxy's own OpenSearch API names, and catalog targets and arm names
(bounded by the catalogs). Never query text, ids, or a caller's parameter names.

With ``ltrr serve --workers N`` every worker is its own process; the parent points
``PROMETHEUS_MULTIPROC_DIR`` at a fresh directory before starting them, so each worker's
values live in files there and a scrape that reaches any worker reads all of them
(``prometheus_client``'s multiprocess mode). Gauges then say how they combine across workers.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, TypeVar

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    Summary,
    generate_latest,
    multiprocess,
)

from ltrr.bandit.decision import Decision

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
# The classic text format ``generate_latest`` writes: what every Prometheus since 2.0 reads.
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
# How often a worker republishes its gauges, so that a scrape reaching another worker sees them.
GAUGE_SECONDS = 1.0

REGISTRY = CollectorRegistry()

# Seconds, from a sub-millisecond decision to a slow upstream.
LATENCY_BUCKETS = (
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
)  # fmt: skip

REQUESTS = Counter(
    "ltrr_requests",
    "Requests by route class and outcome (intercepted, cached, fallback, passthrough, "
    "answered, error).",
    ["route", "outcome"],
    registry=REGISTRY,
)
REQUEST_SECONDS = Histogram(
    "ltrr_request_seconds",
    "Time from a request's arrival until its answer was ready (a streamed passthrough: sent), "
    "by route class.",
    ["route"],
    buckets=LATENCY_BUCKETS,
    registry=REGISTRY,
)
PASSTHROUGH = Counter(
    "ltrr_passthrough",
    "Requests passed through to OpenSearch unchanged, by route class and reason.",
    ["route", "reason"],
    registry=REGISTRY,
)
ERRORS = Counter(
    "ltrr_error_responses",
    "Error answers the proxy wrote itself (OpenSearch's error JSON), by route class and status.",
    ["route", "status"],
    registry=REGISTRY,
)
STAGE_SECONDS = Histogram(
    "ltrr_stage_seconds",
    "Time of each stage of an intercepted search (decide, embed, plan, retrieve, fuse, rerank, "
    "total), by catalog target.",
    ["target", "stage"],
    buckets=LATENCY_BUCKETS,
    registry=REGISTRY,
)
UPSTREAM_SECONDS = Histogram(
    "ltrr_upstream_seconds",
    "Time of each call the proxy makes to OpenSearch, by API (passthrough: a forwarded request "
    "to the end of its answer).",
    ["call"],
    buckets=LATENCY_BUCKETS,
    registry=REGISTRY,
)
UPSTREAM_FAILURES = Counter(
    "ltrr_upstream_failures",
    "Calls to OpenSearch that got no usable answer (unreachable, timed out, unreadable), by API.",
    ["call"],
    registry=REGISTRY,
)
DECISIONS = Counter(
    "ltrr_decisions",
    "Decisions that answered a search (fallback plans included), by catalog target.",
    ["target"],
    registry=REGISTRY,
)
ARM_INCLUDED = Counter(
    "ltrr_arm_included",
    "Decisions that included the arm.",
    ["target", "arm"],
    registry=REGISTRY,
)
ARM_CANDIDATES = Counter(
    "ltrr_arm_candidates",
    "Candidates asked of the arm, summed over the decisions that included it.",
    ["target", "arm"],
    registry=REGISTRY,
)
ARM_FAILURES = Counter(
    "ltrr_arm_failures",
    "Arm searches that failed (error, timeout, failed shards), in every attempt of a search.",
    ["target", "arm"],
    registry=REGISTRY,
)
ARM_REWARD = Summary(
    "ltrr_arm_reward",
    "Rewards the arm observed (feedback events, and 0 for windows closed without feedback).",
    ["target", "arm"],
    registry=REGISTRY,
)
FEEDBACK = Counter(
    "ltrr_feedback_events",
    "Feedback events taken, by source (api, ubi) and outcome (accepted, duplicate).",
    ["source", "outcome"],
    registry=REGISTRY,
)
FEEDBACK_REFUSED = Counter(
    "ltrr_feedback_refused",
    "Feedback refused, by source and reason: whole requests for the API (all or none), single "
    "events for UBI writes (which OpenSearch stores anyway).",
    ["source", "reason"],
    registry=REGISTRY,
)
EVENTS_SHIPPED = Counter(
    "ltrr_events_shipped", "Events copied from the durable log to ltrr-events.", registry=REGISTRY
)
EVENTS_DEAD_LETTERED = Counter(
    "ltrr_events_dead_lettered",
    "Events ltrr-events refused for good, kept in the dead letters.",
    registry=REGISTRY,
)
STATE_MERGES = Counter(
    "ltrr_state_merges",
    "Rounds that merged a catalog's bandit statistics with the shared copy.",
    ["target"],
    registry=REGISTRY,
)
STATE_CONFLICTS = Counter(
    "ltrr_state_conflicts",
    "Guarded state writes that conflicted with another replica's and were read again.",
    ["target"],
    registry=REGISTRY,
)
STATE_FAILURES = Counter(
    "ltrr_state_merge_failures",
    "Merge rounds that failed (the delta is kept for the next one).",
    ["target"],
    registry=REGISTRY,
)
OPEN_DECISIONS = Gauge(
    "ltrr_open_decisions",
    "Decisions in their feedback window, held in memory (summed over live workers).",
    multiprocess_mode="livesum",
    registry=REGISTRY,
)
OPEN_DECISIONS_BYTES = Gauge(
    "ltrr_open_decisions_bytes",
    "Memory the open decisions hold, about (summed over live workers).",
    multiprocess_mode="livesum",
    registry=REGISTRY,
)
UNSHIPPED_BYTES = Gauge(
    "ltrr_event_log_unshipped_bytes",
    "Bytes of the durable event log not yet in ltrr-events: the shipper's backlog.",
    multiprocess_mode="livesum",
    registry=REGISTRY,
)
LOG_LAG = Gauge(
    "ltrr_event_log_lag_seconds",
    "How long the event log has been behind ltrr-events (0 when caught up; the most behind "
    "worker).",
    multiprocess_mode="livemax",
    registry=REGISTRY,
)
RESIDENT_BYTES = Gauge(
    "ltrr_resident_memory_bytes",
    "Resident memory of the proxy's processes (summed over live workers).",
    multiprocess_mode="livesum",
    registry=REGISTRY,
)

_Labelled = TypeVar("_Labelled", Counter, Histogram, Summary)
_children: dict[tuple[int, tuple[str, ...]], Any] = {}


def _child(metric: _Labelled, *values: str) -> _Labelled:
    """A labelled series, looked up once: ``labels()`` validates and locks on every call,
    which costs more than the update itself on the request path."""
    key = (id(metric), values)
    child = _children.get(key)
    if child is None:
        child = _children[key] = metric.labels(*values)
    return child


def request_done(route: str, outcome: str, seconds: float) -> None:
    _child(REQUESTS, route, outcome).inc()
    _child(REQUEST_SECONDS, route).observe(seconds)


def error_answered(route: str, status: int) -> None:
    _child(ERRORS, route, str(status)).inc()


def passed(route: str, reason: str) -> None:
    _child(PASSTHROUGH, route, reason).inc()


def upstream(call: str, seconds: float, *, failed: bool = False) -> None:
    _child(UPSTREAM_SECONDS, call).observe(seconds)
    if failed:
        _child(UPSTREAM_FAILURES, call).inc()


# The proxy's own calls, named by the first ``_api`` segment of their path.
_API = re.compile(r"/(_[a-z_]+)")


def api_of(path: str) -> str:
    """``/ltrr-state/_mget`` -> ``_mget``; a path with no API segment is an index call."""
    found = _API.search(path.partition("?")[0])
    return found.group(1) if found else "index"


def observe_search(target: str, timings_ms: Mapping[str, float], total_ms: float) -> None:
    for stage, ms in timings_ms.items():
        _child(STAGE_SECONDS, target, stage).observe(ms / 1000.0)
    _child(STAGE_SECONDS, target, "total").observe(total_ms / 1000.0)


def observe_decision(target: str, decision: Decision) -> None:
    _child(DECISIONS, target).inc()
    for choice in decision.choices:
        if choice.included:
            _child(ARM_INCLUDED, target, choice.arm).inc()
            _child(ARM_CANDIDATES, target, choice.arm).inc(choice.size)


def arms_failed(target: str, arms: Iterable[str]) -> None:
    for arm in arms:
        _child(ARM_FAILURES, target, arm).inc()


def observe_rewards(target: str, rewards: Mapping[str, float]) -> None:
    for arm, reward in rewards.items():
        _child(ARM_REWARD, target, arm).observe(reward)


def refusal_reason(exc: BaseException) -> str:
    """A refused feedback request's reason label: its error class, in snake case."""
    name = type(exc).__name__
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def set_learning(open_decisions: int, open_bytes: int, unshipped: int, lag: float) -> None:
    OPEN_DECISIONS.set(open_decisions)
    OPEN_DECISIONS_BYTES.set(open_bytes)
    UNSHIPPED_BYTES.set(unshipped)
    LOG_LAG.set(lag)


def set_resident_memory() -> None:
    """From ``/proc/self/statm`` (Linux); elsewhere the gauge stays 0."""
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
    except (OSError, IndexError, ValueError):
        return
    RESIDENT_BYTES.set(pages * os.sysconf("SC_PAGE_SIZE"))


def exposition() -> bytes:
    """What a scrape reads: this process's metrics, or every worker's in multiprocess mode."""
    path = os.environ.get(MULTIPROC_ENV)
    if not path:
        return generate_latest(REGISTRY)
    merged = CollectorRegistry()
    multiprocess.MultiProcessCollector(merged, path=path)  # type: ignore[no-untyped-call]
    return generate_latest(merged)


def multiprocess_dir() -> tuple[Path, bool]:
    """The directory the workers write their metrics to, emptied for this start, and whether
    it was made here (and is to be removed at the end). An operator's own
    ``PROMETHEUS_MULTIPROC_DIR`` is used when set: a previous run's files in it are removed,
    or its dead workers' counters would add to this run's."""
    given = os.environ.get(MULTIPROC_ENV)
    if not given:
        return Path(tempfile.mkdtemp(prefix="ltrr-metrics-")), True
    path = Path(given)
    path.mkdir(parents=True, exist_ok=True)
    for stale in path.glob("*.db"):
        stale.unlink()
    return path, False


def worker_exited(pid: int, path: Path) -> None:
    """A dead worker's live gauges leave the sums; its counters stay (totals never drop)."""
    multiprocess.mark_process_dead(pid, str(path))  # type: ignore[no-untyped-call]


def remove_dir(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)
