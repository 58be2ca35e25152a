"""The memory arm as it learns, replayed: captured predictions plus the Q2E scores users taught.

The capture holds what the memory arm returns before anyone has clicked (the index-time
predictions). The proxy then adds learned scores to the entity documents, and the arm's
``rank_feature`` clauses are linear, so its score for an entity is the captured one plus the
learned score of the query's exact key plus half that of its near key (the template's boosts).
The learned scores are computed here with the proxy's own ``KeyStats`` rules (decay by
simulated time, smoothing), written as soon as a session ends: in simulated time the proxy's
flush interval is shorter than the gap between two sessions.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from ltrr.query_plans.catalog import Catalog, MemoryConfig
from ltrr.query_plans.fusion.base import ArmHit
from ltrr.query_plans.memory import KeyStats, exact_key, near_key, rank_feature_value

MEMORY_TEMPLATE = "memory.json.j2"
NEAR_BOOST = 0.5  # the template's boost on the near key's clause


def memory_arm(catalog: Catalog) -> str | None:
    """The arm that reads the memory (the shipped template), when the catalog keeps one."""
    if catalog.memory is None:
        return None
    for arm in catalog.arms:
        if Path(str(arm.template)).name == MEMORY_TEMPLATE:
            return arm.name
    return None


class ReplayMemory:
    """One contender's learned Q2E scores, keyed like ``ltrr-memory``: per exact query key."""

    def __init__(self, config: MemoryConfig, index: str) -> None:
        self.config = config
        self.index = index
        self._keys: dict[str, KeyStats] = {}
        self._near: dict[str, set[str]] = {}

    def _stats(self, key: str, now: float) -> KeyStats:
        stats = self._keys.get(key)
        if stats is None:
            stats = self._keys[key] = KeyStats(updated=now)
            self._near.setdefault(near_key(key), set()).add(key)
        elif now > stats.updated:
            stats = self._keys[key] = stats.decayed_to(now, self.config.half_life_days)
        return stats

    def searched(self, query: str, now: float) -> None:
        key = exact_key(query)
        if key:
            self._stats(key, now).searches += 1.0

    def engaged(self, query: str, doc_id: str, weight: float, now: float) -> None:
        key = exact_key(query)
        if key and weight > 0.0:
            stats = self._stats(key, now)
            ref = f"{self.index}/{doc_id}"
            stats.engaged[ref] = stats.engaged.get(ref, 0.0) + weight

    def _learned(self, key: str) -> dict[str, float]:
        stats = self._keys.get(key)
        if stats is None:
            return {}
        out = {}
        for ref in stats.engaged:
            value = rank_feature_value(stats.score(ref, self.config.smoothing))
            if value is not None:
                out[ref.partition("/")[2]] = value
        return out

    def _near_projection(self, key: str) -> dict[str, float]:
        """doc id -> the best learned score among the exact keys that share ``key``'s near
        key, as the proxy projects it onto the near key."""
        near: dict[str, float] = {}
        for other in self._near.get(near_key(key), ()):
            for doc_id, value in self._learned(other).items():
                near[doc_id] = max(near.get(doc_id, 0.0), value)
        return near

    def learned(self, query: str) -> dict[str, float]:
        """doc id -> the learned score the memory feature reads now: the exact key's, plus
        half of the best score under the query's near key (as the proxy projects it)."""
        key = exact_key(query)
        if not key:
            return {}
        scores = dict(self._learned(key))
        for doc_id, value in self._near_projection(key).items():
            scores[doc_id] = scores.get(doc_id, 0.0) + NEAR_BOOST * value
        return scores

    def hits(self, query: str, captured: Sequence[ArmHit], size: int) -> tuple[ArmHit, ...]:
        """The arm's list now: captured predictions plus what the memory learned, best first."""
        key = exact_key(query)
        if not key:
            return tuple(captured[:size])
        scores = {hit.id: hit.score for hit in captured}
        for doc_id, value in self._learned(key).items():
            scores[doc_id] = scores.get(doc_id, 0.0) + value
        for doc_id, value in self._near_projection(key).items():
            scores[doc_id] = scores.get(doc_id, 0.0) + NEAR_BOOST * value
        # Stable: equal scores keep the node's order, then the learned ones in insertion order.
        ranked = sorted(scores.items(), key=lambda item: -item[1])[:size]
        return tuple(
            ArmHit(self.index, doc_id, score, rank)
            for rank, (doc_id, score) in enumerate(ranked, start=1)
        )
