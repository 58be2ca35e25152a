"""The LTR rerank: the OpenSearch Learning-to-Rank plugin's ``sltr`` rescore over fused ids.

Fusion decides WHICH documents are candidates; the LTR model, with features only the cluster
can compute, decides their final order. One search fetches exactly the candidates by id and
rescores all of them. Any doubt about that response (error, timeout, failed shard) raises
``RerankError`` so that the caller keeps the fused order and flags it, rather than showing a
partially reranked list.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ltrr.bandit.errors import LtrrError
from ltrr.query_plans.catalog import RerankConfig
from ltrr.query_plans.fusion.base import FusedHit


class RerankError(LtrrError):
    """The rerank response cannot be trusted; ``reason`` says why, for logs and ``ext.ltrr``."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class RankedHit:
    """One element of the final order; ``ltr_score`` is None when the model did not score it."""

    hit: FusedHit
    score: float
    ltr_score: float | None


def fused_order(candidates: Sequence[FusedHit]) -> list[RankedHit]:
    """The final order when there is no rerank (or it failed): fusion's, with its scores."""
    return [RankedHit(c, c.score, None) for c in candidates]


def build_rerank_body(
    candidates: Sequence[FusedHit],
    params: Mapping[str, str],
    config: RerankConfig,
    source: object | None,
    timeout_ms: int | None,
) -> dict[str, Any]:
    """The search body that fetches the candidates by id and rescores every one of them.

    ``params`` are the search's feature params (``query_plans/ltr/params.py``); the catalog's
    own ``rerank.params`` are added to them, never over them.

    The rescore window is never smaller than the candidate count: a window cut short would
    leave the tail in ``query_weight`` order, mixed into the model's scores. ``query_weight``
    0 makes the final score the model's alone (the ids query scores a constant 1).

    Send it to the candidates' concrete indices. When they come from several, each index gets
    its own ids clause: a bare ids query would also match candidate B's id in index A, and such
    foreign hits would take ``size`` slots from real candidates.
    """
    by_index: dict[str, dict[str, None]] = {}  # dicts as ordered sets: fused order, no repeats
    for c in candidates:
        by_index.setdefault(c.index, {})[c.id] = None
    query_clause: dict[str, Any]
    if len(by_index) <= 1:
        query_clause = {"ids": {"values": [i for ids in by_index.values() for i in ids]}}
    else:
        scoped = [
            {"bool": {"filter": [{"term": {"_index": index}}, {"ids": {"values": list(ids)}}]}}
            for index, ids in by_index.items()
        ]
        query_clause = {"bool": {"should": scoped, "minimum_should_match": 1}}
    count = len(candidates)
    # The search's own params win: training logged exactly those values.
    sltr: dict[str, Any] = {"params": {**config.params, **params}, "model": config.model}
    if config.store is not None:
        sltr["store"] = config.store
    body: dict[str, Any] = {
        "query": query_clause,
        "size": count,
        "track_total_hits": False,
        "rescore": {
            "window_size": max(config.window or count, count),
            "query": {
                "rescore_query": {"sltr": sltr},
                "query_weight": 0,
                "rescore_query_weight": 1,
            },
        },
    }
    if source is not None:
        body["_source"] = source
    if timeout_ms is not None:
        body["timeout"] = f"{timeout_ms}ms"
    return body


def _check(response: Mapping[str, Any]) -> list[Any]:
    """The response's hits, or RerankError if anything says they may be incomplete."""
    if not isinstance(response, Mapping):
        raise RerankError(f"rerank response is not a JSON object: {str(response)[:200]}")
    error = response.get("error")
    if error:
        reason = error
        if isinstance(error, Mapping):
            reason = error.get("reason") or error.get("type") or error
        raise RerankError(f"rerank search failed: {reason}")
    if response.get("timed_out") is True:
        raise RerankError("rerank search timed out")
    shards = response.get("_shards")
    if isinstance(shards, Mapping) and (shards.get("failed") or 0) > 0:
        raise RerankError(
            f"rerank search: {shards['failed']} of {shards.get('total')} shards failed"
        )
    hits = response.get("hits")
    inner = hits.get("hits") if isinstance(hits, Mapping) else None
    if not isinstance(inner, list):
        raise RerankError("rerank response has no hits")
    return inner


def apply_rerank(candidates: Sequence[FusedHit], response: Mapping[str, Any]) -> list[RankedHit]:
    """Reorder the candidates by the model's ``_score``.

    Hits are matched on the exact (``_index``, ``_id``): both sides are concrete index names
    from OpenSearch, and a doc with the same id in another index is another doc, so it is
    ignored. Equal model scores keep the fused order, so the result never depends on shard
    order. Candidates the response lacks (deleted meanwhile) follow, in fused order, with their
    fused score and ``ltr_score`` None.
    """
    wanted = {c.key for c in candidates}
    ltr: dict[tuple[str, str], float] = {}
    for raw in _check(response):
        if not isinstance(raw, Mapping):
            raise RerankError("rerank response has a malformed hit")
        key = (raw.get("_index"), raw.get("_id"))
        if key not in wanted or key in ltr:
            continue
        score = raw.get("_score")
        if isinstance(score, bool) or not isinstance(score, int | float):
            raise RerankError(f"rerank hit {key[0]}/{key[1]} has no score")
        ltr[key] = float(score)

    reranked = sorted((c for c in candidates if c.key in ltr), key=lambda c: -ltr[c.key])
    ranked = [RankedHit(c, ltr[c.key], ltr[c.key]) for c in reranked]
    ranked.extend(RankedHit(c, c.score, None) for c in candidates if c.key not in ltr)
    return ranked
