"""A rollout replayed where the answer is known: how many searches each test needs.

Over the same seeded sessions as ``ltrr replay``, the learner runs against a baseline plan in
one of the two ways the proxy can run a rollout (``ltrr.plugin.serve.rollout``):

- split: each session hashes to a side (``ltrr.query_plans.rollout.split_side``); the learner
  serves and learns from its share, the baseline plan serves the rest;
- interleave: every session sees the two sides' pages team-drafted, with the coin the proxy
  would use; the learner learns from every page, by the catalog's credit rule over its own
  arms' lists, as the proxy's learner does.

Both sides share one memory (Q2E) index, which every page shown updates, as on a live index.
``warmup`` searches first let the learner serve alone and learn, as it would before its plan is
put to the test (the searches counted start after them).
After each search the test is computed on everything so far (Welch for the split, the sign test
for interleaving), and the run reports the first search count from which it stayed significant.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from ltrr.bandit.features import EntityDictionary
from ltrr.plugin.errors import LtrrError
from ltrr.plugin.ops.replay.capture import Capture
from ltrr.plugin.ops.replay.loop import Learner, Page, Replay, click_weight, line_up
from ltrr.plugin.ops.replay.memory import ReplayMemory, memory_arm
from ltrr.plugin.ops.rollout import first_significant, sign_test_sequence, welch_sequence
from ltrr.plugin.ops.simulate.clicks import ClickModel
from ltrr.plugin.ops.simulate.stream import Session, judge_page
from ltrr.query_plans.catalog import Catalog
from ltrr.query_plans.fusion.base import ArmHit
from ltrr.query_plans.rollout import (
    BASELINE,
    LEARNER,
    coin_flips,
    preference,
    split_side,
    team_clicks,
    team_draft,
)

MODES = ("interleave", "split")


@dataclass(frozen=True, slots=True)
class RolloutRun:
    """One mode over one seed's sessions."""

    mode: str
    seed: int
    searches: int
    needed: int | None  # searches after which the test became significant and stayed so
    p_value: float | None  # the test on every search
    learner_clicks: float  # per search: the learner's side (split) or team (interleave)
    baseline_clicks: float
    wins: int = 0  # interleave only
    losses: int = 0
    ties: int = 0


def baseline_sizes(catalog: Catalog, capture: Capture, name: str) -> dict[str, int]:
    """A plan by name: ``catalog`` (its rollout baseline, else its fallback plan) or any static
    plan of ``ltrr replay``'s line-up (``static``, ``full``, ``only:ARM``)."""
    if name == "catalog":
        return {f.arm: f.size for f in catalog.baseline_plan()}
    plans = {c.name: c.sizes for c in line_up(catalog, capture, ()) if c.kind == "plan"}
    sizes = plans.get(name)
    if sizes is None:
        raise LtrrError(f"unknown baseline {name!r}; known: catalog, {', '.join(plans)}")
    return dict(sizes)


class _Shared:
    """What both sides read: the captured lists, with the one memory index as it is now."""

    def __init__(self, replay: Replay) -> None:
        self.replay = replay
        arm = memory_arm(replay.catalog)
        config = replay.catalog.memory
        self.memory = (
            (arm, ReplayMemory(config, replay.capture.index))
            if arm is not None and config is not None
            else None
        )

    def lists(self, session: Session) -> Mapping[str, Sequence[ArmHit]]:
        captured = self.replay.capture.queries.get(session.query_id)
        if captured is None:
            raise LtrrError(f"query {session.query_id} was not captured")
        if self.memory is None:
            return captured.lists
        arm, learned = self.memory
        size = self.replay.catalog.arm(arm).max_size
        return {
            **captured.lists,
            arm: learned.hits(session.text, captured.lists.get(arm, ()), size),
        }

    def shown(self, session: Session, page_ids: Sequence[str], clicked: Sequence[int]) -> None:
        if self.memory is None:
            return
        now = session.time.timestamp()
        learned = self.memory[1]
        learned.searched(session.text, now)
        for rank in clicked:
            weight = click_weight(self.replay.catalog, rank)
            learned.engaged(session.text, page_ids[rank - 1], weight, now)

    def clicks(self, session: Session, page_ids: Sequence[str]) -> list[int]:
        judged = self.replay.grades.get(session.query_id, {})
        _, clicked = judge_page(session, page_ids, judged, self.replay.clicks, self.replay.seed)
        return clicked


def _learner_alone(
    replay: Replay, shared: _Shared, page: Page, learner: Learner, session: Session
) -> None:
    """One search before the rollout: the learner serves it alone, and learns from it."""
    decision = learner.decide(session, replay.entities, replay.page)
    results = page.results(shared.lists(session), {c.arm: c.size for c in decision.included})
    page_ids = page.fused(results, {c.arm: c.score for c in decision.included})[: replay.page]
    clicked = shared.clicks(session, page_ids)
    shared.shown(session, page_ids, clicked)
    learner.learn(decision, results, page_ids, clicked, session.text)


def _start(
    replay: Replay, sessions: Sequence[Session], policy: str, warmup: int
) -> tuple[_Shared, Page, Learner, Sequence[Session]]:
    """The shared state, the learner after ``warmup`` searches of its own, and the rest."""
    shared = _Shared(replay)
    page = Page(replay.catalog, replay.k)
    learner = Learner(replay.catalog, policy, replay.seed)
    for session in sessions[:warmup]:
        _learner_alone(replay, shared, page, learner, session)
    return shared, page, learner, sessions[warmup:]


