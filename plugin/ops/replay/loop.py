"""The replayed simulation: every contender over the same seeded sessions, in one process.

Each session is decided by the contender (a learner through the bandit's ``Agent``, exactly as
the proxy calls it; a static plan; OpenSearch's own hybrid query), its page is built from the
captured arm lists with the catalog's fusion, the simulated user clicks on it (the same noise
for every contender showing the same page), and the clicks go back to the learner before the
next session, in a fixed order. Time is the session's simulated time, and a search with no
click closes its window at once with reward 0: nothing depends on the wall clock, so the same
seed gives the same table on any machine.

The per-session oracle replays every candidate plan (every non-empty set of arms at the budget,
and each learner plan) for the session's user and keeps the best expected page: no policy that
reads the query and its context can do better with these arms, so regret is measured against
it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

from ltrr.bandit.agent import Agent
from ltrr.bandit.decision import ArmSpec, Decision
from ltrr.bandit.features import EntityDictionary
from ltrr.bandit.plans import Plan, candidate_plans
from ltrr.bandit.rewards import arm_rewards, position_factor
from ltrr.bandit.sizes import allocate_sizes
from ltrr.plugin.errors import LtrrError
from ltrr.plugin.ops.replay.capture import Capture
from ltrr.plugin.ops.replay.memory import ReplayMemory, memory_arm
from ltrr.plugin.ops.simulate.clicks import ClickModel
from ltrr.plugin.ops.simulate.oracle import arm_sets
from ltrr.plugin.ops.simulate.stream import Session, judge_page
from ltrr.query_plans.catalog import Catalog
from ltrr.query_plans.fusion import get_fusion, policy_weights
from ltrr.query_plans.fusion.base import ArmHit
from ltrr.query_plans.metrics import grades_for, ndcg_at_k, recall_at_k

LEARNERS = ("safe_plans", "linucb", "thompson", "epsilon_greedy")


@dataclass(frozen=True, slots=True)
class Served:
    """What one contender did for one session, and what it earned."""

    clicks: float
    expected: float
    ndcg: float
    recall: float
    retrieved: int
    arms: int
    plan: str
    sizes: tuple[tuple[str, int], ...] = ()  # what each arm was asked for (none: native)

    @classmethod
    def of_plan(
        cls,
        clicked: Sequence[int],
        judged: tuple[float, float, float],
        sizes: Mapping[str, int],
        plan: str,
    ) -> Served:
        """A plan's session: ``judged`` is (expected clicks, nDCG@10, recall)."""
        expected, ndcg, recall = judged
        return cls(
            float(len(clicked)),
            expected,
            ndcg,
            recall,
            sum(sizes.values()),
            len(sizes),
            plan,
            tuple(sizes.items()),
        )


@dataclass(frozen=True, slots=True)
class Contender:
    """``kind``: "learner" (``name`` is the policy), "plan" (fixed ``sizes``) or "native"."""

    name: str
    kind: str
    description: str
    sizes: Mapping[str, int] | None = None
    method: str = ""


def line_up(catalog: Catalog, capture: Capture, learners: Sequence[str]) -> list[Contender]:
    """The learners, then every static plan a team could run at the same budget."""
    specs = [arm.spec() for arm in catalog.arms]
    out = [Contender(name, "learner", f"{name}, learning online") for name in learners]
    static = _plan_sizes(specs, [True] * len(specs), catalog.budget)
    out.append(Contender("static", "plan", f"all arms, {sum(static.values())}", static))
    full = {arm.name: arm.max_size for arm in specs}
    out.append(Contender("full", "plan", f"all arms at full size, {sum(full.values())}", full))
    for arm in specs:
        size = min(arm.max_size, max(catalog.budget, arm.min_size))
        out.append(
            Contender(f"only:{arm.name}", "plan", f"{arm.name} alone, {size}", {arm.name: size})
        )
    for method in ("rrf", "minmax"):
        out.append(
            Contender(
                f"hybrid:{method}",
                "native",
                f"OpenSearch hybrid query, {method}, {capture.native_candidates}",
                method=method,
            )
        )
    return out


def _plan_sizes(
    specs: Sequence[ArmSpec], included: Sequence[bool], budget: int, depth: int = 0
) -> dict[str, int]:
    sizes = allocate_sizes(specs, included, [1.0] * len(specs), budget, depth)
    return {arm.name: size for arm, size in zip(specs, sizes, strict=True) if size > 0}


