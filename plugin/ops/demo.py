"""``ltrr demo``: the whole product on a fresh machine, end to end, in one command.

It brings up the local node, derives the music benchmark from the Last.fm files, indexes it
with embeddings, starts the proxy, sends a few thousand simulated sessions through it once per
policy, checks our LinUCB against MABWiser's on the logged decisions, and estimates a static
plan off-policy from the learner's log. It then trains the LTR rerank from the learner's own
logged clicks, uploads it, and runs the same sessions again with the rerank live in the plugin
(``safe_plans+rerank``, ``static+rerank``), and writes one HTML report. ``--serve`` keeps the
proxy up (and skips the rerank pass, whose proxy would need the same port).
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from ltrr.plugin.errors import LtrrError
from ltrr.plugin.learn.bulk import DECISIONS_INDEX
from ltrr.plugin.ops.data.music import build_music
from ltrr.plugin.ops.simulate import reference
from ltrr.plugin.ops.simulate.lineup import DEFAULT_LINEUP, RERANK
from ltrr.plugin.ops.simulate.report import save_runs, simulation_report
from ltrr.plugin.ops.simulate.results import PolicyRun
from ltrr.plugin.ops.simulate.run import Simulation, SimulationConfig, simulate
from ltrr.plugin.ops.simulate.summary import format_table, summarize

EXAMPLE_QUERIES = ("radiohead", "the beatles", "jazz", "female vocalists", "metalica")


@dataclass(frozen=True, slots=True)
class DemoConfig:
    catalog: Path
    source: Path  # the HetRec Last.fm 2K folder or zip
    opensearch: str
    out: Path = Path("build/demo")
    sessions: int = 3000
    seed: int = 7
    listen: str = "127.0.0.1:9250"
    serve: bool = False


def _notes_for_reference(sim: Simulation, config: DemoConfig, say: Callable[[str], None]) -> str:
    targets = sim.targets.get("linucb")
    if not targets:
        return ""
    line = reference.reference_note(config.catalog, config.opensearch, targets[0], sim.started)
    say(line)
    return line


def _notes_for_ope(sim: Simulation, config: DemoConfig, say: Callable[[str], None]) -> str:
    """Estimate the static plan from the learner's log, beside what it earned on-policy."""
    from ltrr.plugin.ops.offpolicy import run_ope

    targets = sim.targets.get("linucb")
    static = next((r for r in sim.runs if r.name == "static"), None)
    if not targets or static is None or not static.sessions:
        return ""
    result = run_ope(
        DECISIONS_INDEX,
        target_catalog=config.catalog,
        target_policy="static",
        opensearch=config.opensearch,
        seed=config.seed,
        report=config.out / "ope.html",
        logged_target=targets[0],
    )
    on_policy = sum(s.reward for s in static.sessions) / len(static.sessions)
    parts = [
        f"{e.name} {e.value:.3f} [{e.low:.3f}, {e.high:.3f}]" for e in result.evaluation.estimates
    ]
    line = (
        f"Off-policy: from LinUCB's {result.evaluation.n} logged decisions, the static plan "
        f"(all arms) is estimated at {'; '.join(parts)} clicks per search (95% bootstrap "
        f"intervals); measured on-policy by the simulator: {on_policy:.3f}. Details: "
        f"{config.out / 'ope.html'}." + "".join(f" Caveat: {c}." for c in result.caveats)
    )
    say(line)
    return line


LEARNER = "safe_plans"  # the example catalog's policy
HELD_OUT = 0.3  # queries the rerank never trains on (as `ltrr replay` and `simulate --seeds`)


async def _rerank_pass(
    sim: Simulation, sim_config: SimulationConfig, config: DemoConfig, say: Callable[[str], None]
) -> list[PolicyRun]:
    """Train the rerank from the learner's logged clicks, then rerun the same sessions with it
    live: the learner reranked, and the static plan with the same rerank."""
    from ltrr.plugin.ops.ltr_models import train_ltr

    targets = sim.targets.get(LEARNER)
    if not targets:
        return []
    from ltrr.plugin.ops.data.beir import read_beir
    from ltrr.plugin.ops.replay.bench import split_queries

    data = read_beir(sim_config.dataset, split=None)
    _, unseen = split_queries(sorted(data.qrels), HELD_OUT)
    held_out = [data.queries[q].text for q in sorted(unseen) if q in data.queries]
    say(
        f"training the LTR rerank from {targets[0]}'s logged searches and clicks (PBM), "
        f"never on the {len(held_out)} held-out queries"
    )
    result = await asyncio.to_thread(
        train_ltr,
        config.catalog,
        sim_config.dataset,
        opensearch=config.opensearch,
        judgments="pbm",
        out=config.out / "ltr",
        seed=config.seed,
        report=config.out / "ltr.html",
        target=targets[0],
        held_out=held_out,
    )
    cv = result.cv
    say(
        f"  {result.model_name} ({result.winner}): cross-validated nDCG@10 (PBM grades) "
        f"{cv.models[result.winner].mean_ndcg:.3f} against {cv.baseline_ndcg:.3f} as served"
    )
    if not result.uploaded:
        say(f"  {result.upload_message}")
        return []
    second = await simulate(
        dataclasses.replace(
            sim_config,
            policies=(LEARNER + RERANK, "static" + RERANK),
            rerank_model=result.model_name,
            work_dir=config.out / "simulate-rerank",
        ),
        say,
    )
    return second.runs


