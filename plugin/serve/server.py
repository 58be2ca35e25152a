"""The HTTP front: route each request to the LTR&R search path or pass it through.

Only ``GET|POST /{target}/_search`` on a catalogued target is read here; everything else is
streamed to OpenSearch by ``passthrough``. Errors the proxy answers itself use OpenSearch's
error JSON, so a client's error handling keeps working.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import math
import os
import signal
import socket
import time
from collections.abc import Awaitable, Callable, Sequence
from contextlib import suppress
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import aiohttp
import orjson
from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError
from aiohttp.web_protocol import RequestHandler
from aiohttp.web_request import BaseRequest

from ltrr.plugin.errors import (
    BadRequest,
    ClusterUnavailable,
    Forbidden,
    HttpError,
    PayloadTooLarge,
)
from ltrr.plugin.learn.feedback import is_ubi_write, may_carry_ubi
from ltrr.plugin.learn.learner import DEFAULT_RETENTION_DAYS, Learner
from ltrr.plugin.learn.memorize import check_sources
from ltrr.plugin.learn.tokens import TOKEN_HEADER
from ltrr.plugin.runtime import metrics
from ltrr.plugin.runtime.clock import SIM_TIME_HEADER, SimulatedClock
from ltrr.plugin.runtime.registry import CatalogRegistry
from ltrr.plugin.runtime.stats import Stats
from ltrr.plugin.runtime.upstream import (
    AiohttpTransport,
    UpstreamError,
    UpstreamTimeout,
    WithHeaders,
    make_session,
    upstream_ssl,
)
from ltrr.plugin.serve.body import BODY_SECONDS, decoded, read_body
from ltrr.plugin.serve.intercept import (
    SEARCH_PATH,
    PassThrough,
    caller_headers,
    parse_search,
    reason_kind,
    strip_ext,
    strip_ltrr,
)
from ltrr.plugin.serve.pages import PageCache
from ltrr.plugin.serve.passthrough import forward
from ltrr.plugin.serve.respond import DECISION_HEADER
from ltrr.plugin.serve.search import PassOn, SearchPath
from ltrr.plugin.serve.ubi import ANY_SEARCH_PATH, UbiRequest, read_ubi
from ltrr.plugin.serve.ubifront import UbiFront
from ltrr.plugin.serve.workers import BACKLOG, bind
from ltrr.query_plans.templates import TemplateRenderer

log = logging.getLogger("ltrr.server")

MSEARCH_PATHS = ("/_msearch", "/_msearch/template")
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
OWN_AUTHORIZATION_ENV = "LTRR_OPENSEARCH_AUTHORIZATION"
# The admin routes (stats, metrics, the simulated clock) need this token in ADMIN_HEADER, or
# as ``Authorization: Bearer`` (what a Prometheus scrape can send); without one configured,
# they answer loopback clients only.
ADMIN_TOKEN_ENV = "LTRR_ADMIN_TOKEN"
ADMIN_HEADER = "X-LTRR-Admin-Token"
# What each request was, for the metrics: its route class and outcome (set by the handlers).
ROUTE = web.RequestKey("ltrr_route", str)
OUTCOME = web.RequestKey("ltrr_outcome", str)
LOOPBACK = frozenset({"127.0.0.1", "::1", "::ffff:127.0.0.1"})


def _sim_seconds(value: object, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise HttpError(
            f"{where} must be a finite number of seconds, got {value!r}",
            status=400,
            error_type="illegal_argument_exception",
        )
    return float(value)


async def _settle(transport: WithHeaders, targets: Sequence[str]) -> None:
    """Refresh ``targets`` once the merges running on them are done.

    A merge drops deleted documents from the BM25 statistics, and it runs in the background;
    waiting for it before each refresh makes every refresh see the same segments whatever the
    machine's speed, so a simulation's scores are the same from run to run."""
    path = ",".join(quote(t, safe="*") for t in targets)
    deadline = time.monotonic() + 60.0
    while time.monotonic() < deadline:
        reply = await transport.request(
            "GET", f"/{path}/_stats/merge", headers={}, body=None, timeout=30.0
        )
        if reply.status >= 300:
            raise HttpError(f"merge stats answered {reply.status}", status=502)
        if int(reply.json()["_all"]["total"]["merges"]["current"]) == 0:
            break
        await asyncio.sleep(0.01)
    reply = await transport.request(
        "POST", f"/{path}/_refresh", headers={}, body=None, timeout=60.0
    )
    if reply.status >= 300:
        raise HttpError(f"refresh answered {reply.status}", status=502)


def _sim_tick(body: bytes) -> tuple[float, list[str]]:
    try:
        raw = orjson.loads(body)
        now, targets = raw["now"], raw["targets"]
    except (orjson.JSONDecodeError, KeyError, TypeError):
        raise HttpError(
            'the body must be {"now": <epoch seconds>, "targets": [<target>, ...]}',
            status=400,
            error_type="parse_exception",
        ) from None
    if not isinstance(targets, list) or not all(isinstance(t, str) and t for t in targets):
        raise HttpError(
            "targets must be a list of target names",
            status=400,
            error_type="illegal_argument_exception",
        )
    return _sim_seconds(now, "now"), targets


# How the HTTP server reads requests. No automatic decompression: passthrough forwards the
# client's bytes as they came, and ``body.decoded`` inflates only what the proxy parses.
SERVER_OPTIONS: dict[str, Any] = {"auto_decompress": False}
# A forwarded request's bounds on OpenSearch: connecting, then each read (a silent node, or a
# black hole, is a 504 after this, not a hung client).
CONNECT_SECONDS = 10.0
UPSTREAM_SECONDS = 60.0
# A compressed answer to a UBI write is inflated to learn from it at most this far.
ANSWER_LIMIT = 256 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class Limits:
    """``max_body``: bytes in any request body; ``max_msearch_lines``: NDJSON lines per msearch;
    ``body_seconds``: how long a client may take to send a body (or each chunk of it);
    ``upstream_seconds``: how long a forwarded request may wait on each read from OpenSearch;
    ``open_decisions_bytes``: the memory that decisions awaiting feedback may hold."""

    max_body: int = 100 * 1024 * 1024
    max_msearch_lines: int = 10_000
    body_seconds: float = BODY_SECONDS
    upstream_seconds: float = UPSTREAM_SECONDS
    open_decisions_bytes: int = 256 * 1024 * 1024


def _json_response(
    body: Any, status: int = 200, headers: dict[str, str] | None = None
) -> web.Response:
    return web.Response(
        body=orjson.dumps(body),
        status=status,
        content_type="application/json",
        charset="UTF-8",
        headers=headers,
    )


def error_response(error: HttpError) -> web.Response:
    return _json_response(error.body(), status=error.status)


@web.middleware
async def _measured(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every request is counted by route class and outcome, and timed to its answer's end."""
    started = time.perf_counter()
    try:
        response = await handler(request)
    except BaseException:  # cut mid-answer: the client saw an error
        request[OUTCOME] = "error"
        raise
    finally:
        route = request.get(ROUTE) or ("admin" if request.path.startswith("/_ltrr/") else "other")
        outcome = request.get(OUTCOME, "answered")
        metrics.request_done(route, outcome, time.perf_counter() - started)
    if outcome == "error":
        metrics.error_answered(route, response.status)
    return response


