"""Rollout against a baseline plan: which side a search is on, and team-draft interleaving.

Both are pure functions, shared by the proxy, the replay and the report, so that a unit lands
on the same side and a page is interleaved the same way wherever it is computed.

The split hashes the unit (a user or session id) with a salt into a point of [0, 1): a unit
below ``share`` is the learner's. Raising the share later moves units only from the baseline to
the learner, never back, so a user does not flip between sides as the rollout widens.

Team-draft interleaving (Radlinski, Kurup and Joachims, CIKM 2008): the team with fewer picks
so far (a fair coin when even) adds its highest-ranked document not yet shown; a click counts
for the team that placed the document. The draft ends when the team on turn has nothing new
to add, not as soon as either list runs out as in the paper's loop: two lists of equal length
then both place all they have, and the teams still never differ by more than one pick. What is
left is appended without a team, so the page keeps every candidate, and clicks on it count for
neither side.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Callable, Hashable, Sequence
from typing import TypeVar

LEARNER = "learner"
BASELINE = "baseline"
SIDES = (LEARNER, BASELINE)

K = TypeVar("K", bound=Hashable)


def unit_point(unit: str, salt: str) -> float:
    """Where ``unit`` falls in [0, 1): the first 8 bytes of BLAKE2b(salt, unit)."""
    digest = hashlib.blake2b(unit.encode(), key=salt.encode()[:64], digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2.0**64


def split_side(unit: str, salt: str, share: float) -> str:
    """The side a unit is on: the learner's for a ``share`` of all units."""
    return LEARNER if unit_point(unit, salt) < share else BASELINE


def coin_flips(decision_id: str, salt: str) -> Callable[[], bool]:
    """A fair coin seeded by the decision, so a logged page can be interleaved again exactly."""
    seed = hashlib.blake2b(decision_id.encode(), key=salt.encode()[:64], digest_size=8).digest()
    rng = random.Random(int.from_bytes(seed, "big"))
    return lambda: rng.random() < 0.5


def team_draft(
    learner: Sequence[K],
    baseline: Sequence[K],
    learner_first: Callable[[], bool],
) -> tuple[list[K], list[str | None]]:
    """Interleave two rankings; ``learner_first`` is the coin, asked once per tied round."""
    shown: list[K] = []
    teams: list[str | None] = []
    seen: set[K] = set()
    picks = {LEARNER: 0, BASELINE: 0}
    rest = {LEARNER: list(learner), BASELINE: list(baseline)}
    heads = {LEARNER: 0, BASELINE: 0}

    def next_of(side: str) -> K | None:
        items = rest[side]
        while heads[side] < len(items) and items[heads[side]] in seen:
            heads[side] += 1
        return items[heads[side]] if heads[side] < len(items) else None

    while True:
        if picks[LEARNER] != picks[BASELINE]:
            side = LEARNER if picks[LEARNER] < picks[BASELINE] else BASELINE
        else:
            side = LEARNER if learner_first() else BASELINE
        item = next_of(side)
        if item is None:  # the team on turn has nothing new: the draft ends, still balanced
            break
        shown.append(item)
        teams.append(side)
        seen.add(item)
        picks[side] += 1
    for side in SIDES:  # one list ran out: the other's remainder, without a team
        for item in rest[side]:
            if item not in seen:
                shown.append(item)
                teams.append(None)
                seen.add(item)
    return shown, teams


def team_clicks(teams: Sequence[str | None], clicked_positions: Sequence[int]) -> dict[str, int]:
    """Clicks per team; ``clicked_positions`` are 1-based ranks on the interleaved page."""
    out = dict.fromkeys(SIDES, 0)
    for rank in clicked_positions:
        if 1 <= rank <= len(teams):
            team = teams[rank - 1]
            if team is not None:
                out[team] += 1
    return out


def preference(learner_clicks: float, baseline_clicks: float) -> int:
    """One interleaved search's outcome: +1 the learner won, -1 it lost, 0 a tie."""
    return (learner_clicks > baseline_clicks) - (learner_clicks < baseline_clicks)
