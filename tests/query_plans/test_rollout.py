"""Team-draft interleaving against pages drafted by hand, and the stable split."""

from __future__ import annotations

import hashlib

import pytest

from ltrr.query_plans.rollout import (
    BASELINE,
    LEARNER,
    coin_flips,
    preference,
    split_side,
    team_clicks,
    team_draft,
    unit_point,
)


def coins(*flips: bool):
    """A fixed coin sequence (True: the learner picks first); running out is an error."""
    it = iter(flips)
    return lambda: next(it)


def test_team_draft_with_the_learner_winning_every_toss():
    # Round 1 (tie, coin L): L takes a; B takes its first unshown, b. Round 2 (tie, coin L):
    # L's next unshown is c; B's list is b, a, c, so it takes d. Round 3 (coin L): L takes e;
    # B, behind by one, has nothing new, and the draft ends.
    shown, teams = team_draft(["a", "c", "e"], ["b", "a", "c", "d"], coins(True, True, True))
    assert shown == ["a", "b", "c", "d", "e"]
    assert teams == [LEARNER, BASELINE, LEARNER, BASELINE, LEARNER]


def test_team_draft_with_the_baseline_winning_the_first_toss():
    # Round 1 (coin B): B takes x, then L (behind by one) takes its first unshown, y.
    # Round 2 (coin L): L takes z, B its next unshown, w. Round 3 (coin L): L has nothing new.
    shown, teams = team_draft(["x", "y", "z"], ["x", "w", "z"], coins(False, True, True))
    assert shown == ["x", "y", "z", "w"]
    assert teams == [BASELINE, LEARNER, LEARNER, BASELINE]


def test_the_teams_never_differ_by_more_than_one_pick():
    # Round 1 (coin L): L 1, B 2. Round 2 (coin L): L 3, and B, on turn with nothing new
    # (its 1 and 3 are shown), ends the draft: L placed two, B one.
    shown, teams = team_draft([1, 3], [2, 1, 3], coins(True, True))
    assert shown == [1, 2, 3]
    assert teams == [LEARNER, BASELINE, LEARNER]


def test_identical_lists_split_the_page_evenly():
    shown, teams = team_draft([1, 2, 3, 4], [1, 2, 3, 4], coins(True, False, True))
    assert shown == [1, 2, 3, 4]
    # Round 1 coin L: L 1, B 2. Round 2 coin B: B 3, L 4. Round 3: L first, nothing new.
    assert teams == [LEARNER, BASELINE, BASELINE, LEARNER]


def test_leftovers_after_one_list_runs_out_have_no_team():
    shown, teams = team_draft(["a"], ["b", "c", "d"], coins(True, True))
    # Round 1 (coin L): L a, B b. Round 2 (coin L): L has nothing new; c and d follow teamless.
    assert shown == ["a", "b", "c", "d"]
    assert teams == [LEARNER, BASELINE, None, None]


def test_an_empty_side_leaves_the_whole_page_teamless():
    shown, teams = team_draft([], ["a", "b"], coins(True))
    assert (shown, teams) == (["a", "b"], [None, None])


def test_clicks_count_for_the_team_that_placed_the_document():
    teams = [LEARNER, BASELINE, LEARNER, None]
    assert team_clicks(teams, [1, 3, 4]) == {LEARNER: 2, BASELINE: 0}
    assert team_clicks(teams, [2]) == {LEARNER: 0, BASELINE: 1}
    assert team_clicks(teams, [9]) == {LEARNER: 0, BASELINE: 0}  # off the page: nobody's
    assert (preference(2, 0), preference(0, 1), preference(1, 1), preference(0, 0)) == (
        1,
        -1,
        0,
        0,
    )


def test_the_coin_is_fixed_by_the_decision():
    first = coin_flips("d1", "salt")
    again = coin_flips("d1", "salt")
    assert [first() for _ in range(20)] == [again() for _ in range(20)]
    first, other = coin_flips("d1", "salt"), coin_flips("d2", "salt")
    assert [first() for _ in range(64)] != [other() for _ in range(64)]


def test_the_unit_point_is_keyed_blake2b():
    digest = hashlib.blake2b(b"user-7", key=b"music", digest_size=8).digest()
    assert unit_point("user-7", "music") == int.from_bytes(digest, "big") / 2**64


def test_the_split_is_stable_and_gives_the_learner_its_share():
    units = [f"session-{i}" for i in range(20_000)]
    sides = [split_side(u, "music", 0.2) for u in units]
    assert sides == [split_side(u, "music", 0.2) for u in units]  # the same unit, the same side
    share = sides.count(LEARNER) / len(units)
    # Binomial(20000, 0.2): the standard deviation is 0.0028, so this is over 3.5 of them.
    assert share == pytest.approx(0.2, abs=0.01)


def test_raising_the_share_only_moves_units_to_the_learner():
    units = [f"u{i}" for i in range(2000)]
    before = {u for u in units if split_side(u, "s", 0.1) == LEARNER}
    after = {u for u in units if split_side(u, "s", 0.5) == LEARNER}
    assert before < after


def test_the_salt_reshuffles_the_units():
    units = [f"u{i}" for i in range(2000)]
    one = [split_side(u, "catalog-a", 0.5) for u in units]
    two = [split_side(u, "catalog-b", 0.5) for u in units]
    assert one != two


def test_share_zero_and_one_are_all_or_nothing():
    assert {split_side(f"u{i}", "s", 0.0) for i in range(100)} == {BASELINE}
    assert {split_side(f"u{i}", "s", 1.0) for i in range(100)} == {LEARNER}
