"""Fuse: merge the arms' hit lists into one candidate list with the catalog's fusion.

With ``fusion.by_policy`` each arm's weight is scaled by the policy's score for it in this
search, so the arms the policy expects most from lead the page.
"""

from __future__ import annotations

from ltrr.bandit.decision import Decision
from ltrr.plugin.serve.retrieve import ArmResult
from ltrr.query_plans.catalog import Catalog
from ltrr.query_plans.fusion import get_fusion, policy_weights
from ltrr.query_plans.fusion.base import FusedHit


def fuse(catalog: Catalog, decision: Decision, succeeded: dict[str, ArmResult]) -> list[FusedHit]:
    weights = catalog.fusion.weights
    if catalog.fusion.by_policy:
        weights = policy_weights(weights, {c.arm: c.score for c in decision.included})
    return get_fusion(catalog.fusion)({a: r.hits for a, r in succeeded.items()}, weights)
