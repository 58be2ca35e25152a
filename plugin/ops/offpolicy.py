"""``ltrr ope``: how a target policy would have done on the decisions the proxy logged.

Decisions come from a JSONL file (one ``ltrr-decisions`` document a line, each with its
``reward``) or from the ``ltrr-decisions`` index itself, with rewards summed from the event
weights in ``ltrr-events``. The target is a catalog's policy, built the way the proxy builds
it, or another policy named on the command line; a learning target starts from its prior, or
from the shared statistics in ``ltrr-state`` when a cluster is given.

Reading the index pages through ``search_after`` on (timestamp, decision_id) without a
point in time: decisions logged while it reads may or may not be included, which does not
matter for an estimate over the past.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from ltrr.bandit.features import FeatureBuilder
from ltrr.bandit.ope import Estimate, Evaluation, LoggedDecision, evaluate
from ltrr.bandit.policies import make_policy
from ltrr.bandit.policies.base import POLICY_NAMES, Policy, PolicyConfig, PolicyConfigError
from ltrr.bandit.state import shared_statistics
from ltrr.plugin.errors import LtrrError
from ltrr.plugin.learn.bulk import EVENTS_INDEX, STATE_INDEX
from ltrr.plugin.ops.client import Cluster
from ltrr.plugin.ops.html import Report, new_figure
from ltrr.query_plans.catalog import Catalog, load_catalog

PAGE_SIZE = 1000
TIMEOUT = 60.0
LEVEL = 0.95
TARGET_POLICIES = ("static", "static:arm1,arm2", "linucb", "thompson", "epsilon_greedy")


@dataclass(frozen=True, slots=True)
class OpeResult:
    """The estimates and everything a reader needs to trust them (or not)."""

    target: str
    policy: str
    source: str
    evaluation: Evaluation
    read: int
    skipped: int  # no features, or not learnable (a fallback plan)
    ignored: int  # logged for another target
    logged_policies: Mapping[str, int]
    state_arms: tuple[str, ...]  # arms whose statistics came from ltrr-state
    seed: int
    report: Path | None = None
    caveats: tuple[str, ...] = ()


# The action here is the arm set. Under by_policy fusion the page also depends on the logging
# policy's scores, so a set's logged reward is not what another policy would get from it.
BY_POLICY_CAVEAT = (
    "the catalog fuses by policy scores (fusion.by_policy): each logged page was ordered by the "
    "logging policy's scores, so a set's reward depends on more than the set, and estimates "
    "for a policy that scores differently are biased by that difference"
)


@dataclass(frozen=True, slots=True)
class _Target:
    catalog: Catalog
    key: str
    features: FeatureBuilder
    policy: Policy
    description: str


# -- the target policy -------------------------------------------------------------------------


def _target_config(spec: str | None, catalog: PolicyConfig) -> PolicyConfig:
    """The catalog's policy, or another one keeping the catalog's numeric settings."""
    if spec is None:
        return catalog
    name, colon, rest = spec.partition(":")
    name = name.strip()
    if name not in POLICY_NAMES:
        raise LtrrError(f"unknown target policy {spec!r}; use one of {', '.join(TARGET_POLICIES)}")
    include = tuple(a.strip() for a in rest.split(",") if a.strip())
    if colon and name != "static":
        raise LtrrError(f"target policy {spec!r}: only static takes a list of arms")
    if colon and not include:
        raise LtrrError(f"target policy {spec!r}: name the arms after 'static:'")
    return replace(catalog, name=name, include=include)


def _build_target(path: Path, spec: str | None, seed: int) -> _Target:
    """Features and policy as ``CatalogRegistry`` builds them, without embedder or entities."""
    catalog = load_catalog(path)
    features = FeatureBuilder(
        [(f.name, f.kind) for f in catalog.features.context], catalog.features.hash_buckets
    )
    config = _target_config(spec, catalog.policy)
    arms = [arm.spec() for arm in catalog.arms]
    try:
        policy = make_policy(config, arms, features.n_features, seed)
    except PolicyConfigError as exc:
        raise LtrrError(f"target policy {spec or config.name!r}: {exc}") from None
    description = config.name + (f":{','.join(config.include)}" if config.include else "")
    return _Target(catalog, catalog.targets[0], features, policy, description)


def _load_state(http: Cluster, target: _Target) -> tuple[str, ...]:
    """Install the shared statistics of every arm ``ltrr-state`` holds readably; the others
    keep their prior (the proxy does the same)."""
    shared = shared_statistics(target.policy, target.features.names)
    if shared is None:
        return ()
    ids = {f"{target.key}:{arm}": arm for arm in shared.arms}
    answer = _post(http, f"/{STATE_INDEX}/_mget", {"ids": list(ids)}, missing_ok=True)
    loaded = []
    for doc in (answer or {}).get("docs", []):
        source = doc.get("_source")
        arm = ids.get(doc.get("_id", ""))
        if doc.get("found") and arm is not None and shared.readable(source):
            shared.install(arm, source)
            loaded.append(arm)
    return tuple(loaded)


# -- reading decisions -------------------------------------------------------------------------


def _post(
    http: Cluster, path: str, body: Mapping[str, Any], *, missing_ok: bool = False
) -> dict[str, Any] | None:
    status, answer = http.request("POST", path, body, timeout=TIMEOUT)
    if status == 404 and missing_ok:
        return None
    if status == 404:
        raise LtrrError(f"{http.url}: no index for POST {path} ({str(answer)[:300]})")
    if status != 200:
        raise LtrrError(f"POST {path} on {http.url} gave {status}: {str(answer)[:500]}")
    return answer if isinstance(answer, dict) else {}


def _rewards(http: Cluster, ids: Sequence[str]) -> dict[str, float]:
    """Per decision, the sum of its events' catalog weights, before position debiasing (the
    value of what the user did, not what the arms were paid); no feedback is reward 0."""
    body = {
        "size": 0,
        "query": {"terms": {"decision_id": list(ids)}},
        "aggs": {
            "decisions": {
                "terms": {"field": "decision_id", "size": len(ids)},
                "aggs": {"reward": {"sum": {"field": "base_weight"}}},
            }
        },
    }
    answer = _post(http, f"/{EVENTS_INDEX}/_search", body, missing_ok=True)
    if answer is None:
        return {}
    buckets = answer.get("aggregations", {}).get("decisions", {}).get("buckets", [])
    return {str(b["key"]): float(b["reward"]["value"]) for b in buckets}


def _from_index(http: Cluster, index: str, target: str) -> Iterator[tuple[str, dict[str, Any]]]:
    """Every decision of ``target``, oldest first, each with its reward attached."""
    body: dict[str, Any] = {
        "size": PAGE_SIZE,
        "query": {"term": {"target": target}},
        "sort": [{"timestamp": "asc"}, {"decision_id": "asc"}],
        "track_total_hits": False,
    }
    while True:
        answer = _post(http, f"/{index}/_search", body)
        hits = (answer or {}).get("hits", {}).get("hits", [])
        if not hits:
            return
        docs = [hit["_source"] for hit in hits]
        rewards = _rewards(http, [str(doc.get("decision_id")) for doc in docs])
        for doc in docs:
            decision_id = str(doc.get("decision_id"))
            yield f"{index}/{decision_id}", {**doc, "reward": rewards.get(decision_id, 0.0)}
        if len(hits) < PAGE_SIZE:
            return
        body["search_after"] = hits[-1]["sort"]


def _from_jsonl(path: Path) -> Iterator[tuple[str, dict[str, Any]]]:
    with path.open("rb") as lines:
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            where = f"{path}:{number}"
            try:
                doc = orjson.loads(line)
            except orjson.JSONDecodeError as exc:
                raise LtrrError(f"{where}: not a JSON document: {exc}") from None
            if not isinstance(doc, dict):
                raise LtrrError(f"{where}: expected a decision document, got {type(doc).__name__}")
            reward = doc.get("reward")
            if isinstance(reward, bool) or not isinstance(reward, int | float):
                raise LtrrError(f'{where}: a decision in a JSONL file needs a "reward" number')
            yield where, doc


def _logged(where: str, doc: Mapping[str, Any], target: _Target) -> LoggedDecision:
    """One document as the estimators see it, arms in the target's order."""
    arm_names = [arm.name for arm in target.policy.arms]
    try:
        arms: Mapping[str, Mapping[str, Any]] = doc["arms"]
        logged_arms = list(arms)
        if sorted(logged_arms) != sorted(arm_names):
            raise LtrrError(
                f"{where}: logged arms {logged_arms} are not the target catalog's arms "
                f"{arm_names}; evaluate with a catalog that has the same arms"
            )
        names = list(doc["feature_names"])
        if names != list(target.features.names):
            raise LtrrError(f"{where}: {_layout_difference(names, target.features.names)}")
        if doc.get("plan") is not None and doc.get("set_propensity") is None:
            raise LtrrError(
                f"{where}: logged by a plan policy without set_propensity (a proxy older than "
                "the plan log): its arms were not drawn one by one, so their marginals give no "
                "arm-set probability"
            )
        set_propensity = doc.get("set_propensity")
        return LoggedDecision(
            x=np.asarray(doc["features"], dtype=np.float64),
            included=tuple(bool(arms[a]["included"]) for a in arm_names),
            marginals=tuple(float(arms[a]["propensity"]) for a in arm_names),
            reward=float(doc["reward"]),
            set_propensity=None if set_propensity is None else float(set_propensity),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise LtrrError(f"{where}: malformed decision document ({exc!r})") from None


def _layout_difference(logged: Sequence[str], target: Sequence[str]) -> str:
    first = next(
        (i for i, (a, b) in enumerate(zip(logged, target, strict=False)) if a != b),
        min(len(logged), len(target)),
    )

    def show(names: Sequence[str]) -> str:
        return repr(names[first]) if first < len(names) else "nothing"

    return (
        f"logged with a feature layout of {len(logged)} features, the target catalog has "
        f"{len(target)}; they first differ at position {first}: {show(logged)} logged, "
        f"{show(target)} in the catalog"
    )


# -- the run ----------------------------------------------------------------------------------


def run_ope(
    decisions: str,
    *,
    target_catalog: Path,
    target_policy: str | None,
    opensearch: str | None,
    seed: int,
    report: Path | None,
    clip: float | None = None,
    resamples: int = 1000,
    logged_target: str | None = None,
    cluster: Cluster | None = None,
) -> OpeResult:
    """Estimate the target's value on the logged decisions; write an HTML report if asked.

    ``decisions`` is a JSONL file when such a file exists, else the name of the decisions
    index on ``opensearch``. ``logged_target`` selects the decisions logged for another
    target than the catalog's (a copy the simulator served, say). ``cluster`` is injected by
    tests (no network); by default one is made for ``opensearch``.
    """
    target = _build_target(target_catalog, target_policy, seed)
    key = logged_target or target.key
    http = cluster
    if http is None and opensearch is not None:
        http = Cluster(opensearch, timeout=TIMEOUT)
    state_arms: tuple[str, ...] = ()
    if http is not None:
        state_arms = _load_state(http, target)
    path = Path(decisions)
    if path.is_file():
        documents = _from_jsonl(path)
    elif http is None:
        raise LtrrError(
            f"{decisions!r} is not a file; to read the decisions index of that name, "
            "give the cluster's URL with --opensearch"
        )
    else:
        documents = _from_index(http, decisions, key)

    read = skipped = ignored = 0
    logged: list[LoggedDecision] = []
    labels: list[str] = []
    policies: Counter[str] = Counter()
    for where, doc in documents:
        read += 1
        if doc.get("target", key) != key:
            ignored += 1
            continue
        if doc.get("features") is None or not doc.get("learnable", True):
            skipped += 1
            continue
        logged.append(_logged(where, doc, target))
        labels.append(where)
        policies[str(doc.get("policy", "unknown"))] += 1
    if not logged:
        raise LtrrError(
            f"no decision to evaluate in {decisions}: {read} read, {skipped} without features "
            f"or not learnable, {ignored} for targets other than {key!r}"
        )
    try:
        evaluation = evaluate(
            logged, target.policy, resamples=resamples, level=LEVEL, seed=seed, clip=clip
        )
    except ValueError as exc:
        raise LtrrError(_locate(str(exc), labels)) from None
    result = OpeResult(
        target=target.key,
        policy=target.description,
        source=decisions,
        evaluation=evaluation,
        read=read,
        skipped=skipped,
        ignored=ignored,
        logged_policies=dict(policies.most_common()),
        state_arms=state_arms,
        seed=seed,
        report=report,
        caveats=(BY_POLICY_CAVEAT,) if target.catalog.fusion.by_policy else (),
    )
    if report is not None:
        _write_report(result, report)
    return result


def _locate(message: str, labels: Sequence[str]) -> str:
    """``evaluate`` numbers decisions; name the file line or document instead."""
    match = re.match(r"decision (\d+): (.*)", message, flags=re.DOTALL)
    if match is None or int(match.group(1)) >= len(labels):
        return f"off-policy evaluation failed: {message}"
    return f"{labels[int(match.group(1))]}: {match.group(2)}"


# -- output -----------------------------------------------------------------------------------


def _number(value: float, digits: int = 3) -> str:
    return "n/a" if math.isnan(value) else f"{value:.{digits}f}"


def _rows(result: OpeResult) -> list[Estimate]:
    return [*result.evaluation.estimates, result.evaluation.logged]


def _state_line(result: OpeResult) -> str:
    if result.state_arms:
        return f"statistics from {STATE_INDEX} for arms {', '.join(result.state_arms)}"
    return "prior (no shared statistics loaded)"


def format_table(result: OpeResult) -> str:
    """The estimates as the terminal shows them, with the counts that qualify them."""
    ev = result.evaluation
    level = f"{LEVEL:.0%} CI"
    lines = [
        f"target {result.target}, policy {result.policy}, {ev.n:,} decisions from {result.source}",
        f"{'estimator':<10}{'value':>10}  {level:<20}{'ESS':>10}",
    ]
    for e in _rows(result):
        interval = f"[{_number(e.low)}, {_number(e.high)}]"
        lines.append(f"{e.name:<10}{_number(e.value):>10}  {interval:<20}{e.ess:>10,.1f}")
    lines += [
        f"read {result.read:,}: {ev.n:,} used, {result.skipped:,} skipped (no features or "
        f"not learnable), {result.ignored:,} ignored (other targets)",
        f"the target never takes {ev.zero_support:.1%} of the logged arm sets",
        "logged policies: "
        + ", ".join(f"{name} {count:,}" for name, count in result.logged_policies.items()),
        f"target statistics: {_state_line(result)}",
        *(f"caveat: {c}" for c in result.caveats),
    ]
    if result.report is not None:
        lines.append(f"report: {result.report}")
    return "\n".join(lines)


def _verdict(result: OpeResult) -> str:
    ev = result.evaluation
    dr = next(e for e in ev.estimates if e.name == "dr")
    logged = ev.logged.value
    head = (
        f"Doubly robust estimate for {result.policy}: {_number(dr.value)} "
        f"({LEVEL:.0%} CI {_number(dr.low)} to {_number(dr.high)}), "
        f"against {_number(logged)} for the logged policies."
    )
    if math.isnan(dr.low) or dr.low <= logged <= dr.high:
        return f"{head} The difference is within the interval."
    better = "better" if dr.low > logged else "worse"
    return f"{head} The target looks {better} than what was logged."


def _write_report(result: OpeResult, path: Path) -> None:
    ev = result.evaluation
    page = Report(
        "Off-policy evaluation",
        f"target {result.target} · policy {result.policy} · {result.source}",
    )
    page.verdict(_verdict(result))
    for caveat in result.caveats:
        page.paragraph(f"Caveat: {caveat}.")
    page.heading("Estimates")
    rows: list[list[object]] = [[e.name, e.value, e.low, e.high, e.ess, e.n] for e in _rows(result)]
    page.table(
        ["estimator", "value", "low", "high", "ESS", "n"],
        rows,
        caption=(
            f"{LEVEL:.0%} percentile-bootstrap intervals over decisions (seed {result.seed}); "
            "ESS is the importance weights' effective sample size. 'logged' is the average "
            "reward of the decisions as they were made."
        ),
    )
    fig = new_figure(7.0, 3.6)
    ax = fig.add_subplot(1, 1, 1)
    for i, e in enumerate(_rows(result)):
        if math.isnan(e.value):
            continue
        errors = None
        if not math.isnan(e.low):
            errors = [[e.value - e.low], [e.high - e.value]]
        colour = "#888888" if e.name == "logged" else "#2a7ab0"
        ax.errorbar([i], [e.value], yerr=errors, fmt="o", color=colour, capsize=6)
    ax.axhline(ev.logged.value, color="#888888", linestyle="--", linewidth=1)
    ax.set_xticks(range(len(_rows(result))), [e.name for e in _rows(result)])
    ax.set_ylabel("average reward per decision")
    page.figure(fig, "Estimates of the target with their intervals, beside the logged average.")
    page.heading("Data")
    page.paragraph(
        f"{result.read:,} decisions read, {ev.n:,} used, {result.skipped:,} skipped (no "
        f"features or not learnable), {result.ignored:,} for other targets. Logged policies: "
        + ", ".join(f"{name} ({count:,})" for name, count in result.logged_policies.items())
        + f". Target statistics: {_state_line(result)}."
    )
    page.paragraph(
        f"The target would never take {ev.zero_support:.1%} of the logged arm sets; the "
        "estimates rest on the rest. A small ESS means few decisions carry the estimate."
    )
    page.paragraph(
        "Actions are arm sets: sizes are ignored, so policies that size the same set "
        "differently are compared on their sets only. The target is evaluated frozen, as it "
        "is now; a target learned from these decisions is judged on its own training data."
    )
    page.write(path)
