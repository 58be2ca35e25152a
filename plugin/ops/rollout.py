"""The online comparison of a rollout: the learner against the baseline, from the logs alone.

``compare`` reads decision documents (``ltrr-decisions``) and feedback events (``ltrr-events``)
and returns a ``RolloutComparison``: for a split, each side's clicks per search with a 95%
interval and a Welch t-test of the difference; for interleaving, wins, losses and ties, the
preference (wins - losses) / searches with its interval, and a two-sided sign test (ties carry
no information about which side is better, so the test reads only the searches one side won).
Both also report latency (the proxy's ``took_ms``) and cost (arms and documents asked).

The split compares only searches whose unit was assigned: one without the unit key went to the
baseline by rule, not by chance, and would tilt that side. A click counts for the side of its
search, or on an interleaved page for the team that placed the document.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import stats  # type: ignore[import-untyped]

from ltrr.query_plans.rollout import BASELINE, LEARNER, SIDES, preference

ALPHA = 0.05  # the significance level every verdict uses
Z95 = 1.959963984540054  # the normal quantile of a two-sided 95% interval


@dataclass(frozen=True, slots=True)
class Interval:
    """An estimate and its two-sided 95% interval."""

    estimate: float
    low: float
    high: float


@dataclass(frozen=True, slots=True)
class Cost:
    """What the searches cost: the proxy's time, and what they asked OpenSearch for."""

    latency_ms_mean: float | None  # None: the decisions carry no ``took_ms``
    latency_ms_p50: float | None
    latency_ms_p95: float | None
    arms_per_search: float
    docs_per_search: float  # the candidates asked for, summed over the arms


@dataclass(frozen=True, slots=True)
class SideSummary:
    """One side of a split."""

    side: str
    searches: int
    clicks: int
    clicks_per_search: Interval
    cost: Cost


@dataclass(frozen=True, slots=True)
class SplitComparison:
    learner: SideSummary
    baseline: SideSummary
    share: float | None  # the catalog's ``rollout.share`` when the searches were made
    difference: Interval  # learner minus baseline clicks per search (Welch)
    p_value: float | None  # Welch's two-sided t-test; None with too few searches to test
    significant: bool  # p_value < ALPHA
    # The search count (in time order) from which the test has stayed significant, had it
    # been checked after every search; None when it is not significant now.
    significant_since: int | None = None


@dataclass(frozen=True, slots=True)
class InterleaveComparison:
    searches: int
    wins: int  # searches where the learner's team got more clicks
    losses: int
    ties: int  # equal clicks, none included
    preference: Interval  # (wins - losses) / searches, in [-1, 1]; > 0 favours the learner
    p_value: float | None  # two-sided sign test on wins vs losses; None without either
    significant: bool
    learner_clicks_per_search: Interval  # clicks on the learner team's documents
    baseline_clicks_per_search: Interval
    unattributed_clicks: int  # on leftovers placed by neither team
    cost: Cost  # of the interleaved searches (the union of both plans, in one _msearch)
    learner_docs_per_search: float  # what each side's own plan asked
    baseline_docs_per_search: float
    significant_since: int | None = None  # as SplitComparison's, for the sign test


@dataclass(frozen=True, slots=True)
class RolloutComparison:
    """Everything the rollout report prints; ``split``/``interleave`` None when no search
    of that mode is in the logs."""

    decisions: int  # every decision read
    outside: int  # decisions without a rollout entry (no rollout, or before it started)
    unassigned: int  # split searches without the unit key: served the baseline, not compared
    split: SplitComparison | None
    interleave: InterleaveComparison | None
    alpha: float = ALPHA


# -- statistics -------------------------------------------------------------------------------


