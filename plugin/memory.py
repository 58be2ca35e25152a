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
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from ltrr.plugin.bulk import JSON, MEMORY_INDEX, bulk, guarded, mget
from ltrr.plugin.upstream import Transport, UpstreamError
from ltrr.query_plans.catalog import Catalog, CatalogError, MemoryConfig
from ltrr.query_plans.memory import (
    KeyStats,
    near_key,
    rank_feature_value,
    source_loss,
    split_ref,
)

log = logging.getLogger("ltrr.memory")

MAX_ATTEMPTS = 8
# How long an entity index's mapping is trusted to keep _source whole before it is read again.
MAPPING_TTL_SECONDS = 60.0


async def check_sources(transport: Transport, catalogs: Sequence[Catalog]) -> None:
    """Refuse to serve a catalog whose memory would write to documents that lose a field.

    An index that does not exist yet is checked again before the memory's first write to it.
    """
    for catalog in catalogs:
        if catalog.memory is None:
            continue
        for target in catalog.targets:
            reply = await transport.request(
                "GET", f"/{target}/_mapping", headers=JSON, body=None, timeout=10.0
            )
            if reply.status == 404:
                continue
            if reply.status != 200:
                raise UpstreamError(f"GET /{target}/_mapping answered {reply.status}")
            for index, entry in sorted(reply.json().items()):
                lost = source_loss(entry.get("mappings") or {})
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
        self.last_error: str | None = None
        self._mapping_checked: dict[str, tuple[float, str | None]] = {}

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

    def pending_keys(self) -> int:
        return sum(len(p.keys) for p in self._pending.values())

    async def run(self, interval: float) -> None:
        while True:
            await asyncio.sleep(interval)
            try:
                await self.flush()
                self.last_error = None
            except (UpstreamError, TimeoutError) as exc:
                self.last_error = str(exc)[:300]
                log.warning("memory flush failed, will retry: %s", exc)

    async def flush(self) -> None:
        """Merge every pending key into ``ltrr-memory``, then write the changed scores."""
        batches, self._pending = self._pending, {}
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
                await self._project(config, merged)
                raise UpstreamError(f"memory writes refused: {'; '.join(refused)[:500]}")
            todo = retry
        await self._project(config, merged)
        if todo:
            raise UpstreamError(f"memory merge still conflicting after {MAX_ATTEMPTS} attempts")

    async def _project(self, config: MemoryConfig, merged: dict[str, KeyStats]) -> None:
        """Write each touched (query, entity) score onto the entity document."""
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
        actions: list[tuple[dict[str, Any], dict[str, Any] | None]] = []
        for ref, features in per_entity.items():
            index, doc_id = split_ref(ref)
            lost = await self._source_loss(index)
            if lost is not None:
                self.pairs_refused += 1
                self.refused_because = f"{index} keeps {lost} out of _source"
                continue
            actions.append(
                (
                    {"update": {"_index": index, "_id": doc_id, "retry_on_conflict": 3}},
                    {"doc": {config.field: features}},
                )
            )
        if not actions:
            return
        try:
            results = await bulk(self.transport, actions)
        except UpstreamError as exc:
            # The counts are safe in ltrr-memory; the next merge of these keys rewrites them.
            log.warning("memory scores not written (%d entities): %s", len(actions), exc)
            return
        for (action, _), (status, result) in zip(actions, results, strict=True):
            if status == 404:
                continue  # the entity was deleted meanwhile
            if status >= 300:
                log.warning("memory score not written to %s: %s", action["update"], result)
            else:
                self.pairs_written += 1

    async def _source_loss(self, index: str) -> str | None:
        """Why a partial update of ``index`` would lose a field, or None when it cannot.

        OpenSearch rebuilds an updated document from ``_source``; the mapping is read again
        every ``MAPPING_TTL_SECONDS``, and one that cannot be read counts as unsafe.
        """
        now = self.clock()
        cached = self._mapping_checked.get(index)
        if cached is not None and now - cached[0] < MAPPING_TTL_SECONDS:
            return cached[1]
        try:
            reply = await self.transport.request(
                "GET", f"/{index}/_mapping", headers=JSON, body=None, timeout=10.0
            )
        except UpstreamError as exc:
            return f"an unknown set of fields (its mapping could not be read: {exc})"
        if reply.status != 200:
            return f"an unknown set of fields (its mapping answered {reply.status})"
        lost: str | None = None
        for entry in reply.json().values():
            lost = lost or source_loss(entry.get("mappings") or {})
        self._mapping_checked[index] = (now, lost)
        if lost is not None:
            log.error("memory will not write to %s: it keeps %s out of _source", index, lost)
        return lost
