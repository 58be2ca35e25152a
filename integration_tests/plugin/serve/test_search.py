"""Intercepted searches through the real proxy, checked against the real node.

The expected order is computed here from first principles: each arm's query is written out by
hand in plain DSL, run directly on the node, and fused with the RRF formula.
"""

from __future__ import annotations

import math
import time

import numpy as np
import pytest
import requests

from ltrr.bandit.decision import ArmSpec
from ltrr.bandit.draw import fallback_propensity
from ltrr.bandit.policies import make_policy
from ltrr.bandit.policies.base import parse_policy_config
from ltrr.query_plans.catalog import BUILTIN_TEMPLATES
from ltrr.query_plans.plan import memory_variables
from ltrr.query_plans.templates import TemplateRenderer

RRF_K = 60


def _search(url, target, body, **params):
    response = requests.post(f"{url}/{target}/_search", json=body, params=params, timeout=60)
    assert response.status_code == 200, response.text
    return response


def _direct_arms(client, index, query, vector, size=5):
    """Every arm's query by hand, exactly as the templates mean it."""
    arms = {
        "lexical": {"multi_match": {"query": query, "fields": ["name^3", "tags"]}},
        "dense": {"knn": {"embedding": {"vector": vector, "k": size}}},
        "popular": {
            "bool": {
                "must": [{"rank_feature": {"field": "popularity"}}],
                "filter": [
                    {"multi_match": {"query": query, "fields": ["name", "tags"], "operator": "or"}}
                ],
            }
        },
        "memory": TemplateRenderer().render(
            BUILTIN_TEMPLATES / "memory.json.j2", {"memory": memory_variables(None, query)}
        ),
    }
    out = {}
    for arm, clause in arms.items():
        hits = client.search(index=index, body={"query": clause, "size": size})["hits"]["hits"]
        out[arm] = [(h["_id"], h["_score"]) for h in hits]
    return out


def _rrf(results):
    """RRF, ties broken as documented: best rank, then more arms, then the id."""
    scores, best, arms = {}, {}, {}
    for hits in results.values():
        for rank, (doc, _) in enumerate(hits, start=1):
            scores[doc] = scores.get(doc, 0.0) + 1.0 / (RRF_K + rank)
            best[doc] = min(best.get(doc, rank), rank)
            arms[doc] = arms.get(doc, 0) + 1
    order = sorted(scores, key=lambda d: (-scores[d], best[d], -arms[d], d))
    return [(doc, scores[doc]) for doc in order]


@pytest.mark.parametrize("query", ["electronic", "house", "jazz trumpet"])
def test_static_plan_fuses_all_four_arm_kinds_exactly(client, music, proxy, embed, query):
    alias = f"{music.name}-static"
    expected_arms = _direct_arms(client, music.name, query, embed(query))
    expected = _rrf(expected_arms)
    response = _search(
        proxy.url, alias, {"size": 20, "ext": {"ltrr": {"query": query, "explain": True}}}
    )
    body = response.json()
    got = [(h["_id"], h["_score"]) for h in body["hits"]["hits"]]
    assert [doc for doc, _ in got] == [doc for doc, _ in expected]
    for (_, score), (_, want) in zip(got, expected, strict=True):
        assert math.isclose(score, want, rel_tol=1e-9)
    ltrr = body["ext"]["ltrr"]
    assert response.headers["X-LTRR-Decision-Id"] == ltrr["decision_id"]
    assert body["hits"]["total"] == {"value": len(expected), "relation": "eq"}
    for arm, hits in expected_arms.items():
        info = ltrr["arms"][arm]
        assert (info["included"], info["size"], info["propensity"]) == (True, 5, 1.0)
        assert info["hits"] == len(hits)
        assert info["status"] == "ok"
    assert ltrr["arms"]["memory"]["hits"] == 0  # filled by the learning loop later
    # Provenance: each hit names every arm that found it, with that arm's rank and raw score.
    for hit in body["hits"]["hits"]:
        provenance = {(p["arm"], p["rank"]) for p in hit["_ltrr"]["provenance"]}
        expected_provenance = {
            (arm, rank)
            for arm, hits in expected_arms.items()
            for rank, (doc, _) in enumerate(hits, start=1)
            if doc == hit["_id"]
        }
        assert provenance == expected_provenance
        for p in hit["_ltrr"]["provenance"]:
            raw = dict(expected_arms[p["arm"]])[hit["_id"]]
            assert math.isclose(p["score"], raw, rel_tol=1e-6)


