"""Shipping: copy the durable event log to ``ltrr-events``, in batches, idempotent by event id.

The log is committed only past what OpenSearch stored, so a crash or a refused batch resends
the same events under the same ids, which cannot duplicate them.
"""

from __future__ import annotations

import asyncio
from typing import Any

import orjson

from ltrr.plugin.learn.bulk import EVENTS_INDEX, bulk
from ltrr.plugin.learn.eventlog import EventLog
from ltrr.plugin.runtime.upstream import Transport, UpstreamError

SHIP_BATCH = 2000


class Shipper:
    def __init__(self, transport: Transport, events: EventLog, batch: int = SHIP_BATCH) -> None:
        self.transport = transport
        self.events = events
        self.batch = batch
        self.shipped = 0

    async def ship(self) -> int:
        """Ship every pending event; returns how many were stored by this call."""
        shipped = 0
        while True:
            lines, position = await asyncio.to_thread(self.events.pending, self.batch)
            if not lines:
                return shipped
            actions: list[tuple[dict[str, Any], dict[str, Any] | None]] = []
            for line in lines:
                doc = orjson.loads(line)
                actions.append(({"index": {"_index": EVENTS_INDEX, "_id": doc["event_id"]}}, doc))
            results = await bulk(self.transport, actions, timeout=60.0)
            failed = [r for status, r in results if status >= 300]
            if failed:  # the whole batch is retried: re-indexing by id cannot duplicate
                raise UpstreamError(f"{len(failed)} events not stored, e.g. {failed[0]}")
            await asyncio.to_thread(self.events.commit, position)
            shipped += len(lines)
            self.shipped += len(lines)
