"""The catalog model: immutable, validated on load (see ``load``), read by every layer above."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

from ltrr.bandit.decision import ArmSpec
from ltrr.bandit.policies.base import PolicyConfig

DEFAULT_DEADLINE_MS = 1000
DEFAULT_ARM_COST = 1.0
DEFAULT_EVENT_WEIGHT = 1.0


@dataclass(frozen=True, slots=True)
class Arm:
    """A retrieval strategy: an OpenSearch query template and its sizing."""

    name: str
    template: Path
    params: Mapping[str, object]
    min_size: int
    max_size: int
    needs_vector: bool = False
    cost: float = DEFAULT_ARM_COST
    # Where this arm searches instead of the request's target (another index or alias).
    index: str | None = None

    def spec(self) -> ArmSpec:
        return ArmSpec(self.name, self.min_size, self.max_size, self.cost, self.needs_vector)


@dataclass(frozen=True, slots=True)
class FusionConfig:
    """``method`` is rrf, combsum or combmnz; ``norm`` is minmax or zscore (Comb* only)."""

    method: str = "rrf"
    k: int = 60
    norm: str = "minmax"
    weights: Mapping[str, float] = field(default_factory=dict)
    # Scale each arm's weight by the policy's score for it in this search, so that the arms
    # the policy expects most from for this context lead the fused page.
    by_policy: bool = False


@dataclass(frozen=True, slots=True)
class RerankConfig:
    """The LTR plugin rescore over the fused ids; ``window`` None covers all candidates."""

    model: str
    store: str | None = None
    window: int | None = None
    params: Mapping[str, object] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class InterceptRules:
    """Which plain searches take the LTR&R path (``ext.ltrr`` always does)."""

    match: bool = True
    multi_match: bool = True
    query_string_q: bool = True


@dataclass(frozen=True, slots=True)
class FallbackArm:
    arm: str
    size: int


@dataclass(frozen=True, slots=True)
class ContextField:
    """A caller context field: numeric values enter as-is, categorical ones are hashed."""

    name: str
    kind: str  # "numeric" | "categorical"


@dataclass(frozen=True, slots=True)
class FeatureConfig:
    entity_field: str | None = None
    entity_refresh_seconds: float = 300.0
    entity_max: int = 100_000
    context: tuple[ContextField, ...] = ()
    hash_buckets: int = 8


@dataclass(frozen=True, slots=True)
class EmbeddingConfig:
    model: Path
    max_length: int = 256
    cache_size: int = 4096


@dataclass(frozen=True, slots=True)
class DebiasConfig:
    """Position-based debiasing of rewards (PBM): users see lower ranks less often, so an event
    at 1-based rank r is weighted by min(max_factor, r ** eta), the inverse of the examination
    probability (1/r) ** eta; ``max_factor`` keeps one deep click from swamping the rest."""

    eta: float = 1.0
    max_factor: float = 10.0


@dataclass(frozen=True, slots=True)
class FeedbackConfig:
    """How user actions become rewards: ``events`` maps an event type to its reward weight
    (negative for a bad sign, such as a skip); a decision with no feedback within
    ``window_seconds`` counts as reward 0 for each arm it included."""

    events: Mapping[str, float] = field(
        default_factory=lambda: MappingProxyType({"click": DEFAULT_EVENT_WEIGHT})
    )
    window_seconds: float = 1800.0
    debias: DebiasConfig | None = None
    max_events: int = 1000
    # Which included arms earn an event: every arm that retrieved the object ("presence"), or
    # only an arm without which it would not have been a candidate ("unique"); see
    # ltrr.bandit.rewards.
    credit: str = "presence"


@dataclass(frozen=True, slots=True)
class MemoryConfig:
    """The query -> entity (Q2E) memory kept on the entity documents as ``rank_features``:
    learned scores in ``field``, index-time predictions (from ``name_fields`` and
    ``phrase_fields``) in ``predicted_field``."""

    field: str = "ltrr_q2e"
    predicted_field: str = "ltrr_q2e_predicted"
    name_fields: tuple[str, ...] = ("name",)
    phrase_fields: tuple[str, ...] = ()
    half_life_days: float = 14.0  # time decay of the engagement counts
    smoothing: float = 5.0  # pseudo-searches in the engagement-rate denominator
    predicted_weight: float = 0.3  # predicted vs learned score in the memory arm
    flush_seconds: float = 2.0  # how often batched updates are written
    # Learned keys kept per entity document (the best-scoring): an entity found by many
    # different queries must not grow its document without end.
    max_keys: int = 1000


@dataclass(frozen=True, slots=True)
class RolloutConfig:
    """The learner against a baseline plan on live traffic (``ltrr.query_plans.rollout``).

    ``mode`` "split": a unit (the context key ``unit``, e.g. a session id) hashed with ``salt``
    is on the learner's side for ``share`` of all units, else on the baseline's. "interleave":
    every search shows the learner's page and the baseline's, team-drafted. ``baseline`` None is
    the catalog's static plan (``fallback``)."""

    mode: str
    share: float | None = None
    unit: str | None = None
    baseline: tuple[FallbackArm, ...] | None = None
    salt: str = ""


@dataclass(frozen=True, slots=True)
class Catalog:
    """Everything the search path needs for one index, alias or pattern."""

    path: Path
    targets: tuple[str, ...]
    arms: tuple[Arm, ...]
    policy: PolicyConfig
    budget: int
    fusion: FusionConfig
    fallback: tuple[FallbackArm, ...]
    rerank: RerankConfig | None = None
    intercept: InterceptRules = field(default_factory=InterceptRules)
    features: FeatureConfig = field(default_factory=FeatureConfig)
    embedding: EmbeddingConfig | None = None
    feedback: FeedbackConfig = field(default_factory=FeedbackConfig)
    # None when the catalog has no ``memory`` section.
    memory: MemoryConfig | None = None
    deadline_ms: int = DEFAULT_DEADLINE_MS
    digest: str = ""
    # The optional ``index:`` block (settings, mappings, aliases) used to create the index.
    index_body: Mapping[str, Any] | None = None
    # The ``_source`` every arm asks for when the caller names none: what keeps vectors off the
    # wire, at query time, without keeping them out of the stored document.
    source: Any = None
    # None when the catalog has no ``rollout`` section: the learner takes every search.
    rollout: RolloutConfig | None = None

    @property
    def is_split(self) -> bool:
        return self.rollout is not None and self.rollout.mode == "split"

    @property
    def is_interleaved(self) -> bool:
        return self.rollout is not None and self.rollout.mode == "interleave"

    def baseline_plan(self) -> tuple[FallbackArm, ...]:
        """What the rollout's baseline side asks: its named plan, else the static plan."""
        if self.rollout is not None and self.rollout.baseline is not None:
            return self.rollout.baseline
        return self.fallback

    def arm(self, name: str) -> Arm:
        for a in self.arms:
            if a.name == name:
                return a
        raise KeyError(name)
