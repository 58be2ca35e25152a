"""Run the plan as exactly one ``_msearch`` and read each arm's own outcome.

A sub-search that failed (its own ``error``/``status``, ``timed_out`` or failed shards) is an
arm failure: fusion leaves it out and learning must not read it as a zero reward.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ltrr.plugin.runtime.upstream import Transport, UpstreamError
from ltrr.query_plans.fusion.base import ArmHit
from ltrr.query_plans.plan import Plan


@dataclass(frozen=True, slots=True)
class ArmResult:
    arm: str
    hits: tuple[ArmHit, ...] = ()
    took: int = 0
    shards: Mapping[str, int] = field(default_factory=dict)
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


@dataclass(frozen=True, slots=True)
class Retrieval:
    """Each arm's outcome; ``took_ms`` is the time spent waiting for OpenSearch alone (the
    request out and the answer back), so the benchmark can tell the proxy's own cost apart."""

    results: Mapping[str, ArmResult]
    took_ms: float

    @property
    def succeeded(self) -> dict[str, ArmResult]:
        return {name: r for name, r in self.results.items() if r.ok}


def _reason(error: Any) -> str:
    if isinstance(error, Mapping):
        return f"{error.get('type', 'error')}: {error.get('reason', '')}".strip()
    return str(error)


def read_arm(arm: str, response: Mapping[str, Any]) -> ArmResult:
    if "error" in response:
        return ArmResult(arm, error=_reason(response["error"]))
    status = response.get("status", 200)
    if isinstance(status, int) and status >= 400:
        return ArmResult(arm, error=f"status {status}")
    shards = response.get("_shards") or {}
    took = int(response.get("took", 0))
    if response.get("timed_out"):
        return ArmResult(arm, took=took, shards=shards, error="timed_out")
    if shards.get("failed", 0):
        failures = shards.get("failures") or [{}]
        return ArmResult(
            arm,
            took=took,
            shards=shards,
            error=f"{shards['failed']} shard(s) failed: {_reason(failures[0].get('reason'))}",
        )
    hits = tuple(
        ArmHit(
            index=h["_index"],
            id=h["_id"],
            score=float(h["_score"]) if h.get("_score") is not None else 0.0,
            rank=rank,
            source=h.get("_source"),
        )
        for rank, h in enumerate(response.get("hits", {}).get("hits", []), start=1)
    )
    return ArmResult(arm, hits=hits, took=took, shards=shards)


async def retrieve(
    transport: Transport, plan: Plan, headers: Mapping[str, str], timeout: float
) -> Retrieval:
    """One round trip for every included arm; a transport failure fails them all."""
    waited = 0.0
    results: dict[str, ArmResult] = {
        arm: ArmResult(arm, error=f"not rendered: {reason}")
        for arm, reason in plan.failures.items()
    }
    if plan.searches:
        sent = {**headers, "Content-Type": "application/x-ndjson"}
        try:
            body = plan.ndjson()
            started = time.perf_counter()
            reply = await transport.request(
                "POST", "/_msearch", headers=sent, body=body, timeout=timeout
            )
            waited = time.perf_counter() - started
            payload = reply.json() if reply.body else {}
        except (UpstreamError, ValueError) as exc:
            reason = str(exc) or type(exc).__name__
            for search in plan.searches:
                results[search.arm] = ArmResult(search.arm, error=f"msearch failed: {reason}")
        else:
            responses = payload.get("responses") if isinstance(payload, Mapping) else None
            if reply.status >= 400 or not isinstance(responses, list):
                reason = _reason(payload.get("error")) if isinstance(payload, Mapping) else ""
                for search in plan.searches:
                    results[search.arm] = ArmResult(
                        search.arm, error=f"msearch status {reply.status} {reason}".strip()
                    )
            else:
                results.update(read_responses(plan, responses))
    return Retrieval(results, waited * 1000.0)


def read_responses(
    plan: Plan, responses: Sequence[Mapping[str, Any]], *, strict: bool = False
) -> dict[str, ArmResult]:
    """Each arm's result from the ``_msearch`` responses, in the plan's order. The proxy is
    lenient (an arm whose response is missing is absent); ``strict`` raises ``ValueError``
    on a count that does not match, for tools that must not measure a partial answer."""
    return {
        search.arm: read_arm(search.arm, response)
        for search, response in zip(plan.searches, responses, strict=strict)
    }
