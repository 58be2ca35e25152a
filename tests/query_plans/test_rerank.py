import pytest

from ltrr.query_plans.catalog import RerankConfig
from ltrr.query_plans.fusion.base import FusedHit, Provenance
from ltrr.query_plans.rerank import (
    RankedHit,
    RerankError,
    apply_rerank,
    build_rerank_body,
    fused_order,
)


def fused(doc, score, index="books"):
    return FusedHit(index, doc, score, {"id": doc}, (Provenance("bm25", 1, score),))


# The feature params of one search (query_plans/ltr/params.py), as the proxy builds them.
PARAMS = {"keywords": "red fox", "from_bm25": '["a","b"]'}
FOX = {"keywords": "fox"}

A, B, C, D = fused("a", 0.04), fused("b", 0.03), fused("c", 0.02), fused("d", 0.01)
CANDIDATES = [A, B, C, D]


def response(*hits, **extra):
    body = {
        "took": 3,
        "timed_out": False,
        "_shards": {"total": 2, "successful": 2, "skipped": 0, "failed": 0},
        "hits": {
            "max_score": None,
            "hits": [{"_index": i, "_id": d, "_score": s, "_source": {}} for i, d, s in hits],
        },
    }
    body.update(extra)
    return body


def test_fused_order_keeps_fusion_scores():
    assert fused_order(CANDIDATES) == [
        RankedHit(A, 0.04, None),
        RankedHit(B, 0.03, None),
        RankedHit(C, 0.02, None),
        RankedHit(D, 0.01, None),
    ]
    assert fused_order([]) == []


def test_body_exactly():
    config = RerankConfig(model="ltr-v3", store="books-store", params={"lang": "en"})
    body = build_rerank_body(CANDIDATES, PARAMS, config, ["title"], 250)
    assert body == {
        "query": {"ids": {"values": ["a", "b", "c", "d"]}},
        "size": 4,
        "track_total_hits": False,
        "_source": ["title"],
        "timeout": "250ms",
        "rescore": {
            "window_size": 4,
            "query": {
                "rescore_query": {
                    "sltr": {
                        "params": {"keywords": "red fox", "from_bm25": '["a","b"]', "lang": "en"},
                        "model": "ltr-v3",
                        "store": "books-store",
                    }
                },
                "query_weight": 0,
                "rescore_query_weight": 1,
            },
        },
    }


def test_body_without_store_source_or_timeout():
    body = build_rerank_body([A, B], FOX, RerankConfig(model="m"), None, None)
    assert body == {
        "query": {"ids": {"values": ["a", "b"]}},
        "size": 2,
        "track_total_hits": False,
        "rescore": {
            "window_size": 2,
            "query": {
                "rescore_query": {"sltr": {"params": {"keywords": "fox"}, "model": "m"}},
                "query_weight": 0,
                "rescore_query_weight": 1,
            },
        },
    }


def test_source_false_is_passed_on():
    body = build_rerank_body([A], FOX, RerankConfig(model="m"), False, None)
    assert body["_source"] is False


@pytest.mark.parametrize(("window", "expected"), [(None, 4), (2, 4), (4, 4), (100, 100)])
def test_window_always_covers_every_candidate(window, expected):
    body = build_rerank_body(CANDIDATES, FOX, RerankConfig(model="m", window=window), None, None)
    assert body["rescore"]["window_size"] == expected


def test_candidates_from_several_indices_are_scoped_per_index():
    # films/a must not pull in books/a (not a candidate): each index gets its own ids
    candidates = [fused("a", 0.3, "books"), fused("b", 0.2, "films"), fused("c", 0.1, "books")]
    body = build_rerank_body(candidates, FOX, RerankConfig(model="m"), None, None)
    assert body["query"] == {
        "bool": {
            "should": [
                {
                    "bool": {
                        "filter": [
                            {"term": {"_index": "books"}},
                            {"ids": {"values": ["a", "c"]}},
                        ]
                    }
                },
                {"bool": {"filter": [{"term": {"_index": "films"}}, {"ids": {"values": ["b"]}}]}},
            ],
            "minimum_should_match": 1,
        }
    }
    assert body["size"] == 3
    assert body["rescore"]["window_size"] == 3


