import dataclasses

import pytest

from ltrr.query_plans.fusion.base import ArmHit, FusedHit, Provenance


def test_arm_hit_fields_and_default_source():
    hit = ArmHit("music", "42", 3.5, 1)
    assert (hit.index, hit.id, hit.score, hit.rank, hit.source) == ("music", "42", 3.5, 1, None)
    assert hit == ArmHit("music", "42", 3.5, 1, None)
    assert hit != ArmHit("music", "42", 3.5, 2)
    assert [f.name for f in dataclasses.fields(ArmHit)] == [
        "index",
        "id",
        "score",
        "rank",
        "source",
    ]


def test_hits_are_slotted():
    hit = ArmHit("music", "42", 3.5, 1)
    with pytest.raises(AttributeError):
        hit.extra = 1  # type: ignore[attr-defined]
    fused = FusedHit("music", "42", 0.5, None, ())
    with pytest.raises(AttributeError):
        fused.extra = 1  # type: ignore[attr-defined]


def test_provenance_is_a_named_tuple_in_arm_rank_score_order():
    p = Provenance("bm25", 2, 7.0)
    assert p == ("bm25", 2, 7.0)
    assert (p.arm, p.rank, p.score) == ("bm25", 2, 7.0)
    assert Provenance._fields == ("arm", "rank", "score")
    assert p._replace(rank=1) == ("bm25", 1, 7.0)


def test_fused_hit_key_is_index_and_id():
    provenance = (Provenance("bm25", 1, 9.0), Provenance("knn", 3, 0.7))
    fused = FusedHit("music-2", "7", 1 / 61 + 1 / 63, {"name": "x"}, provenance)
    assert fused.key == ("music-2", "7")
    assert fused.provenance[1].arm == "knn"
    # the same id in another index is another document
    assert FusedHit("music-1", "7", 0.0, None, ()).key != fused.key


def test_fused_hits_compare_by_value():
    a = FusedHit("i", "x", 0.5, None, (Provenance("bm25", 1, 2.0),))
    assert a == FusedHit("i", "x", 0.5, None, (Provenance("bm25", 1, 2.0),))
    assert a != FusedHit("i", "x", 0.5, None, (Provenance("bm25", 2, 2.0),))
