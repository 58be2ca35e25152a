"""Answer an intercepted search as a standard ``_search`` response, plus ``ext.ltrr``.

Clients read ``hits`` as they always do. ``hits.total`` counts the fused candidate set (the
documents this decision retrieved), which is exact for it, so its relation is ``eq``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ltrr.bandit.decision import Decision
from ltrr.plugin.runtime.stats import Stats
from ltrr.plugin.serve.pages import RankedList
from ltrr.plugin.serve.retrieve import ArmResult, Retrieval

DECISION_HEADER = "X-LTRR-Decision-Id"


def _hit(ranked_hit: Any, explain: bool) -> dict[str, Any]:
    hit = ranked_hit.hit
    out: dict[str, Any] = {"_index": hit.index, "_id": hit.id, "_score": ranked_hit.score}
    if hit.source is not None:
        out["_source"] = hit.source
    if explain:
        out["_ltrr"] = {
            "fused_score": hit.score,
            "ltr_score": ranked_hit.ltr_score,
            "provenance": [
                {"arm": p.arm, "rank": p.rank, "score": p.score} for p in hit.provenance
            ],
        }
    return out


SHARD_KEYS = ("total", "successful", "skipped", "failed")


def _arm_info(decision_arm: Any, result: ArmResult | None) -> dict[str, Any]:
    info: dict[str, Any] = {
        "included": decision_arm.included,
        "size": decision_arm.size,
        "propensity": decision_arm.propensity,
        "score": decision_arm.score,
    }
    if result is not None:
        info.update(hits=len(result.hits), took=result.took)
        info["status"] = "ok" if result.ok else "failed"
        if not result.ok:
            info["error"] = result.error
    return info


def describe_arms(
    decision: Decision,
    retrieval: Retrieval,
    rerank_shards: Mapping[str, Any],
    stats: Stats,
) -> tuple[dict[str, Any], dict[str, int]]:
    """Per arm, what was decided and what it returned (``ext.ltrr.arms``); and the ``_shards``
    of every search the answer took, the arms' and the rerank's, summed."""
    arms: dict[str, Any] = {}
    shards = dict.fromkeys(SHARD_KEYS, 0)
    for choice in decision.choices:
        result = retrieval.results.get(choice.arm)
        arms[choice.arm] = _arm_info(choice, result)
        if result is not None:
            if not result.ok:
                stats.arm_failures[choice.arm] += 1
            for k in SHARD_KEYS:
                shards[k] += int(result.shards.get(k, 0))
    for k in SHARD_KEYS:
        shards[k] += int(rerank_shards.get(k, 0))
    return arms, shards


def build_response(
    ranked: RankedList,
    *,
    from_: int,
    size: int,
    took_ms: float,
    explain: bool,
    served_from_cache: bool = False,
) -> dict[str, Any]:
    page = ranked.hits[from_ : from_ + size]
    ext = dict(ranked.ext)
    if served_from_cache:  # the first page gave it; anyone naming the id must not get it
        ext.pop("feedback_token", None)
    ext["decision_id"] = ranked.decision_id
    ext["page"] = {"from": from_, "size": size, "cached": served_from_cache}
    if not served_from_cache:
        ext["timings_ms"] = {**ext.get("timings_ms", {}), "total": round(took_ms, 3)}
    if not explain:
        ext.pop("features", None)
    return {
        "took": round(took_ms),
        "timed_out": False,
        "_shards": dict(ranked.shards),
        "hits": {
            "total": {"value": len(ranked.hits), "relation": "eq"},
            "max_score": ranked.hits[0].score if ranked.hits else None,
            "hits": [_hit(h, explain) for h in page],
        },
        "ext": {"ltrr": ext},
    }
