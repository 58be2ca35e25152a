import hashlib
from pathlib import Path

import pytest

import ltrr.templates
from ltrr.bandit.policies.base import PolicyConfig
from ltrr.query_plans.catalog import (
    Arm,
    Catalog,
    CatalogError,
    ContextField,
    DebiasConfig,
    EmbeddingConfig,
    FallbackArm,
    FeatureConfig,
    FeedbackConfig,
    FusionConfig,
    InterceptRules,
    MemoryConfig,
    RerankConfig,
    load_catalog,
    validate_catalog,
)
from tests.query_plans.catalog._minimal import MINIMAL, model_folder, write

BUILTIN = Path(ltrr.templates.__file__).resolve().parent
EXAMPLES = Path(__file__).resolve().parents[3] / "query_plans" / "catalogs"
SHARED_MODEL = Path(__file__).resolve().parents[3].parent / "shared/models/all-MiniLM-L6-v2-onnx"

VECTOR_ARM = "    size: {max: 10}\n    needs_vector: true\n"  # replaces line 12; adds line 13


def only_error(path: Path) -> CatalogError:
    errors = validate_catalog(path)
    assert len(errors) == 1, [str(e) for e in errors]
    return errors[0]


# -- a valid catalog --------------------------------------------------------------------------


FULL = """\
target: [music, music-*]
budget: 50
deadline_ms: 500
embedding:
  model: model
  max_length: 128
  cache_size: 10
features:
  entity_field: name.keyword
  entity_refresh_seconds: 60
  entity_max: 1000
  context: {segment: categorical, age: numeric}
  hash_buckets: 4
policy: {name: linucb, alpha: 0.5, min_probability: 0.1}
arms:
  - name: lexical
    template: multi_match.json.j2
    params: {fields: ["name^3", tags], fuzziness: AUTO}
    size: {min: 5, max: 40}
    cost: 0.1
  - name: dense
    template: knn.json.j2
    params: {field: embedding}
    size: {max: 30}
    needs_vector: true
    index: music-vectors
fusion: {method: combsum, norm: zscore, weights: {lexical: 2, dense: 1.5}}
rerank: {model: music_ltr, store: feats, window: 100, params: {boost: 2}}
intercept: {match: false, q: false}
fallback: [{arm: lexical, size: 20}]
index:
  settings: {index: {knn: true}}
  mappings: {properties: {name: {type: text}}}
"""


def test_valid_catalog_loads_into_the_exact_model(tmp_path):
    model = model_folder(tmp_path)
    path = write(tmp_path, FULL)
    digest = hashlib.sha256(path.read_bytes())
    digest.update((BUILTIN / "multi_match.json.j2").read_bytes())
    digest.update((BUILTIN / "knn.json.j2").read_bytes())

    catalog = load_catalog(path)

    assert catalog == Catalog(
        path=path.resolve(),
        targets=("music", "music-*"),
        arms=(
            Arm(
                name="lexical",
                template=BUILTIN / "multi_match.json.j2",
                params={"fields": ["name^3", "tags"], "fuzziness": "AUTO"},
                min_size=5,
                max_size=40,
                needs_vector=False,
                cost=0.1,
            ),
            Arm(
                name="dense",
                template=BUILTIN / "knn.json.j2",
                params={"field": "embedding"},
                min_size=0,
                max_size=30,
                needs_vector=True,
                cost=1.0,
                index="music-vectors",
            ),
        ),
        policy=PolicyConfig(name="linucb", alpha=0.5, min_probability=0.1),
        budget=50,
        fusion=FusionConfig(
            method="combsum", k=60, norm="zscore", weights={"lexical": 2.0, "dense": 1.5}
        ),
        fallback=(FallbackArm("lexical", 20),),
        rerank=RerankConfig(model="music_ltr", store="feats", window=100, params={"boost": 2}),
        intercept=InterceptRules(match=False, multi_match=True, query_string_q=False),
        features=FeatureConfig(
            entity_field="name.keyword",
            entity_refresh_seconds=60.0,
            entity_max=1000,
            context=(ContextField("segment", "categorical"), ContextField("age", "numeric")),
            hash_buckets=4,
        ),
        embedding=EmbeddingConfig(model=model, max_length=128, cache_size=10),
        deadline_ms=500,
        digest=digest.hexdigest(),
        index_body={
            "settings": {"index": {"knn": True}},
            "mappings": {"properties": {"name": {"type": "text"}}},
        },
    )
    assert catalog.arm("dense").spec().needs_vector
    assert validate_catalog(path) == []


def test_minimal_catalog_takes_the_defaults(tmp_path):
    catalog = load_catalog(write(tmp_path, MINIMAL))
    assert catalog.policy == PolicyConfig(name="static")
    assert catalog.fusion == FusionConfig()
    assert catalog.intercept == InterceptRules()
    assert catalog.features == FeatureConfig()
    assert catalog.deadline_ms == 1000
    assert catalog.rerank is None
    assert catalog.embedding is None
    assert catalog.index_body is None
    assert catalog.arm("popular").min_size == 0
    assert catalog.arm("popular").cost == 1.0


def test_the_model_is_read_only(tmp_path):
    catalog = load_catalog(write(tmp_path, MINIMAL))
    with pytest.raises(TypeError):
        catalog.arms[0].params["fields"] = ["x"]  # type: ignore[index]
    with pytest.raises(AttributeError):
        catalog.budget = 1  # type: ignore[misc]


def test_anchors_and_merge_keys(tmp_path):
    text = MINIMAL.replace(
        "  - name: popular\n    template: rank_feature.json.j2\n"
        "    params: {field: popularity, text_fields: [name]}\n    size: {max: 10}\n",
        "  - <<: &base {template: multi_match.json.j2, size: {max: 10}}\n"
        "    name: tags\n    params: {fields: [tags]}\n"
        "  - <<: *base\n    name: other\n    size: {max: 3}\n",
    )
    catalog = load_catalog(write(tmp_path, text))
    assert [a.name for a in catalog.arms] == ["lexical", "tags", "other"]
    assert catalog.arm("other").max_size == 3
    assert catalog.arm("other").template == BUILTIN / "multi_match.json.j2"


