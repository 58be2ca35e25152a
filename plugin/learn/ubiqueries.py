"""UBI's query log, ``ubi_queries``, written by the proxy as the UBI plugin writes it.

OpenSearch's UBI dashboards and the Search Relevance Workbench's implicit judgments join
``ubi_queries`` to ``ubi_events`` by ``query_id``. A search the proxy answers itself never
reaches a UBI plugin, and most nodes have none, so the proxy writes each record: in batches,
from a bounded queue, off the search path, as itself (never with a caller's credentials).

What a crash loses: the records still queued, about a second's worth. Nobody was promised
them (a search's answer does not wait for its record), and the UBI plugin itself indexes its
records fire-and-forget after answering, so readers of ``ubi_queries`` already take it as a
log of searches, not a ledger. A record OpenSearch refuses for good goes to the dead letters
when the proxy has a data directory, else it is counted as dropped.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import orjson

from ltrr.plugin.learn.bulk import JSON, write
from ltrr.plugin.learn.deadletter import DeadLetters
from ltrr.plugin.runtime.upstream import Transport, UpstreamError

log = logging.getLogger("ltrr.ubi")

UBI_QUERIES_INDEX = "ubi_queries"
UBI_PLUGIN = "opensearch-ubi"  # its component name in ``GET /_cat/plugins``
# The index as the UBI plugin creates it (settings in UbiActionFilter, mapping in
# src/main/resources/queries-mapping.json of opensearch-project/user-behavior-insights): the
# index is UBI's, so whoever creates it first, the plugin or the proxy, it is the same index.
QUERIES_INDEX_BODY: Mapping[str, Any] = {
    "settings": {
        "index": {"number_of_shards": 1, "auto_expand_replicas": "0-2", "priority": 2**31 - 1}
    },
    "mappings": {
        "dynamic": False,
        "properties": {
            "timestamp": {"type": "date"},
            "query_id": {"type": "keyword", "ignore_above": 100},
            "query": {"type": "text"},
            "query_response_id": {"type": "keyword", "ignore_above": 100},
            "query_response_hit_ids": {"type": "keyword"},
            "user_query": {
                "type": "text",
                "fields": {"keyword": {"type": "keyword", "ignore_above": 256}},
            },
            "query_attributes": {"type": "flat_object"},
            "client_id": {"type": "keyword", "ignore_above": 100},
            "indexes": {"type": "keyword"},
        },
    },
}
# A record, or what makes it: the search path queues the latter, so that the formatting, the
# ids and the reading of hits happen in the background writer, not while a client waits.
Record = dict[str, Any] | Callable[[], dict[str, Any]]
# The proxy's decision rides in ``query_attributes`` under this key, so that UBI's own
# attributes (a client's experiment ids, say) stay as the client sent them.
ATTRIBUTES_KEY = "ltrr"


def iso_timestamp(seconds: float) -> str:
    """ISO 8601 in UTC with a ``Z``, as the UBI schema asks (OpenSearch needs the zone)."""
    moment = datetime.fromtimestamp(seconds, UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def query_record(
    *,
    query_id: str,
    query_response_id: str,
    user_query: str,
    hit_ids: Sequence[str],
    timestamp: float,
    client_id: str | None = None,
    application: str | None = None,
    object_id_field: str | None = None,
    attributes: Mapping[str, Any] | None = None,
    decision: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """One UBI 1.3 query record; ``decision`` goes under ``query_attributes.ltrr``."""
    record: dict[str, Any] = {
        "query_id": query_id,
        "query_response_id": query_response_id,
        "user_query": user_query,
        "query_response_hit_ids": list(hit_ids),
        "timestamp": iso_timestamp(timestamp),
    }
    for key, value in (
        ("client_id", client_id),
        ("application", application),
        ("object_id_field", object_id_field),
    ):
        if value is not None:
            record[key] = value
    merged = dict(attributes or {})
    if decision is not None:
        merged[ATTRIBUTES_KEY] = dict(decision)
    if merged:
        record["query_attributes"] = merged
    return record


async def node_has_ubi(transport: Transport) -> bool | None:
    """Whether any node runs the UBI plugin; None when OpenSearch does not say."""
    try:
        reply = await transport.request(
            "GET", "/_cat/plugins?format=json&h=component", headers={}, body=None, timeout=10.0
        )
        rows = reply.json() if reply.status == 200 else None
    except (UpstreamError, TimeoutError, orjson.JSONDecodeError):
        return None
    if not isinstance(rows, list):
        return None
    return any(isinstance(row, dict) and row.get("component") == UBI_PLUGIN for row in rows)


class UbiQueries:
    """The bounded queue of records and its background writer.

    Each record's ``_id`` is its ``query_response_id`` (one per answer), so a batch written
    twice after a lost reply is still one record per answer.
    """

    def __init__(
        self,
        transport: Transport,
        *,
        dead_letters: DeadLetters | None = None,
        batch: int = 500,
        max_queued: int = 100_000,
    ) -> None:
        self.transport = transport
        self.dead_letters = dead_letters
        self.batch = batch
        self.max_queued = max_queued
        self._queue: list[Record] = []
        self._flushing = asyncio.Lock()
        self._ready = False
        self.written = 0
        self.dropped = 0  # over the bound, or refused for good with nowhere to keep them
        self.dead_lettered = 0
        self.failed_flushes = 0
        self.last_error: str | None = None

    def __len__(self) -> int:
        return len(self._queue)

    def put(self, record: Record) -> None:
        """Never blocks, never raises: the search that made the record is being answered."""
        self._queue.append(record)
        if len(self._queue) > self.max_queued:
            excess = len(self._queue) - self.max_queued
            del self._queue[:excess]
            self.dropped += excess

    async def _ensure_index(self) -> None:
        """Create ``ubi_queries`` with UBI's mapping if nobody has; an existing one is UBI's
        (or an operator's) and is left as it is."""
        if self._ready:
            return
        reply = await self.transport.request(
            "HEAD", f"/{UBI_QUERIES_INDEX}", headers={}, body=None, timeout=10.0
        )
        if reply.status == 404:
            created = await self.transport.request(
                "PUT",
                f"/{UBI_QUERIES_INDEX}",
                headers=JSON,
                body=orjson.dumps(QUERIES_INDEX_BODY),
                timeout=30.0,
            )
            if created.status >= 300 and b"resource_already_exists_exception" not in created.body:
                raise UpstreamError(f"creating {UBI_QUERIES_INDEX}: {created.status}")
        elif reply.status != 200:
            raise UpstreamError(f"checking {UBI_QUERIES_INDEX}: {reply.status}")
        self._ready = True

    async def flush(self) -> None:
        """Write everything queued; raises ``UpstreamError`` while some of it must wait."""
        async with self._flushing:
            while self._queue:
                batch = self._made(self.batch)
                try:
                    await self._ensure_index()
                    written = await write(
                        self.transport,
                        [
                            (
                                {
                                    "index": {
                                        "_index": UBI_QUERIES_INDEX,
                                        "_id": r["query_response_id"],
                                    }
                                },
                                r,
                            )
                            for r in batch
                        ],
                    )
                except BaseException:
                    self._queue[:0] = batch  # first in line next time
                    raise
                self._queue[:0] = [batch[i] for i in written.retry]
                self.written += len(written.stored)
                for position, reason in written.refused:
                    self._refused(batch[position], reason)
                if written.retry:
                    raise UpstreamError(
                        f"{UBI_QUERIES_INDEX}: {len(written.retry)} records not written yet"
                    )

    def _made(self, count: int) -> list[dict[str, Any]]:
        """The first ``count`` queued records, made now, off the queue. One that cannot be
        made (a bug, never the client's input) is logged and dropped, not left to block."""
        head = self._queue[:count]
        del self._queue[: len(head)]
        made = []
        for record in head:
            try:
                made.append(record() if callable(record) else record)
            except Exception:
                log.exception("a %s record could not be made", UBI_QUERIES_INDEX)
                self.dropped += 1
        return made

    def _refused(self, record: Mapping[str, Any], reason: Mapping[str, Any]) -> None:
        log.warning("%s refused a record for good: %s", UBI_QUERIES_INDEX, reason)
        self.last_error = str(reason.get("reason", reason))[:300]
        if self.dead_letters is None:
            self.dropped += 1
            return
        self.dead_letters.add(UBI_QUERIES_INDEX, record, reason)
        self.dead_lettered += 1

    async def run(self, interval: float = 1.0) -> None:
        while True:
            await asyncio.sleep(interval)
            await self.flush_once()

    async def flush_once(self) -> bool:
        """One attempt; a failure is counted and logged, the records stay queued."""
        try:
            await self.flush()
        except (UpstreamError, TimeoutError, OSError) as exc:
            self.failed_flushes += 1
            self.last_error = str(exc)[:300]
            log.warning("%s: write failed, will retry: %s", UBI_QUERIES_INDEX, exc)
            return False
        return True

    def snapshot(self) -> dict[str, Any]:
        return {
            "queued": len(self._queue),
            "written": self.written,
            "dropped": self.dropped,
            "dead_lettered": self.dead_lettered,
            "failed_flushes": self.failed_flushes,
            "last_error": self.last_error,
        }
