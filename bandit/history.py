"""What each plan earned for one query before: the action feature repeated queries give.

Most traffic repeats a query seen before, and for a repeated query its own past pages say more
than any feature of its text. Per query key the history keeps, for each plan, how often it was
shown and the sum of what it earned above the contextual estimate; the policy shrinks that mean
toward the estimate by the ridge prior's weight, so a query seen once moves little and one seen
often is judged on its own record. Keys are kept least-recently-used first out, so memory stays
bounded whatever the traffic.
"""

from __future__ import annotations

from collections import OrderedDict

import numpy as np
import numpy.typing as npt

Counts = npt.NDArray[np.float64]


class QueryHistory:
    """Per query key: (shown, summed residual) for every plan; at most ``max_keys`` keys."""

    __slots__ = ("_keys", "max_keys", "n_plans")

    def __init__(self, n_plans: int, max_keys: int = 100_000) -> None:
        if max_keys < 1:
            raise ValueError(f"max_keys must be >= 1, got {max_keys}")
        self.n_plans = n_plans
        self.max_keys = max_keys
        self._keys: OrderedDict[str, tuple[Counts, Counts]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._keys)

    def get(self, key: str) -> tuple[Counts, Counts] | None:
        """(shown, summed residual) per plan for ``key``, or None when never seen."""
        entry = self._keys.get(key)
        if entry is not None:
            self._keys.move_to_end(key)
        return entry

    def add(self, key: str, plan: int, residual: float, shown: float = 1.0) -> None:
        if not key:
            return
        entry = self._keys.get(key)
        if entry is None:
            entry = (np.zeros(self.n_plans), np.zeros(self.n_plans))
            self._keys[key] = entry
            while len(self._keys) > self.max_keys:
                self._keys.popitem(last=False)
        else:
            self._keys.move_to_end(key)
        entry[0][plan] += shown
        entry[1][plan] += residual
