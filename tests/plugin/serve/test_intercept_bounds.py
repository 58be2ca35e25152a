"""The bounds on an intercepted search: at the limit accepted, one past it a 400 naming it."""

from __future__ import annotations

import orjson
import pytest

from ltrr.plugin.errors import BadRequest
from ltrr.plugin.serve.intercept import (
    MAX_CONTEXT_BYTES,
    MAX_CONTEXT_KEYS,
    MAX_INT,
    MAX_NESTING,
    MAX_QUERY_CHARS,
    MAX_WINDOW,
    PassThrough,
    SearchRequest,
    parse_search,
)
from ltrr.query_plans.catalog import InterceptRules

RULES = InterceptRules()


def parse(body=None, params=None):
    return parse_search("music", params or {}, body, RULES)


def explicit(text="miles", **ltrr):
    return {"ext": {"ltrr": {"query": text, **ltrr}}}


def accepted(body=None, params=None) -> SearchRequest:
    request = parse(body, params)
    assert isinstance(request, SearchRequest), request
    return request


def rejected(body=None, params=None) -> BadRequest:
    with pytest.raises(BadRequest) as caught:
        parse(body, params)
    error = caught.value
    assert error.status == 400
    assert error.body()["status"] == 400
    return error


def nested(levels):
    """``levels`` objects one inside the other (an empty object is one level), built
    without recursion."""
    value: dict = {}
    for _ in range(levels - 1):
        value = {"a": value}
    return value


def nested_filter(levels):
    """A post_filter of ``levels`` objects: bool -> filter -> bool -> ... -> term."""
    value: dict = {"term": {"live": True}}  # two levels
    depth = 2
    while depth < levels:
        if depth + 2 <= levels:
            value, depth = {"bool": {"filter": value}}, depth + 2
        else:
            value, depth = {"constant_score": value}, depth + 1
    return value


def _depth(value):
    depth = 0
    while isinstance(value, dict) and value:
        depth += 1
        ((_, value),) = value.items()
    return depth + (1 if isinstance(value, dict) else 0)


def test_the_defaults_the_bounds_are_read_with():
    assert InterceptRules(match=True, multi_match=True, query_string_q=True) == RULES
    assert (MAX_QUERY_CHARS, MAX_CONTEXT_BYTES, MAX_CONTEXT_KEYS) == (4096, 65536, 256)
    assert (MAX_NESTING, MAX_WINDOW, MAX_INT) == (64, 10_000, 2**31 - 1)


def test_helpers_build_the_depth_they_say():
    assert _depth(nested(1)) == 1
    assert _depth(nested(MAX_NESTING)) == MAX_NESTING
    assert _depth(nested_filter(256)) == 256
    assert _depth(nested_filter(2)) == 2


# --- query text ---


@pytest.mark.parametrize(
    "make",
    [
        explicit,
        lambda text: {"query": {"match": {"title": text}}},
        lambda text: {"query": {"match": {"title": {"query": text}}}},
        lambda text: {"query": {"multi_match": {"query": text, "fields": ["title"]}}},
        lambda text: {"query": {"bool": {"must": {"match": {"title": text}}}}},
    ],
    ids=["ext.ltrr.query", "match", "match.query", "multi_match", "bool.must.match"],
)
def test_query_text_at_the_limit_is_accepted_and_one_more_char_rejected(make):
    assert accepted(make("q" * MAX_QUERY_CHARS)).query == "q" * MAX_QUERY_CHARS
    error = rejected(make("q" * (MAX_QUERY_CHARS + 1)))
    assert error.error_type == "illegal_argument_exception"
    assert str(MAX_QUERY_CHARS) in error.reason
    assert str(MAX_QUERY_CHARS + 1) in error.reason


def test_query_text_limit_counts_characters_not_bytes():
    text = "é" * MAX_QUERY_CHARS  # twice as many bytes
    assert accepted(explicit(text)).query == text
    rejected(explicit(text + "é"))


def test_q_parameter_text_is_bounded_too():
    assert accepted(params={"q": "w" * MAX_QUERY_CHARS}).query == "w" * MAX_QUERY_CHARS
    assert "4096" in rejected(params={"q": "w" * (MAX_QUERY_CHARS + 1)}).reason


# --- ext.ltrr.context ---


