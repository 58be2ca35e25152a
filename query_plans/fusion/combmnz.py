"""CombMNZ (Fox & Shaw, 1994): CombSUM times the number of arms that returned the document.

The multiplier rewards agreement: a document several strategies found independently is more
likely relevant than one a single arm scored highly.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from ltrr.query_plans.fusion.base import ArmHit, FusedHit
from ltrr.query_plans.fusion.combsum import weighted_sum
from ltrr.query_plans.fusion.normalize import get_normalizer


def combmnz(
    results: Mapping[str, Sequence[ArmHit]],
    weights: Mapping[str, float],
    *,
    norm: str = "minmax",
) -> list[FusedHit]:
    """Weighted CombMNZ; the arm count includes every arm that returned the doc, whatever its
    weight, since the count measures agreement rather than trust."""
    normalizer = get_normalizer(norm)
    return weighted_sum(
        results,
        weights,
        lambda hits: normalizer([h.score for h in hits]),
        by_arm_count=True,
    )
