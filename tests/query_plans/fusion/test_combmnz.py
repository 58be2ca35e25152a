import pytest

from ltrr.query_plans.fusion.base import ArmHit, Provenance
from ltrr.query_plans.fusion.combmnz import combmnz


def hit(doc, rank, score, index="i", source=None):
    return ArmHit(index, doc, score, rank, source)


RESULTS = {
    "bm25": [hit("x", 1, 10.0), hit("y", 2, 6.0), hit("z", 3, 2.0)],
    "knn": [hit("y", 1, 0.9), hit("w", 2, 0.3, source={"t": "w"})],
}


def test_combsum_times_arm_count():
    fused = combmnz(RESULTS, {})
    # minmax bm25: x 1.0, y 0.5, z 0.0; knn: y 1.0, w 0.0
    # y: (0.5 + 1.0) * 2 = 3.0; x: 1.0 * 1 = 1.0; w, z: 0.0 (w best rank 2 < z's 3)
    assert [f.id for f in fused] == ["y", "x", "w", "z"]
    assert [f.score for f in fused] == [3.0, 1.0, 0.0, 0.0]
    assert fused[0].provenance == (Provenance("bm25", 2, 6.0), Provenance("knn", 1, 0.9))
    assert fused[2].source == {"t": "w"}


def test_a_zero_weight_arm_still_counts_as_agreement():
    fused = combmnz(RESULTS, {"knn": 0.0})
    # y: (0.5 + 0.0*1.0) * 2 = 1.0; x: 1.0 * 1 = 1.0 -> tie, best rank 1 both -> y (two arms)
    assert [f.id for f in fused] == ["y", "x", "w", "z"]
    assert [f.score for f in fused] == [1.0, 1.0, 0.0, 0.0]


def test_weights():
    fused = combmnz(RESULTS, {"bm25": 3.0, "knn": 0.5})
    # y: (3*0.5 + 0.5*1.0) * 2 = 4.0; x: 3*1.0 = 3.0
    assert [f.score for f in fused[:2]] == [4.0, 3.0]


def test_zscore():
    fused = combmnz(RESULTS, {}, norm="zscore")
    # bm25: x +1.224745, y 0, z -1.224745 (mean 6, std sqrt(32/3)); knn: y +1, w -1
    # y: (0 + 1) * 2 = 2; x 1.224745; w -1; z -1.224745
    assert [f.id for f in fused] == ["y", "x", "w", "z"]
    assert [f.score for f in fused] == pytest.approx([2.0, 1.5**0.5, -1.0, -(1.5**0.5)])


def test_same_id_in_two_indices_is_two_docs():
    results = {
        "a": [hit("1", 1, 3.0, index="books"), hit("1", 2, 1.0, index="films")],
        "b": [hit("1", 1, 8.0, index="films"), hit("1", 2, 4.0, index="books")],
    }
    fused = combmnz(results, {"b": 2.0})
    # a: books/1 1.0, films/1 0.0; b: films/1 1.0, books/1 0.0
    # books/1: (1.0 + 2*0.0) * 2 = 2.0; films/1: (0.0 + 2*1.0) * 2 = 4.0
    assert [(f.index, f.id, f.score) for f in fused] == [("films", "1", 4.0), ("books", "1", 2.0)]
