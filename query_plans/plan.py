"""Render the included arms into ONE ``_msearch``: the plan sees arms and sizes, never a policy.

Each arm's template renders one query clause; the plan wraps it with the caller's filters,
``post_filter`` and ``_source``, the arm's size and a per-search timeout. A knn clause takes the
filters inside itself (lucene's efficient filtering), so that k nearest neighbours are found
among the allowed documents rather than filtered away afterwards.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import orjson

from ltrr.bandit.features import EntityDictionary
from ltrr.query_plans.catalog import Catalog, MemoryConfig
from ltrr.query_plans.memory import keys
from ltrr.query_plans.templates import Encoded, TemplateError, TemplateRenderer


@dataclass(frozen=True, slots=True)
class ArmSearch:
    arm: str
    index: str
    body: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class Plan:
    """The sub-searches in ``_msearch`` order, and the arms that could not even be rendered."""

    searches: tuple[ArmSearch, ...]
    failures: Mapping[str, str] = field(default_factory=dict)

    def ndjson(self) -> bytes:
        lines = bytearray()
        for search in self.searches:
            lines += orjson.dumps({"index": search.index})
            lines += b"\n"
            lines += orjson.dumps(search.body)
            lines += b"\n"
        return bytes(lines)


@dataclass(frozen=True, slots=True)
class SearchInput:
    """What the caller asked, as every arm must honour it."""

    target: str
    query: str
    query_norm: str
    context: Mapping[str, object] = field(default_factory=dict)
    filters: Sequence[Mapping[str, Any]] = ()
    post_filter: Mapping[str, Any] | None = None
    source: Any = None
    vector: Sequence[float] | None = None

    @classmethod
    def of(cls, target: str, query: str, **caller: Any) -> SearchInput:
        """The input for ``query`` with its normalised form (what the memory arm looks up)."""
        return cls(
            target=target, query=query, query_norm=EntityDictionary.normalize(query), **caller
        )


@lru_cache(maxsize=4096)
def _vector_json(vector: tuple[float, ...]) -> bytes:
    """Printing 384 floats costs more than the rest of a plan; a repeated query pays it once."""
    return orjson.dumps(vector)


def _with_filters(clause: dict[str, Any], filters: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    if not filters:
        return clause
    if set(clause) == {"knn"} and isinstance(clause["knn"], dict) and len(clause["knn"]) == 1:
        ((field_name, spec),) = clause["knn"].items()
        spec = dict(spec)
        own = [spec["filter"]] if "filter" in spec else []
        combined = [*own, *filters]
        spec["filter"] = combined[0] if len(combined) == 1 else {"bool": {"filter": combined}}
        return {"knn": {field_name: spec}}
    return {"bool": {"must": [clause], "filter": list(filters)}}


def memory_variables(config: MemoryConfig | None, query: str) -> dict[str, Any]:
    """What the memory template reads: the fields and the query's two keys."""
    config = config or MemoryConfig()
    exact, near = keys(query)
    return {
        "field": config.field,
        "predicted_field": config.predicted_field,
        "predicted_weight": config.predicted_weight,
        "exact": exact,
        "near": near,
    }


def build_plan(
    catalog: Catalog,
    sizes: Mapping[str, int],
    request: SearchInput,
    renderer: TemplateRenderer,
    *,
    timeout_ms: int,
) -> Plan:
    """One sub-search per arm in ``sizes`` (catalog order); a render failure fails only that arm."""
    searches: list[ArmSearch] = []
    failures: dict[str, str] = {}
    vector = Encoded(_vector_json(tuple(request.vector))) if request.vector is not None else None
    memory = memory_variables(catalog.memory, request.query)
    for arm in catalog.arms:
        size = sizes.get(arm.name, 0)
        if size <= 0:
            continue
        if arm.needs_vector and request.vector is None:
            failures[arm.name] = "no query vector"
            continue
        try:
            clause = renderer.render(
                arm.template,
                {
                    "query": request.query,
                    "query_norm": request.query_norm,
                    "vector": vector,
                    "size": size,
                    "params": arm.params,
                    "context": request.context,
                    "memory": memory,
                },
                version=catalog.digest,
            )
        except TemplateError as exc:
            failures[arm.name] = str(exc)
            continue
        body: dict[str, Any] = {
            "query": _with_filters(clause, request.filters),
            "size": size,
            "timeout": f"{timeout_ms}ms",
            "track_total_hits": False,
        }
        if request.post_filter is not None:
            body["post_filter"] = request.post_filter
        source = request.source if request.source is not None else catalog.source
        if source is not None:
            body["_source"] = source
        searches.append(ArmSearch(arm.name, arm.index or request.target, body))
    return Plan(tuple(searches), failures)
