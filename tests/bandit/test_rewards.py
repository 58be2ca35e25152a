import pytest

from ltrr.bandit.rewards import arm_rewards, position_factor


@pytest.mark.parametrize(
    ("position", "eta", "cap", "expected"),
    [
        (None, 1.0, 10.0, 1.0),  # unknown rank: no correction
        (1, 1.0, 10.0, 1.0),
        (3, 1.0, 10.0, 3.0),
        (4, 0.5, 10.0, 2.0),
        (50, 1.0, 10.0, 10.0),  # capped
        (7, 0.0, 10.0, 1.0),  # eta 0 switches it off
    ],
)
def test_position_factor_is_the_inverse_examination_probability(position, eta, cap, expected):
    assert position_factor(position, eta, cap) == pytest.approx(expected)


def test_only_arms_that_retrieved_the_object_earn_its_reward():
    results = {"lexical": {"d1", "d2"}, "dense": {"d2", "d3"}, "popular": {"d9"}}
    assert arm_rewards(results, ["lexical", "dense", "popular"], "d2", 2.0) == {
        "lexical": 2.0,
        "dense": 2.0,
        "popular": 0.0,
    }
    assert arm_rewards(results, ["lexical", "dense"], "d3", -0.5) == {
        "lexical": 0.0,
        "dense": -0.5,
    }


def test_an_included_arm_that_failed_earns_nothing():
    assert arm_rewards({"lexical": {"d1"}}, ["lexical", "dense"], "d1", 1.0) == {
        "lexical": 1.0,
        "dense": 0.0,
    }


def test_unique_credit_pays_only_the_arm_without_which_the_object_was_missing():
    results = {"lexical": {"d1", "d2"}, "dense": {"d2", "d3"}, "popular": {"d9"}}
    included = ["lexical", "dense", "popular"]
    # d2 was found by two arms: either alone would have made it a candidate, so neither earns.
    assert arm_rewards(results, included, "d2", 2.0, unique=True) == {
        "lexical": 0.0,
        "dense": 0.0,
        "popular": 0.0,
    }
    # d3 only by dense: without dense it would not have been shown.
    assert arm_rewards(results, included, "d3", 2.0, unique=True) == {
        "lexical": 0.0,
        "dense": 2.0,
        "popular": 0.0,
    }
    # An arm not included does not make another arm's find redundant.
    assert arm_rewards(results, ["lexical", "popular"], "d2", 1.0, unique=True) == {
        "lexical": 1.0,
        "popular": 0.0,
    }
