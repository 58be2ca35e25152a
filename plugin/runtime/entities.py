"""The entity dictionary behind the "query is a known entity name" features.

Built from the catalog's ``entity_field`` (a keyword field) with a paged composite aggregation,
refreshed in the background once it is older than ``entity_refresh_seconds``. The start-up
refresh runs with ``LTRR_OPENSEARCH_AUTHORIZATION`` when it is set; a later one with the
credentials of the search that found the dictionary stale. Until the first refresh ends, the
entity features are 0.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping

import orjson

from ltrr.bandit.features import EntityDictionary
from ltrr.plugin.runtime.upstream import Transport, UpstreamError

log = logging.getLogger("ltrr.entities")
PAGE = 5000


class EntityCache:
    def __init__(
        self,
        field: str,
        refresh_seconds: float,
        max_entries: int,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.field = field
        self.refresh_seconds = refresh_seconds
        self.max_entries = max_entries
        self.clock = clock
        self.current: EntityDictionary | None = None
        self.loaded_at: float | None = None
        self._task: asyncio.Task[None] | None = None

    def stale(self) -> bool:
        return self.loaded_at is None or self.clock() - self.loaded_at > self.refresh_seconds

    def maybe_refresh(self, transport: Transport, target: str, headers: Mapping[str, str]) -> None:
        if self.stale() and (self._task is None or self._task.done()):
            self._task = asyncio.create_task(self.refresh(transport, target, dict(headers)))

    async def refresh(self, transport: Transport, target: str, headers: Mapping[str, str]) -> None:
        names: list[str] = []
        after: Mapping[str, object] | None = None
        try:
            while len(names) < self.max_entries:
                composite: dict[str, object] = {
                    "size": min(PAGE, self.max_entries - len(names)),
                    "sources": [{"name": {"terms": {"field": self.field}}}],
                }
                if after is not None:
                    composite["after"] = after
                body = {"size": 0, "aggs": {"entities": {"composite": composite}}}
                reply = await transport.request(
                    "POST",
                    f"/{target}/_search",
                    headers=headers,
                    body=orjson.dumps(body),
                    timeout=30.0,
                )
                if reply.status >= 400:
                    log.warning("entity refresh on %s failed: %s", target, reply.body[:300])
                    return
                agg = reply.json()["aggregations"]["entities"]
                buckets = agg.get("buckets", [])
                names.extend(str(b["key"]["name"]) for b in buckets)
                after = agg.get("after_key")
                if not buckets or after is None:
                    break
        except (UpstreamError, ValueError, KeyError) as exc:
            log.warning("entity refresh on %s failed: %s", target, exc)
            return
        # Indexing the names' trigrams takes a while for a large dictionary: off the loop.
        self.current = await asyncio.to_thread(EntityDictionary, names)
        self.loaded_at = self.clock()
        log.info("entity dictionary for %s: %d names from %s", target, len(names), self.field)
