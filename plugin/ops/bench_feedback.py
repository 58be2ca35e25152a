"""``ltrr bench feedback``: how fast the learning loop takes feedback, and how soon it shows.

Self-contained against a real OpenSearch: a throwaway index and catalog, two in-process proxy
replicas (A takes searches and feedback, B only merges statistics), then four measurements:
- intake: events/s acknowledged by A's ``/_ltrr/feedback`` (202 = fsync'd and applied);
- local update: from sending one event until A's own policy object has learned it;
- cross-replica update: from sending one event to A until B's policy object has it;
- shipping: until every acknowledged event is searchable in ``ltrr-events``.
Client and proxies share one process and one event loop, so the numbers are a lower bound of
what a proxy running alone serves. Nothing here asserts a target.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import math
import shutil
import tempfile
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import numpy as np
import orjson
from aiohttp import web

from ltrr.bandit.policies.base import Policy
from ltrr.plugin.errors import LtrrError
from ltrr.plugin.learn.bulk import EVENTS_INDEX
from ltrr.plugin.learn.tokens import TOKEN_HEADER
from ltrr.plugin.ops.client import free_port
from ltrr.plugin.runtime.registry import CatalogRegistry, CatalogRuntime
from ltrr.plugin.serve.server import Proxy
from ltrr.query_plans.catalog import load_catalog

INDEX_PREFIX = "ltrr-bench-feedback-"
DOCS = 300
MAX_BATCH = 1000  # the catalog's feedback.max_events default
JSON = {"Content-Type": "application/json"}
# One intercepted search: its decision id, its feedback token, the ids it returned.
Searched = tuple[str, str, list[str]]

# fmt: off
_FIRST = (
    "amber", "silver", "crimson", "velvet", "electric", "golden", "hollow", "midnight", "neon",
    "paper", "quiet", "rusty", "savage", "tidal", "urban", "wild", "cosmic", "frozen", "lunar",
    "scarlet",
)
_SECOND = (
    "falcon", "harbor", "lanterns", "machines", "orchard", "pilots", "rivers", "shadows",
    "sparrows", "static", "tigers", "voyage", "wolves", "engines", "gardens", "mirrors", "comets",
    "daggers", "embers", "islands",
)
_TAGS = (
    "rock", "jazz", "pop", "folk", "techno", "ambient", "punk", "soul", "blues", "metal", "house",
    "indie",
)
# fmt: on


@dataclass(frozen=True, slots=True)
class FeedbackBenchConfig:
    """What one run does; the defaults keep a run under a minute on two cores."""

    opensearch: str = "http://127.0.0.1:9200"
    searches: int = 200
    events: int = 5000
    concurrency: int = 32
    batches: tuple[int, ...] = (1, 10)
    probes: int = 50
    merge_seconds: float = 1.0
    seed: int = 7

    def check(self) -> None:
        """Refuse settings that would measure nothing, before anything is created."""
        for name in ("searches", "events", "concurrency", "probes"):
            if getattr(self, name) < 1:
                raise ValueError(f"--{name} must be at least 1, got {getattr(self, name)}")
        if not self.batches or any(not 1 <= b <= MAX_BATCH for b in self.batches):
            raise ValueError(f"--batch values must be between 1 and {MAX_BATCH}: {self.batches}")
        if not 0 < self.merge_seconds <= 60:
            raise ValueError(f"--merge-seconds must be in (0, 60], got {self.merge_seconds}")


# -- pure helpers -----------------------------------------------------------------------------


def summarize(values_ms: Sequence[float]) -> dict[str, float]:
    """p50/p99/max/mean of latencies in ms; an empty series (nothing seen) gives NaN and n 0,
    which the table shows as ``-`` rather than as a made-up zero."""
    if not values_ms:
        nan = float("nan")
        return {"p50": nan, "p99": nan, "max": nan, "mean": nan, "n": 0}
    ordered = np.sort(np.asarray(values_ms, dtype=float))
    return {
        "p50": round(float(np.percentile(ordered, 50)), 3),
        "p99": round(float(np.percentile(ordered, 99)), 3),
        "max": round(float(ordered[-1]), 3),
        "mean": round(float(ordered.mean()), 3),
        "n": len(ordered),
    }


def rate(count: int, seconds: float) -> float:
    """Per second, rounded; 0 when nothing was timed (so a report never divides by zero)."""
    return round(count / seconds, 1) if seconds > 0 else 0.0


def synthetic_docs(n: int, seed: int) -> list[dict[str, str]]:
    """Deterministic artist-like docs: distinct two-word names, two or three tags."""
    rng = np.random.default_rng(seed)
    pairs = [f"{a} {b}" for a in _FIRST for b in _SECOND]
    order = rng.permutation(len(pairs))
    docs = []
    for i in range(n):
        name = pairs[int(order[i % len(pairs)])]
        if i >= len(pairs):
            name = f"{name} {i // len(pairs) + 1}"
        k = int(rng.integers(2, 4))
        tags = " ".join(_TAGS[int(t)] for t in rng.choice(len(_TAGS), size=k, replace=False))
        docs.append({"name": name.title(), "tags": tags})
    return docs


def search_queries(n: int, seed: int) -> list[str]:
    """``n`` distinct queries (a name word and a tag), so that no search hits the page cache
    and every one is a fresh decision."""
    rng = np.random.default_rng(seed + 1)
    words = _FIRST + _SECOND
    pairs = [f"{w} {t}" for w in words for t in _TAGS]
    order = rng.permutation(len(pairs))
    out = []
    for i in range(n):
        query = pairs[int(order[i % len(pairs)])]
        out.append(query if i < len(pairs) else f"{query} {i // len(pairs)}")
    return out


def catalog_yaml(index: str) -> str:
    """Two lexical arms and clicks/plays: nothing that needs a model or a plugin."""
    return f"""\