def test_apply_orders_by_model_score():
    resp = response(
        ("books", "c", 2.5), ("books", "a", 1.0), ("books", "d", -0.5), ("books", "b", -3)
    )
    assert apply_rerank(CANDIDATES, resp) == [
        RankedHit(C, 2.5, 2.5),
        RankedHit(A, 1.0, 1.0),
        RankedHit(D, -0.5, -0.5),
        RankedHit(B, -3.0, -3.0),
    ]


def test_candidates_missing_from_the_response_follow_in_fused_order():
    # b and d were deleted meanwhile
    resp = response(("books", "c", 0.7), ("books", "a", 0.2))
    assert apply_rerank(CANDIDATES, resp) == [
        RankedHit(C, 0.7, 0.7),
        RankedHit(A, 0.2, 0.2),
        RankedHit(B, 0.03, None),
        RankedHit(D, 0.01, None),
    ]


def test_equal_model_scores_keep_fused_order():
    # the response lists d before b, but both score 1.0: fused order (b before d) decides
    resp = response(("books", "d", 1.0), ("books", "c", 5.0), ("books", "b", 1.0))
    ranked = apply_rerank([B, C, D], resp)
    assert [r.hit.id for r in ranked] == ["c", "b", "d"]


def test_hits_match_on_index_and_id():
    # films/a is another document: ignored, so books/a keeps its fused place
    resp = response(("films", "a", 9.0), ("books", "b", 0.5))
    ranked = apply_rerank([A, B], resp)
    assert ranked == [RankedHit(B, 0.5, 0.5), RankedHit(A, 0.04, None)]


def test_a_repeated_hit_counts_once():
    resp = response(("books", "a", 0.1), ("books", "a", 9.0), ("books", "b", 0.5))
    assert [(r.hit.id, r.ltr_score) for r in apply_rerank([A, B], resp)] == [
        ("b", 0.5),
        ("a", 0.1),
    ]


def test_no_candidates():
    assert apply_rerank([], response()) == []


@pytest.mark.parametrize(
    ("resp", "reason"),
    [
        (
            {"error": {"type": "search_phase_execution_exception", "reason": "model not found"}},
            "rerank search failed: model not found",
        ),
        ({"error": "boom", "status": 500}, "rerank search failed: boom"),
        (response(("books", "a", 1.0), timed_out=True), "rerank search timed out"),
        (
            response(("books", "a", 1.0), _shards={"total": 3, "successful": 2, "failed": 1}),
            "rerank search: 1 of 3 shards failed",
        ),
        ({"took": 1, "timed_out": False}, "rerank response has no hits"),
        ({"hits": {"total": {"value": 0}}}, "rerank response has no hits"),
        ({"hits": {"hits": ["not a hit"]}}, "rerank response has a malformed hit"),
        (
            {"hits": {"hits": [{"_index": "books", "_id": "a", "_score": None}]}},
            "rerank hit books/a has no score",
        ),
    ],
)
def test_untrustworthy_responses_raise(resp, reason):
    with pytest.raises(RerankError) as raised:
        apply_rerank(CANDIDATES, resp)
    assert raised.value.reason == reason
    assert str(raised.value) == reason


def test_catalog_params_are_added_to_the_search_params_but_never_over_them():
    # training logged the search's own values: a catalog param must not change them
    config = RerankConfig(model="m", params={"lang": "en", "from_bm25": "[]"})
    body = build_rerank_body([A], PARAMS, config, None, None)
    assert body["rescore"]["query"]["rescore_query"]["sltr"]["params"] == {
        "keywords": "red fox",
        "from_bm25": '["a","b"]',
        "lang": "en",
    }
    assert PARAMS == {"keywords": "red fox", "from_bm25": '["a","b"]'}  # left as it was