def test_linucb_propensities_are_the_policys_exact_probabilities(proxy, music):
    alias = f"{music.name}-linucb"
    body = _search(
        proxy.url,
        alias,
        {"ext": {"ltrr": {"query": "trip-hop", "context": {"segment": "a"}, "explain": True}}},
    ).json()
    ltrr = body["ext"]["ltrr"]
    assert ltrr["policy"] == "linucb"
    features = np.array(list(ltrr["features"].values()))
    # A fresh policy with the catalog's settings gives the same probabilities for this context,
    # as long as no feedback has arrived (learning is the next issue).
    arms = [ArmSpec(a, 5, 5) for a in ("lexical", "dense", "popular", "memory")]
    policy = make_policy(
        parse_policy_config("linucb", {"alpha": 1.0, "min_probability": 0.05}),
        arms,
        len(features),
        0,
    )
    probabilities, _ = policy.probabilities(features)
    # The most probable arm also stands in when the draw includes none, so its logged
    # propensity is its marginal: p_m + (1 - p_m) * prod(1 - p_j) over the others.
    top = int(np.argmax(probabilities))
    expected = [float(p) for p in probabilities]
    expected[top] = fallback_propensity(expected, top)
    assert any(info["included"] for info in ltrr["arms"].values())
    for arm, want in zip(ltrr["arms"], expected, strict=True):
        info = ltrr["arms"][arm]
        assert math.isclose(info["propensity"], want, rel_tol=1e-9)
        assert 0.05 <= info["propensity"] <= 1.0
        assert info["size"] == (5 if info["included"] else 0)
        if not info["included"]:
            assert "hits" not in info


def test_pages_come_from_one_ranked_list(proxy, music):
    alias = f"{music.name}-linucb"
    first = _search(proxy.url, alias, {"size": 3, "ext": {"ltrr": {"query": "electronic"}}}).json()
    decision_id = first["ext"]["ltrr"]["decision_id"]
    # Next page by decision_id, then by UBI's query_id, then by the same query within the TTL.
    second = _search(
        proxy.url,
        alias,
        {
            "size": 3,
            "from": 3,
            "ext": {"ltrr": {"query": "electronic", "decision_id": decision_id}},
        },
    ).json()
    third = _search(
        proxy.url,
        alias,
        {
            "size": 3,
            "from": 6,
            "query": {"match": {"name": "electronic"}},
            "ext": {"ubi": {"query_id": decision_id}},
        },
    ).json()
    # A later page without any id continues the list of the same query, context and filters.
    fourth = _search(
        proxy.url, alias, {"size": 3, "from": 9, "ext": {"ltrr": {"query": "electronic"}}}
    ).json()
    pages = [[h["_id"] for h in page["hits"]["hits"]] for page in (first, second, third, fourth)]
    flat = [doc for page in pages for doc in page]
    assert len(flat) == len(set(flat)), "pages overlap"
    for page in (second, third, fourth):
        assert page["ext"]["ltrr"]["decision_id"] == decision_id
        assert page["ext"]["ltrr"]["page"]["cached"] is True
    # A first page is a new search: a new decision, so that repeated queries keep exploring.
    again = _search(proxy.url, alias, {"size": 3, "ext": {"ltrr": {"query": "electronic"}}}).json()
    assert again["ext"]["ltrr"]["decision_id"] != decision_id
    assert again["ext"]["ltrr"]["page"]["cached"] is False


def test_ubi_query_id_names_a_new_decision(proxy, music):
    body = _search(
        proxy.url,
        f"{music.name}-linucb",
        {"query": {"match": {"name": "jazz"}}, "ext": {"ubi": {"query_id": "ubi-it-1"}}},
    )
    assert body.json()["ext"]["ltrr"]["decision_id"] == "ubi-it-1"
    assert body.headers["X-LTRR-Decision-Id"] == "ubi-it-1"


def test_callers_filters_source_and_post_filter_carry_into_every_arm(proxy, music):
    body = _search(
        proxy.url,
        f"{music.name}-static",
        {
            "query": {"bool": {"filter": [{"terms": {"genre": ["electronic", "trip-hop"]}}]}},
            "post_filter": {"bool": {"must_not": {"ids": {"values": ["boards-of-canada"]}}}},
            "_source": ["name"],
            "size": 20,
            "ext": {"ltrr": {"query": "electronic music"}},
        },
    ).json()
    hits = body["hits"]["hits"]
    assert hits
    allowed = {"daft-punk", "aphex-twin", "bjork", "portishead", "massive-attack"}
    assert {h["_id"] for h in hits} <= allowed
    assert all(set(h["_source"]) == {"name"} for h in hits)


def test_a_dead_arm_leaves_the_others_answering(proxy, music):
    body = _search(
        proxy.url, f"{music.name}-faulty", {"ext": {"ltrr": {"query": "electronic"}}}
    ).json()
    arms = body["ext"]["ltrr"]["arms"]
    assert arms["missing_index"]["status"] == "failed"
    assert "index_not_found" in arms["missing_index"]["error"]
    assert arms["broken"]["status"] == "failed"
    assert "no_such_param" in arms["broken"]["error"]
    assert arms["lexical"]["status"] == "ok"
    assert body["hits"]["hits"]
    assert body["ext"]["ltrr"]["fallback"] is None
    stats = requests.get(f"{proxy.url}/_ltrr/stats", timeout=10).json()
    assert stats["arm_failures"]["missing_index"] >= 1


