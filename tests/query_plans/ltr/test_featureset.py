from pathlib import Path

import pytest

from ltrr.query_plans.catalog import load_catalog
from ltrr.query_plans.ltr.featureset import (
    LOG_NAME,
    build_featureset,
    fallback_log_searches,
    read_fallback_log,
    read_sltr_log,
    render_feature,
    sltr_log_body,
)

CATALOG = """\
target: shop
budget: 100
embedding: {{model: {model}}}
policy: {{name: static}}
arms:
  - name: lexical
    template: multi_match.json.j2
    params: {{fields: ["title^2", "body"]}}
    size: {{min: 10, max: 50}}
  - name: dense
    template: knn.json.j2
    params: {{field: embedding}}
    needs_vector: true
    size: {{min: 0, max: 50}}
  - name: popular
    template: rank_feature.json.j2
    params: {{field: sales, text_fields: [title]}}
    size: {{min: 0, max: 20}}
  - name: memory
    template: memory.json.j2
    size: {{min: 0, max: 20}}
memory: {{}}
fallback:
  - {{arm: lexical, size: 10}}
index:
  mappings:
    properties:
      title: {{type: text, fields: {{raw: {{type: keyword}}, en: {{type: text}}}}}}
      body: {{type: text}}
      sales: {{type: rank_feature}}
      embedding: {{type: knn_vector, dimension: 4}}
      meta: {{properties: {{note: {{type: text}}}}}}
"""


@pytest.fixture
def catalog(tmp_path: Path):
    model = tmp_path / "model"
    model.mkdir()
    (model / "model.onnx").write_bytes(b"")  # the loader checks the files exist, nothing more
    (model / "tokenizer.json").write_text("{}")
    path = tmp_path / "shop.yml"
    path.write_text(CATALOG.format(model=model))
    return load_catalog(path)


def test_features_in_stable_order_with_vector_and_memory_arms_left_out(catalog):
    fs = build_featureset(catalog, "shop_fs")
    assert fs.names == (
        "arm_lexical",
        "arm_popular",
        "popularity_sales",
        "match_title",
        "match_title.en",
        "match_body",
        "match_meta.note",
    )
    assert set(fs.skipped) == {"dense", "memory"}
    assert "vector" in fs.skipped["dense"]
    assert "memory keys" in fs.skipped["memory"]
    assert "dense" in fs.description
    assert "memory" in fs.description
    assert build_featureset(catalog, "shop_fs").names == fs.names  # stable


def test_arm_feature_is_the_rendered_template_with_keywords(catalog):
    fs = build_featureset(catalog, "shop_fs")
    body = fs.body()["featureset"]
    assert body["name"] == "shop_fs"
    lexical, popular = body["features"][0], body["features"][1]
    assert lexical == {
        "name": "arm_lexical",
        "params": ["keywords"],
        "template_language": "mustache",
        "template": {"multi_match": {"query": "{{keywords}}", "fields": ["title^2", "body"]}},
    }
    assert popular["template"] == {
        "bool": {
            "must": {"rank_feature": {"field": "sales"}},
            "filter": {
                "multi_match": {"query": "{{keywords}}", "fields": ["title"], "operator": "or"}
            },
        }
    }
    assert body["features"][2]["template"] == {"rank_feature": {"field": "sales"}}
    assert body["features"][3]["template"] == {"match": {"title": "{{keywords}}"}}


def test_render_feature_substitutes_the_query_text(catalog):
    fs = build_featureset(catalog, "shop_fs")
    assert render_feature(fs.features[3], 'red "shoes"') == {"match": {"title": 'red "shoes"'}}


def test_bad_name_is_refused(catalog):
    with pytest.raises(ValueError, match="featureset name"):
        build_featureset(catalog, "bad name/")


def test_digest_changes_with_content_only(catalog):
    a, b = build_featureset(catalog, "a"), build_featureset(catalog, "b")
    assert a.digest() == b.digest()
    assert len(a.digest()) == 10


def test_sltr_log_body(catalog):
    fs = build_featureset(catalog, "shop_fs")
    assert sltr_log_body(fs, "red shoes", ["1", "2"], store="mystore") == {
        "size": 2,
        "_source": False,
        "track_total_hits": False,
        "query": {
            "bool": {
                "filter": [
                    {"ids": {"values": ["1", "2"]}},
                    {
                        "sltr": {
                            "_name": LOG_NAME,
                            "featureset": "shop_fs",
                            "params": {"keywords": "red shoes"},
                            "store": "mystore",
                        }
                    },
                ]
            }
        },
        "ext": {
            "ltr_log": {
                "log_specs": {
                    "name": "ltrr_log",
                    "named_query": "logged_featureset",
                    "missing_as_zero": True,
                }
            }
        },
    }
    assert "store" not in sltr_log_body(fs, "x", ["1"])["query"]["bool"]["filter"][1]["sltr"]


def test_fallback_searches_one_per_feature(catalog):
    fs = build_featureset(catalog, "shop_fs")
    searches = fallback_log_searches(fs, "red", ["1", "2", "3"])
    assert len(searches) == len(fs.names)
    assert searches[3] == {
        "size": 3,
        "_source": False,
        "track_total_hits": False,
        "query": {
            "bool": {
                "must": {"match": {"title": "red"}},
                "filter": {"ids": {"values": ["1", "2", "3"]}},
            }
        },
    }


def _hits(*pairs):
    return {"_shards": {"failed": 0}, "hits": {"hits": [{"_id": i, "_score": s} for i, s in pairs]}}


def test_read_fallback_log_zero_where_not_matched(catalog):
    fs = build_featureset(catalog, "shop_fs")
    responses = [_hits(("1", 2.5), ("3", 0.5))] + [_hits()] * (len(fs.names) - 2)
    responses.append(_hits(("2", 7.0)))
    logged = read_fallback_log(responses, fs, ["1", "2", "3"])
    zeros = (0.0,) * (len(fs.names) - 2)
    assert logged == {
        "1": (2.5, *zeros, 0.0),
        "2": (0.0, *zeros, 7.0),
        "3": (0.5, *zeros, 0.0),
    }


def test_read_fallback_log_refuses_a_failed_feature(catalog):
    fs = build_featureset(catalog, "shop_fs")
    responses = [_hits()] * len(fs.names)
    responses[1] = {"error": {"type": "x"}, "status": 400}
    with pytest.raises(ValueError, match="arm_popular"):
        read_fallback_log(responses, fs, ["1"])
    with pytest.raises(ValueError, match="one each"):
        read_fallback_log(responses[:2], fs, ["1"])


def test_read_sltr_log(catalog):
    fs = build_featureset(catalog, "shop_fs")
    entry = [{"name": "arm_lexical", "value": 1.5}, {"name": "match_body", "value": 0.25}]
    response = {"hits": {"hits": [{"_id": "7", "fields": {"_ltrlog": [{"ltrr_log": entry}]}}]}}
    values = read_sltr_log(response, fs)["7"]
    assert values[fs.names.index("arm_lexical")] == 1.5
    assert values[fs.names.index("match_body")] == 0.25
    assert sum(values) == 1.75  # every other feature is 0
