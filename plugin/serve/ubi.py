"""A search's ``ext.ubi``, read and answered as OpenSearch's UBI plugin does.

The plugin takes ``ext.ubi`` (``query_id``, ``client_id``, ``user_query``, ``application``,
``object_id_field``, ``query_attributes``; other keys are ignored), answers ``ext.ubi.query_id``
(the client's, else a new one) and logs the search to ``ubi_queries``. Where the plugin is
absent, OpenSearch refuses ``ext.ubi`` outright ("unknown field [ubi]"), so the proxy takes the
plugin's part: it reads ``ext.ubi`` here, keeps it from OpenSearch, and answers it.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ltrr.plugin.errors import BadRequest
from ltrr.plugin.learn.feedback import MAX_ID_BYTES, id_text
from ltrr.plugin.serve.intercept import strip_ext

# Any search a UBI plugin would log: one target (or a list, or a pattern), or all of them.
ANY_SEARCH_PATH = re.compile(r"^(?:/(?P<target>[^/_][^/]*))?/_search/?$")
TEXT_KEYS = ("client_id", "user_query", "application", "object_id_field")


@dataclass(frozen=True, slots=True)
class UbiRequest:
    """What a search's ``ext.ubi`` asked for; None for what it did not say."""

    query_id: str | None = None
    client_id: str | None = None
    user_query: str | None = None
    application: str | None = None
    object_id_field: str | None = None
    attributes: Mapping[str, Any] = field(default_factory=dict)


def _bad(name: str, rule: str) -> BadRequest:
    return BadRequest(f"[ext.ubi.{name}] must be {rule}", error_type="x_content_parse_exception")


def _query_id(value: object) -> str | None:
    """A string or an integer, as the plugin reads it as text; it becomes an ``_id`` here."""
    if value is None or value == "":
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str):
        raise _bad("query_id", "a string")
    checked = id_text(value)
    if checked is None:
        raise _bad("query_id", f"a non-empty string of at most {MAX_ID_BYTES} bytes")
    return checked


def _text(ubi: Mapping[str, Any], name: str) -> str | None:
    value = ubi.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise _bad(name, "a string")
    if isinstance(value, float) and not math.isfinite(value):
        raise _bad(name, "a string")
    return value if isinstance(value, str) else str(value)


def read_ubi(body: Mapping[str, Any] | None) -> UbiRequest | None:
    """The search's ``ext.ubi``, or None when it has none; a malformed one is a 400."""
    ext = body.get("ext") if body is not None else None
    if not isinstance(ext, Mapping) or "ubi" not in ext:
        return None
    ubi = ext["ubi"]
    if not isinstance(ubi, Mapping):
        raise BadRequest("[ext.ubi] must be an object", error_type="x_content_parse_exception")
    texts = {name: _text(ubi, name) for name in TEXT_KEYS}
    attributes = ubi.get("query_attributes")
    if attributes is not None and not isinstance(attributes, Mapping):
        raise _bad("query_attributes", "an object")
    return UbiRequest(
        query_id=_query_id(ubi.get("query_id")),
        client_id=texts["client_id"],
        user_query=texts["user_query"],
        application=texts["application"],
        object_id_field=texts["object_id_field"],
        attributes=dict(attributes or {}),
    )


def strip_ubi(body: Mapping[str, Any]) -> dict[str, Any]:
    """The body without ``ext.ubi``, which a node without the plugin refuses."""
    return strip_ext(body, "ubi")


def _source_value(source: object, dotted: str) -> object:
    """``a.b`` in ``_source``: the flat key if it is there, else the nested path."""
    if not isinstance(source, Mapping):
        return None
    if dotted in source:
        return source[dotted]
    value: object = source
    for part in dotted.split("."):
        if not isinstance(value, Mapping) or part not in value:
            return None
        value = value[part]
    return value


def shown_ids(hits: Sequence[Any], object_id_field: str | None) -> list[str]:
    """The ids of the hits shown, in order: ``object_id_field`` from each ``_source`` when
    the client named one and the hit has it, else the hit's ``_id``."""
    ids: list[str] = []
    for hit in hits:
        if not isinstance(hit, Mapping):
            continue
        value = _source_value(hit.get("_source"), object_id_field) if object_id_field else None
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            value = hit.get("_id")
        if isinstance(value, str | int | float) and not isinstance(value, bool):
            ids.append(str(value))
    return ids


def decision_attributes(answer: Mapping[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    """What ``query_attributes.ltrr`` keeps of an intercepted answer's decision: enough to
    join UBI's log to the proxy's (``decision_id``) and to weigh its clicks off-policy (each
    arm's inclusion and propensity, the plan drawn and its probability)."""
    ext = answer.get("ext")
    ltrr = ext.get("ltrr") if isinstance(ext, Mapping) else None
    ltrr = ltrr if isinstance(ltrr, Mapping) else {}
    arms = ltrr.get("arms")
    return {
        "decision_id": ltrr.get("decision_id"),
        **extra,
        "policy": ltrr.get("policy"),
        "catalog": ltrr.get("catalog"),
        "fallback": ltrr.get("fallback"),
        "arms": {
            name: {k: info.get(k) for k in ("included", "size", "propensity")}
            for name, info in (arms.items() if isinstance(arms, Mapping) else ())
            if isinstance(info, Mapping)
        },
        "page": ltrr.get("page"),
    }


def with_query_id(answer: dict[str, Any], query_id: str) -> dict[str, Any]:
    """The answer with ``ext.ubi.query_id``, beside whatever ``ext`` it already has."""
    ext = answer.get("ext")
    merged = dict(ext) if isinstance(ext, Mapping) else {}
    merged["ubi"] = {"query_id": query_id}
    return {**answer, "ext": merged}
