"""The decision and event logs as daily indices behind one alias each, kept for a retention.

``ltrr-decisions`` and ``ltrr-events`` are aliases; the documents live in
``ltrr-decisions-2026.12.02`` and so on, one index per UTC day. The day is the DOCUMENT's own
time (a decision's ``timestamp``, an event's ``received``), never the wall clock at write
time: the shipper resends a batch after a crash under the same ids, and the same document
must land in the same index to stay one document. An index template gives each new day's
index the mapping and the alias, so every reader that searches the alias reads every day.

Retention is a number of days (0: keep forever). A day's index goes once its whole day is
older than that. With the Index State Management plugin on the cluster, an ISM policy deletes
them; without it (it is not on Maven Central), the proxy deletes them itself, as its own
identity, and only the indices that carry our alias and have exactly our names.

A cluster from before this layout has a concrete index where the alias belongs. It is cloned
(segments are copied, not documents: nothing is re-sent and nothing is lost) into
``<alias>-legacy``, and the old index is swapped for the alias in one atomic step; the legacy
index goes when its newest document is past the retention.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from ltrr.plugin.runtime.upstream import Transport, UpstreamError

log = logging.getLogger("ltrr.logs")

JSON = {"Content-Type": "application/json"}
DAY_SECONDS = 86_400
TEMPLATE_PRIORITY = 500  # above a catch-all template a cluster may have
ISM_PLUGIN = "opensearch-index-management"
_DAY = re.compile(r"(\d{4})\.(\d{2})\.(\d{2})")


@dataclass(frozen=True, slots=True)
class TimeLog:
    """One log: its alias, the document field that names a document's day, its mapping."""

    alias: str
    time_field: str
    body: Mapping[str, Any]  # settings and mappings of each day's index

    def index_for(self, seconds: float) -> str:
        """The index a document of that time (epoch seconds) belongs to: its UTC day."""
        day = datetime.fromtimestamp(seconds, UTC)
        return f"{self.alias}-{day:%Y.%m.%d}"

    def index_of(self, doc: Mapping[str, Any]) -> str:
        """The index of a document, by its own time (its ``timestamp`` when it lacks
        ``time_field``); one with no usable time at all (none is written so) goes to the day of
        epoch 0, where a resend still meets it."""
        for name in (self.time_field, "timestamp"):
            value = doc.get(name)
            if isinstance(value, int | float) and not isinstance(value, bool):
                return self.index_for(float(value))
        return self.index_for(0.0)

    @property
    def legacy(self) -> str:
        return f"{self.alias}-legacy"

    @property
    def pattern(self) -> str:
        return f"{self.alias}-*"

    def day_start(self, index: str) -> float | None:
        """The first second of the day an index of ours holds; None for any other name."""
        prefix = f"{self.alias}-"
        if not index.startswith(prefix):
            return None
        match = _DAY.fullmatch(index[len(prefix) :])
        if match is None:
            return None
        try:
            year, month, day_of_month = (int(g) for g in match.groups())
            day = datetime(year, month, day_of_month, tzinfo=UTC)
        except ValueError:
            return None
        return day.timestamp()

    def template(self) -> dict[str, Any]:
        """Each new day's index: the mapping and the alias (an ISM policy attaches itself
        through its own ``ism_template``)."""
        settings = dict(self.body.get("settings", {}))
        return {
            "index_patterns": [self.pattern],
            "priority": TEMPLATE_PRIORITY,
            "template": {
                "settings": settings,
                "mappings": dict(self.body["mappings"]),
                "aliases": {self.alias: {}},
            },
            "_meta": {"managed_by": "opensearch-ltrr"},
        }


def cutoff(now: float, retention_days: int) -> float:
    """Indices whose day ended at or before this are past the retention."""
    return now - retention_days * DAY_SECONDS


def expired(log_: TimeLog, indices: Sequence[str], now: float, retention_days: int) -> list[str]:
    """The day indices among ``indices`` whose whole day is older than the retention."""
    if retention_days <= 0:
        return []
    limit = cutoff(now, retention_days)
    out = []
    for name in indices:
        start = log_.day_start(name)
        if start is not None and start + DAY_SECONDS <= limit:
            out.append(name)
    return sorted(out)


def ism_policy(log_: TimeLog, retention_days: int) -> dict[str, Any]:
    """The ISM policy that deletes a day's index no earlier than the proxy would.

    ``min_index_age`` counts from the index's creation, and the proxy makes a day's index up
    to a day ahead (tomorrow's with today's): two days more than the retention never deletes
    a day that is not wholly past it, at the price of keeping each up to a day longer."""
    return {
        "policy": {
            "description": f"opensearch-ltrr: delete {log_.alias} days after {retention_days} days",
            "default_state": "kept",
            "states": [
                {
                    "name": "kept",
                    "actions": [],
                    "transitions": [
                        {
                            "state_name": "deleted",
                            "conditions": {"min_index_age": f"{retention_days + 2}d"},
                        }
                    ],
                },
                {"name": "deleted", "actions": [{"delete": {}}], "transitions": []},
            ],
            "ism_template": [{"index_patterns": [log_.pattern], "priority": TEMPLATE_PRIORITY}],
        }
    }


