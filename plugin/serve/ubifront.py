"""The UBI plugin's part, played by the proxy.

Every search the proxy answers itself is logged to ``ubi_queries`` (the plugin never sees it,
even where it is installed), and a search carrying ``ext.ubi`` gets ``ext.ubi.query_id`` back.
On a node without the plugin, a search the proxy passes through goes on without ``ext.ubi``
(which the node would refuse), and the proxy logs and answers it as the plugin would. Only an
answer OpenSearch gave with a 2xx is logged: a search it refused the caller logs nothing.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Callable
from contextlib import suppress
from functools import partial
from pathlib import Path
from typing import Any

import aiohttp
import orjson
from aiohttp import web

from ltrr.plugin.errors import HttpError
from ltrr.plugin.learn.deadletter import DeadLetters
from ltrr.plugin.learn.ubiqueries import UbiQueries, node_has_ubi, query_record
from ltrr.plugin.runtime.stats import Stats
from ltrr.plugin.runtime.upstream import Transport
from ltrr.plugin.serve.body import decoded
from ltrr.plugin.serve.intercept import SearchRequest
from ltrr.plugin.serve.passthrough import fetch
from ltrr.plugin.serve.search import Answer
from ltrr.plugin.serve.ubi import ANY_SEARCH_PATH, UbiRequest, shown_ids, with_query_id

log = logging.getLogger("ltrr.ubi")

# A passed-through answer is inflated to read its hits at most this far.
ANSWER_LIMIT = 256 * 1024 * 1024


class UbiFront:
    """``plugin``: whether the node runs the UBI plugin (asked once, at the start);
    ``queries``: the writer of ``ubi_queries``, None when the proxy logs nothing."""

    def __init__(
        self, stats: Stats, now: Callable[[], float], plugin: bool, queries: UbiQueries | None
    ) -> None:
        self.stats = stats
        self.now = now
        self.plugin = plugin
        self.queries = queries
        self._writer: asyncio.Task[None] | None = None

    @classmethod
    async def start(
        cls,
        internal: Transport,
        stats: Stats,
        now: Callable[[], float],
        *,
        data_dir: Path | None,
        log_queries: bool,
    ) -> UbiFront:
        """Ask, as the proxy, whether the node has the plugin; without an answer, take it as
        absent, so that a search with ``ext.ubi`` works either way."""
        found = await node_has_ubi(internal)
        if found is None:
            log.warning("GET /_cat/plugins did not answer; taking the UBI plugin as absent")
        queries = None
        if log_queries:
            # Dead letters of their own: the learner's count acknowledged events only.
            dead = DeadLetters(data_dir / "ubi-queries") if data_dir is not None else None
            queries = UbiQueries(internal, dead_letters=dead)
        return cls(stats, now, bool(found), queries)

    def run(self) -> None:
        if self.queries is not None:
            self._writer = asyncio.create_task(self.queries.run())

    async def stop(self) -> None:
        """One last write of what is queued; what it cannot write is lost (and was never
        promised to anyone)."""
        if self._writer is not None:
            self._writer.cancel()
            with suppress(asyncio.CancelledError):
                await self._writer
        if self.queries is not None:
            with suppress(TimeoutError):
                await asyncio.wait_for(self.queries.flush_once(), 10.0)

    def snapshot(self) -> dict[str, Any]:
        return {
            "plugin": self.plugin,
            "queries": self.queries.snapshot() if self.queries is not None else None,
        }

    def answered(
        self, searched: SearchRequest, ubi: UbiRequest | None, answer: Answer
    ) -> dict[str, Any]:
        """Log an answer the proxy made; the body to send (with ``ext.ubi`` if asked)."""
        wanted = ubi or UbiRequest()
        query_id = wanted.query_id or answer.decision_id
        if self.queries is not None:  # made by the writer, later: only the time is taken now
            made = partial(_answered_record, searched, wanted, query_id, answer, self.now())
            self.queries.put(made)
        return answer.body if ubi is None else with_query_id(answer.body, query_id)

    async def passthrough(
        self,
        request: web.Request,
        session: aiohttp.ClientSession,
        base_url: str,
        *,
        sent: bytes,
        ubi: UbiRequest,
        reason: str,
        timeout: aiohttp.ClientTimeout,
    ) -> web.Response:
        """Send ``sent`` (the search without ``ext.ubi``), then log and answer it as UBI."""
        self.stats.count("passthrough")
        self.stats.passthrough_reasons[reason] += 1
        got = await fetch(request, session, base_url, body=sent, timeout=timeout)
        answer: Any = None
        if 200 <= got.status < 300:
            with suppress(HttpError, orjson.JSONDecodeError):
                answer = orjson.loads(decoded(got.headers, got.body, ANSWER_LIMIT))
        if not isinstance(answer, dict):  # refused, or not JSON (format=yaml, say)
            return web.Response(
                status=got.status, reason=got.reason, body=got.body, headers=got.headers
            )
        query_id = ubi.query_id or uuid.uuid4().hex
        if self.queries is not None:
            made = partial(_passed_record, request.path, ubi, query_id, answer, reason, self.now())
            self.queries.put(made)
        headers = got.headers.copy()
        for name in ("Content-Encoding", "Content-Type"):
            headers.popall(name, None)
        return web.Response(
            body=orjson.dumps(with_query_id(answer, query_id)),
            status=got.status,
            content_type="application/json",
            charset="UTF-8",
            headers=headers,
        )


def _answered_record(
    searched: SearchRequest, ubi: UbiRequest, query_id: str, answer: Answer, when: float
) -> dict[str, Any]:
    context_client = searched.context.get("client_id")
    return query_record(
        query_id=query_id,
        query_response_id=uuid.uuid4().hex,
        user_query=ubi.user_query if ubi.user_query is not None else searched.query,
        hit_ids=shown_ids(answer.body["hits"]["hits"], ubi.object_id_field),
        timestamp=when,
        client_id=ubi.client_id or (context_client if isinstance(context_client, str) else None),
        application=ubi.application,
        object_id_field=ubi.object_id_field,
        attributes=ubi.attributes,
        decision=answer.decision,
    )


def _passed_record(
    path: str, ubi: UbiRequest, query_id: str, answer: dict[str, Any], reason: str, when: float
) -> dict[str, Any]:
    hits = answer.get("hits")
    shown = hits.get("hits") if isinstance(hits, dict) else None
    match = ANY_SEARCH_PATH.match(path)
    return query_record(
        query_id=query_id,
        query_response_id=uuid.uuid4().hex,
        user_query=ubi.user_query or "",  # as the plugin: no words given, none logged
        hit_ids=shown_ids(shown if isinstance(shown, list) else [], ubi.object_id_field),
        timestamp=when,
        client_id=ubi.client_id,
        application=ubi.application,
        object_id_field=ubi.object_id_field,
        attributes=ubi.attributes,
        decision={"target": match["target"] if match is not None else None, "passthrough": reason},
    )
