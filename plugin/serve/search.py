"""The LTR&R search path: decide, plan, retrieve, fuse, rerank, respond, then learn.

Each step lives in the module named after it; this one only strings them together, keeps the
deadline, and chooses the fallbacks: a policy or embedder failure uses the catalog's static
plan; if every arm fails, the static plan is tried once; if that fails too, the caller's
request passes through to OpenSearch unchanged, within what is left of the deadline. With too
little left for either, the answer is a 504: the deadline is a cap, not a hint.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from ltrr.bandit.decision import Decision
from ltrr.plugin.errors import DeadlineExceeded
from ltrr.plugin.learn.learner import Learner
from ltrr.plugin.learn.records import Served
from ltrr.plugin.learn.tokens import FeedbackTokens
from ltrr.plugin.runtime import metrics
from ltrr.plugin.runtime.registry import CatalogRuntime
from ltrr.plugin.runtime.stats import Stats
from ltrr.plugin.runtime.upstream import Transport
from ltrr.plugin.serve.decide import decide, static_decision
from ltrr.plugin.serve.fuse import fuse
from ltrr.plugin.serve.intercept import SearchRequest
from ltrr.plugin.serve.pages import PageCache, RankedList, fingerprint
from ltrr.plugin.serve.plan import plan
from ltrr.plugin.serve.rerank import Reranked, rerank
from ltrr.plugin.serve.respond import build_response, describe_arms
from ltrr.plugin.serve.retrieve import Retrieval, retrieve
from ltrr.plugin.serve.ubi import decision_attributes
from ltrr.query_plans.ltr.params import search_params
from ltrr.query_plans.templates import TemplateRenderer


@dataclass(frozen=True, slots=True)
class Executed:
    """One plan run to the end: the decision it used (the embedder may have replaced it)."""

    decision: Decision
    retrieval: Retrieval
    reranked: Reranked
    fallback: str | None


# Less of the deadline than this left, and no second plan or passthrough is tried.
MIN_ATTEMPT_SECONDS = 0.05


@dataclass(frozen=True, slots=True)
class Answer:
    """``decision`` is what the UBI query record keeps of the decision behind the page."""

    body: dict[str, Any]
    decision_id: str
    outcome: str = "intercepted"  # or "cached" (a later page), "fallback" (the static plan)
    decision: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class PassOn:
    """Every plan failed: pass the caller's request through within ``seconds``."""

    seconds: float


def _since(t0: float) -> float:
    return (time.perf_counter() - t0) * 1000


def _outcome(fallback: str | None) -> str:
    return "fallback" if fallback else "intercepted"


