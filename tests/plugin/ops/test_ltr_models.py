"""``train_ltr`` against scripted clusters, with and without the LTR plugin: the requests it
must send, and the refused upload in plain words."""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import orjson
import pytest

from ltrr.plugin.errors import LtrrError
from ltrr.plugin.ops.ltr_models import (
    Candidates,
    _training_set,
    catalog_change,
    impressions_from_logs,
    log_features,
    logged_candidates,
    next_model_version,
    train_ltr,
)
from ltrr.query_plans.catalog import load_catalog
from ltrr.query_plans.ltr.featureset import build_featureset
from ltrr.query_plans.ltr.judgments import Impression, from_qrels
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
    INDEX = "shop"  # the index whose documents are logged

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
        if path == f"/{self.INDEX}/_search":
            # sltr logging: the lexical feature logs the doc's score, from_lexical 1 for the
            # ids in its param (what the lexical arm retrieved)
            ids = body["query"]["bool"]["filter"][0]["ids"]["values"]
            params = body["query"]["bool"]["filter"][1]["sltr"]["params"]
            found = set(orjson.loads(params["from_lexical"]))
            hits = [
                {
                    "_id": d,
                    "fields": {
                        "_ltrlog": [
                            {
                                "ltrr_log": [
                                    {"name": "arm_lexical", "value": self.DOCS[d]},
                                    {"name": "from_lexical", "value": float(d in found)},
                                ]
                            }
                        ]
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
    # the params the rerank will send: text, memory keys, what each arm retrieved
    assert sltr[0]["query"]["bool"]["filter"][1]["sltr"]["params"] == {
        "keywords": "query 0",
        "memory_exact": "query 0",
        "memory_near": "~0query",
        "from_lexical": '["a","b","c","d"]',
    }
    created = [b for m, p, b in cluster.calls if p == f"/_ltr/_featureset/{fs}/_createmodel"]
    assert len(created) == 1
    assert created[0]["model"]["name"] == "shop_ltr_v3"
    assert created[0]["model"]["model"]["type"] in ("model/linear", "model/xgboost+json")
    # The featureset was created before anything was logged with it.
    order = [p for _, p, _ in cluster.calls]
    assert order.index(f"/_ltr/_featureset/{fs}") < order.index("/shop/_search")
    assert result.featureset.names == ("arm_lexical", "from_lexical")
    assert result.training.X[:4].tolist() == [[3.0, 1.0], [2.0, 1.0], [1.0, 1.0], [0.5, 1.0]]
    # one list per judged query, its own fold key
    assert [(c.group, c.query_id, c.ids) for c in result.lists] == [
        (f"q{i}", f"q{i}", ("a", "b", "c", "d")) for i in range(4)
    ]
    assert result.training.fold_keys == result.training.query_ids
    assert "model: shop_ltr_v3" in result.catalog_change


class NoPluginCluster(PluginCluster):
    """The same node without the LTR plugin: features are logged by one ``_msearch`` whose
    sub-searches each score the candidates by one feature: the arm's by each doc's own score,
    a provenance ``ids`` query by 1 for the ids it names (as OpenSearch scores it)."""

    def request(self, method, url, data=None, headers=None, timeout=None) -> Reply:
        path = url.split("9200", 1)[1]
        if path == "/_nodes/plugins":
            self.calls.append((method, path, None))
            return Reply(200, {"nodes": {"n": {"modules": [], "plugins": []}}})
        lines = [orjson.loads(line) for line in (data or b"").splitlines() if line]
        searches = lines[1::2]
        if path == "/_msearch" and searches and all("filter" in str(s) for s in searches):
            self.calls.append((method, path, lines))
            responses = []
            for search in searches:
                ids = search["query"]["bool"]["filter"]["ids"]["values"]
                must = search["query"]["bool"]["must"]
                if "ids" in must:
                    hits = [{"_id": d, "_score": 1.0} for d in ids if d in must["ids"]["values"]]
                else:
                    hits = [{"_id": d, "_score": self.DOCS[d]} for d in ids]
                responses.append({"hits": {"hits": hits}})
            return Reply(200, {"responses": responses})
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
    assert result.training.X[:4].tolist() == [[3.0, 1.0], [2.0, 1.0], [1.0, 1.0], [0.5, 1.0]]
    logging = [b for _, p, b in cluster.calls if p == "/_msearch" and b and len(b) == 4]
    assert len(logging) == 4  # one _msearch per query, one sub-search per feature
    assert logging[0][3]["query"]["bool"]["must"] == {"ids": {"values": ["a", "b", "c", "d"]}}
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


THREE_ARMS = """\
target: shop
budget: 60
policy: {name: static}
arms:
  - name: lexical
    template: multi_match.json.j2
    params: {fields: [title]}
    size: {min: 5, max: 20}
  - name: phrase
    template: multi_match.json.j2
    params: {fields: [title], type: phrase}
    size: {min: 0, max: 20}
  - name: fuzzy
    template: multi_match.json.j2
    params: {fields: [title], fuzziness: 1}
    size: {min: 0, max: 20}
fallback:
  - {arm: lexical, size: 10}
"""


def three_arms(tmp_path: Path):
    path = tmp_path / "three.yml"
    path.write_text(THREE_ARMS)
    return load_catalog(path)


def decision(decision_id, timestamp, query, returned, arms=None):
    """An ``ltrr-decisions`` document, with only the fields the training reads."""
    return {
        "decision_id": decision_id,
        "timestamp": timestamp,
        "query": query,
        "returned": [["shop", d] for d in returned],
        "arms": arms or {"lexical": {"included": True, "ok": True, "results": list(returned)}},
    }


def test_logged_candidates_keeps_the_latest_per_query_as_served(tmp_path):
    catalog = three_arms(tmp_path)
    decisions = [
        decision("d1", 100.0, "Red Shoes", ["a"]),  # the oldest of three: dropped
        decision(
            "d2",
            300.0,
            "red  shoes!",
            ["c", "a", "b"],
            {
                "lexical": {"included": True, "ok": True, "results": ["c", "a"]},
                "phrase": {"included": True, "ok": False, "results": ["x"]},  # failed
                "fuzzy": {"included": False, "ok": True, "results": ["y"]},  # not asked
            },
        ),
        decision("d3", 200.0, "RED SHOES", ["b", "a", "b"]),
        decision("d4", 50.0, "blue hat", ["z"]),
        decision("d5", 400.0, "blue hat", []),  # nothing returned: not a list
        decision("d6", 10.0, "!!!", ["q"]),  # no words: no query
    ]
    asked = []

    def vectors(text):
        asked.append(text)
        return [0.5, 0.25] if text == "blue hat" else None

    lists = logged_candidates(catalog, decisions, vectors, per_query=2)
    # queries in the order first seen by time; each query's lists oldest first
    assert [(c.group, c.query_id, c.ids) for c in lists] == [
        ("blue hat#d4", "blue hat", ("z",)),
        ("red shoes#d3", "red shoes", ("b", "a")),  # returned order, each id once
        ("red shoes#d2", "red shoes", ("c", "a", "b")),
    ]
    assert lists[0].params == {
        "keywords": "blue hat",
        "memory_exact": "blue hat",
        "memory_near": "~bluehat",
        "query_vector": "[0.5,0.25]",
        "from_lexical": '["z"]',
        "from_phrase": "[]",
        "from_fuzzy": "[]",
    }
    # each list keeps its own spelling; provenance only from arms included and ok
    assert lists[2].params == {
        "keywords": "red  shoes!",
        "memory_exact": "red shoes",
        "memory_near": "~redshoes",
        "from_lexical": '["a","c"]',
        "from_phrase": "[]",
        "from_fuzzy": "[]",
    }
    assert lists[1].params["keywords"] == "RED SHOES"
    assert lists[1].params["from_lexical"] == '["a","b"]'
    assert sorted(asked) == ["RED SHOES", "blue hat", "red  shoes!"]


def test_logged_candidates_default_keeps_five_per_query(tmp_path):
    catalog = three_arms(tmp_path)
    decisions = [decision(f"d{i}", float(i), "x", [str(i)]) for i in range(7)]
    lists = logged_candidates(catalog, decisions, lambda _text: None)
    assert [c.group for c in lists] == ["x#d2", "x#d3", "x#d4", "x#d5", "x#d6"]
    assert all("query_vector" not in c.params for c in lists)


def test_training_set_groups_by_list_and_folds_by_query(tmp_path):
    catalog = three_arms(tmp_path)
    featureset = build_featureset(catalog, "fs")
    assert featureset.names == (
        "arm_lexical",
        "arm_phrase",
        "arm_fuzzy",
        "from_lexical",
        "from_phrase",
        "from_fuzzy",
    )
    lists = [
        Candidates("red#d1", "red", ("a", "b"), {}),
        Candidates("red#d2", "red", ("b", "c"), {}),
        Candidates("blue#d3", "blue", ("a",), {}),
    ]
    row = {d: (float(i),) * 6 for i, d in enumerate("abc", start=1)}
    logged = {"red#d1": {"a": row["a"], "b": row["b"]}, "red#d2": {"b": row["b"]}}
    judgments = from_qrels({"red": {"b": 2, "c": 1, "z": 3}})
    ts = _training_set(featureset, judgments, lists, logged)
    assert ts.query_ids == ("red#d1", "red#d1", "red#d2", "red#d2", "blue#d3")
    assert ts.fold_keys == ("red", "red", "red", "red", "blue")
    assert ts.doc_ids == ("a", "b", "b", "c", "a")
    assert ts.y.tolist() == [0, 2, 2, 1, 0]  # every list of a query shares its grades
    # c was not logged for red#d2 (deleted meanwhile), blue#d3 logged nothing: zeros
    assert ts.X.tolist() == [[1.0] * 6, [2.0] * 6, [2.0] * 6, [0.0] * 6, [0.0] * 6]
    assert dict(ts.judged) == {"red#d1": judgments.grades["red"], "red#d2": judgments.grades["red"]}
    assert ts.feature_names == featureset.names


def test_training_set_needs_a_candidate(tmp_path):
    featureset = build_featureset(three_arms(tmp_path), "fs")
    with pytest.raises(LtrrError, match="nothing to train on"):
        _training_set(featureset, from_qrels({}), [Candidates("q", "q", (), {})], {})


class LoggingHttp:
    """``Cluster.ok`` for the sltr logging search alone: arm_lexical logs 1 per doc."""

    def __init__(self):
        self.calls = []

    def ok(self, method, path, body=None, *, ndjson=None):
        self.calls.append((method, path, body))
        ids = body["query"]["bool"]["filter"][0]["ids"]["values"]
        entry = [{"name": "arm_lexical", "value": 1.0}]
        hits = [{"_id": d, "fields": {"_ltrlog": [{"ltrr_log": entry}]}} for d in ids]
        return {"hits": {"hits": hits}}


def test_log_features_logs_each_list_with_its_own_params(tmp_path):
    featureset = build_featureset(three_arms(tmp_path), "fs")
    lists = [
        Candidates("q#1", "q", ("a", "b"), {"keywords": "q", "from_lexical": '["a"]'}),
        Candidates("q#2", "q", (), {"keywords": "q"}),  # nothing to log: no search
        Candidates("r#3", "r", ("c",), {"keywords": "R"}),
    ]
    http = LoggingHttp()
    logged = log_features(http, featureset, "shop", lists, plugin=True, store="st")
    one = (1.0, 0.0, 0.0, 0.0, 0.0, 0.0)
    assert logged == {"q#1": {"a": one, "b": one}, "r#3": {"c": one}}
    assert [(m, p) for m, p, _ in http.calls] == [("POST", "/shop/_search")] * 2
    sltr = [b["query"]["bool"]["filter"][1]["sltr"] for _, _, b in http.calls]
    assert [s["params"] for s in sltr] == [lists[0].params, lists[2].params]
    assert {s["store"] for s in sltr} == {"st"}


class ClickCluster(PluginCluster):
    """The plugin node, with the learning loop's logs of a simulation copy ``shop-sim-x``:
    three queries, each searched twice, every search showing a, b, c, d and d clicked."""

    INDEX = "shop-sim-x"

    def __init__(self) -> None:
        super().__init__()
        self.decisions = [
            {**decision(f"d{q}{n}", float(10 * q + n), f"query {q}", list(self.DOCS)),
             "target": self.INDEX}
            for q in range(3)
            for n in range(2)
        ]  # fmt: skip
        self.events = [
            {"event_id": f"e{d['decision_id']}", "decision_id": d["decision_id"],
             "object_id": "d", "type": "click", "target": self.INDEX}
            for d in self.decisions
        ]  # fmt: skip

    def request(self, method, url, data=None, headers=None, timeout=None) -> Reply:
        path = url.split("9200", 1)[1]
        logs = {"/ltrr-decisions": self.decisions, "/ltrr-events": self.events}
        if method == "HEAD" and path in logs:
            self.calls.append((method, path, None))
            return Reply(200, {})
        index = path.removesuffix("/_search")
        if path.endswith("/_search") and index in logs:
            body = orjson.loads(data)
            self.calls.append((method, path, body))
            key = "decision_id" if index == "/ltrr-decisions" else "event_id"
            hits = [{"_source": doc, "sort": [doc[key]]} for doc in logs[index]]
            return Reply(200, {"hits": {"hits": hits}})
        return super().request(method, url, data, headers, timeout)


def test_click_judgments_train_on_the_logged_searches_of_the_target(tmp_path):
    cluster = ClickCluster()
    result = train_ltr(
        write_catalog(tmp_path),
        None,
        opensearch="http://127.0.0.1:9200",
        judgments="coec",
        folds=2,
        out=tmp_path / "out",
        seed=1,
        report=None,
        cluster=scripted_cluster(cluster),
        target="shop-sim-x",
    )
    assert result.target == "shop-sim-x"
    assert result.model_name == "shop_ltr_v3"  # named after the catalog's target
    searched = [b for m, p, b in cluster.calls if p in ("/ltrr-decisions/_search",)]
    assert searched[0]["query"] == {"term": {"target": "shop-sim-x"}}
    # one list per logged search, in time order, provenance from the decisions' arms
    assert [c.group for c in result.lists] == [
        f"query {q}#d{q}{n}" for q in range(3) for n in (0, 1)
    ]
    assert {c.ids for c in result.lists} == {("a", "b", "c", "d")}
    assert result.lists[0].params["from_lexical"] == '["a","b","c","d"]'
    # the documents logged are the target's, never the catalog's own index
    logged = [p for _, p, _ in cluster.calls if p.endswith("/_search") and "ltrr" not in p]
    assert logged == ["/shop-sim-x/_search"] * 6
    ts = result.training
    assert len(ts.groups()) == 6
    assert ts.fold_keys == tuple(f"query {q}" for q in range(3) for _ in range(8))
    assert result.cv.folds == 2


def test_held_out_queries_are_never_trained_on(tmp_path):
    cluster = ClickCluster()
    result = train_ltr(
        write_catalog(tmp_path),
        None,
        opensearch="http://127.0.0.1:9200",
        judgments="coec",
        folds=2,
        out=tmp_path / "out",
        seed=1,
        report=None,
        cluster=scripted_cluster(cluster),
        target="shop-sim-x",
        held_out=["Query 1"],  # spelled otherwise: normalised like the logged queries
    )
    assert {c.query_id for c in result.lists} == {"query 0", "query 2"}
    assert set(result.training.fold_keys) == {"query 0", "query 2"}
    assert "held out 2 of 6 lists (1 queries)" in result.warnings
    logged = [p for _, p, _ in cluster.calls if p.endswith("/_search") and "ltrr" not in p]
    assert len(logged) == 4  # the held-out query's two searches were never logged


def test_the_learned_memory_is_replayed_to_what_each_search_saw(tmp_path):
    import dataclasses

    from ltrr.plugin.ops.ltr_models import memory_at_decision
    from ltrr.query_plans.catalog import MemoryConfig

    catalog = dataclasses.replace(
        load_catalog(write_catalog(tmp_path)), memory=MemoryConfig(smoothing=5.0)
    )
    decisions = [
        {"decision_id": "d1", "timestamp": 100.0, "query": "Daft Punk"},
        {"decision_id": "d2", "timestamp": 200.0, "query": "daft punk"},
        {"decision_id": "d3", "timestamp": 300.0, "query": "Punk Daft"},
    ]
    events = [  # a click on a for d1, received at 110; a skip (negative) is no engagement
        {"event_id": "e1", "decision_id": "d1", "object_id": "a", "weight": 2.0, "received": 110},
        {"event_id": "e2", "decision_id": "d1", "object_id": "b", "weight": -1.0, "received": 111},
    ]
    lists = [
        Candidates("daft punk#d1", "daft punk", ("a", "b"), {}),
        Candidates("daft punk#d2", "daft punk", ("a", "b"), {}),
        Candidates("punk daft#d3", "punk daft", ("a",), {}),
    ]
    seen = memory_at_decision(catalog, "shop", decisions, events, lists)
    # d1: nothing learned yet. d2: one search before it, 2 engaged: 2 / (max(1, 2) + 5) = 2/7
    # on the exact key, and the near key's projection (the same key) adds half: 3/7.
    # d3: another exact key, the same near key: half of 2 / (max(2, 2) + 5) = 1/7.
    assert seen["daft punk#d1"] == {"a": 0.0, "b": 0.0}
    assert seen["daft punk#d2"]["a"] == pytest.approx(3 / 7, rel=1e-4)
    assert seen["daft punk#d2"]["b"] == 0.0
    assert seen["punk daft#d3"]["a"] == pytest.approx(1 / 7, rel=1e-4)
