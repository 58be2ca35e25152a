"""``simulate`` end to end on a slice of the music benchmark: a real ``ltrr serve`` process, the
real node, clicks back through UBI; then off-policy estimates checked against the simulator.
OpenSearch's own hybrid search (``hybrid:rrf``) runs beside them, straight to the node, and its
pages are checked against RRF recomputed from each arm's own list.
"""

from __future__ import annotations

import asyncio
import os
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from opensearchpy import OpenSearch

from integration_tests.plugin.conftest import model_dir
from ltrr.bandit.features import EntityDictionary
from ltrr.plugin.learn.bulk import DECISIONS_INDEX, EVENTS_INDEX
from ltrr.plugin.ops.data.beir import read_beir, write_beir
from ltrr.plugin.ops.data.index import catalog_embedder
from ltrr.plugin.ops.data.music import build_music
from ltrr.plugin.ops.offpolicy import run_ope
from ltrr.plugin.ops.simulate.report import simulation_report
from ltrr.plugin.ops.simulate.run import Simulation, SimulationConfig, simulate
from ltrr.query_plans.catalog import load_catalog
from ltrr.query_plans.plan import SearchInput, build_plan
from ltrr.query_plans.templates import TemplateRenderer

LASTFM = Path(
    os.environ.get("LTRR_LASTFM_SOURCE")
    or Path(__file__).resolve().parents[4] / "shared" / "datasets" / "lastfm-hetrec2k"
)
CATALOG = Path(__file__).resolve().parents[3] / "query_plans" / "catalogs" / "music.yml"
SESSIONS = 300
POLICIES = ("linucb", "static", "only:lexical", "hybrid:rrf", "oracle")
ARMS = ("lexical", "name_ngram", "dense", "popular", "memory")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _slice(full: Path, out: Path) -> None:
    """40 entity, 10 head and the 8 narrowest topic queries, their artists and 1,500 others."""
    data = read_beir(full)
    by_intent: dict[str, list[str]] = {}
    for query in data.queries.values():
        by_intent.setdefault(str(query.meta["intent"]), []).append(query.id)
    topics = sorted(by_intent["topic"], key=lambda q: len(data.qrels[q]))[:8]
    chosen = by_intent["entity"][:40] + by_intent["head"][:10] + topics
    keep = {doc for q in chosen for doc in data.qrels[q]}
    keep |= {doc["_id"] for doc in data.corpus[::12][:1500]}
    corpus = [doc for doc in data.corpus if doc["_id"] in keep]
    write_beir(
        out,
        corpus,
        [data.queries[q] for q in chosen],
        {q: {d: g for d, g in data.qrels[q].items() if d in keep} for q in chosen},
    )


@pytest.fixture(scope="module")
def simulation(
    opensearch_url: str, client: OpenSearch, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Simulation, Path, Path]]:
    if not (LASTFM / "artists.dat").is_file() and not LASTFM.is_file():
        pytest.skip(f"no HetRec Last.fm files at {LASTFM} (set LTRR_LASTFM_SOURCE)")
    model_dir()  # skips without the sentence model
    root = tmp_path_factory.mktemp("simulate")
    build_music(LASTFM, root / "music")
    _slice(root / "music", root / "slice")
    target = f"ltrr-it-sim-{uuid.uuid4().hex[:8]}"
    catalog = root / "music.yml"
    # Fixed fusion weights: with by_policy the logged pages depend on the logger's scores, and
    # no estimate for another policy could be checked against its on-policy value.
    text = CATALOG.read_text().replace("target: music", f"target: {target}", 1)
    catalog.write_text(text.replace("  by_policy: true\n", ""))
    config = SimulationConfig(
        catalog=catalog,
        dataset=root / "slice",
        sessions=SESSIONS,
        policies=POLICIES,
        seed=3,
        opensearch=opensearch_url,
        listen=f"127.0.0.1:{_free_port()}",
        work_dir=root / "work",
        calibration_queries=20,
        progress=False,
        record_candidates=True,
    )
    result = asyncio.run(simulate(config, print))
    yield result, catalog, root
    for name in [target, *(t for ts in result.targets.values() for t in ts)]:
        client.indices.delete(index=f"{name}*", ignore_unavailable=True)


