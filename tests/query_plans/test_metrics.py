import math

import pytest

from ltrr.query_plans.metrics import dcg, grades_for, ndcg_at_k, recall_at_k

# log2(2) = 1, log2(3) = 1.5849625, log2(4) = 2, log2(5) = 2.3219281
GRADES = {"a": 3, "b": 2, "c": 0, "d": 1}


def test_grades_for_maps_unjudged_and_negative_to_zero():
    assert grades_for(["a", "z", "d", "c"], GRADES) == [3, 0, 1, 0]
    assert grades_for(["spam", "b"], {"spam": -2, "b": 2}) == [0, 2]
    assert grades_for([], GRADES) == []


def test_dcg_of_grades_in_rank_order():
    # (2^3-1)/log2(2) + (2^2-1)/log2(3) + 0 + (2^1-1)/log2(5)
    # = 7 + 3/1.5849625 + 1/2.3219281 = 7 + 1.8927893 + 0.4306766 = 9.3234659
    assert dcg([3, 2, 0, 1]) == pytest.approx(9.3234659, abs=1e-6)
    assert dcg([]) == 0.0


def test_ndcg_of_a_nearly_ideal_ranking():
    # DCG  = 7 + 3/log2(3) + 0/log2(4) + 1/log2(5) = 7 + 1.8927893 + 0.4306766 = 9.3234659
    # IDCG = [3, 2, 1]: 7 + 3/log2(3) + 1/log2(4) = 7 + 1.8927893 + 0.5 = 9.3927893
    # nDCG = 9.3234659 / 9.3927893 = 0.9926195
    assert ndcg_at_k(["a", "b", "c", "d"], GRADES, k=4) == pytest.approx(0.9926195, abs=1e-6)


def test_ndcg_of_a_reversed_ranking():
    # DCG = 1/log2(2) + 0/log2(3) + 3/log2(4) + 7/log2(5) = 1 + 0 + 1.5 + 3.0147359 = 5.5147359
    # nDCG = 5.5147359 / 9.3927893 = 0.5871244
    assert ndcg_at_k(["d", "c", "b", "a"], GRADES, k=4) == pytest.approx(0.5871244, abs=1e-6)


def test_ndcg_ideal_uses_judged_documents_that_were_not_retrieved():
    # shown [b, x]: DCG@2 = 3/log2(2) + 0 = 3
    # ideal [a, b]: IDCG@2 = 7 + 3/log2(3) = 8.8927893; nDCG = 3 / 8.8927893 = 0.3373520
    assert ndcg_at_k(["b", "x"], {"a": 3, "b": 2}, k=2) == pytest.approx(0.3373520, abs=1e-6)


def test_ndcg_cuts_at_k():
    # k=1: shown [d] -> 1/1 = 1; ideal [a] -> 7/1 = 7; nDCG = 1/7
    assert ndcg_at_k(["d", "a"], GRADES, k=1) == pytest.approx(1 / 7)


def test_ndcg_default_k_is_ten():
    ranked = [f"x{i}" for i in range(10)] + ["a"]
    # "a" at rank 11 is outside the default cut, so nothing relevant is shown.
    assert ndcg_at_k(ranked, {"a": 1}) == 0.0
    assert ndcg_at_k(ranked, {"a": 1}, k=11) == pytest.approx(1 / math.log2(12))


def test_ndcg_perfect_ranking_is_one():
    assert ndcg_at_k(["a", "b", "d", "c"], GRADES) == pytest.approx(1.0)


def test_ndcg_is_zero_without_relevant_documents():
    assert ndcg_at_k(["a", "b"], {}, k=10) == 0.0
    assert ndcg_at_k(["a", "b"], {"a": 0, "b": 0}, k=10) == 0.0


def test_ndcg_counts_a_repeated_id_once():
    # First two distinct ids are [a, b], the ideal order: nDCG = 1.
    # Counting "a" twice would give 7 + 7/log2(3) = 11.4165 > IDCG 8.8928, i.e. nDCG > 1.
    assert ndcg_at_k(["a", "a", "b"], {"a": 3, "b": 2}, k=2) == pytest.approx(1.0)


def test_ndcg_negative_grade_counts_as_zero():
    # shown [spam, b]: DCG = 0 + 1/log2(3) = 0.6309298; ideal [b] = 1; nDCG = 0.6309298
    assert ndcg_at_k(["spam", "b"], {"spam": -2, "b": 1}) == pytest.approx(0.6309298, abs=1e-6)


def test_recall_at_k():
    relevant = {"a": 1, "b": 2, "c": 0, "d": 3}  # relevant: a, b, d (c has grade 0)
    ranked = ["c", "a", "x", "d", "b"]
    assert recall_at_k(ranked, relevant, 3) == pytest.approx(1 / 3)  # a
    assert recall_at_k(ranked, relevant, 4) == pytest.approx(2 / 3)  # a, d
    assert recall_at_k(ranked, relevant, 10) == 1.0  # a, d, b


def test_recall_counts_a_repeated_id_once():
    # [a, a, a] finds one of {a, b}: 1/2, not 3/2.
    assert recall_at_k(["a", "a", "a"], {"a": 1, "b": 1}, 3) == 0.5


def test_recall_is_none_without_relevant_documents():
    assert recall_at_k(["a"], {}, 10) is None
    assert recall_at_k(["a"], {"a": 0, "b": -1}, 10) is None


@pytest.mark.parametrize("k", [0, -1, True, 2.5])
def test_bad_k_is_rejected(k):
    with pytest.raises(ValueError, match="k must be a positive integer"):
        recall_at_k(["a"], {"a": 1}, k)
    with pytest.raises(ValueError, match="k must be a positive integer"):
        ndcg_at_k(["a"], {"a": 1}, k=k)
