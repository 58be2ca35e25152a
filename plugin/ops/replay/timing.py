"""Wall-clock latency of every contender's retrieval, measured on the node in the same run.

The replayed pages come from captured lists, so they say nothing about speed. Latency is
measured apart, after the sessions are replayed: for every ``every``-th session, each contender's
own request goes to the node (the ``_msearch`` its plan sends, with that session's sizes, or
OpenSearch's hybrid search for a native contender). Contenders take turns in an order that
rotates with the session, so a warming cache or a busy moment of the machine falls on all of
them alike.

What is timed is the round trip of the retrieval, as the proxy would send it (the catalog's
``_source``, its timeout). The query's embedding is not in it: every contender that asks a
vector arm, and the native hybrid query, needs the same one (and the proxy caches it for
repeated queries). The proxy's own decide and fuse steps are not in it either; ``ltrr bench
overhead`` measures those. Wall-clock time is never deterministic, so it is reported beside
the replayed table, never inside its determinism.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from ltrr.plugin.ops.client import Cluster
from ltrr.plugin.ops.data.index import catalog_embedder
from ltrr.plugin.ops.replay.capture import native_pipelines, native_request
from ltrr.plugin.ops.replay.loop import Served
from ltrr.plugin.ops.simulate.stream import Session
from ltrr.query_plans.catalog import Catalog
from ltrr.query_plans.hybrid import even_depth, sub_query_arms
from ltrr.query_plans.plan import SearchInput, build_plan
from ltrr.query_plans.templates import TemplateRenderer

NATIVE_PREFIX = "hybrid:"
WARM_UP = 20  # sessions sent once, untimed, before the first timed one


@dataclass(frozen=True, slots=True)
class Latency:
    """One contender's timed searches over one seed, in milliseconds."""

    samples: tuple[float, ...]

    def quantile(self, q: float) -> float:
        if not self.samples:
            return 0.0
        return float(np.quantile(np.asarray(self.samples), q, method="higher"))


def sampled(sessions: Sequence[Session], every: int) -> list[int]:
    """The positions timed: every ``every``-th session, the first included (none for 0)."""
    return list(range(0, len(sessions), every)) if every > 0 else []


def turn_order(names: Sequence[str], position: int) -> list[str]:
    """The contenders in the order they are sent for one session: rotated by its position, so
    that no contender always goes first (or always follows the slowest)."""
    if not names:
        return []
    shift = position % len(names)
    return [*names[shift:], *names[:shift]]


class _Requests:
    """Builds and sends each contender's request, with one embedding per distinct query."""

    def __init__(
        self, http: Cluster, catalog: Catalog, index: str, pipelines: Mapping[str, str], k: int
    ) -> None:
        self.http = http
        self.catalog = catalog
        self.index = index
        self.pipelines = pipelines
        self.k = k
        self.renderer = TemplateRenderer()
        self.depth = even_depth(catalog.budget, len(sub_query_arms(catalog, index)))
        self._vectors: dict[str, list[float] | None] = {}
        self._embedder = catalog_embedder(catalog)
        self._needs_vector = {arm.name for arm in catalog.arms if arm.needs_vector}

    def close(self) -> None:
        if self._embedder is not None:
            self._embedder.close()

    def _vector(self, text: str) -> list[float] | None:
        if text not in self._vectors:
            embedder = self._embedder
            self._vectors[text] = list(embedder.embed(text)) if embedder is not None else None
        return self._vectors[text]

    def send(self, name: str, session: Session, served: Served) -> float:
        """One contender's request for one session; the round trip in milliseconds."""
        if name.startswith(NATIVE_PREFIX):
            path, body = native_request(
                self.catalog,
                self.index,
                session.text,
                self._vector(session.text),
                self.renderer,
                self.depth,
                self.k,
                self.pipelines[name[len(NATIVE_PREFIX) :]],
                source=None,
            )
            start = time.perf_counter()
            self.http.ok("POST", path, body)
            return (time.perf_counter() - start) * 1000.0
        sizes = dict(served.sizes)
        vector = self._vector(session.text) if self._needs_vector.intersection(sizes) else None
        request = SearchInput.of(self.index, session.text, vector=vector)
        plan = build_plan(
            self.catalog, sizes, request, self.renderer, timeout_ms=self.catalog.deadline_ms
        )
        ndjson = plan.ndjson()
        start = time.perf_counter()
        self.http.ok("POST", "/_msearch", ndjson=ndjson)
        return (time.perf_counter() - start) * 1000.0


def measure(
    http: Cluster,
    catalog: Catalog,
    index: str,
    key: str,
    sessions: Sequence[Session],
    runs: Mapping[str, Sequence[Served]],
    *,
    every: int,
    k: int,
    progress: Callable[[int, int], None] | None = None,
) -> dict[str, Latency]:
    """Per contender, the latency of its own requests on the sampled sessions."""
    names = [name for name, served in runs.items() if served]
    positions = sampled(sessions, every)
    if not positions or not names:
        return {}
    times: dict[str, list[float]] = {name: [] for name in names}
    arms = sub_query_arms(catalog, index)
    with native_pipelines(http, catalog, arms, f"ltrr-timing-{key}") as pipelines:
        requests = _Requests(http, catalog, index, pipelines, k)
        try:
            for position in positions[:WARM_UP]:
                for name in names:
                    requests.send(name, sessions[position], runs[name][position])
            for done, position in enumerate(positions, start=1):
                for name in turn_order(names, position):
                    served = runs[name][position]
                    times[name].append(requests.send(name, sessions[position], served))
                if progress is not None:
                    progress(done, len(positions))
        finally:
            requests.close()
    return {name: Latency(tuple(samples)) for name, samples in times.items()}
