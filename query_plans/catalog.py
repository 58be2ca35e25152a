"""The strategy catalog: one per index or alias, loaded from YAML and validated on load.

The model is immutable. ``load_catalog`` (below) turns a file into it, or raises a
``CatalogError`` that names the file, line and key; ``validate_catalog`` reports every problem
it can find at once, for ``ltrr catalog validate``. The YAML shape is documented in
``query_plans/catalogs/README.md``.

The file is parsed with ``yaml.compose`` rather than ``safe_load`` because nodes keep their
line: a catalog is edited by hand, and "arms[1].size.max at line 14" is what makes a mistake
quick to fix.
"""

from __future__ import annotations

import dataclasses
import difflib
import hashlib
import math
import os
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, NamedTuple, TypeVar

import yaml
from yaml.constructor import ConstructorError, SafeConstructor
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

import ltrr.templates
from ltrr.bandit.decision import ArmSpec
from ltrr.bandit.errors import LtrrError
from ltrr.bandit.policies.base import PolicyConfig, PolicyConfigError, parse_policy_config
from ltrr.query_plans.memory import source_loss
from ltrr.query_plans.templates import TemplateError, TemplateRenderer

DEFAULT_DEADLINE_MS = 1000
DEFAULT_ARM_COST = 1.0
DEFAULT_EVENT_WEIGHT = 1.0


class CatalogError(LtrrError, ValueError):
    """A catalog that cannot be used, located to the file, line and key."""

    def __init__(self, path: str, line: int | None, key: str, message: str) -> None:
        where = f"{path}:{line}" if line is not None else path
        super().__init__(f"{where}: {key}: {message}" if key else f"{where}: {message}")
        self.path = path
        self.line = line
        self.key = key
        self.message = message


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

    def arm(self, name: str) -> Arm:
        for a in self.arms:
            if a.name == name:
                return a
        raise KeyError(name)


# --- Loading -------------------------------------------------------------------------------

MAX_ARM_SIZE = 10_000
FUSION_METHODS = ("rrf", "combsum", "combmnz")
NORMS = ("minmax", "zscore")
CONTEXT_KINDS = ("numeric", "categorical")
MODEL_FILES = ("model.onnx", "tokenizer.json")
MIN_FEEDBACK_WINDOW_SECONDS = 0.1
MAX_FEEDBACK_WINDOW_SECONDS = 7 * 24 * 3600
MAX_FEEDBACK_EVENTS = 100_000
MIN_FLUSH_SECONDS = 0.1
MAX_FLUSH_SECONDS = 3600
BUILTIN_TEMPLATES = Path(ltrr.templates.__file__).resolve().parent

_TOP_KEYS = (
    "target",
    "budget",
    "deadline_ms",
    "embedding",
    "features",
    "policy",
    "arms",
    "fusion",
    "rerank",
    "intercept",
    "feedback",
    "memory",
    "fallback",
    "index",
    "source",
)
_TOP_REQUIRED = ("target", "budget", "policy", "arms", "fallback")
_ARM_KEYS = ("name", "template", "params", "size", "cost", "needs_vector", "index")
_FEATURE_KEYS = (
    "entity_field",
    "entity_refresh_seconds",
    "entity_max",
    "context",
    "hash_buckets",
)
_INDEX_KEYS = ("settings", "mappings", "aliases")
_FEEDBACK_KEYS = ("events", "window_seconds", "debias", "max_events", "credit")
CREDIT_RULES = ("presence", "unique")
_DEBIAS_KEYS = ("eta", "max_factor")
_MEMORY_KEYS = (
    "field",
    "predicted_field",
    "name_fields",
    "phrase_fields",
    "half_life_days",
    "smoothing",
    "predicted_weight",
    "flush_seconds",
)

_ARM_NAME = re.compile(r"[a-z0-9_]+")
_EVENT_TYPE = re.compile(r"[A-Za-z0-9_.:-]{1,64}")
_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
_STR_TAG = "tag:yaml.org,2002:str"
_NULL_TAG = "tag:yaml.org,2002:null"
_MERGE_TAG = "tag:yaml.org,2002:merge"
# Free-form blocks (params, index) are walked node by node; recursive or exploding aliases stop.
_MAX_DEPTH = 64
_MAX_NODES = 100_000

_T = TypeVar("_T")


class _Bad:
    """Marks a value that already has its error recorded, so callers add no second one."""


_BAD = _Bad()
_EMPTY: Mapping[str, Any] = MappingProxyType({})


class _Field(NamedTuple):
    key: Node
    value: Node


@dataclass(slots=True)
class _ArmEntry:
    """One ``arms`` item as far as it parsed: its name still resolves references to it."""

    name: str | None
    name_node: Node | None
    arm: Arm | None
    needs_vector_node: Node | None


def _line(node: Node) -> int:
    return int(node.start_mark.line) + 1


def _join(parent: str, key: str) -> str:
    return f"{parent}.{key}" if parent else key