def test_a_missing_ltr_model_keeps_the_fused_order_and_says_so(proxy, music):
    query = {"size": 20, "ext": {"ltrr": {"query": "electronic"}}}
    reranked = _search(proxy.url, f"{music.name}-rerank", query).json()
    fused = _search(proxy.url, f"{music.name}-static", query).json()
    rerank = reranked["ext"]["ltrr"]["rerank"]
    assert rerank["status"] == "failed"
    assert rerank["model"] == "ltrr_it_no_such_model"
    assert [h["_id"] for h in reranked["hits"]["hits"]] == [h["_id"] for h in fused["hits"]["hits"]]
    stats = requests.get(f"{proxy.url}/_ltrr/stats", timeout=10).json()
    assert stats["rerank_failures"] >= 1


def test_query_text_cannot_break_out_of_a_template(proxy, music):
    nasty = '"}}, "match_all": {}, "x": {"'
    body = _search(
        proxy.url, f"{music.name}-static", {"ext": {"ltrr": {"query": nasty, "explain": True}}}
    ).json()
    assert body["ext"]["ltrr"]["arms"]["lexical"]["status"] == "ok"
    # Had the text escaped into the DSL, match_all would have returned every document.
    assert body["hits"]["total"]["value"] < 12


def test_implicit_interception_of_a_plain_match(proxy, music):
    response = _search(
        proxy.url, f"{music.name}-static", {"query": {"match": {"name": "radiohead"}}}
    )
    body = response.json()
    assert "ltrr" in body["ext"]
    assert body["hits"]["hits"][0]["_id"] == "radiohead"
    q = requests.get(
        f"{proxy.url}/{music.name}-static/_search", params={"q": "radiohead"}, timeout=30
    )
    assert q.json()["ext"]["ltrr"]["decision_id"]


def test_aggregations_pass_through_untouched(proxy, opensearch_url, music):
    body = {
        "size": 0,
        "aggs": {"genres": {"terms": {"field": "genre"}}},
        "query": {"match": {"name": "x"}},
    }
    via_proxy = _search(proxy.url, f"{music.name}-static", body).json()
    direct = _search(opensearch_url, f"{music.name}-static", body).json()
    via_proxy.pop("took")
    direct.pop("took")
    assert via_proxy == direct


def test_malformed_json_is_a_400_in_opensearch_format(proxy, music):
    response = requests.post(
        f"{proxy.url}/{music.name}-static/_search",
        data=b'{"query": ',
        headers={"Content-Type": "application/json"},
        timeout=10,
    )
    assert response.status_code == 400
    error = response.json()
    assert error["status"] == 400
    assert error["error"]["type"] == "parse_exception"
    assert error["error"]["root_cause"][0]["type"] == "parse_exception"


def test_caps_answer_413_in_opensearch_format(proxy):
    lines = b"{}\n{}\n" * 60  # 120 lines > the proxy's cap of 100
    response = requests.post(
        f"{proxy.url}/_msearch",
        data=lines,
        headers={"Content-Type": "application/x-ndjson"},
        timeout=10,
    )
    assert response.status_code == 413
    assert response.json()["error"]["type"] == "content_too_long_exception"
    big = b'{"query": {"match_all": {}}, "x": "' + b"a" * (2 * 1024 * 1024) + b'"}'
    response = requests.post(
        f"{proxy.url}/any-index/_search",
        data=big,
        headers={"Content-Type": "application/json"},
        timeout=30,
    )
    assert response.status_code == 413
    assert response.json()["status"] == 413


def test_entity_features_come_from_the_catalogs_entity_field(proxy, music):
    """The dictionary loads in the background from name.keyword; then exact names light up."""
    alias = f"{music.name}-linucb"
    deadline = time.monotonic() + 20
    while True:
        features = _search(
            proxy.url,
            alias,
            {
                "ext": {
                    "ltrr": {
                        "query": "Massive Attack",
                        "explain": True,
                        "decision_id": f"ent-{time.monotonic()}",
                    }
                }
            },
        ).json()["ext"]["ltrr"]["features"]
        if features["entity_exact"] == 1.0:
            break
        assert time.monotonic() < deadline, "the entity dictionary never loaded"
        time.sleep(0.2)
    partial = _search(
        proxy.url, alias, {"ext": {"ltrr": {"query": "massive", "explain": True}}}
    ).json()["ext"]["ltrr"]["features"]
    assert (partial["entity_exact"], partial["entity_prefix"]) == (0.0, 1.0)
    stats = requests.get(f"{proxy.url}/_ltrr/stats", timeout=10).json()
    assert any(c["entities"] == 12 for c in stats["catalogs"].values())