# -- errors name the line and key -------------------------------------------------------------


def minimal(*replacements: tuple[str, str], append: str = "") -> str:
    text = MINIMAL
    for old, new in replacements:
        assert old in text
        text = text.replace(old, new, 1)
    return text + append


@pytest.mark.parametrize(
    ("text", "line", "key", "message"),
    [
        pytest.param(
            minimal(("    size: {max: 10}", "    sise: {max: 10}")),
            12,
            "arms[1].sise",
            "unknown key 'sise'; did you mean 'size'?",
            id="unknown-key",
        ),
        pytest.param(
            minimal(("size: {min: 5, max: 10}", "size: {min: 5, max: 3}")),
            8,
            "arms[0].size.max",
            "is 3, less than min (5)",
            id="min-above-max",
        ),
        pytest.param(
            minimal(("size: {max: 10}", "size: {max: 10001}")),
            12,
            "arms[1].size.max",
            "must be between 1 and 10000, got 10001",
            id="max-too-large",
        ),
        pytest.param(
            minimal(("size: {max: 10}", "size: {max: 0}")),
            12,
            "arms[1].size.max",
            "must be between 1 and 10000, got 0",
            id="max-zero",
        ),
        pytest.param(
            minimal(("size: {min: 5, max: 10}", "size: {min: -1, max: 10}")),
            8,
            "arms[0].size.min",
            "must be between 0 and 10000, got -1",
            id="min-negative",
        ),
        pytest.param(
            minimal(("size: {max: 10}", "size: {min: 1}")),
            12,
            "arms[1].size.max",
            "required key is missing",
            id="size-max-missing",
        ),
        pytest.param(
            minimal(("name: popular", "name: lexical")),
            9,
            "arms[1].name",
            "duplicate arm name 'lexical' (first at line 5)",
            id="duplicate-arm",
        ),
        pytest.param(
            minimal(("name: popular", "name: Popular-Arm")),
            9,
            "arms[1].name",
            "'Popular-Arm': arm names use only a-z, 0-9 and _",
            id="arm-name-pattern",
        ),
        pytest.param(
            minimal(("budget: 20", "budget: 4")),
            2,
            "budget",
            "is 4, less than the arms' minimum sizes, which add up to 5 (lexical 5)",
            id="budget-below-minimums",
        ),
        pytest.param(
            minimal(("budget: 20", 'budget: "20"')),
            2,
            "budget",
            "must be an integer, got '20'",
            id="budget-type",
        ),
        pytest.param(
            minimal(("budget: 20", "budget: true")),
            2,
            "budget",
            "must be an integer, got true",
            id="bool-is-not-int",
        ),
        pytest.param(
            minimal(("budget: 20\n", "")),
            1,
            "budget",
            "required key is missing",
            id="required-top-key",
        ),
        pytest.param(
            minimal(("budget: 20", "budget:")),
            2,
            "budget",
            "must have a value, not null",
            id="required-top-key-null",
        ),
        pytest.param(
            minimal(append="budget: 30\n"),
            15,
            "budget",
            "duplicate key (first at line 2)",
            id="duplicate-key",
        ),
        pytest.param(
            minimal(append="fusoin: {k: 1}\n"),
            15,
            "fusoin",
            "unknown key 'fusoin'; did you mean 'fusion'?",
            id="unknown-top-key",
        ),
        pytest.param(
            minimal(("target: music", "target: music,books")),
            1,
            "target",
            "'music,books' is not one index, alias or pattern; list several instead",
            id="target-comma",
        ),
        pytest.param(
            minimal(("    params: {fields: [name]}", "    cost: -0.5")),
            7,
            "arms[0].cost",
            "must be >= 0.0, got -0.5",
            id="negative-cost",
        ),
        pytest.param(
            minimal(("    size: {max: 10}\n", VECTOR_ARM)),
            13,
            "arms[1].needs_vector",
            "arm 'popular' needs a query vector, but the catalog has no embedding section",
            id="vector-without-embedding",
        ),
        pytest.param(
            minimal(
                ("    size: {max: 10}\n", VECTOR_ARM),
                ("needs_vector: true", "needs_vector: yes please"),
            ),
            13,
            "arms[1].needs_vector",
            "must be true or false, got 'yes please'",
            id="needs-vector-type",
        ),
        pytest.param(
            minimal(("multi_match.json.j2", "nope.json.j2")),
            6,
            "arms[0].template",
            "template 'nope.json.j2' not found (looked for",
            id="template-missing",
        ),
        pytest.param(
            minimal(append="fusion: {method: rff}\n"),
            15,
            "fusion.method",
            "unknown value 'rff'; did you mean 'rrf'?",
            id="fusion-method",
        ),
        pytest.param(
            minimal(append="fusion:\n  method: rrf\n  k: 0\n"),
            17,
            "fusion.k",
            "must be >= 1, got 0",
            id="fusion-k",
        ),
        pytest.param(
            minimal(append="fusion: {method: combmnz, norm: l2}\n"),
            15,
            "fusion.norm",
            "unknown value 'l2' (expected one of: minmax, zscore)",
            id="fusion-norm",
        ),
        pytest.param(
            minimal(append="fusion: {method: combsum, k: 10}\n"),
            15,
            "fusion.k",
            "k applies to rrf only, not combsum",
            id="fusion-k-with-combsum",
        ),
        pytest.param(
            minimal(append="fusion:\n  weights:\n    lexical: 1\n    populr: 2\n"),
            18,
            "fusion.weights.populr",
            "unknown arm 'populr'; did you mean 'popular'?",
            id="fusion-weight-arm",
        ),
        pytest.param(
            minimal(append="fusion: {weights: {lexical: -1}}\n"),
            15,
            "fusion.weights.lexical",
            "must be >= 0.0, got -1",
            id="fusion-weight-negative",
        ),
        pytest.param(
            minimal(("{arm: lexical, size: 5}", "{arm: lexicl, size: 5}")),
            14,
            "fallback[0].arm",
            "unknown arm 'lexicl'; did you mean 'lexical'?",
            id="fallback-arm",
        ),
        pytest.param(
            minimal(("{arm: lexical, size: 5}", "{arm: lexical, size: 11}")),
            14,
            "fallback[0].size",
            "must be within arm 'lexical''s sizes (between 5 and 10), got 11",
            id="fallback-size-above",
        ),
        pytest.param(
            minimal(("{arm: lexical, size: 5}", "{arm: lexical, size: 4}")),
            14,
            "fallback[0].size",
            "must be within arm 'lexical''s sizes (between 5 and 10), got 4",
            id="fallback-size-below",
        ),
        pytest.param(
            minimal(("fallback:\n  - {arm: lexical, size: 5}\n", "fallback: []\n")),
            13,
            "fallback",
            "must list at least one of {arm, size} entries",
            id="fallback-empty",
        ),
        pytest.param(
            minimal(append="  - {arm: lexical, size: 6}\n"),
            15,
            "fallback[1].arm",
            "'lexical' is already at line 14",
            id="fallback-twice",
        ),
        pytest.param(
            minimal(("{name: static}", "{name: linucbb}")),
            3,
            "policy.name",
            "unknown policy 'linucbb'",
            id="policy-name",
        ),
        pytest.param(
            minimal(("{name: static}", "{name: linucb, alpah: 1}")),
            3,
            "policy.alpah",
            "unknown setting for policy 'linucb'; did you mean 'alpha'?",
            id="policy-unknown-setting",
        ),
        pytest.param(
            minimal(("policy: {name: static}", "policy:\n  name: linucb\n  min_probability: 0.9")),
            5,
            "policy.min_probability",
            "must be between 0.0 and 0.5, got 0.9",
            id="policy-setting-own-line",
        ),
        pytest.param(
            minimal(("{name: static}", "{name: static, include: [lexical, nope]}")),
            3,
            "policy.include[1]",
            "unknown arm 'nope'",
            id="policy-include",
        ),
        pytest.param(
            minimal(append='rerank: {model: ""}\n'),
            15,
            "rerank.model",
            "must not be empty",
            id="rerank-model",
        ),
        pytest.param(
            minimal(append="rerank:\n  model: m\n  window: 0\n"),
            17,
            "rerank.window",
            "must be >= 1, got 0",
            id="rerank-window",
        ),
        pytest.param(
            minimal(append="intercept: {match: 1}\n"),
            15,
            "intercept.match",
            "must be true or false, got 1",
            id="intercept-flag",
        ),
        pytest.param(
            minimal(append="features:\n  context: {segment: categorial}\n"),
            16,
            "features.context.segment",
            "unknown value 'categorial'; did you mean 'categorical'?",
            id="context-kind",
        ),
        pytest.param(
            minimal(append="features: {hash_buckets: 2000}\n"),
            15,
            "features.hash_buckets",
            "must be between 1 and 1024, got 2000",
            id="hash-buckets",
        ),
        pytest.param(
            minimal(append="deadline_ms: 5\n"),
            15,
            "deadline_ms",
            "must be between 10 and 60000, got 5",
            id="deadline",
        ),
        pytest.param(
            minimal(append="index: {setings: {}}\n"),
            15,
            "index.setings",
            "unknown key 'setings'; did you mean 'settings'?",
            id="index-body-key",
        ),
        pytest.param(
            minimal(("params: {fields: [name]}", "params: {fields: [name], when: 2024-01-01}")),
            7,
            "arms[0].params.when",
            "must be a string, number, boolean or null, got 2024-01-01 (a date)",
            id="params-json-only",
        ),
    ],
)
def test_error_names_line_and_key(tmp_path, text, line, key, message):
    path = write(tmp_path, text)
    error = only_error(path)
    assert (error.path, error.line, error.key) == (str(path), line, key)
    assert message in error.message
    with pytest.raises(CatalogError) as raised:
        load_catalog(path)
    assert str(raised.value) == str(error)
    assert str(error).startswith(f"{path}:{line}: {key}: ")