def _suggest(word: str, choices: Sequence[str]) -> str:
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    if close:
        return f"; did you mean {close[0]!r}?"
    return f" (expected one of: {', '.join(choices)})" if choices else ""


def _show(node: Node) -> str:
    if isinstance(node, MappingNode):
        return "a mapping"
    if isinstance(node, SequenceNode):
        return "a list"
    if node.tag == _NULL_TAG:
        return "null"
    text = str(node.value)
    text = text if len(text) <= 40 else text[:37] + "..."
    return repr(text) if node.tag == _STR_TAG else text


def _is_null(node: Node) -> bool:
    return isinstance(node, ScalarNode) and node.tag == _NULL_TAG


def _bounds(low: float, high: float | None) -> str:
    return f"between {low} and {high}" if high is not None else f">= {low}"


class _Reader:
    """Typed reads from YAML nodes; every failure is recorded with its line and dotted key."""

    def __init__(self, display: str, environ: Mapping[str, str]) -> None:
        self.display = display
        self.environ = environ
        self.errors: list[CatalogError] = []
        self._constructor = SafeConstructor()
        self._nodes = 0
        self._merged: dict[Node, int] = {}

    def fail(self, node: Node | None, key: str, message: str) -> None:
        line = _line(node) if node is not None else None
        self.errors.append(CatalogError(self.display, line, key, message))

    def mapping(
        self,
        node: Node,
        key: str,
        known: Sequence[str] | None,
        required: Sequence[str] = (),
    ) -> dict[str, _Field] | None:
        """The keys of a mapping (``known`` None accepts any); merge keys (``<<``) apply."""
        if not isinstance(node, MappingNode):
            self.fail(node, key, f"must be a mapping, got {_show(node)}")
            return None
        merged_count = self._merged.get(node)
        if merged_count is None:  # an aliased mapping is flattened once, however often it is read
            own = sum(1 for k, _ in node.value if k.tag != _MERGE_TAG)
            try:
                self._constructor.flatten_mapping(node)
            except ConstructorError as exc:
                self.fail(node, key, f"bad merge (<<): {exc.problem}")
                return None
            merged_count = self._merged[node] = len(node.value) - own  # merged keys come first
        fields: dict[str, _Field] = {}
        positions: dict[str, int] = {}
        suggested: set[str] = set()
        for position, (key_node, value_node) in enumerate(node.value):
            if not isinstance(key_node, ScalarNode) or key_node.tag != _STR_TAG:
                self.fail(key_node, key, f"keys must be strings, got {_show(key_node)}")
                continue
            name = str(key_node.value)
            path = _join(key, name)
            if known is not None and name not in known:
                close = difflib.get_close_matches(name, list(known), n=1, cutoff=0.6)
                suggested.update(close)
                self.fail(key_node, path, f"unknown key {name!r}{_suggest(name, known)}")
                continue
            # A mapping's own keys override those it merges in; only a repeat of its own is wrong.
            if positions.get(name, -1) >= merged_count:
                first = fields[name].key
                self.fail(key_node, path, f"duplicate key (first at line {_line(first)})")
                continue
            fields[name] = _Field(key_node, value_node)
            positions[name] = position
        for name in required:
            if name not in fields and name not in suggested:
                self.fail(node, _join(key, name), "required key is missing")
        return fields

    def sequence(self, node: Node, key: str, *, what: str) -> list[Node] | None:
        if not isinstance(node, SequenceNode):
            self.fail(node, key, f"must be a list of {what}, got {_show(node)}")
            return None
        if not node.value:
            self.fail(node, key, f"must list at least one of {what}")
            return None
        return list(node.value)

    def scalar(self, node: Node, key: str) -> Any:
        """The scalar's value (strings with ``${VAR}`` expanded), or ``_BAD``."""
        if not isinstance(node, ScalarNode):
            self.fail(node, key, f"must be a single value, got {_show(node)}")
            return _BAD
        try:
            value = self._constructor.construct_object(node, deep=True)
        except ConstructorError as exc:
            self.fail(node, key, str(exc.problem or exc))
            return _BAD
        if isinstance(value, str):
            return self.expand(value, node, key)
        return value

    def expand(self, value: str, node: Node, key: str) -> Any:
        """``${VAR}`` and ``${VAR:-default}``, shell style: set-but-empty counts as unset."""
        if "${" not in value:
            return value
        missing: list[str] = []

        def substitute(match: re.Match[str]) -> str:
            name, default = match.group(1), match.group(2)
            found = self.environ.get(name)
            if found:
                return found
            if default is not None:
                return default
            missing.append(name)
            return ""

        expanded = _ENV_REF.sub(substitute, value)
        if missing:
            names = ", ".join(dict.fromkeys(missing))
            self.fail(
                node,
                key,
                f"environment variable {names} is not set (or is empty), so {value!r} expands"
                f" to {expanded!r}; set it, or write ${{{missing[0]}:-default}}",
            )
            return _BAD
        return expanded

    def plain(self, node: Node, key: str, depth: int = 0) -> Any:
        """Free-form JSON-like data (params, index settings), or ``_BAD``."""
        self._nodes += 1
        if depth > _MAX_DEPTH or self._nodes > _MAX_NODES:
            if self._nodes <= _MAX_NODES + 1:
                self.fail(node, key, "too deeply nested or too large (a recursive YAML alias?)")
            self._nodes = _MAX_NODES + 2
            return _BAD
        if isinstance(node, MappingNode):
            fields = self.mapping(node, key, None)
            if fields is None:
                return _BAD
            out: dict[str, Any] = {}
            for name, f in fields.items():
                out[name] = self.plain(f.value, _join(key, name), depth + 1)
            return _BAD if any(v is _BAD for v in out.values()) else out
        if isinstance(node, SequenceNode):
            items = [self.plain(n, f"{key}[{i}]", depth + 1) for i, n in enumerate(node.value)]
            return _BAD if any(v is _BAD for v in items) else items
        value = self.scalar(node, key)
        if value is _BAD or value is None or isinstance(value, str | bool | int):
            return value
        if isinstance(value, float):
            if math.isfinite(value):
                return value
            self.fail(node, key, f"must be a finite number, got {_show(node)}")
            return _BAD
        self.fail(
            node,
            key,
            f"must be a string, number, boolean or null, got {_show(node)} "
            f"(a {type(value).__name__}); quote it to keep it as text",
        )
        return _BAD

    def plain_mapping(self, node: Node, key: str) -> Mapping[str, Any] | None:
        if not isinstance(node, MappingNode):
            self.fail(node, key, f"must be a mapping, got {_show(node)}")
            return None
        value = self.plain(node, key)
        return None if value is _BAD else MappingProxyType(value)

    def text(self, node: Node, key: str) -> str | None:
        value = self.scalar(node, key)
        if value is _BAD:
            return None
        if not isinstance(value, str):
            self.fail(node, key, f"must be a string, got {_show(node)}")
            return None
        if not value.strip():
            self.fail(node, key, "must not be empty")
            return None
        return value

    def choice(self, node: Node, key: str, choices: Sequence[str]) -> str | None:
        value = self.text(node, key)
        if value is not None and value not in choices:
            self.fail(node, key, f"unknown value {value!r}{_suggest(value, choices)}")
            return None
        return value

    def integer(self, node: Node, key: str, low: int, high: int | None = None) -> int | None:
        value = self.scalar(node, key)
        if value is _BAD:
            return None
        if isinstance(value, bool) or not isinstance(value, int):
            self.fail(node, key, f"must be an integer, got {_show(node)}")
            return None
        if value < low or (high is not None and value > high):
            self.fail(node, key, f"must be {_bounds(low, high)}, got {value}")
            return None
        return value

    def number(
        self, node: Node, key: str, low: float, high: float | None = None, *, strict: bool = False
    ) -> float | None:
        """A float; ``strict`` excludes ``low`` itself."""
        value = self.scalar(node, key)
        if value is _BAD:
            return None
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not math.isfinite(value)
        ):
            self.fail(node, key, f"must be a number, got {_show(node)}")
            return None
        too_low = value <= low if strict else value < low
        if too_low or (high is not None and value > high):
            bound = f"> {low}" if strict and high is None else _bounds(low, high)
            self.fail(node, key, f"must be {bound}, got {value}")
            return None
        return float(value)

    def boolean(self, node: Node, key: str) -> bool | None:
        value = self.scalar(node, key)
        if value is _BAD:
            return None
        if not isinstance(value, bool):
            self.fail(node, key, f"must be true or false, got {_show(node)}")
            return None
        return value

    def optional(
        self,
        fields: Mapping[str, _Field],
        name: str,
        key: str,
        read: Callable[[Node, str], _T | None],
        default: _T,
    ) -> _T | None:
        """``default`` when the key is absent; None (already reported) when it is invalid."""
        f = fields.get(name)
        return default if f is None else read(f.value, _join(key, name))


