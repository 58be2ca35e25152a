"""The policies a simulation compares, each turned into a variant of the catalog under test.

Every variant serves its own copy of the index (``<target>-sim-<policy>``), so that what one
policy teaches the memory arm, and the bandit state kept per target, never leaks into
another's run. Only the ``policy``, ``budget``, ``target`` and ``rerank`` sections change:
the arms, templates, fusion and feedback are the catalog's own.

A name with ``+rerank`` (``safe_plans+rerank``, ``static+rerank``) keeps the catalog's LTR
rerank, live in the plugin; every other contender is measured on its fused order. So one run
holds the three rows a rerank is judged by: fused, reranked, and the static plan reranked.

The ``hybrid:*`` contenders are OpenSearch's own hybrid search over the same arms at the same
budget (``ltrr.query_plans.hybrid``): they search their copy directly, with no catalog variant
and no proxy, and never learn.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ltrr.plugin.errors import LtrrError
from ltrr.query_plans.catalog import Catalog
from ltrr.query_plans.hybrid import HybridError, even_depth, rank_constant, sub_query_arms

LEARNERS = ("safe_plans", "linucb", "thompson", "epsilon_greedy")
# OpenSearch's hybrid query, fused by its score-ranker-processor (RRF) or normalization-processor.
HYBRIDS = {"hybrid:rrf": "rrf", "hybrid:minmax": "minmax"}
DEFAULT_LINEUP = (*LEARNERS, "only:*", "static", "full", *HYBRIDS, "oracle")
RERANK = "+rerank"


@dataclass(frozen=True, slots=True)
class PolicySpec:
    """One contender. ``include`` is the static arm set; ``per_intent`` is the oracle's;
    ``hybrid`` names the pipeline of a native hybrid contender (``rrf`` or ``minmax``), which
    asks ``include`` as sub-queries, ``budget // len(include)`` candidates each."""

    name: str
    description: str
    learning: bool
    budget: int
    include: tuple[str, ...] = ()
    per_intent: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    hybrid: str = ""
    rerank: bool = False  # serves the catalog's LTR rerank

    @property
    def slug(self) -> str:
        return re.sub(r"[^a-z0-9]+", "-", self.name.lower()).strip("-")


def full_budget(catalog: Catalog) -> int:
    return sum(arm.max_size for arm in catalog.arms)


def expand(catalog: Catalog, names: Sequence[str]) -> list[PolicySpec]:
    """Policy names as the CLI takes them: learners, ``only:ARM`` (``only:*`` = each arm),
    ``static`` (all arms at the catalog's budget), ``full`` (all arms at max size),
    ``hybrid:rrf`` and ``hybrid:minmax`` (OpenSearch's hybrid query over the arms at the
    catalog's budget) and ``oracle`` (resolved later, once the best arm set per intent is
    known)."""
    arms = [arm.name for arm in catalog.arms]
    specs: list[PolicySpec] = []
    for name in names:
        if name.endswith(RERANK):
            specs.extend(_reranked(catalog, name))
        elif name in LEARNERS:
            specs.append(
                PolicySpec(name, f"{name}, learning online", True, catalog.budget),
            )
        elif name == "only:*":
            specs.extend(expand(catalog, [f"only:{arm}" for arm in arms]))
        elif name.startswith("only:"):
            arm = name.partition(":")[2]
            if arm not in arms:
                raise LtrrError(f"policy {name!r}: no arm {arm!r}; arms are {', '.join(arms)}")
            size = catalog.arm(arm).max_size
            specs.append(PolicySpec(name, f"{arm} alone, {size} candidates", False, size, (arm,)))
        elif name == "static":
            specs.append(
                PolicySpec(
                    name, f"all arms, fused, {catalog.budget} candidates", False, catalog.budget
                )
            )
        elif name == "full":
            total = full_budget(catalog)
            specs.append(
                PolicySpec(name, f"all arms at full size, {total} candidates", False, total)
            )
        elif name in HYBRIDS:
            specs.append(_hybrid_spec(catalog, name))
        elif name == "oracle":
            specs.append(PolicySpec(name, "best arm set per intent", False, catalog.budget))
        else:
            known = ", ".join(
                [*LEARNERS, "only:ARM", "only:*", "static", "full", *HYBRIDS, "oracle"]
            )
            raise LtrrError(f"unknown policy {name!r}; one of {known}")
    seen: set[str] = set()
    for spec in specs:
        if spec.name in seen:
            raise LtrrError(f"policy {spec.name!r} is listed twice")
        seen.add(spec.name)
    return specs


