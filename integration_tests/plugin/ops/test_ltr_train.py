"""``train_ltr`` end to end against the real LTR plugin: ``sltr`` feature logging, the
``_msearch`` fallback agreeing with it, cross-validation, upload, and, from logged clicks, a
model that the proxy's rerank then serves in exactly the plugin's own order."""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import orjson
import pytest
import requests
from opensearchpy import OpenSearch

from ltrr.plugin.learn.bulk import DECISIONS_INDEX, EVENTS_INDEX
from ltrr.plugin.learn.tokens import TOKEN_HEADER
from ltrr.plugin.ops.client import Cluster
from ltrr.plugin.ops.cluster import LTR_PLUGIN
from ltrr.plugin.ops.data.beir import Query, write_beir
from ltrr.plugin.ops.ltr_models import Candidates, format_result, log_features, train_ltr
from ltrr.query_plans.catalog import load_catalog
from ltrr.query_plans.ltr.export import score_linear, score_xgboost
from ltrr.query_plans.ltr.featureset import build_featureset, render_feature
from ltrr.query_plans.ltr.params import search_params

from ..conftest import model_dir

WORDS = ["jazz", "rock", "blues", "piano", "guitar", "drums", "live", "studio"]


def _docs():
    docs = {}
    for i in range(40):
        a, b = WORDS[i % 8], WORDS[(i * 3 + 1) % 8]
        docs[f"d{i}"] = {
            "title": f"{a} {b}" if i % 3 else a,
            "body": f"{b} session number {i} " + ("with " + a) * (i % 4),
            "plays": 1 + (i * 37) % 100,
        }
    return docs


CATALOG = """\
target: {index}
budget: 60
policy: {{name: static}}
arms:
  - name: lexical
    template: multi_match.json.j2
    params: {{fields: ["title^2", "body"]}}
    size: {{min: 5, max: 20}}
  - name: popular
    template: rank_feature.json.j2
    params: {{field: plays, text_fields: [title, body]}}
    size: {{min: 0, max: 10}}
fallback:
  - {{arm: lexical, size: 10}}
index:
  mappings:
    properties:
      title: {{type: text}}
      body: {{type: text}}
      plays: {{type: rank_feature}}
"""


@pytest.fixture
def ltr_index(client: OpenSearch):
    name = f"ltrr-it-ltr-{uuid.uuid4().hex[:10]}"
    mappings = {
        "properties": {
            "title": {"type": "text"},
            "body": {"type": "text"},
            "plays": {"type": "rank_feature"},
        }
    }
    client.indices.create(
        index=name,
        body={"settings": {"number_of_shards": 1, "number_of_replicas": 0}, "mappings": mappings},
    )
    actions = []
    for doc_id, doc in _docs().items():
        actions += [{"index": {"_index": name, "_id": doc_id}}, doc]
    client.bulk(body=actions, refresh=True)
    yield name
    client.indices.delete(index=name, ignore_unavailable=True)


def _qrels_dataset(tmp_path):
    docs = _docs()
    queries = {f"q{i}": Query(f"q{i}", w) for i, w in enumerate(WORDS)}
    # relevant: documents whose title starts with the word (grade 2), or has it anywhere (1)
    qrels = {
        qid: {
            doc_id: 2 if doc["title"].split()[0] == q.text else 1
            for doc_id, doc in docs.items()
            if q.text in doc["title"].split()
        }
        for qid, q in queries.items()
    }
    dataset = tmp_path / "beir"
    corpus = [{"_id": d, "title": v["title"], "text": v["body"]} for d, v in docs.items()]
    write_beir(dataset, corpus, queries, qrels)
    return dataset


def _plugin_scores(client, index, model, params, ids):
    """The uploaded model's own scores for ``ids``, straight from the plugin."""
    body = {
        "size": len(ids),
        "query": {
            "bool": {
                "filter": {"ids": {"values": list(ids)}},
                "should": {"sltr": {"params": dict(params), "model": model}},
            }
        },
    }
    return {h["_id"]: h["_score"] for h in client.search(index=index, body=body)["hits"]["hits"]}


