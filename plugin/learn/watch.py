"""The learning loop's own indices, watched: one deleted (a client's ``DELETE *``, say) is
recreated with its mapping, and the log and ``/_ltrr/stats`` say so.

Each index's uuid is remembered when it is created or first seen; for a log, the uuids of all
the day indices behind its alias. An index missing, or one with another uuid (auto-created by
a write since), was lost; a log was lost when none of its day indices seen before is left
(the retention removes old days one by one, never all). What was on the node is gone, while
the proxy keeps what it holds in memory (the bandit statistics are written back whole at the
next merge, see ``sync``). An index template per name makes an index that a write recreates
before the watch notices get the right mapping too.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

import orjson

from ltrr.plugin.learn.bulk import INDEX_BODIES, JSON, ensure_indices
from ltrr.plugin.learn.logs import TEMPLATE_PRIORITY, Logs
from ltrr.plugin.runtime.upstream import Transport, UpstreamError

log = logging.getLogger("ltrr.watch")


async def put_templates(transport: Transport, names: Sequence[str] = tuple(INDEX_BODIES)) -> None:
    for name in names:
        body = {
            "index_patterns": [name],
            "priority": TEMPLATE_PRIORITY,
            "template": dict(INDEX_BODIES[name]),
            "_meta": {"managed_by": "opensearch-ltrr"},
        }
        reply = await transport.request(
            "PUT",
            f"/_index_template/{name}",
            headers=JSON,
            body=orjson.dumps(body),
            timeout=30.0,
        )
        if reply.status >= 300:
            raise UpstreamError(f"index template {name}: {reply.status} {reply.body[:300]!r}")


class IndexWatch:
    def __init__(
        self,
        transport: Transport,
        names: Sequence[str] = tuple(INDEX_BODIES),
        logs: Logs | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.transport = transport
        self.names = tuple(names)
        self.logs = logs
        self.aliases = tuple(t.alias for t in logs.logs) if logs is not None else ()
        self.clock = clock
        self.uuids: dict[str, frozenset[str]] = {}
        self.recreated: Counter[str] = Counter()
        self.templated = False
        self.unmoved: list[str] = []

    def _owner(self, index: str) -> str | None:
        if index in self.names:
            return index
        for alias in self.aliases:
            if index == alias or index.startswith(f"{alias}-"):
                return alias
        return None

    async def _uuids(self) -> dict[str, frozenset[str]]:
        """Per watched name, the uuids of the indices it resolves to (absent: none)."""
        reply = await self.transport.request(
            "GET",
            f"/{','.join(self.names + self.aliases)}/_settings/index.uuid?ignore_unavailable=true",
            headers={},
            body=None,
            timeout=10.0,
        )
        if reply.status != 200:
            raise UpstreamError(f"reading the learning indices: {reply.status}")
        found: dict[str, Any] = reply.json()
        out: dict[str, set[str]] = {}
        # A log's name still a concrete index (its move behind the alias failed): ``ensure``
        # tries the move again, before a write fails to make a day index beside it.
        self.unmoved = [a for a in self.aliases if a in found]
        for index, settings in found.items():
            owner = self._owner(index)
            if owner is not None:
                out.setdefault(owner, set()).add(str(settings["settings"]["index"]["uuid"]))
        return {name: frozenset(uuids) for name, uuids in out.items()}

    async def start(self) -> None:
        await self._templates()
        await ensure_indices(self.transport, self.names)
        if self.logs is not None:
            await self.logs.ensure(self.clock())
        self.uuids = await self._uuids()

    async def _templates(self) -> None:
        """Best effort: an identity without ``cluster_manage_index_templates`` still gets its
        indices created and its state loaded; the templates are tried again at each check."""
        try:
            await put_templates(self.transport, self.names)
            self.templated = True
        except UpstreamError as exc:
            log.warning(
                "index templates for the learning indices not written (will retry): %s", exc
            )

    async def check(self) -> list[str]:
        """The indices (or logs) found lost since the last check (now recreated)."""
        if not self.templated:
            await self._templates()
        now = await self._uuids()
        watched = self.names + self.aliases
        lost = [n for n in watched if self.uuids.get(n) and not self.uuids[n] & now.get(n, set())]
        if await self._remake(now):
            now = await self._uuids()
        for name in lost:
            self.recreated[name] += 1
            log.warning(
                "%s was deleted (it had uuid %s); recreated it, and the proxy keeps what it "
                "holds in memory, but what the index held on the node is gone",
                name,
                ", ".join(sorted(self.uuids[name])),
            )
        self.uuids = now
        return lost

    async def _remake(self, found: dict[str, frozenset[str]]) -> bool:
        """Make what is missing (and the days due); whether anything was missing."""
        missing = [n for n in self.names if n not in found]
        if missing:
            await ensure_indices(self.transport, missing)
        if self.logs is None:
            return bool(missing)
        logs_missing = bool(self.unmoved) or any(a not in found for a in self.aliases)
        if logs_missing:
            await self.logs.ensure(self.clock())
        else:
            await self.logs.ensure_days(self.clock())
        return bool(missing) or logs_missing
