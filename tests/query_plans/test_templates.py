from pathlib import Path
from types import MappingProxyType

import numpy as np
import pytest

import ltrr.templates
from ltrr.query_plans.catalog import MemoryConfig
from ltrr.query_plans.plan import memory_variables
from ltrr.query_plans.templates import TemplateError, TemplateRenderer

BUILTIN = Path(ltrr.templates.__file__).resolve().parent
MULTI_MATCH = BUILTIN / "multi_match.json.j2"
KNN = BUILTIN / "knn.json.j2"
RANK_FEATURE = BUILTIN / "rank_feature.json.j2"
MEMORY = BUILTIN / "memory.json.j2"

# Text a user may type to try to break out of the JSON string it lands in.
NASTY_QUERIES = [
    '"}}, "match_all": {}, "x": {"',
    '\\" } ] } {',
    "{{ 7*7 }}",
    "{% raw %}",
    "{% endraw %}{{ query.__class__ }}",
    "{# comment #}",
    'line one\nline "two"\r\n\ttabbed',
    "back\\slash \\\\ \\u0041 \\n",
    "ünïcödé 日本語 🎵 \u2028\u2029",
    "\x00\x1f control",
    "'single' `back` </script>",
    "",
]


def variables(**overrides):
    base = {
        "query": "daft punk",
        "query_norm": "daft punk",
        "vector": None,
        "size": 10,
        "params": {},
        "context": {},
    }
    merged = {**base, **overrides}
    merged.setdefault("memory", memory_variables(None, merged["query"]))
    return merged


@pytest.fixture
def renderer():
    return TemplateRenderer()


def write(folder: Path, text: str, name: str = "t.json.j2") -> Path:
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


# -- built-in templates -----------------------------------------------------------------------


def test_multi_match_minimal(renderer):
    clause = renderer.render(MULTI_MATCH, variables(params={"fields": ["name^3", "tags"]}))
    assert clause == {"multi_match": {"query": "daft punk", "fields": ["name^3", "tags"]}}


def test_multi_match_passes_optional_params_only_when_given(renderer):
    params = {
        "fields": ["name"],
        "type": "best_fields",
        "operator": "and",
        "fuzziness": "AUTO",
        "prefix_length": 1,
        "unrelated": "ignored",
    }
    clause = renderer.render(MULTI_MATCH, variables(params=MappingProxyType(params)))
    assert clause == {
        "multi_match": {
            "query": "daft punk",
            "fields": ["name"],
            "type": "best_fields",
            "operator": "and",
            "fuzziness": "AUTO",
            "prefix_length": 1,
        }
    }


def test_multi_match_phrase(renderer):
    clause = renderer.render(
        MULTI_MATCH, variables(params={"fields": ["title^2", "text"], "type": "phrase"})
    )
    assert clause == {
        "multi_match": {"query": "daft punk", "fields": ["title^2", "text"], "type": "phrase"}
    }


def test_multi_match_requires_fields(renderer):
    with pytest.raises(TemplateError, match="undefined"):
        renderer.render(MULTI_MATCH, variables())


def test_knn(renderer):
    clause = renderer.render(
        KNN, variables(vector=[0.5, -0.25, 1e-3], size=25, params={"field": "embedding"})
    )
    assert clause == {"knn": {"embedding": {"vector": [0.5, -0.25, 0.001], "k": 25}}}


def test_knn_ef_search_and_numpy_vector(renderer):
    vector = list(np.array([0.5, 0.25], dtype=np.float32))
    clause = renderer.render(
        KNN, variables(vector=vector, size=5, params={"field": "vec", "ef_search": 200})
    )
    assert clause == {
        "knn": {"vec": {"vector": [0.5, 0.25], "k": 5, "method_parameters": {"ef_search": 200}}}
    }


def test_rank_feature_plain(renderer):
    clause = renderer.render(
        RANK_FEATURE, variables(params={"field": "popularity", "text_fields": ["name", "tags"]})
    )
    assert clause == {
        "bool": {
            "must": {"rank_feature": {"field": "popularity"}},
            "filter": {
                "multi_match": {
                    "query": "daft punk",
                    "fields": ["name", "tags"],
                    "operator": "or",
                }
            },
        }
    }


