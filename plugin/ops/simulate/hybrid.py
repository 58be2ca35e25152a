"""The native hybrid contenders: OpenSearch's own ``hybrid`` query, sent straight to the node.

What a search engineer deploys today instead of the proxy: every arm's clause as a sub-query
of one ``_search``, fused by a search pipeline. It goes to OpenSearch directly, not through the
proxy, because that is how it is deployed: a passthrough hop would charge it a cost (a second
HTTP round trip, the proxy's routing) that it never pays in production, and the proxy could
add nothing to it. Each contender searches its own copy of the index with a pipeline of its
own, and never learns: its clicks are sampled and scored like everyone's, and sent nowhere.

The knn arms' query vector is embedded here, with the catalog's model and cache, as the proxy
embeds it, and that time counts in the latency as it does in the proxy's.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import aiohttp
import orjson

from ltrr.plugin.errors import LtrrError
from ltrr.plugin.ops.simulate.stream import Session
from ltrr.query_plans.catalog import Catalog
from ltrr.query_plans.embed import Embedder
from ltrr.query_plans.hybrid import HybridError, build_hybrid
from ltrr.query_plans.plan import SearchInput
from ltrr.query_plans.templates import TemplateRenderer

__all__ = ["HybridAnswer", "HybridSearch", "HybridSearcher"]


@dataclass(frozen=True, slots=True)
class HybridSearch:
    """One contender's searches: its copy, its pipeline, its sub-queries and their depth."""

    target: str
    pipeline: str
    arms: tuple[str, ...]
    depth: int


@dataclass(frozen=True, slots=True)
class HybridAnswer:
    """The ranked ids (as many as asked), and what the search cost."""

    ids: list[str]
    latency_ms: float
    retrieved: int


class HybridSearcher:
    """Renders the catalog's arms into hybrid queries and sends them; one per simulation."""

    def __init__(self, catalog: Catalog, url: str, embedder: Embedder | None) -> None:
        self.catalog = catalog
        self.url = url
        self.embedder = embedder
        self.renderer = TemplateRenderer()
        self._needs_vector = any(arm.needs_vector for arm in catalog.arms)

    async def search(
        self, http: aiohttp.ClientSession, search: HybridSearch, session: Session, size: int
    ) -> HybridAnswer:
        """One ``_search`` for the session's query: the top ``size`` ids of the fused list."""
        started = time.perf_counter()
        vector = None
        if self._needs_vector and self.embedder is not None:
            vector = await self.embedder.aembed(session.text)
        request = SearchInput.of(
            search.target,
            session.text,
            context=session.context,
            source=False,
            vector=vector,
        )
        try:
            query = build_hybrid(
                self.catalog, request, self.renderer, depth=search.depth, size=size
            )
        except HybridError as exc:
            raise LtrrError(f"session {session.index}: {exc}") from None
        if query.arms != search.arms:  # the pipeline's weights were set for search.arms
            raise LtrrError(f"the hybrid query holds {query.arms}, its pipeline {search.arms}")
        url = f"{self.url}/{search.target}/_search?search_pipeline={search.pipeline}"
        async with http.post(
            url, data=query.json(), headers={"Content-Type": "application/json"}
        ) as reply:
            payload = await reply.read()
        latency_ms = (time.perf_counter() - started) * 1000.0
        if reply.status != 200:
            raise LtrrError(f"{url} answered {reply.status}: {payload[:400]!r}")
        body = orjson.loads(payload)
        shards = body.get("_shards", {})
        if body.get("timed_out") or shards.get("failed"):
            raise LtrrError(f"{url}: a partial answer ({orjson.dumps(shards).decode()})")
        ids = [str(hit["_id"]) for hit in body["hits"]["hits"]]
        return HybridAnswer(ids, latency_ms, query.candidates)