def mean_interval(values: Sequence[float]) -> Interval:
    """The mean with a normal 95% interval (the t quantile for small samples)."""
    n = len(values)
    if n == 0:
        return Interval(math.nan, math.nan, math.nan)
    mean = float(np.mean(values))
    if n < 2:
        return Interval(mean, math.nan, math.nan)
    half = float(stats.t.ppf(0.975, n - 1)) * float(np.std(values, ddof=1)) / math.sqrt(n)
    return Interval(mean, mean - half, mean + half)


def welch(learner: Sequence[float], baseline: Sequence[float]) -> tuple[Interval, float | None]:
    """Learner minus baseline means, Welch's 95% interval and two-sided p-value."""
    a, b = np.asarray(learner, dtype=float), np.asarray(baseline, dtype=float)
    diff = (float(a.mean()) if a.size else math.nan) - (float(b.mean()) if b.size else math.nan)
    if a.size < 2 or b.size < 2:
        return Interval(diff, math.nan, math.nan), None
    va, vb = a.var(ddof=1) / a.size, b.var(ddof=1) / b.size
    se = math.sqrt(va + vb)
    if se == 0.0:
        return Interval(diff, diff, diff), None
    df = (va + vb) ** 2 / (va**2 / (a.size - 1) + vb**2 / (b.size - 1))
    half = float(stats.t.ppf(0.975, df)) * se
    p = 2.0 * float(stats.t.sf(abs(diff) / se, df))
    return Interval(diff, diff - half, diff + half), p


def sign_test(wins: int, losses: int) -> float | None:
    """Two-sided exact binomial test of wins against losses at 1/2 (ties left out)."""
    if wins + losses == 0:
        return None
    return float(stats.binomtest(wins, wins + losses, 0.5).pvalue)


def sign_test_sequence(outcomes: Sequence[int]) -> list[float | None]:
    """The sign test after each search, from its +1/-1/0 outcomes, at once: with p = 1/2 the
    two-sided exact p-value is 2 P(X <= min(wins, losses)), capped at 1."""
    won = np.cumsum(np.asarray(outcomes) == 1)
    lost = np.cumsum(np.asarray(outcomes) == -1)
    n = won + lost
    p = np.minimum(1.0, 2.0 * stats.binom.cdf(np.minimum(won, lost), n, 0.5))
    return [float(v) if k > 0 else None for v, k in zip(p, n, strict=True)]


def welch_sequence(learner_side: Sequence[bool], values: Sequence[float]) -> list[float | None]:
    """Welch's p-value after each search (``learner_side`` says which side it was on), from
    running sums, so that a long log is one pass."""
    mine = np.asarray(learner_side, dtype=bool)
    x = np.asarray(values, dtype=float)
    out: list[np.ndarray] = []
    for side in (mine, ~mine):
        n = np.cumsum(side)
        total = np.cumsum(np.where(side, x, 0.0))
        squares = np.cumsum(np.where(side, x * x, 0.0))
        with np.errstate(divide="ignore", invalid="ignore"):
            mean = total / n
            var = (squares - n * mean * mean) / (n - 1)
        out += [n, mean, np.maximum(var, 0.0) / n]
    na, ma, va, nb, mb, vb = out
    with np.errstate(divide="ignore", invalid="ignore"):
        se = np.sqrt(va + vb)
        df = (va + vb) ** 2 / (va**2 / (na - 1) + vb**2 / (nb - 1))
        p = 2.0 * stats.t.sf(np.abs(ma - mb) / se, df)
    ok = (na >= 2) & (nb >= 2) & (se > 1e-12)
    return [float(v) if good else None for v, good in zip(p, ok, strict=True)]


def first_significant(p_values: Sequence[float | None], alpha: float = ALPHA) -> int | None:
    """The smallest n (1-based) from which every p-value is below ``alpha``: when a test that
    is checked after each search became significant and stayed so; None if it never did."""
    first: int | None = None
    for n, p in enumerate(p_values, start=1):
        first = (n if first is None else first) if p is not None and p < alpha else None
    return first


# -- reading the logs -------------------------------------------------------------------------