@web.middleware
async def _errors(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    """Every error the proxy writes is OpenSearch's error JSON; details stay in the log, so
    no body names the upstream host or shows a traceback. An error once an answer has begun
    (a stream that stalls) cannot become a second answer on the same connection: it goes up,
    and aiohttp closes the connection."""
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        error = _as_error(request, exc)
    except Exception as exc:
        if request.writer is not None and request.writer.output_size > 0:
            log.warning("%s %s failed mid-answer, closing: %r", request.method, request.path, exc)
            raise
        error = _as_error(request, exc)
    request[OUTCOME] = "error"
    return error_response(error)


def _as_error(request: web.Request, exc: Exception) -> HttpError:
    if isinstance(exc, HttpError):
        return exc
    if isinstance(exc, web.HTTPRequestEntityTooLarge):
        return PayloadTooLarge(exc.text or "request body too large")
    if isinstance(exc, web.HTTPException):  # aiohttp's own answers: a 405 on a route, say
        return HttpError(
            f"{exc.reason} for [{request.method} {request.path}]",
            status=exc.status,
            error_type="illegal_argument_exception" if exc.status < 500 else "exception",
        )
    if isinstance(exc, TimeoutError | aiohttp.ClientError | UpstreamError):
        log.warning("upstream unreachable for %s %s: %r", request.method, request.path, exc)
        timed_out = isinstance(exc, TimeoutError | UpstreamTimeout)
        return HttpError(
            "OpenSearch did not answer in time" if timed_out else "OpenSearch did not answer",
            status=504 if timed_out else 502,
            error_type="proxy_exception",
        )
    log.error("unexpected error on %s %s", request.method, request.path, exc_info=exc)
    return HttpError("the proxy failed on this request; its log has the details")


class Proxy:
    """The application: a catalog registry, a search path, and one upstream session."""

    def __init__(
        self,
        registry: CatalogRegistry,
        opensearch_url: str,
        *,
        limits: Limits | None = None,
        page_ttl: float = 300.0,
        data_dir: Path | None = None,
        state_interval: float = 2.0,
        clock: SimulatedClock | None = None,
        ca_file: Path | None = None,
        ubi_queries: bool = True,
        retention_days: int = DEFAULT_RETENTION_DAYS,
    ) -> None:
        self.registry = registry
        self.retention_days = retention_days
        # Built now, so that an unusable CA bundle stops the start before anything listens.
        self.tls = upstream_ssl(ca_file)
        self.clock = clock
        self.data_dir = data_dir
        self.state_interval = state_interval
        self.learner: Learner | None = None
        self.base_url = opensearch_url.rstrip("/")
        self.limits = limits or Limits()
        self.stats = Stats()
        self.pages = PageCache(ttl_seconds=page_ttl)
        self.renderer = TemplateRenderer()
        self._session: aiohttp.ClientSession | None = None
        self._search: SearchPath | None = None
        self._watch: asyncio.Task[None] | None = None
        self._internal: WithHeaders | None = None
        self._gauges: asyncio.Task[None] | None = None
        self.log_ubi_queries = ubi_queries  # log the searches answered to ``ubi_queries``
        self.ubi: UbiFront | None = None

    def app(self) -> web.Application:
        middlewares: list[Any] = [_measured, _errors]
        if self.clock is not None:
            middlewares.append(self._simulated_time)
        app = web.Application(middlewares=middlewares, client_max_size=self.limits.max_body)
        app.router.add_get("/_ltrr/stats", self._stats)
        app.router.add_get("/_ltrr/metrics", self._metrics)
        app.router.add_post("/_ltrr/feedback", self._feedback)
        if self.clock is not None:  # only a proxy started for a simulation has this route
            app.router.add_post("/_ltrr/_sim/clock", self._set_clock)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        app.on_startup.append(self._start)
        app.on_cleanup.append(self._stop)
        return app

    async def _start(self, _app: web.Application) -> None:
        """Connect to OpenSearch, bounded: a node that accepts connections but never answers
        fails the start with a message, instead of a proxy that never listens."""
        self._session = make_session(tls=self.tls)
        log.info("connecting to OpenSearch at %s", self.base_url)
        bound = self.limits.upstream_seconds
        try:
            await asyncio.wait_for(self._connect(self._session), bound)
        except TimeoutError:
            await self._session.close()
            raise ClusterUnavailable(
                f"OpenSearch at {self.base_url} did not answer within {bound:g} s of the proxy "
                "starting (--upstream-timeout)"
            ) from None
        self._watch = asyncio.create_task(self.registry.watch())
        self._gauges = asyncio.create_task(self._publish_gauges())
        if self.ubi is not None:
            self.ubi.run()

    async def _connect(self, session: aiohttp.ClientSession) -> None:
        transport = AiohttpTransport(self.base_url, session)
        # The proxy's own reads and writes (the learning loop's indices, the warm-up below) go
        # as itself: LTRR_OPENSEARCH_AUTHORIZATION, when set, is their Authorization header.
        own = os.environ.get(OWN_AUTHORIZATION_ENV)
        internal = WithHeaders(transport, {"Authorization": own} if own else {})
        # Entity dictionaries load before the first search, so that a restarted proxy's first
        # decisions see the same features as its last ones did.
        for runtime in self.registry.runtimes():
            target = runtime.catalog.targets[0]
            if runtime.entities is not None and not any(c in target for c in "*,"):
                await runtime.entities.refresh(internal, target, {})
        if self.data_dir is not None:
            try:
                await check_sources(internal, [r.catalog for r in self.registry.runtimes()])
                self.learner = Learner(
                    internal,
                    self.registry,
                    self.data_dir,
                    self.stats,
                    state_interval=self.state_interval,
                    max_open_bytes=self.limits.open_decisions_bytes,
                    clock=self.clock.time if self.clock is not None else time.time,
                    background=self.clock is None,
                    retention_days=self.retention_days,
                )
            except BaseException:  # a locked data directory, say: the session must not leak
                await session.close()
                raise
            await self.learner.start()
        self._internal = internal
        self.ubi = await UbiFront.start(
            internal,
            self.stats,
            self.clock.time if self.clock is not None else time.time,
            data_dir=self.data_dir,
            log_queries=self.log_ubi_queries,
        )
        self._search = SearchPath(
            transport,
            self.pages,
            self.renderer,
            self.stats,
            now=self.clock.datetime if self.clock is not None else datetime.now,
            learner=self.learner,
        )

    async def _stop(self, _app: web.Application) -> None:
        for task in (self._watch, self._gauges):
            if task is not None:
                task.cancel()
                with suppress(asyncio.CancelledError):
                    await task
        if self.ubi is not None:
            await self.ubi.stop()
        if self.learner is not None:
            await self.learner.stop()
        if self._session is not None:
            await self._session.close()
        self.registry.close()

    @staticmethod
    def _admin(request: web.Request) -> None:
        """Stats show catalog paths and policy internals: an operator's, not a client's."""
        request[ROUTE] = "admin"
        token = os.environ.get(ADMIN_TOKEN_ENV, "")
        if token:
            if not _has_admin_token(request, token.encode()):
                raise Forbidden(
                    f"{request.path} needs the admin token in {ADMIN_HEADER}, or as "
                    "Authorization: Bearer"
                )
        elif request.remote not in LOOPBACK:
            raise Forbidden(
                f"{request.path} answers loopback clients only; set {ADMIN_TOKEN_ENV} on the "
                f"proxy and send it in {ADMIN_HEADER} to reach it from elsewhere"
            )

    async def _stats(self, request: web.Request) -> web.Response:
        self._admin(request)
        snapshot = self.stats.snapshot()
        snapshot["pid"] = os.getpid()  # which worker answered
        snapshot["pages_cached"] = len(self.pages)
        if self.learner is not None:
            snapshot["learning"] = self.learner.snapshot()
        if self.ubi is not None:
            snapshot["ubi"] = self.ubi.snapshot()
        snapshot["catalogs"] = {
            str(r.catalog.path): {
                "targets": list(r.catalog.targets),
                "digest": r.catalog.digest[:12],
                "policy": r.agent.name,
                "entities": len(r.entities.current) if r.entities and r.entities.current else 0,
                "embedder": r.embedder.stats._asdict() if r.embedder is not None else None,
                "policy_version": r.agent.version(),
                "policy_arms": r.agent.summary(),
            }
            for r in self.registry.runtimes()
        }
        return _json_response(snapshot)

    async def _metrics(self, request: web.Request) -> web.Response:
        """``GET /_ltrr/metrics``: Prometheus' text format, every worker's series in it."""
        self._admin(request)
        self._gauges_now()
        body = await asyncio.to_thread(metrics.exposition)
        return web.Response(body=body, headers={"Content-Type": metrics.CONTENT_TYPE})

    def _gauges_now(self) -> None:
        metrics.set_resident_memory()
        if self.learner is not None:
            self.learner.publish_gauges()

    async def _publish_gauges(self) -> None:
        """Gauges are set, not counted: each worker republishes its own, so that a scrape
        answered by another worker reads fresh values from this one's files."""
        while True:
            self._gauges_now()
            await asyncio.sleep(metrics.GAUGE_SECONDS)

    @web.middleware
    async def _simulated_time(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        """A request that names its simulated time runs at that time (``ltrr simulate``)."""
        raw = request.headers.get(SIM_TIME_HEADER)
        if raw is None or self.clock is None:
            return await handler(request)
        try:
            now = _sim_seconds(float(raw), SIM_TIME_HEADER)
        except ValueError:
            raise HttpError(
                f"{SIM_TIME_HEADER} must be epoch seconds, got {raw!r}",
                status=400,
                error_type="illegal_argument_exception",
            ) from None
        token = self.clock.enter(now)
        try:
            return await handler(request)
        finally:
            self.clock.leave(token)

    async def _set_clock(self, request: web.Request) -> web.Response:
        """``POST /_ltrr/_sim/clock {"now": epoch seconds, "targets": [...]}``: what is due by
        then for those targets (their windows, their memory) runs, and their indices are
        refreshed so that the next search sees it."""
        self._admin(request)
        now, targets = _sim_tick(await self._read(request))
        closed = 0
        if self.clock is not None:
            self.clock.last = now
        if self.clock is not None and self.learner is not None and self._internal is not None:
            token = self.clock.enter(now)
            try:
                closed, written = await self.learner.due(targets)
                if written:
                    await _settle(self._internal, written)
            except (UpstreamError, TimeoutError) as exc:
                raise HttpError(
                    f"what was due at {now} could not be written: {exc}",
                    status=502,
                    error_type="upstream_error",
                ) from exc
            finally:
                self.clock.leave(token)
        return _json_response({"now": now, "windows_closed": closed})

    async def _feedback(self, request: web.Request) -> web.Response:
        request[ROUTE] = "feedback"
        try:
            if self.learner is None:
                raise HttpError(
                    "this proxy runs without a data directory, so it cannot accept feedback",
                    status=503,
                    error_type="illegal_state_exception",
                )
            answer = await self.learner.feedback(
                await self._read(request), request.headers.get(TOKEN_HEADER)
            )
        except Exception as exc:
            metrics.FEEDBACK_REFUSED.labels("api", metrics.refusal_reason(exc)).inc()
            raise
        return _json_response(answer, status=202)

    async def _read(self, request: web.Request) -> bytes:
        """A body the proxy parses, decoded as its ``Content-Encoding`` says."""
        return decoded(request.headers, await self._raw(request), self.limits.max_body)

    async def _raw(self, request: web.Request) -> bytes:
        return await read_body(request, self.limits.body_seconds)

    async def _ubi(self, request: web.Request) -> web.StreamResponse:
        """Pass a UBI write on unchanged, then learn from what OpenSearch stored. The write
        is the client's: a body the proxy cannot decode still goes on, unlearned."""
        assert self.learner is not None
        request[ROUTE] = "ubi"
        raw = await self._raw(request)
        try:
            body: bytes | None = decoded(request.headers, raw, self.limits.max_body)
        except HttpError:
            body = None
            self.learner.skipped("body not decoded")
        if body is None or not may_carry_ubi(request.method, request.path, body):
            return await self._pass(request, body=raw)
        assert self._session is not None
        self.stats.count("passthrough")
        self._passing(request, "ubi write")
        started = time.perf_counter()
        response = await forward(
            request,
            self._session,
            self.base_url,
            max_body=self.limits.max_body,
            body_seconds=self.limits.body_seconds,
            body=raw,
            buffer=True,
            timeout=self._upstream_timeout(),
        )
        metrics.upstream("passthrough", time.perf_counter() - started)
        sent = response.body if isinstance(response, web.Response) else None
        if 200 <= response.status < 300 and isinstance(sent, bytes | bytearray):
            try:
                answer = decoded(response.headers, bytes(sent), ANSWER_LIMIT)
                await self.learner.ubi(request.method, request.path_qs, body, answer)
            except Exception:  # the client's write succeeded; learning must not undo that
                log.exception("learning from UBI events failed")
                self.stats.count("ubi_learn_errors")
        return response

    async def _pass(
        self,
        request: web.Request,
        body: bytes | None = None,
        reason: str | None = None,
        plain: bool = False,
        timeout: float | None = None,
    ) -> web.StreamResponse:
        assert self._session is not None
        self.stats.count("passthrough")
        if reason is not None:
            self.stats.passthrough_reasons[reason] += 1
        self._passing(request, reason_kind(reason) if reason is not None else "not intercepted")
        started = time.perf_counter()
        try:
            return await forward(
                request,
                self._session,
                self.base_url,
                max_body=self.limits.max_body,
                body_seconds=self.limits.body_seconds,
                body=body,
                plain=plain,
                timeout=self._upstream_timeout(timeout),
            )
        finally:
            metrics.upstream("passthrough", time.perf_counter() - started)

    @staticmethod
    def _passing(request: web.Request, reason: str) -> None:
        request[OUTCOME] = "passthrough"
        route = request.get(ROUTE) or "other"
        metrics.passed(route, reason)

    def _upstream_timeout(self, total: float | None = None) -> aiohttp.ClientTimeout:
        """A forwarded request waits at most ``upstream_seconds`` for each read (so a silent
        OpenSearch cannot hold it), and ``total`` overall when a deadline bounds it."""
        return aiohttp.ClientTimeout(
            total=total, sock_connect=CONNECT_SECONDS, sock_read=self.limits.upstream_seconds
        )

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        if request.method in ("GET", "POST"):
            match = SEARCH_PATH.match(request.path)
            if match is not None:
                runtime = self.registry.find(match["target"])
                if runtime is not None:
                    request[ROUTE] = "search"
                    return await self._intercept(request, match["target"], runtime)
            if self.ubi is not None and not self.ubi.plugin and ANY_SEARCH_PATH.match(request.path):
                return await self._search_maybe_ubi(request)
        if self.learner is not None and is_ubi_write(request.method, request.path):
            return await self._ubi(request)
        if request.path.endswith(MSEARCH_PATHS) and request.method in ("GET", "POST"):
            request[ROUTE] = "msearch"
            raw = await self._raw(request)
            text = decoded(request.headers, raw, self.limits.max_body)
            lines = text.count(b"\n") + (0 if text.endswith(b"\n") or not text else 1)
            if lines > self.limits.max_msearch_lines:
                raise PayloadTooLarge(
                    f"_msearch of {lines} lines is over the proxy's limit of "
                    f"{self.limits.max_msearch_lines} lines"
                )
            return await self._pass(request, body=raw)
        return await self._pass(request)

    async def _intercept(
        self, request: web.Request, target: str, runtime: Any
    ) -> web.StreamResponse:
        assert self._search is not None
        received = time.perf_counter()
        raw = await self._raw(request)
        text = decoded(request.headers, raw, self.limits.max_body)
        body: dict[str, Any] | None = None
        if text.strip():
            try:
                parsed = orjson.loads(text)
            except orjson.JSONDecodeError as exc:
                raise BadRequest(f"request body is not valid JSON: {exc}") from None
            if not isinstance(parsed, dict):
                raise BadRequest("request body must be a JSON object")
            body = parsed
        ubi = read_ubi(body)  # a malformed ext.ubi is a 400 whichever way the search goes
        parsed_request = parse_search(target, request.query, body, runtime.catalog.intercept)
        if isinstance(parsed_request, PassThrough):
            return await self._pass_search(request, raw, body, parsed_request.reason)
        answer = await self._search.run(
            runtime, parsed_request, caller_headers(request.headers), received
        )
        if isinstance(answer, PassOn):
            return await self._pass_search(
                request, raw, body, "every plan failed", timeout=answer.seconds
            )
        request[OUTCOME] = answer.outcome
        sent = answer.body if self.ubi is None else self.ubi.answered(parsed_request, ubi, answer)
        return _json_response(sent, headers={DECISION_HEADER: answer.decision_id})

    async def _search_maybe_ubi(self, request: web.Request) -> web.StreamResponse:
        """A search no catalog takes, on a node without the UBI plugin: with ``ext.ubi`` it is
        answered as the plugin would, else it goes on as it came (a body the proxy cannot
        read too, for OpenSearch to judge)."""
        raw = await self._raw(request)
        body: Any = None
        with suppress(HttpError, orjson.JSONDecodeError):
            text = decoded(request.headers, raw, self.limits.max_body)
            if b'"ubi"' in text:  # a byte scan first: most searches carry no UBI
                body = orjson.loads(text)
        ubi = read_ubi(body) if isinstance(body, dict) else None
        if ubi is None or not isinstance(body, dict):
            return await self._pass(request, body=raw or None)
        return await self._pass_ubi(request, body, ubi, "not catalogued")

    async def _pass_ubi(
        self,
        request: web.Request,
        body: dict[str, Any],
        ubi: UbiRequest,
        reason: str,
        timeout: float | None = None,
    ) -> web.StreamResponse:
        assert self._session is not None
        assert self.ubi is not None
        self._passing(request, reason_kind(reason))
        return await self.ubi.passthrough(
            request,
            self._session,
            self.base_url,
            sent=_dumps(strip_ext(body, "ltrr", "ubi")),
            ubi=ubi,
            reason=reason,
            timeout=self._upstream_timeout(timeout),
        )

    async def _pass_search(
        self,
        request: web.Request,
        raw: bytes,
        body: dict[str, Any] | None,
        reason: str,
        timeout: float | None = None,
    ) -> web.StreamResponse:
        """The client's own bytes, unless ``ext.ltrr`` must come out (then sent uncompressed),
        or ``ext.ubi`` is the proxy's to answer (a node without the UBI plugin)."""
        ubi = read_ubi(body)
        if body is not None and ubi is not None and self.ubi is not None and not self.ubi.plugin:
            return await self._pass_ubi(request, body, ubi, reason, timeout)
        ext = body.get("ext") if body is not None else None
        if body is None or not isinstance(ext, dict) or "ltrr" not in ext:
            return await self._pass(request, body=raw or None, reason=reason, timeout=timeout)
        return await self._pass(
            request, body=_dumps(strip_ltrr(body)), reason=reason, plain=True, timeout=timeout
        )


class _OpenSearchErrors(RequestHandler):
    """aiohttp answers what its HTTP parser refuses (a bad method, a 1 MB URL, a broken header)
    before any application code runs, in plain text; these answers are in OpenSearch's error
    JSON too. aiohttp still logs the error and closes the connection, as it would."""

    def handle_error(
        self,
        request: BaseRequest,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        super().handle_error(request, status, exc, message)  # logs it; raises if mid-answer
        if isinstance(exc, HttpProcessingError) and exc.message:
            reason = str(exc.message)[:300]
        elif status < 500:
            reason = message or "the request could not be read"
        else:
            reason = "the proxy failed on this request; its log has the details"
        error = HttpError(
            reason,
            status=status,
            error_type="illegal_argument_exception" if status < 500 else "exception",
        )
        response = error_response(error)
        response.force_close()
        return response


def _has_admin_token(request: web.Request, token: bytes) -> bool:
    """The token in ``ADMIN_HEADER`` or as a bearer credential, compared in constant time."""
    given = request.headers.get(ADMIN_HEADER, "")
    scheme, _, credentials = request.headers.get("Authorization", "").partition(" ")
    bearer = credentials.strip() if scheme.lower() == "bearer" else ""
    found = False
    for candidate in (given, bearer):  # both compared, whichever matched
        found |= hmac.compare_digest(candidate.encode("utf-8", "surrogateescape"), token)
    return found


def _dumps(body: dict[str, Any]) -> bytes:
    """A body for OpenSearch to judge, however deep: orjson stops at 254 levels, the standard
    encoder goes on to the interpreter's limit, and past that it is a 400 here."""
    try:
        return orjson.dumps(body)
    except TypeError:
        try:
            return json.dumps(body, ensure_ascii=False).encode()
        except RecursionError:
            raise BadRequest(
                "request body is nested too deep", error_type="x_content_parse_exception"
            ) from None


def parse_listen(listen: str) -> tuple[str, int]:
    host, _, port = listen.rpartition(":")
    if not host or not port.isdigit():
        raise ValueError(f"--listen must be HOST:PORT, got {listen!r}")
    return host.strip("[]"), int(port)


async def serve(
    catalogs: Sequence[Path | str],
    opensearch_url: str,
    listen: str = "127.0.0.1:9250",
    *,
    limits: Limits | None = None,
    ready: Callable[[str], None] | None = None,
    data_dir: Path | None = None,
    seed: int | None = None,
    state_interval: float = 2.0,
    simulated_clock: bool = False,
    sock: socket.socket | None = None,
    ca_file: Path | None = None,
    ubi_queries: bool = True,
    retention_days: int = DEFAULT_RETENTION_DAYS,
) -> None:
    """Run until SIGTERM/SIGINT; SIGHUP reloads the catalogs. ``simulated_clock``: time is
    what ``POST /_ltrr/_sim/clock`` sets (for ``ltrr simulate`` only). ``sock`` is a
    listening socket already bound (a worker's); by default ``listen`` is bound here.
    ``ca_file``: the CA bundle an ``https://`` OpenSearch's certificate is verified against
    (default: the system's). ``ubi_queries``: log the searches the proxy answers to
    ``ubi_queries``."""
    registry = CatalogRegistry(catalogs, seed=seed)
    registry.load_all()
    proxy = Proxy(
        registry,
        opensearch_url,
        limits=limits,
        data_dir=data_dir,
        state_interval=state_interval,
        clock=SimulatedClock() if simulated_clock else None,
        ca_file=ca_file,
        ubi_queries=ubi_queries,
        retention_days=retention_days,
    )
    host, port = parse_listen(listen)
    if sock is None:
        sock = bind(host, port)  # before the start-up: a taken port fails at once
    runner = web.AppRunner(proxy.app(), access_log=None, handle_signals=False, **SERVER_OPTIONS)
    await runner.setup()
    manager = runner.server
    assert manager is not None
    loop = asyncio.get_running_loop()
    # No access log (aiohttp takes None for that, as AppRunner passes it; its stub says Logger).
    quiet: Any = None
    listening = await loop.create_server(
        lambda: _OpenSearchErrors(manager, loop=loop, access_log=quiet, **SERVER_OPTIONS),
        sock=sock,
        backlog=BACKLOG,
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, stop.set)
    loop.add_signal_handler(signal.SIGHUP, registry.reload)
    if ready is not None:
        ready(f"ltrr proxy on http://{host}:{port} -> {opensearch_url}")
    try:
        await stop.wait()
    finally:
        listening.close()
        await runner.cleanup()