def _delete_ltr_objects(client, result):
    client.transport.perform_request("DELETE", f"/_ltr/_model/{result.model_name}")
    client.transport.perform_request("DELETE", f"/_ltr/_featureset/{result.featureset.name}")


def test_train_ltr_logs_with_sltr_uploads_and_the_plugin_scores_as_we_do(
    client, cluster, opensearch_url, ltr_index, tmp_path
):
    cluster.require(LTR_PLUGIN)
    dataset = _qrels_dataset(tmp_path)
    catalog = tmp_path / "catalog.yml"
    catalog.write_text(CATALOG.format(index=ltr_index))
    out = tmp_path / "out"

    result = train_ltr(
        catalog,
        dataset,
        opensearch=opensearch_url,
        judgments="qrels",
        depth=20,
        folds=4,
        out=out,
        seed=7,
        report=tmp_path / "report.html",
    )

    assert result.logging == "sltr"
    assert result.featureset.names == (
        "arm_lexical",
        "arm_popular",
        "popularity_plays",
        "match_title",
        "match_body",
        "from_lexical",
        "from_popular",
    )
    params = {c.group: c.params for c in result.lists}
    ts = result.training
    assert len(ts.groups()) == len(WORDS)
    # The logged values are what a direct search of each feature query scores.
    checked = 0
    for qid, start, end in ts.groups()[:3]:
        ids = list(ts.doc_ids[start:end])
        for column, feature in enumerate(result.featureset.features):
            body = {
                "size": len(ids),
                "query": {
                    "bool": {
                        "must": render_feature(feature, params[qid]),
                        "filter": {"ids": {"values": ids}},
                    }
                },
            }
            hits = client.search(index=ltr_index, body=body)["hits"]["hits"]
            direct = {h["_id"]: h["_score"] for h in hits}
            for row in range(start, min(end, start + 4)):
                expected = direct.get(ts.doc_ids[row], 0.0)
                assert float(ts.X[row, column]) == pytest.approx(expected, rel=1e-6)
                checked += 1
    assert checked > 20
    assert ts.X[:, 0].max() > 0  # the lexical feature actually scored something
    # Every candidate came from an arm at depth 20, and provenance says which.
    names = list(result.featureset.names)
    provenance = [names.index("from_lexical"), names.index("from_popular")]
    assert (ts.X[:, provenance].max(axis=1) == 1.0).all()

    cv = result.cv
    assert 0.0 <= cv.baseline_ndcg <= 1.0
    for model in cv.models.values():
        assert len(model.fold_ndcg) == 4
        assert all(0.0 <= v <= 1.0 for v in model.fold_ndcg)
    assert result.winner in cv.models

    assert result.uploaded is True, result.upload_message
    base = ltr_index  # letters, digits, - and _ stay as they are
    assert result.model_name == f"{base}_ltr_v1"
    stored = client.transport.perform_request("GET", f"/_ltr/_model/{result.model_name}")
    assert stored["found"] is True
    # The plugin scores each candidate exactly as the model we evaluated does.
    score = score_xgboost if result.model_type == "model/xgboost+json" else score_linear
    definition = result.files["definition"].read_text()
    names = result.featureset.names
    for qid, start, end in ts.groups():
        ids = list(ts.doc_ids[start:end])
        served = _plugin_scores(client, ltr_index, result.model_name, params[qid], ids)
        ours = result.model.score(ts.X[start:end])
        for row, doc_id in enumerate(ids):
            by_definition = score(definition, dict(zip(names, ts.X[start + row], strict=True)))
            assert served[doc_id] == pytest.approx(float(ours[row]), rel=1e-4, abs=1e-5)
            assert by_definition == pytest.approx(float(ours[row]), rel=1e-4, abs=1e-5)
    for path in result.files.values():
        assert path.is_file()
    saved = orjson.loads(result.files["model"].read_bytes())
    assert saved["model"]["name"] == result.model_name
    assert f"model: {result.model_name}" in result.catalog_change
    print(format_result(result))
    assert "rerank:" in format_result(result)
    assert (tmp_path / "report.html").read_text().count("<table>") == 1

    # A second run numbers the next version from the files already written.
    again = train_ltr(
        catalog,
        dataset,
        opensearch=opensearch_url,
        judgments="qrels",
        depth=20,
        folds=2,
        out=out,
        seed=7,
        report=None,
    )
    assert again.model_name == f"{base}_ltr_v2"  # numbered from the models the plugin holds
    client.transport.perform_request("DELETE", f"/_ltr/_model/{again.model_name}")
    _delete_ltr_objects(client, result)


