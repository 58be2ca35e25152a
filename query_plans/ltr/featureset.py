"""The LTR plugin featureset a catalog implies, and the two ways to log its values.

Every feature is a query the cluster scores, reading the mustache params that
``query_plans/ltr/params.py`` builds for a search: exactly what the proxy's rerank sends in
``sltr.params``, so a model trained on logged values sees the same inputs when it reranks. The
features cover what the arms know:

- one per arm whose template depends on the query only through its text (rendered once with
  ``{{keywords}}`` in place of the query). An arm that needs a vector, or derives something
  from the query (the memory arm's keys, ``query_norm``), is not a feature itself: ``skipped``
  says why, and the features below carry what it knows;
- ``dense_<field>``: the k-NN plugin's ``knn_score`` of the query vector against each vector
  field a ``needs_vector`` arm searches, over every candidate (the arm itself only scores its
  own top k). The vector is a JSON array param inserted unescaped;
- ``memory_<field>``: the query's Q2E score, exact key plus half the near key (as the memory
  arm weighs them), for the learned and the predicted ``rank_features`` fields;
- one ``rank_feature`` query per ``rank_feature`` field of the catalog's mapping (popularity:
  query-independent);
- one ``match`` of ``{{keywords}}`` per text field of the mapping;
- ``from_<arm>``: 1 when that arm retrieved the candidate in this search (provenance), from an
  ids list param; 0 for an arm not asked.

Logging is DSL only (no HTTP): with the plugin, ``sltr`` plus ``ext.ltr_log``; without it, the
same feature queries in one ``_msearch`` per query, reading each hit's ``_score`` (what
``ltr_log`` reports for a query feature, and 0 where a document does not match).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

from ltrr.bandit.features import EntityDictionary
from ltrr.query_plans.catalog import Arm, Catalog
from ltrr.query_plans.ltr import params as P
from ltrr.query_plans.plan import memory_variables
from ltrr.query_plans.templates import TemplateError, TemplateRenderer

__all__ = [
    "KEYWORDS",
    "LOG_NAME",
    "Feature",
    "FeatureSet",
    "build_featureset",
    "fallback_log_searches",
    "read_fallback_log",
    "read_sltr_log",
    "render_feature",
    "sltr_log_body",
]

KEYWORDS = "{{keywords}}"
LOG_NAME = "logged_featureset"
_LOG_ENTRY = "ltrr_log"
# Characters that survive xgboost's feature names, the plugin's names and a YAML file alike.
_NAME = re.compile(r"[A-Za-z0-9_.-]+")
# Two different stand-ins for the query: an arm whose rendering differs by more than where
# they appear uses the query in a way a mustache string cannot reproduce.
# Mixed case and punctuation, so that any normalisation of them (memory keys, ``query_norm``)
# no longer contains them verbatim.
_SENTINELS = ("Ltrr SENTINEL-Alpha!", "Ltrr SENTINEL-Omega!")


@dataclass(frozen=True, slots=True)
class Feature:
    """One named query clause with mustache params in it: ``{{p}}`` inside a JSON string (the
    plugin escapes the value), ``{{{p}}}`` where a JSON value goes (a string template, since a
    bare placeholder is no JSON)."""

    name: str
    template: Mapping[str, Any] | str
    kind: str  # "arm" | "dense" | "memory" | "popularity" | "text" | "provenance"
    params: tuple[str, ...] = (P.KEYWORDS,)

    def to_json(self) -> dict[str, Any]:
        """The plugin's feature format (mustache over the JSON of the clause)."""
        template = self.template if isinstance(self.template, str) else _plain(self.template)
        return {
            "name": self.name,
            "params": list(self.params),
            "template_language": "mustache",
            "template": template,
        }