def _clicks_by_decision(
    events: Iterable[Mapping[str, Any]], event_type: str
) -> dict[str, list[str]]:
    """Per decision, the object ids clicked, each event once (by event id)."""
    seen: set[str] = set()
    out: dict[str, list[str]] = {}
    for event in events:
        if event.get("type") != event_type:
            continue
        key = str(event.get("event_id") or id(event))
        if key in seen:
            continue
        seen.add(key)
        out.setdefault(str(event.get("decision_id")), []).append(str(event.get("object_id")))
    return out


def _asked(arms: Mapping[str, Any], only: Mapping[str, Any] | None = None) -> tuple[int, int]:
    """(arms, documents) a decision asked for."""
    if only is not None:
        return len(only), sum(int(v) for v in only.values())
    included = [a for a in arms.values() if a.get("included")]
    return len(included), sum(int(a.get("size", 0)) for a in included)


def _cost(docs: Sequence[Mapping[str, Any]]) -> Cost:
    took = [float(d["took_ms"]) for d in docs if isinstance(d.get("took_ms"), int | float)]
    asked = [_asked(d.get("arms") or {}) for d in docs]
    n = max(len(docs), 1)
    return Cost(
        latency_ms_mean=float(np.mean(took)) if took else None,
        latency_ms_p50=float(np.percentile(took, 50)) if took else None,
        latency_ms_p95=float(np.percentile(took, 95)) if took else None,
        arms_per_search=sum(a for a, _ in asked) / n,
        docs_per_search=sum(d for _, d in asked) / n,
    )


def _side(side: str, docs: Sequence[Mapping[str, Any]], clicks: Sequence[float]) -> SideSummary:
    return SideSummary(side, len(docs), int(sum(clicks)), mean_interval(clicks), _cost(docs))


def team_outcome(doc: Mapping[str, Any], clicked: Iterable[str]) -> tuple[int, int, int]:
    """(learner, baseline, neither) clicks on one interleaved page, by the logged teams."""
    teams = (doc.get("rollout") or {}).get("teams") or {}
    team_of: dict[str, str] = {}
    for side in SIDES:
        for object_id in teams.get(side) or ():
            team_of.setdefault(str(object_id), side)
    counts: dict[str | None, int] = dict.fromkeys((*SIDES, None), 0)
    for object_id in clicked:
        counts[team_of.get(object_id)] += 1
    return counts[LEARNER], counts[BASELINE], counts[None]


