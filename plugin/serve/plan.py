"""Plan: embed the query when an included arm (or the rerank) needs a vector, then render the
one ``_msearch``.

The embedder may use at most ``EMBED_SHARE`` of the catalog's deadline. When it fails or runs
late and an included arm needed the vector, the static plan stands in (a plan that needs no
vector is the point of having one), and the reason goes into ``ext.ltrr.fallback``; when only
the rerank needed it, the plan stands and the rerank goes without its dense feature.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass

from ltrr.bandit.decision import Decision
from ltrr.plugin.runtime.registry import CatalogRuntime
from ltrr.plugin.runtime.stats import Stats
from ltrr.plugin.serve.decide import static_decision
from ltrr.plugin.serve.intercept import SearchRequest
from ltrr.query_plans.plan import Plan, SearchInput, build_plan
from ltrr.query_plans.templates import TemplateRenderer

log = logging.getLogger("ltrr.search")

# Shares of the catalog's deadline: the embedder may use at most EMBED_SHARE of it, and the
# msearch leaves RERANK_SHARE for the rerank when the catalog has one.
EMBED_SHARE = 0.25
RERANK_SHARE = 0.3


@dataclass(frozen=True, slots=True)
class Planned:
    plan: Plan
    decision: Decision  # the static plan when the embedder failed
    fallback: str | None
    timeout: float  # seconds the msearch may take
    vector: tuple[float, ...] | None = None  # the query's, for the arms and the rerank


async def _embed(
    runtime: CatalogRuntime, request: SearchRequest, deadline: float, stats: Stats
) -> tuple[tuple[float, ...] | None, str | None]:
    """The query vector, or None and the reason the embedder gave none."""
    assert runtime.embedder is not None
    t0 = time.perf_counter()
    total = runtime.catalog.deadline_ms / 1000.0
    try:
        vector = await asyncio.wait_for(
            runtime.embedder.aembed(request.query),
            timeout=max(0.001, min(deadline - t0, EMBED_SHARE * total)),
        )
        return vector, None
    except Exception as exc:  # a slow or broken model must not fail the search
        log.warning("embedder failed: %r", exc)
        stats.count("embedder_errors")
        return None, f"embedder error: {exc!r}"


async def plan(
    runtime: CatalogRuntime,
    request: SearchRequest,
    decision: Decision,
    deadline: float,
    renderer: TemplateRenderer,
    stats: Stats,
    timings: dict[str, float],
) -> Planned:
    catalog = runtime.catalog
    vector = fallback = None
    arms_need = any(c.included and catalog.arm(c.arm).needs_vector for c in decision.choices)
    # The rerank's dense feature scores every candidate against the query vector, whichever
    # arms were asked; without a vector the rerank fails and the fused order stands.
    rerank_needs = catalog.rerank is not None and any(a.needs_vector for a in catalog.arms)
    if runtime.embedder is not None and (arms_need or rerank_needs):
        t0 = time.perf_counter()
        vector, fallback = await _embed(runtime, request, deadline, stats)
        if fallback is not None and not arms_need:
            fallback = None
        elif fallback is not None:
            decision = static_decision(catalog, request.depth, "embedder error")
        timings["embed"] = (time.perf_counter() - t0) * 1000

    t0 = time.perf_counter()
    reserve = RERANK_SHARE * catalog.deadline_ms / 1000.0 if catalog.rerank is not None else 0.0
    remaining = max(0.001, deadline - t0 - reserve)
    built = build_plan(
        catalog,
        {c.arm: c.size for c in decision.choices if c.included},
        SearchInput.of(
            request.target,
            request.query,
            context=request.context,
            filters=request.filters,
            post_filter=request.post_filter,
            source=request.source,
            vector=vector,
        ),
        renderer,
        timeout_ms=max(1, int(remaining * 1000)),
    )
    timings["plan"] = (time.perf_counter() - t0) * 1000
    return Planned(built, decision, fallback, remaining, vector)
