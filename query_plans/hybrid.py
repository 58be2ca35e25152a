"""OpenSearch's own hybrid search over a catalog's arms: the peer the proxy is measured against.

A ``hybrid`` query runs every arm's clause as a sub-query of ONE ``_search``, and a search
pipeline combines them: the ``score-ranker-processor`` (RRF) or the ``normalization-processor``
(min-max or L2 normalization, then an arithmetic, geometric or harmonic mean). The clauses are
rendered by :func:`ltrr.query_plans.plan.build_plan`, exactly as the proxy renders them.

There is one ``pagination_depth`` for all sub-queries (results per shard per sub-query), so a
candidate budget can only be split evenly: each sub-query, and each knn clause's ``k``, gets
``budget // arms``, never more than the budget in all. Pure body building: the HTTP is the
caller's (``plugin/ops/simulate``, ``plugin/ops/bench_overhead.py``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from ltrr.bandit.errors import LtrrError
from ltrr.query_plans.catalog import Catalog
from ltrr.query_plans.plan import SearchInput, build_plan
from ltrr.query_plans.templates import TemplateRenderer

__all__ = [
    "COMBINATIONS",
    "MAX_SUB_QUERIES",
    "METHODS",
    "NORMALIZATIONS",
    "HybridError",
    "HybridQuery",
    "build_hybrid",
    "even_depth",
    "normalization_pipeline",
    "pipeline_for",
    "pipeline_weights",
    "rank_constant",
    "rrf_pipeline",
    "sub_query_arms",
]

# OpenSearch refuses a hybrid query with more sub-queries than this.
MAX_SUB_QUERIES = 5
NORMALIZATIONS = ("min_max", "l2")
COMBINATIONS = ("arithmetic_mean", "geometric_mean", "harmonic_mean")
# The simulator's and the benchmark's names for the two pipelines they compare.
METHODS = ("rrf", "minmax")
DEFAULT_RANK_CONSTANT = 60


class HybridError(LtrrError, ValueError):
    """A hybrid query or pipeline that OpenSearch would refuse, or that would mislead."""


@dataclass(frozen=True, slots=True)
class HybridQuery:
    """One ``_search`` body; ``arms`` are its sub-queries in order, each ``depth`` deep."""

    body: Mapping[str, Any]
    arms: tuple[str, ...]
    depth: int

    @property
    def candidates(self) -> int:
        """What the query may retrieve in all (per shard): every sub-query's depth."""
        return self.depth * len(self.arms)

    def json(self) -> bytes:
        """The body as sent (orjson: a knn vector is an already-encoded fragment)."""
        return orjson.dumps(self.body)


def sub_query_arms(catalog: Catalog, target: str | None = None) -> tuple[str, ...]:
    """The arms a hybrid query on ``target`` can hold: one ``_search`` searches one target, so
    an arm that searches another index is left out."""
    arms = tuple(a.name for a in catalog.arms if a.index is None or a.index == target)
    if not arms:
        raise HybridError(f"{catalog.path}: every arm searches another index")
    if len(arms) > MAX_SUB_QUERIES:
        raise HybridError(
            f"{catalog.path}: {len(arms)} arms, but a hybrid query takes at most "
            f"{MAX_SUB_QUERIES} sub-queries"
        )
    return arms


def even_depth(budget: int, arms: int) -> int:
    """Each sub-query's share of ``budget``: one ``pagination_depth`` caps them all alike."""
    if arms < 1:
        raise HybridError("a hybrid query needs at least one sub-query")
    if budget < arms:
        raise HybridError(f"a budget of {budget} cannot give each of {arms} sub-queries one")
    return budget // arms


def build_hybrid(
    catalog: Catalog,
    request: SearchInput,
    renderer: TemplateRenderer,
    *,
    depth: int,
    size: int,
    from_: int = 0,
) -> HybridQuery:
    """The hybrid ``_search`` body over every arm of ``catalog`` that searches the target.

    Every sub-query must render: the pipeline's weights are positional, so a sub-query that
    silently went missing would shift every weight onto the wrong arm.
    """
    if depth < 1:
        raise HybridError(f"pagination_depth must be at least 1, not {depth}")
    arms = sub_query_arms(catalog, request.target)
    plan = build_plan(
        catalog, dict.fromkeys(arms, depth), request, renderer, timeout_ms=catalog.deadline_ms
    )
    if plan.failures:
        reasons = "; ".join(f"{arm}: {why}" for arm, why in plan.failures.items())
        raise HybridError(f"sub-queries that cannot be rendered: {reasons}")
    # The plan's per-arm bodies carry the filters inside each clause (a knn clause takes them
    # in its own filter); size, timeout and _source belong to the one search, set below.
    body: dict[str, Any] = {
        "query": {
            "hybrid": {
                "queries": [search.body["query"] for search in plan.searches],
                "pagination_depth": depth,
            }
        },
        "size": size,
    }
    if from_:
        body["from"] = from_
    if request.post_filter is not None:
        body["post_filter"] = request.post_filter
    source = request.source if request.source is not None else catalog.source
    if source is not None:
        body["_source"] = source
    return HybridQuery(body, tuple(s.arm for s in plan.searches), depth)


