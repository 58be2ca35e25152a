"""The proxy's own writes to OpenSearch: ``_bulk``, ``_mget``, and its indices' creation.

Everything the learning loop stores (events, decisions, bandit statistics, memory counts) goes
through here, in batches and off the search path. The proxy writes as itself: these requests
carry no caller's credentials.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from ltrr.plugin.learn.logs import TimeLog
from ltrr.plugin.runtime.upstream import Transport, UpstreamError

log = logging.getLogger("ltrr.bulk")

JSON = {"Content-Type": "application/json"}
NDJSON = {"Content-Type": "application/x-ndjson"}

# Every name the learning loop uses starts with this: two proxies with their own prefixes keep
# their own learning on one cluster (the integration tests use it not to meet other runs).
PREFIX_ENV = "LTRR_INDEX_PREFIX"
PREFIX = os.environ.get(PREFIX_ENV, "ltrr")
if not re.fullmatch(r"[a-z0-9][a-z0-9_-]{0,100}", PREFIX):
    raise ValueError(f"{PREFIX_ENV}={PREFIX!r}: lowercase letters, digits, '_' and '-' only")

# The two logs are aliases over daily indices (see ``logs``); the state and the memory are
# one index each.
EVENTS_INDEX = f"{PREFIX}-events"
DECISIONS_INDEX = f"{PREFIX}-decisions"
STATE_INDEX = f"{PREFIX}-state"
MEMORY_INDEX = f"{PREFIX}-memory"

_KEYWORD = {"type": "keyword"}
_DATE = {"type": "date", "format": "epoch_second"}
# Only what audit and off-policy evaluation filter on is indexed; the rest is kept in _source.
LOG_BODIES: Mapping[str, Mapping[str, Any]] = {
    EVENTS_INDEX: {
        "settings": {"index": {"number_of_shards": 1, "auto_expand_replicas": "0-1"}},
        "mappings": {
            "dynamic": False,
            "properties": {
                "event_id": _KEYWORD,
                "decision_id": _KEYWORD,
                "type": _KEYWORD,
                "object_id": _KEYWORD,
                "source": _KEYWORD,
                "target": _KEYWORD,
                "catalog": _KEYWORD,
                "position": {"type": "integer"},
                "value": {"type": "double"},
                "base_weight": {"type": "double"},
                "weight": {"type": "double"},
                "timestamp": _DATE,
                "received": _DATE,
            },
        },
    },
    DECISIONS_INDEX: {
        "settings": {"index": {"number_of_shards": 1, "auto_expand_replicas": "0-1"}},
        "mappings": {
            "dynamic": False,
            "properties": {
                "decision_id": _KEYWORD,
                "target": _KEYWORD,
                "catalog": _KEYWORD,
                "policy": _KEYWORD,
                "plan": _KEYWORD,
                "policy_version": {"type": "long"},
                "query": {"type": "text", "fields": {"keyword": _KEYWORD}},
                "timestamp": _DATE,
                "window_seconds": {"type": "double"},
            },
        },
    },
}
# An event's day is when the proxy took it (the client's own timestamp may be anything); a
# decision's is when it was made. Both are written once and resent unchanged.
EVENTS_LOG = TimeLog(EVENTS_INDEX, "received", LOG_BODIES[EVENTS_INDEX])
DECISIONS_LOG = TimeLog(DECISIONS_INDEX, "timestamp", LOG_BODIES[DECISIONS_INDEX])
LOGS = (EVENTS_LOG, DECISIONS_LOG)

INDEX_BODIES: Mapping[str, Mapping[str, Any]] = {
    STATE_INDEX: {
        "settings": {"index": {"number_of_shards": 1, "auto_expand_replicas": "0-1"}},
        "mappings": {"dynamic": False, "properties": {"target": _KEYWORD, "arm": _KEYWORD}},
    },
    MEMORY_INDEX: {
        "settings": {"index": {"number_of_shards": 1, "auto_expand_replicas": "0-1"}},
        "mappings": {"dynamic": False, "properties": {"target": _KEYWORD, "key": _KEYWORD}},
    },
}


@dataclass(frozen=True, slots=True)
class Versioned:
    """A document as read, with what a guarded write must quote back."""

    source: dict[str, Any]
    seq_no: int
    primary_term: int


def guarded(index: str, doc_id: str, current: Versioned | None) -> dict[str, Any]:
    """The bulk action that writes ``doc_id`` only if nobody wrote it since ``current`` was
    read: ``create`` when it did not exist, else ``index`` quoting its sequence number."""
    meta: dict[str, Any] = {"_index": index, "_id": doc_id}
    if current is None:
        return {"create": meta}
    meta["if_seq_no"] = current.seq_no
    meta["if_primary_term"] = current.primary_term
    return {"index": meta}


async def ensure_indices(transport: Transport, names: Sequence[str] = tuple(INDEX_BODIES)) -> None:
    """Create the learning loop's indices that do not exist yet (a race with a replica is fine)."""
    for name in names:
        reply = await transport.request("HEAD", f"/{name}", headers={}, body=None, timeout=10.0)
        if reply.status == 200:
            # Fields added since the index was made: adding to a mapping is idempotent.
            mapping = {"properties": INDEX_BODIES[name]["mappings"]["properties"]}
            await transport.request(
                "PUT", f"/{name}/_mapping", headers=JSON, body=orjson.dumps(mapping), timeout=30.0
            )
            continue
        reply = await transport.request(
            "PUT", f"/{name}", headers=JSON, body=orjson.dumps(INDEX_BODIES[name]), timeout=30.0
        )
        if reply.status >= 300 and b"resource_already_exists_exception" not in reply.body:
            raise UpstreamError(f"creating {name}: {reply.status} {reply.body[:300]!r}")


