"""What the real node answers for every judged query, captured once so plans can be replayed.

For each query: every arm's full list (its max size) from one ``_msearch`` built exactly as the
proxy builds it, and the pages of OpenSearch's own hybrid query (RRF and min-max, through search
pipelines, at the catalog's budget). Any plan's page is then a pure function of these lists and
the catalog's fusion: the top k of an arm's list is what asking it for k returns. Replaying the
lists instead of asking again is what makes a simulation the same on every machine under any
load, and what lets the oracle try every plan for every query.

The capture is kept on disk, keyed by the cluster, the index (its uuid, so a rebuilt index is
never mistaken for the old one), the catalog and the dataset.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from ltrr.plugin.errors import LtrrError
from ltrr.plugin.ops.client import Cluster
from ltrr.plugin.ops.data.beir import BeirDataset
from ltrr.plugin.ops.data.index import catalog_embedder
from ltrr.plugin.ops.simulate import cluster_ops
from ltrr.plugin.serve.retrieve import read_responses
from ltrr.query_plans.catalog import Catalog
from ltrr.query_plans.fusion.base import ArmHit
from ltrr.query_plans.hybrid import build_hybrid, even_depth, pipeline_for, sub_query_arms
from ltrr.query_plans.plan import SearchInput, build_plan
from ltrr.query_plans.templates import TemplateRenderer

FORMAT = 1
NATIVE_METHODS = ("rrf", "minmax")
_TIMEOUT_MS = 30_000


@dataclass(frozen=True, slots=True)
class QueryCapture:
    """One query: each arm's full list, and each native hybrid method's ranked ids."""

    lists: Mapping[str, tuple[ArmHit, ...]]
    natives: Mapping[str, tuple[str, ...]]


@dataclass(frozen=True, slots=True)
class Capture:
    index: str
    key: str
    queries: Mapping[str, QueryCapture]
    native_candidates: int  # what one native hybrid search retrieves (arms x depth)
    entities: tuple[str, ...] = ()  # the entity field's values (the entity features read them)

    def to_json(self) -> bytes:
        return orjson.dumps(
            {
                "format": FORMAT,
                "index": self.index,
                "key": self.key,
                "native_candidates": self.native_candidates,
                "entities": list(self.entities),
                "queries": {
                    qid: {
                        "lists": {
                            arm: [[h.index, h.id, h.score] for h in hits]
                            for arm, hits in q.lists.items()
                        },
                        "natives": {m: list(ids) for m, ids in q.natives.items()},
                    }
                    for qid, q in self.queries.items()
                },
            }
        )

    @classmethod
    def from_json(cls, raw: bytes) -> Capture:
        data = orjson.loads(raw)
        if data.get("format") != FORMAT:
            raise LtrrError("capture of another format")
        queries = {
            qid: QueryCapture(
                lists={
                    arm: tuple(
                        ArmHit(str(index), str(doc), float(score), rank)
                        for rank, (index, doc, score) in enumerate(hits, start=1)
                    )
                    for arm, hits in q["lists"].items()
                },
                natives={m: tuple(ids) for m, ids in q["natives"].items()},
            )
            for qid, q in data["queries"].items()
        }
        return cls(
            data["index"],
            data["key"],
            queries,
            int(data["native_candidates"]),
            tuple(data.get("entities", ())),
        )


def capture_key(http: Cluster, index: str, catalog: Catalog, data: BeirDataset) -> str:
    """Cluster, index uuid and segments, catalog digest and dataset: a change in any is a new
    capture (a merge keeps the uuid but can change what an approximate search finds)."""
    info = http.ok("GET", "/")
    settings = http.ok("GET", f"/{index}/_settings")
    uuid = next(iter(settings.values()))["settings"]["index"]["uuid"]
    stats = http.ok("GET", f"/{index}/_stats/segments,docs")["_all"]["primaries"]
    parts = [
        str(info.get("cluster_uuid", "")),
        index,
        str(uuid),
        f"{stats['segments']['count']} segments, {stats['docs']['count']} documents",
        catalog.digest,
        str(data.path.resolve()),
        data.split,
    ]
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:20]


def _arm_lists(
    http: Cluster,
    catalog: Catalog,
    index: str,
    text: str,
    vector: Sequence[float] | None,
    renderer: TemplateRenderer,
) -> dict[str, tuple[ArmHit, ...]]:
    request = SearchInput.of(index, text, source=False, vector=vector)
    sizes = {arm.name: arm.max_size for arm in catalog.arms}
    plan = build_plan(catalog, sizes, request, renderer, timeout_ms=_TIMEOUT_MS)
    if plan.failures:
        raise LtrrError(f"query {text!r}: arms not run: {dict(plan.failures)}")
    payload = http.ok("POST", "/_msearch", ndjson=plan.ndjson())
    out: dict[str, tuple[ArmHit, ...]] = {}
    for arm, result in read_responses(plan, payload["responses"], strict=True).items():
        if not result.ok:
            raise LtrrError(f"query {text!r}: arm {arm} failed: {result.error}")
        out[arm] = tuple(result.hits)
    return out


def native_request(
    catalog: Catalog,
    index: str,
    text: str,
    vector: Sequence[float] | None,
    renderer: TemplateRenderer,
    depth: int,
    size: int,
    pipeline: str,
    *,
    source: Any = False,
) -> tuple[str, dict[str, Any]]:
    """The path and body of OpenSearch's hybrid search for ``text`` through ``pipeline``
    (``source``: the ``_source`` asked for; None: the catalog's, as the proxy asks)."""
    request = SearchInput.of(index, text, source=source, vector=vector)
    query = build_hybrid(catalog, request, renderer, depth=depth, size=size)
    return f"/{index}/_search?search_pipeline={pipeline}", orjson.loads(query.json())


@contextmanager
def native_pipelines(
    http: Cluster, catalog: Catalog, arms: Sequence[str], prefix: str
) -> Iterator[dict[str, str]]:
    """One search pipeline per native method (``{prefix}-{method}``), removed on the way out."""
    names = {m: f"{prefix}-{m}" for m in NATIVE_METHODS}
    try:
        for method, name in names.items():
            cluster_ops.put_pipeline(http, name, pipeline_for(method, catalog, arms))
        yield names
    finally:
        cluster_ops.delete_pipelines(http, list(names.values()))  # a missing one is fine


def capture(
    http: Cluster,
    catalog: Catalog,
    data: BeirDataset,
    index: str,
    folder: Path,
    *,
    k: int,
    say: Callable[[str], None] = print,
    progress: bool = True,
) -> Capture:
    """Every judged query's arm lists and native pages: from disk when this exact capture was
    made before, else from the node (and then saved)."""
    from tqdm import tqdm

    key = capture_key(http, index, catalog, data)
    path = folder / f"capture-{key}.json"
    if path.exists():
        kept = Capture.from_json(path.read_bytes())
        say(f"replaying {len(kept.queries)} queries captured in {path}")
        return kept
    arms = sub_query_arms(catalog, index)
    depth = even_depth(catalog.budget, len(arms))
    judged = [q for q in data.queries.values() if data.qrels.get(q.id)]
    embedder = catalog_embedder(catalog)
    renderer = TemplateRenderer()
    queries: dict[str, QueryCapture] = {}
    say(f"capturing {len(judged)} queries from {index}: every arm at full size, native hybrid")
    try:
        with native_pipelines(http, catalog, arms, f"ltrr-replay-{key}") as pipelines:
            for query in tqdm(judged, unit="query", desc="capturing", disable=not progress):
                vector = embedder.embed(query.text) if embedder is not None else None
                lists = _arm_lists(http, catalog, index, query.text, vector, renderer)
                natives = {}
                for method, name in pipelines.items():
                    search, body = native_request(
                        catalog, index, query.text, vector, renderer, depth, k, name
                    )
                    hits = http.ok("POST", search, body)["hits"]["hits"]
                    natives[method] = tuple(str(hit["_id"]) for hit in hits)
                queries[query.id] = QueryCapture(lists, natives)
    finally:
        if embedder is not None:
            embedder.close()
    field = catalog.features.entity_field
    entities = tuple(entity_names(http, index, field)) if field else ()
    result = Capture(index, key, queries, depth * len(arms), entities)
    folder.mkdir(parents=True, exist_ok=True)
    path.write_bytes(result.to_json())
    return result


def entity_names(http: Cluster, index: str, field: str) -> list[str]:
    """Every value of the catalog's entity field, paged as the proxy reads them."""
    names: list[str] = []
    after: dict[str, Any] | None = None
    while True:
        composite: dict[str, Any] = {
            "size": 10_000,
            "sources": [{"name": {"terms": {"field": field}}}],
        }
        if after is not None:
            composite["after"] = after
        body = {"size": 0, "aggs": {"entities": {"composite": composite}}}
        agg = http.ok("POST", f"/{index}/_search", body)["aggregations"]["entities"]
        names += [str(bucket["key"]["name"]) for bucket in agg["buckets"]]
        after = agg.get("after_key")
        if not agg["buckets"] or after is None:
            return names
