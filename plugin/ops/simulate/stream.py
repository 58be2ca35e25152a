"""The seeded stream of simulated sessions every policy is run over.

Session i is a query drawn by its traffic weight (``weight`` in queries.jsonl, else uniform)
and a user from the population, both from the seed alone: the same seed gives the same stream
whatever ran before, so policies are compared on identical traffic.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np

from ltrr.plugin.errors import LtrrError
from ltrr.plugin.ops.data.beir import BeirDataset
from ltrr.plugin.ops.simulate.clicks import ClickModel
from ltrr.plugin.ops.simulate.users import UserConfig, UserPopulation
from ltrr.query_plans.metrics import grades_for

# Monday, so the simulated week starts on a weekday boundary in every zone.
STREAM_START = datetime(2026, 1, 5, tzinfo=UTC)
DAYPARTS = ((5, "morning"), (12, "afternoon"), (18, "evening"), (23, "night"))


def daypart(hour: int) -> str:
    """Coarse local time of day: what a client can send, since the proxy's clock is not the
    user's."""
    part = "night"
    for start, name in DAYPARTS:
        if hour >= start:
            part = name
    return part


@dataclass(frozen=True, slots=True)
class Session:
    index: int
    query_id: str
    text: str
    intent: str
    segment: str
    time: datetime
    context: dict[str, Any]
    users: UserConfig

    def click_model(self, base: ClickModel) -> ClickModel:
        return self.users.click_model(base, self.segment)


def session_stream(
    data: BeirDataset, sessions: int, *, seed: int, users: int = 1000
) -> list[Session]:
    """``sessions`` sessions over the dataset's judged queries (unjudged ones teach nothing)."""
    if sessions < 1:
        raise LtrrError(f"--sessions must be at least 1, got {sessions}")
    queries = [q for q in data.queries.values() if data.qrels.get(q.id)]
    if not queries:
        raise LtrrError(f"{data.path}: no query has judgments in qrels/{data.split}.tsv")
    weights = np.array([float(q.meta.get("weight", 1.0)) for q in queries], dtype=np.float64)
    if (weights < 0).any() or weights.sum() <= 0:
        raise LtrrError(f"{data.path}: query weights must be >= 0 and not all 0")
    picks = np.random.default_rng([seed, 0x5EED, 0]).choice(
        len(queries), size=sessions, p=weights / weights.sum()
    )
    population = UserPopulation(users, seed, STREAM_START)
    out: list[Session] = []
    for i, pick in enumerate(picks.tolist()):
        query = queries[pick]
        user = population.session(i)
        context: dict[str, Any] = {**user.context(), "daypart": daypart(user.time.hour)}
        out.append(
            Session(
                index=i,
                query_id=query.id,
                text=query.text,
                intent=str(query.meta.get("intent", "all")),
                segment=user.segment,
                time=user.time,
                context=context,
                users=population.config,
            )
        )
    return out


def judge_page(
    session: Session,
    page_ids: Sequence[str],
    judged: Mapping[str, int],
    clicks: ClickModel,
    seed: int,
) -> tuple[float, list[int]]:
    """The simulated user on the page shown: expected clicks, and the ranks clicked. The noise
    depends on the seed and the session only, so every contender that shows the same page gets
    the same clicks."""
    grades = grades_for(page_ids, judged)
    model = session.click_model(clicks)
    expected = model.expected_clicks(grades)
    clicked = model.sample(grades, np.random.default_rng([seed, session.index, 1]))
    return expected, clicked