target: {index}
budget: 40
policy: {{name: linucb}}
features: {{entity_field: name.keyword}}
arms:
  - name: by_name
    template: multi_match.json.j2
    params: {{fields: [name]}}
    size: {{min: 5, max: 20}}
  - name: by_tag
    template: multi_match.json.j2
    params: {{fields: [tags]}}
    size: {{min: 5, max: 20}}
feedback:
  events: {{click: 1.0, play: 2.0}}
  window_seconds: 600
fallback:
  - {{arm: by_name, size: 10}}
"""


def feedback_bodies(
    decisions: Sequence[Searched], events: int, batch: int, tag: str
) -> list[tuple[str, bytes]]:
    """``ceil(events / batch)`` request bodies with their decision's feedback token,
    round-robin over the decisions; every event is a click or play on a hit its decision
    returned, with an id of its own (no duplicates), spread over the hits so that a run stays
    within the caps per decision and per object."""
    bodies = []
    sent = 0
    for k in itertools.count():
        if sent >= events:
            break
        decision_id, token, hits = decisions[k % len(decisions)]
        size = min(batch, events - sent)
        items = []
        for j in range(size):
            position = (k // len(decisions) * batch + j) % len(hits)
            items.append(
                {
                    "type": "play" if (k + j) % 4 == 3 else "click",
                    "object_id": hits[position],
                    "position": position + 1,
                    "id": f"{tag}-{k}-{j}",
                }
            )
        bodies.append((token, orjson.dumps({"decision_id": decision_id, "events": items})))
        sent += size
    return bodies


def _one_click(decision_id: str, object_id: str, event_id: str) -> bytes:
    event = {"type": "click", "object_id": object_id, "id": event_id}
    return orjson.dumps({"decision_id": decision_id, "events": [event]})


def _ms(value: float) -> str:
    return "-" if math.isnan(value) else f"{value:.1f}"


def format_report(report: Mapping[str, Any]) -> str:
    """The command's output: one table row per measurement, then what bounds the numbers."""
    rows: list[tuple[str, str, str, Mapping[str, float]]] = []
    for run in report["intake"]:
        rows.append(
            (
                f"intake, batch {run['batch']} (202 after fsync)",
                f"{run['events']} ev / {run['requests']} req",
                f"{run['events_per_s']:.0f} ev/s, {run['requests_per_s']:.0f} req/s",
                run["ack_ms"],
            )
        )
    local = report["local_update"]
    rows.append(
        ("local update: A's policy has it", str(local["visible_ms"]["n"]), "-", local["visible_ms"])
    )
    rows.append(("local update: 202 received", str(local["ack_ms"]["n"]), "-", local["ack_ms"]))
    cross = report["cross_replica_update"]
    rows.append(("cross-replica: B's policy has it", str(cross["ms"]["n"]), "-", cross["ms"]))
    ship = report["shipping"]
    rows.append(
        (
            f"shipped to {EVENTS_INDEX}",
            f"{ship['events']} ev",
            f"{ship['events_per_s']:.0f} ev/s",
            {"p50": math.nan, "p99": math.nan, "max": math.nan},
        )
    )
    header = ("measure", "n", "throughput", "p50 ms", "p99 ms", "max ms")
    table = [header] + [
        (name, n, through, _ms(q["p50"]), _ms(q["p99"]), _ms(q["max"]))
        for name, n, through, q in rows
    ]
    widths = [max(len(r[i]) for r in table) for i in range(len(header))]
    lines = [
        f"ltrr bench feedback: {report['index']} ({report['docs']} docs, "
        f"{report['searches']} searches), replicas A and B merging every "
        f"{report['merge_seconds']:g} s, concurrency {report['concurrency']}"
    ]
    for row in table:
        lines.append(
            "  ".join(
                cell.ljust(w) if i < 3 else cell.rjust(w)
                for i, (cell, w) in enumerate(zip(row, widths, strict=True))
            ).rstrip()
        )
    bound = 2 * report["merge_seconds"] * 1000
    notes = [
        f"cross-replica is bounded by about two merge intervals (~{bound:.0f} ms plus the merge "
        f"rounds' own time): A's merge writes ltrr-state, B's next merge reads it"
        + (f"; {cross['missed']} probes never seen by B" if cross["missed"] else ""),
        "local update is applied before the 202, so it is about the request latency"
        + (f"; {local['missed']} probes never seen" if local["missed"] else ""),
        f"shipping: all searchable {ship['seconds_from_first_send']:.2f} s after the first "
        f"intake event was sent, {ship['seconds_after_last_ack']:.2f} s after the last 202 "
        "(it runs during intake, so its rate is at most the intake rate)",
        "client and proxies share one process and event loop: a lower bound for a lone proxy",
        f"wall time {report['wall_seconds']:.1f} s",
    ]
    return "\n".join(lines + [f"- {note}" for note in notes])


