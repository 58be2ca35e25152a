"""Rollout: put a search on the learner's side or the baseline's, or interleave their pages.

Split: the catalog's ``rollout.unit`` context key (a user or session id) is hashed to a side
(``ltrr.query_plans.rollout``). A search without it gets the baseline, the plan already trusted,
and is logged as unassigned, so the report leaves it out of the comparison rather than let
anonymous traffic tilt one side.

Interleave: the one ``_msearch`` asks the union of both plans (each arm at the larger of the
two sizes); each side then fuses only its own arms, each cut to its own size, exactly the page
it would have shown alone, and the two pages are team-drafted. The learner's decision keeps its
own propensities, and it learns from the clicks by the catalog's credit rule over what its own
arms retrieved at its own sizes: a clicked document only the baseline found pays none of its
arms. Its plan-level reward also counts the baseline team's clicks; those come from the same
baseline plan whichever plan the learner drew, so they shift every plan's value alike and leave
their order as it was.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from ltrr.bandit.decision import ArmChoice, Decision
from ltrr.plugin.serve.decide import plan_decision
from ltrr.plugin.serve.fuse import fuse
from ltrr.plugin.serve.retrieve import ArmResult
from ltrr.query_plans.catalog import Catalog, RolloutConfig
from ltrr.query_plans.fusion.base import FusedHit
from ltrr.query_plans.rollout import BASELINE, LEARNER, coin_flips, split_side, team_draft

# The policy name of a decision the baseline side made: a fixed plan, never learned from.
BASELINE_POLICY = "rollout_baseline"


def baseline_decision(catalog: Catalog, depth: int) -> Decision:
    return plan_decision(catalog, catalog.baseline_plan(), depth, BASELINE_POLICY)


def unit_of(rollout: RolloutConfig, context: Mapping[str, object]) -> str | None:
    """The unit id in the caller's context: a non-empty string or an integer, else None."""
    value = context.get(rollout.unit or "")
    if isinstance(value, bool):
        return None
    if isinstance(value, int) or (isinstance(value, str) and value):
        return str(value)
    return None


@dataclass(frozen=True, slots=True)
class Split:
    """Which side a split search is on; ``unit`` None: it carried none (the baseline's).

    ``log`` is the decision log's ``rollout`` entry: P(learner side) is ``share`` for an
    assigned unit, so a logged plan's probability is P(side) times its propensity there."""

    side: str
    unit: str | None
    log: dict[str, Any]


def split(catalog: Catalog, context: Mapping[str, object]) -> Split:
    rollout = catalog.rollout
    assert rollout is not None
    assert rollout.share is not None
    unit = unit_of(rollout, context)
    side = split_side(unit, rollout.salt, rollout.share) if unit is not None else BASELINE
    log = {
        "mode": "split",
        "side": side,
        "share": rollout.share,
        "unit": rollout.unit,
        "assigned": unit is not None,
    }
    return Split(side, unit, log)


def interleave_id(catalog: Catalog, decision: Decision, decision_id: str) -> str | None:
    """The id that seeds the coin when this search interleaves: a learner's decision under an
    interleaving rollout (a policy error's static plan is served alone); else None."""
    return decision_id if catalog.is_interleaved and decision.learnable else None


def shown(log: Mapping[str, Any] | None) -> dict[str, Any]:
    """What ``ext.ltrr`` shows of the rollout: the side, not the teams per position (those
    stay in the decision log)."""
    if log is None:
        return {}
    return {"rollout": {k: v for k, v in log.items() if k != "teams"}}


def union_decision(learner: Decision, baseline: Decision) -> Decision:
    """What the one ``_msearch`` asks: every arm either side includes, at the larger size."""
    choices = []
    for mine, theirs in zip(learner.choices, baseline.choices, strict=True):
        included = mine.included or theirs.included
        size = max(mine.size if mine.included else 0, theirs.size if theirs.included else 0)
        choices.append(ArmChoice(mine.arm, included, size, mine.propensity, mine.score))
    return replace(learner, choices=tuple(choices))


def cut(decision: Decision, succeeded: Mapping[str, ArmResult]) -> dict[str, ArmResult]:
    """The arms ``decision`` includes, each cut to its own size: what it alone would get."""
    out = {}
    for choice in decision.included:
        result = succeeded.get(choice.arm)
        if result is not None:
            out[choice.arm] = replace(result, hits=result.hits[: choice.size])
    return out


@dataclass(frozen=True, slots=True)
class InterleavedPage:
    hits: list[FusedHit]
    teams: list[str | None]  # per position: the team that placed it, None for a leftover
    learner_results: dict[str, ArmResult]  # what the learner's own arms retrieved, cut

    def log(self, baseline: Decision) -> dict[str, Any]:
        """The decision log's ``rollout`` entry: each team's document ids, in page order (a
        leftover is in neither), so that a click's team needs nothing else from the log."""
        teams: dict[str, list[str]] = {LEARNER: [], BASELINE: []}
        for hit, team in zip(self.hits, self.teams, strict=True):
            if team is not None:
                teams[team].append(hit.id)
        return {
            "mode": "interleave",
            "side": "interleaved",
            "baseline": {c.arm: c.size for c in baseline.included},
            "teams": teams,
        }


def interleave(
    catalog: Catalog,
    learner: Decision,
    baseline: Decision,
    succeeded: Mapping[str, ArmResult],
    decision_id: str,
) -> InterleavedPage:
    """Team-draft the two sides' fused pages, with a coin seeded by the decision id."""
    mine = cut(learner, succeeded)
    theirs = cut(baseline, succeeded)
    hits: dict[tuple[str, str], FusedHit] = {}
    ranked: list[list[tuple[str, str]]] = []
    for decision, results in ((learner, mine), (baseline, theirs)):
        fused = fuse(catalog, decision, results) if results else []
        for hit in fused:
            hits.setdefault(hit.key, hit)
        ranked.append([hit.key for hit in fused])
    salt = catalog.rollout.salt if catalog.rollout is not None else ""
    keys, teams = team_draft(ranked[0], ranked[1], coin_flips(decision_id, salt))
    return InterleavedPage([hits[k] for k in keys], teams, mine)