@dataclass(frozen=True, slots=True)
class FeatureSet:
    """The featureset, its order (the model's feature order) and what was left out, and why."""

    name: str
    features: tuple[Feature, ...]
    skipped: Mapping[str, str] = field(default_factory=dict)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.features)

    @property
    def description(self) -> str:
        """A human note for the output folder; the plugin's format has no such field."""
        kept = ", ".join(self.names)
        gone = "; ".join(f"{arm}: {why}" for arm, why in self.skipped.items())
        return f"features: {kept}" + (f". Left out: {gone}" if gone else "")

    def body(self) -> dict[str, Any]:
        """What ``POST _ltr/_featureset/{name}`` takes."""
        return {"featureset": {"name": self.name, "features": [f.to_json() for f in self.features]}}

    def digest(self) -> str:
        """Short content hash, so that a featureset name can promise its content."""
        raw = orjson.dumps(self.body()["featureset"]["features"], option=orjson.OPT_SORT_KEYS)
        return hashlib.sha256(raw).hexdigest()[:10]


def _plain(value: Any) -> Any:
    """Read-only mappings (and orjson fragments' absence) made into plain JSON data."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def _substitute(value: Any, old: str, new: str) -> Any:
    if isinstance(value, str):
        return value.replace(old, new)
    if isinstance(value, Mapping):
        return {k: _substitute(v, old, new) for k, v in value.items()}
    if isinstance(value, list):
        return [_substitute(v, old, new) for v in value]
    return value


def render_feature(feature: Feature, params: Mapping[str, str]) -> dict[str, Any]:
    """The clause the plugin would run with ``params``: mustache over the template's JSON text,
    ``{{{p}}}`` unescaped and ``{{p}}`` escaped for the JSON string it stands in."""
    text = (
        feature.template
        if isinstance(feature.template, str)
        else orjson.dumps(_plain(feature.template)).decode()
    )
    for name in feature.params:
        if name not in params:
            raise ValueError(f"feature {feature.name}: missing param {name!r}")
        value = params[name]
        text = text.replace("{{{" + name + "}}}", value)
        text = text.replace("{{" + name + "}}", orjson.dumps(value).decode()[1:-1])
    rendered: dict[str, Any] = orjson.loads(text)
    return rendered


def _arm_template(
    catalog: Catalog, arm: Arm, renderer: TemplateRenderer
) -> tuple[dict[str, Any] | None, str]:
    """The arm's clause with ``{{keywords}}``, or None and the reason it cannot be one."""
    if arm.needs_vector:
        return None, "needs a query vector, which a mustache string parameter cannot carry"
    renders: list[Any] = []
    for sentinel in _SENTINELS:
        try:
            clause = renderer.render(
                arm.template,
                {
                    "query": sentinel,
                    "query_norm": EntityDictionary.normalize(sentinel),
                    "vector": None,
                    "size": arm.max_size,
                    "params": arm.params,
                    "context": {},
                    "memory": memory_variables(catalog.memory, sentinel),
                },
                version=catalog.digest,
            )
        except TemplateError as exc:
            return None, f"its template does not render without a caller context: {exc}"
        renders.append(_substitute(clause, sentinel, KEYWORDS))
    if renders[0] != renders[1]:
        return None, "derives values from the query (e.g. memory keys), not only its text"
    text = orjson.dumps(renders[0]).decode()
    if KEYWORDS not in text:
        return None, "does not use the query text; it would be the same for every query"
    template: dict[str, Any] = renders[0]
    return template, ""


def _mapping_fields(
    properties: Mapping[str, Any], prefix: str = ""
) -> list[tuple[str, str, Mapping[str, Any]]]:
    """(dotted field, type, spec) in mapping order, object properties and multi-fields too."""
    out: list[tuple[str, str, Mapping[str, Any]]] = []
    for name, spec in properties.items():
        if not isinstance(spec, Mapping):
            continue
        path = f"{prefix}{name}"
        kind = spec.get("type", "object" if "properties" in spec else "")
        out.append((path, str(kind), spec))
        if isinstance(spec.get("properties"), Mapping):
            out.extend(_mapping_fields(spec["properties"], f"{path}."))
        if isinstance(spec.get("fields"), Mapping):
            out.extend(_mapping_fields(spec["fields"], f"{path}."))
    return out


def _space_type(spec: Mapping[str, Any]) -> str:
    """The vector field's similarity, as the k-NN plugin names it (its default is l2)."""
    method = spec.get("method")
    if isinstance(method, Mapping) and method.get("space_type"):
        return str(method["space_type"])
    return str(spec.get("space_type") or "l2")


