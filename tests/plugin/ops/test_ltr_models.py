"""``train_ltr`` against scripted clusters, with and without the LTR plugin: the requests it
must send, and the refused upload in plain words."""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import orjson
import pytest

from ltrr.plugin.errors import LtrrError
from ltrr.plugin.ops.ltr_models import (
    catalog_change,
    impressions_from_logs,
    next_model_version,
    train_ltr,
)
from ltrr.query_plans.catalog import load_catalog
from ltrr.query_plans.ltr.judgments import Impression
from tests.plugin.ops._scripted import scripted_cluster

CATALOG = """\
target: shop
budget: 60
policy: {{name: static}}
arms:
  - name: lexical
    template: multi_match.json.j2
    params: {{fields: [title]}}
    size: {{min: 5, max: 20}}
fallback:
  - {{arm: lexical, size: 10}}
{rerank}"""


def write_catalog(tmp_path: Path, rerank: str = "") -> Path:
    path = tmp_path / "shop.yml"
    path.write_text(CATALOG.format(rerank=rerank))
    return path


def test_impressions_from_logs():
    decisions = [
        {"decision_id": "d1", "query": "Red Shoes", "returned": [["shop", "a"], ["shop", "b"]]},
        {"decision_id": "d2", "query": "red  shoes!", "returned": [["shop", "b"]]},
        {"decision_id": "d3", "query": "", "returned": [["shop", "c"]]},  # no query: skipped
    ]
    events = [
        {"decision_id": "d1", "object_id": "b", "type": "click"},
        {"decision_id": "d1", "object_id": "a", "type": "skip"},  # not a positive type
        {"decision_id": "d2", "object_id": "b", "type": "purchase"},
    ]
    impressions, queries = impressions_from_logs(decisions, events, ["click", "purchase"])
    assert impressions == [
        Impression("red shoes", "a", 1, False),
        Impression("red shoes", "b", 2, True),
        Impression("red shoes", "b", 1, True),
    ]
    assert queries == {"red shoes": "Red Shoes"}  # the first spelling seen


def test_next_model_version():
    assert next_model_version([], "shop_ltr") == 1
    assert (
        next_model_version(["shop_ltr_v1", "shop_ltr_v7", "shop_ltr_v10x", "x_v9"], "shop_ltr") == 8
    )


def test_catalog_change_keeps_store_and_window(tmp_path):
    catalog = load_catalog(write_catalog(tmp_path, "rerank: {model: old, store: s1, window: 50}\n"))
    assert catalog_change(catalog, "shop_ltr_v2") == (
        "rerank:\n  model: shop_ltr_v2\n  store: s1\n  window: 50\n"
    )


class Reply:
    def __init__(self, status: int, body: Any) -> None:
        self.status_code = status
        self.content = orjson.dumps(body)
        self.text = self.content.decode()

    def json(self) -> Any:
        return orjson.loads(self.content)