def _observe(target: str, executed: Executed, timings: dict[str, float], started: float) -> None:
    """The answered search's metrics: the decision it used, its stages' times."""
    metrics.observe_decision(target, executed.decision)
    metrics.observe_search(target, timings, _since(started))


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
    ) -> Answer | PassOn:
        """Answer ``request``, or say it must pass through (every plan failed) and how long
        that may take; raises ``DeadlineExceeded`` when no time is left for it.

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
        cached = self._cached(request, key)
        if cached is not None:
            self.stats.count("pages_from_cache")
            return self._respond(cached, request, started, outcome="cached")

        deadline = started + catalog.deadline_ms / 1000.0
        timings: dict[str, float] = {}
        if runtime.entities is not None:
            runtime.entities.maybe_refresh(self.transport, request.target, headers)
        t0 = time.perf_counter()
        decided = decide(runtime, request, self.now())
        if decided.fallback is not None:
            self.stats.count("policy_errors")
        timings["decide"] = _since(t0)

        fallback = decided.fallback
        executed = await self._execute(
            runtime, request, headers, decided.decision, deadline, timings
        )
        if executed is None and not decided.decision.is_fallback:
            self.stats.count("all_arms_failed")
            fallback = "every arm failed"
            if deadline - time.perf_counter() >= MIN_ATTEMPT_SECONDS:
                static = static_decision(catalog, request.depth, fallback)
                executed = await self._execute(runtime, request, headers, static, deadline, timings)
        if executed is None:
            left = deadline - time.perf_counter()
            if left < MIN_ATTEMPT_SECONDS:
                self.stats.count("deadline_exceeded")
                raise DeadlineExceeded(
                    f"no plan answered within the catalog's deadline of {catalog.deadline_ms} ms"
                )
            self.stats.count("fell_through_to_passthrough")
            return PassOn(left)

        features = decided.features
        arms, shards = describe_arms(
            executed.decision, executed.retrieval, executed.reranked.shards, self.stats
        )
        ext: dict[str, Any] = {
            "policy": executed.decision.policy,
            "catalog": catalog.digest[:12],
            "fallback": executed.fallback or fallback,
            "arms": arms,
            "rerank": executed.reranked.info,
            "timings_ms": {k: round(v, 3) for k, v in timings.items()},
            "features": dict(zip(runtime.agent.feature_names, features, strict=True))
            if features is not None
            else None,
        }
        decision_id = request.decision_id or uuid.uuid4().hex
        nonce = FeedbackTokens.nonce()
        if self.learner is not None:  # what the client shows to send feedback on this search
            ext["feedback_token"] = self.learner.tokens.token(decision_id, nonce)
        attributes = {
            "target": request.target,
            "plan": executed.decision.plan,
            "plan_propensity": executed.decision.plan_propensity,
        }
        ranked = RankedList(
            decision_id, executed.reranked.ranked, ext, shards, key, attributes=attributes
        )
        self.pages.put(ranked)
        served = Served(_since(started), timings, ext["fallback"])
        self._learn(runtime, request, decision_id, executed, nonce, served)
        self.stats.count("intercepted")
        answer = self._respond(ranked, request, started, outcome=_outcome(ext["fallback"]))
        _observe(runtime.state_key, executed, timings, started)
        return answer

    def _cached(self, request: SearchRequest, key: str) -> RankedList | None:
        """A later page continues its list; a first page is a new search, and a new decision
        (else a popular query would replay one draw for the whole TTL and never explore)."""
        if request.decision_id:
            cached = self.pages.by_id(request.decision_id)
        else:
            cached = self.pages.by_fingerprint(key) if request.from_ > 0 else None
        return cached if cached is not None and cached.fingerprint == key else None

    @staticmethod
    def _respond(
        ranked: RankedList,
        request: SearchRequest,
        started: float,
        *,
        outcome: str,
    ) -> Answer:
        body = build_response(
            ranked,
            from_=request.from_,
            size=request.size,
            took_ms=_since(started),
            explain=request.explain,
            served_from_cache=outcome == "cached",
        )
        return Answer(
            body, ranked.decision_id, outcome, decision_attributes(body, ranked.attributes)
        )

    def _learn(
        self,
        runtime: CatalogRuntime,
        request: SearchRequest,
        decision_id: str,
        executed: Executed,
        nonce: str,
        served: Served,
    ) -> None:
        """Keep the decision for its feedback window (the learner logs every decision)."""
        if self.learner is None:
            return
        results = {
            arm: frozenset(h.id for h in result.hits)
            for arm, result in executed.retrieval.results.items()
            if result.ok
        }
        self.learner.record(
            runtime,
            decision_id,
            request.query,
            request.context,
            executed.decision,
            results,
            executed.reranked.ranked,
            nonce,
            served,
        )

    async def _execute(
        self,
        runtime: CatalogRuntime,
        request: SearchRequest,
        headers: Mapping[str, str],
        decision: Decision,
        deadline: float,
        timings: dict[str, float],
    ) -> Executed | None:
        """Plan, retrieve, fuse and rerank one decision; None when no arm answered."""
        planned = await plan(
            runtime, request, decision, deadline, self.renderer, self.stats, timings
        )
        retrieval = await retrieve(self.transport, planned.plan, headers, timeout=planned.timeout)
        timings["retrieve"] = retrieval.took_ms
        succeeded = retrieval.succeeded
        failed = [arm for arm, result in retrieval.results.items() if not result.ok]
        metrics.arms_failed(runtime.state_key, failed)  # every attempt's, the failed ones too
        if not succeeded:
            return None
        t0 = time.perf_counter()
        fused = fuse(runtime.catalog, planned.decision, succeeded)
        timings["fuse"] = _since(t0)
        t0 = time.perf_counter()
        params = (
            search_params(
                runtime.catalog,
                request.query,
                vector=planned.vector,
                retrieved={arm: [hit.id for hit in r.hits] for arm, r in succeeded.items()},
            )
            if runtime.catalog.rerank is not None
            else {}
        )
        reranked = await rerank(
            self.transport,
            runtime.catalog.rerank,
            fused,
            params,
            headers,
            deadline,
            self.stats,
        )
        if runtime.catalog.rerank is not None and fused:
            timings["rerank"] = _since(t0)
        return Executed(planned.decision, retrieval, reranked, planned.fallback)
