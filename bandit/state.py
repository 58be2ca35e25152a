"""Bandit statistics as documents that several proxy replicas can merge.

A ridge policy's sufficient statistics are sums (A = ridge·I + Σxxᵀ, b = Σ reward·x, n), so
each replica adds its own observations locally and merges the delta into one shared document
per arm: read the sum, add the delta, write it back guarded by the read's sequence number.
The document format is plain JSON so that the proxy can move it without knowing what is in it.

A document records the feature layout it was learned on; a document for another layout is
ignored (that arm starts again from its prior), since its numbers mean nothing here.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ltrr.bandit.policies._ridge import RidgePolicy
from ltrr.bandit.policies.base import Policy, Vector


def layout_digest(feature_names: Sequence[str]) -> str:
    """Names and order of the features: statistics are only comparable on the same layout."""
    return hashlib.sha256("\n".join(feature_names).encode()).hexdigest()[:16]


@dataclass(frozen=True, slots=True)
class Delta:
    """What one replica added to one arm since its last merge."""

    a: Vector
    b: Vector
    n: int


class SharedStatistics:
    """One policy's arms as mergeable documents; the proxy syncs them, the policy reads them."""

    def __init__(self, policy: RidgePolicy, layout: str) -> None:
        self.policy = policy
        self.layout = layout
        self.arms = tuple(arm.name for arm in policy.arms)
        self._index = {name: i for i, name in enumerate(self.arms)}

    def take(self, arm: str) -> Delta | None:
        taken = self.policy.stats.take_pending(self._index[arm])
        return None if taken is None else Delta(*taken)

    def restore(self, arm: str, delta: Delta) -> None:
        self.policy.stats.restore_pending(self._index[arm], (delta.a, delta.b, delta.n))

    def prior(self) -> dict[str, Any]:
        """A new arm's document: the ridge prior and no observations."""
        d = self.policy.n_features
        return self._doc(np.eye(d) * self.policy.config.ridge, np.zeros(d), 0)

    def readable(self, doc: Mapping[str, Any] | None) -> bool:
        """Whether ``doc`` holds statistics for this layout (else the arm starts afresh)."""
        if doc is None or doc.get("layout") != self.layout:
            return False
        d = self.policy.n_features
        try:
            a = np.asarray(doc["a"], dtype=np.float64)
            b = np.asarray(doc["b"], dtype=np.float64)
            n = int(doc["n"])
        except (KeyError, TypeError, ValueError):
            return False
        return (
            a.shape == (d, d)
            and b.shape == (d,)
            and n >= 0
            and bool(np.isfinite(a).all() and np.isfinite(b).all())
        )

    def merged(self, doc: Mapping[str, Any] | None, delta: Delta | None) -> dict[str, Any]:
        """The shared sum after adding ``delta`` (to the prior if ``doc`` is unreadable)."""
        base = doc if doc is not None and self.readable(doc) else self.prior()
        a = np.asarray(base["a"], dtype=np.float64)
        b = np.asarray(base["b"], dtype=np.float64)
        n = int(base["n"])
        if delta is not None:
            a = a + delta.a
            b = b + delta.b
            n += delta.n
        return self._doc(a, b, n)

    def install(self, arm: str, doc: Mapping[str, Any]) -> None:
        """Use the shared sums for ``arm`` from now on, plus what is pending here."""
        self.policy.stats.install(
            self._index[arm],
            np.asarray(doc["a"], dtype=np.float64),
            np.asarray(doc["b"], dtype=np.float64),
            int(doc["n"]),
        )

    def _doc(self, a: Vector, b: Vector, n: int) -> dict[str, Any]:
        return {
            "layout": self.layout,
            "ridge": self.policy.config.ridge,
            "a": a.tolist(),
            "b": b.tolist(),
            "n": n,
        }


def shared_statistics(policy: Policy, feature_names: Sequence[str]) -> SharedStatistics | None:
    """The policy's mergeable statistics, or None for a policy that learns nothing."""
    if isinstance(policy, RidgePolicy):
        return SharedStatistics(policy, layout_digest(feature_names))
    return None


def carry_over(old: Policy, new: Policy) -> list[str]:
    """Copy the statistics of the arms both policies share, so a catalog change that adds or
    removes an arm does not reset the others. Returns the arms carried."""
    if not isinstance(old, RidgePolicy) or not isinstance(new, RidgePolicy):
        return []
    if old.n_features != new.n_features:
        return []
    carried = []
    old_index = {arm.name: i for i, arm in enumerate(old.arms)}
    s, t = old.stats, new.stats
    for j, arm in enumerate(new.arms):
        i = old_index.get(arm.name)
        if i is None:
            continue
        for name in ("a", "a_inv", "b", "theta", "counts", "pending_a", "pending_b", "pending_n"):
            getattr(t, name)[j] = getattr(s, name)[i]
        carried.append(arm.name)
    return carried