# -- the run ----------------------------------------------------------------------------------


def _arm_counts(policy: Policy) -> tuple[int, ...]:
    """Updates learned per arm (monotonic), so a replica's progress is compared arm by arm."""
    summary = policy.summary()
    if summary:
        return tuple(int(arm["n"]) for arm in summary.values())
    return (policy.version(),)


def _reached(counts: Sequence[int], target: Sequence[int]) -> bool:
    return all(c >= t for c, t in zip(counts, target, strict=True))


@dataclass(slots=True)
class _Replica:
    proxy: Proxy
    runner: web.AppRunner
    url: str

    @property
    def runtime(self) -> CatalogRuntime:
        (runtime,) = self.proxy.registry.runtimes()
        return runtime

    def counts(self) -> tuple[int, ...]:
        return _arm_counts(self.runtime.agent.policy)


async def _start_replica(
    catalog: Path, opensearch: str, data_dir: Path, merge_seconds: float, seed: int
) -> _Replica:
    registry = CatalogRegistry([catalog], seed=seed)
    registry.load_all()
    proxy = Proxy(registry, opensearch, data_dir=data_dir, state_interval=merge_seconds)
    runner = web.AppRunner(proxy.app(), access_log=None, handle_signals=False)
    await runner.setup()
    port = free_port()
    try:
        await web.TCPSite(runner, "127.0.0.1", port).start()
    except BaseException:
        await runner.cleanup()  # stops the learner that setup started
        raise
    return _Replica(proxy, runner, f"http://127.0.0.1:{port}")


async def _call(
    session: aiohttp.ClientSession, method: str, url: str, body: Any = None
) -> tuple[int, Any]:
    data = None if body is None else orjson.dumps(body)
    async with session.request(method, url, data=data, headers=JSON) as reply:
        raw = await reply.read()
        return reply.status, orjson.loads(raw) if raw else None


