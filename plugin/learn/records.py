"""Decision records: what a decision's feedback needs, kept for the catalog's feedback window.

A record is made where the decision was made (its ``owner`` closes the window) or read back
from ``ltrr-decisions`` by another replica. ``document`` and ``from_document`` are the one
translation between the two, so both replicas learn from exactly the same facts.
"""

from __future__ import annotations

import heapq
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ltrr.bandit.decision import Decision
from ltrr.query_plans.memory import exact_key
from ltrr.query_plans.rerank import RankedHit
from ltrr.query_plans.rollout import BASELINE


@dataclass(slots=True)
class DecisionRecord:
    """What a decision's feedback needs, kept for the catalog's window."""

    decision_id: str
    target: str
    feature_names: tuple[str, ...]
    x: tuple[float, ...]  # the context the policy saw, handed back to the agent with rewards
    included: tuple[str, ...]
    results: dict[str, frozenset[str]]  # arm -> ids it retrieved
    returned: dict[str, str]  # id -> index, every candidate the proxy could show
    query_key: str
    created: float
    expires: float
    owner: bool  # made here: this replica closes its window
    query: str = ""  # as the caller sent it (a plan policy keeps each query's own record)
    plan: str | None = None  # the plan a plan policy drew (None: arms were drawn one by one)
    nonce: str = ""  # drawn for this decision: its feedback token signs id and nonce
    learns: bool = True  # False: a rollout's baseline search, whose events are logged only
    observed: bool = False  # the agent already holds this context (a first event was applied)
    seen: set[str] = field(default_factory=set)  # event ids applied
    per_object: Counter[str] = field(default_factory=Counter)  # events applied per object

    def footprint(self) -> int:
        """About the bytes this record holds (CPython objects, measured with tracemalloc on
        typical records and rounded up), so that the open windows can be capped in bytes."""
        sets = sum(250 + sum(90 + len(i) for i in ids) for ids in self.results.values())
        shown = sum(110 + len(i) for i in self.returned)
        return 1000 + 40 * len(self.x) + 2 * len(self.query) + sets + shown

    @property
    def open_without_feedback(self) -> bool:
        """Its window would close with reward 0: made here, and no event applied or pending."""
        return self.owner and not (self.observed or self.seen)


@dataclass(frozen=True, slots=True)
class Served:
    """How the search was answered, logged for the live report (latency, fallbacks)."""

    took_ms: float  # from the request's arrival to the ranked list, as the caller waits
    timings_ms: Mapping[str, float]  # per stage: decide, embed, retrieve, fuse, rerank
    fallback: str | None  # why the catalog's fallback plan answered, None when it did not


@dataclass(frozen=True, slots=True)
class Searched:
    """One intercepted search, as the learner is told of it."""

    decision_id: str
    target: str
    catalog: str  # the catalog's digest
    policy_version: int
    feature_names: tuple[str, ...]
    query: str
    context: Mapping[str, object]
    decision: Decision
    results: Mapping[str, frozenset[str]]  # arm -> ids, for each arm that answered
    ranked: Sequence[RankedHit]
    nonce: str = ""
    served: Served | None = None
    rollout: Mapping[str, Any] | None = None  # the side or the teams, when a rollout runs

    @property
    def compared(self) -> bool:
        """A rollout's baseline search: no policy to teach, but its clicks are the baseline's
        side of the comparison, so its events are taken and logged all the same."""
        return self.rollout is not None and self.rollout.get("side") == BASELINE

    def record(self, now: float, window: float) -> DecisionRecord | None:
        """The record its feedback is matched against; None when nothing can be learned."""
        x = self.decision.features
        learns = self.decision.learnable and x is not None
        if not learns and not self.compared:
            return None
        return DecisionRecord(
            decision_id=self.decision_id,
            target=self.target,
            feature_names=self.feature_names,
            x=x if x is not None and learns else (),
            learns=learns,
            included=tuple(c.arm for c in self.decision.included if c.arm in self.results),
            results=dict(self.results),
            returned={h.hit.id: h.hit.index for h in self.ranked},
            query_key=exact_key(self.query),
            created=now,
            expires=now + window,
            owner=True,
            query=self.query,
            plan=self.decision.plan,
            nonce=self.nonce,
        )

    def document(self, now: float, window: float) -> dict[str, Any]:
        """The ``ltrr-decisions`` document: enough for off-policy estimates and for another
        replica to take this decision's feedback."""
        decision = self.decision
        return {
            "decision_id": self.decision_id,
            "target": self.target,
            "catalog": self.catalog,
            "policy": decision.policy,
            "policy_version": self.policy_version,
            "timestamp": now,
            "window_seconds": window,
            "query": self.query,
            "context": dict(self.context),
            "learnable": decision.learnable,
            "plan": decision.plan,
            "nonce": self.nonce,
            "plan_propensity": decision.plan_propensity,
            "set_propensity": decision.set_propensity,
            "feature_names": list(self.feature_names),
            "features": list(decision.features) if decision.features is not None else None,
            "arms": {
                c.arm: {
                    "included": c.included,
                    "size": c.size,
                    "propensity": c.propensity,
                    "score": c.score,
                    "ok": c.arm in self.results,  # a failed arm is no evidence either way
                    "results": sorted(self.results.get(c.arm, ())),
                }
                for c in decision.choices
            },
            "returned": [[h.hit.index, h.hit.id] for h in self.ranked],
            **(_served(self.served) if self.served is not None else {}),
            **({"rollout": dict(self.rollout)} if self.rollout is not None else {}),
        }