def test_context_with_the_most_keys_is_accepted_and_one_more_rejected():
    context = {f"k{i}": i for i in range(MAX_CONTEXT_KEYS)}
    assert accepted(explicit(context=context)).context == context
    context["one-more"] = 0
    error = rejected(explicit(context=context))
    assert error.error_type == "illegal_argument_exception"
    assert "ext.ltrr.context" in error.reason
    assert str(MAX_CONTEXT_KEYS) in error.reason


def test_context_json_at_the_byte_limit_is_accepted_and_one_byte_more_rejected():
    filler = MAX_CONTEXT_BYTES - len(b'{"a":""}')
    context = {"a": "x" * filler}
    assert len(orjson.dumps(context)) == MAX_CONTEXT_BYTES
    assert accepted(explicit(context=context)).context == context
    error = rejected(explicit(context={"a": "x" * (filler + 1)}))
    assert error.error_type == "illegal_argument_exception"
    assert "ext.ltrr.context" in error.reason
    assert str(MAX_CONTEXT_BYTES) in error.reason


def test_context_bytes_are_utf8_bytes():
    context = {"a": "é" * (MAX_CONTEXT_BYTES // 2)}  # fewer characters than bytes allowed
    assert "bytes" in rejected(explicit(context=context)).reason


def test_context_nested_to_the_limit_is_accepted_and_one_deeper_rejected():
    assert accepted(explicit(context=nested(MAX_NESTING))).context == nested(MAX_NESTING)
    error = rejected(explicit(context=nested(MAX_NESTING + 1)))
    assert error.error_type == "x_content_parse_exception"
    assert "ext.ltrr.context" in error.reason
    assert str(MAX_NESTING) in error.reason


def test_lists_count_as_nesting_levels_too():
    value: object = []
    for _ in range(MAX_NESTING - 2):
        value = [value]
    accepted(explicit(context={"a": value}))  # the context object + 63 lists
    error = rejected(explicit(context={"a": [value]}))
    assert error.error_type == "x_content_parse_exception"


@pytest.mark.parametrize("levels", [300, 100_000])
def test_a_very_deep_context_is_a_400_not_a_recursion_error(levels):
    error = rejected(explicit(context=nested(levels)))
    assert error.error_type == "x_content_parse_exception"


@pytest.mark.parametrize("context", [None, [], "segment", 3])
def test_a_context_that_is_not_an_object_is_a_400(context):
    assert "ext.ltrr.context" in rejected(explicit(context=context)).reason


# --- query and post_filter nesting ---


def test_post_filter_nested_256_levels_is_a_400():
    error = rejected({**explicit(), "post_filter": nested_filter(256)})
    assert error.error_type == "x_content_parse_exception"
    assert "post_filter" in error.reason


def test_post_filter_at_the_nesting_limit_is_accepted():
    post_filter = nested_filter(MAX_NESTING)
    assert accepted({**explicit(), "post_filter": post_filter}).post_filter == post_filter
    rejected({**explicit(), "post_filter": nested_filter(MAX_NESTING + 1)})


def test_a_deep_post_filter_on_a_plain_match_search_is_a_400():
    body = {"query": {"match": {"title": "miles"}}, "post_filter": nested_filter(256)}
    assert rejected(body).error_type == "x_content_parse_exception"


def test_a_deep_filter_beside_ext_ltrr_is_a_400():
    body = {**explicit(), "query": {"bool": {"filter": [nested_filter(256)]}}}
    error = rejected(body)
    assert error.error_type == "x_content_parse_exception"
    assert "[query]" in error.reason


def test_a_deep_match_option_is_a_400():
    query = {"match": {"title": {"query": "miles", "x": nested(MAX_NESTING)}}}
    assert rejected({"query": query}).error_type == "x_content_parse_exception"


# --- from and size ---


@pytest.mark.parametrize("value", [99999999999999999999, 1e20, MAX_INT + 1, -1, True, "ten"])
def test_from_out_of_range_or_not_an_integer_is_a_400(value):
    error = rejected({**explicit(), "from": value})
    assert error.error_type == "illegal_argument_exception"
    assert "[from]" in error.reason


@pytest.mark.parametrize("value", [99999999999999999999, MAX_INT + 1, -1, False])
def test_size_out_of_range_is_a_400(value):
    assert "[size]" in rejected({**explicit(), "size": value}).reason


def test_from_and_size_from_url_parameters_are_bounded_too():
    assert "[from]" in rejected(explicit(), params={"from": "99999999999999999999"}).reason
    request = accepted(explicit(), params={"from": "9990", "size": "10"})
    assert (request.from_, request.size) == (9990, 10)


def test_result_window_at_the_limit_is_accepted():
    request = accepted({**explicit(), "from": 9990, "size": 10})
    assert request.depth == MAX_WINDOW
    assert accepted({**explicit(), "from": 0, "size": MAX_WINDOW}).depth == MAX_WINDOW


@pytest.mark.parametrize(("from_", "size"), [(9991, 10), (0, 10_001), (10_001, 0)])
def test_result_window_past_the_limit_is_a_400(from_, size):
    error = rejected({**explicit(), "from": from_, "size": size})
    assert error.error_type == "illegal_argument_exception"
    assert "Result window is too large" in error.reason
    assert "[10000]" in error.reason
    assert "[10001]" in error.reason


def test_from_at_max_int_with_the_default_size_is_a_window_400_not_an_overflow():
    assert "Result window" in rejected({**explicit(), "from": MAX_INT}).reason


# --- decision ids ---


def test_decision_id_of_512_ascii_bytes_is_accepted():
    assert accepted(explicit(decision_id="d" * 512)).decision_id == "d" * 512


def test_decision_id_of_513_bytes_is_rejected():
    assert "ext.ltrr.decision_id" in rejected(explicit(decision_id="d" * 513)).reason


def test_decision_id_limit_is_in_bytes_not_characters():
    assert accepted(explicit(decision_id="é" * 256)).decision_id == "é" * 256  # 512 bytes
    error = rejected(explicit(decision_id="é" * 300))  # 300 characters, 600 bytes
    assert error.error_type == "illegal_argument_exception"
    assert "ext.ltrr.decision_id" in error.reason
    assert "512 bytes" in error.reason


def test_ubi_query_id_too_long_is_rejected_naming_it():
    body = {"ext": {"ltrr": {"query": "miles"}, "ubi": {"query_id": "q" * 513}}}
    error = rejected(body)
    assert "ext.ubi.query_id" in error.reason
    assert "512 bytes" in error.reason


def test_ubi_query_id_on_a_plain_match_search_is_bounded_too():
    body = {"query": {"match": {"title": "miles"}}, "ext": {"ubi": {"query_id": "é" * 300}}}
    assert "ext.ubi.query_id" in rejected(body).reason
    body["ext"]["ubi"]["query_id"] = "é" * 256
    assert accepted(body).decision_id == "é" * 256


def test_ubi_query_id_is_used_when_there_is_no_ltrr_decision_id():
    body = {"ext": {"ltrr": {"query": "miles"}, "ubi": {"query_id": "ubi-1"}}}
    assert accepted(body).decision_id == "ubi-1"
    body["ext"]["ltrr"]["decision_id"] = "ltrr-1"
    assert accepted(body).decision_id == "ltrr-1"


def test_an_integer_decision_id_is_accepted_as_text():
    assert accepted(explicit(decision_id=17)).decision_id == "17"
    body = {"ext": {"ltrr": {"query": "miles"}, "ubi": {"query_id": 17}}}
    assert accepted(body).decision_id == "17"


def test_an_integer_decision_id_of_zero_is_accepted_as_text():
    assert accepted(explicit(decision_id=0)).decision_id == "0"


def test_an_integer_ubi_query_id_of_zero_is_accepted_as_text():
    body = {"ext": {"ltrr": {"query": "miles"}, "ubi": {"query_id": 0}}}
    assert accepted(body).decision_id == "0"


@pytest.mark.parametrize("decision_id", [{"a": 1}, ["d"], True, 1.5, "   ", "\ud800"], ids=repr)
def test_a_decision_id_that_is_not_storable_text_is_rejected(decision_id):
    error = rejected(explicit(decision_id=decision_id))
    assert error.error_type == "illegal_argument_exception"
    assert "ext.ltrr.decision_id" in error.reason


@pytest.mark.parametrize("decision_id", [None, ""])
def test_an_absent_decision_id_is_none(decision_id):
    assert accepted(explicit(decision_id=decision_id)).decision_id is None


# --- bounds apply only to searches the proxy answers ---


def test_a_search_that_passes_through_is_not_bounded():
    body = {"query": {"match": {"title": "q" * 10_000}}, "aggs": {}}
    assert isinstance(parse(body), PassThrough)
