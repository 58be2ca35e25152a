"""Reading ``ext.ubi`` as the UBI plugin reads it, and the pieces of its answer."""

from __future__ import annotations

import pytest

from ltrr.plugin.errors import BadRequest
from ltrr.plugin.serve.ubi import (
    ANY_SEARCH_PATH,
    UbiRequest,
    decision_attributes,
    read_ubi,
    shown_ids,
    strip_ubi,
    with_query_id,
)


def test_no_ext_ubi_is_none_and_an_empty_one_asks_for_nothing():
    assert read_ubi(None) is None
    assert read_ubi({"query": {}}) is None
    assert read_ubi({"ext": {"ltrr": {}}}) is None
    assert read_ubi({"ext": {"ubi": {}}}) == UbiRequest()


def test_every_field_is_read_and_unknown_ones_are_ignored_as_the_plugin_does():
    ubi = read_ubi(
        {
            "ext": {
                "ubi": {
                    "query_id": 42,
                    "client_id": "c",
                    "user_query": "q",
                    "application": "app",
                    "object_id_field": "sku",
                    "query_attributes": {"a": 1},
                    "something_new": [1],
                }
            }
        }
    )
    assert ubi == UbiRequest("42", "c", "q", "app", "sku", {"a": 1})


def test_null_and_empty_values_are_absent():
    ubi = read_ubi({"ext": {"ubi": {"query_id": "", "client_id": None, "query_attributes": None}}})
    assert ubi == UbiRequest()


@pytest.mark.parametrize(
    "ubi",
    [[], "x", 1, {"query_id": 1.5}, {"query_id": ["a"]}, {"client_id": {}}, {"application": False}],
)
def test_wrong_types_are_a_400(ubi):
    with pytest.raises(BadRequest) as caught:
        read_ubi({"ext": {"ubi": ubi}})
    assert caught.value.status == 400


def test_strip_ubi_keeps_the_rest_of_ext_and_drops_an_emptied_one():
    assert strip_ubi({"ext": {"ubi": {}, "other": 1}, "size": 2}) == {
        "ext": {"other": 1},
        "size": 2,
    }
    assert strip_ubi({"ext": {"ubi": {}}, "size": 2}) == {"size": 2}
    assert strip_ubi({"size": 2}) == {"size": 2}


def test_shown_ids_read_the_object_id_field_falling_back_to_the_id():
    hits = [
        {"_id": "1", "_source": {"sku": "A"}},
        {"_id": "2", "_source": {"product": {"sku": 7}}},  # nested, a number
        {"_id": "3", "_source": {"other": "x"}},  # no such field: its _id
        {"_id": "4"},  # no _source at all
        {"_id": "5", "_source": {"product.sku": "flat"}},  # a dotted key as it is
        "not a hit",
    ]
    assert shown_ids(hits, "sku") == ["A", "2", "3", "4", "5"]
    assert shown_ids(hits, "product.sku") == ["1", "7", "3", "4", "flat"]
    assert shown_ids(hits, None) == ["1", "2", "3", "4", "5"]


def test_with_query_id_adds_beside_the_answers_own_ext():
    answer = {"hits": {}, "ext": {"ltrr": {"decision_id": "d"}}}
    assert with_query_id(answer, "q") == {
        "hits": {},
        "ext": {"ltrr": {"decision_id": "d"}, "ubi": {"query_id": "q"}},
    }
    assert answer["ext"] == {"ltrr": {"decision_id": "d"}}  # not changed in place
    assert with_query_id({"hits": {}}, "q")["ext"] == {"ubi": {"query_id": "q"}}


def test_decision_attributes_keep_what_joins_and_weighs_a_click():
    answer = {
        "ext": {
            "ltrr": {
                "decision_id": "d",
                "policy": "linucb",
                "catalog": "abc",
                "fallback": None,
                "arms": {
                    "lexical": {"included": True, "size": 5, "propensity": 0.9, "score": 1.0},
                    "dense": {"included": False, "size": 0, "propensity": 0.1, "took": 3},
                },
                "page": {"from": 0, "size": 5, "cached": False},
                "feedback_token": "secret-ish",
            }
        }
    }
    assert decision_attributes(answer, {"target": "music", "plan": None}) == {
        "decision_id": "d",
        "target": "music",
        "plan": None,
        "policy": "linucb",
        "catalog": "abc",
        "fallback": None,
        "arms": {
            "lexical": {"included": True, "size": 5, "propensity": 0.9},
            "dense": {"included": False, "size": 0, "propensity": 0.1},
        },
        "page": {"from": 0, "size": 5, "cached": False},
    }


@pytest.mark.parametrize(
    ("path", "target"),
    [("/_search", None), ("/books/_search", "books"), ("/a,b*/_search/", "a,b*")],
)
def test_any_search_path(path, target):
    match = ANY_SEARCH_PATH.match(path)
    assert match is not None
    assert match["target"] == target


@pytest.mark.parametrize("path", ["/_msearch", "/books/_doc/_search", "/_ltrr/_search", "/books"])
def test_not_a_search_path(path):
    assert ANY_SEARCH_PATH.match(path) is None
