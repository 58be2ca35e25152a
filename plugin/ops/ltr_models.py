"""``ltrr ltr train``: judgments, candidates, logged features, two models, export and upload.

The steps, each against the real cluster:

1. judgments: qrels from a BEIR folder, or clicks read back from the learning loop's
   ``ltrr-decisions`` (what was shown, in order) and ``ltrr-events`` (what was clicked),
   turned into grades by COEC or PBM;
2. candidates: with clicks, the logged searches themselves (what each one could show, in its
   order, and which arm retrieved what: the provenance the rerank sees when it serves); with
   qrels, every arm of the catalog at ``min(depth, max_size)``, in one ``_msearch`` per query
   built by the proxy's own plan code, fused as the proxy fuses. That order is the baseline a
   model must beat;
3. features: with the LTR plugin, ``sltr`` + ``ltr_log``; without it, the same feature queries
   scored one by one in an ``_msearch`` (values identical to what ``ltr_log`` reports). Both
   read the params the proxy's rerank sends (``query_plans/ltr/params.py``);
4. cross-validation of LambdaMART and a linear model by query, the winner trained on all;
5. export, and upload with the plugin (``{target}_ltr_v{N}``, N one above the highest stored);
   without it, files only, and a plain ``PluginNotInstalled`` message saying so.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import orjson
import yaml

from ltrr.bandit.features import EntityDictionary
from ltrr.plugin.errors import LtrrError, PluginNotInstalled
from ltrr.plugin.learn.bulk import DECISIONS_INDEX, EVENTS_INDEX
from ltrr.plugin.ops.client import Cluster
from ltrr.plugin.ops.cluster import LTR_PLUGIN, ClusterInfo
from ltrr.plugin.ops.data.index import catalog_embedder
from ltrr.plugin.serve.retrieve import read_responses
from ltrr.query_plans.catalog import Catalog, CatalogError, load_catalog
from ltrr.query_plans.fusion import get_fusion
from ltrr.query_plans.ltr.export import createmodel_body, createmodel_path, model_definition
from ltrr.query_plans.ltr.featureset import (
    FeatureSet,
    build_featureset,
    fallback_log_searches,
    read_fallback_log,
    read_sltr_log,
    sltr_log_body,
)
from ltrr.query_plans.ltr.judgments import Impression, Judgments, from_clicks, from_qrels
from ltrr.query_plans.ltr.params import search_params
from ltrr.query_plans.ltr.train import (
    CvResult,
    ModelKind,
    TrainedModel,
    TrainingSet,
    cross_validate,
    ranked_ndcg,
    train_final,
    winner,
)
from ltrr.query_plans.plan import SearchInput, build_plan
from ltrr.query_plans.templates import TemplateRenderer

__all__ = [
    "Candidates",
    "LtrResult",
    "catalog_change",
    "format_result",
    "impressions_from_logs",
    "next_model_version",
    "train_ltr",
]

JudgmentMethod = Literal["qrels", "coec", "pbm"]
# Logged searches kept per query (the latest): repeats of a popular query add little beyond a
# few, and would otherwise outweigh every other query in training.
PER_QUERY = 5
_PAGE = 1000
_TIMEOUT = 120.0
_SAFE = re.compile(r"[^A-Za-z0-9_.-]+")


@dataclass(frozen=True, slots=True)
class Candidates:
    """One list to rank: a query's candidates in their served order, and the params its
    features read. ``group`` is the query id, or one logged search of it."""

    group: str
    query_id: str
    ids: tuple[str, ...]
    params: Mapping[str, str]


@dataclass(frozen=True)
class LtrResult:
    """Everything a caller prints or checks; ``uploaded`` False means files only, and
    ``upload_message`` says why."""

    catalog: Path
    target: str
    judgments: str
    featureset: FeatureSet
    queries: Mapping[str, str]
    lists: tuple[Candidates, ...]
    training: TrainingSet
    logging: Literal["sltr", "fallback"]
    cv: CvResult
    held_out: Mapping[str, float]  # mean nDCG@10 over all queries, out-of-fold scores
    winner: ModelKind
    model: TrainedModel
    model_name: str
    model_type: str
    files: Mapping[str, Path]
    uploaded: bool
    upload_message: str
    catalog_change: str
    warnings: tuple[str, ...]
    report: Path | None = None


# --- judgments -------------------------------------------------------------------------------


def impressions_from_logs(
    decisions: Iterable[Mapping[str, Any]],
    events: Iterable[Mapping[str, Any]],
    positive: Iterable[str],
) -> tuple[list[Impression], dict[str, str]]:
    """(impressions, query id -> query text) from logged decisions and their events.

    The query id is the proxy's normalised query, so "Daft Punk" and "daft punk" pool their
    clicks; the text kept is the first spelling seen. Each returned document is an impression
    at its rank in ``returned``; it counts as clicked when an event of a ``positive`` type
    (a positive reward weight in the catalog) names it in that decision.
    """
    wanted = set(positive)
    clicked: dict[str, set[str]] = {}
    for event in events:
        if event.get("type") in wanted:
            clicked.setdefault(str(event.get("decision_id")), set()).add(str(event["object_id"]))
    impressions: list[Impression] = []
    queries: dict[str, str] = {}
    for decision in decisions:
        text = str(decision.get("query") or "")
        qid = EntityDictionary.normalize(text)
        returned = decision.get("returned") or []
        if not qid or not returned:
            continue
        queries.setdefault(qid, text)
        hits = clicked.get(str(decision.get("decision_id")), set())
        for rank, entry in enumerate(returned, start=1):
            doc_id = str(entry[1] if isinstance(entry, list | tuple) else entry)
            impressions.append(Impression(qid, doc_id, rank, doc_id in hits))
    return impressions, queries


def _read_all(http: Cluster, index: str, query: Mapping[str, Any], key: str) -> list[Any]:
    """Every matching ``_source``, paged by ``search_after`` on a unique keyword."""
    status, _ = http.request("HEAD", f"/{index}")
    if status == 404:
        raise LtrrError(
            f"index {index} does not exist: click judgments need the proxy's learning loop"
            " to have logged decisions and events first"
        )
    out: list[Any] = []
    after: list[Any] | None = None
    while True:
        body: dict[str, Any] = {"size": _PAGE, "query": query, "sort": [{key: "asc"}]}
        if after is not None:
            body["search_after"] = after
        hits = http.ok("POST", f"/{index}/_search", body)["hits"]["hits"]
        out.extend(h["_source"] for h in hits)
        if len(hits) < _PAGE:
            return out
        after = hits[-1]["sort"]


def _click_judgments(
    http: Cluster,
    catalog: Catalog,
    target: str,
    method: Literal["coec", "pbm"],
    decisions_index: str,
    events_index: str,
) -> tuple[Judgments, dict[str, str], list[Any], list[Any]]:
    where = {"term": {"target": target}}
    decisions = _read_all(http, decisions_index, where, "decision_id")
    events = _read_all(http, events_index, where, "event_id")
    positive = [name for name, weight in catalog.feedback.events.items() if weight > 0]
    impressions, queries = impressions_from_logs(decisions, events, positive)
    if not impressions:
        raise LtrrError(f"{decisions_index} holds no decision with results for target {target}")
    return from_clicks(impressions, method=method), queries, decisions, events


def memory_at_decision(
    catalog: Catalog,
    target: str,
    decisions: Sequence[Mapping[str, Any]],
    events: Sequence[Mapping[str, Any]],
    lists: Sequence[Candidates],
) -> dict[str, dict[str, float]]:
    """group -> doc id -> the learned Q2E value the memory feature had when that search was
    made, replayed from the logs with the proxy's own rules.

    The node's learned scores are those of the end of the logs: they hold the very clicks the
    grades are made of, so a model trained on them learns to read its own labels, and leans on
    a feature a fresh or young memory does not have. Searches and engagements are replayed in
    time order; an engagement counts from the moment the proxy received it.
    """
    from ltrr.plugin.ops.replay.memory import ReplayMemory

    if catalog.memory is None:
        return {}
    wanted: dict[str, list[Candidates]] = {}
    for c in lists:
        wanted.setdefault(c.group.rpartition("#")[2], []).append(c)
    query_of = {str(d["decision_id"]): str(d.get("query") or "") for d in decisions}
    timeline: list[tuple[float, int, str, Mapping[str, Any]]] = []
    for d in decisions:
        timeline.append((float(d.get("timestamp") or 0.0), 0, str(d["decision_id"]), d))
    for e in events:
        weight = e.get("weight")
        if isinstance(weight, int | float) and weight > 0 and str(e.get("decision_id")) in query_of:
            when = float(e.get("received") or e.get("timestamp") or 0.0)
            timeline.append((when, 1, str(e.get("event_id")), e))
    timeline.sort(key=lambda item: (item[0], item[1], item[2]))
    memory = ReplayMemory(catalog.memory, target)
    out: dict[str, dict[str, float]] = {}
    for when, kind, _, doc in timeline:
        if kind == 1:
            query = query_of[str(doc["decision_id"])]
            memory.engaged(query, str(doc["object_id"]), float(doc["weight"]), when)
            continue
        query = str(doc.get("query") or "")
        for c in wanted.get(str(doc["decision_id"]), ()):
            learned = memory.learned(query)
            out[c.group] = {doc_id: learned.get(doc_id, 0.0) for doc_id in c.ids}
        memory.searched(query, when)
    return out


def _qrels_judgments(dataset: Path | None) -> tuple[Judgments, dict[str, str]]:
    if dataset is None:
        raise LtrrError("qrels judgments need --dataset, a BEIR folder with qrels")
    from ltrr.plugin.ops.data.beir import read_beir

    beir = read_beir(dataset, split=None)
    queries = {qid: beir.queries[qid].text for qid in beir.qrels if qid in beir.queries}
    if not queries:
        raise LtrrError(f"{dataset}: no judged query has a text in queries.jsonl")
    return from_qrels({qid: beir.qrels[qid] for qid in queries}), queries


# --- candidates and features ----------------------------------------------------------------


def _candidates(
    http: Cluster,
    catalog: Catalog,
    target: str,
    queries: Mapping[str, str],
    depth: int,
    warnings: list[str],
) -> list[Candidates]:
    """The fused candidates per query, as the proxy would find them with every arm asked.

    The judged documents are NOT added: a document present only because it is judged would
    teach the model "being a candidate at all means relevant", and the held-out numbers would
    no longer say what the model does to real candidates.
    """
    renderer = TemplateRenderer()
    fusion = get_fusion(catalog.fusion)
    sizes = {arm.name: min(depth, arm.max_size) for arm in catalog.arms}
    embedder = catalog_embedder(catalog)
    out: list[Candidates] = []
    try:
        for qid, text in queries.items():
            vector = embedder.embed(text) if embedder is not None else None
            request = SearchInput.of(
                target,
                text,
                source=False,
                vector=vector,
            )
            plan = build_plan(catalog, sizes, request, renderer, timeout_ms=int(_TIMEOUT * 1000))
            for arm, reason in plan.failures.items():
                warnings.append(f"query {qid}: arm {arm} not run: {reason}")
            if not plan.searches:
                continue
            payload = http.ok("POST", "/_msearch", ndjson=plan.ndjson())
            results = {}
            for arm, result in read_responses(plan, payload["responses"], strict=True).items():
                if result.ok:
                    results[arm] = result.hits
                else:
                    warnings.append(f"query {qid}: arm {arm} failed: {result.error}")
            fused = fusion(results, catalog.fusion.weights)
            retrieved = {arm: [hit.id for hit in hits] for arm, hits in results.items()}
            params = search_params(catalog, text, vector=vector, retrieved=retrieved)
            ids = tuple(dict.fromkeys(hit.id for hit in fused))
            out.append(Candidates(qid, qid, ids, params))
    finally:
        if embedder is not None:
            embedder.close()
    return out


def logged_candidates(
    catalog: Catalog,
    decisions: Sequence[Mapping[str, Any]],
    vectors: Callable[[str], Sequence[float] | None],
    per_query: int = PER_QUERY,
) -> list[Candidates]:
    """The latest ``per_query`` logged searches of each query, as the proxy served them.

    Each keeps what it could show (``returned``, in order) and what each arm that answered
    retrieved, so the provenance features are logged as the rerank will see them; a failed
    arm retrieved nothing. ``vectors`` gives a query's vector (None without an embedder).
    """
    by_query: dict[str, list[Mapping[str, Any]]] = {}
    for doc in sorted(decisions, key=lambda d: (float(d.get("timestamp") or 0), d["decision_id"])):
        text = str(doc.get("query") or "")
        qid = EntityDictionary.normalize(text)
        if qid and doc.get("returned"):
            by_query.setdefault(qid, []).append(doc)
    out: list[Candidates] = []
    for qid, docs in by_query.items():
        for doc in docs[-per_query:]:
            text = str(doc["query"])
            ids = tuple(dict.fromkeys(str(entry[1]) for entry in doc["returned"]))
            retrieved = {
                arm: [str(i) for i in info.get("results") or ()]
                for arm, info in (doc.get("arms") or {}).items()
                if info.get("ok") and info.get("included")
            }
            params = search_params(catalog, text, vector=vectors(text), retrieved=retrieved)
            out.append(Candidates(f"{qid}#{doc['decision_id']}", qid, ids, params))
    return out


def _vector_cache(catalog: Catalog) -> tuple[Callable[[str], Sequence[float] | None], Any]:
    """A query -> vector function that embeds each text once, and the embedder to close."""
    embedder = catalog_embedder(catalog)
    cache: dict[str, Sequence[float] | None] = {}

    def vector(text: str) -> Sequence[float] | None:
        if embedder is None:
            return None
        if text not in cache:
            cache[text] = embedder.embed(text)
        return cache[text]

    return vector, embedder


def log_features(
    http: Cluster,
    featureset: FeatureSet,
    index: str,
    lists: Sequence[Candidates],
    *,
    plugin: bool,
    store: str | None,
) -> dict[str, dict[str, tuple[float, ...]]]:
    """group -> doc id -> feature values, each list logged with its own params."""
    out: dict[str, dict[str, tuple[float, ...]]] = {}
    for c in lists:
        if not c.ids:
            continue
        if plugin:
            body = sltr_log_body(featureset, c.params, c.ids, store)
            logged = read_sltr_log(http.ok("POST", f"/{index}/_search", body), featureset)
        else:
            lines = bytearray()
            for search in fallback_log_searches(featureset, c.params, c.ids):
                lines += orjson.dumps({"index": index}) + b"\n" + orjson.dumps(search) + b"\n"
            payload = http.ok("POST", "/_msearch", ndjson=bytes(lines))
            try:
                logged = read_fallback_log(payload["responses"], featureset, c.ids)
            except ValueError as exc:
                raise LtrrError(f"logging features for query {c.query_id}: {exc}") from exc
        out[c.group] = logged
    return out


def _with_column(
    logged: Mapping[str, Mapping[str, tuple[float, ...]]],
    column: int,
    values: Mapping[str, Mapping[str, float]],
) -> dict[str, dict[str, tuple[float, ...]]]:
    """The logged rows with one feature replaced by ``values`` (0 where it has none)."""
    out: dict[str, dict[str, tuple[float, ...]]] = {}
    for group, rows in logged.items():
        given = values.get(group, {})
        out[group] = {
            doc_id: (*row[:column], given.get(doc_id, 0.0), *row[column + 1 :])
            for doc_id, row in rows.items()
        }
    return out


def _training_set(
    featureset: FeatureSet,
    judgments: Judgments,
    lists: Sequence[Candidates],
    logged: Mapping[str, Mapping[str, tuple[float, ...]]],
) -> TrainingSet:
    """One group per list; every list of a query shares its grades and its fold."""
    rows: list[tuple[float, ...]] = []
    y: list[int] = []
    groups: list[str] = []
    queries: list[str] = []
    docs: list[str] = []
    judged: dict[str, Mapping[str, int]] = {}
    zero = (0.0,) * len(featureset.names)
    for c in lists:
        values = logged.get(c.group, {})
        if c.query_id in judgments.grades:
            judged[c.group] = judgments.grades[c.query_id]
        for doc_id in c.ids:
            rows.append(values.get(doc_id, zero))  # a candidate deleted meanwhile logs nothing
            y.append(judgments.grade(c.query_id, doc_id))
            groups.append(c.group)
            queries.append(c.query_id)
            docs.append(doc_id)
    if not rows:
        raise LtrrError("no query found any candidate: nothing to train on")
    return TrainingSet(
        X=np.asarray(rows, dtype=np.float32),
        y=np.asarray(y, dtype=np.int32),
        query_ids=tuple(groups),
        doc_ids=tuple(docs),
        feature_names=featureset.names,
        judged=judged,
        fold_keys=tuple(queries),
    )


# --- upload ----------------------------------------------------------------------------------


def next_model_version(names: Iterable[str], base: str) -> int:
    """One above the highest ``{base}_v{N}`` among ``names`` (1 when there is none)."""
    pattern = re.compile(rf"{re.escape(base)}_v(\d+)")
    versions = [int(m.group(1)) for n in names if (m := pattern.fullmatch(n))]
    return max(versions, default=0) + 1


def _stored_models(http: Cluster, base: str, store: str | None) -> list[str]:
    prefix = f"/_ltr/{store}" if store else "/_ltr"
    status, payload = http.request("GET", f"{prefix}/_model?prefix={base}&size=10000")
    if status == 404:
        return []
    if status >= 300:
        raise LtrrError(f"listing LTR models answered {status}: {str(payload)[:300]}")
    names: list[str] = []
    for hit in (payload.get("hits") or {}).get("hits", []):
        name = (hit.get("_source") or {}).get("name")
        if not name and str(hit.get("_id", "")).startswith("model-"):
            name = str(hit["_id"])[len("model-") :]
        if name:
            names.append(str(name))
    return names


def _ensure_featureset(http: Cluster, featureset: FeatureSet, store: str | None) -> None:
    """The store, then the featureset; its name carries a content digest, so one that exists
    already holds exactly these features."""
    stores = http.ok("GET", "/_ltr").get("stores") or {}
    if (store or "_default_") not in stores:
        http.ok("PUT", f"/_ltr/{store}" if store else "/_ltr")
    prefix = f"/_ltr/{store}" if store else "/_ltr"
    status, payload = http.request("GET", f"{prefix}/_featureset/{featureset.name}")
    if status == 404 or not payload.get("found", status < 300):
        http.ok("POST", f"{prefix}/_featureset/{featureset.name}", featureset.body())


def catalog_change(catalog: Catalog, model_name: str) -> str:
    """The ``rerank:`` section to put in the catalog (store and window kept if already set)."""
    current = catalog.rerank
    section: dict[str, Any] = {
        "model": model_name,
        "store": current.store if current else None,
        "window": current.window if current else None,
    }
    if current and current.params:
        section["params"] = dict(current.params)
    text: str = yaml.safe_dump({"rerank": section}, sort_keys=False, default_flow_style=False)
    return text


def _safe(name: str) -> str:
    return _SAFE.sub("_", name).strip("_") or "target"


# --- the command -----------------------------------------------------------------------------


def train_ltr(
    catalog_path: Path,
    dataset: Path | None,
    *,
    opensearch: str,
    judgments: JudgmentMethod,
    decisions_index: str = DECISIONS_INDEX,
    events_index: str = EVENTS_INDEX,
    depth: int = 100,
    folds: int = 5,
    out: Path,
    seed: int,
    report: Path | None,
    cluster: Cluster | None = None,
    target: str | None = None,
    held_out: Iterable[str] = (),
) -> LtrResult:
    """Train, compare, export and (with the plugin) upload a reranker for one catalog.

    ``target`` is the index whose logs and documents are read (default: the catalog's), e.g. a
    simulation's copy; the model is named after the catalog's target, which it serves.
    ``held_out`` names query texts never trained on, so that a later run can measure the
    model on queries it has not seen.
    ``cluster`` is injected by tests; by default one is made for ``opensearch``."""
    if depth < 1:
        raise LtrrError(f"depth must be at least 1, got {depth}")
    if judgments not in ("qrels", "coec", "pbm"):
        raise LtrrError(f"judgments must be qrels, coec or pbm, got {judgments!r}")
    try:
        catalog = load_catalog(catalog_path)
    except CatalogError as exc:
        raise LtrrError(str(exc)) from exc
    http = cluster if cluster is not None else Cluster(opensearch, timeout=_TIMEOUT)
    info = ClusterInfo.fetch(http)
    plugin = info.has_plugin(LTR_PLUGIN)
    base = f"{_safe(catalog.targets[0])}_ltr"
    target = target or catalog.targets[0]
    store = catalog.rerank.store if catalog.rerank else None
    warnings: list[str] = []

    decisions: list[Any] = []
    events: list[Any] = []
    if judgments == "qrels":
        judged, queries = _qrels_judgments(dataset)
    else:
        judged, queries, decisions, events = _click_judgments(
            http, catalog, target, judgments, decisions_index, events_index
        )
    try:
        draft = build_featureset(catalog, "draft")
        featureset = build_featureset(
            catalog, f"{_safe(catalog.targets[0])}_features_{draft.digest()}"
        )
    except ValueError as exc:
        raise LtrrError(str(exc)) from exc
    for arm, reason in featureset.skipped.items():
        warnings.append(f"arm {arm} is not a feature: {reason}")

    if judgments == "qrels":
        lists = _candidates(http, catalog, target, queries, depth, warnings)
    else:
        vectors, embedder = _vector_cache(catalog)
        try:
            lists = logged_candidates(catalog, decisions, vectors)
        finally:
            if embedder is not None:
                embedder.close()
    unseen = {EntityDictionary.normalize(text) for text in held_out}
    if unseen:
        kept = [c for c in lists if c.query_id not in unseen]
        warnings.append(
            f"held out {len(lists) - len(kept)} of {len(lists)} lists"
            f" ({len({c.query_id for c in lists} & unseen)} queries)"
        )
        lists = kept
    if plugin:
        _ensure_featureset(http, featureset, store)
    logged = log_features(http, featureset, target, lists, plugin=plugin, store=store)
    learned = f"memory_{catalog.memory.field}" if catalog.memory is not None else ""
    if judgments != "qrels" and learned in featureset.names:
        at_decision = memory_at_decision(catalog, target, decisions, events, lists)
        logged = _with_column(logged, featureset.names.index(learned), at_decision)
        warnings.append(
            f"{learned}: the values each search saw, replayed from the logs, not the node's"
            " current ones (which hold the clicks the grades are made of)"
        )
    training = _training_set(featureset, judged, lists, logged)
    try:
        cv = cross_validate(training, folds=folds, seed=seed)
    except ValueError as exc:
        raise LtrrError(f"cannot cross-validate: {exc}") from exc
    out_of_fold = {
        kind: float(np.mean(list(ranked_ndcg(training, m.oof_scores).values()) or [np.nan]))
        for kind, m in cv.models.items()
    }
    best = winner(cv)
    model = train_final(training, best, seed=seed)
    model_type, definition = model_definition(model)

    out.mkdir(parents=True, exist_ok=True)
    if plugin:
        version = next_model_version(_stored_models(http, base, store), base)
    else:
        version = next_model_version((p.name.split(".")[0] for p in out.glob("*.json")), base)
    model_name = f"{base}_v{version}"
    body = createmodel_body(model_name, model_type, definition, featureset)
    change = catalog_change(catalog, model_name)
    files = {
        "featureset": out / f"{featureset.name}.featureset.json",
        "model": out / f"{model_name}.json",
        "definition": out / f"{model_name}.definition.json",
        "catalog_change": out / f"{model_name}.rerank.yml",
    }
    # Exactly what the plugin takes, so that it can be POSTed as it is; the note goes beside it.
    files["featureset"].write_bytes(orjson.dumps(featureset.body(), option=orjson.OPT_INDENT_2))
    files["notes"] = out / f"{featureset.name}.featureset.txt"
    files["notes"].write_text(featureset.description + "\n", encoding="utf-8")
    files["model"].write_bytes(orjson.dumps(body, option=orjson.OPT_INDENT_2))
    files["definition"].write_text(definition, encoding="utf-8")
    files["catalog_change"].write_text(change, encoding="utf-8")

    if plugin:
        http.ok("POST", createmodel_path(featureset.name, store), body)
        uploaded, message = True, f"uploaded model {model_name} (featureset {featureset.name})"
    else:
        reason = f"LTR plugin not installed on {opensearch}"
        try:
            info.require(LTR_PLUGIN)
        except PluginNotInstalled as exc:
            reason = str(exc)
        uploaded = False
        message = (
            f"not uploaded: {reason}. Uploading needs the LTR plugin; the featureset and"
            f" model are in {out}: POST the featureset to _ltr/_featureset/"
            f"{featureset.name}, then {files['model'].name} to"
            f" {createmodel_path(featureset.name, store)}"
        )
    result = LtrResult(
        catalog=Path(catalog_path),
        target=target,
        judgments=judgments,
        featureset=featureset,
        queries=dict(queries),
        lists=tuple(lists),
        training=training,
        logging="sltr" if plugin else "fallback",
        cv=cv,
        held_out=out_of_fold,
        winner=best,
        model=model,
        model_name=model_name,
        model_type=model_type,
        files=files,
        uploaded=uploaded,
        upload_message=message,
        catalog_change=change,
        warnings=tuple(warnings),
        report=report,
    )
    if report is not None:
        _write_report(result, report)
    return result


def _baseline(result: LtrResult) -> str:
    """What the candidates' own order is: fused (qrels), or as served (logged searches, which a
    rerank live at the time had already reordered)."""
    return "fused order" if result.judgments == "qrels" else "order served"


def format_result(result: LtrResult) -> str:
    """What ``ltrr ltr train`` prints."""
    ts = result.training
    lines = [
        f"catalog:    {result.catalog} (target {result.target})",
        f"judgments:  {result.judgments}; {len(set(ts.fold_keys or ts.query_ids))} queries,"
        f" {len(ts.groups())} lists, {len(ts.doc_ids)} candidates",
        f"features:   {', '.join(result.featureset.names)}",
        f"logging:    {'sltr + ltr_log' if result.logging == 'sltr' else 'fallback _msearch'}",
        f"cv:         {result.cv.folds} folds by query, nDCG@10 over"
        f" {result.cv.evaluated_queries} lists with a relevant document",
        f"  baseline ({_baseline(result)})  {result.cv.baseline_ndcg:.4f}",
    ]
    for kind, m in result.cv.models.items():
        folds = " ".join(f"{v:.3f}" for v in m.fold_ndcg)
        mark = "  <- winner" if kind == result.winner else ""
        lines.append(f"  {kind:<22}  {m.mean_ndcg:.4f}  [{folds}]{mark}")
    held = ", ".join(f"{k} {v:.4f}" for k, v in result.held_out.items())
    lines.append(f"held out:   all queries reranked by out-of-fold scores: {held}")
    lines.append(f"model:      {result.model_name} ({result.model_type})")
    lines.append(f"upload:     {result.upload_message}")
    lines.extend(f"warning:    {w}" for w in result.warnings)
    lines.append("catalog change:")
    lines.extend("  " + line for line in result.catalog_change.rstrip().splitlines())
    return "\n".join(lines)


def _write_report(result: LtrResult, path: Path) -> None:
    from ltrr.plugin.ops.html import Report, new_figure

    cv = result.cv
    r = Report(f"LTR training: {result.target}", f"{result.catalog.name}, {result.judgments}")
    r.verdict(
        f"{result.winner} wins with mean CV nDCG@10 {cv.models[result.winner].mean_ndcg:.3f}"
        f" against {cv.baseline_ndcg:.3f} for the {_baseline(result)} without this rerank."
    )
    r.heading("Cross-validation (nDCG@10 per fold, held-out queries)")
    headers = ["model", "mean", *(f"fold {i + 1}" for i in range(len(cv.baseline_folds)))]
    rows: list[list[object]] = [
        [f"baseline ({_baseline(result)})", cv.baseline_ndcg, *cv.baseline_folds]
    ]
    kinds = list(cv.models)
    for kind in kinds:
        rows.append([kind, cv.models[kind].mean_ndcg, *cv.models[kind].fold_ndcg])
    r.table(headers, rows, "Folds by query (GroupKFold).", highlight=1 + kinds.index(result.winner))
    r.heading("Feature importances")
    importances = result.model.importances()
    fig = new_figure(8, max(2.0, 0.35 * len(importances)))
    ax = fig.add_subplot(1, 1, 1)
    names = list(importances)
    ax.barh(names, [importances[n] for n in names])
    ax.invert_yaxis()
    ax.set_xlabel("total gain" if result.winner == "lambdamart" else "|weight| x feature std")
    r.figure(fig, f"{result.model_name}: importance per feature")
    if result.featureset.skipped:
        r.paragraph(result.featureset.description)
    r.heading("Catalog change")
    r.paragraph(result.upload_message)
    r.paragraph(result.catalog_change)
    r.write(path)