def _dense_feature(path: str, spec: Mapping[str, Any]) -> Feature:
    """``knn_score`` over every candidate: exact, where the arm's HNSW search only ranks its
    own top k. A string template, since the vector is a JSON array, not a string."""
    params = {"field": path, "space_type": _space_type(spec)}
    inner = orjson.dumps(params).decode()[:-1]
    template = (
        '{"script_score": {"query": {"match_all": {}}, "script": {"source": "knn_score", '
        f'"lang": "knn", "params": {inner}, "query_value": {{{{{{{P.QUERY_VECTOR}}}}}}}}}}}}}}}'
    )
    return Feature(f"dense_{path}", template, "dense", (P.QUERY_VECTOR,))


def _memory_feature(field_name: str) -> Feature:
    """The query's Q2E score on one ``rank_features`` field, weighted as the memory arm does."""
    exact = {"rank_feature": {"field": f"{field_name}.{{{{{{{P.MEMORY_EXACT}}}}}}}", "linear": {}}}
    near = {
        "rank_feature": {
            "field": f"{field_name}.{{{{{{{P.MEMORY_NEAR}}}}}}}",
            "linear": {},
            "boost": 0.5,
        }
    }
    return Feature(
        f"memory_{field_name}",
        {"bool": {"should": [exact, near]}},
        "memory",
        (P.MEMORY_EXACT, P.MEMORY_NEAR),
    )


def _provenance_feature(arm: str) -> Feature:
    param = P.provenance_param(arm)
    return Feature(
        f"from_{arm}",
        f'{{"ids": {{"values": {{{{{{{param}}}}}}}}}}}',
        "provenance",
        (param,),
    )


def build_featureset(catalog: Catalog, name: str) -> FeatureSet:
    """The catalog's features in a stable order: arms (catalog order), dense, memory, the
    mapping's rank_feature fields, its text fields (mapping order), then provenance."""
    if not _NAME.fullmatch(name):
        raise ValueError(f"featureset name {name!r}: use letters, digits, _, . and - only")
    renderer = TemplateRenderer()
    features: list[Feature] = []
    skipped: dict[str, str] = {}
    for arm in catalog.arms:
        template, reason = _arm_template(catalog, arm, renderer)
        if template is None:
            skipped[arm.name] = reason
            continue
        features.append(Feature(f"arm_{arm.name}", template, "arm"))
    mappings = (catalog.index_body or {}).get("mappings") or {}
    properties = mappings.get("properties") if isinstance(mappings, Mapping) else None
    fields = _mapping_fields(properties) if isinstance(properties, Mapping) else []
    specs = {path: (kind, spec) for path, kind, spec in fields}
    vector_fields = dict.fromkeys(
        str(arm.params["field"])
        for arm in catalog.arms
        if arm.needs_vector and isinstance(arm.params.get("field"), str)
    )
    for path in vector_fields:
        kind, spec = specs.get(path, ("", {}))
        if kind == "knn_vector":
            features.append(_dense_feature(path, spec))
            for arm in catalog.arms:
                if arm.needs_vector and arm.params.get("field") == path:
                    skipped[arm.name] += f"; dense_{path} scores its vector field instead"
    memory = catalog.memory
    if memory is not None:
        for field_name in dict.fromkeys((memory.field, memory.predicted_field)):
            if specs.get(field_name, ("",))[0] == "rank_features":
                features.append(_memory_feature(field_name))
    for path, kind, _ in fields:
        if kind == "rank_feature":
            clause = {"rank_feature": {"field": path}}
            features.append(Feature(f"popularity_{path}", clause, "popularity"))
    for path, kind, _ in fields:
        if kind == "text":
            features.append(Feature(f"match_{path}", {"match": {path: KEYWORDS}}, "text"))
    if not features:
        raise ValueError(
            f"{catalog.path}: no feature can be built (no text arm, no text or rank_feature"
            " field in index.mappings)"
        )
    features.extend(_provenance_feature(arm.name) for arm in catalog.arms)
    seen: set[str] = set()
    for f in features:
        if not _NAME.fullmatch(f.name):
            raise ValueError(f"feature name {f.name!r}: rename the arm or field (A-Z, 0-9, _.-)")
        if f.name in seen:
            raise ValueError(f"two features would both be named {f.name!r}")
        seen.add(f.name)
    return FeatureSet(name, tuple(features), skipped)