async def create_index(session: aiohttp.ClientSession, url: str, index: str, seed: int) -> None:
    body = {
        "settings": {"index": {"number_of_shards": 1, "number_of_replicas": 0}},
        "mappings": {
            "properties": {
                "name": {"type": "text", "fields": {"keyword": {"type": "keyword"}}},
                "tags": {"type": "text"},
            }
        },
    }
    status, answer = await _call(session, "PUT", f"{url}/{index}", body)
    if status != 200:
        raise LtrrError(f"creating {index}: {status} {answer}")
    lines = bytearray()
    for i, doc in enumerate(synthetic_docs(DOCS, seed)):
        lines += orjson.dumps({"index": {"_id": f"doc-{i}"}}) + b"\n" + orjson.dumps(doc) + b"\n"
    async with session.post(
        f"{url}/{index}/_bulk?refresh=true",
        data=bytes(lines),
        headers={"Content-Type": "application/x-ndjson"},
    ) as reply:
        answer = await reply.json()
    if reply.status != 200 or answer.get("errors"):
        raise LtrrError(f"indexing {index}: {reply.status} {str(answer)[:300]}")


async def _search_all(
    session: aiohttp.ClientSession, proxy_url: str, index: str, queries: Sequence[str]
) -> list[Searched]:
    """One intercepted search per query: (decision_id, feedback token, returned hit ids) for
    those with hits."""
    limit = asyncio.Semaphore(8)

    async def one(query: str) -> Searched:
        async with limit:
            status, answer = await _call(
                session,
                "POST",
                f"{proxy_url}/{index}/_search",
                {"size": 10, "ext": {"ltrr": {"query": query}}},
            )
        if status != 200 or "ltrr" not in answer.get("ext", {}):
            raise LtrrError(f"search {query!r} through the proxy: {status} {str(answer)[:300]}")
        ltrr = answer["ext"]["ltrr"]
        if ltrr.get("fallback"):
            raise LtrrError(f"search {query!r} fell back to the static plan: {ltrr['fallback']}")
        hits = [str(h["_id"]) for h in answer["hits"]["hits"]]
        return str(ltrr["decision_id"]), str(ltrr["feedback_token"]), hits

    found = await asyncio.gather(*(one(q) for q in queries))
    return [searched for searched in found if searched[2]]


async def _post_feedback(
    session: aiohttp.ClientSession, url: str, token: str, body: bytes
) -> tuple[float, int]:
    """(ms until the 202, events accepted); anything but a full 202 is a broken benchmark."""
    t0 = time.perf_counter()
    headers = {**JSON, TOKEN_HEADER: token}
    async with session.post(f"{url}/_ltrr/feedback", data=body, headers=headers) as reply:
        raw = await reply.read()
    elapsed = (time.perf_counter() - t0) * 1000
    if reply.status != 202:
        raise LtrrError(f"feedback answered {reply.status}: {raw[:300]!r}")
    answer = orjson.loads(raw)
    if answer.get("duplicates"):
        raise LtrrError(f"feedback counted duplicates where none were sent: {answer}")
    return elapsed, int(answer["accepted"])


async def _intake(
    session: aiohttp.ClientSession, url: str, bodies: Sequence[tuple[str, bytes]], concurrency: int
) -> dict[str, Any]:
    """``concurrency`` clients, each posting the next body as soon as its last one is acked."""
    pending = iter(bodies)
    latencies: list[float] = []
    accepted = 0

    async def client() -> None:
        nonlocal accepted
        for token, body in pending:  # one shared iterator: each body goes to one client
            elapsed, n = await _post_feedback(session, url, token, body)
            latencies.append(elapsed)
            accepted += n

    t0 = time.perf_counter()
    async with asyncio.TaskGroup() as group:
        for _ in range(concurrency):
            group.create_task(client())
    seconds = time.perf_counter() - t0
    return {
        "events": accepted,
        "requests": len(bodies),
        "seconds": round(seconds, 3),
        "events_per_s": rate(accepted, seconds),
        "requests_per_s": rate(len(bodies), seconds),
        "ack_ms": summarize(latencies),
    }


