"""The catalog's keys, bounds and patterns: what the reader accepts, in one place."""

from __future__ import annotations

import re
from pathlib import Path

import ltrr.templates

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
MAX_MEMORY_KEYS = 100_000  # learned query keys kept per entity document, at most
BUILTIN_TEMPLATES = Path(ltrr.templates.__file__).resolve().parent

TOP_KEYS = (
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
    "rollout",
)
TOP_REQUIRED = ("target", "budget", "policy", "arms", "fallback")
ARM_KEYS = ("name", "template", "params", "size", "cost", "needs_vector", "index")
FEATURE_KEYS = (
    "entity_field",
    "entity_refresh_seconds",
    "entity_max",
    "context",
    "hash_buckets",
)
INDEX_KEYS = ("settings", "mappings", "aliases")
FEEDBACK_KEYS = ("events", "window_seconds", "debias", "max_events", "credit")
CREDIT_RULES = ("presence", "unique")
ROLLOUT_KEYS = ("mode", "share", "unit", "baseline", "salt")
ROLLOUT_MODES = ("split", "interleave")
DEBIAS_KEYS = ("eta", "max_factor")
MEMORY_KEYS = (
    "field",
    "predicted_field",
    "name_fields",
    "phrase_fields",
    "half_life_days",
    "smoothing",
    "predicted_weight",
    "flush_seconds",
    "max_keys",
)

ARM_NAME = re.compile(r"[a-z0-9_]+")
EVENT_TYPE = re.compile(r"[A-Za-z0-9_.:-]{1,64}")
ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
STR_TAG = "tag:yaml.org,2002:str"
NULL_TAG = "tag:yaml.org,2002:null"
MERGE_TAG = "tag:yaml.org,2002:merge"
# Free-form blocks (params, index) are walked node by node; recursive or exploding aliases stop.
MAX_DEPTH = 64
MAX_NODES = 100_000