def compare(
    decisions: Iterable[Mapping[str, Any]],
    events: Iterable[Mapping[str, Any]],
    *,
    event_type: str = "click",
    alpha: float = ALPHA,
) -> RolloutComparison:
    """The rollout's comparison from its logged decisions and their events."""
    clicks = _clicks_by_decision(events, event_type)
    total = outside = unassigned = 0
    split: dict[str, list[Mapping[str, Any]]] = {LEARNER: [], BASELINE: []}
    interleaved: list[Mapping[str, Any]] = []
    assigned: list[Mapping[str, Any]] = []  # both sides' searches, in time order
    share: float | None = None
    for doc in sorted(decisions, key=lambda d: float(d.get("timestamp") or 0.0)):
        total += 1
        rollout = doc.get("rollout")
        if not isinstance(rollout, Mapping):
            outside += 1
        elif rollout.get("mode") == "interleave":
            interleaved.append(doc)
        elif rollout.get("mode") == "split" and not rollout.get("assigned"):
            unassigned += 1
        elif rollout.get("mode") == "split" and rollout.get("side") in split:
            split[str(rollout["side"])].append(doc)
            assigned.append(doc)
            share = rollout.get("share", share)
        else:
            outside += 1

    def clicked(doc: Mapping[str, Any]) -> list[str]:
        return clicks.get(str(doc.get("decision_id")), [])

    split_result: SplitComparison | None = None
    if split[LEARNER] or split[BASELINE]:
        per = {s: [float(len(clicked(d))) for d in split[s]] for s in SIDES}
        difference, p = welch(per[LEARNER], per[BASELINE])
        since = first_significant(
            welch_sequence(
                [d["rollout"]["side"] == LEARNER for d in assigned],
                [float(len(clicked(d))) for d in assigned],
            ),
            alpha,
        )
        split_result = SplitComparison(
            learner=_side(LEARNER, split[LEARNER], per[LEARNER]),
            baseline=_side(BASELINE, split[BASELINE], per[BASELINE]),
            share=share,
            difference=difference,
            p_value=p,
            significant=p is not None and p < alpha,
            significant_since=since,
        )
    interleave_result: InterleaveComparison | None = None
    if interleaved:
        outcomes = [team_outcome(d, clicked(d)) for d in interleaved]
        prefs = [preference(mine, theirs) for mine, theirs, _ in outcomes]
        wins, losses = prefs.count(1), prefs.count(-1)
        p = sign_test(wins, losses)
        own = [_asked({}, (d.get("rollout") or {}).get("baseline") or {}) for d in interleaved]
        learner_own = [_asked(d.get("arms") or {}) for d in interleaved]
        n = len(interleaved)
        interleave_result = InterleaveComparison(
            searches=n,
            wins=wins,
            losses=losses,
            ties=prefs.count(0),
            preference=mean_interval([float(x) for x in prefs]),
            p_value=p,
            significant=p is not None and p < alpha,
            learner_clicks_per_search=mean_interval([float(o[0]) for o in outcomes]),
            baseline_clicks_per_search=mean_interval([float(o[1]) for o in outcomes]),
            unattributed_clicks=sum(o[2] for o in outcomes),
            cost=_union_cost(interleaved),
            learner_docs_per_search=sum(d for _, d in learner_own) / n,
            baseline_docs_per_search=sum(d for _, d in own) / n,
            significant_since=first_significant(sign_test_sequence(prefs), alpha),
        )
    return RolloutComparison(total, outside, unassigned, split_result, interleave_result, alpha)


def _union_cost(docs: Sequence[Mapping[str, Any]]) -> Cost:
    """An interleaved search asks each arm at the larger of the two sides' sizes."""
    merged = []
    for doc in docs:
        sizes = {
            arm: int(info.get("size", 0))
            for arm, info in (doc.get("arms") or {}).items()
            if info.get("included")
        }
        for arm, size in ((doc.get("rollout") or {}).get("baseline") or {}).items():
            sizes[arm] = max(sizes.get(arm, 0), int(size))
        arms = {arm: {"included": True, "size": size} for arm, size in sizes.items()}
        merged.append({**doc, "arms": arms})
    return _cost(merged)


# -- the command ------------------------------------------------------------------------------


def _num(value: float | None, digits: int = 3) -> str:
    return "-" if value is None or math.isnan(value) else f"{value:.{digits}f}"


def _interval(i: Interval) -> str:
    return f"{_num(i.estimate)} [{_num(i.low)}, {_num(i.high)}]"


def _show_cost(cost: Cost) -> str:
    latency = (
        f"latency mean {_num(cost.latency_ms_mean, 1)} ms, p50 {_num(cost.latency_ms_p50, 1)}, "
        f"p95 {_num(cost.latency_ms_p95, 1)}"
        if cost.latency_ms_mean is not None
        else "latency not logged"
    )
    return (
        f"{latency}; {_num(cost.arms_per_search, 2)} arms and "
        f"{_num(cost.docs_per_search, 1)} documents asked per search"
    )


def _verdict(significant: bool, p: float | None, alpha: float) -> str:
    if p is None:
        return "not enough searches to test"
    level = f"{alpha:.0%}"
    return f"p = {p:.4g}: " + (
        f"significant at {level}" if significant else f"not significant at {level}"
    )


def _since(searches: int | None) -> str:
    return f", and has been since search {searches}" if searches is not None else ""


