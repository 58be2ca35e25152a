"""``ltrr simulate``: the same seeded stream of simulated sessions, once per policy, through a
real proxy to the real node, with the clicks sent back through the UBI path.

Each contender serves its own clone of the index (see ``lineup``), all from one proxy
process, and all contenders run side by side: session i is the same query by the same user
for every one of them, and the click noise for session i is drawn from the same seed, so two
policies that show the same page get the same clicks. The ``hybrid:*`` contenders search their
clone with OpenSearch's own hybrid query instead, straight to the node (see ``hybrid``).
"""

from __future__ import annotations

import asyncio
import dataclasses
import math
import shutil
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import requests

from ltrr.plugin.errors import LtrrError, PluginNotInstalled
from ltrr.plugin.learn.bulk import DECISIONS_INDEX, EVENTS_INDEX, MEMORY_INDEX, STATE_INDEX
from ltrr.plugin.ops.client import Cluster
from ltrr.plugin.ops.cluster import LTR_PLUGIN, ClusterInfo
from ltrr.plugin.ops.data.beir import BeirDataset, read_beir
from ltrr.plugin.ops.data.index import catalog_embedder, index_corpus
from ltrr.plugin.ops.simulate import cluster_ops, lineup, oracle
from ltrr.plugin.ops.simulate.clicks import ClickModel, from_spec
from ltrr.plugin.ops.simulate.hybrid import HybridSearch, HybridSearcher
from ltrr.plugin.ops.simulate.lineup import PolicySpec
from ltrr.plugin.ops.simulate.proxy import ProxyProcess
from ltrr.plugin.ops.simulate.results import PolicyRun, SessionRecord
from ltrr.plugin.ops.simulate.stream import Session, judge_page, session_stream
from ltrr.plugin.runtime.clock import SIM_TIME_HEADER
from ltrr.query_plans.catalog import Catalog, RerankConfig, load_catalog
from ltrr.query_plans.fusion.base import ArmHit
from ltrr.query_plans.hybrid import pipeline_for
from ltrr.query_plans.metrics import ndcg_at_k, recall_at_k

UBI_CLIENT = "ltrr-simulator"
LOOP_INDICES = (STATE_INDEX, MEMORY_INDEX, DECISIONS_INDEX, EVENTS_INDEX)
# The copies a simulation serves lift the catalog's deadline to this, so that a slow moment of
# the machine never changes which arms answer (the same seed must give the same pages); each
# search slower than the catalog's own deadline is counted instead.
SIMULATION_DEADLINE_MS = 60_000  # the most a catalog allows


@dataclass(frozen=True, slots=True)
class SimulationConfig:
    catalog: Path
    dataset: Path
    sessions: int
    policies: tuple[str, ...] = lineup.DEFAULT_LINEUP
    seed: int = 7
    click_model: str = "pbm"
    k: int = 100
    page: int = 10
    users: int = 1000
    opensearch: str = "http://127.0.0.1:9200"
    listen: str = "127.0.0.1:9260"
    work_dir: Path = Path("build/simulate")
    calibration_queries: int = 60
    record_candidates: bool = False
    progress: bool = True
    keep_serving: bool = False
    index: str | None = None  # default: the catalog's target
    rerank_model: str | None = None  # the +rerank contenders' model (default: the catalog's)


