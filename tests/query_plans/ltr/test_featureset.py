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
from ltrr.query_plans.ltr.params import search_params

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
      embedding:
        type: knn_vector
        dimension: 4
        method: {{name: hnsw, engine: lucene, space_type: cosinesimil}}
      ltrr_q2e: {{type: rank_features}}
      ltrr_q2e_predicted: {{type: rank_features}}
      meta: {{properties: {{note: {{type: text}}}}}}
"""

# Every feature, in the featureset's order: arms (catalog order, dense and memory left out),
# dense, memory (learned then predicted), popularity, text fields (mapping order), provenance
# (catalog order).
NAMES = (
    "arm_lexical",
    "arm_popular",
    "dense_embedding",
    "memory_ltrr_q2e",
    "memory_ltrr_q2e_predicted",
    "popularity_sales",
    "match_title",
    "match_title.en",
    "match_body",
    "match_meta.note",
    "from_lexical",
    "from_dense",
    "from_popular",
    "from_memory",
)


def load(tmp_path: Path, text: str = CATALOG):
    model = tmp_path / "model"
    model.mkdir(exist_ok=True)
    (model / "model.onnx").write_bytes(b"")  # the loader checks the files exist, nothing more
    (model / "tokenizer.json").write_text("{}")
    path = tmp_path / "shop.yml"
    path.write_text(text.format(model=model))
    return load_catalog(path)


@pytest.fixture
def catalog(tmp_path: Path):
    return load(tmp_path)


def by_name(fs):
    return {f.name: f for f in fs.features}


# The params of one search for "red shoes", as query_plans/ltr/params.py builds them.
PARAMS = {
    "keywords": "red shoes",
    "memory_exact": "red shoes",
    "memory_near": "~redshoes",
    "query_vector": "[0.5,0.25]",
    "from_lexical": '["1","2"]',
    "from_dense": "[]",
    "from_popular": '["2"]',
    "from_memory": "[]",
}


def test_features_in_stable_order_with_vector_and_memory_arms_left_out(catalog):
    fs = build_featureset(catalog, "shop_fs")
    assert fs.names == NAMES
    assert [f.kind for f in fs.features] == [
        "arm",
        "arm",
        "dense",
        "memory",
        "memory",
        "popularity",
        "text",
        "text",
        "text",
        "text",
        "provenance",
        "provenance",
        "provenance",
        "provenance",
    ]
    assert set(fs.skipped) == {"dense", "memory"}
    assert "vector" in fs.skipped["dense"]
    assert fs.skipped["dense"].endswith("; dense_embedding scores its vector field instead")
    assert "memory keys" in fs.skipped["memory"]
    assert "dense" in fs.description
    assert "memory" in fs.description
    assert build_featureset(catalog, "shop_fs").names == fs.names  # stable


def test_arm_feature_is_the_rendered_template_with_keywords(catalog):
    fs = build_featureset(catalog, "shop_fs")
    body = fs.body()["featureset"]
    assert body["name"] == "shop_fs"
    features = {f["name"]: f for f in body["features"]}
    assert list(features) == list(NAMES)
    lexical, popular = features["arm_lexical"], features["arm_popular"]
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
    assert features["popularity_sales"]["template"] == {"rank_feature": {"field": "sales"}}
    assert features["popularity_sales"]["params"] == ["keywords"]
    assert features["match_title"]["template"] == {"match": {"title": "{{keywords}}"}}


def test_render_feature_substitutes_the_query_text(catalog):
    match_title = by_name(build_featureset(catalog, "shop_fs"))["match_title"]
    params = {"keywords": 'red "shoes"'}
    assert render_feature(match_title, params) == {"match": {"title": 'red "shoes"'}}


def test_bad_name_is_refused(catalog):
    with pytest.raises(ValueError, match="featureset name"):
        build_featureset(catalog, "bad name/")


def test_digest_changes_with_content_only(catalog):
    a, b = build_featureset(catalog, "a"), build_featureset(catalog, "b")
    assert a.digest() == b.digest()
    assert len(a.digest()) == 10


def test_sltr_log_body(catalog):
    fs = build_featureset(catalog, "shop_fs")
    params = {"keywords": "red shoes", "from_lexical": '["1"]'}
    assert sltr_log_body(fs, params, ["1", "2"], store="mystore") == {
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
                            "params": {"keywords": "red shoes", "from_lexical": '["1"]'},
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
    sltr = sltr_log_body(fs, PARAMS, ["1"])["query"]["bool"]["filter"][1]["sltr"]
    assert "store" not in sltr
    assert sltr["params"] == PARAMS
    assert sltr["params"] is not PARAMS  # a copy: the caller's mapping is not sent as it is


def test_fallback_searches_one_per_feature(catalog):
    fs = build_featureset(catalog, "shop_fs")
    searches = fallback_log_searches(fs, {**PARAMS, "keywords": "red"}, ["1", "2", "3"])
    assert len(searches) == len(fs.names)
    assert searches[NAMES.index("match_title")] == {
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
    # provenance: the ids the arm retrieved score, inside the candidates' ids filter
    assert searches[NAMES.index("from_lexical")]["query"]["bool"] == {
        "must": {"ids": {"values": ["1", "2"]}},
        "filter": {"ids": {"values": ["1", "2", "3"]}},
    }


def test_fallback_searches_need_every_param(catalog):
    fs = build_featureset(catalog, "shop_fs")
    params = {k: v for k, v in PARAMS.items() if k != "query_vector"}
    with pytest.raises(ValueError, match="dense_embedding: missing param 'query_vector'"):
        fallback_log_searches(fs, params, ["1"])


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


def test_dense_feature_scores_the_query_vector_over_every_document(catalog):
    dense = by_name(build_featureset(catalog, "shop_fs"))["dense_embedding"]
    plugin = dense.to_json()
    assert plugin["params"] == ["query_vector"]
    assert plugin["template_language"] == "mustache"
    # a string: the vector goes in unescaped, as a JSON array, so the template is no JSON yet
    assert isinstance(plugin["template"], str)
    assert '"query_value": {{{query_vector}}}' in plugin["template"]
    assert render_feature(dense, {"query_vector": "[0.5, 0.25]"}) == {
        "script_score": {
            "query": {"match_all": {}},
            "script": {
                "source": "knn_score",
                "lang": "knn",
                "params": {
                    "field": "embedding",
                    "space_type": "cosinesimil",
                    "query_value": [0.5, 0.25],
                },
            },
        }
    }


def test_dense_feature_space_type_defaults_to_l2(tmp_path):
    text = CATALOG.replace(
        "        method: {{name: hnsw, engine: lucene, space_type: cosinesimil}}\n", ""
    )
    dense = by_name(build_featureset(load(tmp_path, text), "shop_fs"))["dense_embedding"]
    clause = render_feature(dense, {"query_vector": "[1.0]"})
    assert clause["script_score"]["script"]["params"] == {
        "field": "embedding",
        "space_type": "l2",
        "query_value": [1.0],
    }


def test_no_dense_or_memory_feature_without_their_field_types(tmp_path):
    # embedding is not a knn_vector, the predicted memory field is missing: neither feature
    text = (
        CATALOG.replace("type: knn_vector", "type: float")
        .replace("        dimension: 4\n", "")
        .replace("        method: {{name: hnsw, engine: lucene, space_type: cosinesimil}}\n", "")
        .replace("      ltrr_q2e_predicted: {{type: rank_features}}\n", "")
    )
    fs = build_featureset(load(tmp_path, text), "shop_fs")
    assert fs.names == tuple(
        n for n in NAMES if n not in ("dense_embedding", "memory_ltrr_q2e_predicted")
    )
    assert "dense_" not in fs.skipped["dense"]


def test_without_a_mapping_only_arms_and_provenance(tmp_path):
    text = CATALOG[: CATALOG.index("index:")]
    fs = build_featureset(load(tmp_path, text), "shop_fs")
    assert fs.names == (
        "arm_lexical",
        "arm_popular",
        "from_lexical",
        "from_dense",
        "from_popular",
        "from_memory",
    )
    assert not fs.skipped["dense"].endswith("instead")


def test_memory_feature_weighs_the_near_key_at_half(catalog):
    features = by_name(build_featureset(catalog, "shop_fs"))
    learned = features["memory_ltrr_q2e"]
    assert learned.to_json() == {
        "name": "memory_ltrr_q2e",
        "params": ["memory_exact", "memory_near"],
        "template_language": "mustache",
        "template": {
            "bool": {
                "should": [
                    {"rank_feature": {"field": "ltrr_q2e.{{{memory_exact}}}", "linear": {}}},
                    {
                        "rank_feature": {
                            "field": "ltrr_q2e.{{{memory_near}}}",
                            "linear": {},
                            "boost": 0.5,
                        }
                    },
                ]
            }
        },
    }
    assert render_feature(features["memory_ltrr_q2e_predicted"], PARAMS) == {
        "bool": {
            "should": [
                {"rank_feature": {"field": "ltrr_q2e_predicted.red shoes", "linear": {}}},
                {
                    "rank_feature": {
                        "field": "ltrr_q2e_predicted.~redshoes",
                        "linear": {},
                        "boost": 0.5,
                    }
                },
            ]
        }
    }


def test_a_memory_key_with_a_double_quote_survives_rendering(catalog):
    learned = by_name(build_featureset(catalog, "shop_fs"))["memory_ltrr_q2e"]
    # the params carry the keys JSON-escaped (without quotes): the template puts the quotes
    params = {"memory_exact": 'say \\"hi\\"', "memory_near": '~\\"hi\\"say'}
    should = render_feature(learned, params)["bool"]["should"]
    assert [c["rank_feature"]["field"] for c in should] == [
        'ltrr_q2e.say "hi"',
        'ltrr_q2e.~"hi"say',
    ]


def test_provenance_feature_is_an_ids_query_over_the_arms_ids(catalog):
    features = by_name(build_featureset(catalog, "shop_fs"))
    lexical = features["from_lexical"]
    assert lexical.to_json() == {
        "name": "from_lexical",
        "params": ["from_lexical"],
        "template_language": "mustache",
        "template": '{"ids": {"values": {{{from_lexical}}}}}',
    }
    assert render_feature(lexical, PARAMS) == {"ids": {"values": ["1", "2"]}}
    assert render_feature(features["from_dense"], PARAMS) == {"ids": {"values": []}}


def test_a_missing_param_raises(catalog):
    features = by_name(build_featureset(catalog, "shop_fs"))
    with pytest.raises(ValueError, match="feature memory_ltrr_q2e: missing param 'memory_near'"):
        render_feature(features["memory_ltrr_q2e"], {"memory_exact": "x"})
    with pytest.raises(ValueError, match="feature from_popular: missing param 'from_popular'"):
        render_feature(features["from_popular"], {"keywords": "x"})
    with pytest.raises(ValueError, match="feature arm_lexical: missing param 'keywords'"):
        render_feature(features["arm_lexical"], {})


def test_every_feature_renders_with_the_params_of_one_search(catalog):
    fs = build_featureset(catalog, "shop_fs")
    params = search_params(
        catalog, "Red Shoes", vector=[0.5, 0.25], retrieved={"lexical": ["b", "a", "b"]}
    )
    rendered = {f.name: render_feature(f, params) for f in fs.features}
    assert rendered["arm_lexical"] == {
        "multi_match": {"query": "Red Shoes", "fields": ["title^2", "body"]}
    }
    assert rendered["dense_embedding"]["script_score"]["script"]["params"]["query_value"] == [
        0.5,
        0.25,
    ]
    assert [c["rank_feature"]["field"] for c in rendered["memory_ltrr_q2e"]["bool"]["should"]] == [
        "ltrr_q2e.red shoes",
        "ltrr_q2e.~redshoes",
    ]
    assert rendered["from_lexical"] == {"ids": {"values": ["a", "b"]}}
    for arm in ("dense", "popular", "memory"):
        assert rendered[f"from_{arm}"] == {"ids": {"values": []}}