def test_template_syntax_error_names_the_template_and_its_line(tmp_path):
    (tmp_path / "broken.json.j2").write_text('{\n  "a": {% if %}\n}\n')
    path = write(tmp_path, minimal(("multi_match.json.j2", "broken.json.j2")))
    error = only_error(path)
    assert (error.line, error.key) == (6, "arms[0].template")
    assert f"{tmp_path / 'broken.json.j2'}:2: template syntax error" in error.message


def test_model_folder_must_exist(tmp_path):
    text = minimal(("    size: {max: 10}\n", VECTOR_ARM), append="embedding: {model: nowhere}\n")
    error = only_error(write(tmp_path, text))
    assert (error.line, error.key) == (16, "embedding.model")
    assert error.message == f"model folder {tmp_path / 'nowhere'} does not exist"


def test_model_folder_must_hold_the_model(tmp_path):
    (tmp_path / "empty").mkdir()
    text = minimal(("    size: {max: 10}\n", VECTOR_ARM), append="embedding:\n  model: empty\n")
    error = only_error(write(tmp_path, text))
    assert (error.line, error.key) == (17, "embedding.model")
    assert error.message == f"model folder {tmp_path / 'empty'} has no model.onnx, tokenizer.json"


def test_several_errors_are_all_reported_in_line_order(tmp_path):
    text = minimal(
        ("budget: 20", "budget: -1"),
        ("size: {min: 5, max: 10}", "size: {min: 5, max: 3}"),
        ("{arm: lexical, size: 5}", "{arm: nope, size: 5}"),
        append="fusion: {method: rff}\n",
    )
    path = write(tmp_path, text)
    errors = validate_catalog(path)
    assert [(e.line, e.key) for e in errors] == [
        (2, "budget"),
        (8, "arms[0].size.max"),
        (14, "fallback[0].arm"),
        (15, "fusion.method"),
    ]
    with pytest.raises(CatalogError) as raised:
        load_catalog(path)
    assert raised.value.line == 2


