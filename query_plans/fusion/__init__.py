"""Result fusion, one algorithm per module (ranx style)."""

from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING

from ltrr.query_plans.fusion.base import ArmHit, FusedHit, Fusion, Provenance
from ltrr.query_plans.fusion.combmnz import combmnz
from ltrr.query_plans.fusion.combsum import combsum
from ltrr.query_plans.fusion.normalize import get_normalizer, minmax, zscore
from ltrr.query_plans.fusion.rrf import rrf
from ltrr.query_plans.fusion.weights import policy_weights

if TYPE_CHECKING:
    # Type-only, so that the catalog package may one day validate methods here without a cycle.
    from ltrr.query_plans.catalog import FusionConfig

__all__ = [
    "ArmHit",
    "FusedHit",
    "Fusion",
    "Provenance",
    "combmnz",
    "combsum",
    "get_fusion",
    "minmax",
    "policy_weights",
    "rrf",
    "zscore",
]

METHODS = ("combmnz", "combsum", "rrf")


def get_fusion(config: FusionConfig) -> Fusion:
    """Bind the configured algorithm to its k or norm, validating them now rather than on the
    first search."""
    if config.method == "rrf":
        if config.k < 0:
            raise ValueError(f"rrf k must be >= 0, got {config.k}")
        return partial(rrf, k=config.k)
    if config.method in ("combsum", "combmnz"):
        get_normalizer(config.norm)
        return partial(combsum if config.method == "combsum" else combmnz, norm=config.norm)
    raise ValueError(f"unknown fusion method {config.method!r} (known: {', '.join(METHODS)})")
