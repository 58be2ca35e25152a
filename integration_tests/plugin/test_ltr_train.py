"""``train_ltr`` end to end on the real node, which has no LTR plugin: fallback logging,
cross-validation, files written and the upload refused in plain words."""

from __future__ import annotations

import uuid

import orjson
import pytest
from opensearchpy import OpenSearch

from ltrr.plugin.data.beir import Query, write_beir
from ltrr.plugin.ltr import format_result, train_ltr
from ltrr.query_plans.ltr.featureset import render_feature

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


def test_train_ltr_with_fallback_logging(client, cluster, opensearch_url, ltr_index, tmp_path):
    if cluster.has_plugin("opensearch-ltr"):
        pytest.skip("this node has the LTR plugin; this test covers the fallback")
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

    assert result.logging == "fallback"
    assert result.featureset.names == (
        "arm_lexical",
        "arm_popular",
        "popularity_plays",
        "match_title",
        "match_body",
    )
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
                        "must": render_feature(feature, result.queries[qid]),
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

    cv = result.cv
    assert 0.0 <= cv.baseline_ndcg <= 1.0
    for model in cv.models.values():
        assert len(model.fold_ndcg) == 4
        assert all(0.0 <= v <= 1.0 for v in model.fold_ndcg)
    assert result.winner in cv.models

    assert result.uploaded is False
    assert "LTR plugin not installed" in result.upload_message
    base = ltr_index  # letters, digits, - and _ stay as they are
    assert result.model_name == f"{base}_ltr_v1"
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
    assert again.model_name == f"{base}_ltr_v2"
