"""``ltrr bench soak``: a bounded mix of intercepted searches, passthrough and feedback against
a real ``ltrr serve`` process, for as long as asked.

It prints throughput, errors by status, p50/p99 per path, and the proxy's resident memory at
the start and the end with its growth per 1,000 open decisions (the decisions' windows outlast
the run, so every search adds one). A benchmark that prints numbers, not a timed test: any
status is reported, none fails the run. Memory is read from ``/proc`` (Linux).
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import numpy as np
import orjson

from ltrr.plugin.errors import LtrrError
from ltrr.plugin.learn.tokens import TOKEN_HEADER
from ltrr.plugin.ops.bench_feedback import (
    DOCS,
    JSON,
    catalog_yaml,
    create_index,
    rate,
    search_queries,
    summarize,
)
from ltrr.plugin.ops.client import free_port
from ltrr.plugin.ops.simulate.proxy import ProxyProcess

# The mix: what share of requests each path gets.
MIX = (("intercepted", 0.6), ("passthrough", 0.25), ("feedback", 0.15))
RECENT = 256  # feedback goes to one of the last decisions made


@dataclass(frozen=True, slots=True)
class SoakConfig:
    opensearch: str = "http://127.0.0.1:9200"
    seconds: float = 60.0
    clients: int = 16
    seed: int = 7

    def check(self) -> None:
        if not 1 <= self.seconds <= 24 * 3600:
            raise ValueError(f"--seconds must be in [1, 86400], got {self.seconds}")
        if not 1 <= self.clients <= 1024:
            raise ValueError(f"--clients must be in [1, 1024], got {self.clients}")


@dataclass(slots=True)
class _Tally:
    latencies: dict[str, list[float]] = field(default_factory=dict)
    statuses: dict[str, Counter[int]] = field(default_factory=dict)
    recent: list[tuple[str, str, list[str]]] = field(default_factory=list)

    def add(self, path: str, status: int, ms: float) -> None:
        self.latencies.setdefault(path, []).append(ms)
        self.statuses.setdefault(path, Counter())[status] += 1


def rss_mb(pid: int) -> float:
    """Resident memory of ``pid`` in MB, from /proc/PID/status."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise LtrrError(f"no VmRSS for process {pid}")


def pick(draw: float) -> str:
    """The path a uniform draw in [0, 1) falls on, by ``MIX``."""
    edge = 0.0
    for path, share in MIX:
        edge += share
        if draw < edge:
            return path
    return MIX[-1][0]


async def _one(
    session: aiohttp.ClientSession,
    url: str,
    index: str,
    path: str,
    n: int,
    query: str,
    tally: _Tally,
) -> None:
    t0 = time.perf_counter()
    if path == "intercepted":
        body = {"size": 10, "ext": {"ltrr": {"query": query}}}
        async with session.post(
            f"{url}/{index}/_search", data=orjson.dumps(body), headers=JSON
        ) as r:
            raw = await r.read()
            status = r.status
        if status == 200:
            ltrr = orjson.loads(raw).get("ext", {}).get("ltrr", {})
            hits = [h["_id"] for h in orjson.loads(raw)["hits"]["hits"]]
            if hits and "feedback_token" in ltrr:
                tally.recent.append((ltrr["decision_id"], ltrr["feedback_token"], hits))
                del tally.recent[:-RECENT]
    elif path == "passthrough":
        async with session.get(f"{url}/{index}/_doc/doc-{n % DOCS}") as r:
            await r.read()
            status = r.status
    else:
        if not tally.recent:
            return
        decision_id, token, hits = tally.recent[n % len(tally.recent)]
        event = {"type": "click", "object_id": hits[n % len(hits)], "id": f"soak-{n}"}
        body = {"decision_id": decision_id, "events": [event]}
        headers = {**JSON, TOKEN_HEADER: token}
        async with session.post(
            f"{url}/_ltrr/feedback", data=orjson.dumps(body), headers=headers
        ) as r:
            await r.read()
            status = r.status
    tally.add(path, status, (time.perf_counter() - t0) * 1000)


