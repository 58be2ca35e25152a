"""The Learning-to-Rank plugin, end to end: store, featureset, logging, linear and xgboost
models, rescoring and scoring as a query.

The product needs the plugin, so a cluster without it fails these tests rather than skipping
them: the local node installs it from ``LTRR_PLUGIN_DIR`` (the Makefile points it at
``../shared/plugins``), and the official Docker image bundles it.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator

import pytest
from opensearchpy import OpenSearch

from ltrr.plugin.ops.cluster import LTR_PLUGIN, ClusterInfo
from ltrr.query_plans.ltr.export import score_xgboost

DOCS = {
    "a": {"title": "rock", "body": "jazz jazz jazz"},
    "b": {"title": "jazz", "body": "rock rock rock"},
    "c": {"title": "rock jazz", "body": "rock"},
    "d": {"title": "blues", "body": "blues"},
}
FEATURES = ("title_query", "body_query")


@pytest.fixture
def ltr(cluster: ClusterInfo) -> None:
    cluster.require(LTR_PLUGIN)  # PluginNotInstalled says how to get it


@pytest.fixture
def featureset(client: OpenSearch, ltr: None) -> Iterator[str]:
    store = client.transport.perform_request("GET", "/_ltr")
    if not store.get("stores", {}).get("_default_"):
        client.transport.perform_request("PUT", "/_ltr")
    name = f"ltrr_it_{uuid.uuid4().hex[:12]}"
    body = {
        "featureset": {
            "features": [
                {
                    "name": feature,
                    "params": ["keywords"],
                    "template_language": "mustache",
                    "template": {"match": {feature.split("_")[0]: "{{keywords}}"}},
                }
                for feature in FEATURES
            ]
        }
    }
    client.transport.perform_request("POST", f"/_ltr/_featureset/{name}", body=body)
    yield name
    client.transport.perform_request("DELETE", f"/_ltr/_featureset/{name}")


@pytest.fixture
def docs(client: OpenSearch, index_name: str) -> str:
    client.indices.create(index=index_name, body={"settings": {"number_of_replicas": 0}})
    for doc_id, doc in DOCS.items():
        client.index(index=index_name, id=doc_id, body=doc)
    client.indices.refresh(index=index_name)
    return index_name


def log_features(client: OpenSearch, index: str, featureset: str) -> dict[str, dict[str, float]]:
    body = {
        "size": len(DOCS),
        "query": {
            "bool": {
                "filter": [
                    {"terms": {"_id": list(DOCS)}},
                    {
                        "sltr": {
                            "_name": "logged",
                            "featureset": featureset,
                            "params": {"keywords": "rock"},
                        }
                    },
                ]
            }
        },
        "ext": {
            "ltr_log": {
                "log_specs": {"name": "entry", "named_query": "logged", "missing_as_zero": True}
            }
        },
    }
    hits = client.search(index=index, body=body)["hits"]["hits"]
    logged: dict[str, dict[str, float]] = {}
    for hit in hits:
        entry = hit["fields"]["_ltrlog"][0]["entry"]
        logged[hit["_id"]] = {f["name"]: float(f.get("value", 0.0)) for f in entry}
    return logged


def test_logging_then_linear_model_rescore(client: OpenSearch, docs: str, featureset: str) -> None:
    logged = log_features(client, docs, featureset)
    assert set(logged) == set(DOCS)
    assert logged["a"]["title_query"] > 0
    assert logged["a"]["body_query"] == 0
    assert logged["b"]["title_query"] == 0
    assert logged["b"]["body_query"] > 0
    assert logged["d"] == {"title_query": 0.0, "body_query": 0.0}

    for weights in (
        {"title_query": 1.0, "body_query": 0.1},
        {"title_query": 0.1, "body_query": 1.0},
    ):
        model = f"{featureset}_{uuid.uuid4().hex[:6]}"
        client.transport.perform_request(
            "POST",
            f"/_ltr/_featureset/{featureset}/_createmodel",
            body={
                "model": {
                    "name": model,
                    "model": {"type": "model/linear", "definition": json.dumps(weights)},
                }
            },
        )
        try:
            response = client.search(
                index=docs,
                body={
                    "size": len(DOCS),
                    "query": {"match_all": {}},
                    "rescore": {
                        "window_size": len(DOCS),
                        "query": {
                            "rescore_query": {
                                "sltr": {"params": {"keywords": "rock"}, "model": model}
                            },
                            "query_weight": 0.0,
                            "rescore_query_weight": 1.0,
                        },
                    },
                },
            )
        finally:
            client.transport.perform_request("DELETE", f"/_ltr/_model/{model}")

        expected = {
            doc_id: sum(weights[f] * values[f] for f in FEATURES)
            for doc_id, values in logged.items()
        }
        hits = response["hits"]["hits"]
        order = [hit["_id"] for hit in hits]
        assert order == sorted(expected, key=lambda d: -expected[d])
        for hit in hits:
            assert hit["_score"] == pytest.approx(expected[hit["_id"]], rel=1e-3, abs=1e-4)


def _create_model(client: OpenSearch, featureset: str, kind: str, definition: str) -> str:
    model = f"{featureset}_{uuid.uuid4().hex[:6]}"
    client.transport.perform_request(
        "POST",
        f"/_ltr/_featureset/{featureset}/_createmodel",
        body={"model": {"name": model, "model": {"type": kind, "definition": definition}}},
    )
    return model


def test_xgboost_json_model_scores_as_its_trees_say(
    client: OpenSearch, docs: str, featureset: str
) -> None:
    logged = log_features(client, docs, featureset)
    # Split halfway to the smallest positive value, so that each document's path is known.
    title_cut = min(v["title_query"] for v in logged.values() if v["title_query"] > 0) / 2
    body_cut = min(v["body_query"] for v in logged.values() if v["body_query"] > 0) / 2
    trees = [
        {
            "nodeid": 0,
            "depth": 0,
            "split": "title_query",
            "split_condition": title_cut,
            "yes": 1,
            "no": 2,
            "missing": 1,
            "children": [
                {"nodeid": 1, "depth": 1, "leaf": 0.5},
                {
                    "nodeid": 2,
                    "depth": 1,
                    "split": "body_query",
                    "split_condition": body_cut,
                    "yes": 3,
                    "no": 4,
                    "missing": 3,
                    "children": [
                        {"nodeid": 3, "depth": 2, "leaf": 2.0},
                        {"nodeid": 4, "depth": 2, "leaf": 3.0},
                    ],
                },
            ],
        },
        {"nodeid": 0, "leaf": 0.25},
    ]
    definition = json.dumps(trees)
    # By hand: no title match -> 0.5 (b, d); title only -> 2 (a); both -> 3 (c); +0.25 each.
    # (Leaves stay positive: Lucene does not take negative scores.)
    by_hand = {"a": 2.25, "b": 0.75, "c": 3.25, "d": 0.75}
    assert {d: score_xgboost(definition, v) for d, v in logged.items()} == by_hand
    model = _create_model(client, featureset, "model/xgboost+json", definition)
    try:
        # As a query: every document scored by the model itself.
        response = client.search(
            index=docs,
            body={
                "size": len(DOCS),
                "query": {"sltr": {"params": {"keywords": "rock"}, "model": model}},
            },
        )
    finally:
        client.transport.perform_request("DELETE", f"/_ltr/_model/{model}")
    scores = {h["_id"]: h["_score"] for h in response["hits"]["hits"]}
    assert scores == pytest.approx(by_hand)
    assert [h["_id"] for h in response["hits"]["hits"]][:2] == ["c", "a"]
