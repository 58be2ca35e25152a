"""What fusion consumes (each arm's ranked hits) and produces (one list, provenance kept)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple, Protocol

# Hits are built once per retrieved document on the search path, so they are slotted classes
# that are cheap to make (frozen dataclasses cost twice as much); nothing mutates them.


@dataclass(slots=True)
class ArmHit:
    """One hit as an arm returned it; ``rank`` starts at 1."""

    index: str
    id: str
    score: float
    rank: int
    source: Mapping[str, Any] | None = None


class Provenance(NamedTuple):
    arm: str
    rank: int
    score: float


@dataclass(slots=True)
class FusedHit:
    index: str
    id: str
    score: float
    source: Mapping[str, Any] | None
    provenance: tuple[Provenance, ...]

    @property
    def key(self) -> tuple[str, str]:
        return (self.index, self.id)


class Fusion(Protocol):
    """``results`` maps arm name to its hits in rank order; absent weights count as 1."""

    def __call__(
        self, results: Mapping[str, Sequence[ArmHit]], weights: Mapping[str, float]
    ) -> list[FusedHit]: ...