def run_interleave(
    replay: Replay,
    sessions: Sequence[Session],
    policy: str,
    baseline: Mapping[str, int],
    warmup: int = 0,
) -> list[tuple[int, int]]:
    """Per session after the ``warmup`` ones, (learner team, baseline team) clicks on the
    interleaved page."""
    shared, page, learner, sessions = _start(replay, sessions, policy, warmup)
    salt = ",".join(replay.catalog.targets)
    out = []
    for session in sessions:
        lists = shared.lists(session)
        decision = learner.decide(session, replay.entities, replay.page)
        sizes = {c.arm: c.size for c in decision.included}
        mine = page.results(lists, sizes)
        theirs = page.results(lists, baseline)
        ours = page.fused(mine, {c.arm: c.score for c in decision.included})
        keys, teams = team_draft(
            ours, page.fused(theirs), coin_flips(f"{replay.seed}-{session.index}", salt)
        )
        page_ids = keys[: replay.page]
        clicked = shared.clicks(session, page_ids)
        shared.shown(session, page_ids, clicked)
        learner.learn(decision, mine, page_ids, clicked, session.text)
        counts = team_clicks(teams[: replay.page], clicked)
        out.append((counts[LEARNER], counts[BASELINE]))
    return out


def run_split(
    replay: Replay,
    sessions: Sequence[Session],
    policy: str,
    baseline: Mapping[str, int],
    share: float,
    warmup: int = 0,
) -> list[tuple[str, int]]:
    """Per session after the ``warmup`` ones, its side and its clicks; the unit is the
    session."""
    shared, page, learner, sessions = _start(replay, sessions, policy, warmup)
    salt = ",".join(replay.catalog.targets)
    out = []
    for session in sessions:
        lists = shared.lists(session)
        side = split_side(f"{replay.seed}-{session.index}", salt, share)
        if side == LEARNER:
            decision = learner.decide(session, replay.entities, replay.page)
            sizes = {c.arm: c.size for c in decision.included}
            results = page.results(lists, sizes)
            fused = page.fused(results, {c.arm: c.score for c in decision.included})
        else:
            results = page.results(lists, baseline)
            fused = page.fused(results)
        page_ids = fused[: replay.page]
        clicked = shared.clicks(session, page_ids)
        shared.shown(session, page_ids, clicked)
        if side == LEARNER:
            learner.learn(decision, results, page_ids, clicked, session.text)
        out.append((side, len(clicked)))
    return out


def interleave_result(seed: int, outcomes: Sequence[tuple[int, int]]) -> RolloutRun:
    prefs = [preference(mine, theirs) for mine, theirs in outcomes]
    p_values = sign_test_sequence(prefs)
    n = len(outcomes)
    wins, losses = prefs.count(1), prefs.count(-1)
    return RolloutRun(
        "interleave",
        seed,
        n,
        first_significant(p_values),
        p_values[-1] if p_values else None,
        sum(m for m, _ in outcomes) / max(n, 1),
        sum(t for _, t in outcomes) / max(n, 1),
        wins,
        losses,
        n - wins - losses,
    )


def split_result(seed: int, outcomes: Sequence[tuple[str, int]]) -> RolloutRun:
    mine = [side == LEARNER for side, _ in outcomes]
    p_values = welch_sequence(mine, [float(c) for _, c in outcomes])
    learner = [c for side, c in outcomes if side == LEARNER]
    baseline = [c for side, c in outcomes if side == BASELINE]
    return RolloutRun(
        "split",
        seed,
        len(outcomes),
        first_significant(p_values),
        p_values[-1] if p_values else None,
        sum(learner) / max(len(learner), 1),
        sum(baseline) / max(len(baseline), 1),
    )


def replay_rollout(
    catalog: Catalog,
    capture: Capture,
    grades: Mapping[str, Mapping[str, int]],
    sessions_by_seed: Mapping[int, Sequence[Session]],
    *,
    policy: str,
    baseline: Mapping[str, int],
    share: float,
    clicks: ClickModel,
    warmup: int = 0,
    page: int = 10,
    k: int = 100,
) -> list[RolloutRun]:
    """Both modes over each seed's sessions."""
    entities = EntityDictionary(capture.entities) if capture.entities else None
    runs = []
    for seed, sessions in sessions_by_seed.items():
        replay = Replay(catalog, capture, grades, clicks, seed, page, k, entities)
        mixed = run_interleave(replay, sessions, policy, baseline, warmup)
        runs.append(interleave_result(seed, mixed))
        runs.append(
            split_result(seed, run_split(replay, sessions, policy, baseline, share, warmup))
        )
    return runs


def format_runs(
    runs: Sequence[RolloutRun], *, policy: str, baseline: str, share: float, warmup: int = 0
) -> str:
    before = f", after {warmup} searches the learner served alone" if warmup else ""
    lines = [
        f"{policy} against the baseline {baseline}{before}: searches until the test became "
        "significant at 5% and stayed so (interleave: sign test on team clicks; split: Welch "
        f"t-test on clicks per search, learner share {share})",
        "",
        "| mode | seed | searches needed | p at the end | learner clicks | baseline clicks "
        "| wins / losses / ties |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in runs:
        record = f"{r.wins} / {r.losses} / {r.ties}" if r.mode == "interleave" else "-"
        needed = str(r.needed) if r.needed is not None else f"not within {r.searches}"
        p = f"{r.p_value:.2g}" if r.p_value is not None else "-"
        lines.append(
            f"| {r.mode} | {r.seed} | {needed} | {p} | {r.learner_clicks:.3f} | "
            f"{r.baseline_clicks:.3f} | {record} |"
        )
    return "\n".join(lines)
