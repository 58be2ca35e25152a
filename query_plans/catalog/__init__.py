"""The strategy catalog: one per index or alias, loaded from YAML and validated on load.

``load_catalog`` turns a file into the immutable model, or raises a ``CatalogError`` that
names the file, line and key; ``validate_catalog`` reports every problem it can find at once,
for ``ltrr catalog validate``. The YAML shape is documented in ``query_plans/catalogs/README.md``.

Inside: ``model`` (the dataclasses every layer reads), ``reader`` (YAML nodes read with their
line, since "arms[1].size.max at line 14" is what makes a hand-edited file quick to fix),
``schema`` (keys and bounds), one ``read_*`` module per group of sections, and ``load``.
"""

from __future__ import annotations

from ltrr.query_plans.catalog.load import load_catalog, validate_catalog
from ltrr.query_plans.catalog.model import (
    Arm,
    Catalog,
    ContextField,
    DebiasConfig,
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
from ltrr.query_plans.catalog.reader import CatalogError
from ltrr.query_plans.catalog.schema import BUILTIN_TEMPLATES

__all__ = [
    "BUILTIN_TEMPLATES",
    "Arm",
    "Catalog",
    "CatalogError",
    "ContextField",
    "DebiasConfig",
    "EmbeddingConfig",
    "FallbackArm",
    "FeatureConfig",
    "FeedbackConfig",
    "FusionConfig",
    "InterceptRules",
    "MemoryConfig",
    "RerankConfig",
    "RolloutConfig",
    "load_catalog",
    "validate_catalog",
]
