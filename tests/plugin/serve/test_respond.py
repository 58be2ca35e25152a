"""Respond: a ranked list as a standard ``_search`` page, and what ``ext.ltrr.arms`` reports."""

from __future__ import annotations

from ltrr.bandit.decision import ArmChoice, Decision
from ltrr.plugin.runtime.stats import Stats
from ltrr.plugin.serve.pages import RankedList
from ltrr.plugin.serve.respond import build_response, describe_arms
from ltrr.plugin.serve.retrieve import ArmResult, Retrieval
from ltrr.query_plans.fusion.base import ArmHit, FusedHit, Provenance
from ltrr.query_plans.rerank import RankedHit


def ranked_hit(doc, score, ltr=None, source=None):
    fused = FusedHit("m", doc, score / 100, source, (Provenance("a", 1, 3.0),))
    return RankedHit(fused, score, ltr)


def ranked_list(n=5, ext=None):
    hits = [ranked_hit(str(i), 10.0 - i, 10.0 - i, {"n": i}) for i in range(1, n + 1)]
    base = {"policy": "linucb", "timings_ms": {"decide": 0.1}, "features": {"bias": 1.0}}
    shards = {"total": 2, "successful": 2, "skipped": 0, "failed": 0}
    return RankedList("d-1", hits, ext if ext is not None else base, shards, "fp")


def test_page_from_and_size_total_and_max_score():
    body = build_response(ranked_list(), from_=1, size=2, took_ms=12.6, explain=False)
    assert [h["_id"] for h in body["hits"]["hits"]] == ["2", "3"]
    assert body["hits"]["hits"][0] == {
        "_index": "m",
        "_id": "2",
        "_score": 8.0,
        "_source": {"n": 2},
    }
    assert body["hits"]["total"] == {"value": 5, "relation": "eq"}
    assert body["hits"]["max_score"] == 9.0  # the list's best, not the page's
    assert body["took"] == 13
    assert body["timed_out"] is False
    assert body["_shards"] == {"total": 2, "successful": 2, "skipped": 0, "failed": 0}


def test_a_page_past_the_end_is_empty_and_an_empty_list_has_no_max_score():
    body = build_response(ranked_list(), from_=4, size=10, took_ms=1.0, explain=False)
    assert [h["_id"] for h in body["hits"]["hits"]] == ["5"]
    body = build_response(ranked_list(), from_=9, size=10, took_ms=1.0, explain=False)
    assert body["hits"]["hits"] == []
    assert body["hits"]["total"]["value"] == 5
    empty = build_response(ranked_list(0), from_=0, size=10, took_ms=1.0, explain=False)
    assert empty["hits"] == {"total": {"value": 0, "relation": "eq"}, "max_score": None, "hits": []}


def test_ext_carries_the_decision_the_page_and_the_total_time():
    ranked = ranked_list()
    ext = build_response(ranked, from_=2, size=2, took_ms=3.14159, explain=False)["ext"]["ltrr"]
    assert ext["decision_id"] == "d-1"
    assert ext["page"] == {"from": 2, "size": 2, "cached": False}
    assert ext["timings_ms"] == {"decide": 0.1, "total": 3.142}
    assert ext["policy"] == "linucb"
    assert "features" not in ext
    # the cached list is left as it was, for the next page
    assert ranked.ext == {
        "policy": "linucb",
        "timings_ms": {"decide": 0.1},
        "features": {"bias": 1.0},
    }


def test_explain_adds_ltrr_per_hit_and_keeps_features():
    ranked = ranked_list()
    ranked.hits[0] = RankedHit(
        FusedHit("m", "1", 0.05, None, (Provenance("a", 2, 4.0), Provenance("b", 1, 0.7))),
        9.0,
        None,
    )
    body = build_response(ranked, from_=0, size=1, took_ms=1.0, explain=True)
    (hit,) = body["hits"]["hits"]
    assert hit == {
        "_index": "m",
        "_id": "1",
        "_score": 9.0,
        "_ltrr": {
            "fused_score": 0.05,
            "ltr_score": None,
            "provenance": [
                {"arm": "a", "rank": 2, "score": 4.0},
                {"arm": "b", "rank": 1, "score": 0.7},
            ],
        },
    }
    assert body["ext"]["ltrr"]["features"] == {"bias": 1.0}


def test_a_page_served_from_the_cache_says_so_and_keeps_the_first_timings():
    ranked = ranked_list(ext={"timings_ms": {"decide": 0.1, "total": 20.0}})
    ext = build_response(
        ranked, from_=2, size=2, took_ms=0.4, explain=False, served_from_cache=True
    )["ext"]["ltrr"]
    assert ext["page"] == {"from": 2, "size": 2, "cached": True}
    assert ext["timings_ms"] == {"decide": 0.1, "total": 20.0}


DECISION = Decision(
    (
        ArmChoice("a", True, 3, 0.9, 1.2),
        ArmChoice("b", True, 4, 0.6, 0.3),
        ArmChoice("c", False, 0, 0.2, -0.1),
    ),
    policy="linucb",
    features=(1.0,),
)


def retrieval():
    return Retrieval(
        {
            "a": ArmResult(
                "a",
                (ArmHit("m", "1", 2.0, 1), ArmHit("m", "2", 1.0, 2)),
                took=5,
                shards={"total": 3, "successful": 3, "skipped": 1, "failed": 0},
            ),
            "b": ArmResult(
                "b",
                took=7,
                shards={"total": 2, "successful": 1, "skipped": 0, "failed": 1},
                error="1 shard(s) failed: x: boom",
            ),
        },
        took_ms=8.0,
    )


def test_describe_arms_per_arm():
    arms, _ = describe_arms(DECISION, retrieval(), {}, Stats())
    assert arms == {
        "a": {
            "included": True,
            "size": 3,
            "propensity": 0.9,
            "score": 1.2,
            "hits": 2,
            "took": 5,
            "status": "ok",
        },
        "b": {
            "included": True,
            "size": 4,
            "propensity": 0.6,
            "score": 0.3,
            "hits": 0,
            "took": 7,
            "status": "failed",
            "error": "1 shard(s) failed: x: boom",
        },
        "c": {"included": False, "size": 0, "propensity": 0.2, "score": -0.1},
    }


def test_describe_arms_sums_shards_with_the_rerank_and_counts_failures():
    stats = Stats()
    rerank_shards = {"total": 1, "successful": 1, "skipped": 0, "failed": 0}
    _, shards = describe_arms(DECISION, retrieval(), rerank_shards, stats)
    # total 3 + 2 + 1, successful 3 + 1 + 1, skipped 1 + 0 + 0, failed 0 + 1 + 0
    assert shards == {"total": 6, "successful": 5, "skipped": 1, "failed": 1}
    assert stats.arm_failures == {"b": 1}
    describe_arms(DECISION, retrieval(), {}, stats)
    assert stats.arm_failures == {"b": 2}


def test_describe_arms_without_results_or_shards():
    stats = Stats()
    arms, shards = describe_arms(DECISION, Retrieval({}, 0.0), {}, stats)
    assert shards == {"total": 0, "successful": 0, "skipped": 0, "failed": 0}
    assert set(arms["a"]) == {"included", "size", "propensity", "score"}
    assert stats.arm_failures == {}
