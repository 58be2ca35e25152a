"""The memory (Q2E) index, kept up to date from user actions in batches, off the search path.

Storage (the README's architecture section says why):
- ``ltrr-memory`` holds one document per (target, query key): decayed counts of searches with
  that query and of engagement per entity. Replicas add their deltas with the same guarded
  read-modify-write as the bandit statistics, so counts from every replica add up.
- The entity documents carry the served score, ``<memory.field>.<query key>`` in a
  ``rank_features`` field, written with partial ``_update``s. The memory arm reads it with a
  ``rank_feature`` query inside the same ``_msearch``: no terms lookup, no second round trip,
  and the hits come back ordered by Q2E score.

A search only adds to an in-process counter; the flush writes every few seconds.

An entity document keeps at most ``memory.max_keys`` learned keys: the write merges the new
scores and drops the lowest-scoring keys past the cap, in one scripted update on the node, so
replicas writing the same entity never undo each other's keys.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from ltrr.plugin.learn.bulk import JSON, MEMORY_INDEX, bulk, guarded, mget
from ltrr.plugin.runtime.upstream import Transport, UpstreamError
from ltrr.query_plans.catalog import Catalog, CatalogError, MemoryConfig
from ltrr.query_plans.memory import (
    KeyStats,
    near_key,
    rank_feature_value,
    source_losses,
    split_ref,
)

log = logging.getLogger("ltrr.memory")

MAX_ATTEMPTS = 8
# How long a target's mapping is trusted (to keep _source whole, and to name the indices
# behind it) before it is read again; a failed read is retried sooner.
MAPPING_TTL_SECONDS = 60.0
MAPPING_RETRY_SECONDS = 5.0

# Merge the new scores into the field, then keep the ``max`` best (ties: the smaller key), so
# the cut is the same whatever order the keys came in. Only this one field is touched.
CAPPED_MERGE = """
Object old = ctx._source[params.field];
Map merged = old instanceof Map ? new HashMap((Map) old) : new HashMap();
merged.putAll(params.features);
if (merged.size() > params.max) {
  List entries = new ArrayList(merged.entrySet());
  entries.sort((a, b) -> {
    int byScore = Double.compare(((Number) b.getValue()).doubleValue(),
                                 ((Number) a.getValue()).doubleValue());
    return byScore != 0 ? byScore : ((String) a.getKey()).compareTo((String) b.getKey());
  });
  Map kept = new HashMap();
  for (int i = 0; i < params.max; ++i) {
    kept.put(entries.get(i).getKey(), entries.get(i).getValue());
  }
  merged = kept;
}
if (merged.equals(old)) { ctx.op = 'none'; } else { ctx._source[params.field] = merged; }
"""


def capped_update(field: str, features: dict[str, float], max_keys: int) -> dict[str, Any]:
    """The ``_bulk`` update body that merges ``features`` into ``field``, capped."""
    return {
        "script": {
            "source": CAPPED_MERGE,
            "lang": "painless",
            "params": {"field": field, "features": features, "max": max_keys},
        }
    }


async def _read_entity_indices(transport: Transport, target: str) -> dict[str, str | None]:
    """Every concrete index behind ``target``, with what a partial update of it would lose
    (None: nothing). Raises ``UpstreamError`` when the mapping cannot be read."""
    reply = await transport.request(
        "GET", f"/{quote(target, safe=',*')}/_mapping", headers=JSON, body=None, timeout=10.0
    )
    if reply.status == 404:
        return {}
    if reply.status != 200:
        raise UpstreamError(f"GET /{target}/_mapping answered {reply.status}")
    return source_losses(reply.json())


async def check_sources(transport: Transport, catalogs: Sequence[Catalog]) -> None:
    """Refuse to serve a catalog whose memory would write to documents that lose a field.

    An index that does not exist yet, or whose mapping cannot be read now, is checked again
    before the memory's first write to it.
    """
    for catalog in catalogs:
        if catalog.memory is None:
            continue
        for target in catalog.targets:
            try:
                indices = await _read_entity_indices(transport, target)
            except UpstreamError as exc:
                log.warning(
                    "mapping of %s not checked at start (checked before writes): %s", target, exc
                )
                continue
            for index, lost in indices.items():
                if lost is not None:
                    raise CatalogError(
                        str(catalog.path),
                        None,
                        "memory",
                        f"index {index} keeps {lost} out of _source, so the memory's partial"
                        " updates would drop it from every document they touch; keep _source"
                        " whole and filter at query time with the catalog's `source:`",
                    )


def memory_doc_id(target: str, key: str) -> str:
    return hashlib.sha256(f"{target}\n{key}".encode()).hexdigest()[:40]


@dataclass(slots=True)
class _Pending:
    config: MemoryConfig
    keys: dict[str, KeyStats] = field(default_factory=dict)


class MemoryUpdater:
    """Accumulates searches and engagement per query key; ``flush`` merges and projects them."""

    def __init__(self, transport: Transport, clock: Callable[[], float] = time.time) -> None:
        self.transport = transport
        self.clock = clock
        self._pending: dict[str, _Pending] = {}
        self.flushes = 0
        self.pairs_written = 0
        # Scores not written because the entity index keeps a field out of _source.
        self.pairs_refused = 0
        self.refused_because: str | None = None
        # Scores OpenSearch refused to write (a 403 for an identity that may not update the
        # entity index, say), and flushes that failed: counted, so that /_ltrr/stats shows a
        # memory that cannot write, not only the log.
        self.pairs_failed = 0
        self.flush_failures = 0
        self.last_error: str | None = None
        self._mappings: dict[str, tuple[float, dict[str, str | None] | str]] = {}

    def _stats(self, target: str, config: MemoryConfig, key: str) -> KeyStats:
        pending = self._pending.get(target)
        if pending is None or pending.config != config:
            pending = self._pending.setdefault(target, _Pending(config))
            pending.config = config
        stats = pending.keys.get(key)
        if stats is None:
            stats = pending.keys[key] = KeyStats(updated=self.clock())
        return stats

    def searched(self, target: str, config: MemoryConfig, key: str) -> None:
        if key:
            self._stats(target, config, key).searches += 1.0

    def engaged(self, target: str, config: MemoryConfig, key: str, ref: str, weight: float) -> None:
        """``ref`` is ``index/id`` of the engaged entity; only positive weights are remembered."""
        if key and weight > 0.0:
            stats = self._stats(target, config, key)
            stats.engaged[ref] = stats.engaged.get(ref, 0.0) + weight

    def pending_targets(self) -> list[str]:
        return sorted(target for target, pending in self._pending.items() if pending.keys)

    def pending_keys(self) -> int:
        return sum(len(p.keys) for p in self._pending.values())

    async def run(self, interval: float) -> None:
        while True:
            await asyncio.sleep(interval)
            failed = self.pairs_failed
            try:
                await self.flush()
                if self.pairs_failed == failed:  # every score this round was written
                    self.last_error = None
            except (UpstreamError, TimeoutError) as exc:
                self.flush_failures += 1
                self.last_error = str(exc)[:300]
                log.warning("memory flush failed, will retry: %s", exc)

    async def flush(self, targets: Collection[str] | None = None) -> None:
        """Merge every pending key (of ``targets``, or all) into ``ltrr-memory``, then write the
        changed scores."""
        if targets is None:
            batches, self._pending = self._pending, {}
        else:
            batches = {t: p for t, p in self._pending.items() if t in targets}
            self._pending = {t: p for t, p in self._pending.items() if t not in targets}
        try:
            for target, pending in list(batches.items()):
                await self._flush_target(target, pending)
                del batches[target]
        finally:
            for target, pending in batches.items():  # not written: back for the next flush
                mine = self._pending.setdefault(target, _Pending(pending.config))
                for key, delta in pending.keys.items():
                    kept = mine.keys.setdefault(key, KeyStats(updated=delta.updated))
                    kept.searches += delta.searches
                    for ref, w in delta.engaged.items():
                        kept.engaged[ref] = kept.engaged.get(ref, 0.0) + w
        self.flushes += 1

    async def _flush_target(self, target: str, pending: _Pending) -> None:
        config = pending.config
        todo = {memory_doc_id(target, key): key for key in pending.keys}
        merged: dict[str, KeyStats] = {}
        for _attempt in range(MAX_ATTEMPTS):
            if not todo:
                break
            stored = await mget(self.transport, MEMORY_INDEX, list(todo))
            now = self.clock()
            actions: list[tuple[dict[str, Any], dict[str, Any] | None]] = []
            written: list[tuple[str, KeyStats]] = []
            for doc_id, key in todo.items():
                delta = pending.keys[key]
                current = stored.get(doc_id)
                base = KeyStats.from_json(current.source) if current else KeyStats(updated=now)
                new = base.merged(delta, now, config.half_life_days)
                doc = {"target": target, "key": key, **new.to_json()}
                actions.append((guarded(MEMORY_INDEX, doc_id, current), doc))
                written.append((doc_id, new))
            results = await bulk(self.transport, actions)
            retry: dict[str, str] = {}
            refused: list[str] = []
            for (doc_id, new), (status, result) in zip(written, results, strict=True):
                key = todo[doc_id]
                if status in (200, 201):
                    merged[key] = new
                    del pending.keys[key]  # counted in ltrr-memory: never given back
                elif status == 409:
                    retry[doc_id] = key
                else:
                    refused.append(f"{doc_id}: {status} {result}")
            if refused:
                await self._project(target, config, merged)
                raise UpstreamError(f"memory writes refused: {'; '.join(refused)[:500]}")
            todo = retry
        await self._project(target, config, merged)
        if todo:
            raise UpstreamError(f"memory merge still conflicting after {MAX_ATTEMPTS} attempts")

    async def _project(
        self, target: str, config: MemoryConfig, merged: dict[str, KeyStats]
    ) -> None:
        """Write each touched (query, entity) score onto the entity document.

        Only onto documents of the indices behind ``target`` whose ``_source`` is whole: the
        rest are counted in ``pairs_refused``, and their scores are written by the next merge
        of the same query once the index can take them (the counts stay in ``ltrr-memory``).
        """
        per_entity: dict[str, dict[str, float]] = {}
        for key, stats in merged.items():
            near = near_key(key)
            for ref in stats.engaged:
                value = rank_feature_value(stats.score(ref, config.smoothing))
                if value is None:
                    continue
                features = per_entity.setdefault(ref, {})
                features[key] = value
                if near:
                    features[near] = max(features.get(near, 0.0), value)
        if not per_entity:
            return
        writable = await self._writable(target)
        actions: list[tuple[dict[str, Any], dict[str, Any] | None]] = []
        for ref, features in per_entity.items():
            index, doc_id = split_ref(ref)
            why = self._refusal(target, writable, index)
            if why is not None:
                self.pairs_refused += 1
                self.refused_because = why
                continue
            actions.append(
                (
                    {"update": {"_index": index, "_id": doc_id, "retry_on_conflict": 3}},
                    capped_update(config.field, features, config.max_keys),
                )
            )
        if not actions:
            return
        try:
            results = await bulk(self.transport, actions)
        except UpstreamError as exc:
            # The counts are safe in ltrr-memory; the next merge of these keys rewrites them.
            log.warning("memory scores not written (%d entities): %s", len(actions), exc)
            self.pairs_failed += len(actions)
            self.last_error = str(exc)[:300]
            return
        for (action, _), (status, result) in zip(actions, results, strict=True):
            if status == 404:
                continue  # the entity was deleted meanwhile
            if status >= 300:
                log.warning("memory score not written to %s: %s", action["update"], result)
                self.pairs_failed += 1
                self.last_error = f"{action['update']}: {status} {str(result)[:200]}"
            else:
                self.pairs_written += 1

    async def _writable(self, target: str) -> dict[str, str | None] | str:
        """The indices behind ``target`` and what an update would lose, or why it is unknown."""
        now = self.clock()
        cached = self._mappings.get(target)
        if cached is not None:
            checked, known = cached
            ttl = MAPPING_TTL_SECONDS if isinstance(known, dict) else MAPPING_RETRY_SECONDS
            if now - checked < ttl:
                return known
        try:
            indices = await _read_entity_indices(self.transport, target)
        except UpstreamError as exc:
            why = f"the mapping of {target} could not be read ({exc})"
            log.warning("memory scores for %s held back: %s", target, why)
            self._mappings[target] = (now, why)
            return why
        for index, lost in indices.items():
            if lost is not None:
                log.error("memory will not write to %s: it keeps %s out of _source", index, lost)
        self._mappings[target] = (now, indices)
        return indices

    @staticmethod
    def _refusal(target: str, writable: dict[str, str | None] | str, index: str) -> str | None:
        if isinstance(writable, str):
            return writable
        if index not in writable:
            return f"{index} is not an index behind {target}"
        lost = writable[index]
        return None if lost is None else f"{index} keeps {lost} out of _source"