class PluginCluster:
    """Answers like a node with the LTR plugin, an existing model v2 and a fresh store."""

    DOCS: ClassVar[dict[str, float]] = {"a": 3.0, "b": 2.0, "c": 1.0, "d": 0.5}

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, Any]] = []

    def get(self, url: str, timeout: float) -> Reply:
        return self.request("GET", url)

    def request(self, method, url, data=None, headers=None, timeout=None) -> Reply:
        path = url.split("9200", 1)[1]
        body: Any = None
        if data:
            if path.startswith("/_msearch"):
                body = [orjson.loads(line) for line in data.splitlines() if line]
            else:
                body = orjson.loads(data)
        self.calls.append((method, path, body))
        if path == "/":
            return Reply(200, {"version": {"number": "2.19.1", "distribution": "opensearch"}})
        if path == "/_cluster/health":
            return Reply(200, {"status": "green"})
        if path == "/_nodes/plugins":
            plugin = {"name": "opensearch-ltr", "version": "2.19.1"}
            return Reply(200, {"nodes": {"n": {"modules": [], "plugins": [plugin]}}})
        if path == "/_msearch":  # the candidate search: every doc, by score
            hits = [{"_index": "shop", "_id": d, "_score": s} for d, s in self.DOCS.items()]
            return Reply(200, {"responses": [{"hits": {"hits": hits}}]})
        if path == "/_ltr" and method == "GET":
            return Reply(200, {"stores": {}})
        if path == "/_ltr" and method == "PUT":
            return Reply(200, {"acknowledged": True})
        if path.startswith("/_ltr/_featureset/") and method == "GET":
            return Reply(404, {"found": False})
        if path.startswith("/_ltr/_model?prefix=shop_ltr"):
            names = ["shop_ltr_v2", "shop_ltr_v1"]
            return Reply(200, {"hits": {"hits": [{"_source": {"name": n}} for n in names]}})
        if path == "/shop/_search":  # sltr logging: the lexical feature logs the doc's score
            ids = body["query"]["bool"]["filter"][0]["ids"]["values"]
            hits = [
                {
                    "_id": d,
                    "fields": {
                        "_ltrlog": [{"ltrr_log": [{"name": "arm_lexical", "value": self.DOCS[d]}]}]
                    },
                }
                for d in ids
            ]
            return Reply(200, {"hits": {"hits": hits}})
        if method == "POST" and path.startswith("/_ltr/_featureset/"):
            return Reply(201, {"result": "created"})
        return Reply(404, {"error": f"unexpected {method} {path}"})


