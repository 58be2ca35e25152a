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
from dataclasses import dataclass, field, replace
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
from ltrr.plugin.serve import rollout
from ltrr.plugin.serve.decide import Decided, decide, static_decision
from ltrr.plugin.serve.fuse import fuse
from ltrr.plugin.serve.intercept import SearchRequest
from ltrr.plugin.serve.pages import PageCache, RankedList, fingerprint
from ltrr.plugin.serve.plan import plan
from ltrr.plugin.serve.rerank import Reranked, rerank
from ltrr.plugin.serve.respond import build_response, describe_arms
from ltrr.plugin.serve.retrieve import Retrieval, retrieve
from ltrr.plugin.serve.ubi import decision_attributes
from ltrr.query_plans.ltr.params import search_params
from ltrr.query_plans.rerank import RankedHit
from ltrr.query_plans.rollout import BASELINE
from ltrr.query_plans.templates import TemplateRenderer


@dataclass(frozen=True, slots=True)
class Executed:
    """One plan run to the end: the decision it used (the embedder may have replaced it)."""

    decision: Decision
    retrieval: Retrieval
    reranked: Reranked
    fallback: str | None
    rollout: dict[str, Any] | None = None  # the decision log's ``rollout`` entry


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
        decision_id = request.decision_id or uuid.uuid4().hex
        decided, side = self._decide(runtime, request)
        if decided.fallback is not None:
            self.stats.count("policy_errors")
        timings["decide"] = _since(t0)

        fallback = decided.fallback
        executed = await self._execute(
            runtime,
            request,
            headers,
            decided.decision,
            deadline,
            timings,
            rollout.interleave_id(catalog, decided.decision, decision_id),
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
        executed = self._on_side(executed, side)

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
        ext.update(rollout.shown(executed.rollout))
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

    def _decide(
        self, runtime: CatalogRuntime, request: SearchRequest
    ) -> tuple[Decided, rollout.Split | None]:
        """The policy's decision, or the baseline's when a split puts the search on its side."""
        catalog = runtime.catalog
        side = rollout.split(catalog, request.context) if catalog.is_split else None
        if side is not None and side.side == BASELINE:
            return Decided(rollout.baseline_decision(catalog, request.depth), None, None), side
        return decide(runtime, request, self.now()), side

    @staticmethod
    def _on_side(executed: Executed, side: rollout.Split | None) -> Executed:
        """A split search is its side's whatever plan answered it (the static one included)."""
        return replace(executed, rollout=side.log) if side is not None else executed

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
        own = {c.arm for c in executed.decision.included}  # interleaved: not the baseline's
        results = {
            arm: frozenset(h.id for h in result.hits)
            for arm, result in executed.retrieval.results.items()
            if result.ok and arm in own
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
            rollout=executed.rollout,
        )

    async def _execute(
        self,
        runtime: CatalogRuntime,
        request: SearchRequest,
        headers: Mapping[str, str],
        decision: Decision,
        deadline: float,
        timings: dict[str, float],
        interleave_id: str | None = None,
    ) -> Executed | None:
        """Plan, retrieve, fuse and rerank one decision; None when no arm answered.

        With ``interleave_id`` the plan asks the baseline's arms too, and the page is the two
        sides' pages team-drafted (the catalog has no rerank then; its reader refuses both)."""
        baseline = (
            rollout.baseline_decision(runtime.catalog, request.depth) if interleave_id else None
        )
        asked = rollout.union_decision(decision, baseline) if baseline is not None else decision
        planned = await plan(runtime, request, asked, deadline, self.renderer, self.stats, timings)
        retrieval = await retrieve(self.transport, planned.plan, headers, timeout=planned.timeout)
        timings["retrieve"] = retrieval.took_ms
        succeeded = retrieval.succeeded
        failed = [arm for arm, result in retrieval.results.items() if not result.ok]
        metrics.arms_failed(runtime.state_key, failed)  # every attempt's, the failed ones too
        if not succeeded:
            return None
        t0 = time.perf_counter()
        if baseline is not None and interleave_id and planned.decision is asked:
            page = rollout.interleave(runtime.catalog, decision, baseline, succeeded, interleave_id)
            timings["fuse"] = _since(t0)
            n = len(page.hits)  # the positions as scores, so that _score still sorts the page
            ranked = [RankedHit(h, float(n - i), None) for i, h in enumerate(page.hits)]
            own = Retrieval({**retrieval.results, **page.learner_results}, retrieval.took_ms)
            return Executed(
                decision, own, Reranked(ranked, {"status": "none"}), None, page.log(baseline)
            )
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