VECTOR_CATALOG = """\
target: {index}
budget: 60
policy: {{name: static}}
embedding: {{model: {model}}}
arms:
  - name: lexical
    template: multi_match.json.j2
    params: {{fields: ["title^2", "body"]}}
    size: {{min: 5, max: 20}}
  - name: dense
    template: knn.json.j2
    params: {{field: embedding}}
    size: {{min: 0, max: 20}}
    needs_vector: true
  - name: memory
    template: memory.json.j2
    size: {{min: 0, max: 10}}
memory: {{field: ltrr_q2e, predicted_field: ltrr_q2e_predicted}}
fallback:
  - {{arm: lexical, size: 10}}
index:
  mappings:
    properties:
      title: {{type: text}}
      body: {{type: text}}
      embedding:
        type: knn_vector
        dimension: 384
        method: {{name: hnsw, engine: lucene, space_type: cosinesimil}}
      ltrr_q2e: {{type: rank_features}}
      ltrr_q2e_predicted: {{type: rank_features}}
"""


# A query and an id that a template engine could misread: quotes, a backslash, braces.
ODD_ID = 'odd "id" {{x}} }}} \\'
ODD_QUERY = 'jazz "live" {{keywords}} }}} \\ rock'


def _unit(seed: int) -> list[float]:
    values = [((seed * 7919 + i * 104729) % 1000) / 1000.0 - 0.5 for i in range(384)]
    norm = sum(v * v for v in values) ** 0.5
    return [v / norm for v in values]


@pytest.fixture
def vector_index(client: OpenSearch):
    """The same documents with a vector each, and Q2E scores for two of the query words."""
    name = f"ltrr-it-ltr-vec-{uuid.uuid4().hex[:10]}"
    body = {
        "settings": {"index": {"knn": True, "number_of_shards": 1, "number_of_replicas": 0}},
        "mappings": {
            "properties": {
                "title": {"type": "text"},
                "body": {"type": "text"},
                "embedding": {
                    "type": "knn_vector",
                    "dimension": 384,
                    "method": {"name": "hnsw", "engine": "lucene", "space_type": "cosinesimil"},
                },
                "ltrr_q2e": {"type": "rank_features"},
                "ltrr_q2e_predicted": {"type": "rank_features"},
            }
        },
    }
    client.indices.create(index=name, body=body)
    actions = []
    for i, (doc_id, doc) in enumerate(_docs().items()):
        extra = {"embedding": _unit(i)}
        if i % 5 == 0:
            extra["ltrr_q2e"] = {"jazz": 1.0 + i, "~jazz": 0.5}
        if i % 7 == 0:
            extra["ltrr_q2e_predicted"] = {"rock": 0.3, "~rock": 0.2}
        actions += [{"index": {"_index": name, "_id": doc_id}}, {**doc, **extra}]
    odd = {"title": "jazz live", "body": "rock", "embedding": _unit(99)}
    actions += [{"index": {"_index": name, "_id": ODD_ID}}, odd]
    client.bulk(body=actions, refresh=True)
    yield name
    client.indices.delete(index=name, ignore_unavailable=True)


