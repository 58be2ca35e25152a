"""Shipping: copy the durable event log to ``ltrr-events``, in batches, idempotent by event id.

The log is committed only past what OpenSearch stored or refused for good, so a crash or a
busy cluster resends the same events under the same ids, which cannot duplicate them: each
goes to the day index of its own ``received`` time, the same index every time. An
event refused for good goes to the dead letters, never back into the retry loop.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import orjson

from ltrr.plugin.learn.bulk import EVENTS_INDEX, EVENTS_LOG, write
from ltrr.plugin.learn.deadletter import DeadLetters
from ltrr.plugin.learn.eventlog import EventLog
from ltrr.plugin.runtime import metrics
from ltrr.plugin.runtime.upstream import Transport, UpstreamError

SHIP_BATCH = 2000


class Shipper:
    def __init__(
        self,
        transport: Transport,
        events: EventLog,
        dead_letters: DeadLetters,
        batch: int = SHIP_BATCH,
    ) -> None:
        self.transport = transport
        self.events = events
        self.dead_letters = dead_letters
        self.batch = batch
        self.shipped = 0
        self.caught_up = time.monotonic()  # when the log was last found fully shipped

    async def ship(self) -> int:
        """Ship every pending event; returns how many were stored by this call."""
        shipped = 0
        while True:
            lines, position = await asyncio.to_thread(self.events.pending, self.batch)
            if not lines:
                self.caught_up = time.monotonic()
                return shipped
            docs = [orjson.loads(line) for line in lines]
            actions: list[tuple[dict[str, Any], dict[str, Any] | None]] = [
                ({"index": {"_index": EVENTS_LOG.index_of(doc), "_id": doc["event_id"]}}, doc)
                for doc in docs
            ]
            written = await write(self.transport, actions, timeout=60.0)
            if written.retry:  # the whole batch again: re-indexing by id cannot duplicate
                raise UpstreamError(f"{len(written.retry)} events not stored yet, will retry")
            for number, reason in written.refused:
                await asyncio.to_thread(self.dead_letters.add, EVENTS_INDEX, docs[number], reason)
                metrics.EVENTS_DEAD_LETTERED.inc()
            await asyncio.to_thread(self.events.commit, position)
            shipped += len(written.stored)
            self.shipped += len(written.stored)
            metrics.EVENTS_SHIPPED.inc(len(written.stored))

    def lag(self) -> float:
        """Seconds the log has been behind ``ltrr-events`` (0 when nothing waits): since the
        shipper last found nothing to ship, so a failing shipper's lag keeps growing."""
        if self.events.backlog() == 0:
            return 0.0
        return max(0.0, time.monotonic() - self.caught_up)
