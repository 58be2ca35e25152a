import pytest

from ltrr.query_plans.fusion.base import ArmHit, FusedHit, Provenance
from ltrr.query_plans.fusion.rrf import rrf


def hit(doc, rank, score=1.0, index="i", source=None):
    return ArmHit(index, doc, score, rank, source)


def keyed(fused):
    return [(f.index, f.id) for f in fused]


def test_weighted_sum_of_reciprocal_ranks():
    results = {
        "bm25": [hit("x", 1, 9.0), hit("y", 2, 7.0), hit("z", 3, 5.0)],
        "knn": [hit("y", 1, 0.9), hit("w", 2, 0.8)],
    }
    fused = rrf(results, {"knn": 0.5})
    # y: 1/(60+2) + 0.5/(60+1) = 0.016129 + 0.008197 = 0.024326
    # x: 1/(60+1) = 0.016393
    # z: 1/(60+3) = 0.015873
    # w: 0.5/(60+2) = 0.008065
    assert keyed(fused) == [("i", "y"), ("i", "x"), ("i", "z"), ("i", "w")]
    assert [f.score for f in fused] == pytest.approx([1 / 62 + 0.5 / 61, 1 / 61, 1 / 63, 0.5 / 62])
    assert fused[0] == FusedHit(
        "i",
        "y",
        fused[0].score,
        None,
        (Provenance("bm25", 2, 7.0), Provenance("knn", 1, 0.9)),
    )
    assert fused[1].provenance == (Provenance("bm25", 1, 9.0),)


def test_k_is_configurable():
    results = {"a": [hit("x", 1), hit("y", 2)], "b": [hit("y", 1)]}
    fused = rrf(results, {}, k=10)
    # y: 1/(10+2) + 1/(10+1) = 0.083333 + 0.090909 = 0.174242; x: 1/(10+1) = 0.090909
    assert keyed(fused) == [("i", "y"), ("i", "x")]
    assert [f.score for f in fused] == pytest.approx([1 / 12 + 1 / 11, 1 / 11])


def test_negative_k_is_rejected():
    with pytest.raises(ValueError, match="k must be >= 0"):
        rrf({"a": [hit("x", 1)]}, {}, k=-1)


def test_absent_weights_count_as_one_and_unknown_arms_are_ignored():
    results = {"a": [hit("x", 1)], "b": [hit("y", 1)]}
    fused = rrf(results, {"b": 3.0, "not-an-arm": 100.0})
    # y: 3/(60+1) = 0.049180; x: 1/(60+1) = 0.016393
    assert keyed(fused) == [("i", "y"), ("i", "x")]
    assert [f.score for f in fused] == pytest.approx([3 / 61, 1 / 61])


def test_same_id_in_two_indices_is_two_docs():
    results = {
        "a": [hit("1", 1, index="books"), hit("1", 2, index="films")],
        "b": [hit("1", 1, index="films")],
    }
    fused = rrf(results, {})
    # films/1: 1/(60+2) + 1/(60+1) = 0.032522; books/1: 1/(60+1) = 0.016393
    assert keyed(fused) == [("films", "1"), ("books", "1")]
    assert fused[0].score == pytest.approx(1 / 62 + 1 / 61)
    assert fused[0].provenance == (Provenance("a", 2, 1.0), Provenance("b", 1, 1.0))
    assert fused[1].provenance == (Provenance("a", 1, 1.0),)


def test_provenance_follows_the_input_mapping_order():
    results = {"z-arm": [hit("x", 3, 0.3)], "a-arm": [hit("x", 1, 0.7)]}
    (fused,) = rrf(results, {})
    assert fused.provenance == (Provenance("z-arm", 3, 0.3), Provenance("a-arm", 1, 0.7))


def test_source_comes_from_the_first_arm_that_has_one():
    results = {
        "a": [hit("x", 1, source=None)],
        "b": [hit("x", 2, source={"title": "from b"})],
        "c": [hit("x", 1, source={"title": "from c"})],
    }
    (fused,) = rrf(results, {})
    assert fused.source == {"title": "from b"}


def test_a_doc_listed_twice_by_one_arm_counts_once_at_its_first_rank():
    results = {"a": [hit("x", 1, 5.0), hit("y", 2), hit("x", 3, 2.0)]}
    fused = rrf(results, {})
    # x: 1/(60+1) only, not + 1/(60+3)
    assert fused[0].score == pytest.approx(1 / 61)
    assert fused[0].provenance == (Provenance("a", 1, 5.0),)


def test_empty_arms_and_empty_results():
    assert rrf({}, {}) == []
    assert rrf({"a": [], "b": []}, {"a": 2.0}) == []
    fused = rrf({"a": [], "b": [hit("x", 1)]}, {})
    assert keyed(fused) == [("i", "x")]
    assert fused[0].provenance == (Provenance("b", 1, 1.0),)


def test_tie_on_score_goes_to_the_better_best_rank():
    # k = 0 keeps the arithmetic exact: top 2/(0+1) = 2.0; a 2/(0+2) = 1.0; z 1/(0+1) = 1.0
    # z and a tie; z's best rank 1 beats a's 2, although "a" < "z"
    results = {"b": [hit("top", 1), hit("a", 2)], "c": [hit("z", 1)]}
    fused = rrf(results, {"b": 2.0}, k=0)
    assert keyed(fused) == [("i", "top"), ("i", "z"), ("i", "a")]
    assert [f.score for f in fused] == [2.0, 1.0, 1.0]


def test_tie_on_score_and_rank_goes_to_more_arms():
    # k = 0: x 1/1 = 1.0 (one arm); y 1/2 + 0.5/1 = 1.0 (two arms); best rank 1 for both,
    # so y wins on its arm count, although "x" < "y"
    results = {"a": [hit("x", 1), hit("y", 2)], "b": [hit("y", 1)]}
    fused = rrf(results, {"b": 0.5}, k=0)
    assert keyed(fused) == [("i", "y"), ("i", "x")]
    assert [f.score for f in fused] == [1.0, 1.0]


def test_full_tie_goes_to_index_then_id():
    # every doc: 1/(60+1), best rank 1, one arm
    results = {
        "a": [hit("2", 1, index="idx-a")],
        "b": [hit("1", 1, index="idx-b")],
        "c": [hit("1", 1, index="idx-a")],
    }
    fused = rrf(results, {})
    assert keyed(fused) == [("idx-a", "1"), ("idx-a", "2"), ("idx-b", "1")]
    assert rrf(dict(reversed(results.items())), {}) == rrf(results, {})
