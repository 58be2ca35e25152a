"""Bandit statistics shared through OpenSearch, so restarts resume and replicas agree.

Each catalog's arms are documents in ``ltrr-state`` (``{target}:{arm}``). Every few seconds a
replica reads them all with one ``_mget``, adds the delta it accumulated since its last merge,
and writes back with one ``_bulk`` whose items are guarded by ``if_seq_no``/``if_primary_term``.
A conflicting item is read again and retried; a delta that still cannot be written is kept for
the next round, never lost. After a successful round the replica serves the shared sums (plus
whatever arrived meanwhile), so every replica converges to the sum of all of them.

A stored document that disappears (``ltrr-state`` deleted under the proxy) is written back
from what this replica holds, never restarted from the prior.

A ``{target}:_catalog`` document records the catalog hash and its arms: when the catalog
changed, the state of removed arms is deleted, new arms start from their prior, and the others
are kept as they were.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from ltrr.bandit.agent import Agent
from ltrr.bandit.state import Delta, SharedStatistics
from ltrr.plugin.learn.bulk import STATE_INDEX, bulk, guarded, mget
from ltrr.plugin.runtime import metrics
from ltrr.plugin.runtime.registry import CatalogRuntime
from ltrr.plugin.runtime.upstream import Transport, UpstreamError

log = logging.getLogger("ltrr.state")

MAX_ATTEMPTS = 8
CATALOG_DOC = "_catalog"


@dataclass(slots=True)
class _Tracked:
    agent: Agent  # kept so that its id is not reused while tracked
    shared: SharedStatistics
    checked_catalog: str = ""  # the digest whose arms were reconciled with the stored state
    merges: int = 0
    conflicts: int = 0
    last_error: str | None = None
    versions: dict[str, int] = field(default_factory=dict)  # arm -> last seq_no seen


class StateSync:
    """Merges every catalog's bandit statistics with the shared copy in OpenSearch."""

    def __init__(
        self,
        transport: Transport,
        runtimes: Callable[[], Sequence[CatalogRuntime]],
        *,
        interval: float = 2.0,
    ) -> None:
        self.transport = transport
        self.runtimes = runtimes
        self.interval = interval
        self._tracked: dict[int, _Tracked] = {}  # id(agent) -> tracking

    def _track(self, runtime: CatalogRuntime) -> _Tracked | None:
        key = id(runtime.agent)
        tracked = self._tracked.get(key)
        if tracked is None or tracked.agent is not runtime.agent:
            shared = runtime.agent.shared_statistics()
            if shared is None:
                return None
            tracked = self._tracked[key] = _Tracked(runtime.agent, shared)
        return tracked

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            await self.sync_all()

    async def sync_all(self) -> None:
        """One merge round for every catalog; errors are logged and the deltas kept."""
        live = {id(r.agent) for r in self.runtimes()}
        for runtime in self.runtimes():
            tracked = self._track(runtime)
            if tracked is None:
                continue
            try:
                await self.sync(runtime, tracked)
                tracked.last_error = None
            except (UpstreamError, TimeoutError, ValueError, KeyError) as exc:
                tracked.last_error = str(exc)[:300]
                metrics.STATE_FAILURES.labels(runtime.state_key).inc()
                log.warning("state merge failed for %s: %s", runtime.state_key, exc)
        for key in [k for k in self._tracked if k not in live]:
            del self._tracked[key]  # a replaced policy; its pending delta went with it

    async def sync(self, runtime: CatalogRuntime, tracked: _Tracked) -> None:
        target = runtime.state_key
        shared = tracked.shared
        if tracked.checked_catalog != runtime.catalog.digest:
            await self._reconcile(runtime, shared)
            tracked.checked_catalog = runtime.catalog.digest
        ids = {f"{target}:{arm}": arm for arm in shared.arms}
        deltas: dict[str, Delta] = {}
        for doc_id, arm in ids.items():
            delta = shared.take(arm)
            if delta is not None:
                deltas[doc_id] = delta
        todo = list(ids)
        try:
            for _attempt in range(MAX_ATTEMPTS):
                todo = await self._attempt(target, ids, todo, deltas, tracked)
                if not todo:
                    tracked.merges += 1
                    metrics.STATE_MERGES.labels(target).inc()
                    return
                tracked.conflicts += len(todo)
                metrics.STATE_CONFLICTS.labels(target).inc(len(todo))
            raise UpstreamError(f"state merge still conflicting after {MAX_ATTEMPTS} attempts")
        finally:
            for doc_id, delta in deltas.items():  # not written: merged next round
                shared.restore(ids[doc_id], delta)

    async def _attempt(
        self,
        target: str,
        ids: dict[str, str],
        todo: list[str],
        deltas: dict[str, Delta],
        tracked: _Tracked,
    ) -> list[str]:
        """Read the stored sums, write sum + delta guarded by what was read; returns the ids
        that conflicted (to read and try again). A written delta leaves ``deltas``."""
        shared = tracked.shared
        stored = await mget(self.transport, STATE_INDEX, todo)
        actions: list[tuple[dict[str, Any], dict[str, Any] | None]] = []
        written: list[tuple[str, dict[str, Any]]] = []
        for doc_id in todo:
            arm = ids[doc_id]
            current = stored.get(doc_id)
            delta = deltas.get(doc_id)
            if delta is None and current is not None and shared.readable(current.source):
                shared.install(arm, current.source)  # nothing to add: just catch up
                tracked.versions[arm] = current.seq_no
                continue
            if current is None and arm in tracked.versions:
                # It was stored, and is gone (its index deleted): write back all we hold, not
                # the prior plus the last delta.
                doc = shared.local(arm)
            elif delta is None and current is None:
                continue  # never learned anywhere: the prior is already in place
            else:
                doc = shared.merged(current.source if current else None, delta)
            doc.update({"target": target, "arm": arm})
            actions.append((guarded(STATE_INDEX, doc_id, current), doc))
            written.append((doc_id, doc))
        results = await bulk(self.transport, actions, timeout=30.0)
        retry: list[str] = []
        refused: list[str] = []
        for (doc_id, doc), (status, result) in zip(written, results, strict=True):
            if status in (200, 201):
                shared.install(ids[doc_id], doc)
                tracked.versions[ids[doc_id]] = int(result.get("_seq_no", -1))
                deltas.pop(doc_id, None)  # written: never restored, never re-sent
            elif status == 409:
                retry.append(doc_id)
            else:
                refused.append(f"{doc_id}: {status} {result}")
        if refused:  # every result was read first, so written deltas are not restored
            raise UpstreamError(f"state writes refused: {'; '.join(refused)[:500]}")
        return retry

    async def _reconcile(self, runtime: CatalogRuntime, shared: SharedStatistics) -> None:
        """Compare the stored catalog with this one: drop removed arms, note added ones."""
        target = runtime.state_key
        meta_id = f"{target}:{CATALOG_DOC}"
        stored = (await mget(self.transport, STATE_INDEX, [meta_id])).get(meta_id)
        digest = runtime.catalog.digest
        if stored is not None and stored.source.get("catalog") == digest:
            return
        old_arms = set(stored.source.get("arms", ())) if stored is not None else set()
        removed = sorted(old_arms - set(shared.arms))
        added = sorted(set(shared.arms) - old_arms) if stored is not None else []
        actions: list[tuple[dict[str, Any], dict[str, Any] | None]] = [
            ({"delete": {"_index": STATE_INDEX, "_id": f"{target}:{arm}"}}, None) for arm in removed
        ]
        actions.append(
            (
                {"index": {"_index": STATE_INDEX, "_id": meta_id}},
                {"target": target, "arm": CATALOG_DOC, "catalog": digest, "arms": shared.arms},
            )
        )
        await bulk(self.transport, actions)
        if stored is not None:
            log.info(
                "catalog %s changed (%s -> %s): arms added %s start from the prior, "
                "arms removed %s dropped, the others kept",
                target,
                str(stored.source.get("catalog", ""))[:12],
                digest[:12],
                added,
                removed,
            )

    def lost(self) -> None:
        """``ltrr-state`` was recreated: reconcile the catalogs again (their records went
        with it); the statistics are written back whole (see ``_attempt``)."""
        for tracked in self._tracked.values():
            tracked.checked_catalog = ""

    def snapshot(self) -> dict[str, Any]:
        return {
            r.state_key: {
                "merges": t.merges,
                "conflicts": t.conflicts,
                "last_error": t.last_error,
                "versions": dict(t.versions),
            }
            for r in self.runtimes()
            if (t := self._tracked.get(id(r.agent))) is not None
        }