class _CatalogParser(_Reader):
    """Reads the sections in dependency order: arms first, as the others refer to them."""

    def __init__(self, path: Path, display: str, environ: Mapping[str, str]) -> None:
        super().__init__(display, environ)
        self.base = path.resolve().parent
        self.renderer = TemplateRenderer()
        self.model_node: Node | None = None

    def parse(self, root: Node, path: Path, raw: bytes) -> Catalog | None:
        top = self.mapping(root, "", _TOP_KEYS, _TOP_REQUIRED)
        if top is None:
            return None
        # An optional section set to null means "not configured"; a required one must be there.
        present = {name: f.value for name, f in top.items() if not _is_null(f.value)}
        for name in _TOP_REQUIRED:
            if name in top and name not in present:
                self.fail(top[name].key, name, "must have a value, not null")

        entries = self.arms(present["arms"]) if "arms" in present else None
        names = self.arm_index(entries) if entries is not None else None
        targets = self.targets(present["target"]) if "target" in present else None
        budget = self.integer(present["budget"], "budget", 1) if "budget" in present else None
        deadline_ms: int | None = DEFAULT_DEADLINE_MS
        if "deadline_ms" in present:
            deadline_ms = self.integer(present["deadline_ms"], "deadline_ms", 10, 60_000)
        embedding = self.embedding(present["embedding"]) if "embedding" in present else None
        features = self.features(present["features"]) if "features" in present else None
        policy = self.policy(present["policy"], names) if "policy" in present else None
        fusion = self.fusion(present["fusion"], names) if "fusion" in present else FusionConfig()
        rerank = self.rerank(present["rerank"]) if "rerank" in present else None
        intercept = InterceptRules()
        if "intercept" in present:
            intercept = self.intercept(present["intercept"]) or intercept
        feedback = self.feedback(present["feedback"]) if "feedback" in present else FeedbackConfig()
        memory = self.memory(present["memory"]) if "memory" in present else None
        fallback = self.fallback(present["fallback"], names) if "fallback" in present else None
        index_body = self.index_body(present["index"]) if "index" in present else None
        source = self.source(present["source"]) if "source" in present else None
        if memory is not None and index_body is not None:
            self.check_source_whole(index_body, present["index"])

        if entries is not None and "budget" in present and budget is not None:
            self.check_budget(entries, budget, present["budget"])
        if entries is not None:
            self.check_vectors(entries, embedding, top)
        # Every section that returned None recorded why; the checks below only narrow types.
        arms = tuple(e.arm for e in entries or () if e.arm is not None)
        if (
            self.errors
            or entries is None
            or len(arms) != len(entries)
            or targets is None
            or budget is None
            or deadline_ms is None
            or policy is None
            or fusion is None
            or feedback is None
            or fallback is None
            or source is _BAD
        ):
            return None
        digest = self.digest(raw, arms)
        if digest is None:
            return None
        return Catalog(
            path=path.resolve(),
            targets=targets,
            arms=arms,
            policy=policy,
            budget=budget,
            fusion=fusion,
            fallback=fallback,
            rerank=rerank,
            intercept=intercept,
            features=features or FeatureConfig(),
            embedding=embedding,
            feedback=feedback,
            memory=memory,
            deadline_ms=deadline_ms,
            digest=digest,
            index_body=index_body,
            source=source,
        )

    # -- sections ---------------------------------------------------------------------------

    def targets(self, node: Node) -> tuple[str, ...] | None:
        if isinstance(node, SequenceNode):
            items = self.sequence(node, "target", what="indices, aliases or patterns")
            if items is None:
                return None
            pairs = [(n, f"target[{i}]") for i, n in enumerate(items)]
        else:
            pairs = [(node, "target")]
        out: list[str] = []
        for item, key in pairs:
            name = self.text(item, key)
            if name is None:
                continue
            if any(c.isspace() or c == "," for c in name):
                self.fail(
                    item, key, f"{name!r} is not one index, alias or pattern; list several instead"
                )
                continue
            out.append(name)
        return tuple(out) if len(out) == len(pairs) else None

    def arms(self, node: Node) -> list[_ArmEntry] | None:
        items = self.sequence(node, "arms", what="arms")
        if items is None:
            return None
        return [self.arm(item, f"arms[{i}]") for i, item in enumerate(items)]

    def arm_index(self, entries: list[_ArmEntry]) -> dict[str, _ArmEntry]:
        index: dict[str, _ArmEntry] = {}
        for i, entry in enumerate(entries):
            if entry.name is None:
                continue
            first = index.get(entry.name)
            if first is not None and first.name_node is not None:
                self.fail(
                    entry.name_node,
                    f"arms[{i}].name",
                    f"duplicate arm name {entry.name!r} (first at line {_line(first.name_node)})",
                )
                entry.arm = None
                continue
            index[entry.name] = entry
        return index

    def arm(self, node: Node, key: str) -> _ArmEntry:
        fields = self.mapping(node, key, _ARM_KEYS, ("name", "template", "size"))
        if fields is None:
            return _ArmEntry(None, None, None, None)
        name: str | None = None
        name_node = fields["name"].value if "name" in fields else None
        valid = True
        if name_node is not None:
            name = self.text(name_node, f"{key}.name")
            if name is not None and not _ARM_NAME.fullmatch(name):
                self.fail(name_node, f"{key}.name", f"{name!r}: arm names use only a-z, 0-9 and _")
                valid = False
        template = None
        if "template" in fields:
            template = self.template(fields["template"].value, f"{key}.template")
        sizes = self.size(fields["size"].value, f"{key}.size") if "size" in fields else None
        params = self.optional(fields, "params", key, self.plain_mapping, _EMPTY)
        cost = self.optional(
            fields, "cost", key, lambda n, k: self.number(n, k, 0.0), DEFAULT_ARM_COST
        )
        needs_vector = self.optional(fields, "needs_vector", key, self.boolean, False)
        index: str | None = None
        if "index" in fields and not _is_null(fields["index"].value):
            index = self.text(fields["index"].value, f"{key}.index")
            valid = valid and index is not None
        vector_node = (
            fields["needs_vector"].value if needs_vector and "needs_vector" in fields else None
        )
        if (
            not valid
            or name is None
            or template is None
            or sizes is None
            or params is None
            or cost is None
            or needs_vector is None
        ):
            return _ArmEntry(name, name_node, None, vector_node)
        arm = Arm(
            name=name,
            template=template,
            params=params,
            min_size=sizes[0],
            max_size=sizes[1],
            needs_vector=needs_vector,
            cost=cost,
            index=index,
        )
        return _ArmEntry(name, name_node, arm, vector_node)

    def template(self, node: Node, key: str) -> Path | None:
        """The catalog's folder first, then the built-in templates shipped with the package."""
        name = self.text(node, key)
        if name is None:
            return None
        given = Path(name).expanduser()
        candidates = (
            [given] if given.is_absolute() else [self.base / given, BUILTIN_TEMPLATES / given]
        )
        found = next((c for c in candidates if c.is_file()), None)
        if found is None:
            tried = " and ".join(str(c) for c in candidates)
            self.fail(node, key, f"template {name!r} not found (looked for {tried})")
            return None
        found = found.resolve()
        try:
            self.renderer.check(found)
        except TemplateError as exc:
            self.fail(node, key, str(exc))
            return None
        return found

    def size(self, node: Node, key: str) -> tuple[int, int] | None:
        fields = self.mapping(node, key, ("min", "max"), ("max",))
        if fields is None or "max" not in fields:
            return None
        low = self.optional(fields, "min", key, lambda n, k: self.integer(n, k, 0, MAX_ARM_SIZE), 0)
        high = self.integer(fields["max"].value, f"{key}.max", 1, MAX_ARM_SIZE)
        if low is None or high is None:
            return None
        if low > high:
            self.fail(fields["max"].value, f"{key}.max", f"is {high}, less than min ({low})")
            return None
        return low, high

    def embedding(self, node: Node) -> EmbeddingConfig | None:
        key = "embedding"
        fields = self.mapping(node, key, ("model", "max_length", "cache_size"), ("model",))
        if fields is None or "model" not in fields:
            return None
        self.model_node = fields["model"].value
        model = self.text(self.model_node, "embedding.model")
        defaults = EmbeddingConfig(Path())
        max_length = self.optional(
            fields, "max_length", key, lambda n, k: self.integer(n, k, 2), defaults.max_length
        )
        cache_size = self.optional(
            fields, "cache_size", key, lambda n, k: self.integer(n, k, 0), defaults.cache_size
        )
        if model is None or max_length is None or cache_size is None:
            return None
        folder = Path(model).expanduser()
        folder = folder if folder.is_absolute() else self.base / folder
        return EmbeddingConfig(folder, max_length=max_length, cache_size=cache_size)

    def features(self, node: Node) -> FeatureConfig | None:
        key = "features"
        fields = self.mapping(node, key, _FEATURE_KEYS)
        if fields is None:
            return None
        d = FeatureConfig()
        entity_field: str | None = None
        ok = True
        if "entity_field" in fields and not _is_null(fields["entity_field"].value):
            entity_field = self.text(fields["entity_field"].value, "features.entity_field")
            ok = entity_field is not None
        refresh = self.optional(
            fields,
            "entity_refresh_seconds",
            key,
            lambda n, k: self.number(n, k, 0.0, strict=True),
            d.entity_refresh_seconds,
        )
        entity_max = self.optional(
            fields, "entity_max", key, lambda n, k: self.integer(n, k, 1), d.entity_max
        )
        buckets = self.optional(
            fields, "hash_buckets", key, lambda n, k: self.integer(n, k, 1, 1024), d.hash_buckets
        )
        context = self.optional(fields, "context", key, self.context, d.context)
        if not ok or refresh is None or entity_max is None or buckets is None or context is None:
            return None
        return FeatureConfig(
            entity_field=entity_field,
            entity_refresh_seconds=refresh,
            entity_max=entity_max,
            context=context,
            hash_buckets=buckets,
        )

    def context(self, node: Node, key: str) -> tuple[ContextField, ...] | None:
        fields = self.mapping(node, key, None)
        if fields is None:
            return None
        out: list[ContextField] = []
        for name, f in fields.items():
            kind = self.choice(f.value, _join(key, name), CONTEXT_KINDS)
            if kind is not None:
                out.append(ContextField(name, kind))
        return tuple(out) if len(out) == len(fields) else None

    def policy(self, node: Node, arms: Mapping[str, _ArmEntry] | None) -> PolicyConfig | None:
        """Each setting is checked on its own by ``parse_policy_config``, so that every bad
        one is reported at its own line, not just the first."""
        fields = self.mapping(node, "policy", None, ("name",))
        if fields is None or "name" not in fields:
            return None
        name_node = fields["name"].value
        name = self.text(name_node, "policy.name")
        if name is None:
            return None
        try:
            parse_policy_config(name, {})
        except PolicyConfigError as exc:
            self.fail(name_node, f"policy.{exc.key}", exc.message)
            return None
        known = [f.name for f in dataclasses.fields(PolicyConfig) if f.name != "name"]
        settings: dict[str, object] = {}
        ok = True
        for key, f in fields.items():
            if key == "name":
                continue
            value = self.plain(f.value, f"policy.{key}")
            if value is _BAD:
                ok = False
                continue
            try:
                parse_policy_config(name, {key: value})
            except PolicyConfigError as exc:
                ok = False
                if key in known:
                    self.fail(f.value, f"policy.{exc.key}", exc.message)
                else:
                    self.fail(f.key, f"policy.{key}", f"{exc.message}{_suggest(key, known)}")
                continue
            settings[key] = value
        include = fields.get("include")
        if include is not None and "include" in settings and arms is not None:
            for i, item in enumerate(include.value.value):
                if item.value not in arms:
                    ok = False
                    self.fail(
                        item,
                        f"policy.include[{i}]",
                        f"unknown arm {item.value!r}{_suggest(str(item.value), list(arms))}",
                    )
        if not ok:
            return None
        try:
            return parse_policy_config(name, settings)
        except PolicyConfigError as exc:
            where = fields[exc.key].value if exc.key in fields else node
            self.fail(where, f"policy.{exc.key}", exc.message)
            return None

    def fusion(self, node: Node, arms: Mapping[str, _ArmEntry] | None) -> FusionConfig | None:
        key = "fusion"
        fields = self.mapping(node, key, ("method", "k", "norm", "weights", "by_policy"))
        if fields is None:
            return None
        d = FusionConfig()
        by_policy = self.optional(fields, "by_policy", key, self.boolean, d.by_policy)
        method = self.optional(
            fields, "method", key, lambda n, k: self.choice(n, k, FUSION_METHODS), d.method
        )
        k = self.optional(fields, "k", key, lambda n, k: self.integer(n, k, 1), d.k)
        norm = self.optional(fields, "norm", key, lambda n, k: self.choice(n, k, NORMS), d.norm)
        ok = True
        if method is not None and method != "rrf" and "k" in fields:
            self.fail(fields["k"].key, "fusion.k", f"k applies to rrf only, not {method}")
            ok = False
        if method == "rrf" and "norm" in fields:
            self.fail(fields["norm"].key, "fusion.norm", "norm applies to combsum and combmnz only")
            ok = False
        weights: dict[str, float] = {}
        if "weights" in fields:
            entries = self.mapping(fields["weights"].value, "fusion.weights", None)
            if entries is None:
                ok = False
            for arm, f in (entries or {}).items():
                path = f"fusion.weights.{arm}"
                if arms is not None and arm not in arms:
                    self.fail(f.key, path, f"unknown arm {arm!r}{_suggest(arm, list(arms))}")
                    ok = False
                    continue
                weight = self.number(f.value, path, 0.0)
                if weight is None:
                    ok = False
                else:
                    weights[arm] = weight
        if not ok or method is None or k is None or norm is None or by_policy is None:
            return None
        return FusionConfig(
            method=method,
            k=k,
            norm=norm,
            weights=MappingProxyType(weights),
            by_policy=by_policy,
        )

    def rerank(self, node: Node) -> RerankConfig | None:
        key = "rerank"
        fields = self.mapping(node, key, ("model", "store", "window", "params"), ("model",))
        if fields is None or "model" not in fields:
            return None
        model = self.text(fields["model"].value, "rerank.model")
        ok = True
        store: str | None = None
        if "store" in fields and not _is_null(fields["store"].value):
            store = self.text(fields["store"].value, "rerank.store")
            ok = store is not None
        window: int | None = None
        if "window" in fields and not _is_null(fields["window"].value):
            window = self.integer(fields["window"].value, "rerank.window", 1)
            ok = ok and window is not None
        params = self.optional(fields, "params", key, self.plain_mapping, _EMPTY)
        if not ok or model is None or params is None:
            return None
        return RerankConfig(model=model, store=store, window=window, params=params)

    def intercept(self, node: Node) -> InterceptRules | None:
        key = "intercept"
        fields = self.mapping(node, key, ("match", "multi_match", "q"))
        if fields is None:
            return None
        d = InterceptRules()
        match = self.optional(fields, "match", key, self.boolean, d.match)
        multi = self.optional(fields, "multi_match", key, self.boolean, d.multi_match)
        q = self.optional(fields, "q", key, self.boolean, d.query_string_q)
        if match is None or multi is None or q is None:
            return None
        return InterceptRules(match=match, multi_match=multi, query_string_q=q)

    def feedback(self, node: Node) -> FeedbackConfig | None:
        key = "feedback"
        fields = self.mapping(node, key, _FEEDBACK_KEYS)
        if fields is None:
            return None
        d = FeedbackConfig()
        events = self.optional(fields, "events", key, self.events, d.events)
        window = self.optional(
            fields,
            "window_seconds",
            key,
            lambda n, k: self.number(
                n, k, MIN_FEEDBACK_WINDOW_SECONDS, MAX_FEEDBACK_WINDOW_SECONDS
            ),
            d.window_seconds,
        )
        max_events = self.optional(
            fields,
            "max_events",
            key,
            lambda n, k: self.integer(n, k, 1, MAX_FEEDBACK_EVENTS),
            d.max_events,
        )
        credit = self.optional(
            fields, "credit", key, lambda n, k: self.choice(n, k, CREDIT_RULES), d.credit
        )
        debias: DebiasConfig | None = None
        ok = credit is not None
        if "debias" in fields and not _is_null(fields["debias"].value):
            debias = self.debias(fields["debias"].value)
            ok = ok and debias is not None
        if not ok or events is None or window is None or max_events is None or credit is None:
            return None
        return FeedbackConfig(
            events=events,
            window_seconds=window,
            debias=debias,
            max_events=max_events,
            credit=credit,
        )

    def events(self, node: Node, key: str) -> Mapping[str, float] | None:
        """Event type -> reward weight; a weight may be negative (a skip is a bad sign)."""
        fields = self.mapping(node, key, None)
        if fields is None:
            return None
        if not node.value:  # not ``fields``: a non-string key already has its own error
            self.fail(node, key, "must map at least one event type to its reward weight")
            return None
        out: dict[str, float] = {}
        for name, f in fields.items():
            path = _join(key, name)
            if not _EVENT_TYPE.fullmatch(name):
                self.fail(
                    f.key,
                    path,
                    f"{name!r}: event types are 1 to 64 characters of A-Z, a-z, 0-9, _, ., : and -",
                )
                continue
            weight = self.number(f.value, path, -math.inf)
            if weight is not None:
                out[name] = weight
        return MappingProxyType(out) if len(out) == len(fields) else None

    def debias(self, node: Node) -> DebiasConfig | None:
        key = "feedback.debias"
        fields = self.mapping(node, key, _DEBIAS_KEYS)
        if fields is None:
            return None
        d = DebiasConfig()
        eta = self.optional(fields, "eta", key, lambda n, k: self.number(n, k, 0.0), d.eta)
        max_factor = self.optional(
            fields, "max_factor", key, lambda n, k: self.number(n, k, 1.0), d.max_factor
        )
        if eta is None or max_factor is None:
            return None
        return DebiasConfig(eta=eta, max_factor=max_factor)

    def memory(self, node: Node) -> MemoryConfig | None:
        key = "memory"
        fields = self.mapping(node, key, _MEMORY_KEYS)
        if fields is None:
            return None
        d = MemoryConfig()
        learned = self.optional(fields, "field", key, self.text, d.field)
        predicted = self.optional(fields, "predicted_field", key, self.text, d.predicted_field)
        names = self.optional(
            fields,
            "name_fields",
            key,
            lambda n, k: self.field_names(n, k, allow_empty=False),
            d.name_fields,
        )
        phrases = self.optional(
            fields,
            "phrase_fields",
            key,
            lambda n, k: self.field_names(n, k, allow_empty=True),
            d.phrase_fields,
        )
        half_life = self.optional(
            fields,
            "half_life_days",
            key,
            lambda n, k: self.number(n, k, 0.0, strict=True),
            d.half_life_days,
        )
        smoothing = self.optional(
            fields, "smoothing", key, lambda n, k: self.number(n, k, 0.0), d.smoothing
        )
        weight = self.optional(
            fields,
            "predicted_weight",
            key,
            lambda n, k: self.number(n, k, 0.0),
            d.predicted_weight,
        )
        flush = self.optional(
            fields,
            "flush_seconds",
            key,
            lambda n, k: self.number(n, k, MIN_FLUSH_SECONDS, MAX_FLUSH_SECONDS),
            d.flush_seconds,
        )
        ok = True
        if learned is not None and learned == predicted:
            # One field would mix the two scores, and the learning loop would overwrite the
            # index-time predictions. Reported where the clash was written.
            clash = "predicted_field" if "predicted_field" in fields else "field"
            other = "field" if clash == "predicted_field" else "predicted_field"
            self.fail(
                fields[clash].value,
                _join(key, clash),
                f"is {learned!r}, the same as memory.{other}; learned and predicted scores"
                " need a field each",
            )
            ok = False
        if (
            not ok
            or learned is None
            or predicted is None
            or names is None
            or phrases is None
            or half_life is None
            or smoothing is None
            or weight is None
            or flush is None
        ):
            return None
        return MemoryConfig(
            field=learned,
            predicted_field=predicted,
            name_fields=names,
            phrase_fields=phrases,
            half_life_days=half_life,
            smoothing=smoothing,
            predicted_weight=weight,
            flush_seconds=flush,
        )

    def field_names(self, node: Node, key: str, *, allow_empty: bool) -> tuple[str, ...] | None:
        if allow_empty and isinstance(node, SequenceNode) and not node.value:
            return ()
        items = self.sequence(node, key, what="field names")
        if items is None:
            return None
        out: list[str] = []
        seen: dict[str, Node] = {}
        for i, item in enumerate(items):
            path = f"{key}[{i}]"
            name = self.text(item, path)
            if name is None:
                continue
            if name in seen:
                self.fail(item, path, f"{name!r} is already at line {_line(seen[name])}")
                continue
            seen[name] = item
            out.append(name)
        return tuple(out) if len(out) == len(items) else None

    def fallback(
        self, node: Node, arms: Mapping[str, _ArmEntry] | None
    ) -> tuple[FallbackArm, ...] | None:
        items = self.sequence(node, "fallback", what="{arm, size} entries")
        if items is None:
            return None
        out: list[FallbackArm] = []
        seen: dict[str, Node] = {}
        for i, item in enumerate(items):
            key = f"fallback[{i}]"
            fields = self.mapping(item, key, ("arm", "size"), ("arm", "size"))
            if fields is None or "arm" not in fields or "size" not in fields:
                continue
            arm_node = fields["arm"].value
            name = self.text(arm_node, f"{key}.arm")
            size = self.integer(fields["size"].value, f"{key}.size", 1)
            if name is None or size is None:
                continue
            if name in seen:
                self.fail(
                    arm_node, f"{key}.arm", f"{name!r} is already at line {_line(seen[name])}"
                )
                continue
            seen[name] = arm_node
            entry = arms.get(name) if arms is not None else None
            if arms is not None and entry is None:
                self.fail(
                    arm_node, f"{key}.arm", f"unknown arm {name!r}{_suggest(name, list(arms))}"
                )
                continue
            arm = entry.arm if entry is not None else None
            if arm is not None and arm.needs_vector:
                self.fail(
                    arm_node,
                    f"{key}.arm",
                    f"arm {name!r} needs a query vector; the fallback also runs when the"
                    " embedder fails, so it may only use arms that need none",
                )
                continue
            if arm is not None and not max(arm.min_size, 1) <= size <= arm.max_size:
                self.fail(
                    fields["size"].value,
                    f"{key}.size",
                    f"must be within arm {name!r}'s sizes "
                    f"({_bounds(max(arm.min_size, 1), arm.max_size)}), got {size}",
                )
                continue
            out.append(FallbackArm(name, size))
        return tuple(out) if len(out) == len(items) else None

    def index_body(self, node: Node) -> Mapping[str, Any] | None:
        fields = self.mapping(node, "index", _INDEX_KEYS)
        if fields is None:
            return None
        body: dict[str, Any] = {}
        for name, f in fields.items():
            value = self.plain_mapping(f.value, f"index.{name}")
            if value is None:
                return None
            body[name] = dict(value)
        return MappingProxyType(body)

    def source(self, node: Node) -> Any:
        """An OpenSearch ``_source`` value: a boolean, a field pattern or a list of them, or a
        mapping of ``includes`` and ``excludes``."""
        key = "source"
        value = self.plain(node, key)
        if value is _BAD:
            return _BAD

        def patterns(v: Any) -> bool:
            return isinstance(v, str) or (
                isinstance(v, list) and all(isinstance(p, str) for p in v)
            )

        if isinstance(value, bool) or patterns(value):
            return value
        if (
            isinstance(value, dict)
            and value
            and set(value) <= {"includes", "excludes"}
            and all(patterns(v) for v in value.values())
        ):
            return value
        self.fail(
            node,
            key,
            "must be a _source value: true/false, field patterns, or"
            " {includes: [...], excludes: [...]}",
        )
        return _BAD

    # -- checks across sections -------------------------------------------------------------

    def check_source_whole(self, index_body: Mapping[str, Any], node: Node) -> None:
        """The memory writes partial updates, which OpenSearch rebuilds from ``_source``."""
        mappings = index_body.get("mappings")
        lost = source_loss(mappings) if isinstance(mappings, Mapping) else None
        if lost is None:
            return
        where = node
        for name in ("mappings", "_source"):
            if not isinstance(where, MappingNode):
                break
            where = next((v for k, v in where.value if k.value == name), where)
        self.fail(
            where,
            "index.mappings._source",
            f"keeps {lost} out of _source, so the memory's partial updates would drop it from"
            " every document they touch; keep _source whole and filter at query time with"
            " the catalog's `source:` (e.g. source: {excludes: [embedding]})",
        )

    def check_budget(self, entries: Sequence[_ArmEntry], budget: int, node: Node) -> None:
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
        entries: Sequence[_ArmEntry],
        embedding: EmbeddingConfig | None,
        top: dict[str, _Field],
    ) -> None:
        vector_arms = [e for e in entries if e.needs_vector_node is not None]
        if not vector_arms:
            return
        section = top.get("embedding")
        if section is None or _is_null(section.value):
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
    parser = _CatalogParser(file, display, os.environ)
    if not isinstance(root, MappingNode):
        parser.fail(
            root, "", f"a catalog is a YAML mapping (target:, arms:, ...), not {_show(root)}"
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