def format_comparison(result: RolloutComparison) -> str:
    """The comparison as the ``ltrr rollout`` command prints it."""
    lines = [
        f"{result.decisions} decisions read; {result.outside} outside the rollout, "
        f"{result.unassigned} split searches without their unit (served the baseline, "
        "not compared)"
    ]
    if result.split is not None:
        s = result.split
        lines.append(f"split (learner share {_num(s.share, 2)}): clicks per search, 95% interval")
        for side in (s.learner, s.baseline):
            lines.append(
                f"  {side.side:<8} {side.searches:>7} searches  "
                f"{_interval(side.clicks_per_search)}  {_show_cost(side.cost)}"
            )
        lines.append(
            f"  learner - baseline {_interval(s.difference)} (Welch); "
            + _verdict(s.significant, s.p_value, result.alpha)
            + _since(s.significant_since)
        )
    if result.interleave is not None:
        r = result.interleave
        lines.append(
            f"interleave: {r.searches} searches, learner wins {r.wins}, loses {r.losses}, "
            f"ties {r.ties}"
        )
        lines.append(
            f"  preference (wins - losses) / searches {_interval(r.preference)}; sign test "
            + _verdict(r.significant, r.p_value, result.alpha)
            + _since(r.significant_since)
        )
        lines.append(
            f"  clicks per search on each team: learner {_interval(r.learner_clicks_per_search)},"
            f" baseline {_interval(r.baseline_clicks_per_search)}; "
            f"{r.unattributed_clicks} on leftovers of neither team"
        )
        lines.append(
            f"  cost: {_show_cost(r.cost)} (both plans in one _msearch; alone the learner asks "
            f"{_num(r.learner_docs_per_search, 1)}, "
            f"the baseline {_num(r.baseline_docs_per_search, 1)})"
        )
    if result.split is None and result.interleave is None:
        lines.append("no rollout searches in this period")
    return "\n".join(lines)


def _cost_fields(cost: Cost) -> dict[str, object]:
    return {
        "latency mean (ms)": cost.latency_ms_mean,
        "latency p95 (ms)": cost.latency_ms_p95,
        "arms per search": cost.arms_per_search,
        "documents asked per search": cost.docs_per_search,
    }


def for_report(
    decisions: Sequence[Mapping[str, Any]], events: Sequence[Mapping[str, Any]]
) -> dict[str, object] | None:
    """The comparison as ``ltrr report``'s rollout section lays it out: each side a mapping
    of its figures, then the figures between them; None when no rollout ran."""
    result = compare(decisions, events)
    verdict = {True: f"significant at {result.alpha:.0%}", False: "not significant"}
    if result.interleave is not None:
        r = result.interleave
        return {
            "learner team": {
                "clicks per search": _interval(r.learner_clicks_per_search),
                "documents its plan asks": r.learner_docs_per_search,
            },
            "baseline team": {
                "clicks per search": _interval(r.baseline_clicks_per_search),
                "documents its plan asks": r.baseline_docs_per_search,
            },
            "interleaved searches": r.searches,
            "learner wins / losses / ties": f"{r.wins} / {r.losses} / {r.ties}",
            "preference (wins - losses) / searches": _interval(r.preference),
            "sign test p": r.p_value,
            "verdict": verdict[r.significant],
            "significant since search": r.significant_since,
            "clicks on neither team": r.unattributed_clicks,
            **_cost_fields(r.cost),
        }
    if result.split is not None:
        s = result.split
        sides: dict[str, object] = {
            side.side: {
                "searches": side.searches,
                "clicks per search": _interval(side.clicks_per_search),
                **_cost_fields(side.cost),
            }
            for side in (s.learner, s.baseline)
        }
        return {
            **sides,
            "learner share": s.share,
            "learner - baseline clicks per search": _interval(s.difference),
            "Welch p": s.p_value,
            "verdict": verdict[s.significant],
            "significant since search": s.significant_since,
            "searches without their unit (not compared)": result.unassigned,
        }
    return None
