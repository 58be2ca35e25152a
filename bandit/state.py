"""Bandit statistics as documents that several proxy replicas can merge.

A ridge policy's sufficient statistics are sums (A = ridge·I + Σxxᵀ, b = Σ reward·x, n), so
each replica adds its own observations locally and merges the delta into one shared document
per slot: read the sum, add the delta, write it back guarded by the read's sequence number.
The document format is plain JSON so that the proxy can move it without knowing what is in it.
A slot is an arm of a per-arm policy, or a plan of ``safe_plans`` (named ``plan:<plan>``, so
that a catalog that switches policy never reads one as the other). ``safe_plans``' per-query
records are not shared: they are a cache of recent pages, which a replica rebuilds from its
own traffic.

A document records the feature layout it was learned on; a document for another layout is
ignored (that arm starts again from its prior), since its numbers mean nothing here.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ltrr.bandit.policies._ridge import RidgePolicy, RidgeStatistics
from ltrr.bandit.policies.base import Policy, Vector
from ltrr.bandit.policies.safe_plans import SafePlans

PLAN_SLOT = "plan:"


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
    """One policy's slots as mergeable documents; the proxy syncs them, the policy reads them.

    ``arms`` names the slots (the proxy keeps one document per name)."""

    def __init__(
        self,
        stats: RidgeStatistics,
        names: Sequence[str],
        n_features: int,
        ridge: float,
        layout: str,
    ) -> None:
        self.stats = stats
        self.n_features = n_features
        self.ridge = ridge
        self.layout = layout
        self.arms = tuple(names)
        self._index = {name: i for i, name in enumerate(self.arms)}

    def take(self, arm: str) -> Delta | None:
        taken = self.stats.take_pending(self._index[arm])
        return None if taken is None else Delta(*taken)

    def restore(self, arm: str, delta: Delta) -> None:
        self.stats.restore_pending(self._index[arm], (delta.a, delta.b, delta.n))

    def prior(self) -> dict[str, Any]:
        """A new slot's document: the ridge prior and no observations."""
        d = self.n_features
        return self._doc(np.eye(d) * self.ridge, np.zeros(d), 0)

    def readable(self, doc: Mapping[str, Any] | None) -> bool:
        """Whether ``doc`` holds statistics for this layout (else the slot starts afresh)."""
        if doc is None or doc.get("layout") != self.layout:
            return False
        d = self.n_features
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

    def local(self, arm: str) -> dict[str, Any]:
        """Everything this process holds for ``arm`` (the shared sums it installed, plus what
        it added since, taken or not): the document to write back when the stored one was
        lost."""
        i = self._index[arm]
        return self._doc(self.stats.a[i], self.stats.b[i], int(self.stats.counts[i]))

    def install(self, arm: str, doc: Mapping[str, Any]) -> None:
        """Use the shared sums for ``arm`` from now on, plus what is pending here."""
        self.stats.install(
            self._index[arm],
            np.asarray(doc["a"], dtype=np.float64),
            np.asarray(doc["b"], dtype=np.float64),
            int(doc["n"]),
        )

    def _doc(self, a: Vector, b: Vector, n: int) -> dict[str, Any]:
        return {
            "layout": self.layout,
            "ridge": self.ridge,
            "a": a.tolist(),
            "b": b.tolist(),
            "n": n,
        }


def shared_statistics(policy: Policy, feature_names: Sequence[str]) -> SharedStatistics | None:
    """The policy's mergeable statistics, or None for a policy that learns nothing."""
    slots = _slots(policy)
    if slots is None:
        return None
    stats, names = slots
    if isinstance(policy, SafePlans):
        names = [PLAN_SLOT + plan for plan in names]
    layout = layout_digest(feature_names)
    return SharedStatistics(stats, names, policy.n_features, policy.config.ridge, layout)


def _slots(policy: Policy) -> tuple[RidgeStatistics, list[str]] | None:
    """The policy's ridge statistics and the name of each of their slots (arms or plans)."""
    if isinstance(policy, RidgePolicy):
        return policy.stats, [arm.name for arm in policy.arms]
    if isinstance(policy, SafePlans):
        return policy.stats, list(policy.plans)
    return None


def carry_over(old: Policy, new: Policy) -> list[str]:
    """Copy the statistics of the slots both policies share, so a catalog change that adds or
    removes an arm does not reset the others. Returns the slots carried.

    Per-arm policies carry each arm they share. ``safe_plans`` carries only when the arms are
    the same: with another arm set, ``all`` and ``without:X`` are other pages, and every other
    plan's statistics are advantages over the old static plan's estimate."""
    before, after = _slots(old), _slots(new)
    if before is None or after is None or type(old) is not type(new):
        return []
    if old.n_features != new.n_features:
        return []
    if isinstance(old, SafePlans) and [a.name for a in old.arms] != [a.name for a in new.arms]:
        return []
    (s, old_names), (t, new_names) = before, after
    carried = []
    old_index = {name: i for i, name in enumerate(old_names)}
    for j, slot in enumerate(new_names):
        i = old_index.get(slot)
        if i is None:
            continue
        for name in ("a", "a_inv", "b", "theta", "counts", "pending_a", "pending_b", "pending_n"):
            getattr(t, name)[j] = getattr(s, name)[i]
        carried.append(slot)
    return carried