# -- the file itself --------------------------------------------------------------------------


def test_yaml_syntax_error_has_its_line(tmp_path):
    text = minimal(("params: {fields: [name]}", "params: {fields: [name}"))
    error = only_error(write(tmp_path, text))
    assert error.line == 7
    assert error.key == ""
    assert error.message.startswith("YAML syntax error: ")


def test_yaml_indentation_error_has_its_line(tmp_path):
    path = tmp_path / "catalog.yml"
    path.write_text("target: music\nbudget: 20\n  policy: x\n")
    error = only_error(path)
    assert error.line == 3
    assert "YAML syntax error" in error.message


def test_unreadable_and_empty_and_wrong_shape(tmp_path):
    error = only_error(tmp_path / "absent.yml")
    assert error.line is None
    assert "cannot read" in error.message
    assert "empty" in only_error(write(tmp_path, "# nothing\n")).message
    error = only_error(write(tmp_path, "- target: music\n"))
    assert (error.line, error.message) == (
        1,
        "a catalog is a YAML mapping (target:, arms:, ...), not a list",
    )


# -- values -----------------------------------------------------------------------------------


def test_environment_expansion(tmp_path, monkeypatch):
    model = model_folder(tmp_path)
    monkeypatch.setenv("LTRR_TEST_MODEL", str(model))
    monkeypatch.setenv("LTRR_TEST_FIELD", "title")
    monkeypatch.delenv("LTRR_TEST_UNSET", raising=False)
    text = minimal(
        (
            "params: {fields: [name]}",
            'params: {fields: ["${LTRR_TEST_FIELD}^2", "${LTRR_TEST_UNSET:-text}"]}',
        ),
        ("    size: {max: 10}\n", VECTOR_ARM),
        append="embedding:\n  model: ${LTRR_TEST_MODEL}\n",
    )
    catalog = load_catalog(write(tmp_path, text))
    assert catalog.arm("lexical").params["fields"] == ["title^2", "text"]
    assert catalog.embedding is not None
    assert catalog.embedding.model == model


def test_unset_variable_is_named(tmp_path, monkeypatch):
    monkeypatch.delenv("LTRR_TEST_UNSET", raising=False)
    monkeypatch.setenv("LTRR_TEST_EMPTY", "")
    text = minimal(
        ("    size: {max: 10}\n", VECTOR_ARM),
        append='embedding: {model: "${LTRR_TEST_UNSET}"}\nrerank: {model: "x${LTRR_TEST_EMPTY}"}\n',
    )
    errors = validate_catalog(write(tmp_path, text))
    assert [(e.line, e.key) for e in errors] == [(16, "embedding.model"), (17, "rerank.model")]
    assert errors[0].message.startswith("environment variable LTRR_TEST_UNSET is not set")
    assert errors[1].message.startswith("environment variable LTRR_TEST_EMPTY is not set")


def test_relative_model_path_is_relative_to_the_catalog(tmp_path, monkeypatch):
    sub = tmp_path / "conf"
    sub.mkdir()
    model = model_folder(sub)
    monkeypatch.chdir(tmp_path)
    text = minimal(("    size: {max: 10}\n", VECTOR_ARM), append="embedding: {model: model}\n")
    catalog = load_catalog(write(sub, text))
    assert catalog.embedding == EmbeddingConfig(model=model)


# -- templates: lookup order and digest -------------------------------------------------------


def test_template_lookup_prefers_the_catalog_folder(tmp_path):
    own = tmp_path / "multi_match.json.j2"
    own.write_text('{"match": {"name": {{ query }}}}')
    (tmp_path / "sub").mkdir()
    nested = tmp_path / "sub" / "x.json.j2"
    nested.write_text('{"match_all": {}}')
    absolute = tmp_path / "elsewhere.json.j2"
    absolute.write_text('{"match_none": {}}')
    text = minimal(
        append="""\
  - {arm: popular, size: 5}
"""
    ).replace(
        "  - name: popular\n",
        f"""\
  - name: nested
    template: sub/x.json.j2
    size: {{max: 5}}
  - name: absolute
    template: {absolute}
    size: {{max: 5}}
  - name: popular
""",
    )
    catalog = load_catalog(write(tmp_path, text))
    assert catalog.arm("lexical").template == own.resolve()
    assert catalog.arm("nested").template == nested.resolve()
    assert catalog.arm("absolute").template == absolute.resolve()
    assert catalog.arm("popular").template == BUILTIN / "rank_feature.json.j2"


def test_digest_changes_when_a_template_changes(tmp_path):
    own = tmp_path / "multi_match.json.j2"
    own.write_text('{"match": {"name": {{ query }}}}')
    path = write(tmp_path, MINIMAL)
    first = load_catalog(path).digest
    assert load_catalog(path).digest == first
    own.write_text('{"match": {"tags": {{ query }}}}')
    second = load_catalog(path).digest
    assert second != first
    own.unlink()  # now the built-in one is used
    assert load_catalog(path).digest not in (first, second)
    path.write_text(MINIMAL + "# a comment\n")
    assert load_catalog(path).digest != first


# -- the shipped examples ---------------------------------------------------------------------