def four_query_dataset(tmp_path: Path) -> Path:
    """Four judged queries, each with the documents a (grade i % 3) and b (grade 1)."""
    dataset = tmp_path / "beir"
    (dataset / "qrels").mkdir(parents=True)
    (dataset / "corpus.jsonl").write_text("")
    queries = [f'{{"_id": "q{i}", "text": "query {i}"}}' for i in range(4)]
    (dataset / "queries.jsonl").write_text("\n".join(queries) + "\n")
    rows = [f"q{i}\ta\t{i % 3}\nq{i}\tb\t1" for i in range(4)]
    (dataset / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\n" + "\n".join(rows))
    return dataset


def test_plugin_path_logs_with_sltr_and_uploads_the_next_version(tmp_path):
    dataset = four_query_dataset(tmp_path)
    cluster = PluginCluster()

    result = train_ltr(
        write_catalog(tmp_path),
        dataset,
        opensearch="http://127.0.0.1:9200",
        judgments="qrels",
        depth=10,
        folds=2,
        out=tmp_path / "out",
        seed=1,
        report=None,
        cluster=scripted_cluster(cluster),
    )

    assert result.logging == "sltr"
    assert result.uploaded is True
    assert result.model_name == "shop_ltr_v3"  # v2 is the highest stored
    fs = result.featureset.name
    assert fs.startswith("shop_features_")
    paths = [(m, p) for m, p, _ in cluster.calls]
    assert ("PUT", "/_ltr") in paths  # the default store did not exist
    posted = [b for m, p, b in cluster.calls if m == "POST" and p == f"/_ltr/_featureset/{fs}"]
    assert posted == [result.featureset.body()]
    sltr = [b for m, p, b in cluster.calls if p == "/shop/_search"]
    assert len(sltr) == 4
    assert sltr[0]["query"]["bool"]["filter"][1]["sltr"]["featureset"] == fs
    assert sltr[0]["query"]["bool"]["filter"][1]["sltr"]["params"] == {"keywords": "query 0"}
    created = [b for m, p, b in cluster.calls if p == f"/_ltr/_featureset/{fs}/_createmodel"]
    assert len(created) == 1
    assert created[0]["model"]["name"] == "shop_ltr_v3"
    assert created[0]["model"]["model"]["type"] in ("model/linear", "model/xgboost+json")
    # The featureset was created before anything was logged with it.
    order = [p for _, p, _ in cluster.calls]
    assert order.index(f"/_ltr/_featureset/{fs}") < order.index("/shop/_search")
    assert result.training.X[:4, 0].tolist() == [3.0, 2.0, 1.0, 0.5]
    assert "model: shop_ltr_v3" in result.catalog_change


class NoPluginCluster(PluginCluster):
    """The same node without the LTR plugin: features are logged by one ``_msearch`` whose
    sub-searches each score the candidates by one feature (here, each doc's own score)."""

    def request(self, method, url, data=None, headers=None, timeout=None) -> Reply:
        path = url.split("9200", 1)[1]
        if path == "/_nodes/plugins":
            self.calls.append((method, path, None))
            return Reply(200, {"nodes": {"n": {"modules": [], "plugins": []}}})
        lines = [orjson.loads(line) for line in (data or b"").splitlines() if line]
        if path == "/_msearch" and len(lines) == 2 and "ids" in str(lines[1]):
            self.calls.append((method, path, lines))
            ids = lines[1]["query"]["bool"]["filter"]["ids"]["values"]
            hits = [{"_id": d, "_score": self.DOCS[d]} for d in ids]
            return Reply(200, {"responses": [{"hits": {"hits": hits}}]})
        return super().request(method, url, data, headers, timeout)


def test_without_the_plugin_features_are_logged_by_msearch_and_the_upload_is_refused(tmp_path):
    dataset = four_query_dataset(tmp_path)
    cluster = NoPluginCluster()

    result = train_ltr(
        write_catalog(tmp_path),
        dataset,
        opensearch="http://127.0.0.1:9200",
        judgments="qrels",
        depth=10,
        folds=2,
        out=tmp_path / "out",
        seed=1,
        report=None,
        cluster=scripted_cluster(cluster),
    )

    assert result.logging == "fallback"
    assert result.training.X[:4, 0].tolist() == [3.0, 2.0, 1.0, 0.5]
    assert result.uploaded is False
    assert "LTR plugin not installed" in result.upload_message
    assert f"POST the featureset to _ltr/_featureset/{result.featureset.name}" in (
        result.upload_message
    )
    paths = [p for _, p, _ in cluster.calls]
    assert not any(p.startswith("/_ltr") for p in paths), paths  # nothing sent to a plugin
    assert result.model_name == "shop_ltr_v1"  # numbered from the files, none yet
    assert orjson.loads(result.files["model"].read_bytes())["model"]["name"] == "shop_ltr_v1"


def test_qrels_need_a_dataset(tmp_path):
    with pytest.raises(LtrrError, match="--dataset"):
        train_ltr(
            write_catalog(tmp_path),
            None,
            opensearch="http://127.0.0.1:9200",
            judgments="qrels",
            out=tmp_path / "out",
            seed=1,
            report=None,
            cluster=scripted_cluster(PluginCluster()),
        )


def test_rerank_runs_orders_recorded_candidates_by_held_out_scores():
    from types import SimpleNamespace

    from ltrr.plugin.ops.ltr_models import rerank_runs
    from ltrr.plugin.ops.simulate.results import PolicyRun, SessionRecord

    training = SimpleNamespace(
        query_ids=("q1", "q1", "q1"),
        doc_ids=("a", "b", "c"),
        judged={"q1": {"c": 1}},
    )
    cv = SimpleNamespace(models={"linear": SimpleNamespace(oof_scores=np.array([0.1, 0.2, 0.9]))})
    result = SimpleNamespace(training=training, cv=cv, winner="linear")

    def session(i, candidates):
        return SessionRecord(
            i, "all", "q", 0.0, 0.0, None, 0.0, 3, ("lexical",), 1.0, "q1", candidates
        )

    run = PolicyRun("linucb", "", True, [session(0, ("a", "b", "c", "z"))])
    (row,) = rerank_runs(result, [run])
    # Fused: the one relevant doc c at rank 3: nDCG = (1/log2(4)) / (1/log2(2)) = 0.5.
    # Reranked by score c (0.9), b, a, then z (unscored, kept last): c at rank 1, nDCG 1.
    assert row.ndcg_fused == pytest.approx(0.5)
    assert row.ndcg_reranked == pytest.approx(1.0)
    assert row.unscored == 1
    assert row.sessions == 1