def test_rank_feature_saturation_and_fuzziness(renderer):
    params = {"field": "popularity", "text_fields": ["name"], "pivot": 500, "fuzziness": "AUTO"}
    clause = renderer.render(RANK_FEATURE, variables(params=params))
    assert clause == {
        "bool": {
            "must": {"rank_feature": {"field": "popularity", "saturation": {"pivot": 500}}},
            "filter": {
                "multi_match": {
                    "query": "daft punk",
                    "fields": ["name"],
                    "operator": "or",
                    "fuzziness": "AUTO",
                }
            },
        }
    }


def test_rank_feature_log(renderer):
    params = {"field": "plays", "text_fields": ["name"], "scaling_factor": 4}
    clause = renderer.render(RANK_FEATURE, variables(params=params))
    assert clause["bool"]["must"] == {
        "rank_feature": {"field": "plays", "log": {"scaling_factor": 4}}
    }


def test_memory_learned_and_predicted_scores_by_exact_and_near_key(renderer):
    clause = renderer.render(MEMORY, variables(query="Punk,  Daft!"))
    assert clause == {
        "bool": {
            "should": [
                {"rank_feature": {"field": "ltrr_q2e.punk daft", "linear": {}}},
                {"rank_feature": {"field": "ltrr_q2e.~daftpunk", "linear": {}, "boost": 0.5}},
                {
                    "rank_feature": {
                        "field": "ltrr_q2e_predicted.punk daft",
                        "linear": {},
                        "boost": 0.3,
                    }
                },
                {
                    "rank_feature": {
                        "field": "ltrr_q2e_predicted.~daftpunk",
                        "linear": {},
                        "boost": 0.15,
                    }
                },
            ],
            "minimum_should_match": 1,
        }
    }


def test_memory_own_fields_and_no_prediction(renderer):
    config = MemoryConfig(field="learned", predicted_field="guessed", predicted_weight=0.0)
    clause = renderer.render(MEMORY, variables(memory=memory_variables(config, "daft punk")))
    fields = [c["rank_feature"]["field"] for c in clause["bool"]["should"]]
    assert fields == ["learned.daft punk", "learned.~daftpunk"]


def test_memory_query_without_words_matches_nothing(renderer):
    clause = renderer.render(MEMORY, variables(query="?!"))
    assert clause == {"match_none": {}}


# -- injection --------------------------------------------------------------------------------


@pytest.mark.parametrize("query", NASTY_QUERIES)
def test_query_text_cannot_escape_its_string(renderer, query):
    clause = renderer.render(MULTI_MATCH, variables(query=query, params={"fields": ["name"]}))
    assert clause == {"multi_match": {"query": query, "fields": ["name"]}}

    clause = renderer.render(
        RANK_FEATURE,
        variables(query=query, params={"field": "popularity", "text_fields": ["name"]}),
    )
    assert clause["bool"]["filter"] == {
        "multi_match": {"query": query, "fields": ["name"], "operator": "or"}
    }
    assert set(clause) == {"bool"}
    assert set(clause["bool"]) == {"must", "filter"}

    clause = renderer.render(MEMORY, variables(query=query))
    assert set(clause) <= {"bool", "match_none"}
    for should in clause.get("bool", {}).get("should", []):
        assert set(should) == {"rank_feature"}
        assert should["rank_feature"]["field"].startswith(("ltrr_q2e.", "ltrr_q2e_predicted."))


@pytest.mark.parametrize("field", ['a"}, "match_all": {"', "{{ 1 }}", "x\\"])
def test_params_cannot_escape_either(renderer, field):
    clause = renderer.render(KNN, variables(vector=[1.0], size=3, params={"field": field}))
    assert clause == {"knn": {field: {"vector": [1.0], "k": 3}}}


# -- the sandbox and strictness ---------------------------------------------------------------