def _live_report(sim: Simulation, config: DemoConfig) -> Path:
    """The page ``ltrr report`` builds on a live cluster, over the demo's own decision log
    (its clock is the simulated stream's, so the period is the stream's, not the last day)."""
    from ltrr.plugin.ops.client import Cluster
    from ltrr.plugin.ops.live.read import read_period
    from ltrr.plugin.ops.live.report import live_report

    targets = sorted({t for copies in sim.targets.values() for t in copies})
    cluster = Cluster(config.opensearch)
    try:
        since = timedelta(seconds=max(sim.ended - sim.started, 1.0))
        period = read_period(cluster, since, targets=targets, now=sim.ended)
    finally:
        cluster.close()
    return live_report(period, config.out / "live-report.html", source=cluster.url)


async def run_demo(config: DemoConfig, say: Callable[[str], None]) -> Simulation:
    started = time.perf_counter()
    dataset = config.out / "music"
    if not (dataset / "music.json").is_file():
        say(f"building the music benchmark from {config.source}")
        summary = build_music(config.source, dataset)
        say(f"  {summary['documents']} artists; queries by intent {summary['queries_by_intent']}")
    sim_config = SimulationConfig(
        catalog=config.catalog,
        dataset=dataset,
        sessions=config.sessions,
        policies=DEFAULT_LINEUP,
        seed=config.seed,
        opensearch=config.opensearch,
        listen=config.listen,
        work_dir=config.out / "simulate",
        keep_serving=config.serve,
    )
    sim = await simulate(sim_config, say)
    save_runs(sim.runs, config.out / "runs.json")
    notes = list(sim.notes)
    for step in (_notes_for_reference, _notes_for_ope):
        try:
            line = await asyncio.to_thread(step, sim, config, say)
        except LtrrError as exc:  # the report still has the simulation; say what is missing
            line = f"Not measured ({step.__name__.removeprefix('_notes_for_')}): {exc}"
            say(line)
        if line:
            notes.append(line)
    runs = list(sim.runs)
    if config.serve:
        say("not measured: the rerank pass (--serve keeps the first proxy on its port)")
    else:
        try:
            runs += await _rerank_pass(sim, sim_config, config, say)
        except LtrrError as exc:
            line = f"Not measured (rerank): {exc}"
            say(line)
            notes.append(line)
        save_runs(runs, config.out / "runs.json")
    oracle = "oracle" if any(r.name == "oracle" for r in runs) else None
    report = simulation_report(
        runs,
        config.out / "report.html",
        k=sim_config.k,
        oracle=oracle,
        title="LTR&R on the music benchmark",
        notes=notes,
    )
    print(format_table(summarize(runs, oracle), sim_config.k))
    minutes = (time.perf_counter() - started) / 60.0
    say(f"report: {report.resolve()}  ({minutes:.1f} min)")
    try:
        live = await asyncio.to_thread(_live_report, sim, config)
        say(f"live report (`ltrr report` over the first pass's decision log): {live.resolve()}")
    except LtrrError as exc:
        say(f"Not written (live report): {exc}")
    if config.serve and sim.proxy is not None:
        say(f"metrics (Prometheus text, live): {sim.proxy.url}/_ltrr/metrics")
    elif sim.metrics is not None:
        say(f"metrics (the proxy's Prometheus exposition at the end): {sim.metrics.resolve()}")
    say("Grafana dashboard for them: plugin/ops/grafana/ltrr.json")
    if config.serve and sim.proxy is not None:
        target = sim.targets.get("linucb", ["music"])[0]
        say(f"serving the LinUCB copy on {sim.proxy.url}/{target} (Ctrl-C stops the proxy)")
        for query in EXAMPLE_QUERIES:
            say(
                f"  curl -s {sim.proxy.url}/{target}/_search -H 'Content-Type: application/json'"
                f' -d \'{{"size": 5, "_source": ["name", "tags"], '
                f'"ext": {{"ltrr": {{"query": "{query}"}}}}}}\''
            )
    return sim