@pytest.fixture
def shared_model(monkeypatch):
    if not (SHARED_MODEL / "model.onnx").is_file():
        pytest.skip(f"no embedding model at {SHARED_MODEL}")
    monkeypatch.setenv("LTRR_MODEL_DIR", str(SHARED_MODEL))
    return SHARED_MODEL


def test_music_example_loads(shared_model):
    catalog = load_catalog(EXAMPLES / "music.yml")
    assert catalog.targets == ("music",)
    assert [a.name for a in catalog.arms] == ["lexical", "name_ngram", "dense", "popular", "memory"]
    assert catalog.budget == 120
    assert catalog.policy.name == "safe_plans"
    assert catalog.fusion.method == "rrf"
    assert catalog.rerank is None  # commented out until a model is trained and uploaded
    assert catalog.embedding == EmbeddingConfig(model=shared_model)
    assert [f.arm for f in catalog.fallback] == ["lexical", "popular"]
    assert [c.name for c in catalog.features.context] == ["segment", "locale", "daypart"]
    assert catalog.arm("name_ngram").params["fields"] == ["name.trigrams"]
    assert catalog.index_body is not None
    assert "popularity" in catalog.index_body["mappings"]["properties"]


def test_beir_example_loads(shared_model):
    catalog = load_catalog(EXAMPLES / "beir.yml")
    assert catalog.targets == ("beir",)
    assert [a.name for a in catalog.arms] == ["lexical", "phrase", "dense", "memory"]
    assert catalog.arm("phrase").params["type"] == "phrase"
    assert catalog.rerank is None  # commented out until a model is trained and uploaded
    assert catalog.features.entity_field == "title.keyword"
    assert catalog.index_body is not None
    assert catalog.index_body["mappings"]["properties"]["embedding"]["dimension"] == 384


@pytest.mark.parametrize("name", ["music.yml", "beir.yml"])
def test_examples_name_the_unset_model_variable(monkeypatch, name):
    monkeypatch.delenv("LTRR_MODEL_DIR", raising=False)
    (error,) = validate_catalog(EXAMPLES / name)
    assert error.key == "embedding.model"
    assert "LTRR_MODEL_DIR is not set" in error.message


def test_an_aliased_mapping_with_a_merge_is_read_twice_without_false_duplicates(tmp_path):
    text = minimal(
        ("size: {min: 5, max: 10}", "size: &s {<<: {min: 1, max: 20}, min: 5, max: 10}"),
        ("size: {max: 10}", "size: *s"),
    )
    catalog = load_catalog(write(tmp_path, text))
    assert [(a.min_size, a.max_size) for a in catalog.arms] == [(5, 10), (5, 10)]


# -- feedback and memory ----------------------------------------------------------------------

# Appended to MINIMAL, so its first line is line 15.
FEEDBACK_AND_MEMORY = """\
feedback:
  events: {click: 1.0, play: 2, add_to_favorites: 3.0, skip: -0.5}
  window_seconds: 600
  debias: {eta: 0.5, max_factor: 4}
  max_events: 50
memory:
  field: q2e
  predicted_field: q2e_predicted
  name_fields: [name, aliases]
  phrase_fields: [tags, genres]
  half_life_days: 7.5
  smoothing: 0
  predicted_weight: 0.25
  flush_seconds: 0.5
"""


def test_feedback_and_memory_take_the_defaults_when_absent(tmp_path):
    catalog = load_catalog(write(tmp_path, MINIMAL))
    assert catalog.feedback == FeedbackConfig()
    assert dict(catalog.feedback.events) == {"click": 1.0}
    assert catalog.feedback.window_seconds == 1800.0
    assert catalog.feedback.debias is None
    assert catalog.feedback.max_events == 1000
    assert catalog.memory is None


@pytest.mark.parametrize(
    "section", ["feedback:\nmemory:\n", "feedback: null\nmemory: ~\n"], ids=["empty", "null"]
)
def test_null_feedback_and_memory_mean_not_configured(tmp_path, section):
    catalog = load_catalog(write(tmp_path, minimal(append=section)))
    assert catalog.feedback == FeedbackConfig()
    assert catalog.memory is None


def test_empty_feedback_and_memory_sections_take_every_default(tmp_path):
    catalog = load_catalog(write(tmp_path, minimal(append="feedback: {}\nmemory: {}\n")))
    assert catalog.feedback == FeedbackConfig()
    assert catalog.memory == MemoryConfig()
    assert catalog.memory.field == "ltrr_q2e"
    assert catalog.memory.predicted_field == "ltrr_q2e_predicted"
    assert catalog.memory.name_fields == ("name",)
    assert catalog.memory.phrase_fields == ()
    assert (
        catalog.memory.half_life_days,
        catalog.memory.smoothing,
        catalog.memory.predicted_weight,
        catalog.memory.flush_seconds,
    ) == (14.0, 5.0, 0.3, 2.0)


def test_debias_defaults(tmp_path):
    catalog = load_catalog(write(tmp_path, minimal(append="feedback: {debias: {}}\n")))
    assert catalog.feedback.debias == DebiasConfig(eta=1.0, max_factor=10.0)
    catalog = load_catalog(write(tmp_path, minimal(append="feedback: {debias: null}\n")))
    assert catalog.feedback.debias is None


def test_feedback_and_memory_parse_in_full(tmp_path):
    catalog = load_catalog(write(tmp_path, MINIMAL + FEEDBACK_AND_MEMORY))
    assert catalog.feedback == FeedbackConfig(
        events={"click": 1.0, "play": 2.0, "add_to_favorites": 3.0, "skip": -0.5},
        window_seconds=600.0,
        debias=DebiasConfig(eta=0.5, max_factor=4.0),
        max_events=50,
    )
    assert list(catalog.feedback.events) == ["click", "play", "add_to_favorites", "skip"]
    assert all(type(w) is float for w in catalog.feedback.events.values())
    assert catalog.memory == MemoryConfig(
        field="q2e",
        predicted_field="q2e_predicted",
        name_fields=("name", "aliases"),
        phrase_fields=("tags", "genres"),
        half_life_days=7.5,
        smoothing=0.0,
        predicted_weight=0.25,
        flush_seconds=0.5,
    )