def _reranked(catalog: Catalog, name: str) -> list[PolicySpec]:
    """``X+rerank``: contender X with the catalog's rerank kept."""
    base = name.removesuffix(RERANK)
    if catalog.rerank is None:
        raise LtrrError(
            f"policy {name!r}: the catalog has no rerank section; name the model the "
            "simulation should serve with --rerank-model"
        )
    if base.endswith(RERANK):
        raise LtrrError(f"policy {name!r}: one +rerank is enough")
    inner = expand(catalog, [base])
    if len(inner) != 1 or inner[0].hybrid or inner[0].name == "oracle":
        raise LtrrError(
            f"policy {name!r}: only a learner, static, full or one only:ARM can be reranked"
        )
    spec = inner[0]
    return [
        PolicySpec(
            name,
            f"{spec.description}, reranked by {catalog.rerank.model}",
            spec.learning,
            spec.budget,
            spec.include,
            rerank=True,
        )
    ]


def _hybrid_spec(catalog: Catalog, name: str) -> PolicySpec:
    """The catalog's arms as one hybrid query, each sub-query an even share of the budget."""
    try:
        arms = sub_query_arms(catalog)
        depth = even_depth(catalog.budget, len(arms))
    except HybridError as exc:
        raise LtrrError(f"policy {name!r}: {exc}") from None
    method = HYBRIDS[name]
    if method == "rrf":
        how = f"RRF k={rank_constant(catalog)}"
    else:
        how = "min-max, arithmetic mean by fusion weight"
    description = (
        f"OpenSearch hybrid query, {how}, {len(arms)} x {depth} = {len(arms) * depth} candidates"
    )
    return PolicySpec(name, description, False, len(arms) * depth, arms, hybrid=method)


def variant_target(base: str, spec: PolicySpec, intent: str | None = None) -> str:
    suffix = f"-{intent}" if intent else ""
    return f"{base}-sim-{spec.slug}{suffix}"


def write_variant(
    catalog: Catalog,
    spec: PolicySpec,
    folder: Path,
    *,
    target: str,
    include: Sequence[str] = (),
    deadline_ms: int | None = None,
) -> Path:
    """The catalog file for one contender; templates are pinned to absolute paths. Only a
    ``+rerank`` contender has a rerank section: the catalog object's (whose model a
    simulation may have named), whether or not the file has one."""
    if spec.hybrid:
        raise LtrrError(f"{spec.name} searches OpenSearch directly: it has no catalog variant")
    raw: dict[str, Any] = yaml.safe_load(catalog.path.read_text(encoding="utf-8"))
    raw["target"] = target
    raw["budget"] = spec.budget
    if deadline_ms is not None:
        raw["deadline_ms"] = deadline_ms
    policy = dict(raw.get("policy") or {})
    if spec.learning:
        policy["name"] = spec.name.removesuffix(RERANK)
    else:
        policy = {"name": "static"}
        if include:
            policy["include"] = list(include)
    raw["policy"] = policy
    for arm_raw, arm in zip(raw["arms"], catalog.arms, strict=True):
        arm_raw["template"] = str(arm.template)
    if catalog.embedding is not None and isinstance(raw.get("embedding"), dict):
        # The variant lives in ``folder``, not beside the catalog: a relative model path would
        # be resolved against the wrong folder, so it is pinned like the templates.
        raw["embedding"]["model"] = str(catalog.embedding.model)
    raw.pop("rerank", None)
    if spec.rerank:
        if catalog.rerank is None:
            raise LtrrError(f"{spec.name} needs a rerank model: the catalog has no rerank section")
        rerank = catalog.rerank
        section: dict[str, Any] = {"model": rerank.model}
        if rerank.store is not None:
            section["store"] = rerank.store
        if rerank.window is not None:
            section["window"] = rerank.window
        if rerank.params:
            section["params"] = dict(rerank.params)
        raw["rerank"] = section
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{target}.yml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False), encoding="utf-8")
    return path