def rrf_pipeline(rank_constant: int = DEFAULT_RANK_CONSTANT) -> dict[str, Any]:
    """A search pipeline that fuses the sub-queries by reciprocal rank: sum 1/(k + rank).

    OpenSearch 2.19.1 reads the constant from ``combination.parameters.rank_constant``; the
    ``combination.rank_constant`` its documentation shows is accepted and silently ignored
    there, so that every pipeline runs with 60 (neural-search issues 1370 and 1418, fixed
    after 2.19). 2.19 takes no RRF weights: they are refused.
    """
    if not 1 <= rank_constant <= 10_000:
        raise HybridError(f"rank_constant must be in [1, 10000], not {rank_constant}")
    combination = {"technique": "rrf", "parameters": {"rank_constant": rank_constant}}
    return {
        "description": f"ltrr: hybrid sub-queries fused by RRF, k={rank_constant}",
        "phase_results_processors": [{"score-ranker-processor": {"combination": combination}}],
    }


def normalization_pipeline(
    normalization: str = "min_max",
    combination: str = "arithmetic_mean",
    weights: Sequence[float] | None = None,
) -> dict[str, Any]:
    """A search pipeline that normalizes each sub-query's scores, then combines them.

    The weights are positional (one per sub-query) and OpenSearch refuses any that do not sum
    to 1, so they are checked here, where the message can say why.
    """
    if normalization not in NORMALIZATIONS:
        raise HybridError(f"normalization {normalization!r}: one of {', '.join(NORMALIZATIONS)}")
    if combination not in COMBINATIONS:
        raise HybridError(f"combination {combination!r}: one of {', '.join(COMBINATIONS)}")
    combine: dict[str, Any] = {"technique": combination}
    if weights is not None:
        if any(not 0.0 <= w <= 1.0 for w in weights) or abs(sum(weights) - 1.0) > 1e-6:
            raise HybridError(f"weights must be in [0, 1] and sum to 1, not {list(weights)}")
        combine["parameters"] = {"weights": [float(w) for w in weights]}
    return {
        "description": f"ltrr: hybrid sub-queries, {normalization} then {combination}",
        "phase_results_processors": [
            {
                "normalization-processor": {
                    "normalization": {"technique": normalization},
                    "combination": combine,
                }
            }
        ],
    }


def pipeline_weights(catalog: Catalog, arms: Sequence[str]) -> list[float]:
    """The catalog's fusion weights of ``arms`` (1 when unset), scaled to sum to 1: the same
    relative weights the proxy's static plan fuses with."""
    raw = [float(catalog.fusion.weights.get(arm, 1.0)) for arm in arms]
    total = sum(raw)
    if total <= 0.0:
        raise HybridError(f"{catalog.path}: the fusion weights of {list(arms)} sum to {total}")
    return [w / total for w in raw]


def rank_constant(catalog: Catalog) -> int:
    """The catalog's RRF k when it fuses by RRF, else OpenSearch's default."""
    fusion = catalog.fusion
    return fusion.k if fusion.method == "rrf" else DEFAULT_RANK_CONSTANT


def pipeline_for(method: str, catalog: Catalog, arms: Sequence[str]) -> dict[str, Any]:
    """``rrf``: RRF with the catalog's k (when it fuses by RRF); ``minmax``: min-max, then the
    arithmetic mean weighted by the catalog's fusion weights."""
    if method == "rrf":
        return rrf_pipeline(rank_constant(catalog))
    if method == "minmax":
        return normalization_pipeline("min_max", "arithmetic_mean", pipeline_weights(catalog, arms))
    raise HybridError(f"hybrid method {method!r}: one of {', '.join(METHODS)}")
