"""oracle.replay_page and best_sets on a two-arm catalog whose pages are fused by hand.

The catalog: arms a and b, each size {min: 0, max: 4}, budget 3, RRF with k = 1 and weights
a = 2, b = 3, so a hit's fused score is the sum of weight / (1 + rank). The page is 2.

Sizes (allocate_sizes, depth = page = 2):
- {a} or {b}: floor max(0, min(2, 4)) = 2, budget left 3 - 2 = 1 < room 4 - 2 = 2, so the one
  arm gets the 1 left: size 3, cost 3.
- {a, b}: floors 2 + 2 = 4 > budget 3, nothing left: sizes 2 and 2, cost 4.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from ltrr.plugin.ops.simulate.clicks import PositionBasedModel
from ltrr.plugin.ops.simulate.oracle import Calibrated, arm_sets, best_sets, replay_page
from ltrr.query_plans.catalog import Catalog, load_catalog
from ltrr.query_plans.fusion.base import ArmHit

CATALOG = """\
target: t
budget: 3
policy: {name: static}
arms:
  - {name: a, template: multi_match.json.j2, params: {fields: [x]}, size: {min: 0, max: 4}}
  - {name: b, template: multi_match.json.j2, params: {fields: [y]}, size: {min: 0, max: 4}}
fusion: {method: rrf, k: 1, weights: {a: 2.0, b: 3.0}}
fallback: [{arm: a, size: 2}]
"""


def _hits(*ids: str) -> list[ArmHit]:
    return [ArmHit("i", doc, 10.0 - rank, rank) for rank, doc in enumerate(ids, 1)]


# a returns a1, a2, x, a4; b returns x, b2, b3, b4.
LISTS = {"a": _hits("a1", "a2", "x", "a4"), "b": _hits("x", "b2", "b3", "b4")}


@pytest.fixture
def catalog(tmp_path: Path) -> Catalog:
    (tmp_path / "c.yml").write_text(CATALOG, encoding="utf-8")
    return load_catalog(tmp_path / "c.yml")


def test_arm_sets_are_every_non_empty_combination() -> None:
    assert arm_sets(["a", "b", "c"]) == [
        ("a",),
        ("b",),
        ("c",),
        ("a", "b"),
        ("a", "c"),
        ("b", "c"),
        ("a", "b", "c"),
    ]


def test_one_arm_serves_its_own_top_of_three(catalog: Catalog) -> None:
    # {a}: size 3 -> a1 (2/2 = 1), a2 (2/3), x (2/4); page 2 -> a1, a2
    assert replay_page(catalog, LISTS, ("a",), 2) == (["a1", "a2"], 3)
    # {b}: size 3 -> x (3/2), b2 (3/3 = 1), b3 (3/4); page 2 -> x, b2
    assert replay_page(catalog, LISTS, ("b",), 2) == (["x", "b2"], 3)


def test_both_arms_fuse_and_ties_go_to_the_better_rank(catalog: Catalog) -> None:
    # {a, b}: a gives a1, a2; b gives x, b2.
    # x = 3/2 = 1.5; a1 = 2/2 = 1; b2 = 3/3 = 1; a2 = 2/3.
    # a1 and b2 tie at 1: a1's best rank (1) beats b2's (2). Page: x, a1.
    assert replay_page(catalog, LISTS, ("a", "b"), 2) == (["x", "a1"], 4)
    # A longer page shows the whole order: x, a1, b2, a2.
    ids, cost = replay_page(catalog, LISTS, ("a", "b"), 4)
    # page 4: floors min(4, 4) = 4 each = 8 > budget 3: sizes 4 + 4, cost 8;
    # a: a1 2/2 = 1, a2 2/3, x 2/4, a4 2/5; b: x 3/2, b2 3/3 = 1, b3 3/4, b4 3/5.
    # x = 0.5 + 1.5 = 2; a1 1 (rank 1) before b2 1 (rank 2); b3 0.75; then a2 0.667, b4 0.6.
    assert (ids, cost) == (["x", "a1", "b2", "b3"], 8)


def test_an_arm_without_a_list_adds_nothing(catalog: Catalog) -> None:
    # b is included but returned nothing: only a's three (sizes 2 each: a1, a2) are fused.
    assert replay_page(catalog, {"a": LISTS["a"]}, ("a", "b"), 2) == (["a1", "a2"], 4)


def test_an_excluded_arm_is_never_read(catalog: Catalog) -> None:
    # b's list is there but b is not included: the page is a's alone.
    assert replay_page(catalog, LISTS, ("a",), 2)[0] == ["a1", "a2"]


# PBM with examination (1.0, 0.5) and no noise: a page earns 1.0 for a relevant doc at rank 1
# and 0.5 at rank 2. Pages per set: {a} a1, a2 (cost 3); {b} x, b2 (cost 3); {a,b} x, a1 (4).
PBM = PositionBasedModel(examination=(1.0, 0.5), noise=0.0, g_max=1)


def test_best_set_per_intent_by_mean_expected_clicks(catalog: Catalog) -> None:
    samples = [
        # artist: x and a1 relevant: {a} 1.0 + 0 = 1.0; {b} 1.0 + 0 = 1.0; {a,b} 1.0 + 0.5 = 1.5
        Calibrated("artist", LISTS, {"x": 1, "a1": 1}),
        # genre, two samples, a mean:
        #   {a2}:     {a} 0.5, {b} 0,   {a,b} 0
        #   {a2, b2}: {a} 0.5, {b} 0.5, {a,b} 0
        #   means:    {a} 0.5, {b} 0.25, {a,b} 0
        Calibrated("genre", LISTS, {"a2": 1}),
        Calibrated("genre", LISTS, {"a2": 1, "b2": 1}),
    ]
    assert best_sets(catalog, samples, PBM, 2) == {
        "artist": (("a", "b"), 1.5),
        "genre": (("a",), 0.5),
    }


def test_equal_clicks_go_to_the_cheaper_set(catalog: Catalog) -> None:
    # Examining both ranks fully, only a1 relevant: {a} a1, a2 -> 1.0 (cost 3);
    # {a,b} x, a1 -> 1.0 (cost 4); {b} 0. The tie goes to {a}, 3 documents instead of 4.
    flat = PositionBasedModel(examination=(1.0, 1.0), noise=0.0, g_max=1)
    got = best_sets(catalog, [Calibrated("q", LISTS, {"a1": 1})], flat, 2)
    assert got == {"q": (("a",), 1.0)}


def test_unjudged_documents_earn_only_noise(catalog: Catalog) -> None:
    # noise 0.1, nothing judged: every page of two earns 1.0*0.1 + 0.5*0.1 = 0.15. All sets
    # tie; {a} and {b} cost 3, {a,b} 4, so a one-arm set wins with 0.15.
    noisy = PositionBasedModel(examination=(1.0, 0.5), noise=0.1, g_max=1)
    ((include, value),) = best_sets(catalog, [Calibrated("q", LISTS, {})], noisy, 2).values()
    assert len(include) == 1
    assert value == pytest.approx(0.15)