def bulk_body(actions: Sequence[tuple[Mapping[str, Any], Mapping[str, Any] | None]]) -> bytes:
    out = bytearray()
    for action, source in actions:
        out += orjson.dumps(action)
        out += b"\n"
        if source is not None:
            out += orjson.dumps(source)
            out += b"\n"
    return bytes(out)


class BulkRefused(UpstreamError):
    """OpenSearch refused a whole ``_bulk`` for what it holds (a 400 or 413): one bad action,
    an over-long ``_id`` say, refuses every item with it."""


# Not the record's fault: credentials being fixed (401, 403), an index being recreated (404).
_NOT_THE_RECORD = frozenset({401, 403, 404, 408, 429})


def retryable(status: int) -> bool:
    """Busy, failing, or not allowed yet: the same write may succeed later, so it is kept."""
    return status in _NOT_THE_RECORD or status >= 500


@dataclass(frozen=True, slots=True)
class Written:
    """What became of each action of a write, by its position in the batch."""

    stored: tuple[int, ...]
    refused: tuple[tuple[int, Mapping[str, Any]], ...]  # for good, with OpenSearch's reason
    retry: tuple[int, ...]  # busy or failing: send again later

    def shifted(self, by: int) -> Written:
        return Written(
            tuple(i + by for i in self.stored),
            tuple((i + by, r) for i, r in self.refused),
            tuple(i + by for i in self.retry),
        )

    def __add__(self, other: Written) -> Written:
        return Written(
            self.stored + other.stored, self.refused + other.refused, self.retry + other.retry
        )


async def write(
    transport: Transport,
    actions: Sequence[tuple[Mapping[str, Any], Mapping[str, Any] | None]],
    *,
    timeout: float = 30.0,
) -> Written:
    """``bulk``, item by item: which actions were stored, refused for good, or are to retry.

    A whole request refused is split in halves until the refused actions are found alone, so
    one bad record never holds back the others. Raises ``UpstreamError`` when OpenSearch could
    not be reached or was busy for the whole request: the caller keeps its batch.
    """
    try:
        results = await bulk(transport, actions, timeout=timeout)
    except BulkRefused as exc:
        if len(actions) == 1:
            return Written((), ((0, {"type": "bulk_refused", "reason": str(exc)}),), ())
        half = len(actions) // 2
        first = await write(transport, actions[:half], timeout=timeout)
        rest = await write(transport, actions[half:], timeout=timeout)
        return first + rest.shifted(half)
    stored: list[int] = []
    refused: list[tuple[int, Mapping[str, Any]]] = []
    retry: list[int] = []
    for position, (status, result) in enumerate(results):
        if status < 300:
            stored.append(position)
        elif retryable(status):
            retry.append(position)
        else:
            error = result.get("error")
            refused.append((position, error if isinstance(error, dict) else {"status": status}))
    return Written(tuple(stored), tuple(refused), tuple(retry))


