"""The native hybrid contender against a small in-process HTTP node that records what it is
sent: one ``_search`` with the pipeline, the rendered arms as sub-queries, and a session
judged like any other (expected clicks, recall, nDCG by hand)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from ltrr.plugin.errors import LtrrError
from ltrr.plugin.ops.data.beir import BeirDataset
from ltrr.plugin.ops.simulate.clicks import PositionBasedModel
from ltrr.plugin.ops.simulate.hybrid import HybridSearch, HybridSearcher
from ltrr.plugin.ops.simulate.run import SimulationConfig, _one_hybrid_session
from ltrr.plugin.ops.simulate.stream import Session
from ltrr.plugin.ops.simulate.users import UserConfig
from ltrr.query_plans.catalog import Catalog, load_catalog

CATALOG = """\
target: books
budget: 40
policy: {name: static}
arms:
  - {name: lexical, template: multi_match.json.j2, params: {fields: [title]},
     size: {min: 5, max: 20}}
  - {name: phrase, template: multi_match.json.j2, params: {fields: [title], type: phrase},
     size: {min: 0, max: 10}}
fusion: {method: rrf, k: 60}
fallback: [{arm: lexical, size: 5}]
"""


@pytest.fixture
def catalog(tmp_path: Path) -> Catalog:
    (tmp_path / "books.yml").write_text(CATALOG, encoding="utf-8")
    return load_catalog(tmp_path / "books.yml")


def _session(text: str = "dune") -> Session:
    return Session(
        index=3,
        query_id="q1",
        text=text,
        intent="entity",
        segment="a",
        time=datetime(2024, 1, 1, tzinfo=UTC),
        context={"segment": "a"},
        users=UserConfig(segment_eta={}),
    )


Node = tuple[list[tuple[str, dict[str, Any]]], Callable[[], Awaitable[None]], str]


def _node(answer: dict[str, Any], status: int = 200) -> Callable[[], Awaitable[Node]]:
    """A node that records (path with query string, JSON body) and gives ``answer``."""

    async def start() -> Node:
        seen: list[tuple[str, dict[str, Any]]] = []

        async def search(request: web.Request) -> web.Response:
            seen.append((request.path_qs, orjson.loads(await request.read())))
            return web.json_response(answer, status=status)

        app = web.Application()
        app.router.add_post("/{index}/_search", search)
        server = TestServer(app)
        await server.start_server()
        return seen, server.close, str(server.make_url("")).rstrip("/")

    return start


def _hits(*ids: str) -> dict[str, Any]:
    hits = [{"_index": "books-copy", "_id": i, "_score": 1.0} for i in ids]
    return {"timed_out": False, "_shards": {"total": 1, "failed": 0}, "hits": {"hits": hits}}


SEARCH = HybridSearch("books-copy", "books-copy-pipeline", ("lexical", "phrase"), 20)


def _search(catalog: Catalog, node: Callable[[], Awaitable[Node]], search: HybridSearch = SEARCH):
    async def go() -> tuple[Any, list[tuple[str, dict[str, Any]]]]:
        seen, close, url = await node()
        try:
            async with aiohttp.ClientSession() as http:
                answer = await HybridSearcher(catalog, url, None).search(
                    http, search, _session(), 4
                )
        finally:
            await close()
        return answer, seen

    return asyncio.run(go())


def test_one_search_with_the_pipeline_and_every_arm(catalog: Catalog) -> None:
    answer, seen = _search(catalog, _node(_hits("b1", "b2", "b3")))
    ((path, body),) = seen
    assert path == "/books-copy/_search?search_pipeline=books-copy-pipeline"
    assert body == {
        "query": {
            "hybrid": {
                "queries": [
                    {"multi_match": {"query": "dune", "fields": ["title"]}},
                    {"multi_match": {"query": "dune", "fields": ["title"], "type": "phrase"}},
                ],
                "pagination_depth": 20,
            }
        },
        "size": 4,
        "_source": False,
    }
    assert answer.ids == ["b1", "b2", "b3"]
    assert answer.retrieved == 40  # two sub-queries, 20 each
    assert answer.latency_ms > 0


@pytest.mark.parametrize(
    ("answer", "status", "message"),
    [
        ({"error": "no such pipeline"}, 404, "answered 404"),
        ({**_hits("b1"), "_shards": {"total": 1, "failed": 1}}, 200, "a partial answer"),
        ({**_hits("b1"), "timed_out": True}, 200, "a partial answer"),
    ],
)
def test_errors_and_partial_answers_stop_the_run(
    catalog: Catalog, answer: dict[str, Any], status: int, message: str
) -> None:
    with pytest.raises(LtrrError, match=message):
        _search(catalog, _node(answer, status))


def test_sub_queries_must_be_the_pipelines(catalog: Catalog) -> None:
    # The pipeline was made for three sub-queries: two would put its weights on wrong arms.
    other = HybridSearch("books-copy", "p", ("lexical", "phrase", "dense"), 20)
    with pytest.raises(LtrrError, match="its pipeline"):
        _search(catalog, _node(_hits("b1")), other)


def test_a_hybrid_session_is_judged_like_any_other(catalog: Catalog, tmp_path: Path) -> None:
    data = BeirDataset([], {}, {"q1": {"b1": 1, "b3": 1, "b9": 1}}, "test", tmp_path)
    # No noise, top grade 1, eta 1: rank 1 (b1, relevant) is examined and clicked for sure,
    # rank 2 (x, unjudged) never attracts: expected clicks 1, the click is rank 1.
    clicks = PositionBasedModel(eta=1.0, noise=0.0, g_max=1)
    config = SimulationConfig(catalog.path, tmp_path, 1, page=2, k=4, seed=5)

    async def go() -> Any:
        seen, close, url = await _node(_hits("b1", "x", "b3", "y"))()
        try:
            async with aiohttp.ClientSession() as http:
                searcher = HybridSearcher(catalog, url, None)
                record = await _one_hybrid_session(
                    http, searcher, SEARCH, _session(), data, clicks, config
                )
        finally:
            await close()
        return record, seen

    record, seen = asyncio.run(go())
    (_, body), *more = seen
    assert not more
    assert body["size"] == 4  # the page and the top K in one search
    assert (record.reward, record.expected_reward) == (1.0, 1.0)
    assert record.recall == pytest.approx(2 / 3)  # b1 and b3 of three in the top 4
    # Page [b1, x]: DCG 1; ideal [1, 1, 1]: 1 + 1/log2(3) + 1/2.
    assert record.ndcg == pytest.approx(1 / (1 + 1 / 1.584962500721156 + 0.5))
    assert (record.arms, record.retrieved) == (("lexical", "phrase"), 40)
    assert (record.session, record.query, record.intent) == (3, "dune", "entity")