def test_fallback_logging_agrees_with_the_plugins(client, cluster, opensearch_url, vector_index):
    """Without the plugin, features are logged by one ``_msearch`` of the feature queries;
    on a node that has it, both ways must log the same values for the same candidates: the
    dense, memory and provenance features (params inserted unescaped) included."""
    cluster.require(LTR_PLUGIN)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "catalog.yml"
        path.write_text(VECTOR_CATALOG.format(index=vector_index, model=model_dir()))
        catalog = load_catalog(path)
    featureset = build_featureset(catalog, f"ltrr_it_fs_{uuid.uuid4().hex[:8]}")
    names = list(featureset.names)
    assert names[:3] == ["arm_lexical", "dense_embedding", "memory_ltrr_q2e"]
    assert names[-3:] == ["from_lexical", "from_dense", "from_memory"]
    client.transport.perform_request(
        "POST", f"/_ltr/_featureset/{featureset.name}", body=featureset.body()
    )
    ids = [f"d{i}" for i in range(0, 40, 3)]
    lists = [
        Candidates(
            f"q{i}",
            f"q{i}",
            tuple(ids),
            search_params(catalog, w, vector=_unit(i * 3), retrieved={"lexical": ids[: i + 1]}),
        )
        for i, w in enumerate(WORDS)
    ]
    odd_ids = (*ids, ODD_ID)
    lists.append(
        Candidates(
            "odd",
            "odd",
            odd_ids,
            search_params(
                catalog, ODD_QUERY, vector=_unit(99), retrieved={"lexical": [ODD_ID, "d0"]}
            ),
        )
    )
    try:
        http = Cluster(opensearch_url)
        logged = {
            way: log_features(http, featureset, vector_index, lists, plugin=way, store=None)
            for way in (True, False)
        }
    finally:
        client.transport.perform_request("DELETE", f"/_ltr/_featureset/{featureset.name}")
    assert set(logged[True]) == {c.group for c in lists}
    nonzero = 0
    for c in lists:
        assert set(logged[True][c.group]) == set(logged[False][c.group]) == set(c.ids)
        for doc_id, values in logged[True][c.group].items():
            assert values == pytest.approx(logged[False][c.group][doc_id], rel=1e-5, abs=1e-6)
            nonzero += sum(v > 0 for v in values)
    assert nonzero > 50
    at = {name: names.index(name) for name in names}
    # q1 is "rock" and d0, d21 have predicted rock scores; q0 ("jazz") and d0, d15, d30 have
    # learned ones. Provenance: q3's lexical list is its first 4 ids.
    jazz, rock, q3 = (logged[True][g] for g in ("q0", "q1", "q3"))
    assert jazz["d0"][at["memory_ltrr_q2e"]] == pytest.approx(1.0 + 0.5 * 0.5, rel=1e-3)
    assert jazz["d3"][at["memory_ltrr_q2e"]] == 0.0
    assert rock["d21"][at["memory_ltrr_q2e_predicted"]] == pytest.approx(0.3 + 0.2 * 0.5, rel=1e-2)
    assert [q3[d][at["from_lexical"]] for d in ids[:5]] == [1.0, 1.0, 1.0, 1.0, 0.0]
    assert all(q3[d][at["from_dense"]] == 0.0 for d in ids)
    odd = logged[True]["odd"]
    assert odd[ODD_ID][at["from_lexical"]] == 1.0  # the quoted id reached the ids query intact
    assert odd["d3"][at["from_lexical"]] == 0.0
    assert odd[ODD_ID][at["arm_lexical"]] > 0  # the query text matched despite its quotes
    # The query vector of q1 is d3's own vector: cosine 1, the highest knn_score of the list.
    dense = {d: rock[d][at["dense_embedding"]] for d in ids}
    assert max(dense, key=dense.__getitem__) == "d3"


def _wait(condition, timeout=30.0):
    deadline = time.monotonic() + timeout
    while not (value := condition()):
        assert time.monotonic() < deadline, f"not met in {timeout}s (last value {value!r})"
        time.sleep(0.2)
    return value


