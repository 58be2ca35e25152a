"""The LTR rerank through the proxy, against the Learning-to-Rank plugin.

The plugin is a requirement of these tests, not a reason to skip them (the local node installs
it from ``LTRR_PLUGIN_DIR``). The missing-model path is in test_search.
"""

from __future__ import annotations

import json

import pytest
import requests

from ltrr.plugin.ops.cluster import LTR_PLUGIN


@pytest.fixture
def ltr_model(cluster, client, music):
    cluster.require(LTR_PLUGIN)
    if not client.transport.perform_request("GET", "/_ltr").get("stores", {}).get("_default_"):
        client.transport.perform_request("PUT", "/_ltr")
    featureset = music.ltr_model + "_features"
    client.transport.perform_request(
        "POST",
        f"/_ltr/_featureset/{featureset}",
        body={
            "featureset": {
                "features": [
                    {
                        "name": "tags_match",
                        "params": ["keywords"],
                        "template_language": "mustache",
                        "template": {"match": {"tags": "{{keywords}}"}},
                    }
                ]
            }
        },
    )
    model = music.ltr_model
    client.transport.perform_request(
        "POST",
        f"/_ltr/_featureset/{featureset}/_createmodel",
        body={
            "model": {
                "name": model,
                "model": {"type": "model/linear", "definition": json.dumps({"tags_match": 1.0})},
            }
        },
    )
    yield model
    client.transport.perform_request("DELETE", f"/_ltr/_model/{model}")
    client.transport.perform_request("DELETE", f"/_ltr/_featureset/{featureset}")


def test_reranked_order_is_the_models_order(client, proxy, music, ltr_model):
    query = "electronic ambient"
    body = requests.post(
        f"{proxy.url}/{music.name}-ltr/_search",
        json={"size": 20, "ext": {"ltrr": {"query": query, "explain": True}}},
        timeout=30,
    ).json()
    assert body["ext"]["ltrr"]["rerank"]["status"] == "ok", body["ext"]["ltrr"]["rerank"]
    hits = body["hits"]["hits"]
    ids = [h["_id"] for h in hits]
    # The model's own scores for the same candidates, straight from the node.
    direct = client.search(
        index=music.name,
        body={
            "size": len(ids),
            "query": {
                "bool": {
                    "filter": {"ids": {"values": ids}},
                    "should": {"sltr": {"params": {"keywords": query}, "model": ltr_model}},
                }
            },
        },
    )
    scores = {h["_id"]: h["_score"] for h in direct["hits"]["hits"]}
    assert [h["_ltrr"]["ltr_score"] for h in hits] == pytest.approx([scores[i] for i in ids])
    assert [scores[i] for i in ids] == sorted(scores.values(), reverse=True)