def _served(served: Served) -> dict[str, Any]:
    return {
        "took_ms": round(served.took_ms, 3),
        "timings_ms": {stage: round(ms, 3) for stage, ms in served.timings_ms.items()},
        "fallback": served.fallback,
    }


def from_document(decision_id: str, doc: Mapping[str, Any]) -> DecisionRecord:
    """Another replica's decision, read back from ``ltrr-decisions``; it never owns it."""
    arms = doc["arms"]
    created = float(doc["timestamp"])
    return DecisionRecord(
        decision_id=decision_id,
        target=doc["target"],
        feature_names=tuple(doc["feature_names"]),
        x=tuple(float(v) for v in doc["features"] or ()),
        included=tuple(a for a, info in arms.items() if info["included"] and info["ok"]),
        results={a: frozenset(info["results"]) for a, info in arms.items()},
        returned={doc_id: index for index, doc_id in doc["returned"]},
        query_key=exact_key(doc["query"]),
        created=created,
        expires=created + float(doc["window_seconds"]),
        owner=False,
        query=str(doc["query"]),
        plan=doc.get("plan"),
        nonce=str(doc.get("nonce") or ""),
        learns=bool(doc.get("learnable")),
    )


class OpenWindows:
    """The records whose windows are open, oldest first: at most ``limit`` of them, holding
    at most ``max_bytes`` (``DecisionRecord.footprint``).

    A record leaves when its window ends (``expired``), when the open ones are over either cap
    (the oldest go early), or when a client reuses its decision id (the newer one wins).
    """

    def __init__(self, limit: int, max_bytes: int = 256 * 1024 * 1024) -> None:
        self.limit = limit
        self.max_bytes = max_bytes
        self.bytes = 0
        self._records: dict[str, DecisionRecord] = {}
        self._sizes: dict[str, int] = {}
        self._expiry: list[tuple[float, str]] = []

    def __len__(self) -> int:
        return len(self._records)

    def get(self, decision_id: str) -> DecisionRecord | None:
        return self._records.get(decision_id)

    def put(self, record: DecisionRecord) -> DecisionRecord | None:
        """Keep ``record``; returns the record it replaced under the same id, if any."""
        replaced = self._records.get(record.decision_id)
        self._records[record.decision_id] = record
        size = record.footprint()
        self.bytes += size - self._sizes.get(record.decision_id, 0)
        self._sizes[record.decision_id] = size
        heapq.heappush(self._expiry, (record.expires, record.decision_id))
        return replaced

    def _forget(self, decision_id: str) -> DecisionRecord:
        self.bytes -= self._sizes.pop(decision_id)
        return self._records.pop(decision_id)

    def expired(self, now: float) -> Iterator[DecisionRecord]:
        """Take out every record whose window ended by ``now``."""
        while self._expiry and self._expiry[0][0] <= now:
            record = self._pop_oldest()
            if record is not None:
                yield record

    def expired_for(self, now: float, targets: frozenset[str]) -> Iterator[DecisionRecord]:
        """Take out the records of ``targets`` whose window ended by ``now``, oldest first
        (their heap entries go stale and are skipped later)."""
        ended = sorted(
            (r for r in self._records.values() if r.target in targets and r.expires <= now),
            key=lambda r: (r.expires, r.decision_id),
        )
        for record in ended:
            self._forget(record.decision_id)
            yield record
        if len(self._expiry) > 2 * len(self._records) + 1024:  # drop the stale heap entries
            self._expiry = [(r.expires, r.decision_id) for r in self._records.values()]
            heapq.heapify(self._expiry)

    def over_limit(self) -> Iterator[DecisionRecord]:
        """Take out the oldest records while the open ones are over either cap."""
        while (len(self._records) > self.limit or self.bytes > self.max_bytes) and self._expiry:
            record = self._pop_oldest()
            if record is not None:
                yield record

    def _pop_oldest(self) -> DecisionRecord | None:
        expires, decision_id = heapq.heappop(self._expiry)
        record = self._records.get(decision_id)
        if record is None or record.expires != expires:
            return None  # already gone, or the id was reused by a newer decision
        return self._forget(decision_id)


def close_all(records: Iterator[DecisionRecord], zero: Callable[[DecisionRecord], int]) -> int:
    """Close each record's window; ``zero`` rewards the ones that got no feedback."""
    return sum(zero(r) for r in records if r.open_without_feedback)