# --- Logging -------------------------------------------------------------------------------


def sltr_log_body(
    featureset: FeatureSet,
    params: Mapping[str, str],
    ids: Sequence[str],
    store: str | None = None,
) -> dict[str, Any]:
    """One search that logs every feature for exactly ``ids`` (LTR plugin present).

    ``sltr`` sits in a filter, so it costs no scoring, and ``missing_as_zero`` makes a feature
    whose query does not match a document log 0, as the fallback does.
    """
    sltr: dict[str, Any] = {
        "_name": LOG_NAME,
        "featureset": featureset.name,
        "params": dict(params),
    }
    if store is not None:
        sltr["store"] = store
    return {
        "size": len(ids),
        "_source": False,
        "track_total_hits": False,
        "query": {"bool": {"filter": [{"ids": {"values": list(ids)}}, {"sltr": sltr}]}},
        "ext": {
            "ltr_log": {
                "log_specs": {
                    "name": _LOG_ENTRY,
                    "named_query": LOG_NAME,
                    "missing_as_zero": True,
                }
            }
        },
    }


def read_sltr_log(
    response: Mapping[str, Any], featureset: FeatureSet
) -> dict[str, tuple[float, ...]]:
    """doc id -> feature values in featureset order, from ``fields._ltrlog``."""
    out: dict[str, tuple[float, ...]] = {}
    for hit in _hits(response):
        logs = (hit.get("fields") or {}).get("_ltrlog") or []
        entry: list[Mapping[str, Any]] = []
        for log in logs:
            if isinstance(log, Mapping) and _LOG_ENTRY in log:
                entry = log[_LOG_ENTRY]
        values = {str(f["name"]): float(f.get("value", 0.0)) for f in entry}
        out[str(hit["_id"])] = tuple(values.get(n, 0.0) for n in featureset.names)
    return out


def fallback_log_searches(
    featureset: FeatureSet, params: Mapping[str, str], ids: Sequence[str]
) -> list[dict[str, Any]]:
    """One search per feature (in featureset order), for one ``_msearch``: the feature's
    query scores the candidates, an ids filter keeps to them without adding to the score."""
    return [
        {
            "size": len(ids),
            "_source": False,
            "track_total_hits": False,
            "query": {
                "bool": {
                    "must": render_feature(f, params),
                    "filter": {"ids": {"values": list(ids)}},
                }
            },
        }
        for f in featureset.features
    ]


def read_fallback_log(
    responses: Sequence[Mapping[str, Any]], featureset: FeatureSet, ids: Sequence[str]
) -> dict[str, tuple[float, ...]]:
    """doc id -> feature values: each feature's ``_score``, 0 where it did not match.

    A failed sub-search raises ``ValueError``: a feature silently logged as 0 everywhere would
    train a model on a lie.
    """
    if len(responses) != len(featureset.features):
        raise ValueError(
            f"{len(responses)} responses for {len(featureset.features)} features; expected one each"
        )
    table = {doc_id: [0.0] * len(featureset.features) for doc_id in ids}
    for column, (feature, response) in enumerate(zip(featureset.features, responses, strict=True)):
        if "error" in response:
            raise ValueError(f"feature {feature.name}: the search failed: {response['error']}")
        shards = response.get("_shards") or {}
        if shards.get("failed"):
            raise ValueError(f"feature {feature.name}: {shards['failed']} shard(s) failed")
        for hit in _hits(response):
            row = table.get(str(hit["_id"]))
            if row is not None and hit.get("_score") is not None:
                row[column] = float(hit["_score"])
    return {doc_id: tuple(values) for doc_id, values in table.items()}


def _hits(response: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    hits = (response.get("hits") or {}).get("hits")
    if not isinstance(hits, list):
        raise ValueError(f"a logging search returned no hits: {str(response)[:300]}")
    return hits