def test_event_weights_are_read_only(tmp_path):
    catalog = load_catalog(write(tmp_path, MINIMAL + FEEDBACK_AND_MEMORY))
    with pytest.raises(TypeError):
        catalog.feedback.events["click"] = 5.0  # type: ignore[index]
    with pytest.raises(TypeError):
        FeedbackConfig().events["click"] = 5.0  # type: ignore[index]


def test_event_types_may_use_the_allowed_punctuation(tmp_path):
    text = minimal(
        append='feedback: {events: {"cart:add": 1, a.b-c_D9: 0, "%s": 1}}\n' % ("x" * 64)
    )
    catalog = load_catalog(write(tmp_path, text))
    assert set(catalog.feedback.events) == {"cart:add", "a.b-c_D9", "x" * 64}


def test_a_memory_arm_with_a_memory_section_loads(tmp_path):
    text = minimal(
        (
            "fallback:\n",
            "  - name: memory\n    template: memory.json.j2\n    params: {}\n"
            "    size: {max: 20}\nfallback:\n",
        ),
        append="memory: {name_fields: [name], phrase_fields: [tags]}\n",
    )
    catalog = load_catalog(write(tmp_path, text))
    assert catalog.arm("memory").params == {}
    assert catalog.memory == MemoryConfig(phrase_fields=("tags",))


def test_digest_covers_the_feedback_and_memory_sections(tmp_path):
    path = write(tmp_path, MINIMAL + FEEDBACK_AND_MEMORY)
    first = load_catalog(path).digest
    path.write_text(MINIMAL + FEEDBACK_AND_MEMORY.replace("skip: -0.5", "skip: -1"))
    second = load_catalog(path).digest
    assert second != first
    path.write_text(MINIMAL + FEEDBACK_AND_MEMORY.replace("smoothing: 0", "smoothing: 1"))
    assert load_catalog(path).digest not in (first, second)


