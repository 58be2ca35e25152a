"""Which searches take the LTR&R path, and what they ask for.

A search is intercepted only when the path can honour it exactly: anything else (aggregations,
``search_after``, scroll, PIT, sorting, highlighting, ...) passes through untouched, because a
fused candidate list cannot answer it faithfully.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ltrr.plugin.errors import BadRequest
from ltrr.query_plans.catalog import InterceptRules

SEARCH_PATH = re.compile(r"^/(?P<target>[^/_][^/]*)/_search/?$")

# Body keys and URL parameters the LTR&R path answers exactly; anything else passes through.
BODY_KEYS = frozenset(
    {"query", "size", "from", "_source", "post_filter", "ext", "timeout", "track_total_hits"}
)
PARAMS = frozenset(
    {"q", "size", "from", "_source", "_source_includes", "_source_excludes", "explain", "timeout"}
)
# ``q`` is Lucene query syntax; only plain words mean the same thing as free text.
PLAIN_Q = re.compile(r"^[\w\s'.,&-]+$")
# The caller's credentials and tracing, used for every upstream call made for the request.
CALLER_HEADERS = ("authorization", "cookie", "x-opaque-id")
CALLER_PREFIXES = ("x-proxy-", "x-forwarded-", "securitytenant")


@dataclass(frozen=True, slots=True)
class SearchRequest:
    target: str
    query: str
    context: Mapping[str, object] = field(default_factory=dict)
    filters: tuple[Mapping[str, Any], ...] = ()
    post_filter: Mapping[str, Any] | None = None
    source: Any = None
    size: int = 10
    from_: int = 0
    explain: bool = False
    decision_id: str | None = None
    explicit: bool = False

    @property
    def depth(self) -> int:
        return self.from_ + self.size


@dataclass(frozen=True, slots=True)
class PassThrough:
    """Why a search on a catalogued target still goes straight to OpenSearch."""

    reason: str


def caller_headers(headers: Mapping[str, str]) -> dict[str, str]:
    return {
        k: v
        for k, v in headers.items()
        if k.lower() in CALLER_HEADERS or k.lower().startswith(CALLER_PREFIXES)
    }


def _int(value: object, name: str) -> int:
    try:
        number = int(str(value))
    except (TypeError, ValueError):
        raise BadRequest(
            f"[{name}] must be an integer, got [{value}]", error_type="illegal_argument_exception"
        ) from None
    if isinstance(value, bool) or number < 0:
        raise BadRequest(
            f"[{name}] must be a non-negative integer, got [{value}]",
            error_type="illegal_argument_exception",
        )
    return number


def _text_of_match(clause: Mapping[str, Any]) -> str | None:
    if len(clause) != 1:
        return None
    ((_, spec),) = clause.items()
    if isinstance(spec, str):
        return spec
    if isinstance(spec, Mapping) and isinstance(spec.get("query"), str):
        return str(spec["query"])
    return None


def _text_query(query: Mapping[str, Any], rules: InterceptRules) -> str | None:
    """The free text of a single ``match``/``multi_match`` query, if that is all it is."""
    if len(query) != 1:
        return None
    ((kind, clause),) = query.items()
    if not isinstance(clause, Mapping):
        return None
    if kind == "match" and rules.match:
        return _text_of_match(clause)
    if kind == "multi_match" and rules.multi_match and isinstance(clause.get("query"), str):
        return str(clause["query"])
    return None


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, list) else [value]


def _split_bool(query: Mapping[str, Any]) -> tuple[list[Any], list[Any], list[Any]] | None:
    """(scoring clauses, filters, must_not) of a bool query, or None if it has other parts."""
    if set(query) != {"bool"} or not isinstance(query["bool"], Mapping):
        return None
    spec = query["bool"]
    if set(spec) - {"must", "should", "filter", "must_not"}:
        return None
    scoring = _as_list(spec.get("must")) + _as_list(spec.get("should"))
    return scoring, _as_list(spec.get("filter")), _as_list(spec.get("must_not"))


def _filters(filters: list[Any], must_not: list[Any]) -> tuple[Mapping[str, Any], ...]:
    out = [f for f in filters if isinstance(f, Mapping)]
    if must_not:
        out.append({"bool": {"must_not": must_not}})
    return tuple(out)


def parse_search(
    target: str,
    params: Mapping[str, str],
    body: Mapping[str, Any] | None,
    rules: InterceptRules,
) -> SearchRequest | PassThrough:
    """Read an intercepted ``_search``, or say why it must pass through."""
    body = body or {}
    extra_params = sorted(set(params) - PARAMS)
    if extra_params:
        return PassThrough(f"parameter {extra_params[0]}")
    extra_keys = sorted(set(body) - BODY_KEYS)
    if extra_keys:
        return PassThrough(f"body key {extra_keys[0]}")
    ext = body.get("ext") or {}
    if not isinstance(ext, Mapping):
        raise BadRequest("[ext] must be an object")
    ltrr = ext.get("ltrr")
    ubi_ext = ext.get("ubi")
    ubi: Mapping[str, Any] = ubi_ext if isinstance(ubi_ext, Mapping) else {}
    query_body = body.get("query")
    if query_body is not None and not isinstance(query_body, Mapping):
        raise BadRequest("[query] must be an object")

    filters: tuple[Mapping[str, Any], ...] = ()
    text: str | None = None
    explicit = isinstance(ltrr, Mapping) and ltrr.get("query") is not None
    if explicit:
        assert isinstance(ltrr, Mapping)
        if not isinstance(ltrr["query"], str):
            raise BadRequest("[ext.ltrr.query] must be a string")
        text = ltrr["query"]
        if query_body:
            parts = _split_bool(query_body)
            if parts is not None:
                filters = _filters(parts[1], parts[2])
            elif (
                _text_query(query_body, InterceptRules()) is None and "match_all" not in query_body
            ):
                return PassThrough("a query other than bool, match or multi_match beside ext.ltrr")
    elif query_body:
        text = _text_query(query_body, rules)
        if text is None:
            parts = _split_bool(query_body)
            if parts is None or len(parts[0]) != 1 or not isinstance(parts[0][0], Mapping):
                return PassThrough("query is not a single match or multi_match")
            text = _text_query(parts[0][0], rules)
            if text is None:
                return PassThrough("query is not a single match or multi_match")
            filters = _filters(parts[1], parts[2])
    elif "q" in params and rules.query_string_q:
        if not PLAIN_Q.match(params["q"]):
            return PassThrough("q uses query syntax")
        text = params["q"]
    if text is None:
        return PassThrough("no free-text query")

    context = ltrr.get("context", {}) if isinstance(ltrr, Mapping) else {}
    if not isinstance(context, Mapping):
        raise BadRequest("[ext.ltrr.context] must be an object")
    decision_id = (ltrr.get("decision_id") if isinstance(ltrr, Mapping) else None) or ubi.get(
        "query_id"
    )
    post_filter = body.get("post_filter")
    if post_filter is not None and not isinstance(post_filter, Mapping):
        raise BadRequest("[post_filter] must be an object")
    source: Any = body.get("_source")
    if source is None and ("_source_includes" in params or "_source_excludes" in params):
        source = {
            "includes": [s for s in params.get("_source_includes", "").split(",") if s],
            "excludes": [s for s in params.get("_source_excludes", "").split(",") if s],
        }
    elif source is None and "_source" in params:
        raw = params["_source"]
        source = {"true": True, "false": False}.get(raw, raw.split(","))
    explain = params.get("explain", "false") == "true" or bool(
        isinstance(ltrr, Mapping) and ltrr.get("explain")
    )
    return SearchRequest(
        target=target,
        query=text,
        context=dict(context),
        filters=filters,
        post_filter=post_filter,
        source=source,
        size=_int(body.get("size", params.get("size", 10)), "size"),
        from_=_int(body.get("from", params.get("from", 0)), "from"),
        explain=explain,
        decision_id=str(decision_id) if decision_id is not None else None,
        explicit=explicit,
    )


def strip_ltrr(body: Mapping[str, Any]) -> dict[str, Any]:
    """The body without ``ext.ltrr``, which OpenSearch itself would reject."""
    out = dict(body)
    ext = out.get("ext")
    if isinstance(ext, Mapping) and "ltrr" in ext:
        rest = {k: v for k, v in ext.items() if k != "ltrr"}
        if rest:
            out["ext"] = rest
        else:
            out.pop("ext")
    return out
