import pytest

from ltrr.query_plans.fusion.base import ArmHit, Provenance
from ltrr.query_plans.fusion.combsum import combsum


def hit(doc, rank, score, index="i", source=None):
    return ArmHit(index, doc, score, rank, source)


RESULTS = {
    "bm25": [hit("x", 1, 10.0), hit("y", 2, 6.0), hit("z", 3, 2.0)],
    "knn": [hit("y", 1, 0.9), hit("w", 2, 0.3)],
}


def keyed(fused):
    return [f.id for f in fused]


def test_minmax_weighted_sum_and_its_tie_breaks():
    fused = combsum(RESULTS, {"bm25": 2.0})
    # minmax bm25 (min 2, max 10): x (10-2)/8 = 1.0, y (6-2)/8 = 0.5, z 0.0
    # minmax knn (min 0.3, max 0.9): y 1.0, w 0.0
    # x: 2*1.0 = 2.0; y: 2*0.5 + 1*1.0 = 2.0; z: 2*0.0 = 0.0; w: 1*0.0 = 0.0
    # x/y tie, best rank 1 both -> y (two arms) first; w/z tie -> w (best rank 2 < 3) first
    assert keyed(fused) == ["y", "x", "w", "z"]
    assert [f.score for f in fused] == [2.0, 2.0, 0.0, 0.0]
    assert fused[0].provenance == (Provenance("bm25", 2, 6.0), Provenance("knn", 1, 0.9))


def test_zscore():
    fused = combsum(RESULTS, {}, norm="zscore")
    # bm25: mean 6, var (16+0+16)/3 = 32/3, std 3.265986: x 4/3.265986 = 1.224745, y 0,
    # z -1.224745; knn: mean 0.6, std 0.3: y +1, w -1
    # x 1.224745; y 0 + 1 = 1; w -1; z -1.224745
    assert keyed(fused) == ["x", "y", "w", "z"]
    assert [f.score for f in fused] == pytest.approx([1.5**0.5, 1.0, -1.0, -(1.5**0.5)])


def test_an_arm_without_spread_counts_fully_under_minmax():
    results = {"a": [hit("x", 1, 4.0), hit("y", 2, 0.0)], "b": [hit("y", 1, 0.1)]}
    fused = combsum(results, {"b": 0.5})
    # a: x 1.0, y 0.0; b has one hit -> 1.0; y: 0.0 + 0.5*1.0 = 0.5
    assert keyed(fused) == ["x", "y"]
    assert [f.score for f in fused] == [1.0, 0.5]


def test_same_id_in_two_indices_is_two_docs():
    results = {
        "a": [hit("1", 1, 3.0, index="books"), hit("1", 2, 1.0, index="films")],
        "b": [hit("1", 1, 8.0, index="films"), hit("2", 2, 4.0, index="films")],
    }
    fused = combsum(results, {})
    # a: books/1 1.0, films/1 0.0; b: films/1 1.0, films/2 0.0
    # books/1 1.0 and films/1 1.0 tie at best rank 1 -> films/1 (two arms) first
    assert [(f.index, f.id) for f in fused] == [("films", "1"), ("books", "1"), ("films", "2")]
    assert [f.score for f in fused] == [1.0, 1.0, 0.0]


def test_unknown_norm_is_rejected():
    with pytest.raises(ValueError, match="unknown score normalisation"):
        combsum(RESULTS, {}, norm="sum")


def test_empty():
    assert combsum({"a": []}, {}) == []
