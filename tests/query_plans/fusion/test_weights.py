import pytest

from ltrr.query_plans.fusion import policy_weights


def test_weights_are_scaled_by_the_policys_scores_with_a_floor():
    weights = {"lexical": 2.0, "popular": 0.5}
    scores = {"lexical": 0.3, "popular": 1.2, "memory": -0.4}
    # lexical 2 x 0.3; popular 0.5 x 1.2; memory has no catalog weight (1) and a negative
    # score, floored at 0.05 so that an included arm still counts a little.
    assert policy_weights(weights, scores) == pytest.approx(
        {"lexical": 0.6, "popular": 0.6, "memory": 0.05}
    )


def test_arms_without_a_score_are_left_out():
    assert policy_weights({"a": 1.0, "b": 3.0}, {"b": 2.0}) == {"b": 6.0}