@pytest.mark.parametrize(
    ("append", "line", "key", "message"),
    [
        pytest.param(
            "feedbak: {}\n",
            15,
            "feedbak",
            "unknown key 'feedbak'; did you mean 'feedback'?",
            id="feedback-top-key",
        ),
        pytest.param(
            "memroy: {}\n",
            15,
            "memroy",
            "unknown key 'memroy'; did you mean 'memory'?",
            id="memory-top-key",
        ),
        pytest.param(
            "feedback: [click]\n",
            15,
            "feedback",
            "must be a mapping, got a list",
            id="feedback-not-mapping",
        ),
        pytest.param(
            "feedback:\n  events: {click: 1}\n  windows_seconds: 10\n",
            17,
            "feedback.windows_seconds",
            "unknown key 'windows_seconds'; did you mean 'window_seconds'?",
            id="feedback-unknown-key",
        ),
        pytest.param(
            "feedback: {events: {}}\n",
            15,
            "feedback.events",
            "must map at least one event type to its reward weight",
            id="events-empty",
        ),
        pytest.param(
            "feedback:\n  events:\n",
            16,
            "feedback.events",
            "must be a mapping, got null",
            id="events-null",
        ),
        pytest.param(
            "feedback: {events: [click, play]}\n",
            15,
            "feedback.events",
            "must be a mapping, got a list",
            id="events-list",
        ),
        pytest.param(
            "feedback: {events: {1: 2.0}}\n",
            15,
            "feedback.events",
            "keys must be strings, got 1",
            id="event-type-not-string",
        ),
        pytest.param(
            'feedback:\n  events:\n    click: 1\n    "add to cart": 2\n',
            18,
            "feedback.events.add to cart",
            "'add to cart': event types are 1 to 64 characters of A-Z, a-z, 0-9, _, ., : and -",
            id="event-type-space",
        ),
        pytest.param(
            'feedback: {events: {"": 1}}\n',
            15,
            "feedback.events.",
            "'': event types are 1 to 64 characters",
            id="event-type-empty",
        ),
        pytest.param(
            "feedback: {events: {%s: 1}}\n" % ("x" * 65),
            15,
            "feedback.events." + "x" * 65,
            "event types are 1 to 64 characters",
            id="event-type-too-long",
        ),
        pytest.param(
            "feedback:\n  events:\n    click: true\n",
            17,
            "feedback.events.click",
            "must be a number, got true",
            id="event-weight-bool",
        ),
        pytest.param(
            "feedback:\n  events:\n    click: .inf\n",
            17,
            "feedback.events.click",
            "must be a number, got .inf",
            id="event-weight-infinite",
        ),
        pytest.param(
            "feedback:\n  events:\n    click: .nan\n",
            17,
            "feedback.events.click",
            "must be a number, got .nan",
            id="event-weight-nan",
        ),
        pytest.param(
            "feedback:\n  events:\n    click: high\n",
            17,
            "feedback.events.click",
            "must be a number, got 'high'",
            id="event-weight-text",
        ),
        pytest.param(
            "feedback:\n  events:\n    click: {weight: 1}\n",
            17,
            "feedback.events.click",
            "must be a single value, got a mapping",
            id="event-weight-mapping",
        ),
        pytest.param(
            "feedback: {window_seconds: 0}\n",
            15,
            "feedback.window_seconds",
            "must be between 0.1 and 604800, got 0",
            id="window-zero",
        ),
        pytest.param(
            "feedback:\n  window_seconds: 604801\n",
            16,
            "feedback.window_seconds",
            "must be between 0.1 and 604800, got 604801",
            id="window-above-a-week",
        ),
        pytest.param(
            "feedback: {window_seconds: 30 minutes}\n",
            15,
            "feedback.window_seconds",
            "must be a number, got '30 minutes'",
            id="window-text",
        ),
        pytest.param(
            "feedback: {max_events: 0}\n",
            15,
            "feedback.max_events",
            "must be between 1 and 100000, got 0",
            id="max-events-zero",
        ),
        pytest.param(
            "feedback: {max_events: 100001}\n",
            15,
            "feedback.max_events",
            "must be between 1 and 100000, got 100001",
            id="max-events-too-many",
        ),
        pytest.param(
            "feedback: {max_events: 1.5}\n",
            15,
            "feedback.max_events",
            "must be an integer, got 1.5",
            id="max-events-float",
        ),
        pytest.param(
            "feedback: {debias: true}\n",
            15,
            "feedback.debias",
            "must be a mapping, got true",
            id="debias-not-mapping",
        ),
        pytest.param(
            "feedback:\n  debias:\n    eta: 1\n    max_factr: 5\n",
            18,
            "feedback.debias.max_factr",
            "unknown key 'max_factr'; did you mean 'max_factor'?",
            id="debias-unknown-key",
        ),
        pytest.param(
            "feedback:\n  debias: {eta: -0.5}\n",
            16,
            "feedback.debias.eta",
            "must be >= 0.0, got -0.5",
            id="debias-eta-negative",
        ),
        pytest.param(
            "feedback:\n  debias: {max_factor: 0.5}\n",
            16,
            "feedback.debias.max_factor",
            "must be >= 1.0, got 0.5",
            id="debias-max-factor-below-one",
        ),
        pytest.param(
            "feedback:\n  debias: {eta: false}\n",
            16,
            "feedback.debias.eta",
            "must be a number, got false",
            id="debias-eta-bool",
        ),
        pytest.param(
            "memory: [ltrr_q2e]\n",
            15,
            "memory",
            "must be a mapping, got a list",
            id="memory-not-mapping",
        ),
        pytest.param(
            "memory:\n  feild: q2e\n",
            16,
            "memory.feild",
            "unknown key 'feild'; did you mean 'field'?",
            id="memory-unknown-key",
        ),
        pytest.param(
            'memory: {field: ""}\n',
            15,
            "memory.field",
            "must not be empty",
            id="memory-field-empty",
        ),
        pytest.param(
            "memory: {predicted_field: 3}\n",
            15,
            "memory.predicted_field",
            "must be a string, got 3",
            id="memory-predicted-field-number",
        ),
        pytest.param(
            "memory:\n  field: q2e\n  predicted_field: q2e\n",
            17,
            "memory.predicted_field",
            "is 'q2e', the same as memory.field; learned and predicted scores need a field each",
            id="memory-same-fields",
        ),
        pytest.param(
            "memory:\n  field: ltrr_q2e_predicted\n",
            16,
            "memory.field",
            "is 'ltrr_q2e_predicted', the same as memory.predicted_field",
            id="memory-field-is-the-default-predicted-field",
        ),
        pytest.param(
            "memory: {name_fields: []}\n",
            15,
            "memory.name_fields",
            "must list at least one of field names",
            id="name-fields-empty",
        ),
        pytest.param(
            "memory: {name_fields: name}\n",
            15,
            "memory.name_fields",
            "must be a list of field names, got 'name'",
            id="name-fields-not-list",
        ),
        pytest.param(
            "memory:\n  name_fields:\n    - name\n    - 7\n",
            18,
            "memory.name_fields[1]",
            "must be a string, got 7",
            id="name-fields-item",
        ),
        pytest.param(
            "memory:\n  name_fields:\n    - name\n    - name\n",
            18,
            "memory.name_fields[1]",
            "'name' is already at line 17",
            id="name-fields-duplicate",
        ),
        pytest.param(
            "memory:\n  phrase_fields: [tags, '']\n",
            16,
            "memory.phrase_fields[1]",
            "must not be empty",
            id="phrase-fields-item-empty",
        ),
        pytest.param(
            "memory: {phrase_fields: null}\n",
            15,
            "memory.phrase_fields",
            "must be a list of field names, got null",
            id="phrase-fields-null",
        ),
        pytest.param(
            "memory: {half_life_days: 0}\n",
            15,
            "memory.half_life_days",
            "must be > 0.0, got 0",
            id="half-life-zero",
        ),
        pytest.param(
            "memory: {smoothing: -1}\n",
            15,
            "memory.smoothing",
            "must be >= 0.0, got -1",
            id="smoothing-negative",
        ),
        pytest.param(
            "memory: {predicted_weight: -0.1}\n",
            15,
            "memory.predicted_weight",
            "must be >= 0.0, got -0.1",
            id="predicted-weight-negative",
        ),
        pytest.param(
            "memory: {flush_seconds: 0.05}\n",
            15,
            "memory.flush_seconds",
            "must be between 0.1 and 3600, got 0.05",
            id="flush-too-often",
        ),
        pytest.param(
            "memory:\n  flush_seconds: 3601\n",
            16,
            "memory.flush_seconds",
            "must be between 0.1 and 3600, got 3601",
            id="flush-too-rare",
        ),
    ],
)
def test_feedback_and_memory_errors_name_line_and_key(tmp_path, append, line, key, message):
    path = write(tmp_path, minimal(append=append))
    error = only_error(path)
    assert (error.path, error.line, error.key) == (str(path), line, key)
    assert message in error.message
    with pytest.raises(CatalogError) as raised:
        load_catalog(path)
    assert str(raised.value) == str(error)


