"""Rerank: score the fused list with the catalog's LTR model (the plugin's ``sltr``) in one
``_search``, within what is left of the deadline.

A failed rerank keeps the fused order and says why in ``ext.ltrr.rerank``: the page is still
the right documents, only less well ordered.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

from ltrr.plugin.runtime.stats import Stats
from ltrr.plugin.runtime.upstream import Transport, UpstreamError
from ltrr.query_plans.catalog import RerankConfig
from ltrr.query_plans.fusion.base import FusedHit
from ltrr.query_plans.rerank import (
    RankedHit,
    RerankError,
    apply_rerank,
    build_rerank_body,
    fused_order,
)


@dataclass(frozen=True, slots=True)
class Reranked:
    ranked: list[RankedHit]
    info: dict[str, Any]  # what ``ext.ltrr.rerank`` reports
    shards: Mapping[str, Any] = field(default_factory=dict)  # the rerank search's _shards


async def rerank(
    transport: Transport,
    config: RerankConfig | None,
    fused: Sequence[FusedHit],
    params: Mapping[str, str],
    headers: Mapping[str, str],
    deadline: float,
    stats: Stats,
) -> Reranked:
    """``params`` are the search's feature params (``query_plans/ltr/params.py``)."""
    if config is None or not fused:
        return Reranked(fused_order(fused), {"status": "none"})
    try:
        budget = max(0.001, deadline - time.perf_counter())
        body = build_rerank_body(fused, params, config, False, int(budget * 1000))
        reply = await transport.request(
            "POST",
            f"/{','.join(sorted({h.index for h in fused}))}/_search",
            headers={**headers, "Content-Type": "application/json"},
            body=orjson.dumps(body),
            timeout=budget,
        )
        payload = reply.json()
        ranked = apply_rerank(fused, payload)  # an error body is named by its reason here
        if reply.status >= 300:
            raise RerankError(f"rerank search answered {reply.status} with hits")
    except (RerankError, UpstreamError, ValueError) as exc:
        stats.count("rerank_failures")
        info = {"model": config.model, "status": "failed", "reason": str(exc)[:500]}
        return Reranked(fused_order(fused), info)
    return Reranked(ranked, {"model": config.model, "status": "ok"}, payload.get("_shards", {}))
