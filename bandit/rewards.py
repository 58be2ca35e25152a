"""Semi-bandit attribution: which included arm earns what from one user action.

An arm earns an event's weight when the engaged object was in that arm's own result set, and 0
otherwise: "the expected result was present in the set that strategy produced". Fusion and the
rerank decide the order the user saw, but an object the arm did not retrieve could not have
been shown because of it, and an object it did retrieve counts whatever its fused rank.

That rule cannot tell a useful arm from a redundant one: when every arm finds the object, every
arm is paid, and a learner keeps asking all of them. The ``unique`` rule pays an arm only when
the object would not have been a candidate without it (no other included arm retrieved it), so
arms that merely repeat what another found earn nothing, fall below their cost and are
dropped, and the arm that alone finds the objects users engage with is the one that learns.

Optionally the weight is divided by the position-based model's examination probability
(1/rank)^eta, capped at ``max_factor``: a click at rank 8 says more about the candidate set
than one at rank 1, where users click almost regardless of what is there.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping


def position_factor(position: int | None, eta: float, max_factor: float) -> float:
    """min(max_factor, rank ** eta); 1 for an unknown rank or when debiasing is off."""
    if position is None or position <= 1 or eta <= 0.0:
        return 1.0
    return float(min(max_factor, float(position) ** eta))


def arm_rewards(
    results: Mapping[str, Collection[str]],
    included: Iterable[str],
    engaged: str,
    reward: float,
    *,
    unique: bool = False,
) -> dict[str, float]:
    """Per included arm: ``reward`` if ``engaged`` is in its own results, else 0; with
    ``unique``, only when no other included arm retrieved it either."""
    arms = list(included)
    holders = [arm for arm in arms if engaged in results.get(arm, ())]
    if unique and len(holders) > 1:
        holders = []
    return {arm: (reward if arm in holders else 0.0) for arm in arms}