async def _run(config: SoakConfig, proxy: ProxyProcess, index: str) -> dict[str, Any]:
    url = proxy.url
    queries = search_queries(20_000, config.seed)
    rng = np.random.default_rng(config.seed)
    tally = _Tally()
    timeout = aiohttp.ClientTimeout(total=60)
    connector = aiohttp.TCPConnector(limit=config.clients)
    async with aiohttp.ClientSession(timeout=timeout, connector=connector) as session:
        for i in range(50):  # warm-up: the model, the pools, the first decisions
            await _one(session, url, index, "intercepted", i, queries[i], tally)
        assert proxy.pid is not None
        rss_start = rss_mb(proxy.pid)
        open_start = int(_learning(proxy)["decisions_pending"])
        tally = _Tally(recent=tally.recent)
        counter = iter(range(50, 10**9))
        stop = time.perf_counter() + config.seconds

        async def client(seed: int) -> None:
            draws = np.random.default_rng(seed)
            while time.perf_counter() < stop:
                n = next(counter)
                path = pick(float(draws.random()))
                try:
                    await _one(session, url, index, path, n, queries[n % len(queries)], tally)
                except (aiohttp.ClientError, TimeoutError):
                    tally.add(path, 0, 0.0)  # no answer at all: status 0

        started = time.perf_counter()
        seeds = rng.integers(0, 2**31, size=config.clients)
        await asyncio.gather(*(client(int(s)) for s in seeds))
        seconds = time.perf_counter() - started
    rss_end = rss_mb(proxy.pid)
    learning = _learning(proxy)
    open_end = int(learning["decisions_pending"])
    opened = open_end - open_start
    requests = sum(len(v) for v in tally.latencies.values())
    return {
        "seconds": round(seconds, 1),
        "clients": config.clients,
        "requests": requests,
        "requests_per_s": rate(requests, seconds),
        "paths": {
            path: {
                "latency_ms": summarize([ms for ms in tally.latencies[path] if ms > 0]),
                "statuses": dict(sorted(tally.statuses[path].items())),
            }
            for path in sorted(tally.latencies)
        },
        "rss_mb": {"start": round(rss_start, 1), "end": round(rss_end, 1)},
        "open_decisions": {"start": open_start, "end": open_end},
        "open_decisions_mb": round(int(learning["decisions_pending_bytes"]) / 2**20, 1),
        "rss_mb_per_1000_open": round((rss_end - rss_start) / opened * 1000, 2) if opened else None,
    }


def _learning(proxy: ProxyProcess) -> Mapping[str, Any]:
    stats = proxy.stats()
    learning = stats.get("learning")
    if not isinstance(learning, dict):
        raise LtrrError("the proxy reports no learning loop: it needs a data directory")
    return learning


def soak(config: SoakConfig) -> dict[str, Any]:
    """Create a throwaway index, serve it, run the mix, clean up; returns the numbers."""
    config.check()
    index = f"ltrr-bench-soak-{uuid.uuid4().hex[:8]}"
    work = Path(tempfile.mkdtemp(prefix="ltrr-soak-"))
    catalog = work / "soak.yml"
    catalog.write_text(catalog_yaml(index))

    async def go() -> dict[str, Any]:
        async with aiohttp.ClientSession() as session:
            await create_index(session, config.opensearch, index, config.seed)
        proxy = ProxyProcess(
            [catalog],
            config.opensearch,
            f"127.0.0.1:{free_port()}",
            work / "data",
            seed=config.seed,
            log=work / "proxy.log",
        )
        await asyncio.to_thread(proxy.start)
        try:
            return await _run(config, proxy, index)
        finally:
            await asyncio.to_thread(proxy.stop)
            async with (
                aiohttp.ClientSession() as session,
                session.delete(f"{config.opensearch}/{index}") as reply,
            ):
                await reply.read()

    try:
        return asyncio.run(go())
    finally:
        shutil.rmtree(work, ignore_errors=True)


def format_report(report: Mapping[str, Any]) -> str:
    lines = [
        f"{report['requests']:,} requests in {report['seconds']} s from {report['clients']} "
        f"clients: {report['requests_per_s']} req/s",
        f"{'path':<13}{'n':>8}{'p50 ms':>10}{'p99 ms':>10}  statuses",
    ]
    for path, info in report["paths"].items():
        lat = info["latency_ms"]
        statuses = ", ".join(f"{s}: {n:,}" for s, n in info["statuses"].items())
        lines.append(f"{path:<13}{lat['n']:>8,}{lat['p50']:>10.1f}{lat['p99']:>10.1f}  {statuses}")
    rss, opened = report["rss_mb"], report["open_decisions"]
    growth = report["rss_mb_per_1000_open"]
    lines += [
        f"RSS {rss['start']} MB -> {rss['end']} MB; open decisions {opened['start']:,} -> "
        f"{opened['end']:,} (holding {report['open_decisions_mb']} MB by their footprint)",
        "growth per 1,000 open decisions: "
        + (f"{growth} MB" if growth is not None else "n/a (no decision opened)"),
    ]
    return "\n".join(lines)
