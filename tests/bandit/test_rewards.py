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