def ism_policy_id(log_: TimeLog) -> str:
    return f"{log_.alias}-retention"


async def _call(
    transport: Transport, method: str, path: str, body: object = None, timeout: float = 30.0
) -> tuple[int, Any]:
    reply = await transport.request(
        method,
        path,
        headers=JSON if body is not None else {},
        body=orjson.dumps(body) if body is not None else None,
        timeout=timeout,
    )
    try:
        parsed = reply.json() if reply.body else None
    except (orjson.JSONDecodeError, ValueError):
        parsed = None
    return reply.status, parsed


async def has_ism(transport: Transport) -> bool:
    """Whether the cluster runs Index State Management: ``_cat/plugins`` lists it on a node."""
    status, plugins = await _call(transport, "GET", "/_cat/plugins?format=json")
    if status != 200 or not isinstance(plugins, list):
        raise UpstreamError(f"GET /_cat/plugins answered {status}")
    return any(isinstance(p, dict) and p.get("component") == ISM_PLUGIN for p in plugins)


async def backing(transport: Transport, log_: TimeLog) -> list[str] | None:
    """The concrete indices behind the alias; None when the name is a concrete index itself
    (the layout before the alias)."""
    status, found = await _call(transport, "GET", f"/{log_.alias}/_alias")
    if status == 404:
        return []
    if status != 200 or not isinstance(found, dict):
        raise UpstreamError(f"GET /{log_.alias}/_alias answered {status}")
    if log_.alias in found:
        return None
    return sorted(name for name, v in found.items() if log_.alias in v.get("aliases", {}))


async def _adopt_legacy(transport: Transport, log_: TimeLog) -> None:
    """Swap a concrete index named like the alias for the alias over a clone of it.

    The write block comes first, so nothing written after the clone is lost; the swap is one
    atomic ``_aliases`` request, so readers never find the name missing. A replica doing the
    same at once finds the clone made, or the swap done, and stops.
    """
    old, new = log_.alias, log_.legacy
    status, answer = await _call(
        transport, "PUT", f"/{old}/_settings", {"index.blocks.write": True}
    )
    if status >= 300:
        raise UpstreamError(f"blocking writes to {old} before moving it: {status} {answer}")
    status, answer = await _call(
        transport,
        "POST",
        f"/{old}/_clone/{new}?wait_for_active_shards=1",
        {"settings": {"index.blocks.write": None}},
        timeout=120.0,
    )
    if status >= 300 and "resource_already_exists_exception" not in str(answer):
        raise UpstreamError(f"cloning {old} into {new}: {status} {answer}")
    status, answer = await _call(
        transport, "GET", f"/_cluster/health/{new}?wait_for_status=yellow&timeout=60s"
    )
    if status != 200 or (answer or {}).get("status") not in ("yellow", "green"):
        raise UpstreamError(f"{new} is not ready, so {old} is kept: {status} {answer}")
    status_old, old_count = await _call(transport, "GET", f"/{old}/_count")
    status_new, new_count = await _call(transport, "GET", f"/{new}/_count")
    if status_old != 200 or status_new != 200 or old_count.get("count") != new_count.get("count"):
        raise UpstreamError(f"{new} does not hold every document of {old} yet; {old} is kept")
    actions = {
        "actions": [
            {"remove_index": {"index": old}},
            {"add": {"index": new, "alias": log_.alias}},
        ]
    }
    status, answer = await _call(transport, "POST", "/_aliases", actions)
    if status >= 300:
        if await backing(transport, log_) is not None:
            return  # another replica swapped it first
        raise UpstreamError(f"swapping {old} for the alias: {status} {answer}")
    log.warning("%s was an index; it is now %s, read through the alias %s", old, new, old)


