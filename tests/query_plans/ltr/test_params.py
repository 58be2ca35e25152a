"""search_params: the sltr params of one search, every value a string the templates insert."""

from pathlib import Path

import orjson
import pytest

from ltrr.query_plans.catalog import load_catalog
from ltrr.query_plans.ltr.params import (
    KEYWORDS,
    MEMORY_EXACT,
    MEMORY_NEAR,
    NO_KEY,
    QUERY_VECTOR,
    provenance_param,
    search_params,
)

CATALOG = """\
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
  - name: memory
    template: memory.json.j2
    size: {min: 0, max: 20}
memory: {}
fallback:
  - {arm: lexical, size: 10}
"""


@pytest.fixture
def catalog(tmp_path: Path):
    path = tmp_path / "shop.yml"
    path.write_text(CATALOG)
    return load_catalog(path)


def test_names():
    assert (KEYWORDS, MEMORY_EXACT, MEMORY_NEAR, QUERY_VECTOR) == (
        "keywords",
        "memory_exact",
        "memory_near",
        "query_vector",
    )
    assert NO_KEY == "~"
    assert provenance_param("lexical") == "from_lexical"


def test_every_param_of_one_search(catalog):
    params = search_params(
        catalog,
        "Punk, Daft!",
        vector=None,
        retrieved={"lexical": ["b", "a"], "phrase": ["a"]},
    )
    assert params == {
        "keywords": "Punk, Daft!",  # the text as typed: the plugin escapes {{keywords}}
        "memory_exact": "punk daft",
        "memory_near": "~daftpunk",  # word order and punctuation ignored
        "from_lexical": '["a","b"]',
        "from_phrase": '["a"]',
        "from_memory": "[]",  # not in retrieved: that arm found nothing
    }
    assert all(isinstance(v, str) for v in params.values())


def test_provenance_is_sorted_and_unique_and_empty_for_absent_arms(catalog):
    params = search_params(
        catalog,
        "x",
        vector=None,
        retrieved={"phrase": ("z", "10", "z", "2", "10"), "not_an_arm": ["q"]},
    )
    assert params["from_phrase"] == '["10","2","z"]'  # string order, each id once
    assert params["from_lexical"] == "[]"
    assert params["from_memory"] == "[]"
    assert "from_not_an_arm" not in params  # only the catalog's arms
    assert orjson.loads(params["from_phrase"]) == ["10", "2", "z"]


def test_provenance_ids_are_json_escaped(catalog):
    params = search_params(catalog, "x", vector=None, retrieved={"lexical": ['a"b', "c\\d"]})
    assert params["from_lexical"] == '["a\\"b","c\\\\d"]'
    assert orjson.loads(params["from_lexical"]) == ['a"b', "c\\d"]


def test_a_query_of_no_words_has_the_no_key_key(catalog):
    params = search_params(catalog, "!!!", vector=None, retrieved={})
    assert params["keywords"] == "!!!"
    assert params["memory_exact"] == "~"
    assert params["memory_near"] == "~"


def test_memory_keys_are_json_string_escaped_without_quotes(catalog):
    # A control character survives the key's normalisation; JSON writes it \u0001, so the
    # key can sit between the template's own quotes.
    params = search_params(catalog, "a\x01b", vector=None, retrieved={})
    assert params["memory_exact"] == "a\\u0001b"
    assert params["memory_near"] == "~a\\u0001b"
    assert orjson.loads('"' + params["memory_exact"] + '"') == "a\x01b"
    # letters beyond ASCII are left as they are, casefolded
    accented = search_params(catalog, "Wörld Héllo", vector=None, retrieved={})
    assert (accented["memory_exact"], accented["memory_near"]) == ("wörld héllo", "~héllowörld")


def test_the_vector_is_a_json_array_of_floats(catalog):
    params = search_params(catalog, "x", vector=(0.5, -0.25, 1), retrieved={})
    assert params["query_vector"] == "[0.5,-0.25,1.0]"
    assert orjson.loads(params["query_vector"]) == [0.5, -0.25, 1.0]


def test_no_vector_no_param(catalog):
    assert "query_vector" not in search_params(catalog, "x", vector=None, retrieved={})
    # an empty vector, or one that is not finite (JSON would carry null), is no vector either
    for vector in ([], [0.5, float("nan")], [float("inf")]):
        assert "query_vector" not in search_params(catalog, "x", vector=vector, retrieved={})
