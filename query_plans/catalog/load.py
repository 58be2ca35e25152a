"""Load a catalog: compose the YAML with line marks, read every section, check them against
each other, and build the immutable ``Catalog`` or report every problem at once."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, TypeVar

import yaml
from yaml.nodes import MappingNode, Node

from ltrr.bandit.policies.base import PolicyConfig
from ltrr.query_plans.catalog.model import (
    DEFAULT_DEADLINE_MS,
    Arm,
    Catalog,
    EmbeddingConfig,
    FallbackArm,
    FeatureConfig,
    FeedbackConfig,
    FusionConfig,
    InterceptRules,
    MemoryConfig,
    RerankConfig,
    RolloutConfig,
)
from ltrr.query_plans.catalog.read_arms import ArmsSection
from ltrr.query_plans.catalog.read_features import FeaturesSection
from ltrr.query_plans.catalog.read_feedback import FeedbackSection
from ltrr.query_plans.catalog.read_index import IndexSection
from ltrr.query_plans.catalog.read_memory import MemorySection
from ltrr.query_plans.catalog.read_ranking import RankingSection
from ltrr.query_plans.catalog.read_rollout import RolloutSection
from ltrr.query_plans.catalog.reader import BAD, ArmEntry, CatalogError, Field, is_null, show_node
from ltrr.query_plans.catalog.schema import MODEL_FILES, TOP_KEYS, TOP_REQUIRED

_T = TypeVar("_T")


@dataclass(slots=True)
class _Sections:
    entries: list[ArmEntry] | None
    targets: tuple[str, ...] | None
    budget: int | None
    deadline_ms: int | None
    embedding: EmbeddingConfig | None
    features: FeatureConfig | None
    policy: PolicyConfig | None
    fusion: FusionConfig | None
    rerank: RerankConfig | None
    intercept: InterceptRules | None
    feedback: FeedbackConfig | None
    memory: MemoryConfig | None
    fallback: tuple[FallbackArm, ...] | None
    index_body: Mapping[str, Any] | None
    source: Any
    rollout: RolloutConfig | None = None


class CatalogParser(
    ArmsSection,
    FeaturesSection,
    RankingSection,
    FeedbackSection,
    MemorySection,
    IndexSection,
    RolloutSection,
):
    """Reads the sections in dependency order: arms first, as the others refer to them."""

    def parse(self, root: Node, path: Path, raw: bytes) -> Catalog | None:
        top = self.mapping(root, "", TOP_KEYS, TOP_REQUIRED)
        if top is None:
            return None
        # An optional section set to null means "not configured"; a required one must be there.
        present = {name: f.value for name, f in top.items() if not is_null(f.value)}
        for name in TOP_REQUIRED:
            if name in top and name not in present:
                self.fail(top[name].key, name, "must have a value, not null")
        read = self.sections(present)
        self.check(read, present, top)
        return self.build(read, path, raw)

    def sections(self, present: Mapping[str, Node]) -> _Sections:
        """Every section, each read on its own; None where it is absent or failed (and said so)."""

        def get(
            name: str, read: Callable[[Node], _T | None], default: _T | None = None
        ) -> _T | None:
            node = present.get(name)
            return read(node) if node is not None else default

        entries = get("arms", self.arms)
        names = self.arm_index(entries) if entries is not None else None
        return _Sections(
            entries=entries,
            targets=get("target", self.targets),
            budget=get("budget", lambda n: self.integer(n, "budget", 1)),
            deadline_ms=get(
                "deadline_ms",
                lambda n: self.integer(n, "deadline_ms", 10, 60_000),
                DEFAULT_DEADLINE_MS,
            ),
            embedding=get("embedding", self.embedding),
            features=get("features", self.features),
            policy=get("policy", lambda n: self.policy(n, names)),
            fusion=get("fusion", lambda n: self.fusion(n, names), FusionConfig()),
            rerank=get("rerank", self.rerank),
            intercept=get("intercept", self.intercept, InterceptRules()) or InterceptRules(),
            feedback=get("feedback", self.feedback, FeedbackConfig()),
            memory=get("memory", self.memory),
            fallback=get("fallback", lambda n: self.fallback(n, names)),
            index_body=get("index", self.index_body),
            source=get("source", self.source),
            rollout=get("rollout", lambda n: self.rollout(n, names)),
        )

    def deadline(self, node: Node) -> int | None:
        return self.integer(node, "deadline_ms", 10, 60_000)

    def check(self, read: _Sections, present: Mapping[str, Node], top: dict[str, Field]) -> None:
        """What no section can check alone."""
        if read.memory is not None and read.index_body is not None:
            self.check_source_whole(read.index_body, present["index"])
        if read.entries is not None and read.budget is not None:
            self.check_budget(read.entries, read.budget, present["budget"])
        if read.entries is not None:
            self.check_vectors(read.entries, read.embedding, top)
        if read.rollout is not None and read.rollout.mode == "interleave" and "rerank" in present:
            self.fail(
                top["rollout"].key,
                "rollout.mode",
                "interleave cannot run with a rerank: the rerank would reorder the interleaved "
                "page and undo the team draft; use mode split, or drop the rerank section",
            )

    def build(self, read: _Sections, path: Path, raw: bytes) -> Catalog | None:
        # Every section that returned None recorded why; the checks below only narrow types.
        arms = tuple(e.arm for e in read.entries or () if e.arm is not None)
        if (
            self.errors
            or read.entries is None
            or len(arms) != len(read.entries)
            or read.targets is None
            or read.budget is None
            or read.deadline_ms is None
            or read.policy is None
            or read.fusion is None
            or read.feedback is None
            or read.fallback is None
            or read.source is BAD
        ):
            return None
        digest = self.digest(raw, arms)
        if digest is None:
            return None
        return Catalog(
            path=path.resolve(),
            targets=read.targets,
            arms=arms,
            policy=read.policy,
            budget=read.budget,
            fusion=read.fusion,
            fallback=read.fallback,
            rerank=read.rerank,
            intercept=read.intercept or InterceptRules(),
            features=read.features or FeatureConfig(),
            embedding=read.embedding,
            feedback=read.feedback,
            memory=read.memory,
            deadline_ms=read.deadline_ms,
            digest=digest,
            index_body=read.index_body,
            source=read.source,
            rollout=_salted(read.rollout, read.targets),
        )

    # -- checks across sections -------------------------------------------------------------

    def check_budget(self, entries: Sequence[ArmEntry], budget: int, node: Node) -> None:
        minimums = [(e.arm.name, e.arm.min_size) for e in entries if e.arm and e.arm.min_size]
        total = sum(size for _, size in minimums)
        if total > budget:
            parts = ", ".join(f"{name} {size}" for name, size in minimums)
            self.fail(
                node,
                "budget",
                f"is {budget}, less than the arms' minimum sizes, which add up to {total}"
                f" ({parts})",
            )

    def check_vectors(
        self,
        entries: Sequence[ArmEntry],
        embedding: EmbeddingConfig | None,
        top: dict[str, Field],
    ) -> None:
        vector_arms = [e for e in entries if e.needs_vector_node is not None]
        if not vector_arms:
            return
        section = top.get("embedding")
        if section is None or is_null(section.value):
            for e in vector_arms:
                self.fail(
                    e.needs_vector_node,
                    f"arms[{entries.index(e)}].needs_vector",
                    f"arm {e.name!r} needs a query vector, but the catalog has no"
                    " embedding section",
                )
            return
        if embedding is None:
            return  # the embedding section's own error says why
        where = self.model_node or section.value
        folder = embedding.model
        if not folder.is_dir():
            self.fail(where, "embedding.model", f"model folder {folder} does not exist")
            return
        missing = [name for name in MODEL_FILES if not (folder / name).is_file()]
        if missing:
            self.fail(
                where, "embedding.model", f"model folder {folder} has no {', '.join(missing)}"
            )

    def digest(self, raw: bytes, arms: Sequence[Arm]) -> str | None:
        """What a reload compares: the catalog's bytes and every template it uses."""
        h = hashlib.sha256(raw)
        for template in dict.fromkeys(arm.template for arm in arms):
            try:
                h.update(template.read_bytes())
            except OSError as exc:
                self.fail(None, "", f"template {template} vanished: {exc.strerror or exc}")
                return None
        return h.hexdigest()


