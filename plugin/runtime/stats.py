"""Counters the proxy exposes at ``GET /_ltrr/stats``: what was intercepted, what fell back."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field


@dataclass(slots=True)
class Stats:
    counts: Counter[str] = field(default_factory=Counter)
    arm_failures: Counter[str] = field(default_factory=Counter)
    passthrough_reasons: Counter[str] = field(default_factory=Counter)

    def count(self, name: str, n: int = 1) -> None:
        self.counts[name] += n

    def snapshot(self) -> dict[str, object]:
        return {
            **dict(sorted(self.counts.items())),
            "arm_failures": dict(sorted(self.arm_failures.items())),
            "passthrough_reasons": dict(sorted(self.passthrough_reasons.items())),
        }
