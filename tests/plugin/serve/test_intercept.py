from __future__ import annotations

import pytest

from ltrr.plugin.errors import BadRequest
from ltrr.plugin.serve.intercept import (
    SEARCH_PATH,
    PassThrough,
    SearchRequest,
    caller_headers,
    parse_search,
    strip_ltrr,
)
from ltrr.query_plans.catalog import InterceptRules

RULES = InterceptRules()


def parse(body=None, params=None, rules=RULES):
    return parse_search("music", params or {}, body, rules)


def test_search_path_matches_targets_but_not_apis():
    assert SEARCH_PATH.match("/music/_search")["target"] == "music"
    assert SEARCH_PATH.match("/music,films/_search")["target"] == "music,films"
    assert SEARCH_PATH.match("/_search") is None
    assert SEARCH_PATH.match("/music/_search/template") is None
    assert SEARCH_PATH.match("/_all/_search") is None


def test_explicit_ext_ltrr_with_context_filters_and_paging():
    body = {
        "query": {"bool": {"filter": [{"term": {"genre": "jazz"}}], "must_not": [{"ids": {}}]}},
        "post_filter": {"term": {"live": True}},
        "_source": ["name"],
        "size": 5,
        "from": 10,
        "ext": {"ltrr": {"query": "miles", "context": {"segment": "a"}, "explain": True}},
    }
    request = parse(body)
    assert request == SearchRequest(
        target="music",
        query="miles",
        context={"segment": "a"},
        filters=({"term": {"genre": "jazz"}}, {"bool": {"must_not": [{"ids": {}}]}}),
        post_filter={"term": {"live": True}},
        source=["name"],
        size=5,
        from_=10,
        explain=True,
        decision_id=None,
        explicit=True,
    )
    assert request.depth == 15


@pytest.mark.parametrize(
    ("query", "text"),
    [
        ({"match": {"name": "daft punk"}}, "daft punk"),
        ({"match": {"name": {"query": "daft punk", "operator": "and"}}}, "daft punk"),
        ({"multi_match": {"query": "daft punk", "fields": ["name"]}}, "daft punk"),
        (
            {"bool": {"must": {"match": {"name": "daft"}}, "filter": {"term": {"g": "x"}}}},
            "daft",
        ),
    ],
)
def test_intercept_rules_take_single_text_queries(query, text):
    request = parse({"query": query})
    assert isinstance(request, SearchRequest)
    assert request.query == text
    assert not request.explicit


def test_bool_filter_carries_in_implicit_mode():
    request = parse({"query": {"bool": {"must": [{"match": {"n": "x"}}], "filter": [{"a": 1}]}}})
    assert request.filters == ({"a": 1},)


@pytest.mark.parametrize(
    "body",
    [
        {"query": {"match": {"name": "x"}}, "aggs": {"g": {"terms": {"field": "genre"}}}},
        {"query": {"match": {"name": "x"}}, "search_after": [1]},
        {"query": {"match": {"name": "x"}}, "pit": {"id": "abc"}},
        {"query": {"match": {"name": "x"}}, "sort": ["popularity"]},
        {"query": {"term": {"name": "x"}}},
        {"query": {"bool": {"must": [{"match": {"a": "x"}}, {"match": {"b": "y"}}]}}},
        {"query": {"match_all": {}}},
        {"ext": {"ltrr": {"query": "x"}}, "aggregations": {}},
        None,
    ],
)
def test_what_cannot_be_honoured_passes_through(body):
    assert isinstance(parse(body), PassThrough)


def test_scroll_parameter_passes_through():
    assert parse({"query": {"match": {"n": "x"}}}, {"scroll": "1m"}) == PassThrough(
        "parameter scroll"
    )


def test_q_parameter_only_when_plain_words():
    assert parse(None, {"q": "daft punk"}).query == "daft punk"
    assert isinstance(parse(None, {"q": "name:daft"}), PassThrough)
    assert isinstance(
        parse(None, {"q": "daft punk"}, InterceptRules(query_string_q=False)), PassThrough
    )


def test_rules_can_turn_off_match():
    rules = InterceptRules(match=False)
    assert isinstance(parse({"query": {"match": {"n": "x"}}}, rules=rules), PassThrough)
    assert isinstance(parse({"ext": {"ltrr": {"query": "x"}}}, rules=rules), SearchRequest)


def test_ubi_query_id_becomes_the_decision_id():
    request = parse({"query": {"match": {"n": "x"}}, "ext": {"ubi": {"query_id": "q-1"}}})
    assert request.decision_id == "q-1"
    request = parse({"ext": {"ltrr": {"query": "x", "decision_id": "d-9"}}})
    assert request.decision_id == "d-9"


def test_source_from_parameters():
    request = parse(None, {"q": "x", "_source_includes": "a,b"})
    assert request.source == {"includes": ["a", "b"], "excludes": []}
    assert parse(None, {"q": "x", "_source": "false"}).source is False


@pytest.mark.parametrize(
    ("body", "params"),
    [
        ({"query": {"match": {"n": "x"}}, "size": -1}, {}),
        ({"query": {"match": {"n": "x"}}, "size": "ten"}, {}),
        ({"ext": {"ltrr": {"query": 5}}}, {}),
        ({"ext": {"ltrr": {"query": "x", "context": []}}}, {}),
        (None, {"q": "x", "from": "-2"}),
    ],
)
def test_illegal_values_are_bad_requests(body, params):
    with pytest.raises(BadRequest):
        parse(body, params)


def test_caller_headers_keep_credentials_only():
    headers = {
        "Authorization": "Basic abc",
        "Cookie": "s=1",
        "X-Opaque-Id": "t",
        "X-Forwarded-For": "1.2.3.4",
        "Accept-Encoding": "gzip",
        "Content-Length": "5",
    }
    assert caller_headers(headers) == {
        "Authorization": "Basic abc",
        "Cookie": "s=1",
        "X-Opaque-Id": "t",
        "X-Forwarded-For": "1.2.3.4",
    }


def test_strip_ltrr_keeps_other_ext():
    assert strip_ltrr({"ext": {"ltrr": {}, "ubi": {"query_id": "q"}}, "size": 1}) == {
        "ext": {"ubi": {"query_id": "q"}},
        "size": 1,
    }
    assert strip_ltrr({"ext": {"ltrr": {}}}) == {}


@pytest.mark.parametrize("ext", [[], "", 0, False, None])
def test_an_empty_or_false_ext_is_no_ext(ext):
    request = parse({"query": {"match": {"title": "hello"}}, "ext": ext})
    assert isinstance(request, SearchRequest)
    assert request.query == "hello"


@pytest.mark.parametrize("context", [None, [], "segment=a"])
def test_a_context_that_is_not_an_object_is_a_400(context):
    with pytest.raises(BadRequest, match=r"\[ext.ltrr.context\] must be an object"):
        parse({"ext": {"ltrr": {"query": "x", "context": context}}})