def test_every_policy_sees_the_same_stream(simulation):
    result, _, _ = simulation
    assert [r.name for r in result.runs] == list(POLICIES)
    first = result.runs[0]
    for run in result.runs:
        assert len(run.sessions) == SESSIONS
        assert [s.query for s in run.sessions] == [s.query for s in first.sessions]
        for s in run.sessions:
            assert 0.0 <= s.ndcg <= 1.0
            assert s.recall is None or 0.0 <= s.recall <= 1.0
            assert s.reward >= 0
            assert s.expected_reward >= 0
            assert s.latency_ms > 0


def test_static_plans_ask_what_the_catalog_says(simulation):
    result, _, _ = simulation
    runs = {r.name: r for r in result.runs}
    # lexical alone at its max size; every arm at the catalog's budget of 120.
    assert {(s.arms, s.retrieved) for s in runs["only:lexical"].sessions} == {(("lexical",), 100)}
    assert {(s.arms, s.retrieved) for s in runs["static"].sessions} == {(ARMS, 120)}
    # The hybrid query: every arm as a sub-query, 120 // 5 = 24 each (pagination_depth, k).
    assert {(s.arms, s.retrieved) for s in runs["hybrid:rrf"].sessions} == {(ARMS, 120)}
    # The oracle asks, per intent, the set calibration found best, and no other.
    assert set(result.oracle_sets) == {"entity", "head", "topic"}
    for s in runs["oracle"].sessions:
        assert s.arms == result.oracle_sets[s.intent][0]


def test_clicks_came_back_through_ubi_and_were_learnt(simulation, client: OpenSearch):
    result, _, _ = simulation
    (copy,) = result.targets["linucb"]
    client.indices.refresh(index=EVENTS_INDEX)
    logged = client.count(
        index=EVENTS_INDEX,
        body={
            "query": {"bool": {"filter": [{"term": {"target": copy}}, {"term": {"source": "ubi"}}]}}
        },
    )["count"]
    clicks = sum(s.reward for s in result.runs[0].sessions)  # a click is worth 1 in music.yml
    assert clicks > 0
    assert logged == clicks
    # ...and the learner changed its mind: it stopped asking every arm every time.
    early = sum(len(s.arms) for s in result.runs[0].sessions[:50]) / 50
    late = sum(len(s.arms) for s in result.runs[0].sessions[-50:]) / 50
    assert late < early


def test_off_policy_estimates_cover_the_on_policy_value(simulation, opensearch_url):
    result, catalog, root = simulation
    runs = {r.name: r for r in result.runs}
    on_policy = sum(s.reward for s in runs["static"].sessions) / SESSIONS
    ope = run_ope(
        DECISIONS_INDEX,
        target_catalog=catalog,
        target_policy="static",
        opensearch=opensearch_url,
        seed=5,
        report=root / "ope.html",
        logged_target=result.targets["linucb"][0],
    )
    # Every decision the learner made is read back; a search a loaded machine answered with
    # the static fallback is logged as not learnable, counted by the simulator, and skipped.
    fallbacks = sum(result.fallbacks.get("linucb", {}).values())
    assert fallbacks <= SESSIONS // 100, result.fallbacks
    assert (ope.read, ope.skipped) == (SESSIONS, fallbacks), result.notes
    assert ope.evaluation.n == SESSIONS - fallbacks
    assert ope.caveats == ()
    for estimate in ope.evaluation.estimates:
        assert estimate.low <= on_policy <= estimate.high, (estimate, on_policy)
        assert estimate.ess > 10
    assert (root / "ope.html").stat().st_size > 1000


def test_the_report_draws_every_run(simulation):
    result, _, root = simulation
    path = simulation_report(result.runs, root / "report.html", k=100, notes=result.notes)
    html = path.read_text()
    assert html.count("data:image/png;base64,") >= 5
    for name in POLICIES:
        assert name in html