def test_every_feedback_and_memory_error_is_reported(tmp_path):
    text = minimal(
        append=(
            "feedback:\n"
            "  events: {click: 1, skip: nope}\n"
            "  window_seconds: 0\n"
            "  debias: {eta: -1, max_factor: 0}\n"
            "memory:\n"
            "  name_fields: []\n"
            "  smoothing: -1\n"
        )
    )
    errors = validate_catalog(write(tmp_path, text))
    assert [(e.line, e.key) for e in errors] == [
        (16, "feedback.events.skip"),
        (17, "feedback.window_seconds"),
        (18, "feedback.debias.eta"),
        (18, "feedback.debias.max_factor"),
        (20, "memory.name_fields"),
        (21, "memory.smoothing"),
    ]


def test_music_example_feedback_and_memory(shared_model):
    catalog = load_catalog(EXAMPLES / "music.yml")
    assert catalog.feedback == FeedbackConfig(
        events={"click": 1.0, "play": 2.0, "add_to_favorites": 3.0, "skip": -0.5},
        window_seconds=1800.0,
        debias=DebiasConfig(eta=1.0, max_factor=10.0),
        max_events=1000,
        credit="presence",
    )
    assert catalog.fusion.by_policy is True
    assert catalog.memory == MemoryConfig(name_fields=("name",), phrase_fields=("tags",))
    assert catalog.arm("memory").params == {}
    assert catalog.arm("memory").template == BUILTIN / "memory.json.j2"
    assert catalog.index_body is not None
    properties = catalog.index_body["mappings"]["properties"]
    assert properties["ltrr_q2e"] == {"type": "rank_features"}
    assert properties["ltrr_q2e_predicted"] == {"type": "rank_features"}
    assert "ltrr_memory" not in properties


def test_beir_example_feedback_and_memory(shared_model):
    catalog = load_catalog(EXAMPLES / "beir.yml")
    assert catalog.feedback == FeedbackConfig(
        events={"click": 1.0},
        window_seconds=1800.0,
        debias=None,
        max_events=1000,
        credit="unique",
    )
    assert catalog.memory == MemoryConfig(name_fields=("title",), phrase_fields=())
    assert catalog.arm("memory").params == {}
    assert catalog.index_body is not None
    properties = catalog.index_body["mappings"]["properties"]
    assert properties["ltrr_q2e"] == {"type": "rank_features"}
    assert properties["ltrr_q2e_predicted"] == {"type": "rank_features"}
    assert "ltrr_memory" not in properties


def test_feedback_credit_rule(tmp_path):
    path = tmp_path / "c.yml"
    path.write_text(MINIMAL + "feedback:\n  credit: unique\n")
    assert load_catalog(path).feedback.credit == "unique"
    path.write_text(MINIMAL + "feedback:\n  events: {click: 1}\n")
    assert load_catalog(path).feedback.credit == "presence"  # the default
    path.write_text(MINIMAL + "feedback:\n  credit: shared\n")
    errors = validate_catalog(path)
    assert [e.key for e in errors] == ["feedback.credit"]
    assert "unknown value 'shared'" in str(errors[0])


def test_fusion_by_policy(tmp_path):
    path = tmp_path / "c.yml"
    path.write_text(MINIMAL + "fusion: {by_policy: true}\n")
    assert load_catalog(path).fusion.by_policy is True
    path.write_text(MINIMAL + "fusion: {method: rrf}\n")
    assert load_catalog(path).fusion.by_policy is False  # the default
    path.write_text(MINIMAL + "fusion: {by_policy: sometimes}\n")
    assert [e.key for e in validate_catalog(path)] == ["fusion.by_policy"]


# -- whole documents: the memory never writes where a partial update would drop a field ------

LOSSY_INDEX = """\
memory: {}
index:
  mappings:
    _source: {excludes: [embedding]}
    properties: {name: {type: text}}
"""


def test_a_memory_with_an_index_that_keeps_a_field_out_of_source_is_refused(tmp_path):
    error = only_error(write(tmp_path, minimal(append=LOSSY_INDEX)))
    assert error.key == "index.mappings._source"
    assert error.line == 18  # the _source line: MINIMAL has 14 lines, the block starts at 15
    assert "keeps embedding (mappings._source.excludes) out of _source" in error.message
    assert "source: {excludes: [embedding]}" in error.message


@pytest.mark.parametrize(
    ("source", "named"),
    [
        ("{enabled: false}", "every field (mappings._source.enabled is false)"),
        ("{includes: [name]}", "every field outside name (mappings._source.includes)"),
    ],
)
def test_disabled_or_partial_source_is_refused_with_a_memory(tmp_path, source, named):
    text = minimal(append=LOSSY_INDEX.replace("{excludes: [embedding]}", source))
    assert named in only_error(write(tmp_path, text)).message


def test_the_same_index_block_without_a_memory_loads(tmp_path):
    catalog = load_catalog(write(tmp_path, minimal(append=LOSSY_INDEX.replace("memory: {}\n", ""))))
    assert catalog.memory is None


@pytest.mark.parametrize(
    ("value", "parsed"),
    [
        ("{excludes: [embedding]}", {"excludes": ["embedding"]}),
        ("[name, tags]", ["name", "tags"]),
        ("false", False),
        ("'name*'", "name*"),
    ],
)
def test_source_is_an_opensearch_source_value(tmp_path, value, parsed):
    catalog = load_catalog(write(tmp_path, minimal(append=f"source: {value}\n")))
    assert catalog.source == parsed


@pytest.mark.parametrize("value", ["{exclude: [embedding]}", "{excludes: [1]}", "{}", "3"])
def test_a_source_that_opensearch_would_not_take_is_refused(tmp_path, value):
    error = only_error(write(tmp_path, minimal(append=f"source: {value}\n")))
    assert error.key == "source"
    assert error.line == 15


def test_the_examples_keep_source_whole_and_filter_vectors_at_query_time(shared_model):
    for name in ("music.yml", "beir.yml"):
        catalog = load_catalog(EXAMPLES / name)
        assert catalog.index_body is not None
        assert "_source" not in catalog.index_body["mappings"]
        assert catalog.source == {"excludes": ["embedding"]}
