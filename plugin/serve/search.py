"""The LTR&R search path, step by step: decide, plan, retrieve, fuse, rerank, respond.

Each step lives in the module named after it; this one only strings them together, keeps the
deadline, and chooses the fallbacks: a policy or embedder failure uses the catalog's static
plan; if every arm fails, the static plan is tried once; if that fails too, the caller's
request passes through to OpenSearch unchanged.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson

from ltrr.bandit.decide import decide
from ltrr.bandit.decision import ArmChoice, Decision
from ltrr.bandit.features import EntityDictionary
from ltrr.plugin.learn.learner import Learner
from ltrr.plugin.runtime.registry import CatalogRuntime
from ltrr.plugin.runtime.stats import Stats
from ltrr.plugin.runtime.upstream import Transport, UpstreamError
from ltrr.plugin.serve.intercept import SearchRequest
from ltrr.plugin.serve.pages import PageCache, RankedList, fingerprint
from ltrr.plugin.serve.respond import build_response
from ltrr.plugin.serve.retrieve import Retrieval, retrieve
from ltrr.query_plans.catalog import Catalog
from ltrr.query_plans.fusion import get_fusion, policy_weights
from ltrr.query_plans.plan import SearchInput, build_plan
from ltrr.query_plans.rerank import (
    RankedHit,
    RerankError,
    apply_rerank,
    build_rerank_body,
    fused_order,
)
from ltrr.query_plans.templates import TemplateRenderer

log = logging.getLogger("ltrr.search")

# Shares of the catalog's deadline: the embedder may use at most EMBED_SHARE of it, and the
# msearch leaves RERANK_SHARE for the rerank when the catalog has one.
EMBED_SHARE = 0.25
RERANK_SHARE = 0.3


@dataclass(frozen=True, slots=True)
class Executed:
    """One plan run to the end: the decision it used (the embedder may have replaced it)."""

    decision: Decision
    retrieval: Retrieval
    ranked: list[RankedHit]
    rerank: dict[str, Any]
    fallback: str | None


@dataclass(frozen=True, slots=True)
class Answer:
    body: dict[str, Any]
    decision_id: str


def static_decision(catalog: Catalog, depth: int, reason: str) -> Decision:
    """The catalog's fallback plan, as a decision with propensity 1 for its arms."""
    sizes = {f.arm: max(f.size, min(depth, catalog.arm(f.arm).max_size)) for f in catalog.fallback}
    return Decision(
        tuple(
            ArmChoice(
                arm.name, arm.name in sizes, sizes.get(arm.name, 0), float(arm.name in sizes), 0.0
            )
            for arm in catalog.arms
        ),
        policy=f"static_fallback ({reason})",
    )


