"""Our LinUCB against MABWiser's, the reference implementation, on the same decisions.

The decision log of a LinUCB run (contexts, included arms) and its events (per-arm rewards)
are replayed, in the order they were made, into a fresh copy of our policy and into
MABWiser's ``LinUCB`` with the same alpha and ridge. Each decision's reward per arm is the sum
of its events' (what our policy holds once the decision's feedback window has closed). If
both implement disjoint ridge LinUCB the same way, their upper confidence bounds agree to
rounding on every logged context.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from ltrr.bandit.decision import ArmSpec
from ltrr.bandit.policies import make_policy
from ltrr.bandit.policies.base import PolicyConfig
from ltrr.plugin.errors import LtrrError
from ltrr.plugin.learn.bulk import DECISIONS_INDEX, EVENTS_INDEX
from ltrr.plugin.ops.client import Cluster
from ltrr.query_plans.catalog import load_catalog


@dataclass(frozen=True, slots=True)
class ReferenceCheck:
    decisions: int
    updates: int
    max_abs_difference: float
    same_best_arm: float  # share of logged contexts where both rank the same arm first
    same_inclusion: float  # share of (context, arm) where both put the bound on the same side
    # of the arm's cost, i.e. where LinUCB's inclusion decision would be the same


def _search_all(
    http: Cluster, index: str, query: dict[str, Any], sort: list[Any]
) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    after: list[Any] | None = None
    while True:
        body: dict[str, Any] = {"size": 2000, "query": query, "sort": sort}
        if after is not None:
            body["search_after"] = after
        status, reply = http.request("POST", f"/{index}/_search", body)
        if status != 200:
            raise LtrrError(f"reading {index}: {status} {str(reply)[:300]}")
        hits = reply["hits"]["hits"]
        out.extend(hits)
        if len(hits) < 2000:
            return out
        after = hits[-1]["sort"]


def logged_updates(
    cluster: Cluster | str, target: str, since: float
) -> tuple[list[str], list[tuple[np.ndarray, dict[str, float]]]]:
    """(arm names, [(context, {included arm: summed reward})]) in decision order."""
    http = cluster if isinstance(cluster, Cluster) else Cluster(cluster)
    for index in (DECISIONS_INDEX, EVENTS_INDEX):
        http.request("POST", f"/{index}/_refresh")
    decisions = _search_all(
        http,
        DECISIONS_INDEX,
        {
            "bool": {
                "filter": [
                    {"term": {"target": target}},
                    {"range": {"timestamp": {"gte": int(since)}}},
                ]
            }
        },
        [{"timestamp": "asc"}, {"decision_id": "asc"}],
    )
    rewards: dict[str, dict[str, float]] = {}
    ids = [d["_source"]["decision_id"] for d in decisions]
    for start in range(0, len(ids), 1000):
        chunk = ids[start : start + 1000]
        for hit in _search_all(
            http, EVENTS_INDEX, {"terms": {"decision_id": chunk}}, [{"_doc": "asc"}]
        ):
            event = hit["_source"]
            per_arm = rewards.setdefault(event["decision_id"], {})
            for arm, value in (event.get("rewards") or {}).items():
                per_arm[arm] = per_arm.get(arm, 0.0) + float(value)
    arms: list[str] = []
    updates: list[tuple[np.ndarray, dict[str, float]]] = []
    for hit in decisions:
        doc = hit["_source"]
        if not doc.get("learnable", True) or doc.get("features") is None:
            continue
        arms = arms or list(doc["arms"])
        got = rewards.get(doc["decision_id"], {})
        included = {
            arm: got.get(arm, 0.0)
            for arm, info in doc["arms"].items()
            if info.get("included") and info.get("ok", True)
        }
        updates.append((np.asarray(doc["features"], dtype=np.float64), included))
    return arms, updates


def compare(
    arms: Sequence[str],
    updates: Sequence[tuple[np.ndarray, dict[str, float]]],
    *,
    alpha: float,
    ridge: float,
    costs: Sequence[float],
) -> ReferenceCheck:
    """Replay ``updates`` into both implementations; compare their bounds on every context."""
    try:
        from mabwiser.mab import MAB, LearningPolicy
    except ImportError:
        raise LtrrError(
            "the reference check needs MABWiser (pip install mabwiser; `make` installs it)"
        ) from None

    if not updates:
        raise LtrrError("no logged LinUCB decisions to replay")
    n_features = len(updates[0][0])
    specs = [ArmSpec(a, 0, 1, cost) for a, cost in zip(arms, costs, strict=True)]
    ours = make_policy(PolicyConfig(name="linucb", alpha=alpha, ridge=ridge), specs, n_features, 0)
    reference = MAB(list(arms), LearningPolicy.LinUCB(alpha=alpha, l2_lambda=ridge), seed=0)
    decisions: list[str] = []
    rewards: list[float] = []
    contexts: list[np.ndarray] = []
    for x, per_arm in updates:
        for arm, reward in per_arm.items():
            ours.update(arm, x, reward)
            decisions.append(arm)
            rewards.append(reward)
            contexts.append(x)
    if not decisions:
        raise LtrrError("the logged LinUCB decisions include no arm to replay")
    reference.fit(decisions, rewards, np.vstack(contexts))
    xs = np.vstack([x for x, _ in updates])
    expected = reference.predict_expectations(xs)
    if isinstance(expected, dict):  # MABWiser answers a single context with one dict
        expected = [expected]
    theirs = np.array([[row[a] for a in arms] for row in expected], dtype=np.float64)
    mine = np.vstack([ours.probabilities(x)[1] for x in xs])
    cost = np.asarray(costs, dtype=np.float64)
    return ReferenceCheck(
        decisions=len(updates),
        updates=len(decisions),
        max_abs_difference=float(np.max(np.abs(mine - theirs))),
        same_best_arm=float(np.mean(mine.argmax(axis=1) == theirs.argmax(axis=1))),
        same_inclusion=float(np.mean((mine > cost) == (theirs > cost))),
    )


def to_json(check: ReferenceCheck) -> bytes:
    return orjson.dumps(
        {
            "decisions": check.decisions,
            "updates": check.updates,
            "max_abs_difference": check.max_abs_difference,
            "same_best_arm": check.same_best_arm,
            "same_inclusion": check.same_inclusion,
        }
    )


def reference_note(catalog_path: Path, opensearch: str, target: str, since: float) -> str:
    """The check on a simulation's LinUCB copy, in one sentence for the report and terminal."""
    catalog = load_catalog(catalog_path)
    arms, updates = logged_updates(opensearch, target, since)
    costs = [catalog.arm(a).cost for a in arms]
    check = compare(
        arms, updates, alpha=catalog.policy.alpha, ridge=catalog.policy.ridge, costs=costs
    )
    return (
        f"Reference check: {check.decisions} logged LinUCB decisions ({check.updates} arm "
        f"updates) replayed into our LinUCB and into MABWiser's LinUCB (alpha "
        f"{catalog.policy.alpha}, ridge {catalog.policy.ridge}): their upper confidence bounds "
        f"differ by at most {check.max_abs_difference:.1e}; same best arm on "
        f"{check.same_best_arm:.1%} of the contexts, same side of the arm's cost on "
        f"{check.same_inclusion:.1%}."
    )
