import numpy as np
import pytest

from ltrr.query_plans.ltr.judgments import (
    Impression,
    from_clicks,
    from_qrels,
    grade,
    pbm_em,
    position_ctr,
)


def test_from_qrels_clamps_negative_grades():
    j = from_qrels({"q1": {"a": 2, "b": -1}, "q2": {"c": 0}})
    assert j.grades == {"q1": {"a": 2, "b": 0}, "q2": {"c": 0}}
    assert j.grade("q1", "a") == 2
    assert j.grade("q1", "zzz") == 0  # unjudged
    assert j.method == "qrels"


def test_from_qrels_refuses_non_integers():
    with pytest.raises(ValueError, match="not an integer"):
        from_qrels({"q": {"a": 1.5}})  # type: ignore[dict-item]


def test_grade_thresholds():
    # default thresholds 0.05, 0.15, 0.30, 0.50: grade = how many are reached
    assert [grade(v) for v in (0.0, 0.049, 0.05, 0.15, 0.29, 0.3, 0.5, 3.0)] == [
        0,
        0,
        1,
        2,
        2,
        3,
        4,
        4,
    ]


def test_coec_hand_computed():
    imps = [
        # d1: rank 1 clicked, rank 2 not, rank 2 clicked -> 2 / (1 + 1/2 + 1/2) = 1.0 -> grade 4
        ("q", "d1", 1, True),
        ("q", "d1", 2, False),
        ("q", "d1", 2, True),
        # d2: rank 4 twice, one click -> 1 / (1/4 + 1/4) = 2.0 -> grade 4
        ("q", "d2", 4, True),
        ("q", "d2", 4, False),
    ]
    # d3: rank 3 eleven times, one click -> 1 / (11/3) = 0.2727 -> grade 2
    imps += [("q", "d3", 3, i == 0) for i in range(11)]
    # d4: rank 1 twenty times, one click -> 1 / 20 = 0.05 -> grade 1
    imps += [("q", "d4", 1, i == 0) for i in range(20)]
    # d5: never clicked -> 0 -> grade 0
    imps += [("q", "d5", 2, False)]
    j = from_clicks(imps, method="coec")
    assert j.scores["q"]["d1"] == pytest.approx(1.0)
    assert j.scores["q"]["d2"] == pytest.approx(2.0)
    assert j.scores["q"]["d3"] == pytest.approx(3 / 11)
    assert j.scores["q"]["d4"] == pytest.approx(0.05)
    assert j.grades["q"] == {"d1": 4, "d2": 4, "d3": 2, "d4": 1, "d5": 0}


def test_coec_custom_prior_and_min_impressions():
    imps = [("q", "a", 1, True), ("q", "a", 2, False), ("q", "b", 2, True)]
    # prior {1: 1.0, 2: 0.5}: a -> 1 / 1.5 = 0.667; b has 1 impression < min 2 -> unjudged
    j = from_clicks(imps, method="coec", prior={1: 1.0, 2: 0.5}, min_impressions=2)
    assert j.scores["q"] == {"a": pytest.approx(2 / 3)}
    assert j.grade("q", "b") == 0


def test_position_ctr_pools_every_query_per_rank():
    imps = [
        ("q1", "a", 1, True),
        ("q1", "b", 2, False),
        ("q2", "c", 1, False),
        ("q2", "d", 2, True),
        ("q2", "e", 3, False),
        ("q3", "a", 1, True),
    ]
    # rank 1: 2 clicks of 3; rank 2: 1 of 2; rank 3: 0 of 1
    assert position_ctr(imps) == {1: pytest.approx(2 / 3), 2: 0.5, 3: 0.0}


def test_coec_over_the_position_ctr_is_the_workbench_coec():
    """The Search Relevance Workbench: rating = clicks / (ctr[rank] * impressions)."""
    imps = [("q1", "a", 1, True), ("q1", "a", 1, True), ("q1", "b", 2, False)]
    imps += [("q2", "c", 1, False), ("q2", "d", 2, True), ("q2", "b", 2, False)]
    # ctr: rank 1 = 2/3, rank 2 = 1/3
    j = from_clicks(imps, method="coec", prior=position_ctr(imps))
    assert j.scores["q1"]["a"] == pytest.approx(2 / (2 / 3 * 2))  # 1.5
    assert j.scores["q1"]["b"] == 0.0
    assert j.scores["q2"]["c"] == 0.0
    assert j.scores["q2"]["d"] == pytest.approx(1 / (1 / 3))  # 3.0
    assert j.grades["q1"] == {"a": 4, "b": 0}


def test_position_ctr_refuses_what_from_clicks_refuses():
    with pytest.raises(ValueError, match="rank must be"):
        position_ctr([("q", "a", 0, True)])
    with pytest.raises(ValueError, match="no impressions"):
        position_ctr([])


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"method": "coec", "thresholds": (0.1, 0.2, 0.3)}, "need 4"),
        ({"method": "coec", "thresholds": (0.1, 0.1, 0.3, 0.4)}, "strictly increasing"),
        ({"method": "coec", "min_impressions": 0}, "min_impressions"),
        ({"method": "nope"}, "coec' or 'pbm"),
    ],
)
def test_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        from_clicks([("q", "a", 1, True)], **kwargs)


def test_bad_impressions():
    with pytest.raises(ValueError, match="rank must be"):
        from_clicks([("q", "a", 0, True)], method="coec")
    with pytest.raises(ValueError, match="no impressions"):
        from_clicks([], method="pbm")


def test_pbm_single_impression_types():
    # Rank 1 is anchored (examination 1): a doc never clicked there is not attractive at all,
    # and a doc always clicked there is fully attractive.
    attractiveness, examination = pbm_em(
        [Impression("q", "a", 1, True), Impression("q", "b", 1, False)]
    )
    assert attractiveness == {("q", "a"): 1.0, ("q", "b"): 0.0}
    assert examination == (1.0,)


def test_pbm_recovers_known_parameters():
    rng = np.random.default_rng(42)
    n_queries, n_docs, sessions = 5, 6, 20_000
    alpha = rng.uniform(0.05, 0.95, size=(n_queries, n_docs))
    gamma = 1.0 / np.sqrt(np.arange(1, n_docs + 1))  # 1, 0.71, 0.58, 0.5, 0.45, 0.41
    imps = []
    for s in range(sessions):
        q = s % n_queries
        order = rng.permutation(n_docs)  # every doc at every rank: PBM is identifiable
        clicks = rng.random(n_docs) < alpha[q, order] * gamma
        imps += [
            (f"q{q}", f"d{d}", rank, bool(c))
            for rank, (d, c) in enumerate(zip(order, clicks, strict=True), start=1)
        ]
    j = from_clicks(imps, method="pbm", iterations=500, tolerance=1e-8)
    # Each (q, d) has 4000 impressions, about 4000 x mean(gamma) = 2,200 examined, so the
    # attractiveness estimate's standard error is <= 0.5 / sqrt(2200) = 0.011; 0.05 is over 4 SE.
    for q in range(n_queries):
        for d in range(n_docs):
            assert j.scores[f"q{q}"][f"d{d}"] == pytest.approx(alpha[q, d], abs=0.05)
    # Examination per rank pools 20,000 impressions: SE <= 0.5 / sqrt(20000 x 0.05) ~ 0.016
    assert j.examination == pytest.approx(tuple(gamma), abs=0.05)
    assert j.examination[0] == 1.0
    assert j.method == "pbm"