async def _first_change(
    read: Callable[[], tuple[int, ...]], before: tuple[int, ...], timeout: float
) -> float | None:
    """When ``read()`` first differs from ``before``, checked on every loop iteration."""
    deadline = time.perf_counter() + timeout
    while read() == before:
        if time.perf_counter() > deadline:
            return None
        await asyncio.sleep(0)
    return time.perf_counter()


async def _local_update(
    session: aiohttp.ClientSession, a: _Replica, decisions: Sequence[Searched]
) -> dict[str, Any]:
    """One event at a time on a fresh decision, so A's update counts must move."""
    visible: list[float] = []
    acked: list[float] = []
    missed = 0
    for i, (decision_id, token, hits) in enumerate(decisions):
        body = _one_click(decision_id, hits[0], f"local-{i}")
        before = a.counts()
        t0 = time.perf_counter()
        post = asyncio.ensure_future(_post_feedback(session, a.url, token, body))
        seen = await _first_change(a.counts, before, timeout=10.0)
        elapsed, _ = await post
        acked.append(elapsed)
        if seen is None:
            missed += 1
        else:
            visible.append((seen - t0) * 1000)
    return {"visible_ms": summarize(visible), "ack_ms": summarize(acked), "missed": missed}


async def _wait(
    condition: Callable[[], bool], timeout: float, what: str, interval: float = 0.005
) -> None:
    deadline = time.perf_counter() + timeout
    while not condition():
        if time.perf_counter() > deadline:
            raise LtrrError(f"gave up after {timeout:.0f} s waiting for {what}")
        await asyncio.sleep(interval)


async def _cross_replica(
    session: aiohttp.ClientSession,
    a: _Replica,
    b: _Replica,
    decisions: Sequence[Searched],
    merge_seconds: float,
    seed: int,
) -> dict[str, Any]:
    """Events posted to A one at a time, ~1/8 merge interval apart (jittered, so they land at
    every phase of the merge cycle); each is timed until B's counts cover A's after its 202.
    B is polled every 5 ms; not waiting for B between probes keeps a run short.

    An event waits for A's next merge (up to one interval), then for B's next merge after it:
    the second wait is the fixed offset between the two replicas' merge cycles, so p50 moves
    from run to run while the maximum stays about two intervals."""
    timeout = 10 * merge_seconds + 10
    await _wait(lambda: b.counts() == a.counts(), timeout, "replica B to catch up with A")
    rng = np.random.default_rng(seed + 2)
    probes: list[tuple[float, tuple[int, ...]]] = []  # (sent at, A's counts after its 202)
    seen: dict[int, float] = {}
    done = asyncio.Event()
    sending = True

    async def watch_b() -> None:
        while sending or len(seen) < len(probes):
            counts = b.counts()
            now = time.perf_counter()
            for i, (_, target) in enumerate(probes):
                if i not in seen and _reached(counts, target):
                    seen[i] = now
            await asyncio.sleep(0.005)
        done.set()

    watcher = asyncio.create_task(watch_b())
    try:
        for i, (decision_id, token, hits) in enumerate(decisions):
            body = _one_click(decision_id, hits[0], f"cross-{i}")
            t0 = time.perf_counter()
            await _post_feedback(session, a.url, token, body)
            probes.append((t0, a.counts()))
            await asyncio.sleep(float(rng.uniform(0.5, 1.5)) * merge_seconds / 8)
        sending = False
        with contextlib.suppress(TimeoutError):  # the misses are reported, not raised
            await asyncio.wait_for(done.wait(), timeout)
    finally:
        sending = False
        watcher.cancel()
    latencies = [(seen[i] - t0) * 1000 for i, (t0, _) in enumerate(probes) if i in seen]
    return {"ms": summarize(latencies), "missed": len(probes) - len(seen)}


