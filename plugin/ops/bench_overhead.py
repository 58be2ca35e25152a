"""``ltrr bench overhead``: what the proxy costs, measured against OpenSearch in the same run.

The paths run the same queries, each beside its direct baseline, interleaved so that machine
noise hits both alike:
- direct: the very ``_msearch`` the proxy would send, straight to OpenSearch;
- intercepted: the proxy's LTR&R path (a fresh decision every time);
- native hybrid: OpenSearch's own ``hybrid`` query of all the arms at the same candidate budget,
  fused by a search pipeline (RRF, and min-max), straight to OpenSearch: what a search engineer
  runs instead of the proxy (``ltrr.query_plans.hybrid``);
- passthrough: a plain ``_search`` through the proxy, beside the same search sent direct.
The in-process decision time (features, policy, plan, fusion; no OpenSearch, no embedding) is
timed separately. Throughput is sequential: one client, one request at a time. Everything is
printed as JSON; nothing here asserts a target.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import aiohttp
import numpy as np
import orjson

from ltrr.plugin.errors import LtrrError, PluginNotInstalled
from ltrr.plugin.ops.client import free_port
from ltrr.plugin.ops.cluster import NEURAL_PLUGIN, ClusterInfo
from ltrr.plugin.runtime.registry import CatalogRegistry, CatalogRuntime
from ltrr.plugin.serve.retrieve import read_responses
from ltrr.query_plans.fusion import get_fusion
from ltrr.query_plans.hybrid import (
    METHODS,
    HybridError,
    HybridQuery,
    build_hybrid,
    even_depth,
    pipeline_for,
    sub_query_arms,
)
from ltrr.query_plans.plan import Plan, SearchInput, build_plan
from ltrr.query_plans.templates import TemplateRenderer

PAGE = 10  # what every timed search asks for
SEQUENTIAL = (
    "sequential: one client sends one request at a time; throughput_rps is the number of "
    "requests over the sum of their latencies, not what concurrent clients would get"
)


def _quantiles(values: Sequence[float]) -> dict[str, float]:
    ordered = np.sort(np.asarray(values, dtype=float))
    return {
        "p50": round(float(np.percentile(ordered, 50)), 3),
        "p99": round(float(np.percentile(ordered, 99)), 3),
        "mean": round(float(ordered.mean()), 3),
        "n": len(ordered),
    }


async def _sample_queries(
    session: aiohttp.ClientSession, url: str, runtime: CatalogRuntime, n: int
) -> list[str]:
    field = runtime.catalog.features.entity_field
    if field is None:
        raise LtrrError("the benchmark draws its queries from the catalog's features.entity_field")
    body = {
        "size": n,
        "_source": False,
        "query": {"function_score": {"random_score": {"seed": 7, "field": "_seq_no"}}},
        "docvalue_fields": [field],
    }
    target = runtime.catalog.targets[0]
    async with session.post(f"{url}/{target}/_search", json=body) as reply:
        payload = await reply.json()
    if reply.status != 200:
        raise LtrrError(f"could not sample queries from {target}: {payload}")
    queries = [str(hit["fields"][field][0]) for hit in payload["hits"]["hits"] if hit.get("fields")]
    if not queries:
        raise LtrrError(f"{target} has no values in {field} to use as queries")
    return [queries[i % len(queries)] for i in range(n)]


def _plan(
    runtime: CatalogRuntime,
    renderer: TemplateRenderer,
    query: str,
    vector: Sequence[float] | None,
    sizes: dict[str, int] | None = None,
) -> Plan:
    """The plan the proxy builds: decided here, or with the sizes the proxy reported."""
    if sizes is None:
        decision = runtime.agent.decide(
            query, {}, datetime.now(), None, budget=runtime.catalog.budget, depth=10
        )
        sizes = {c.arm: c.size for c in decision.choices if c.included}
    return build_plan(
        runtime.catalog,
        sizes,
        SearchInput.of(runtime.catalog.targets[0], query, vector=vector),
        renderer,
        timeout_ms=1000,
    )


def _hybrid(
    runtime: CatalogRuntime,
    renderer: TemplateRenderer,
    query: str,
    vector: Sequence[float] | None,
    depth: int,
) -> HybridQuery:
    """The native hybrid query of every arm, each sub-query ``depth`` deep, one page."""
    target = runtime.catalog.targets[0]
    request = SearchInput.of(target, query, vector=vector)
    return build_hybrid(runtime.catalog, request, renderer, depth=depth, size=PAGE)


def _timed(values: Sequence[float]) -> dict[str, float]:
    """Quantiles, and the sequential throughput those latencies would give."""
    total = sum(values)
    throughput = round(len(values) / (total / 1000), 1) if total > 0 else 0.0
    return {**_quantiles(values), "throughput_rps": throughput}


def _ratio(numerator: float, denominator: float) -> float | None:
    return round(numerator / denominator, 3) if denominator > 0 else None


def _versus(mine: dict[str, float], theirs: dict[str, float]) -> dict[str, float | None]:
    """Ours over theirs for each latency statistic (above 1: we are slower), and throughput."""
    out = {key: _ratio(mine[key], theirs[key]) for key in ("p50", "p99", "mean")}
    out["throughput"] = _ratio(mine["throughput_rps"], theirs["throughput_rps"])
    return out


async def _pipelines(
    session: aiohttp.ClientSession,
    url: str,
    runtime: CatalogRuntime,
    arms: Sequence[str],
    methods: Sequence[str],
    made: dict[str, tuple[str, dict[str, Any]]],
) -> None:
    """One throwaway search pipeline per method (name and body) into ``made``, as each is
    created, so that the caller removes exactly those that exist whatever fails."""
    for method in methods:
        name = f"ltrr-bench-hybrid-{method}-{uuid.uuid4().hex[:8]}"
        body = pipeline_for(method, runtime.catalog, arms)
        async with session.put(f"{url}/_search/pipeline/{name}", json=body) as reply:
            text = await reply.text()
        if reply.status != 200:
            raise LtrrError(f"could not create the search pipeline {name}: {text[:300]}")
        made[method] = (name, body)


async def _timed_post(
    session: aiohttp.ClientSession, url: str, body: bytes, content_type: str
) -> tuple[float, Any]:
    t0 = time.perf_counter()
    async with session.post(url, data=body, headers={"Content-Type": content_type}) as reply:
        raw = await reply.read()
        status = reply.status
    elapsed = (time.perf_counter() - t0) * 1000
    if status != 200:
        raise LtrrError(f"POST {url} answered {status}: {raw[:300]!r}")
    return elapsed, orjson.loads(raw)


async def _run(
    catalog: Path,
    opensearch_url: str,
    n: int,
    warmup: int,
    seed: int,
    hybrid_methods: Sequence[str] = METHODS,
) -> dict[str, Any]:
    registry = CatalogRegistry([catalog], seed=seed)
    registry.load_all()
    (runtime,) = registry.runtimes()
    renderer = TemplateRenderer()
    target = runtime.catalog.targets[0]
    fusion = get_fusion(runtime.catalog.fusion)
    hybrid_note = "not asked for (--hybrid with no method)"
    arms: tuple[str, ...] = ()
    depth = 0
    if hybrid_methods:
        info = await asyncio.to_thread(ClusterInfo.fetch, opensearch_url)
        try:
            info.require(NEURAL_PLUGIN)
            arms = sub_query_arms(runtime.catalog, target)
            depth = even_depth(runtime.catalog.budget, len(arms))
        except (PluginNotInstalled, HybridError) as exc:
            hybrid_note = f"not timed: {exc}"
            hybrid_methods = ()
    connector = aiohttp.TCPConnector(limit=4)
    async with aiohttp.ClientSession(connector=connector) as session:
        queries = await _sample_queries(session, opensearch_url, runtime, n)
        vectors: dict[str, tuple[float, ...] | None] = {}
        for q in set(queries):
            vectors[q] = runtime.embedder.embed(q) if runtime.embedder is not None else None
        pipelines: dict[str, tuple[str, dict[str, Any]]] = {}

        # In-process decision time, over arm results fetched once from the real node.
        arm_results = []
        for q in queries:
            plan = _plan(runtime, renderer, q, vectors[q])
            _, payload = await _timed_post(
                session, f"{opensearch_url}/_msearch", plan.ndjson(), "application/x-ndjson"
            )
            arm_results.append(
                {
                    a: r.hits
                    for a, r in read_responses(plan, payload["responses"], strict=True).items()
                }
            )
        decision_us: list[float] = []
        for _ in range(3):
            for i, q in enumerate(queries):
                t0 = time.perf_counter_ns()
                plan = _plan(runtime, renderer, q, vectors[q])
                plan.ndjson()
                fusion(arm_results[i], runtime.catalog.fusion.weights)
                decision_us.append((time.perf_counter_ns() - t0) / 1000)

        # End to end, against a proxy process of its own.
        port = free_port()
        proxy_url = f"http://127.0.0.1:{port}"
        log = Path(tempfile.mkstemp(prefix="ltrr-bench-", suffix=".log")[1])
        log_file = log.open("wb")
        data_dir = tempfile.mkdtemp(prefix="ltrr-bench-data-")
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "ltrr.plugin.ops.cli",
                "serve",
                "--catalog",
                str(catalog),
                "--opensearch",
                opensearch_url,
                "--listen",
                f"127.0.0.1:{port}",
                "--log-level",
                "warning",
                "--data-dir",  # learning is on, as in production; its files are thrown away
                data_dir,
            ],
            stdout=log_file,
            stderr=subprocess.STDOUT,
            env=os.environ.copy(),
        )
        try:
            await _pipelines(session, opensearch_url, runtime, arms, hybrid_methods, pipelines)
            deadline = time.monotonic() + 60
            while True:
                try:
                    async with session.get(f"{proxy_url}/_ltrr/stats") as reply:
                        if reply.status == 200:
                            break
                except aiohttp.ClientError:
                    pass
                if process.poll() is not None or time.monotonic() > deadline:
                    raise LtrrError(f"the proxy did not start; see {log}")
                await asyncio.sleep(0.2)

            field = runtime.catalog.features.entity_field
            series: dict[str, list[float]] = {
                "direct_msearch": [],
                "proxy_intercepted": [],
                **{f"hybrid_{method}_direct": [] for method in pipelines},
                "direct_search": [],
                "proxy_passthrough": [],
            }
            proxy_own: list[float] = []
            client_view: list[float] = []
            embed_ms: list[float] = []
            rerank_ms: list[float] = []
            rerank_status: dict[str, int] = {}
            total_time = dict.fromkeys(series, 0.0)
            rounds = [(True, q) for q in queries[:warmup]] + [(False, q) for q in queries]

            def record(name: str, took: float) -> None:
                series[name].append(took)
                total_time[name] += took

            async def native(is_warmup: bool, q: str) -> None:
                """The hybrid query of every arm, once per pipeline, straight to OpenSearch."""
                if not pipelines:
                    return
                body = _hybrid(runtime, renderer, q, vectors[q], depth).json()
                for method, (name, _) in pipelines.items():
                    url = f"{opensearch_url}/{target}/_search?search_pipeline={name}"
                    took, _ = await _timed_post(session, url, body, "application/json")
                    if not is_warmup:
                        record(f"hybrid_{method}_direct", took)

            # Phase 1: the intercepted path beside the very _msearch it sent, sent direct, and
            # beside the native hybrid query (before the pair on odd rounds, after on even).
            for i, (is_warmup, q) in enumerate(rounds):
                if i % 2:
                    await native(is_warmup, q)
                intercepted = orjson.dumps(
                    {"size": PAGE, "ext": {"ltrr": {"query": q, "decision_id": uuid.uuid4().hex}}}
                )
                elapsed, payload = await _timed_post(
                    session, f"{proxy_url}/{target}/_search", intercepted, "application/json"
                )
                ltrr = payload["ext"]["ltrr"]
                sizes = {a: info["size"] for a, info in ltrr["arms"].items() if info["included"]}
                plan = _plan(runtime, renderer, q, vectors[q], sizes)
                direct, _ = await _timed_post(
                    session, f"{opensearch_url}/_msearch", plan.ndjson(), "application/x-ndjson"
                )
                if not i % 2:
                    await native(is_warmup, q)
                if is_warmup:
                    continue
                record("proxy_intercepted", elapsed)
                record("direct_msearch", direct)
                timings = ltrr["timings_ms"]
                waited = (
                    timings.get("retrieve", 0.0)
                    + timings.get("rerank", 0.0)
                    + timings.get("embed", 0.0)
                )
                # Inside the proxy: its own ``took`` (from the request's arrival to the answer
                # built) less the waits. Seen by the client: also the socket and HTTP parsing
                # on both sides, which a direct call pays once and the proxy twice.
                proxy_own.append(timings["total"] - waited)
                client_view.append(elapsed - waited)
                embed_ms.append(timings.get("embed", 0.0))
                rerank_ms.append(timings.get("rerank", 0.0))
                status = str(ltrr.get("rerank", {}).get("status", "none"))
                rerank_status[status] = rerank_status.get(status, 0) + 1

            # Phase 2: a plain search direct and through the proxy, alternating who goes first.
            pair = [
                ("direct_search", f"{opensearch_url}/{target}/_search"),
                ("proxy_passthrough", f"{proxy_url}/{target}/_search"),
            ]
            for i, (is_warmup, q) in enumerate(rounds):
                plain = orjson.dumps({"query": {"term": {field: q}}, "size": PAGE})
                for name, url in pair if i % 2 else reversed(pair):
                    took, _ = await _timed_post(session, url, plain, "application/json")
                    if not is_warmup:
                        record(name, took)
        finally:
            process.terminate()
            process.wait(timeout=15)
            log_file.close()
            shutil.rmtree(data_dir, ignore_errors=True)
            for name, _ in pipelines.values():
                async with session.delete(f"{opensearch_url}/_search/pipeline/{name}"):
                    pass
    registry.close()

    paths = {name: _quantiles(values) for name, values in series.items()}
    for name, values in series.items():
        paths[name]["throughput_rps"] = round(len(values) / (total_time[name] / 1000), 1)
    p50 = {name: paths[name]["p50"] for name in paths}
    # The hybrid query carries a vector the client embedded beforehand, as direct_msearch does;
    # the intercepted path embeds inside the proxy (a cached query costs nothing), and reranks
    # when the catalog names a model, which hybrid search never does. Three views, so that the
    # like-for-like one (retrieve and fuse) is there beside the raw one.
    seen = series["proxy_intercepted"]
    without_embed = _timed([t - e for t, e in zip(seen, embed_ms, strict=True)])
    retrieve_and_fuse = _timed(
        [t - e - r for t, e, r in zip(seen, embed_ms, rerank_ms, strict=True)]
    )
    native_hybrid: dict[str, Any] = {"skipped": hybrid_note}
    if pipelines:
        native_hybrid = {
            "methods": list(pipelines),
            "sub_queries": list(arms),
            "pagination_depth": depth,
            "knn_k": depth,
            "candidates": depth * len(arms),
            "budget": runtime.catalog.budget,
            "size": PAGE,
            "query_vector": "embedded by the client beforehand (not in these times)",
            "throughput": SEQUENTIAL,
        }
        for method, (_, body) in pipelines.items():
            hybrid = paths[f"hybrid_{method}_direct"]
            native_hybrid[method] = {
                "pipeline": body["phase_results_processors"][0],
                "hybrid_ms": hybrid,
                "intercepted_over_hybrid": _versus(paths["proxy_intercepted"], hybrid),
                "intercepted_without_embed_over_hybrid": _versus(without_embed, hybrid),
                "intercepted_without_embed_and_rerank_over_hybrid": _versus(
                    retrieve_and_fuse, hybrid
                ),
            }
        native_hybrid["intercepted_ms"] = paths["proxy_intercepted"]
        native_hybrid["intercepted_without_embed_ms"] = without_embed
        native_hybrid["intercepted_without_embed_and_rerank_ms"] = retrieve_and_fuse
        native_hybrid["intercepted_rerank_status"] = rerank_status
    return {
        "catalog": str(catalog),
        "policy": runtime.agent.name,
        "queries": n,
        "warmup": warmup,
        "throughput": SEQUENTIAL,
        "decision_time_us": _quantiles(decision_us),
        "end_to_end_ms": paths,
        "native_hybrid": native_hybrid,
        "overhead_ms": {
            "passthrough_p50": round(p50["proxy_passthrough"] - p50["direct_search"], 3),
            "intercepted_minus_upstream": _quantiles(proxy_own),
            "intercepted_minus_upstream_seen_by_client": _quantiles(client_view),
            "intercepted_embed": _quantiles(embed_ms),
            "intercepted_rerank": _quantiles(rerank_ms),
        },
        "ratios_p50": {
            "intercepted_over_direct_msearch": round(
                p50["proxy_intercepted"] / p50["direct_msearch"], 3
            ),
            "passthrough_over_direct_search": round(
                p50["proxy_passthrough"] / p50["direct_search"], 3
            ),
            "intercepted_over_passthrough": round(
                p50["proxy_intercepted"] / p50["proxy_passthrough"], 3
            ),
        },
    }


def overhead(
    catalog: Path,
    opensearch_url: str,
    n: int,
    warmup: int = 50,
    seed: int = 7,
    hybrid: Sequence[str] = METHODS,
) -> str:
    """The whole measurement as JSON; ``hybrid`` names the native pipelines to time beside."""
    unknown = [method for method in hybrid if method not in METHODS]
    if unknown:
        raise LtrrError(f"hybrid methods {unknown}: one of {', '.join(METHODS)}")
    report = asyncio.run(_run(catalog, opensearch_url.rstrip("/"), n, warmup, seed, hybrid))
    return orjson.dumps(report, option=orjson.OPT_INDENT_2).decode()
