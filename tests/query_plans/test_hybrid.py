"""The hybrid body and its pipelines, built from a small catalog; expectations by hand."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from ltrr.query_plans.catalog import Catalog, load_catalog
from ltrr.query_plans.hybrid import (
    HybridError,
    build_hybrid,
    even_depth,
    normalization_pipeline,
    pipeline_for,
    pipeline_weights,
    rrf_pipeline,
    sub_query_arms,
)
from ltrr.query_plans.plan import SearchInput
from ltrr.query_plans.templates import TemplateRenderer

CATALOG = """\
target: music
budget: 50
policy: {name: static}
embedding: {model: "MODEL"}
arms:
  - name: lexical
    template: multi_match.json.j2
    params: {fields: ["name^3", tags]}
    size: {min: 1, max: 40}
  - name: dense
    template: knn.json.j2
    params: {field: embedding}
    needs_vector: true
    size: {min: 1, max: 40}
  - name: elsewhere
    template: multi_match.json.j2
    index: other-index
    params: {fields: [name]}
    size: {min: 1, max: 10}
  - name: memory
    template: memory.json.j2
    size: {min: 0, max: 20}
fusion: {method: rrf, k: 40, weights: {lexical: 3.0, dense: 1.0}}
memory: {field: q2e, predicted_field: q2e_p, predicted_weight: 0}
source: {excludes: [embedding]}
fallback: [{arm: lexical, size: 5}]
"""


@pytest.fixture
def catalog(tmp_path: Path) -> Catalog:
    model = tmp_path / "model"
    model.mkdir()
    (model / "model.onnx").write_bytes(b"")
    (model / "tokenizer.json").write_text("{}")
    path = tmp_path / "music.yml"
    path.write_text(CATALOG.replace("MODEL", str(model)))
    return load_catalog(path)


def _request(**extra: object) -> SearchInput:
    fields: dict[str, object] = {
        "target": "music",
        "query": "Daft Punk",
        "query_norm": "daft punk",
        "vector": (0.5, -0.25),
        **extra,
    }
    return SearchInput(**fields)  # type: ignore[arg-type]


def test_arms_on_another_index_are_not_sub_queries(catalog: Catalog) -> None:
    assert sub_query_arms(catalog, "music") == ("lexical", "dense", "memory")
    # An arm whose index is the target itself stays in.
    assert sub_query_arms(catalog, "other-index") == ("lexical", "dense", "elsewhere", "memory")


def test_even_depth_never_exceeds_the_budget() -> None:
    assert even_depth(120, 5) == 24
    assert even_depth(50, 3) == 16  # 48 in all, not 51
    with pytest.raises(HybridError, match="cannot give each of 3"):
        even_depth(2, 3)
    with pytest.raises(HybridError, match="at least one"):
        even_depth(10, 0)


def test_the_body_holds_each_rendered_clause_at_its_depth(catalog: Catalog) -> None:
    query = build_hybrid(catalog, _request(), TemplateRenderer(), depth=16, size=10)
    assert query.arms == ("lexical", "dense", "memory")
    assert query.candidates == 48
    body = orjson.loads(query.json())
    assert body == {
        "query": {
            "hybrid": {
                "queries": [
                    {"multi_match": {"query": "Daft Punk", "fields": ["name^3", "tags"]}},
                    # knn's k is the arm's share, as the proxy's plan would size it.
                    {"knn": {"embedding": {"vector": [0.5, -0.25], "k": 16}}},
                    {
                        "bool": {
                            "should": [
                                {"rank_feature": {"field": "q2e.daft punk", "linear": {}}},
                                {
                                    "rank_feature": {
                                        "field": "q2e.~daftpunk",
                                        "linear": {},
                                        "boost": 0.5,
                                    }
                                },
                            ],
                            "minimum_should_match": 1,
                        }
                    },
                ],
                "pagination_depth": 16,
            }
        },
        "size": 10,
        "_source": {"excludes": ["embedding"]},
    }


def test_filters_go_inside_every_clause_and_paging_and_source_are_kept(
    catalog: Catalog,
) -> None:
    term = {"term": {"genre": "house"}}
    query = build_hybrid(
        catalog,
        _request(filters=[term], post_filter={"term": {"x": 1}}, source=False),
        TemplateRenderer(),
        depth=16,
        size=5,
        from_=10,
    )
    body = orjson.loads(query.json())
    lexical, dense, _ = body["query"]["hybrid"]["queries"]
    assert lexical["bool"]["filter"] == [term]
    assert dense["knn"]["embedding"]["filter"] == term  # lucene's efficient filtering
    assert (body["from"], body["size"], body["_source"]) == (10, 5, False)
    assert body["post_filter"] == {"term": {"x": 1}}


def test_a_sub_query_that_cannot_render_fails_the_query(catalog: Catalog) -> None:
    # Without a vector the knn clause is missing: the pipeline's weights would shift.
    with pytest.raises(HybridError, match="dense: no query vector"):
        build_hybrid(catalog, _request(vector=None), TemplateRenderer(), depth=16, size=10)
    with pytest.raises(HybridError, match="at least 1"):
        build_hybrid(catalog, _request(), TemplateRenderer(), depth=0, size=10)


def test_rrf_pipeline_puts_the_constant_where_2_19_reads_it() -> None:
    assert rrf_pipeline(40)["phase_results_processors"] == [
        {
            "score-ranker-processor": {
                "combination": {"technique": "rrf", "parameters": {"rank_constant": 40}}
            }
        }
    ]
    with pytest.raises(HybridError, match=r"\[1, 10000\]"):
        rrf_pipeline(0)


def test_normalization_pipeline_checks_its_techniques_and_weights() -> None:
    pipeline = normalization_pipeline("l2", "harmonic_mean", [0.25, 0.75])
    assert pipeline["phase_results_processors"] == [
        {
            "normalization-processor": {
                "normalization": {"technique": "l2"},
                "combination": {
                    "technique": "harmonic_mean",
                    "parameters": {"weights": [0.25, 0.75]},
                },
            }
        }
    ]
    unweighted = normalization_pipeline()["phase_results_processors"][0]
    assert unweighted["normalization-processor"]["combination"] == {"technique": "arithmetic_mean"}
    with pytest.raises(HybridError, match="sum to 1"):
        normalization_pipeline(weights=[0.4, 0.5])
    with pytest.raises(HybridError, match="normalization 'z_score'"):
        normalization_pipeline("z_score")
    with pytest.raises(HybridError, match="combination 'max'"):
        normalization_pipeline(combination="max")


def test_pipelines_follow_the_catalog(catalog: Catalog) -> None:
    arms = ("lexical", "dense", "memory")
    # lexical 3, dense 1, memory unset (1): 3/5, 1/5, 1/5.
    assert pipeline_weights(catalog, arms) == pytest.approx([0.6, 0.2, 0.2])
    minmax = pipeline_for("minmax", catalog, arms)["phase_results_processors"][0]
    assert minmax["normalization-processor"]["normalization"] == {"technique": "min_max"}
    combination = minmax["normalization-processor"]["combination"]
    assert combination["technique"] == "arithmetic_mean"
    assert combination["parameters"]["weights"] == pytest.approx([0.6, 0.2, 0.2])
    rrf = pipeline_for("rrf", catalog, arms)["phase_results_processors"][0]
    assert rrf["score-ranker-processor"]["combination"]["parameters"] == {"rank_constant": 40}
    with pytest.raises(HybridError, match="hybrid method 'max'"):
        pipeline_for("max", catalog, arms)
