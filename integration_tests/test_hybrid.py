"""OpenSearch's own hybrid search on the real node: the ``hybrid`` query, the
``normalization-processor`` and the ``score-ranker-processor``, on five documents whose raw
sub-query scores are exact (``constant_score`` boosts), so every fused score can be worked out
by hand. The pipelines are built by ``ltrr.query_plans.hybrid``, the simulator's and the
benchmark's builder, so these tests also pin what that builder sends.

Raw scores of the two sub-queries (worked out from the documents below):

    tags:  b 4 (x 3 + y 1), a 3 (x), e 2 (w), c 1 (y); d does not match
    kinds: c 7 (p 5 + q 2), a 5 (p), b 2 (q), d 1 (r); e does not match
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import pytest
import requests
from opensearchpy import OpenSearch

from ltrr.plugin.ops.cluster import NEURAL_PLUGIN, ClusterInfo
from ltrr.query_plans.hybrid import normalization_pipeline, rrf_pipeline

DOCS = {
    "a": {"tag": ["x"], "kind": ["p"], "vec": [1.0, 0.0]},
    "b": {"tag": ["x", "y"], "kind": ["q"], "vec": [0.0, 1.0]},
    "c": {"tag": ["y"], "kind": ["p", "q"], "vec": [1.0, 1.0]},
    "d": {"tag": [], "kind": ["r"], "vec": [2.0, 2.0]},
    "e": {"tag": ["w"], "kind": [], "vec": [-1.0, 0.0]},
}


def _boosted(field: str, boosts: Mapping[str, float]) -> dict[str, Any]:
    """A document's score is the sum of the boosts of the values it has: exact, no BM25."""
    return {
        "bool": {
            "should": [
                {"constant_score": {"filter": {"term": {field: value}}, "boost": boost}}
                for value, boost in boosts.items()
            ]
        }
    }


TAGS = _boosted("tag", {"x": 3.0, "y": 1.0, "w": 2.0})
KINDS = _boosted("kind", {"p": 5.0, "q": 2.0, "r": 1.0})
RAW_TAGS = {"b": 4.0, "a": 3.0, "e": 2.0, "c": 1.0}
RAW_KINDS = {"c": 7.0, "a": 5.0, "b": 2.0, "d": 1.0}
# What the normalization-processor gives a score its normalization maps to 0.
MIN_SCORE = 0.001


@pytest.fixture
def tiny(client: OpenSearch, cluster: ClusterInfo, index_name: str) -> str:
    # The product's peer needs the plugin: a cluster without it fails here, with its name.
    cluster.require(NEURAL_PLUGIN)
    client.indices.create(
        index=index_name,
        body={
            "settings": {"index": {"knn": True, "number_of_shards": 1, "number_of_replicas": 0}},
            "mappings": {
                "properties": {
                    "tag": {"type": "keyword"},
                    "kind": {"type": "keyword"},
                    "vec": {
                        "type": "knn_vector",
                        "dimension": 2,
                        "method": {"name": "hnsw", "engine": "lucene", "space_type": "l2"},
                    },
                }
            },
        },
    )
    for doc_id, doc in DOCS.items():
        client.index(index=index_name, id=doc_id, body=doc)
    client.indices.refresh(index=index_name)
    return index_name


@pytest.fixture
def pipeline(opensearch_url: str) -> Iterator[Callable[[Mapping[str, Any]], str]]:
    """Creates search pipelines named ``ltrr-it-*``; every one is deleted afterwards."""
    made: list[str] = []

    def create(body: Mapping[str, Any]) -> str:
        name = f"ltrr-it-hybrid-{uuid.uuid4().hex[:10]}"
        reply = requests.put(f"{opensearch_url}/_search/pipeline/{name}", json=body, timeout=30)
        assert reply.status_code == 200, reply.text
        made.append(name)
        return name

    yield create
    for name in made:
        requests.delete(f"{opensearch_url}/_search/pipeline/{name}", timeout=30)


def _hybrid(
    url: str, index: str, pipeline: str | None, queries: Sequence[Mapping[str, Any]], **extra: Any
) -> list[tuple[str, float]]:
    hybrid: dict[str, Any] = {"queries": list(queries), **extra}
    params = {"search_pipeline": pipeline} if pipeline else {}
    reply = requests.post(
        f"{url}/{index}/_search",
        params=params,
        json={"query": {"hybrid": hybrid}, "size": 10, "_source": False},
        timeout=30,
    )
    assert reply.status_code == 200, reply.text
    return [(h["_id"], h["_score"]) for h in reply.json()["hits"]["hits"]]


def _min_max(raw: Mapping[str, float]) -> dict[str, float]:
    low, high = min(raw.values()), max(raw.values())
    return {d: (s - low) / (high - low) or MIN_SCORE for d, s in raw.items()}


