"""Fuse: the catalog's fusion over the arms that answered, weights scaled by the policy if asked."""

from __future__ import annotations

import pytest

from ltrr.bandit.decision import ArmChoice, Decision
from ltrr.plugin.serve.fuse import fuse
from ltrr.plugin.serve.retrieve import ArmResult
from ltrr.query_plans.catalog import load_catalog
from ltrr.query_plans.fusion.base import ArmHit, Provenance

CATALOG = """\
target: music
budget: 6
policy: {name: static}
arms:
  - name: a
    template: multi_match.json.j2
    params: {fields: [name]}
    size: {min: 3, max: 3}
  - name: b
    template: multi_match.json.j2
    params: {fields: [tags]}
    size: {min: 3, max: 3}
fusion: FUSION
fallback: [{arm: a, size: 3}]
"""


def catalog(tmp_path, fusion):
    path = tmp_path / "music.yml"
    path.write_text(CATALOG.replace("FUSION", fusion))
    return load_catalog(path)


def results(**arms):
    """Each arm's hits as (id, score) in rank order, all in index "m"."""
    return {
        arm: ArmResult(
            arm,
            tuple(ArmHit("m", d, s, rank) for rank, (d, s) in enumerate(hits, start=1)),
        )
        for arm, hits in arms.items()
    }


def decision(score_a, score_b):
    return Decision(
        (ArmChoice("a", True, 3, 0.9, score_a), ArmChoice("b", True, 3, 0.6, score_b)),
        policy="linucb",
        features=(1.0,),
    )


SUCCEEDED = results(a=[("x", 9.0), ("y", 5.0)], b=[("y", 0.8), ("z", 0.4)])


def ranked(fused):
    return [f.id for f in fused]


def test_rrf_over_two_arms_by_hand(tmp_path):
    cat = catalog(tmp_path, "{method: rrf, k: 60, weights: {a: 2.0}}")
    fused = fuse(cat, decision(0.1, 2.0), SUCCEEDED)
    # y: 2/(60+2) + 1/(60+1) = 0.032258 + 0.016393 = 0.048651
    # x: 2/(60+1) = 0.032787; z: 1/(60+2) = 0.016129
    assert ranked(fused) == ["y", "x", "z"]
    assert [f.score for f in fused] == pytest.approx([2 / 62 + 1 / 61, 2 / 61, 1 / 62])
    assert fused[0].provenance == (Provenance("a", 2, 5.0), Provenance("b", 1, 0.8))


def test_by_policy_weights_reorder_by_hand(tmp_path):
    cat = catalog(tmp_path, "{method: rrf, k: 60, weights: {a: 2.0}, by_policy: true}")
    fused = fuse(cat, decision(0.1, 2.0), SUCCEEDED)
    # weights a = 2 x 0.1 = 0.2, b = 1 x 2.0 = 2.0
    # y: 0.2/62 + 2/61 = 0.003226 + 0.032787 = 0.036013
    # z: 2/62 = 0.032258; x: 0.2/61 = 0.003279 (x led z without by_policy)
    assert ranked(fused) == ["y", "z", "x"]
    assert [f.score for f in fused] == pytest.approx([0.2 / 62 + 2 / 61, 2 / 62, 0.2 / 61])


def test_by_policy_floors_a_negative_score(tmp_path):
    cat = catalog(tmp_path, "{method: rrf, k: 60, by_policy: true}")
    fused = fuse(cat, decision(-3.0, 0.04), SUCCEEDED)
    # a: 1 x max(-3, 0.05) = 0.05; b: 1 x max(0.04, 0.05) = 0.05: equal weights again
    # y: 0.05/62 + 0.05/61; x: 0.05/61; z: 0.05/62
    assert ranked(fused) == ["y", "x", "z"]
    assert [f.score for f in fused] == pytest.approx([0.05 / 62 + 0.05 / 61, 0.05 / 61, 0.05 / 62])


def test_only_the_arms_given_are_fused(tmp_path):
    cat = catalog(tmp_path, "{method: rrf, k: 60}")
    fused = fuse(cat, decision(1.0, 1.0), results(b=[("y", 0.8), ("z", 0.4)]))
    assert ranked(fused) == ["y", "z"]
    assert [f.score for f in fused] == pytest.approx([1 / 61, 1 / 62])


def test_combmnz_uses_the_catalogs_norm(tmp_path):
    cat = catalog(tmp_path, "{method: combmnz, norm: minmax}")
    succeeded = results(a=[("x", 9.0), ("y", 5.0), ("z", 1.0)], b=[("y", 4.0), ("v", 3.0)])
    fused = fuse(cat, decision(1.0, 1.0), succeeded)
    # minmax: a x 1, y 0.5, z 0; b y 1, v 0. y = (0.5 + 1) x 2 arms = 3; x = 1; v = z = 0
    assert ranked(fused)[:2] == ["y", "x"]
    assert [f.score for f in fused] == pytest.approx([3.0, 1.0, 0.0, 0.0])
