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

import orjson

from ltrr.plugin.errors import BadRequest
from ltrr.plugin.learn.feedback import MAX_ID_BYTES, id_text
from ltrr.query_plans.catalog import InterceptRules

SEARCH_PATH = re.compile(r"^/(?P<target>[^/_][^/]*)/_search/?$")

# Body keys and URL parameters the LTR&R path answers exactly; anything else passes through.
BODY_KEYS = frozenset(
    {"query", "size", "from", "_source", "post_filter", "ext", "timeout", "track_total_hits"}
)
PARAMS = frozenset(
    {"q", "size", "from", "_source", "_source_includes", "_source_excludes", "explain", "timeout"}
)
# Bounds on what an intercepted search may carry, since the proxy repeats the text once per
# arm, embeds it and keeps the context with the decision: past them the caller gets a 400.
MAX_QUERY_CHARS = 4096
MAX_CONTEXT_BYTES = 64 * 1024
MAX_CONTEXT_KEYS = 256
MAX_NESTING = 64  # objects and lists in query, post_filter and context
MAX_WINDOW = 10_000  # ``index.max_result_window``'s default: OpenSearch refuses past it too
MAX_INT = 2**31 - 1
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


# Reasons that end in the caller's own words (a parameter or body key name): a metric's label
# keeps only the words before them, so that its values stay bounded.
_CALLER_WORDS = ("parameter ", "body key ")


def reason_kind(reason: str) -> str:
    """A passthrough reason as a bounded label (``body key aggs`` -> ``body key``)."""
    for prefix in _CALLER_WORDS:
        if reason.startswith(prefix):
            return prefix.strip()
    return reason


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
    if isinstance(value, bool) or not 0 <= number <= MAX_INT:
        raise BadRequest(
            f"[{name}] must be an integer from 0 to {MAX_INT}, got [{value}]",
            error_type="illegal_argument_exception",
        )
    return number


