from __future__ import annotations

from pathlib import Path

import orjson

from ltrr.query_plans.catalog import load_catalog
from ltrr.query_plans.plan import SearchInput, build_plan
from ltrr.query_plans.templates import TemplateRenderer

CATALOG = """\
target: music
budget: 30
policy: {name: static}
embedding: {model: "MODEL"}
arms:
  - name: lexical
    template: multi_match.json.j2
    params: {fields: ["name^3", tags]}
    size: {min: 1, max: 10}
  - name: dense
    template: knn.json.j2
    params: {field: embedding}
    needs_vector: true
    size: {min: 1, max: 10}
  - name: elsewhere
    template: multi_match.json.j2
    index: other-index
    params: {fields: [name]}
    size: {min: 1, max: 10}
  - name: broken
    template: broken.json.j2
    size: {min: 1, max: 10}
fallback: [{arm: lexical, size: 5}]
"""


def catalog(tmp_path: Path):
    model = tmp_path / "model"
    model.mkdir()
    (model / "model.onnx").write_bytes(b"")
    (model / "tokenizer.json").write_text("{}")
    (tmp_path / "broken.json.j2").write_text('{"match": {"name": {{ params.missing }}}}')
    path = tmp_path / "music.yml"
    path.write_text(CATALOG.replace("MODEL", str(model)))
    return load_catalog(path)


def plan(tmp_path, sizes, **request):
    defaults = {"target": "music", "query": "daft punk", "query_norm": "daft punk"}
    return build_plan(
        catalog(tmp_path),
        sizes,
        SearchInput(**{**defaults, **request}),
        TemplateRenderer(),
        timeout_ms=250,
    )


def bodies(result):
    lines = result.ndjson().decode().splitlines()
    return [
        (orjson.loads(h), orjson.loads(b)) for h, b in zip(lines[::2], lines[1::2], strict=True)
    ]


def test_only_sized_arms_in_catalog_order_with_their_index(tmp_path):
    result = plan(tmp_path, {"elsewhere": 3, "lexical": 4})
    assert [s.arm for s in result.searches] == ["lexical", "elsewhere"]
    (h1, b1), (h2, b2) = bodies(result)
    assert h1 == {"index": "music"}
    assert h2 == {"index": "other-index"}
    assert b1 == {
        "query": {"multi_match": {"query": "daft punk", "fields": ["name^3", "tags"]}},
        "size": 4,
        "timeout": "250ms",
        "track_total_hits": False,
    }
    assert b2["size"] == 3


def test_filters_wrap_text_arms_and_go_inside_knn(tmp_path):
    vector = [0.25, -0.5, 1.0]
    result = plan(
        tmp_path,
        {"lexical": 2, "dense": 5},
        filters=({"term": {"genre": "jazz"}},),
        post_filter={"term": {"live": True}},
        source=["name"],
        vector=vector,
    )
    (_, lexical), (_, dense) = bodies(result)
    assert lexical["query"] == {
        "bool": {
            "must": [{"multi_match": {"query": "daft punk", "fields": ["name^3", "tags"]}}],
            "filter": [{"term": {"genre": "jazz"}}],
        }
    }
    assert dense["query"] == {
        "knn": {"embedding": {"vector": vector, "k": 5, "filter": {"term": {"genre": "jazz"}}}}
    }
    for body in (lexical, dense):
        assert body["post_filter"] == {"term": {"live": True}}
        assert body["_source"] == ["name"]


def test_a_vector_arm_without_a_vector_and_a_broken_template_fail_alone(tmp_path):
    result = plan(tmp_path, {"lexical": 2, "dense": 2, "broken": 2})
    assert [s.arm for s in result.searches] == ["lexical"]
    assert result.failures["dense"] == "no query vector"
    assert "missing" in result.failures["broken"]


def test_the_catalogs_source_applies_when_the_caller_names_none(tmp_path):
    text = CATALOG + "source: {excludes: [embedding]}\n"
    model = tmp_path / "model"
    model.mkdir()
    (model / "model.onnx").write_bytes(b"")
    (model / "tokenizer.json").write_text("{}")
    path = tmp_path / "music.yml"
    path.write_text(text.replace("MODEL", str(model)).replace("broken.json.j2", "knn.json.j2"))
    filtered = load_catalog(path)
    base = {"target": "music", "query": "daft punk", "query_norm": "daft punk"}

    def sources(**request):
        result = build_plan(
            filtered,
            {"lexical": 2},
            SearchInput(**base, **request),
            TemplateRenderer(),
            timeout_ms=250,
        )
        return [b.get("_source", "absent") for _, b in bodies(result)]

    assert sources() == [{"excludes": ["embedding"]}]
    assert sources(source=["name"]) == [["name"]]  # the caller's own choice wins
    assert sources(source=True) == [True]
