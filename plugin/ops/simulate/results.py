"""What one simulated session measured, and a policy's run: the data every report reads.

Plain, JSON-ready values only, so a run can be saved, reloaded and drawn without the node.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class SessionRecord:
    """One search by one simulated user, and what the user did with it.

    - ``reward``: the sum of the event weights the user sent back (sampled clicks);
    - ``expected_reward``: the click model's expectation for the page shown, without the
      sampling noise, which is what regret is measured on;
    - ``recall``: recall@K of the fused candidate set (None for a query with no relevant);
    - ``ndcg``: nDCG@10 of the page shown (after rerank, when there is one);
    - ``retrieved``: candidates asked for across the included arms (the sum of their sizes);
    - ``arms``: the included arms, in catalog order;
    - ``query_id``: the dataset's id of the query;
    - ``candidates``: the fused top-K ids, kept only when the simulation was asked to (an
      offline rerank reads them; 3,000 sessions x 100 ids are too many to keep by default).
    """

    session: int
    intent: str
    query: str
    reward: float
    expected_reward: float
    recall: float | None
    ndcg: float
    retrieved: int
    arms: tuple[str, ...]
    latency_ms: float
    query_id: str = ""
    candidates: tuple[str, ...] = ()


@dataclass(slots=True)
class PolicyRun:
    """A policy's pass over the seeded session stream (every policy sees the same stream)."""

    name: str
    description: str
    learning: bool
    sessions: list[SessionRecord] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "description": self.description,
            "learning": self.learning,
            "sessions": [asdict(s) for s in self.sessions],
        }

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> PolicyRun:
        sessions = [
            SessionRecord(
                **{**s, "arms": tuple(s["arms"]), "candidates": tuple(s.get("candidates", ()))}
            )
            for s in raw.get("sessions", ())
        ]
        return cls(raw["name"], raw["description"], bool(raw["learning"]), sessions)


def mean(values: Sequence[float]) -> float:
    return sum(values) / len(values) if values else 0.0