@pytest.mark.parametrize(
    "source",
    [
        "{{ ''.__class__ }}",
        "{{ query.__class__.__mro__ }}",
        '{"a": {{ params.__class__.__subclasses__() }}}',
        '{"a": {{ query.__init__.__globals__ }}}',
        "{% set _ = params.update({'x': 1}) %}{}",
        "{% set _ = params.fields.append('x') %}{}",
    ],
)
def test_sandbox_refuses_python_internals(renderer, tmp_path, source):
    path = write(tmp_path, source)
    with pytest.raises(TemplateError, match="sandbox") as info:
        renderer.render(path, variables(params={"fields": ["name"]}))
    assert info.value.path == path


def test_undefined_variable_is_an_error_with_its_line(renderer, tmp_path):
    path = write(tmp_path, '{"a":\n  {{ params.nope }}\n}')
    with pytest.raises(TemplateError, match="undefined") as info:
        renderer.render(path, variables())
    assert info.value.line == 2
    assert str(info.value).startswith(f"{path}:2: ")


def test_undefined_inside_a_list_is_an_error(renderer, tmp_path):
    path = write(tmp_path, '{"a": {{ [query, nope] }}}')
    with pytest.raises(TemplateError, match="undefined variable: 'nope' is undefined"):
        renderer.render(path, variables())


def test_undefined_in_a_condition_is_an_error(renderer, tmp_path):
    path = write(tmp_path, '{% if params.nope %}{"a": 1}{% else %}{"b": 2}{% endif %}')
    with pytest.raises(TemplateError, match="undefined"):
        renderer.render(path, variables())


def test_invalid_json_output(renderer, tmp_path):
    path = write(tmp_path, '{"a": "{{ query }}"}')  # quotes added by hand: the classic mistake
    with pytest.raises(TemplateError, match="not valid JSON") as info:
        renderer.render(path, variables())
    assert info.value.path == path


def test_output_must_be_an_object(renderer, tmp_path):
    path = write(tmp_path, "[{{ query }}]")
    with pytest.raises(TemplateError, match="one JSON object"):
        renderer.render(path, variables())


def test_value_that_is_not_json(renderer, tmp_path):
    path = write(tmp_path, '{"a": {{ params.get }}}')
    with pytest.raises(TemplateError, match="cannot be JSON-encoded"):
        renderer.render(path, variables())


def test_syntax_error_names_file_and_line(renderer, tmp_path):
    path = write(tmp_path, '{\n"a": 1,\n"b": {% if %}\n}')
    with pytest.raises(TemplateError, match="syntax error") as info:
        renderer.check(path)
    assert info.value.line == 3
    assert str(info.value).startswith(f"{path}:3: ")


def test_missing_file(renderer, tmp_path):
    with pytest.raises(TemplateError, match="cannot read"):
        renderer.render(tmp_path / "absent.json.j2", variables())


# -- caching ----------------------------------------------------------------------------------


def test_compiled_once_per_version(renderer, tmp_path, monkeypatch):
    path = write(tmp_path, '{"a": {{ query }}}')
    compiles = []
    original = renderer._env.compile

    def counting(*args, **kwargs):
        compiles.append(args)
        return original(*args, **kwargs)

    monkeypatch.setattr(renderer._env, "compile", counting)
    for _ in range(3):
        assert renderer.render(path, variables()) == {"a": "daft punk"}
    assert len(compiles) == 1
    renderer.check(path)  # the loader's check always compiles what is on disk
    assert len(compiles) == 2


def test_recompiled_for_a_new_catalog_version_only(renderer, tmp_path):
    path = write(tmp_path, '{"a": {{ query }}}')
    assert renderer.render(path, variables(), version="v1") == {"a": "daft punk"}
    path.write_text('{"b": {{ query }}}')
    # Until its catalog reloads (a new digest), the validated version keeps serving.
    assert renderer.render(path, variables(), version="v1") == {"a": "daft punk"}
    assert renderer.render(path, variables(), version="v2") == {"b": "daft punk"}
