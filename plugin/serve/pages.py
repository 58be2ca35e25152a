"""Ranked lists kept for pagination, so the next page comes from the same list.

A later page finds its list by ``decision_id`` (or UBI's ``query_id``), or by the same query,
context and filters on the same catalog version within the TTL. Pages then never overlap or
skip, whatever the bandit would draw next time. The cache is per process, and bounded (LRU)
both in lists and in the hits they hold, since each hit keeps its ``_source``.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from ltrr.query_plans.rerank import RankedHit


@dataclass(slots=True)
class RankedList:
    """One decision's final order and what ``ext.ltrr`` reports about it."""

    decision_id: str
    hits: list[RankedHit]
    ext: dict[str, Any]
    shards: dict[str, int]
    fingerprint: str
    created: float = field(default=0.0)
    # What the UBI query record says of the decision beyond ``ext`` (the plan drawn, say).
    attributes: dict[str, Any] = field(default_factory=dict)


def fingerprint(
    catalog_digest: str,
    target: str,
    query: str,
    context: Mapping[str, object],
    filters: object,
    post_filter: object,
    source: object,
) -> str:
    return orjson.dumps(
        [catalog_digest, target, query, context, filters, post_filter, source],
        option=orjson.OPT_SORT_KEYS,
    ).decode()


class PageCache:
    def __init__(
        self,
        ttl_seconds: float = 300.0,
        max_entries: int = 10_000,
        max_hits: int = 200_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.ttl = ttl_seconds
        self.max_entries = max_entries
        self.max_hits = max_hits
        self.clock = clock
        self.hits = 0
        self._by_id: OrderedDict[str, RankedList] = OrderedDict()
        self._by_fingerprint: dict[str, str] = {}

    def __len__(self) -> int:
        return len(self._by_id)

    def _fresh(self, ranked: RankedList | None) -> RankedList | None:
        if ranked is None:
            return None
        if self.clock() - ranked.created > self.ttl:
            self._drop(ranked.decision_id)
            return None
        self._by_id.move_to_end(ranked.decision_id)
        return ranked

    def by_id(self, decision_id: str) -> RankedList | None:
        return self._fresh(self._by_id.get(decision_id))

    def by_fingerprint(self, key: str) -> RankedList | None:
        decision_id = self._by_fingerprint.get(key)
        return self.by_id(decision_id) if decision_id is not None else None

    def put(self, ranked: RankedList) -> None:
        ranked.created = self.clock()
        self._drop(ranked.decision_id)
        self._by_id[ranked.decision_id] = ranked
        self._by_fingerprint[ranked.fingerprint] = ranked.decision_id
        self.hits += len(ranked.hits)
        while len(self._by_id) > 1 and (
            len(self._by_id) > self.max_entries or self.hits > self.max_hits
        ):
            oldest = next(iter(self._by_id))
            self._drop(oldest)

    def _drop(self, decision_id: str) -> None:
        old = self._by_id.pop(decision_id, None)
        if old is None:
            return
        self.hits -= len(old.hits)
        if self._by_fingerprint.get(old.fingerprint) == decision_id:
            del self._by_fingerprint[old.fingerprint]