async def bulk(
    transport: Transport,
    actions: Sequence[tuple[Mapping[str, Any], Mapping[str, Any] | None]],
    *,
    timeout: float = 30.0,
) -> list[tuple[int, Mapping[str, Any]]]:
    """Send one ``_bulk``; per action, its status and result, in order.

    Raises ``UpstreamError`` when the request as a whole failed, so a caller keeps its batch.
    """
    if not actions:
        return []
    reply = await transport.request(
        "POST", "/_bulk", headers=NDJSON, body=bulk_body(actions), timeout=timeout
    )
    if reply.status != 200:
        error = UpstreamError if retryable(reply.status) else BulkRefused
        raise error(f"_bulk answered {reply.status}: {reply.body[:300]!r}")
    try:
        items = reply.json()["items"]
        out: list[tuple[int, Mapping[str, Any]]] = []
        for item in items:
            ((_, result),) = item.items()
            out.append((int(result.get("status", 500)), result))
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError, AttributeError):
        raise UpstreamError(f"_bulk answered 200 with no items: {reply.body[:300]!r}") from None
    if len(out) != len(actions):
        raise UpstreamError(f"_bulk answered {len(out)} items for {len(actions)} actions")
    return out


async def mget(
    transport: Transport, index: str, ids: Sequence[str], *, timeout: float = 10.0
) -> dict[str, Versioned]:
    """The documents that exist among ``ids`` (real-time: a write just made is seen)."""
    if not ids:
        return {}
    reply = await transport.request(
        "POST",
        f"/{index}/_mget",
        headers=JSON,
        body=orjson.dumps({"ids": list(ids)}),
        timeout=timeout,
    )
    if reply.status == 404:  # the index itself is missing: nothing stored yet
        return {}
    if reply.status != 200:
        raise UpstreamError(f"_mget {index} answered {reply.status}: {reply.body[:300]!r}")
    found: dict[str, Versioned] = {}
    for doc in reply.json().get("docs", []):
        if doc.get("found"):
            found[doc["_id"]] = Versioned(doc["_source"], doc["_seq_no"], doc["_primary_term"])
    return found


class BulkQueue:
    """Documents written in the background in batches; bounded, as they are not acknowledged.

    Decisions are logged for audit and off-policy evaluation; when OpenSearch is down for long,
    the oldest are dropped (and counted) rather than growing without limit.
    """

    def __init__(
        self,
        transport: Transport,
        index: str,
        *,
        batch: int = 500,
        max_queued: int = 100_000,
        index_of: Callable[[Mapping[str, Any]], str] | None = None,
    ) -> None:
        self.transport = transport
        self.index = index
        # Where each document goes (a log's day index, by the document's own time).
        self.index_of = index_of or (lambda _doc: index)
        self.batch = batch
        self.max_queued = max_queued
        self._queue: list[tuple[str, Mapping[str, Any]]] = []
        # One flush at a time: each takes the head of the queue and deletes it once written,
        # so two at once (the simulated clock's requests, say) would delete what the other
        # had not sent.
        self._flushing = asyncio.Lock()
        self.dropped = 0
        self.written = 0

    def __len__(self) -> int:
        return len(self._queue)

    def put(self, doc_id: str, doc: Mapping[str, Any]) -> None:
        self._queue.append((doc_id, doc))
        if len(self._queue) > self.max_queued:
            excess = len(self._queue) - self.max_queued
            del self._queue[:excess]
            self.dropped += excess

    async def flush(self) -> None:
        """Write everything queued; raises ``UpstreamError`` while some of it must wait."""
        async with self._flushing:
            await self._flush()

    async def _flush(self) -> None:
        while self._queue:
            # Off the queue before the write, so ``put`` may trim the queue meanwhile.
            batch = self._queue[: self.batch]
            del self._queue[: len(batch)]
            actions = [({"index": {"_index": self.index_of(d), "_id": i}}, d) for i, d in batch]
            try:
                written = await write(self.transport, actions)
            except BaseException:
                self._queue[:0] = batch  # not written: first in line next time
                raise
            self._queue[:0] = [batch[i] for i in written.retry]
            self.written += len(written.stored)
            if written.refused:  # refused for good: retrying would only block the rest
                self.dropped += len(written.refused)
                log.warning(
                    "%s: %d documents refused, e.g. %s",
                    self.index,
                    len(written.refused),
                    written.refused[0][1],
                )
            if written.retry:
                raise UpstreamError(
                    f"{self.index}: {len(written.retry)} documents not written yet, will retry"
                )

    async def run(self, interval: float = 1.0) -> None:
        while True:
            await asyncio.sleep(interval)
            try:
                await self.flush()
            except UpstreamError as exc:
                log.warning("%s: bulk write failed, will retry: %s", self.index, exc)