class Logs:
    """The logs' indices on one cluster: their templates, today's index, the retention."""

    def __init__(self, transport: Transport, logs: Sequence[TimeLog], retention_days: int) -> None:
        self.transport = transport
        self.logs = tuple(logs)
        self.retention_days = retention_days
        self.ism: bool | None = None  # unknown until asked
        self.deleted: list[str] = []
        self._made: set[str] = set()

    async def ensure(self, now: float) -> None:
        """Templates (and the ISM policy) in place, an old concrete index moved behind the
        alias, and the indices of today and tomorrow made, so the alias always resolves and
        a write never has to create an index itself."""
        if self.ism is None:
            try:
                self.ism = await has_ism(self.transport)
            except UpstreamError as exc:
                log.warning("could not tell whether the cluster has ISM (asked again): %s", exc)
        for log_ in self.logs:
            if self.ism and self.retention_days > 0:
                await self._put_policy(log_)
            status, answer = await _call(
                self.transport, "PUT", f"/_index_template/{log_.alias}", log_.template()
            )
            if status >= 300:
                # Best effort, as for the other indices: the proxy makes each day's index
                # itself, with the mapping and the alias, before it writes to it.
                log.warning("index template %s not written: %s %s", log_.alias, status, answer)
            if await backing(self.transport, log_) is None:
                await _adopt_legacy(self.transport, log_)
            # Fields added since an index was made: adding to a mapping is idempotent.
            mapping = {"properties": log_.body["mappings"]["properties"]}
            status, answer = await _call(self.transport, "PUT", f"/{log_.alias}/_mapping", mapping)
            if status >= 300 and status != 404:
                raise UpstreamError(f"mapping of {log_.alias}: {status} {answer}")
        self._made.clear()
        await self.ensure_days(now)

    async def ensure_days(self, now: float) -> None:
        """Today's and tomorrow's indices exist (asked once a day per index); none while a
        simulated clock has not been set yet (it reads 0, the first day of 1970)."""
        if now < DAY_SECONDS:
            return
        for log_ in self.logs:
            for when in (now, now + DAY_SECONDS):
                index = log_.index_for(when)
                if index not in self._made:
                    await self._create(log_, index)
                    self._made.add(index)

    async def _create(self, log_: TimeLog, index: str) -> None:
        body = {**log_.template()["template"]}
        status, answer = await _call(self.transport, "PUT", f"/{index}", body)
        if status >= 300 and "resource_already_exists_exception" not in str(answer):
            raise UpstreamError(f"creating {index}: {status} {answer}")

    async def _put_policy(self, log_: TimeLog) -> None:
        policy_id = ism_policy_id(log_)
        path = f"/_plugins/_ism/policies/{policy_id}"
        status, current = await _call(self.transport, "GET", path)
        wanted = ism_policy(log_, self.retention_days)
        if status == 200 and isinstance(current, dict):
            if current.get("policy", {}).get("states") == wanted["policy"]["states"]:
                return
            path += f"?if_seq_no={current['_seq_no']}&if_primary_term={current['_primary_term']}"
        status, answer = await _call(self.transport, "PUT", path, wanted)
        if status >= 300:
            raise UpstreamError(f"ISM policy {policy_id}: {status} {answer}")
        # ism_template manages the indices made from now on; the ones made before join here.
        await _call(
            self.transport, "POST", f"/_plugins/_ism/add/{log_.pattern}", {"policy_id": policy_id}
        )

    async def enforce(self, now: float) -> list[str]:
        """Delete the indices past the retention (unless ISM does); returns those deleted."""
        if self.retention_days <= 0 or self.ism:
            return []
        gone: list[str] = []
        for log_ in self.logs:
            names = await backing(self.transport, log_)
            if not names:
                continue
            old = expired(log_, names, now, self.retention_days)
            if log_.legacy in names and await self._legacy_expired(log_, now):
                old.append(log_.legacy)
            for name in old:
                status, answer = await _call(self.transport, "DELETE", f"/{name}")
                if status >= 300 and status != 404:
                    raise UpstreamError(f"deleting {name}: {status} {answer}")
                log.info("%s deleted: past the %d-day retention", name, self.retention_days)
                gone.append(name)
        self.deleted += gone
        return gone

    async def _legacy_expired(self, log_: TimeLog, now: float) -> bool:
        """The legacy index goes when its newest document is past the retention."""
        body = {
            "size": 0,
            "track_total_hits": True,
            "aggs": {"newest": {"max": {"field": log_.time_field}}},
        }
        status, answer = await _call(self.transport, "POST", f"/{log_.legacy}/_search", body)
        if status != 200 or not isinstance(answer, dict):
            return False
        total = answer["hits"]["total"]["value"]
        newest = answer["aggregations"]["newest"]["value"]
        if total == 0:
            return True
        if newest is None:
            return False  # documents without the time field: kept, never guessed at
        return float(newest) / 1000.0 <= cutoff(now, self.retention_days)


def days_between(start: float, end: float) -> list[float]:
    """One time in each UTC day from ``start``'s to ``end``'s, in order."""
    first = datetime.fromtimestamp(start, UTC).date()
    last = datetime.fromtimestamp(end, UTC).date()
    out = []
    day = first
    while day <= last:
        out.append(datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp())
        day += timedelta(days=1)
    return out