def _l2(raw: Mapping[str, float]) -> dict[str, float]:
    norm = math.sqrt(sum(s * s for s in raw.values()))
    return {d: s / norm for d, s in raw.items()}


def _expect(ranked: Sequence[tuple[str, float]], expected: Mapping[str, float]) -> None:
    """The same documents, in the order of the expected scores, each score to float32."""
    order = sorted(expected, key=lambda d: -expected[d])
    assert [d for d, _ in ranked] == order, (ranked, expected)
    for doc_id, score in ranked:
        assert score == pytest.approx(expected[doc_id], rel=1e-5, abs=1e-7), doc_id


def test_the_sub_queries_score_as_worked_out(client: OpenSearch, tiny: str) -> None:
    for query, raw in ((TAGS, RAW_TAGS), (KINDS, RAW_KINDS)):
        hits = client.search(index=tiny, body={"query": query, "_source": False})["hits"]["hits"]
        assert [(h["_id"], h["_score"]) for h in hits] == list(raw.items())


def test_without_a_pipeline_the_hybrid_query_is_not_fused(opensearch_url: str, tiny: str) -> None:
    # The shard keeps one list per sub-query; only a search pipeline turns them into one.
    ids = [d for d, _ in _hybrid(opensearch_url, tiny, None, [TAGS, KINDS])]
    assert ids.count("b") > 1


def test_min_max_then_weighted_arithmetic_mean(opensearch_url, tiny, pipeline) -> None:
    name = pipeline(normalization_pipeline("min_max", "arithmetic_mean", [0.3, 0.7]))
    # tags: b 1, a 2/3, e 1/3, c 0 -> 0.001; kinds: c 1, a 2/3, b 1/6, d 0 -> 0.001.
    # A sub-query that did not find a document gives it 0, and its weight still counts.
    expected = {
        "a": 0.3 * 2 / 3 + 0.7 * 2 / 3,  # 0.6667
        "b": 0.3 * 1 + 0.7 * 1 / 6,  # 0.4167
        "c": 0.3 * MIN_SCORE + 0.7 * 1,  # 0.7003
        "d": 0.7 * MIN_SCORE,  # 0.0007
        "e": 0.3 * 1 / 3,  # 0.1
    }
    norm_tags, norm_kinds = _min_max(RAW_TAGS), _min_max(RAW_KINDS)
    assert expected == pytest.approx(
        {
            d: 0.3 * norm_tags.get(d, 0.0) + 0.7 * norm_kinds.get(d, 0.0)
            for d in sorted({*RAW_TAGS, *RAW_KINDS})
        }
    )
    _expect(_hybrid(opensearch_url, tiny, name, [TAGS, KINDS]), expected)


def test_l2_then_unweighted_arithmetic_mean(opensearch_url, tiny, pipeline) -> None:
    name = pipeline(normalization_pipeline("l2", "arithmetic_mean"))
    tags, kinds = _l2(RAW_TAGS), _l2(RAW_KINDS)  # each raw score over sqrt(30) and sqrt(79)
    expected = {d: (tags.get(d, 0.0) + kinds.get(d, 0.0)) / 2 for d in "abcde"}
    assert expected["c"] == pytest.approx((1 / math.sqrt(30) + 7 / math.sqrt(79)) / 2)
    _expect(_hybrid(opensearch_url, tiny, name, [TAGS, KINDS]), expected)


def test_min_max_then_weighted_harmonic_mean(opensearch_url, tiny, pipeline) -> None:
    name = pipeline(normalization_pipeline("min_max", "harmonic_mean", [0.3, 0.7]))
    # Only the sub-queries that found the document: sum(w) / sum(w / s). A score near 0 drags
    # the mean to it: c (0.001 on tags) falls below e, found by tags alone.
    expected = {
        "a": 1 / (0.3 / (2 / 3) + 0.7 / (2 / 3)),  # 0.6667
        "b": 1 / (0.3 / 1 + 0.7 / (1 / 6)),  # 0.2222
        "c": 1 / (0.3 / MIN_SCORE + 0.7 / 1),  # 0.0033
        "d": MIN_SCORE,
        "e": 1 / 3,
    }
    _expect(_hybrid(opensearch_url, tiny, name, [TAGS, KINDS]), expected)


def test_min_max_then_weighted_geometric_mean(opensearch_url, tiny, pipeline) -> None:
    name = pipeline(normalization_pipeline("min_max", "geometric_mean", [0.3, 0.7]))
    # exp(sum(w ln s) / sum(w)) over the sub-queries that found the document.
    expected = {
        "a": 2 / 3,
        "b": math.exp(0.3 * math.log(1) + 0.7 * math.log(1 / 6)),  # 0.2853
        "c": math.exp(0.3 * math.log(MIN_SCORE) + 0.7 * math.log(1)),  # 0.1259
        "d": MIN_SCORE,
        "e": 1 / 3,
    }
    _expect(_hybrid(opensearch_url, tiny, name, [TAGS, KINDS]), expected)


