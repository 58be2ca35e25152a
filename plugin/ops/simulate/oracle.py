"""The oracle's arm sets: per query intent, the fixed arm set a perfect planner would pick.

It is measured, not assumed. For a sample of each intent's sessions, the calibration copy
runs every arm at full size once (``explain`` returns each hit's per-arm ranks), and every
non-empty arm set is then replayed offline the way the proxy would serve it: the same size
allocation at the catalog's budget, the same fusion, the same page. The set whose first page
earns the most expected clicks under the click model wins (ties: fewer candidates).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from itertools import combinations

from ltrr.bandit.sizes import allocate_sizes
from ltrr.plugin.ops.simulate.clicks import ClickModel
from ltrr.query_plans.catalog import Catalog
from ltrr.query_plans.fusion import get_fusion
from ltrr.query_plans.fusion.base import ArmHit


@dataclass(frozen=True, slots=True)
class Calibrated:
    """One calibration query: each arm's full list, and the query's graded judgments."""

    intent: str
    lists: Mapping[str, Sequence[ArmHit]]
    grades: Mapping[str, int]


def arm_sets(arms: Sequence[str]) -> list[tuple[str, ...]]:
    return [s for n in range(1, len(arms) + 1) for s in combinations(arms, n)]


def replay_page(
    catalog: Catalog, lists: Mapping[str, Sequence[ArmHit]], include: Sequence[str], page: int
) -> tuple[list[str], int]:
    """The first page (ids) the proxy would serve for a static ``include``, and its cost."""
    specs = [arm.spec() for arm in catalog.arms]
    included = [arm.name in include for arm in catalog.arms]
    scores = [1.0 if flag else 0.0 for flag in included]  # what the static policy scores
    sizes = allocate_sizes(specs, included, scores, catalog.budget, page)
    results = {
        spec.name: list(lists.get(spec.name, ()))[:size]
        for spec, size in zip(specs, sizes, strict=True)
        if size > 0
    }
    fused = get_fusion(catalog.fusion)(results, catalog.fusion.weights)
    return [hit.id for hit in fused[:page]], sum(sizes)


def best_sets(
    catalog: Catalog, samples: Sequence[Calibrated], clicks: ClickModel, page: int
) -> dict[str, tuple[tuple[str, ...], float]]:
    """Per intent: the winning arm set and its mean expected clicks per search."""
    arms = [arm.name for arm in catalog.arms]
    candidates = arm_sets(arms)
    by_intent: dict[str, list[Calibrated]] = {}
    for sample in samples:
        by_intent.setdefault(sample.intent, []).append(sample)
    out: dict[str, tuple[tuple[str, ...], float]] = {}
    for intent, group in sorted(by_intent.items()):
        scored: list[tuple[float, int, tuple[str, ...]]] = []
        for include in candidates:
            total = 0.0
            cost = 0
            for sample in group:
                ids, docs = replay_page(catalog, sample.lists, include, page)
                total += clicks.expected_clicks([sample.grades.get(i, 0) for i in ids])
                cost += docs
            scored.append((total / len(group), -cost, include))
        value, _, include = max(scored)
        out[intent] = (include, value)
    return out