class SearchPath:
    def __init__(
        self,
        transport: Transport,
        pages: PageCache,
        renderer: TemplateRenderer,
        stats: Stats,
        now: Callable[[], datetime] = datetime.now,
        learner: Learner | None = None,
    ) -> None:
        self.learner = learner
        self.transport = transport
        self.pages = pages
        self.renderer = renderer
        self.stats = stats
        self.now = now

    async def run(
        self,
        runtime: CatalogRuntime,
        request: SearchRequest,
        headers: Mapping[str, str],
        received: float | None = None,
    ) -> Answer | None:
        """Answer ``request``, or None when it must pass through (every plan failed).

        ``received`` is when the request arrived (``time.perf_counter``); ``took`` counts from
        there, so it includes reading and parsing the body.
        """
        started = received if received is not None else time.perf_counter()
        catalog = runtime.catalog
        key = fingerprint(
            catalog.digest,
            request.target,
            request.query,
            request.context,
            request.filters,
            request.post_filter,
            request.source,
        )
        # A later page continues its list; a first page is a new search, and a new decision
        # (else a popular query would replay one draw for the whole TTL and never explore).
        if request.decision_id:
            cached = self.pages.by_id(request.decision_id)
        else:
            cached = self.pages.by_fingerprint(key) if request.from_ > 0 else None
        if cached is not None and cached.fingerprint == key:
            self.stats.count("pages_from_cache")
            body = build_response(
                cached,
                from_=request.from_,
                size=request.size,
                took_ms=(time.perf_counter() - started) * 1000,
                explain=request.explain,
                served_from_cache=True,
            )
            return Answer(body, cached.decision_id)

        deadline = started + catalog.deadline_ms / 1000.0
        timings: dict[str, float] = {}
        if runtime.entities is not None:
            runtime.entities.maybe_refresh(self.transport, request.target, headers)

        # decide
        t0 = time.perf_counter()
        features: dict[str, float] | None = None
        x = None
        try:
            entities = runtime.entities.current if runtime.entities is not None else None
            x = runtime.features.build(request.query, request.context, self.now(), entities)
            features = dict(zip(runtime.features.names, (float(v) for v in x), strict=True))
            decision = decide(runtime.policy, x, catalog.budget, runtime.rng, depth=request.depth)
            fallback: str | None = None
        except Exception as exc:
            log.exception("policy failed; using the static plan")
            self.stats.count("policy_errors")
            decision = static_decision(catalog, request.depth, "policy error")
            fallback = f"policy error: {exc}"
        timings["decide"] = (time.perf_counter() - t0) * 1000

        answer = await self._execute(runtime, request, headers, decision, deadline, timings)
        if answer is None and not decision.policy.startswith("static_fallback"):
            self.stats.count("all_arms_failed")
            fallback = "every arm failed"
            decision = static_decision(catalog, request.depth, "every arm failed")
            answer = await self._execute(runtime, request, headers, decision, deadline, timings)
        if answer is None:
            self.stats.count("fell_through_to_passthrough")
            return None
        decision, retrieval = answer.decision, answer.retrieval
        fallback = answer.fallback or fallback

        arms: dict[str, Any] = {}
        shards = {"total": 0, "successful": 0, "skipped": 0, "failed": 0}
        for choice in decision.choices:
            result = retrieval.results.get(choice.arm)
            info: dict[str, Any] = {
                "included": choice.included,
                "size": choice.size,
                "propensity": choice.propensity,
                "score": choice.score,
            }
            if result is not None:
                info["hits"] = len(result.hits)
                info["took"] = result.took
                info["status"] = "ok" if result.ok else "failed"
                if not result.ok:
                    info["error"] = result.error
                    self.stats.arm_failures[choice.arm] += 1
                for k in shards:
                    shards[k] += int(result.shards.get(k, 0))
            arms[choice.arm] = info
        rerank_info = dict(answer.rerank)
        for k, v in rerank_info.pop("_shards", {}).items():
            if k in shards:
                shards[k] += int(v)
        ext: dict[str, Any] = {
            "policy": decision.policy,
            "catalog": catalog.digest[:12],
            "fallback": fallback,
            "arms": arms,
            "rerank": rerank_info,
            "timings_ms": {k: round(v, 3) for k, v in timings.items()},
            "features": features,
        }
        decision_id = request.decision_id or uuid.uuid4().hex
        ranked = RankedList(decision_id, answer.ranked, ext, shards, key)
        self.pages.put(ranked)
        if self.learner is not None:  # learn: keep the decision for its feedback window
            self.learner.record(
                runtime,
                decision_id,
                request.query,
                request.context,
                x if decision.policy == runtime.policy.name else None,
                decision,
                retrieval,
                answer.ranked,
            )
        self.stats.count("intercepted")
        body = build_response(
            ranked,
            from_=request.from_,
            size=request.size,
            took_ms=(time.perf_counter() - started) * 1000,
            explain=request.explain,
        )
        return Answer(body, decision_id)

    async def _execute(
        self,
        runtime: CatalogRuntime,
        request: SearchRequest,
        headers: Mapping[str, str],
        decision: Decision,
        deadline: float,
        timings: dict[str, float],
    ) -> Executed | None:
        catalog = runtime.catalog
        total = catalog.deadline_ms / 1000.0
        vector = None
        embed_fallback = None
        needs_vector = any(c.included and catalog.arm(c.arm).needs_vector for c in decision.choices)
        if needs_vector and runtime.embedder is not None:
            t0 = time.perf_counter()
            try:
                vector = await asyncio.wait_for(
                    runtime.embedder.aembed(request.query),
                    timeout=max(0.001, min(deadline - t0, EMBED_SHARE * total)),
                )
            except Exception as exc:
                log.warning("embedder failed; using the static plan: %r", exc)
                self.stats.count("embedder_errors")
                embed_fallback = f"embedder error: {exc!r}"
                decision = static_decision(catalog, request.depth, "embedder error")
            timings["embed"] = (time.perf_counter() - t0) * 1000

        # plan
        t0 = time.perf_counter()
        reserve = RERANK_SHARE * total if catalog.rerank is not None else 0.0
        remaining = max(0.001, deadline - t0 - reserve)
        sizes = {c.arm: c.size for c in decision.choices if c.included}
        plan = build_plan(
            catalog,
            sizes,
            SearchInput(
                target=request.target,
                query=request.query,
                query_norm=EntityDictionary.normalize(request.query),
                context=request.context,
                filters=request.filters,
                post_filter=request.post_filter,
                source=request.source,
                vector=vector,
            ),
            self.renderer,
            timeout_ms=max(1, int(remaining * 1000)),
        )
        timings["plan"] = (time.perf_counter() - t0) * 1000

        # retrieve
        retrieval = await retrieve(self.transport, plan, headers, timeout=remaining)
        timings["retrieve"] = retrieval.took_ms
        succeeded = retrieval.succeeded
        if not succeeded:
            return None

        # fuse
        t0 = time.perf_counter()
        fusion = get_fusion(catalog.fusion)
        weights = catalog.fusion.weights
        if catalog.fusion.by_policy:
            weights = policy_weights(weights, {c.arm: c.score for c in decision.included})
        fused = fusion({a: r.hits for a, r in succeeded.items()}, weights)
        timings["fuse"] = (time.perf_counter() - t0) * 1000

        # rerank
        rerank_info: dict[str, Any] = {"status": "none"}
        ranked = fused_order(fused)
        if catalog.rerank is not None and fused:
            t0 = time.perf_counter()
            rerank_info = {"model": catalog.rerank.model, "status": "ok"}
            try:
                budget = max(0.001, deadline - t0)
                body = build_rerank_body(
                    fused, request.query, catalog.rerank, False, int(budget * 1000)
                )
                indices = ",".join(sorted({h.index for h in fused}))
                reply = await self.transport.request(
                    "POST",
                    f"/{indices}/_search",
                    headers={**headers, "Content-Type": "application/json"},
                    body=orjson.dumps(body),
                    timeout=budget,
                )
                payload = reply.json()
                ranked = apply_rerank(fused, payload)
                rerank_info["_shards"] = payload.get("_shards", {})
            except (RerankError, UpstreamError, ValueError) as exc:
                self.stats.count("rerank_failures")
                rerank_info = {
                    "model": catalog.rerank.model,
                    "status": "failed",
                    "reason": str(exc)[:500],
                }
            timings["rerank"] = (time.perf_counter() - t0) * 1000
        return Executed(decision, retrieval, ranked, rerank_info, embed_fallback)