def oracle_plans(catalog: Catalog, page: int) -> list[dict[str, int]]:
    """Every plan the oracle tries: each non-empty arm set at the budget, at half of it, and
    each learner plan (all at this page depth)."""
    specs = [arm.spec() for arm in catalog.arms]
    names = [arm.name for arm in specs]
    plans = [
        _plan_sizes(specs, [name in subset for name in names], budget, page)
        for subset in arm_sets(names)
        for budget in (catalog.budget, catalog.budget // 2)
    ]
    plans += [_named(specs, plan) for plan in candidate_plans(specs, catalog.budget, page)]
    seen: dict[tuple[tuple[str, int], ...], dict[str, int]] = {}
    for plan in plans:
        seen.setdefault(tuple(sorted(plan.items())), plan)
    return list(seen.values())


def _named(specs: Sequence[ArmSpec], plan: Plan) -> dict[str, int]:
    return {a.name: s for a, s in zip(specs, plan.sizes, strict=True) if s > 0}


class Page:
    """Builds a plan's fused list from the captured lists, as the proxy's fuse step does."""

    def __init__(self, catalog: Catalog, k: int) -> None:
        self.catalog = catalog
        self.k = k
        self._fusion = get_fusion(catalog.fusion)

    def results(
        self, lists: Mapping[str, Sequence[ArmHit]], sizes: Mapping[str, int]
    ) -> dict[str, list[ArmHit]]:
        return {arm: list(lists.get(arm, ()))[:size] for arm, size in sizes.items() if size > 0}

    def fused(
        self,
        results: Mapping[str, Sequence[ArmHit]],
        scores: Mapping[str, float] | None = None,
    ) -> list[str]:
        weights = self.catalog.fusion.weights
        if self.catalog.fusion.by_policy and scores is not None:
            weights = policy_weights(weights, scores)
        fused = self._fusion({a: list(h) for a, h in results.items()}, weights)
        return list(dict.fromkeys(hit.id for hit in fused))[: self.k]


def click_weight(catalog: Catalog, rank: int) -> float:
    """What a click at ``rank`` weighs for the arms and the memory, debiased as the proxy does."""
    feedback = catalog.feedback
    weight = float(feedback.events.get("click", 1.0))
    if feedback.debias is not None:
        weight *= position_factor(rank, feedback.debias.eta, feedback.debias.max_factor)
    return weight


class Learner:
    """One learning contender: its agent, and the catalog's rules for turning clicks into
    rewards (the same ones ``ltrr.plugin.learn.intake`` applies)."""

    def __init__(self, catalog: Catalog, policy: str, seed: int) -> None:
        config = replace(catalog.policy, name=policy, include=())
        arms = [arm.spec() for arm in catalog.arms]
        fields = [(f.name, f.kind) for f in catalog.features.context]
        self.agent = Agent.create(config, arms, fields, catalog.features.hash_buckets, seed)
        self.catalog = catalog

    def decide(self, session: Session, entities: EntityDictionary | None, page: int) -> Decision:
        return self.agent.decide(
            session.text,
            session.context,
            session.time,
            entities,
            budget=self.catalog.budget,
            depth=page,
        )

    def learn(
        self,
        decision: Decision,
        results: Mapping[str, Sequence[ArmHit]],
        page_ids: Sequence[str],
        clicked: Sequence[int],
        query: str,
    ) -> None:
        """Every click in rank order, then the window closes: as the proxy would, in order."""
        if decision.features is None:
            return
        feedback = self.catalog.feedback
        value = float(feedback.events.get("click", 1.0))
        included = [c.arm for c in decision.included]
        found = {arm: {h.id for h in hits} for arm, hits in results.items()}
        first = True
        for rank in clicked:
            weight = click_weight(self.catalog, rank)
            rewards = arm_rewards(
                found, included, page_ids[rank - 1], weight, unique=feedback.credit == "unique"
            )
            self.agent.reward(
                decision.features,
                rewards,
                first=first,
                plan=decision.plan,
                page=value,
                query=query,
            )
            first = False
        if first:  # no feedback in the window: reward 0 for what it asked
            self.agent.reward(
                decision.features,
                dict.fromkeys(included, 0.0),
                first=True,
                plan=decision.plan,
                page=0.0,
                query=query,
            )


@dataclass(frozen=True, slots=True)
class Replay:
    """Everything one seed's run needs that does not change between contenders."""

    catalog: Catalog
    capture: Capture
    grades: Mapping[str, Mapping[str, int]]
    clicks: ClickModel
    seed: int
    page: int
    k: int
    entities: EntityDictionary | None


def _judged(
    replay: Replay, session: Session, page_ids: Sequence[str], fused: Sequence[str]
) -> tuple[float, list[int], float, float]:
    judged = replay.grades.get(session.query_id, {})
    expected, clicked = judge_page(session, page_ids, judged, replay.clicks, replay.seed)
    ndcg = ndcg_at_k(page_ids, judged, 10)
    recall = recall_at_k(fused, judged, replay.k)  # the stream holds judged queries only
    return expected, clicked, ndcg, recall if recall is not None else 0.0


def run_contender(
    replay: Replay,
    contender: Contender,
    sessions: Sequence[Session],
    learn_from: frozenset[str] | None = None,
) -> list[Served]:
    """One contender over the sessions; a learner learns only from queries in ``learn_from``
    (None: every query)."""
    page = Page(replay.catalog, replay.k)
    memory = _memory(replay) if contender.kind != "native" else None
    learner = (
        Learner(replay.catalog, contender.name, replay.seed)
        if contender.kind == "learner"
        else None
    )
    out: list[Served] = []
    for session in sessions:
        captured = replay.capture.queries.get(session.query_id)
        if captured is None:
            raise LtrrError(f"query {session.query_id} was not captured")
        if contender.kind == "native":
            fused = list(captured.natives[contender.method])[: replay.k]
            page_ids = fused[: replay.page]
            expected, clicked, ndcg, recall = _judged(replay, session, page_ids, fused)
            arms = len(captured.lists)
            out.append(
                Served(
                    float(len(clicked)),
                    expected,
                    ndcg,
                    recall,
                    replay.capture.native_candidates,
                    arms,
                    contender.name,
                )
            )
            continue
        if learner is not None:
            decision = learner.decide(session, replay.entities, replay.page)
            sizes = {c.arm: c.size for c in decision.included}
            scores: Mapping[str, float] | None = {c.arm: c.score for c in decision.included}
            plan = decision.plan or "+".join(sizes)
        else:
            sizes = dict(contender.sizes or {})
            scores = None
            plan = contender.name
        results = page.results(_lists(replay, memory, session, captured.lists), sizes)
        fused = page.fused(results, scores)
        page_ids = fused[: replay.page]
        expected, clicked, ndcg, recall = _judged(replay, session, page_ids, fused)
        _remember(replay, memory, session, page_ids, clicked)
        if learner is not None and (learn_from is None or session.query_id in learn_from):
            learner.learn(decision, results, page_ids, clicked, session.text)
        out.append(Served.of_plan(clicked, (expected, ndcg, recall), sizes, plan))
    return out


def _memory(replay: Replay) -> tuple[str, ReplayMemory] | None:
    arm = memory_arm(replay.catalog)
    config = replay.catalog.memory
    if arm is None or config is None:
        return None
    return arm, ReplayMemory(config, replay.capture.index)


def _lists(
    replay: Replay,
    memory: tuple[str, ReplayMemory] | None,
    session: Session,
    lists: Mapping[str, Sequence[ArmHit]],
) -> Mapping[str, Sequence[ArmHit]]:
    """The captured lists, with the memory arm's as this contender's memory has it now."""
    if memory is None:
        return lists
    arm, learned = memory
    size = replay.catalog.arm(arm).max_size
    return {**lists, arm: learned.hits(session.text, lists.get(arm, ()), size)}


def _remember(
    replay: Replay,
    memory: tuple[str, ReplayMemory] | None,
    session: Session,
    page_ids: Sequence[str],
    clicked: Sequence[int],
) -> None:
    """The search and its clicks, into the memory (every search counts, as in the proxy)."""
    if memory is None:
        return
    now = session.time.timestamp()
    learned = memory[1]
    learned.searched(session.text, now)
    for rank in clicked:
        learned.engaged(session.text, page_ids[rank - 1], click_weight(replay.catalog, rank), now)


def run_oracle(replay: Replay, sessions: Sequence[Session]) -> list[Served]:
    """Per session, the candidate plan with the most expected clicks for that user (with a
    memory of its own that learns from the oracle's clicks, as any contender's does)."""
    page = Page(replay.catalog, replay.k)
    plans = oracle_plans(replay.catalog, replay.page)
    memory = _memory(replay)
    out: list[Served] = []
    for session in sessions:
        captured = replay.capture.queries[session.query_id]
        lists = _lists(replay, memory, session, captured.lists)
        pages = []
        for sizes in plans:
            fused = page.fused(page.results(lists, sizes))
            pages.append((fused[: replay.page], fused, sizes))
        judged = replay.grades.get(session.query_id, {})
        model = session.click_model(replay.clicks)
        scored = [
            (model.expected_clicks(grades_for(ids, judged)), -sum(sizes.values()), i)
            for i, (ids, _, sizes) in enumerate(pages)
        ]
        _, _, best = max(scored)
        page_ids, fused, sizes = pages[best]
        expected, clicked, ndcg, recall = _judged(replay, session, page_ids, fused)
        _remember(replay, memory, session, page_ids, clicked)
        out.append(Served.of_plan(clicked, (expected, ndcg, recall), sizes, "+".join(sizes)))
    return out