def test_the_hybrid_contender_is_rrf_over_each_arms_own_list(simulation, opensearch_url):
    """Each arm's top 24 on the hybrid copy, asked one by one (the proxy's own plan, through
    _msearch), fused by hand with 1 / (60 + rank): the recorded top 100 has those scores, in
    that order (ties may fall either way, so positions are compared by score)."""
    result, catalog_path, _ = simulation
    (copy,) = result.targets["hybrid:rrf"]
    catalog = load_catalog(catalog_path)
    embedder = catalog_embedder(catalog)
    assert embedder is not None
    run = next(r for r in result.runs if r.name == "hybrid:rrf")
    checked = 0
    try:
        for record in run.sessions[:8]:
            request = SearchInput(
                target=copy,
                query=record.query,
                query_norm=EntityDictionary.normalize(record.query),
                source=False,
                vector=embedder.embed(record.query),
            )
            plan = build_plan(
                catalog, dict.fromkeys(ARMS, 24), request, TemplateRenderer(), timeout_ms=30_000
            )
            reply = requests.post(
                f"{opensearch_url}/_msearch",
                data=plan.ndjson(),
                headers={"Content-Type": "application/x-ndjson"},
                timeout=60,
            )
            assert reply.status_code == 200, reply.text
            fused: dict[str, float] = {}
            for answer in reply.json()["responses"]:
                assert answer.get("status", 200) == 200, answer
                for rank, hit in enumerate(answer["hits"]["hits"], start=1):
                    fused[hit["_id"]] = fused.get(hit["_id"], 0.0) + 1.0 / (60 + rank)
            best = sorted(fused.values(), reverse=True)[:100]
            assert len(record.candidates) == len(best)
            for position, doc_id in enumerate(record.candidates):
                assert fused[doc_id] == pytest.approx(best[position], rel=1e-5), (record, position)
            checked += 1
    finally:
        embedder.close()
    assert checked == 8


def test_the_hybrid_contender_learns_nothing_and_cleans_up(simulation, client, opensearch_url):
    result, _, _ = simulation
    (copy,) = result.targets["hybrid:rrf"]
    # It never went through the proxy: no decision, no event for its copy (as there are for a
    # contender that did, under the same kind of name).
    (learner,) = result.targets["linucb"]
    for index in (DECISIONS_INDEX, EVENTS_INDEX):
        client.indices.refresh(index=index)

        def count(target: str, index: str = index) -> int:
            body = {"query": {"term": {"target": target}}}
            return int(client.count(index=index, body=body)["count"])

        assert count(copy) == 0, index
        assert count(learner) > 0, index
    # Its search pipeline (named after its copy) was removed with the run.
    reply = requests.get(f"{opensearch_url}/_search/pipeline/{copy}", timeout=30)
    assert reply.status_code == 404
    assert any("hybrid:rrf" in note and "pagination_depth" in note for note in result.notes)


def test_the_same_seed_gives_the_same_table(simulation, opensearch_url):
    """Two more runs of one stream through two proxies, on fresh copies of the same index,
    while the machine does other work: every decision, page and click is the same (simulated
    time, feedback in a fixed order, copies refreshed only by the simulated clock)."""
    _, catalog, root = simulation
    runs = []
    for name in ("first", "second"):
        config = SimulationConfig(
            catalog=catalog,
            dataset=root / "slice",
            sessions=150,
            policies=("safe_plans", "linucb", "static"),
            seed=5,
            opensearch=opensearch_url,
            listen=f"127.0.0.1:{_free_port()}",
            work_dir=root / f"det-{name}",
            progress=False,
        )
        result = asyncio.run(simulate(config, print))
        runs.append(
            {
                run.name: [
                    (s.query, s.arms, s.retrieved, s.reward, s.expected_reward, s.ndcg)
                    for s in run.sessions
                ]
                for run in result.runs
            }
        )
    assert runs[0] == runs[1]
    assert len(runs[0]["safe_plans"]) == 150