@dataclass(slots=True)
class Simulation:
    """What a run produced, for the report and the closing table."""

    runs: list[PolicyRun]
    oracle_sets: dict[str, tuple[tuple[str, ...], float]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    targets: dict[str, list[str]] = field(default_factory=dict)  # policy -> served copies
    # policy -> why the proxy answered with the catalog's static fallback, and how often
    fallbacks: dict[str, dict[str, int]] = field(default_factory=dict)
    started: float = 0.0
    ended: float = 0.0  # the decision log's clock when the last window had closed
    metrics: Path | None = None  # the proxy's Prometheus exposition at the end of the run
    proxy: ProxyProcess | None = None  # still serving when the config said keep_serving


@dataclass(slots=True)
class _Contender:
    spec: PolicySpec
    targets: dict[str, str]  # intent ("" = any) -> the copy it searches
    run: PolicyRun
    passed_through: int = 0  # searches the proxy passed through (every plan failed)
    fallbacks: Counter[str] = field(default_factory=Counter)  # reason -> static fallback pages
    over_deadline: int = 0  # searches slower than the catalog's deadline (still served)
    deadline_ms: float = math.inf  # the catalog's own; the simulated copies lift it
    window_seconds: float = 0.0  # the catalog's feedback window
    hybrid: HybridSearch | None = None  # set for the native hybrid contenders


def _intent_target(contender: _Contender, intent: str) -> str:
    return contender.targets.get(intent) or contender.targets[""]


def _click_event(decision_id: str, doc_id: str, rank: int, when: datetime) -> dict[str, Any]:
    return {
        "action_name": "click",
        "query_id": decision_id,
        "client_id": UBI_CLIENT,
        "timestamp": when.isoformat(),
        "event_attributes": {
            "object": {"object_id": doc_id, "object_id_field": "_id"},
            "position": {"ordinal": rank},
        },
    }


async def _post(
    http: aiohttp.ClientSession,
    url: str,
    body: bytes,
    content_type: str = "application/json",
    when: datetime | None = None,
) -> dict[str, Any]:
    """POST ``body``; ``when``: the session's simulated time, for a proxy on a simulated clock."""
    headers = {"Content-Type": content_type}
    if when is not None:
        headers[SIM_TIME_HEADER] = repr(when.timestamp())
    async with http.post(url, data=body, headers=headers) as reply:
        payload = await reply.read()
        if reply.status >= 300:
            raise LtrrError(f"{url} answered {reply.status}: {payload[:400]!r}")
        result: dict[str, Any] = orjson.loads(payload)
        return result


def _record(
    session: Session,
    page_ids: Sequence[str],
    fused: Sequence[str],
    judged: Mapping[str, int],
    judgement: tuple[float, Sequence[int]],
    config: SimulationConfig,
    retrieved: int,
    arms: tuple[str, ...],
    latency_ms: float,
) -> SessionRecord:
    """What one session measured: the page shown, the fused top K, the user's clicks."""
    expected, clicked = judgement
    return SessionRecord(
        session=session.index,
        intent=session.intent,
        query=session.text,
        reward=float(len(clicked)),
        expected_reward=expected,
        recall=recall_at_k(fused, judged, config.k) if judged else None,
        ndcg=ndcg_at_k(page_ids, judged, 10),
        retrieved=retrieved,
        arms=arms,
        latency_ms=latency_ms,
        query_id=session.query_id,
        candidates=tuple(fused) if config.record_candidates else (),
    )


async def set_clock(
    http: aiohttp.ClientSession, proxy_url: str, when: datetime, targets: Sequence[str]
) -> None:
    """Move the targets' simulated clock to ``when``: what is due by then for them (closing
    windows, writing the memory) is done before the reply."""
    body = orjson.dumps({"now": when.timestamp(), "targets": list(targets)})
    await _post(http, f"{proxy_url}/_ltrr/_sim/clock", body)


async def _one_session(
    http: aiohttp.ClientSession,
    proxy_url: str,
    contender: _Contender,
    session: Session,
    data: BeirDataset,
    clicks: ClickModel,
    config: SimulationConfig,
) -> SessionRecord:
    target = _intent_target(contender, session.intent)
    ask: dict[str, Any] = {"query": session.text, "context": session.context}
    request: dict[str, Any] = {"size": config.page, "_source": False, "ext": {"ltrr": ask}}
    await set_clock(http, proxy_url, session.time, [target])
    started = time.perf_counter()
    first = await _post(
        http, f"{proxy_url}/{target}/_search", orjson.dumps(request), when=session.time
    )
    latency_ms = (time.perf_counter() - started) * 1000.0
    over = latency_ms > contender.deadline_ms
    contender.over_deadline += int(over)
    if "ltrr" not in first.get("ext", {}):
        # Every plan failed, so the proxy passed the search through: a measured outcome (the
        # page the caller got, with no decision to learn from), counted and reported.
        contender.passed_through += 1
        page_ids = [h["_id"] for h in first["hits"]["hits"]]
        judged = data.qrels.get(session.query_id, {})
        expected, clicked = judge_page(session, page_ids, judged, clicks, config.seed)
        return _record(
            session, page_ids, page_ids, judged, (expected, clicked), config, 0, (), latency_ms
        )
    ltrr = first["ext"]["ltrr"]
    decision_id = ltrr["decision_id"]
    if ltrr.get("fallback"):  # served, but by no policy: a measured outcome, nothing learned
        contender.fallbacks[str(ltrr["fallback"])] += 1
    page_ids = [h["_id"] for h in first["hits"]["hits"]]
    judged = data.qrels.get(session.query_id, {})
    expected, clicked = judge_page(session, page_ids, judged, clicks, config.seed)
    if clicked:
        lines = bytearray()
        for rank in clicked:
            lines += orjson.dumps({"index": {"_index": "ubi_events"}}) + b"\n"
            event = _click_event(decision_id, page_ids[rank - 1], rank, session.time)
            lines += orjson.dumps(event) + b"\n"
        reply = await _post(
            http, f"{proxy_url}/_bulk", bytes(lines), "application/x-ndjson", when=session.time
        )
        if reply.get("errors"):
            raise LtrrError(f"UBI events were refused: {orjson.dumps(reply)[:400]!r}")
    fused = list(page_ids)
    if config.k > config.page:
        more = {
            **request,
            "from": config.page,
            "size": config.k - config.page,
            "ext": {"ltrr": {**ask, "decision_id": decision_id}},
        }
        rest = await _post(
            http, f"{proxy_url}/{target}/_search", orjson.dumps(more), when=session.time
        )
        fused += [h["_id"] for h in rest["hits"]["hits"]]
    arms = ltrr["arms"]
    included = tuple(name for name, info in arms.items() if info["included"])
    retrieved = sum(int(arms[a]["size"]) for a in included)
    return _record(
        session,
        page_ids,
        fused,
        judged,
        (expected, clicked),
        config,
        retrieved,
        included,
        latency_ms,
    )


async def _one_hybrid_session(
    http: aiohttp.ClientSession,
    searcher: HybridSearcher,
    search: HybridSearch,
    session: Session,
    data: BeirDataset,
    clicks: ClickModel,
    config: SimulationConfig,
) -> SessionRecord:
    """One hybrid search for the page and the top K at once; judged like any other page."""
    answer = await searcher.search(http, search, session, max(config.page, config.k))
    page_ids = answer.ids[: config.page]
    judged = data.qrels.get(session.query_id, {})
    expected, clicked = judge_page(session, page_ids, judged, clicks, config.seed)
    return _record(
        session,
        page_ids,
        answer.ids[: config.k],
        judged,
        (expected, clicked),
        config,
        answer.retrieved,
        search.arms,
        answer.latency_ms,
    )


async def _run_contender(
    proxy_url: str,
    contender: _Contender,
    sessions: Sequence[Session],
    data: BeirDataset,
    clicks: ClickModel,
    config: SimulationConfig,
    tick: Callable[[], None],
    searcher: HybridSearcher | None = None,
) -> None:
    """One contender's pass: sessions in order, each one's clicks sent before the next."""
    timeout = aiohttp.ClientTimeout(total=60)
    async with aiohttp.ClientSession(timeout=timeout) as http:
        for session in sessions:
            if contender.hybrid is not None:
                if searcher is None:
                    raise LtrrError(f"{contender.spec.name}: no hybrid searcher")
                record = await _one_hybrid_session(
                    http, searcher, contender.hybrid, session, data, clicks, config
                )
            else:
                record = await _one_session(
                    http, proxy_url, contender, session, data, clicks, config
                )
            contender.run.sessions.append(record)
            tick()
        if contender.hybrid is None and sessions:
            # Past the last window: every decision is closed (reward 0 where no click came) and
            # the memory written before the next contender starts from the stream's first day.
            window = timedelta(seconds=contender.window_seconds + 1.0)
            targets = list(contender.targets.values())
            last = max(s.time for s in sessions)  # sessions are in stream order, not time's
            await set_clock(http, proxy_url, last + window, targets)


async def _calibrate(
    proxy_url: str,
    target: str,
    catalog: Catalog,
    samples: Sequence[Session],
    data: BeirDataset,
) -> list[oracle.Calibrated]:
    """Each arm's full list for the sample queries, from the explain output of one search."""
    size = lineup.full_budget(catalog)
    out: list[oracle.Calibrated] = []
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as http:
        for session in samples:
            body = {
                "size": size,
                "_source": False,
                "ext": {
                    "ltrr": {"query": session.text, "context": session.context, "explain": True}
                },
            }
            reply = await _post(http, f"{proxy_url}/{target}/_search", orjson.dumps(body))
            lists: dict[str, list[ArmHit]] = {}
            for hit in reply["hits"]["hits"]:
                for p in hit.get("_ltrr", {}).get("provenance", ()):
                    lists.setdefault(p["arm"], []).append(
                        ArmHit(hit["_index"], hit["_id"], float(p["score"]), int(p["rank"]))
                    )
            for hits in lists.values():
                hits.sort(key=lambda h: h.rank)
            out.append(
                oracle.Calibrated(session.intent, lists, data.qrels.get(session.query_id, {}))
            )
    return out


async def _open_natives(
    http: Cluster,
    catalog: Catalog,
    contenders: Sequence[_Contender],
    notes: list[str],
) -> HybridSearcher | None:
    """The hybrid contenders' search pipelines, and the searcher they share (None without)."""
    natives = [(c.spec, c.hybrid) for c in contenders if c.hybrid is not None]
    if not natives:
        return None
    for spec, search in natives:
        body = pipeline_for(spec.hybrid, catalog, search.arms)
        await asyncio.to_thread(cluster_ops.put_pipeline, http, search.pipeline, body)
    depths = "/".join(sorted({str(search.depth) for _, search in natives}))
    notes.append(
        f"{', '.join(spec.name for spec, _ in natives)}: OpenSearch's own hybrid query over the "
        f"same arms, sent straight to the node (not through the proxy), {depths} candidates "
        "per arm (pagination_depth and knn k), fused by a search pipeline the simulator made; "
        "they never learn. Their latency includes embedding the query in the simulator, as the "
        "proxy's includes its own."
    )
    return HybridSearcher(catalog, http.url, catalog_embedder(catalog))


async def _close_natives(
    http: Cluster,
    contenders: Sequence[_Contender],
    searcher: HybridSearcher | None,
) -> None:
    pipelines = [c.hybrid.pipeline for c in contenders if c.hybrid is not None]
    if pipelines:  # also those a failed start never made: a missing one is no error
        await asyncio.to_thread(cluster_ops.delete_pipelines, http, pipelines)
    if searcher is not None and searcher.embedder is not None:
        searcher.embedder.close()


def _rerank_unavailable(http: Cluster, catalog: Catalog) -> str | None:
    """Why the catalog's rerank cannot run on this node (no plugin, no such model), or None.

    A rerank that fails on every search would only add its failed round trip to every
    latency and measure nothing, so the ``+rerank`` contenders refuse to start.
    """
    if catalog.rerank is None:
        return None
    try:
        ClusterInfo.fetch(http).require(LTR_PLUGIN)
    except PluginNotInstalled:
        return "The LTR plugin is not installed on this node"
    store = f"/_ltr/{catalog.rerank.store}" if catalog.rerank.store else "/_ltr"
    if http.request("GET", f"{store}/_model/{catalog.rerank.model}")[0] != 200:
        return (
            f"The LTR model {catalog.rerank.model} is not on this node (train one with "
            "`ltrr ltr train`)"
        )
    return None


def prepare_index(
    http: Cluster | str,
    catalog: Catalog,
    data: BeirDataset,
    say: Callable[[str], None],
    progress: bool,
    checkpoint: Path | None = None,
    index: str | None = None,
) -> str:
    """The catalog's index (or ``index``), loaded from the dataset unless it already holds
    exactly it. Says which cluster first: a default URL may reach someone else's node."""
    cluster = http if isinstance(http, Cluster) else Cluster(http, timeout=300)
    root = cluster.ok("GET", "/", timeout=10)
    say(
        f"OpenSearch at {cluster.url}: cluster {root.get('cluster_name', '?')} "
        f"({root.get('cluster_uuid', '?')}), {root.get('version', {}).get('number', '?')}"
    )
    embedder = catalog_embedder(catalog)
    embed = embedder.embed_batch if embedder is not None else None
    try:
        result = index_corpus(
            http,
            catalog,
            data.corpus,
            embed,
            checkpoint=checkpoint,
            index=index,
            say=say,
            progress=progress,
        )
    finally:
        if embedder is not None:
            embedder.close()
    return result.index


def _contenders(
    specs: Sequence[PolicySpec],
    base: str,
    intents: Sequence[str],
    deadline_ms: float,
    window_seconds: float,
) -> list[_Contender]:
    """One contender per line-up entry, each with its own copies of the index."""
    contenders: list[_Contender] = []
    for spec in specs:
        if spec.name == "oracle":
            targets = {i: lineup.variant_target(base, spec, i) for i in intents}
        else:
            targets = {"": lineup.variant_target(base, spec)}
        hybrid = None
        if spec.hybrid:
            # The pipeline is named after the copy: one per contender, and per simulated index.
            depth = spec.budget // len(spec.include)
            hybrid = HybridSearch(targets[""], targets[""], spec.include, depth)
        run = PolicyRun(spec.name, spec.description, spec.learning)
        contenders.append(
            _Contender(
                spec,
                targets,
                run,
                hybrid=hybrid,
                deadline_ms=deadline_ms,
                window_seconds=window_seconds,
            )
        )
    return contenders


def _write_variants(
    catalog: Catalog,
    contenders: Sequence[_Contender],
    folder: Path,
    oracle_sets: Mapping[str, tuple[str, ...]],
) -> list[Path]:
    """The catalog each proxied contender serves (the oracle's per intent, with its sets)."""
    paths = []
    for c in contenders:
        if c.hybrid is not None:  # searches the node directly: no catalog variant
            continue
        for intent, target in c.targets.items():
            include = oracle_sets.get(intent, ()) if c.spec.name == "oracle" else c.spec.include
            paths.append(
                lineup.write_variant(
                    catalog,
                    c.spec,
                    folder,
                    target=target,
                    include=include,
                    deadline_ms=SIMULATION_DEADLINE_MS,
                )
            )
    return paths


async def _oracle_sets(
    proxy: ProxyProcess,
    calibration: str,
    catalog: Catalog,
    data: BeirDataset,
    clicks: ClickModel,
    config: SimulationConfig,
    say: Callable[[str], None],
) -> dict[str, tuple[tuple[str, ...], float]]:
    """The oracle's best arm set per intent, from a calibration stream of its own seed."""
    per_intent: dict[str, list[Session]] = {}
    for s in session_stream(data, config.sessions, seed=config.seed + 1, users=config.users):
        per_intent.setdefault(s.intent, [])
        if len(per_intent[s.intent]) < config.calibration_queries:
            per_intent[s.intent].append(s)
    samples = await _calibrate(
        proxy.url, calibration, catalog, [s for g in per_intent.values() for s in g], data
    )
    oracle_sets = oracle.best_sets(catalog, samples, clicks, config.page)
    for intent, (arms, value) in oracle_sets.items():
        say(f"oracle for {intent or 'all'} queries: {'+'.join(arms)} ({value:.3f} clicks)")
    return oracle_sets


async def _run_all(
    proxy: ProxyProcess,
    contenders: Sequence[_Contender],
    sessions: Sequence[Session],
    data: BeirDataset,
    clicks: ClickModel,
    config: SimulationConfig,
    searcher: HybridSearcher | None,
    say: Callable[[str], None],
) -> None:
    """Every contender over the same stream, side by side, with one progress bar. Each runs on
    its own targets at its own simulated time, so their interleaving changes nothing but the
    latencies."""
    from tqdm import tqdm

    proxied = any(c.hybrid is None for c in contenders)
    where = f"through {proxy.url}" if proxied else "straight to the node"
    if proxied and searcher is not None:
        where += " (the hybrid ones straight to the node)"
    say(f"simulating {len(sessions)} sessions x {len(contenders)} policies {where}")
    total = len(sessions) * len(contenders)
    bar = tqdm(total=total, unit="search", desc="simulating", disable=not config.progress)
    try:
        await asyncio.gather(
            *(
                _run_contender(proxy.url, c, sessions, data, clicks, config, bar.update, searcher)
                for c in contenders
            )
        )
    finally:
        bar.close()


async def simulate(config: SimulationConfig, say: Callable[[str], None] = print) -> Simulation:
    """Run every contender over the same stream; the proxy is stopped unless keep_serving."""
    started = time.time()
    catalog = load_catalog(config.catalog)
    if config.rerank_model is not None:  # the +rerank contenders' model, section or not
        rerank = catalog.rerank or RerankConfig(model=config.rerank_model)
        catalog = dataclasses.replace(
            catalog, rerank=dataclasses.replace(rerank, model=config.rerank_model)
        )
    data = read_beir(config.dataset)
    specs = lineup.expand(catalog, config.policies)  # a bad line-up fails before any indexing
    url = config.opensearch.rstrip("/")
    http = Cluster(url, timeout=300)
    base = await asyncio.to_thread(
        prepare_index, http, catalog, data, say, config.progress, None, config.index
    )
    g_max = max((g for judged in data.qrels.values() for g in judged.values()), default=1)
    clicks = from_spec(config.click_model, g_max=max(g_max, 1))
    sessions = session_stream(data, config.sessions, seed=config.seed, users=config.users)
    notes: list[str] = []
    if any(spec.rerank for spec in specs):
        no_rerank = await asyncio.to_thread(_rerank_unavailable, http, catalog)
        if no_rerank is not None:
            raise LtrrError(f"{no_rerank}, so the +rerank contenders cannot run")

    work = config.work_dir
    shutil.rmtree(work / "catalogs", ignore_errors=True)
    contenders = _contenders(
        specs,
        base,
        sorted({s.intent for s in sessions}),
        float(catalog.deadline_ms),
        catalog.feedback.window_seconds,
    )
    catalogs: list[Path] = []
    calibration: str | None = None
    if any(c.spec.name == "oracle" for c in contenders):
        calibration = f"{base}-sim-calibration"
        full = PolicySpec("calibration", "", False, lineup.full_budget(catalog))
        catalogs.append(
            lineup.write_variant(
                catalog,
                full,
                work / "catalogs",
                target=calibration,
                deadline_ms=SIMULATION_DEADLINE_MS,
            )
        )
    copies = [t for c in contenders for t in c.targets.values()]
    copies += [calibration] if calibration else []
    say(f"copying {base} for {len(copies)} contenders (clone: shared segments)")
    await asyncio.to_thread(cluster_ops.clone_index, http, base, copies)
    # Earlier runs' statistics, memory and logs for these copies: a run starts from the prior,
    # and its decision log (which the reference check and ope read) holds only this run.
    await asyncio.to_thread(cluster_ops.forget_targets, http, copies, LOOP_INDICES)
    await asyncio.to_thread(cluster_ops.ensure_ubi_index, http)

    # The oracle's sets are unknown until calibration, which needs the proxy: start it with
    # placeholder static catalogs, calibrate, then write the real ones and reload (SIGHUP-free:
    # a restart is simpler and the copies hold nothing yet).
    catalogs += _write_variants(catalog, contenders, work / "catalogs", {})
    data_dir = work / "proxy-data"
    shutil.rmtree(data_dir, ignore_errors=True)
    proxy = ProxyProcess(
        catalogs,
        url,
        config.listen,
        data_dir,
        seed=config.seed,
        log=work / "proxy.log",
        simulated_clock=not config.keep_serving,
    )
    oracle_sets: dict[str, tuple[tuple[str, ...], float]] = {}
    searcher: HybridSearcher | None = None
    try:
        searcher = await _open_natives(http, catalog, contenders, notes)
        if catalogs:  # none when every contender is a native hybrid one
            await asyncio.to_thread(proxy.start)
        if calibration is not None:
            oracle_sets = await _oracle_sets(proxy, calibration, catalog, data, clicks, config, say)
            await asyncio.to_thread(proxy.stop)
            sets = {i: arms for i, (arms, _) in oracle_sets.items()}
            _write_variants(catalog, contenders, work / "catalogs", sets)
            await asyncio.to_thread(proxy.start)
        await _run_all(proxy, contenders, sessions, data, clicks, config, searcher, say)
        await asyncio.sleep(3.0)  # let the proxy ship its decision log and merge state
    except BaseException:
        await asyncio.to_thread(proxy.stop)
        raise
    finally:
        await _close_natives(http, contenders, searcher)
    metrics: Path | None = None
    if catalogs:
        try:
            metrics = await asyncio.to_thread(proxy.save_metrics, work / "metrics.prom")
        except (LtrrError, OSError, requests.RequestException) as exc:
            notes.append(f"Not kept: the proxy's metrics ({exc}).")
    if not config.keep_serving:
        await asyncio.to_thread(proxy.stop)  # writes the decision log and the state
        await asyncio.to_thread(http.request, "POST", f"/{DECISIONS_INDEX}/_refresh")
    fallbacks = {c.spec.name: dict(c.fallbacks) for c in contenders if c.fallbacks}
    if fallbacks:
        notes.append(
            "Searches the proxy answered with the catalog's static fallback plan (a policy, "
            f"embedder or arm failure; nothing learned): {fallbacks}."
        )
    passed = {c.spec.name: c.passed_through for c in contenders if c.passed_through}
    if passed:
        notes.append(
            "Searches the proxy passed through because every plan failed (judged on the page "
            f"OpenSearch gave, nothing learned): {passed}."
        )
    slow = {c.spec.name: c.over_deadline for c in contenders if c.over_deadline}
    notes.append(
        f"Searches slower than the catalog's deadline ({catalog.deadline_ms} ms; the simulated "
        "copies lift it so that the machine's load never changes a page, and count instead): "
        + (", ".join(f"{name} {n}" for name, n in slow.items()) if slow else "none")
        + "."
    )
    return Simulation(
        runs=[c.run for c in contenders],
        oracle_sets=oracle_sets,
        notes=notes,
        targets={c.spec.name: list(c.targets.values()) for c in contenders},
        fallbacks=fallbacks,
        # The decision log's clock: the simulated stream's, unless the proxy kept the wall's.
        started=started if config.keep_serving else min(s.time for s in sessions).timestamp() - 1.0,
        ended=time.time()
        if config.keep_serving
        else max(s.time for s in sessions).timestamp() + catalog.feedback.window_seconds + 2.0,
        proxy=proxy if config.keep_serving else None,
        metrics=metrics,
    )