def _nesting(value: object) -> int:
    """How deep objects and lists go (a scalar is 0), without recursion."""
    deepest = 0
    stack: list[tuple[object, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        children: Any = (
            item.values() if isinstance(item, Mapping) else item if isinstance(item, list) else ()
        )
        if isinstance(item, Mapping | list):
            depth += 1
            deepest = max(deepest, depth)
            if deepest > MAX_NESTING:
                return deepest
        stack.extend((child, depth) for child in children)
    return deepest


def _bounded(value: object, name: str) -> None:
    if _nesting(value) > MAX_NESTING:
        raise BadRequest(
            f"[{name}] is nested more than {MAX_NESTING} levels deep",
            error_type="x_content_parse_exception",
        )


def _context(ltrr: Mapping[str, Any]) -> dict[str, object]:
    context = ltrr.get("context", {})
    if not isinstance(context, Mapping):  # null included: a context is an object or absent
        raise BadRequest("[ext.ltrr.context] must be an object")
    _bounded(context, "ext.ltrr.context")
    if len(context) > MAX_CONTEXT_KEYS:
        raise BadRequest(
            f"[ext.ltrr.context] has {len(context)} keys, over the limit of {MAX_CONTEXT_KEYS}",
            error_type="illegal_argument_exception",
        )
    size = len(orjson.dumps(context))
    if size > MAX_CONTEXT_BYTES:
        raise BadRequest(
            f"[ext.ltrr.context] is {size} bytes as JSON, over the limit of {MAX_CONTEXT_BYTES}",
            error_type="illegal_argument_exception",
        )
    return dict(context)


def _decision_id(ltrr: Mapping[str, Any], ubi: Mapping[str, Any]) -> str | None:
    """The caller's own id for this search: it becomes an ``_id``, so OpenSearch's cap holds."""
    name, value = (
        ("ext.ltrr.decision_id", ltrr["decision_id"])
        if ltrr.get("decision_id") is not None
        else ("ext.ubi.query_id", ubi.get("query_id"))
    )
    if value is None or value == "":
        return None
    text = str(value) if isinstance(value, int) and not isinstance(value, bool) else value
    decision_id = id_text(text)
    if decision_id is None:
        raise BadRequest(
            f"[{name}] must be a non-empty string of at most {MAX_ID_BYTES} bytes",
            error_type="illegal_argument_exception",
        )
    return decision_id


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


def _mapping(value: Any, name: str) -> Mapping[str, Any] | None:
    """``value`` when it is an object or absent (None); anything else is a 400."""
    if value is not None and not isinstance(value, Mapping):
        raise BadRequest(f"[{name}] must be an object")
    return value


def _explicit_text(
    ltrr: Mapping[str, Any], query: Mapping[str, Any] | None
) -> tuple[str, tuple[Mapping[str, Any], ...]] | PassThrough:
    """``ext.ltrr.query`` names the text; the caller's query may only add filters beside it."""
    text = ltrr["query"]
    if not isinstance(text, str):
        raise BadRequest("[ext.ltrr.query] must be a string")
    if not query:
        return text, ()
    parts = _split_bool(query)
    if parts is not None:
        return text, _filters(parts[1], parts[2])
    if _text_query(query, InterceptRules()) is None and "match_all" not in query:
        return PassThrough("a query other than bool, match or multi_match beside ext.ltrr")
    return text, ()


def _implicit_text(
    query: Mapping[str, Any], rules: InterceptRules
) -> tuple[str, tuple[Mapping[str, Any], ...]] | PassThrough:
    """The text of a single match/multi_match, alone or as the one scoring clause of a bool."""
    text = _text_query(query, rules)
    if text is not None:
        return text, ()
    parts = _split_bool(query)
    if parts is None or len(parts[0]) != 1 or not isinstance(parts[0][0], Mapping):
        return PassThrough("query is not a single match or multi_match")
    text = _text_query(parts[0][0], rules)
    if text is None:
        return PassThrough("query is not a single match or multi_match")
    return text, _filters(parts[1], parts[2])


def _free_text(
    params: Mapping[str, str],
    query: Mapping[str, Any] | None,
    ltrr: Mapping[str, Any] | None,
    rules: InterceptRules,
) -> tuple[str, tuple[Mapping[str, Any], ...]] | PassThrough:
    """The search's text and the caller's filters, or why it is not a free-text search."""
    if ltrr is not None and ltrr.get("query") is not None:
        return _explicit_text(ltrr, query)
    if query:
        return _implicit_text(query, rules)
    if "q" in params and rules.query_string_q:
        if not PLAIN_Q.match(params["q"]):
            return PassThrough("q uses query syntax")
        return params["q"], ()
    return PassThrough("no free-text query")


def _source(body: Mapping[str, Any], params: Mapping[str, str]) -> Any:
    """``_source`` from the body, else from the URL parameters, as OpenSearch reads them."""
    source: Any = body.get("_source")
    if source is not None:
        return source
    if "_source_includes" in params or "_source_excludes" in params:
        return {
            "includes": [s for s in params.get("_source_includes", "").split(",") if s],
            "excludes": [s for s in params.get("_source_excludes", "").split(",") if s],
        }
    if "_source" in params:
        raw = params["_source"]
        return {"true": True, "false": False}.get(raw, raw.split(","))
    return None


def _unsupported(params: Mapping[str, str], body: Mapping[str, Any]) -> PassThrough | None:
    extra_params = sorted(set(params) - PARAMS)
    if extra_params:
        return PassThrough(f"parameter {extra_params[0]}")
    extra_keys = sorted(set(body) - BODY_KEYS)
    if extra_keys:
        return PassThrough(f"body key {extra_keys[0]}")
    return None


def parse_search(
    target: str,
    params: Mapping[str, str],
    body: Mapping[str, Any] | None,
    rules: InterceptRules,
) -> SearchRequest | PassThrough:
    """Read an intercepted ``_search``, or say why it must pass through."""
    body = body or {}
    unsupported = _unsupported(params, body)
    if unsupported is not None:
        return unsupported
    ext = body.get("ext") or {}  # an empty or false ext is no ext, as before
    if not isinstance(ext, Mapping):
        raise BadRequest("[ext] must be an object")
    ltrr: Mapping[str, Any] | None = (
        ext.get("ltrr") if isinstance(ext.get("ltrr"), Mapping) else None
    )
    ubi: Mapping[str, Any] = ext["ubi"] if isinstance(ext.get("ubi"), Mapping) else {}
    found = _free_text(params, _mapping(body.get("query"), "query"), ltrr, rules)
    if isinstance(found, PassThrough):
        return found
    text, filters = found
    if len(text) > MAX_QUERY_CHARS:
        raise BadRequest(
            f"the query text is {len(text)} characters, over the limit of {MAX_QUERY_CHARS}",
            error_type="illegal_argument_exception",
        )
    for name in ("query", "post_filter", "_source"):
        _bounded(body.get(name), name)
    ltrr = ltrr or {}
    size = _int(body.get("size", params.get("size", 10)), "size")
    from_ = _int(body.get("from", params.get("from", 0)), "from")
    if from_ + size > MAX_WINDOW:
        raise BadRequest(
            f"Result window is too large, from + size must be less than or equal to: "
            f"[{MAX_WINDOW}] but was [{from_ + size}]",
            error_type="illegal_argument_exception",
        )
    return SearchRequest(
        target=target,
        query=text,
        context=_context(ltrr),
        filters=filters,
        post_filter=_mapping(body.get("post_filter"), "post_filter"),
        source=_source(body, params),
        size=size,
        from_=from_,
        explain=params.get("explain", "false") == "true" or bool(ltrr.get("explain")),
        decision_id=_decision_id(ltrr, ubi),
        explicit=ltrr.get("query") is not None,
    )


def strip_ext(body: Mapping[str, Any], *names: str) -> dict[str, Any]:
    """The body without those ``ext`` sections, and without ``ext`` once it is empty."""
    out = dict(body)
    ext = out.get("ext")
    if isinstance(ext, Mapping) and any(name in ext for name in names):
        rest = {k: v for k, v in ext.items() if k not in names}
        if rest:
            out["ext"] = rest
        else:
            out.pop("ext")
    return out


def strip_ltrr(body: Mapping[str, Any]) -> dict[str, Any]:
    """The body without ``ext.ltrr``, which OpenSearch itself would reject."""
    return strip_ext(body, "ltrr")
