"""Answer an intercepted search as a standard ``_search`` response, plus ``ext.ltrr``.

Clients read ``hits`` as they always do. ``hits.total`` counts the fused candidate set (the
documents this decision retrieved), which is exact for it, so its relation is ``eq``.
"""

from __future__ import annotations

from typing import Any

from ltrr.plugin.serve.pages import RankedList

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
