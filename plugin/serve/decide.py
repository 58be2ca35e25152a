"""Decide: ask the catalog's agent which arms to query and how many candidates from each.

A policy that fails must not fail the search, so the catalog's static plan (propensity 1 for
its arms, no features, so never learned from) stands in, and the reason is kept.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from ltrr.bandit.decision import FALLBACK_POLICY, ArmChoice, Decision
from ltrr.plugin.runtime.registry import CatalogRuntime
from ltrr.plugin.serve.intercept import SearchRequest
from ltrr.query_plans.catalog import Catalog, FallbackArm

log = logging.getLogger("ltrr.search")


@dataclass(frozen=True, slots=True)
class Decided:
    decision: Decision
    fallback: str | None  # why the static plan stands in, if it does
    features: tuple[float, ...] | None  # what the policy saw, shown by explain, even if it failed


def static_decision(catalog: Catalog, depth: int, reason: str) -> Decision:
    """The catalog's fallback plan, as a decision with propensity 1 for its arms."""
    return plan_decision(catalog, catalog.fallback, depth, f"{FALLBACK_POLICY} ({reason})")


def plan_decision(
    catalog: Catalog, plan: Sequence[FallbackArm], depth: int, policy: str
) -> Decision:
    """A fixed plan as a decision: propensity 1 for its arms, each at least the page depth."""
    sizes = {f.arm: max(f.size, min(depth, catalog.arm(f.arm).max_size)) for f in plan}
    return Decision(
        tuple(
            ArmChoice(
                arm.name, arm.name in sizes, sizes.get(arm.name, 0), float(arm.name in sizes), 0.0
            )
            for arm in catalog.arms
        ),
        policy=policy,
    )


def decide(runtime: CatalogRuntime, request: SearchRequest, now: datetime) -> Decided:
    """The agent's decision for this search, or the static plan when the policy fails."""
    entities = runtime.entities.current if runtime.entities is not None else None
    try:
        decision = runtime.agent.decide(
            request.query,
            request.context,
            now,
            entities,
            budget=runtime.catalog.budget,
            depth=request.depth,
        )
        return Decided(decision, None, decision.features)
    except Exception as exc:  # a policy bug must cost one search its learning, not its answer
        log.exception("policy failed; using the static plan")
        try:
            features = runtime.agent.features(request.query, request.context, now, entities)
        except Exception:  # the features themselves failed: there is nothing to show
            features = None
        return Decided(
            static_decision(runtime.catalog, request.depth, "policy error"),
            f"policy error: {exc}",
            features,
        )
