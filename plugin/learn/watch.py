"""The learning loop's own indices, watched: one deleted (a client's ``DELETE *``, say) is
recreated with its mapping, and the log and ``/_ltrr/stats`` say so.

Each index's uuid is remembered when it is created or first seen. A missing index, or one
with another uuid (auto-created by a write since), was lost: what it held on the node is
gone, while the proxy keeps what it holds in memory (the bandit statistics are written back
whole at the next merge, see ``sync``). An index template per name makes an index that a write
recreates before the watch notices get the right mapping too.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Sequence
from typing import Any

import orjson

from ltrr.plugin.learn.bulk import INDEX_BODIES, JSON, ensure_indices
from ltrr.plugin.runtime.upstream import Transport, UpstreamError

log = logging.getLogger("ltrr.watch")

TEMPLATE_PRIORITY = 500  # above a catch-all template a cluster may have


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
    def __init__(self, transport: Transport, names: Sequence[str] = tuple(INDEX_BODIES)) -> None:
        self.transport = transport
        self.names = tuple(names)
        self.uuids: dict[str, str] = {}
        self.recreated: Counter[str] = Counter()
        self.templated = False

    async def _uuids(self) -> dict[str, str]:
        reply = await self.transport.request(
            "GET",
            f"/{','.join(self.names)}/_settings/index.uuid?ignore_unavailable=true",
            headers={},
            body=None,
            timeout=10.0,
        )
        if reply.status != 200:
            raise UpstreamError(f"reading the learning indices: {reply.status}")
        found: dict[str, Any] = reply.json()
        return {name: str(found[name]["settings"]["index"]["uuid"]) for name in found}

    async def start(self) -> None:
        await self._templates()
        await ensure_indices(self.transport, self.names)
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
        """The indices found lost since the last check (now recreated)."""
        if not self.templated:
            await self._templates()
        now = await self._uuids()
        lost = [n for n in self.names if n in self.uuids and now.get(n) != self.uuids[n]]
        missing = [n for n in self.names if n not in now]
        if missing:
            await ensure_indices(self.transport, missing)
            now = await self._uuids()
        for name in lost:
            self.recreated[name] += 1
            log.warning(
                "%s was deleted (it had uuid %s); recreated it, and the proxy keeps what it "
                "holds in memory, but what the index held on the node is gone",
                name,
                self.uuids[name],
            )
        self.uuids = now
        return lost