def test_from_clicks_to_an_uploaded_model_that_reranks_intercepted_searches(
    client, cluster, opensearch_url, ltr_index, start_proxy, tmp_path
):
    cluster.require(LTR_PLUGIN)
    docs = _docs()
    catalog = tmp_path / "catalog.yml"
    catalog.write_text(CATALOG.format(index=ltr_index))
    with start_proxy([catalog], tmp_path / "proxy.log") as proxy:
        # Users click the documents whose title starts with the word they searched, wherever
        # the fused list shows them: half through /_ltrr/feedback, half as UBI events.
        clicks = 0
        for round_ in range(3):
            for i, word in enumerate(WORDS):
                answer = requests.post(
                    f"{proxy.url}/{ltr_index}/_search",
                    json={"size": 10, "ext": {"ltrr": {"query": word}}},
                    timeout=30,
                ).json()
                decision_id = answer["ext"]["ltrr"]["decision_id"]
                for rank, hit in enumerate(answer["hits"]["hits"], start=1):
                    if docs[hit["_id"]]["title"].split()[0] != word:
                        continue
                    clicks += 1
                    if (round_ + i) % 2:
                        event = {"type": "click", "object_id": hit["_id"], "position": rank}
                        reply = requests.post(
                            f"{proxy.url}/_ltrr/feedback",
                            json={"decision_id": decision_id, "events": [event]},
                            headers={TOKEN_HEADER: answer["ext"]["ltrr"]["feedback_token"]},
                            timeout=30,
                        )
                        assert reply.status_code == 202, reply.text
                    else:
                        ubi = {
                            "action_name": "click",
                            "query_id": decision_id,
                            "client_id": "simulated-user",
                            "timestamp": "2026-12-01T00:00:00Z",
                            "event_attributes": {
                                "object": {"object_id": hit["_id"], "object_id_field": "_id"},
                                "position": {"ordinal": rank},
                            },
                        }
                        reply = requests.post(f"{proxy.url}/ubi_events/_doc", json=ubi, timeout=30)
                        assert reply.status_code in (200, 201), reply.text
        searches = 3 * len(WORDS)

        def logged() -> bool:
            learning = requests.get(f"{proxy.url}/_ltrr/stats", timeout=10).json()["learning"]
            return learning["decisions_logged"] >= searches and learning["events_shipped"] >= clicks

        _wait(logged)
    assert clicks >= 2 * searches // 3
    client.indices.refresh(index=f"{DECISIONS_INDEX},{EVENTS_INDEX}")

    out = tmp_path / "out"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "ltrr.plugin.ops.cli",
            "ltr",
            "train",
            "--catalog",
            str(catalog),
            "--judgments",
            "coec",
            "--opensearch",
            opensearch_url,
            "--depth",
            "20",
            "--folds",
            "3",
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    model_name = f"{ltr_index}_ltr_v1"
    assert f"uploaded model {model_name}" in done.stdout, done.stdout
    change = (out / f"{model_name}.rerank.yml").read_text()
    featureset = orjson.loads(next(out.glob("*.featureset.json")).read_bytes())["featureset"]
    try:
        # Point the catalog's rerank at the model, as the command prints it.
        catalog.write_text(catalog.read_text() + change)
        served_catalog = load_catalog(catalog)
        assert served_catalog.rerank.model == model_name
        with start_proxy([catalog], tmp_path / "reranked.log") as proxy:
            for word in WORDS:
                answer = requests.post(
                    f"{proxy.url}/{ltr_index}/_search",
                    json={"size": 10, "ext": {"ltrr": {"query": word, "explain": True}}},
                    timeout=30,
                ).json()
                rerank = answer["ext"]["ltrr"]["rerank"]
                assert rerank["status"] == "ok", rerank
                hits = answer["hits"]["hits"]
                ids = [h["_id"] for h in hits]
                # A document's provenance features read only whether each arm found it, which
                # every hit's explanation says.
                retrieved: dict[str, list[str]] = {}
                for h in hits:
                    for p in h["_ltrr"]["provenance"]:
                        retrieved.setdefault(p["arm"], []).append(h["_id"])
                params = search_params(served_catalog, word, vector=None, retrieved=retrieved)
                own = _plugin_scores(client, ltr_index, model_name, params, ids)
                served = [h["_ltrr"]["ltr_score"] for h in hits]
                assert served == pytest.approx([own[i] for i in ids], rel=1e-5, abs=1e-6)
                assert served == sorted(served, reverse=True)
    finally:
        client.transport.perform_request("DELETE", f"/_ltr/_model/{model_name}")
        client.transport.perform_request("DELETE", f"/_ltr/_featureset/{featureset['name']}")