def test_weights_must_sum_to_one(opensearch_url: str) -> None:
    body = normalization_pipeline("min_max", "arithmetic_mean", [0.3, 0.7])
    body["phase_results_processors"][0]["normalization-processor"]["combination"]["parameters"][
        "weights"
    ] = [0.3, 0.6]
    name = f"ltrr-it-hybrid-{uuid.uuid4().hex[:10]}"
    reply = requests.put(f"{opensearch_url}/_search/pipeline/{name}", json=body, timeout=30)
    assert reply.status_code == 400
    assert "sum of weights for combination must be equal to 1.0" in reply.text


def test_rrf_with_a_rank_constant(opensearch_url, tiny, pipeline) -> None:
    name = pipeline(rrf_pipeline(10))
    # ranks, tags: b 1, a 2, e 3, c 4; kinds: c 1, a 2, b 3, d 4. Score: sum 1 / (10 + rank).
    expected = {
        "a": 1 / 12 + 1 / 12,  # 0.16667
        "b": 1 / 11 + 1 / 13,  # 0.16783: first, by agreement of two good ranks
        "c": 1 / 14 + 1 / 11,  # 0.16234
        "d": 1 / 14,
        "e": 1 / 13,
    }
    _expect(_hybrid(opensearch_url, tiny, name, [TAGS, KINDS]), expected)


def test_rrf_constant_where_the_docs_put_it_is_ignored(opensearch_url, tiny, pipeline) -> None:
    # 2.19.1 accepts combination.rank_constant and runs with 60 (neural-search #1370, #1418):
    # why rrf_pipeline writes combination.parameters.rank_constant. If this fails, the node
    # reads the documented spelling and the builder can follow the documentation.
    documented = {
        "score-ranker-processor": {"combination": {"technique": "rrf", "rank_constant": 10}}
    }
    name = pipeline({"phase_results_processors": [documented]})
    ranked = dict(_hybrid(opensearch_url, tiny, name, [TAGS, KINDS]))
    assert ranked["a"] == pytest.approx(2 / 62, rel=1e-5)
    assert ranked["b"] == pytest.approx(1 / 61 + 1 / 63, rel=1e-5)


def test_rrf_takes_no_weights_in_2_19(opensearch_url: str) -> None:
    body = rrf_pipeline(10)
    combination = body["phase_results_processors"][0]["score-ranker-processor"]["combination"]
    combination["parameters"]["weights"] = [0.5, 0.5]
    name = f"ltrr-it-hybrid-{uuid.uuid4().hex[:10]}"
    reply = requests.put(f"{opensearch_url}/_search/pipeline/{name}", json=body, timeout=30)
    if reply.status_code == 200:  # a later version that weighs RRF: nothing to delete after
        requests.delete(f"{opensearch_url}/_search/pipeline/{name}", timeout=30)
    assert reply.status_code == 400
    assert "supported parameters are [rank_constant]" in reply.text


def test_pagination_depth_caps_every_sub_query(opensearch_url, tiny, pipeline) -> None:
    name = pipeline(normalization_pipeline("min_max", "arithmetic_mean", [0.5, 0.5]))
    # Two per sub-query: tags b 4, a 3 (a -> 0.001); kinds c 7, a 5 (a -> 0.001). Nothing else
    # is retrieved, and min-max runs over what was.
    expected = {"b": 0.5 * 1, "c": 0.5 * 1, "a": 0.5 * MIN_SCORE + 0.5 * MIN_SCORE}
    ranked = _hybrid(opensearch_url, tiny, name, [TAGS, KINDS], pagination_depth=2)
    assert sorted(d for d, _ in ranked) == ["a", "b", "c"]
    assert dict(ranked) == pytest.approx(expected, rel=1e-5)


def test_a_knn_sub_query_retrieves_k(opensearch_url, tiny, pipeline) -> None:
    name = pipeline(normalization_pipeline("min_max", "arithmetic_mean"))
    knn = {"knn": {"vec": {"vector": [1.0, 0.2], "k": 2}}}
    # Squared distances to (1, 0.2): a 0.04, c 0.64, b 1.64, e 4.04, d 4.24: k=2 keeps a and c
    # (min-max: a 1, c 0 -> 0.001). d, found by neither sub-query, is not returned.
    tags = _min_max(RAW_TAGS)
    expected = {
        "a": (tags["a"] + 1.0) / 2,
        "b": tags["b"] / 2,
        "c": (tags["c"] + MIN_SCORE) / 2,
        "e": tags["e"] / 2,
    }
    _expect(_hybrid(opensearch_url, tiny, name, [TAGS, knn]), expected)