async def _shipping(
    session: aiohttp.ClientSession,
    opensearch: str,
    decision_ids: Sequence[str],
    expected: int,
    first_send: float,
    last_ack: float,
    timeout: float = 60.0,
) -> dict[str, Any]:
    """Poll ``ltrr-events`` (refreshed) until it holds every acknowledged intake event."""
    query = {"query": {"terms": {"decision_id": list(decision_ids)}}}
    deadline = time.perf_counter() + timeout
    count = 0
    while True:
        await _call(session, "POST", f"{opensearch}/{EVENTS_INDEX}/_refresh")
        status, answer = await _call(session, "POST", f"{opensearch}/{EVENTS_INDEX}/_count", query)
        count = int(answer.get("count", 0)) if status == 200 else 0
        now = time.perf_counter()
        if count >= expected:
            break
        if now > deadline:
            raise LtrrError(f"{EVENTS_INDEX} holds {count} of {expected} events after {timeout} s")
        await asyncio.sleep(0.05)
    seconds = now - first_send
    return {
        "events": count,
        "seconds_from_first_send": round(seconds, 3),
        "seconds_after_last_ack": round(now - last_ack, 3),
        "events_per_s": rate(count, seconds),
    }


async def _run(config: FeedbackBenchConfig) -> dict[str, Any]:
    started = time.perf_counter()
    url = config.opensearch.rstrip("/")
    index = f"{INDEX_PREFIX}{uuid.uuid4().hex[:8]}"
    work = Path(tempfile.mkdtemp(prefix="ltrr-bench-feedback-"))
    catalog = work / "catalog.yml"
    catalog.write_text(catalog_yaml(index))
    load_catalog(catalog)  # a bad catalog fails here, naming the line, before anything starts
    replicas: list[_Replica] = []
    timeout = aiohttp.ClientTimeout(total=60)
    connector = aiohttp.TCPConnector(limit=config.concurrency + 8)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        try:
            try:
                await _call(session, "GET", f"{url}/")
            except aiohttp.ClientError as exc:
                raise LtrrError(f"OpenSearch at {url} did not answer: {exc}") from None
            await create_index(session, url, index, config.seed)
            for name in ("a", "b"):
                replicas.append(
                    await _start_replica(
                        catalog, url, work / f"data-{name}", config.merge_seconds, config.seed
                    )
                )
            a, b = replicas

            queries = search_queries(config.searches + 2 * config.probes, config.seed)
            decisions = await _search_all(session, a.url, index, queries)
            if len(decisions) < config.probes * 2 + 1:
                raise LtrrError(f"only {len(decisions)} searches returned hits; need more")
            local_probes = decisions[: config.probes]
            cross_probes = decisions[config.probes : 2 * config.probes]
            intake_decisions = decisions[2 * config.probes :]

            local = await _local_update(session, a, local_probes)
            cross = await _cross_replica(
                session, a, b, cross_probes, config.merge_seconds, config.seed
            )

            runs = []
            first_send = time.perf_counter()
            for batch in config.batches:
                bodies = feedback_bodies(
                    intake_decisions, config.events, batch, f"intake-b{batch}-{uuid.uuid4().hex}"
                )
                runs.append(
                    {"batch": batch, **await _intake(session, a.url, bodies, config.concurrency)}
                )
            last_ack = time.perf_counter()
            shipping = await _shipping(
                session,
                url,
                [d for d, _, _ in intake_decisions],
                sum(r["events"] for r in runs),
                first_send,
                last_ack,
            )
        finally:
            for replica in replicas:
                await replica.runner.cleanup()
            with contextlib.suppress(aiohttp.ClientError):  # keep the error that got us here
                await _call(session, "DELETE", f"{url}/{index}")
            shutil.rmtree(work, ignore_errors=True)
    return {
        "opensearch": url,
        "index": index,
        "docs": DOCS,
        "searches": len(queries),
        "intake_decisions": len(intake_decisions),
        "concurrency": config.concurrency,
        "merge_seconds": config.merge_seconds,
        "intake": runs,
        "local_update": local,
        "cross_replica_update": {**cross, "bound_ms": round(2 * config.merge_seconds * 1000)},
        "shipping": shipping,
        "wall_seconds": round(time.perf_counter() - started, 1),
    }


def feedback(config: FeedbackBenchConfig) -> dict[str, Any]:
    """Run the benchmark; the caller prints ``format_report`` of what this returns."""
    config.check()
    try:
        import uvloop  # the loop ``ltrr serve`` uses where it exists, so the numbers match
    except ImportError:
        return asyncio.run(_run(config))
    return uvloop.run(_run(config))
