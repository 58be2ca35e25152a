"""The learn step: user actions come back, reward the arms that found what users engaged with.

For every decision the proxy keeps, for the catalog's feedback window, what the policy saw
(the context vector), what it chose, and what each arm retrieved. Feedback arrives through
``POST /_ltrr/feedback`` or, unchanged for the client, as UBI events written to ``ubi_events``
through the proxy. Each accepted event is:

1. validated against its decision (known, in its window, an event type of the catalog, an
   object the decision returned) and deduplicated by event id;
2. appended to the local durable log and fsync'd, before anything is acknowledged;
3. turned into per-arm semi-bandit rewards and applied to the policy at once;
4. counted for the memory (Q2E) index, and later shipped to ``ltrr-events``.

A decision's context counts once per included arm however many events it gets: the first
event updates A and b, later ones only add to b. The replica that made the decision closes its
window; one that gets no feedback counts as reward 0 for every arm it included. Feedback that
reaches another replica adds its rewards there (b only), so after the replicas merge the
statistics are exactly as if one process had seen everything.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from contextlib import suppress
from pathlib import Path
from typing import Any

import orjson

from ltrr.bandit.decision import Decision
from ltrr.plugin.errors import Forbidden, InvalidEvent, UnknownDecision
from ltrr.plugin.learn.bulk import (
    DECISIONS_INDEX,
    DECISIONS_LOG,
    JSON,
    LOGS,
    STATE_INDEX,
    BulkQueue,
)
from ltrr.plugin.learn.deadletter import DeadLetters
from ltrr.plugin.learn.eventlog import EventLog
from ltrr.plugin.learn.feedback import FeedbackEvent, parse_feedback, stored_seconds, ubi_events
from ltrr.plugin.learn.intake import Accepted, accept, invalid, over_caps, within_caps
from ltrr.plugin.learn.logs import DAY_SECONDS, Logs, days_between
from ltrr.plugin.learn.memorize import MemoryUpdater
from ltrr.plugin.learn.records import (
    DecisionRecord,
    OpenWindows,
    Searched,
    Served,
    close_all,
    from_document,
)
from ltrr.plugin.learn.shipping import Shipper
from ltrr.plugin.learn.sync import StateSync
from ltrr.plugin.learn.tokens import TOKEN_HEADER, FeedbackTokens
from ltrr.plugin.learn.watch import IndexWatch
from ltrr.plugin.runtime import metrics
from ltrr.plugin.runtime.registry import CatalogRegistry, CatalogRuntime
from ltrr.plugin.runtime.stats import Stats
from ltrr.plugin.runtime.upstream import Transport, UpstreamError
from ltrr.query_plans.memory import entity_ref, exact_key
from ltrr.query_plans.rerank import RankedHit
from ltrr.query_plans.rollout import BASELINE

log = logging.getLogger("ltrr.learn")

MAX_EVENTS_PER_REQUEST = 100_000  # the catalog's own max_events is checked once it is known
WATCH_SECONDS = 5.0  # how often the learning indices are checked for deletion
FINAL_ATTEMPTS = 3  # writes at shutdown, each retried this often before it is given up
DUE_DECISIONS_BATCH = 1_000  # on a simulated clock, the decision log is written this many at once
RETENTION_SECONDS = 600.0  # how often the logs' days past the retention are looked for
DEFAULT_RETENTION_DAYS = 30
CLOCK_SKEW_SECONDS = 3_600.0  # between replicas, when looking for another's decision by day


class Learner:
    """The learning loop as the serving layer sees it: ``record`` each decision, take
    ``feedback`` and ``ubi`` events, and run the background writers between ``start`` and
    ``stop``."""

    def __init__(
        self,
        transport: Transport,
        registry: CatalogRegistry,
        data_dir: Path,
        stats: Stats,
        *,
        state_interval: float = 2.0,
        clock: Callable[[], float] = time.time,
        fsync: bool = True,
        max_decisions: int = 200_000,
        max_open_bytes: int = 256 * 1024 * 1024,
        background: bool = True,
        retention_days: int = DEFAULT_RETENTION_DAYS,
    ) -> None:
        self.transport = transport
        self.registry = registry
        self.stats = stats
        self.clock = clock
        self.events = EventLog(data_dir / "events", fsync=fsync)
        self.dead_letters = DeadLetters(data_dir)
        self.tokens = FeedbackTokens.load(data_dir)
        self.logs = Logs(transport, LOGS, retention_days)
        self.watch = IndexWatch(transport, logs=self.logs, clock=clock)
        self.shipper = Shipper(transport, self.events, self.dead_letters)
        self.decisions = BulkQueue(transport, DECISIONS_INDEX, index_of=DECISIONS_LOG.index_of)
        self._retained_day: int | None = None  # on a simulated clock: the day last retained
        self.memory = MemoryUpdater(transport, clock)
        self.state = StateSync(transport, registry.runtimes, interval=state_interval)
        self._open = OpenWindows(max_decisions, max_open_bytes)
        self._tasks: list[asyncio.Task[None]] = []
        self.background = background  # False: the caller runs ``due`` (a simulated clock)

    # -- decisions ----------------------------------------------------------------------------

    def record(
        self,
        runtime: CatalogRuntime,
        decision_id: str,
        query: str,
        context: Mapping[str, object],
        decision: Decision,
        results: Mapping[str, frozenset[str]],
        ranked: Sequence[RankedHit],
        nonce: str = "",
        served: Served | None = None,
        *,
        rollout: Mapping[str, Any] | None = None,
    ) -> None:
        """Keep a decision for its window and queue it for ``ltrr-decisions``.

        ``results`` holds, for each arm that answered, the ids it retrieved (a failed arm is
        absent: it is no evidence either way)."""
        catalog = runtime.catalog
        now = self.clock()
        window = catalog.feedback.window_seconds
        searched = Searched(
            decision_id,
            runtime.state_key,
            catalog.digest,
            runtime.agent.version(),
            runtime.agent.feature_names,
            query,
            context,
            decision,
            results,
            ranked,
            nonce,
            served,
            rollout,
        )
        record = searched.record(now, window)
        if record is not None:
            replaced = self._open.put(record)
            if replaced is not None and replaced.open_without_feedback:
                self._zero_reward(replaced)  # a client reused its id: close the older window
            self._bound()
        if catalog.memory is not None:
            self.memory.searched(runtime.state_key, catalog.memory, exact_key(query))
        self.decisions.put(decision_id, searched.document(now, window))

    async def _find(self, decision_id: str) -> DecisionRecord:
        """The decision's record: this replica's, else the one another replica logged."""
        record = self._open.get(decision_id) or await self._fetch(decision_id)
        if self.clock() > record.expires:
            raise UnknownDecision(f"decision {decision_id!r} is past its feedback window")
        return record

    async def _fetch(self, decision_id: str) -> DecisionRecord:
        """A decision another replica made, from ``ltrr-decisions``; kept for its window.

        Read in real time from the day indices its window can reach (a get through an alias of
        several indices is refused), and from the index kept from before the days."""
        doc = await self._logged_decision(decision_id)
        if doc is None:
            raise UnknownDecision(
                f"unknown decision {decision_id!r}: no search made it, or its feedback window "
                "closed and it was forgotten"
            )
        if float(doc["timestamp"]) + float(doc["window_seconds"]) < self.clock():
            raise UnknownDecision(f"decision {decision_id!r} is past its feedback window")
        if not doc.get("learnable") and (doc.get("rollout") or {}).get("side") != BASELINE:
            raise UnknownDecision(
                f"decision {decision_id!r} used a fallback plan: nothing to learn"
            )
        record = from_document(decision_id, doc)
        self._open.put(record)
        self._bound()
        return record

    async def _logged_decision(self, decision_id: str) -> dict[str, Any] | None:
        now = self.clock()
        window = max(
            (r.catalog.feedback.window_seconds for r in self.registry.runtimes()), default=0.0
        )
        days = days_between(now - window - CLOCK_SKEW_SECONDS, now + CLOCK_SKEW_SECONDS)
        indices = [DECISIONS_LOG.index_for(day) for day in reversed(days)] + [DECISIONS_LOG.legacy]
        body = {"docs": [{"_index": index, "_id": decision_id} for index in indices]}
        reply = await self.transport.request(
            "POST", "/_mget", headers=JSON, body=orjson.dumps(body), timeout=10.0
        )
        if reply.status != 200:
            raise UpstreamError(f"reading decision {decision_id}: {reply.status}")
        for doc in reply.json().get("docs", []):
            if doc.get("found"):
                source: dict[str, Any] = doc["_source"]
                return source
            error = doc.get("error")
            if error and error.get("type") != "index_not_found_exception":
                raise UpstreamError(f"reading decision {decision_id}: {str(error)[:300]}")
        return None

    def _runtime(self, record: DecisionRecord) -> CatalogRuntime | None:
        """The catalog now serving the decision's target, if its features still fit."""
        for runtime in self.registry.runtimes():
            if (
                runtime.state_key == record.target
                and runtime.agent.feature_names == record.feature_names
            ):
                return runtime
        return None

    # -- intake -------------------------------------------------------------------------------

    async def feedback(self, body: bytes, token: str | None) -> dict[str, Any]:
        """``POST /_ltrr/feedback``: all events are accepted, or none (a 400 says why); only
        with the decision's token (a 403 otherwise)."""
        now = self.clock()
        decision_id, events = parse_feedback(body, now=now, max_events=MAX_EVENTS_PER_REQUEST)
        record = await self._find(decision_id)
        if not self.tokens.valid(decision_id, record.nonce, token):
            raise Forbidden(
                f"feedback for decision {decision_id!r} needs the {TOKEN_HEADER} header with "
                "the feedback_token its search returned"
            )
        runtime = self._runtime(record)
        if runtime is None:
            raise UnknownDecision(
                f"decision {decision_id!r} was made with a catalog that is no longer served"
            )
        config = runtime.catalog.feedback
        if len(events) > config.max_events:
            raise InvalidEvent(
                f"events must have at most {config.max_events} entries, got {len(events)}"
            )
        accepted: list[Accepted] = []
        for i, event in enumerate(events):
            reason = invalid(record, config, event)
            if reason is not None:
                raise InvalidEvent(f"events[{i}]: {reason}")
            accepted.append(accept(record, config, event))
        over = over_caps(record, accepted)
        if over:
            raise InvalidEvent(over)
        applied = await self._commit(record, runtime, accepted)
        self.stats.count("feedback_events", applied)
        self.stats.count("feedback_duplicates", len(events) - applied)
        metrics.FEEDBACK.labels("api", "accepted").inc(applied)
        metrics.FEEDBACK.labels("api", "duplicate").inc(len(events) - applied)
        return {
            "acknowledged": True,
            "decision_id": decision_id,
            "accepted": applied,
            "duplicates": len(events) - applied,
        }

    async def ubi(self, method: str, path: str, body: bytes, answer: bytes) -> None:
        """Learn from the UBI events OpenSearch stored (``answer`` is its reply to the write);
        what cannot be learned is only counted."""
        extract = ubi_events(method, path, body, now=self.clock()).stored(answer)
        for why, n in extract.skipped.items():
            self.skipped(why, n)
        by_decision: dict[str, list[FeedbackEvent]] = {}
        for event in extract.events:
            by_decision.setdefault(event.decision_id, []).append(event)
        for decision_id, events in by_decision.items():
            await self._ubi_decision(decision_id, events)

    async def _ubi_decision(self, decision_id: str, events: list[FeedbackEvent]) -> None:
        try:
            record = await self._find(decision_id)
        except (UnknownDecision, UpstreamError):
            self.skipped("unknown decision", len(events))
            return
        runtime = self._runtime(record)
        if runtime is None:
            self.skipped("catalog no longer served", len(events))
            return
        config = runtime.catalog.feedback
        accepted = []
        for event in events:
            if invalid(record, config, event) is None:
                accepted.append(accept(record, config, event))
            else:
                self.skipped("invalid event")
        kept = within_caps(record, accepted)
        if len(kept) < len(accepted):
            self.skipped("over the caps per decision", len(accepted) - len(kept))
        applied = await self._commit(record, runtime, kept)
        self.stats.count("ubi_events", applied)
        metrics.FEEDBACK.labels("ubi", "accepted").inc(applied)
        metrics.FEEDBACK.labels("ubi", "duplicate").inc(len(kept) - applied)

    def skipped(self, why: str, n: int = 1) -> None:
        """UBI events not learned from (OpenSearch stores them all the same); ``why`` is one of
        a fixed set of reasons."""
        self.stats.count(f"ubi_skipped: {why}", n)
        metrics.FEEDBACK_REFUSED.labels("ubi", why).inc(n)

    async def _commit(
        self, record: DecisionRecord, runtime: CatalogRuntime, accepted: list[Accepted]
    ) -> int:
        """Make the new events durable, then apply them; returns how many were new."""
        fresh: list[Accepted] = []
        for item in accepted:
            if item.event.event_id not in record.seen:
                record.seen.add(item.event.event_id)  # reserved now: a concurrent duplicate waits
                record.per_object[item.event.object_id] += 1
                fresh.append(item)
        if not fresh:
            return 0
        received = self.clock()
        lines = [
            orjson.dumps(
                {
                    **item.event.to_json(),
                    "target": record.target,
                    "catalog": runtime.catalog.digest,
                    "base_weight": item.value,
                    "weight": item.weight,
                    "rewards": item.rewards,
                    "received": stored_seconds(received),
                }
            )
            for item in fresh
        ]
        try:
            await self.events.append_async(lines)
        except BaseException:
            for item in fresh:
                record.seen.discard(item.event.event_id)
                record.per_object[item.event.object_id] -= 1
            raise
        for item in fresh:
            self._apply(record, runtime, item)
        return len(fresh)

    def _apply(self, record: DecisionRecord, runtime: CatalogRuntime, item: Accepted) -> None:
        if record.learns:
            runtime.agent.reward(
                record.x,
                item.rewards,
                first=record.owner and not record.observed,
                plan=record.plan,
                page=item.value,
                query=record.query,
            )
            metrics.observe_rewards(record.target, item.rewards)
        if record.owner:
            record.observed = True
        memory = runtime.catalog.memory
        index = record.returned.get(item.event.object_id)
        if memory is not None and index is not None:
            self.memory.engaged(
                record.target,
                memory,
                record.query_key,
                entity_ref(index, item.event.object_id),
                item.weight,
            )

    # -- windows ------------------------------------------------------------------------------

    def sweep(self) -> int:
        """Close the windows that ended: no feedback means reward 0 for each included arm."""
        closed = close_all(self._open.expired(self.clock()), self._zero_reward)
        if closed:
            self.stats.count("windows_closed_without_feedback", closed)
        return closed

    def _zero_reward(self, record: DecisionRecord) -> int:
        """No feedback in the window: every included arm observes reward 0 for this context."""
        runtime = self._runtime(record)
        if runtime is None or not record.learns:
            return 0
        zeros = dict.fromkeys(record.included, 0.0)
        runtime.agent.reward(record.x, zeros, first=True, plan=record.plan, query=record.query)
        metrics.observe_rewards(record.target, zeros)
        return 1

    def _bound(self) -> None:
        """Past ``max_decisions`` open windows, or ``max_open_bytes`` held by them, the oldest
        close early (memory stays bounded)."""
        before = len(self._open)
        close_all(self._open.over_limit(), self._zero_reward)
        early = before - len(self._open)
        if early:
            self.stats.count("windows_closed_early", early)

    def pending_decisions(self) -> int:
        return len(self._open)

    def publish_gauges(self) -> None:
        """The learning loop's gauges (metrics) from what this process holds now."""
        metrics.set_learning(
            len(self._open), self._open.bytes, self.events.backlog(), self.shipper.lag()
        )

    # -- shipping -----------------------------------------------------------------------------

    async def ship_events(self) -> int:
        """Copy the durable log's unshipped events to ``ltrr-events``."""
        return await self.shipper.ship()

    @property
    def shipped(self) -> int:
        return self.shipper.shipped

    # -- lifecycle ----------------------------------------------------------------------------

    async def start(self) -> None:
        """Create the indices, resume the shared statistics, then run the background loops."""
        window = max(
            (r.catalog.feedback.window_seconds for r in self.registry.runtimes()), default=0
        )
        if 0 < self.logs.retention_days * DAY_SECONDS < window:
            log.warning(
                "--retention-days %d is shorter than a feedback window of %.0f s: another "
                "replica may not find a decision whose window is still open",
                self.logs.retention_days,
                window,
            )
        try:
            await self.watch.start()
            await self.state.sync_all()
        except (UpstreamError, TimeoutError) as exc:
            log.warning("learning state not loaded yet (will retry): %s", exc)
        if not self.background:
            return
        flush = min(
            (r.catalog.memory.flush_seconds for r in self.registry.runtimes() if r.catalog.memory),
            default=2.0,
        )
        self._tasks = [
            asyncio.create_task(self._every(1.0, self._sweep_once)),
            asyncio.create_task(self._every(0.5, self.ship_events)),
            asyncio.create_task(self.decisions.run(1.0)),
            asyncio.create_task(self.memory.run(flush)),
            asyncio.create_task(self.state.run()),
            asyncio.create_task(self._every(WATCH_SECONDS, self._watch_indices)),
            asyncio.create_task(self._every(RETENTION_SECONDS, self.retain, first=0.0)),
        ]

    async def due(self, targets: Sequence[str]) -> tuple[int, list[str]]:
        """For a simulated clock: what the background loops would have done by now for these
        targets, in a fixed order (close the windows that ended, then write the memory).
        Returns the windows closed and the targets whose memory was written."""
        wanted = frozenset(targets)
        closed = close_all(self._open.expired_for(self.clock(), wanted), self._zero_reward)
        if closed:
            self.stats.count("windows_closed_without_feedback", closed)
        written = [t for t in self.memory.pending_targets() if t in wanted]
        await self.memory.flush(wanted)
        if len(self.decisions) >= DUE_DECISIONS_BATCH:  # the log is kept bounded, in batches
            await self.decisions.flush()
        day = int(self.clock() // DAY_SECONDS)
        if day != self._retained_day:  # once a simulated day, as time moves on
            try:
                await self.retain()
                self._retained_day = day
            except (UpstreamError, TimeoutError) as exc:  # tried again at the next tick
                log.warning("retention of the logs failed, will retry: %s", exc)
        return closed, written

    async def retain(self) -> list[str]:
        """Delete the logs' day indices past the retention (none when ISM does it).

        Counted from the earlier of this clock and the wall's: a simulated clock set ahead of
        today must not delete the real days of the same cluster."""
        return await self.logs.enforce(min(self.clock(), time.time()))

    async def _sweep_once(self) -> None:
        self.sweep()

    async def _watch_indices(self) -> None:
        lost = await self.watch.check()
        if STATE_INDEX in lost:
            self.state.lost()

    async def _every(
        self, interval: float, step: Callable[[], Any], first: float | None = None
    ) -> None:
        await asyncio.sleep(interval if first is None else first)
        while True:
            try:
                await step()
            except (UpstreamError, TimeoutError, OSError) as exc:
                log.warning("%s failed, will retry: %s", getattr(step, "__name__", step), exc)
            await asyncio.sleep(interval)

    async def stop(self) -> None:
        """Stop the loops and write what is pending; the event log keeps whatever is not."""
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with suppress(asyncio.CancelledError):
                await task
        for final in (
            self.ship_events,
            self.decisions.flush,
            self.memory.flush,
            self.state.sync_all,
        ):
            for attempt in range(FINAL_ATTEMPTS):  # a busy moment must not lose the last batch
                try:
                    await final()
                    break
                except (UpstreamError, TimeoutError, OSError) as exc:
                    log.warning("final %s failed: %s", getattr(final, "__name__", final), exc)
                    if attempt + 1 < FINAL_ATTEMPTS:
                        await asyncio.sleep(0.5 * (attempt + 1))
        self.events.close()

    def snapshot(self) -> dict[str, Any]:
        return {
            "decisions_pending": len(self._open),
            "decisions_pending_bytes": self._open.bytes,
            "events_unshipped_bytes": self.events.backlog(),
            "events_shipped": self.shipper.shipped,
            "events_dead_lettered": self.dead_letters.count,
            "indices_recreated": dict(self.watch.recreated),
            "log_indices_deleted": len(self.logs.deleted),
            "retention_days": self.logs.retention_days,
            "retention_by": "ism" if self.logs.ism else "proxy",
            "decisions_logged": self.decisions.written,
            "decisions_dropped": self.decisions.dropped,
            "memory_pending_keys": self.memory.pending_keys(),
            "memory_pairs_written": self.memory.pairs_written,
            "memory_pairs_refused": self.memory.pairs_refused,
            "memory_refused_because": self.memory.refused_because,
            "memory_pairs_failed": self.memory.pairs_failed,
            "memory_flush_failures": self.memory.flush_failures,
            "memory_last_error": self.memory.last_error,
            "state": self.state.snapshot(),
        }