def _salted(rollout: RolloutConfig | None, targets: tuple[str, ...]) -> RolloutConfig | None:
    """The split's default salt is the catalog's target: each catalog splits its own way."""
    if rollout is None or rollout.salt:
        return rollout
    return replace(rollout, salt=",".join(targets))


def _parse(path: Path | str) -> tuple[Catalog | None, list[CatalogError]]:
    display = str(path)
    file = Path(path)
    try:
        raw = file.read_bytes()
    except OSError as exc:
        return None, [CatalogError(display, None, "", f"cannot read: {exc.strerror or exc}")]
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        return None, [CatalogError(display, line, "", "not UTF-8 text")]
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        message = f"YAML syntax error: {exc.problem or exc.context}"
        if exc.context and exc.problem and exc.context_mark is not None:
            message += f" ({exc.context} at line {exc.context_mark.line + 1})"
        at = mark.line + 1 if mark is not None else None
        return None, [CatalogError(display, at, "", message)]
    except yaml.YAMLError as exc:
        return None, [CatalogError(display, None, "", f"YAML error: {exc}")]
    if root is None:
        return None, [CatalogError(display, None, "", "the catalog is empty")]
    parser = CatalogParser(file, display, os.environ)
    if not isinstance(root, MappingNode):
        parser.fail(
            root, "", f"a catalog is a YAML mapping (target:, arms:, ...), not {show_node(root)}"
        )
        return None, parser.errors
    catalog = parser.parse(root, file, raw)
    errors = sorted(parser.errors, key=lambda e: e.line or 0)
    if not errors and catalog is None:  # every path to None records why; this is a safety net
        errors = [CatalogError(display, None, "", "could not be loaded")]
    return (catalog if not errors else None), errors


def validate_catalog(path: Path | str) -> list[CatalogError]:
    """Every problem found, in line order; empty means the catalog loads."""
    return _parse(path)[1]


def load_catalog(path: Path | str) -> Catalog:
    """The validated catalog; raises the first ``CatalogError`` (by line) otherwise."""
    catalog, errors = _parse(path)
    if errors or catalog is None:
        raise errors[0]
    return catalog
