import math

import numpy as np
import pytest

from ltrr.plugin.errors import LtrrError
from ltrr.plugin.ops.simulate.clicks import (
    CascadeModel,
    ClickModelError,
    PositionBasedModel,
    attractiveness,
    from_spec,
    with_eta,
)

# With noise = 0.1 and g_max = 3 (2**3 - 1 = 7):
#   alpha(0) = 0.1
#   alpha(1) = 0.1 + 0.9 * 1/7 = (0.7 + 0.9)/7 = 1.6/7 = 0.2285714
#   alpha(2) = 0.1 + 0.9 * 3/7 = (0.7 + 2.7)/7 = 3.4/7 = 0.4857143
#   alpha(3) = 0.1 + 0.9 * 7/7 = 1.0
A0, A1, A2, A3 = 0.1, 1.6 / 7, 3.4 / 7, 1.0


def test_attractiveness_by_grade():
    got = [attractiveness(g, 0.1, 3) for g in (0, 1, 2, 3)]
    assert got == pytest.approx([0.1, 0.2285714, 0.4857143, 1.0], abs=1e-7)


def test_attractiveness_caps_the_grade_at_g_max():
    # g = 5 counts as g_max = 3: alpha = 1.0; with g_max = 1, grade 2 counts as 1: alpha = 1.0
    assert attractiveness(5, 0.1, 3) == pytest.approx(1.0)
    assert attractiveness(2, 0.3, 1) == pytest.approx(1.0)


def test_attractiveness_with_no_noise_is_the_gain_ratio():
    # g_max = 2: alpha(1) = (2^1 - 1)/(2^2 - 1) = 1/3
    assert attractiveness(1, 0.0, 2) == pytest.approx(1 / 3)
    assert attractiveness(0, 0.0, 2) == 0.0


def test_pbm_marginals_with_reciprocal_examination():
    model = PositionBasedModel(eta=1.0, noise=0.1, g_max=3)
    # exam(k) = 1/k; grades [3, 2, 0, 1]
    # P = [1 * 1.0, 1/2 * 3.4/7, 1/3 * 0.1, 1/4 * 1.6/7]
    #   = [1.0, 0.2428571, 0.0333333, 0.0571429]
    assert model.click_probabilities([3, 2, 0, 1]) == pytest.approx(
        [1.0, 0.2428571, 0.0333333, 0.0571429], abs=1e-7
    )
    # 1.0 + 0.2428571 + 0.0333333 + 0.0571429 = 1.3333333
    assert model.expected_clicks([3, 2, 0, 1]) == pytest.approx(1.3333333, abs=1e-7)


def test_pbm_eta_changes_the_depth():
    model = PositionBasedModel(eta=2.0, noise=0.0, g_max=1)
    # exam(k) = 1/k^2 = [1, 1/4, 1/9]; all grades 1 with g_max 1 -> alpha = 1
    assert model.click_probabilities([1, 1, 1]) == pytest.approx([1.0, 0.25, 1 / 9])
    # eta = 0 examines every rank.
    flat = PositionBasedModel(eta=0.0, noise=0.0, g_max=1)
    assert flat.click_probabilities([1, 0, 1]) == [1.0, 0.0, 1.0]


def test_pbm_explicit_examination_stops_at_its_length():
    model = PositionBasedModel(examination=(0.9, 0.5), noise=0.1, g_max=3)
    # [0.9 * 1.0, 0.5 * 3.4/7, rank 3 not in the profile -> 0]
    assert model.click_probabilities([3, 2, 3]) == pytest.approx([0.9, 1.7 / 7, 0.0])


def test_classic_cascade_marginals():
    model = CascadeModel(noise=0.0, g_max=2)
    # alpha = [0, 1/3, 1]; E1 = 1, E2 = 1 * (1 - 0) = 1, E3 = 1 * (1 - 1/3) = 2/3
    # P = [1 * 0, 1 * 1/3, 2/3 * 1] = [0, 1/3, 2/3]; at most one click in all: sum = 1
    assert model.click_probabilities([0, 1, 2]) == pytest.approx([0.0, 1 / 3, 2 / 3])
    assert model.expected_clicks([0, 1, 2]) == pytest.approx(1.0)


def test_dependent_click_model_marginals():
    model = CascadeModel(continue_after_click=0.5, abandon=0.2, noise=0.1, g_max=3)
    # grades [2, 0, 3, 1] -> alpha = [0.4857143, 0.1, 1.0, 0.2285714]
    # E1 = 1                                              P1 = 0.4857143
    # E2 = 1 * (0.4857143*0.5 + 0.5142857*0.8)
    #    = 0.2428571 + 0.4114286 = 0.6542857              P2 = 0.6542857 * 0.1 = 0.0654286
    # E3 = 0.6542857 * (0.1*0.5 + 0.9*0.8) = 0.6542857 * 0.77 = 0.5038
    #                                                     P3 = 0.5038 * 1.0 = 0.5038
    # E4 = 0.5038 * (1.0*0.5 + 0*0.8) = 0.2519            P4 = 0.2519 * 0.2285714 = 0.0575771
    assert model.click_probabilities([2, 0, 3, 1]) == pytest.approx(
        [0.4857143, 0.0654286, 0.5038, 0.0575771], abs=1e-7
    )
    # 0.4857143 + 0.0654286 + 0.5038 + 0.0575771 = 1.11252
    assert model.expected_clicks([2, 0, 3, 1]) == pytest.approx(1.11252, abs=1e-6)


def test_cascade_abandonment_hides_lower_ranks():
    model = CascadeModel(abandon=1.0, noise=0.1, g_max=2)
    # rank 1 (grade 0): clicked w.p. 0.1, then stops (continue 0); otherwise abandons.
    assert model.click_probabilities([0, 2]) == pytest.approx([0.1, 0.0])


def test_empty_page_has_no_clicks():
    rng = np.random.default_rng(0)
    for model in (PositionBasedModel(), CascadeModel()):
        assert model.click_probabilities([]) == []
        assert model.expected_clicks([]) == 0.0
        assert model.sample([], rng) == []


def _frequencies(model, grades, n, seed):
    rng = np.random.default_rng(seed)
    counts = [0] * len(grades)
    for _ in range(n):
        clicks = model.sample(grades, rng)
        assert clicks == sorted(set(clicks)), "clicks are distinct ranks in scan order"
        for k in clicks:
            counts[k - 1] += 1
    return [c / n for c in counts]


@pytest.mark.parametrize(
    "model",
    [
        PositionBasedModel(eta=1.0, noise=0.1, g_max=3),
        CascadeModel(noise=0.1, g_max=3),
        CascadeModel(continue_after_click=0.5, abandon=0.2, noise=0.1, g_max=3),
    ],
    ids=["pbm", "cascade", "dcm"],
)
def test_sampling_frequencies_converge_to_the_marginals(model):
    grades = [2, 0, 3, 1]
    n = 20_000
    freq = _frequencies(model, grades, n, seed=7)
    for f, p in zip(freq, model.click_probabilities(grades), strict=True):
        # Binomial standard error sqrt(p(1-p)/n) <= sqrt(0.25/20000) = 0.0035; four of them
        # (plus a floor for p near 0 or 1) leave a false alarm at odds below 1 in 10^4.
        se = math.sqrt(p * (1 - p) / n)
        assert abs(f - p) <= 4 * se + 1e-3


def test_classic_cascade_samples_at_most_one_click_and_follows_the_scan():
    model = CascadeModel(noise=0.1, g_max=1)
    rng = np.random.default_rng(3)
    # Every rank has grade 1 = g_max, so alpha = 1: the scan always stops at rank 1.
    assert all(model.sample([1, 1, 1], rng) == [1] for _ in range(200))
    # With noise only, at most one click and never out of order.
    assert all(len(model.sample([0, 0, 0, 0], rng)) <= 1 for _ in range(500))


def test_sampling_is_reproducible_with_a_seed():
    model = CascadeModel(continue_after_click=0.5, noise=0.2, g_max=2)
    a = [model.sample([2, 1, 0, 1], np.random.default_rng(11)) for _ in range(5)]
    b = [model.sample([2, 1, 0, 1], np.random.default_rng(11)) for _ in range(5)]
    assert a == b


@pytest.mark.parametrize(
    ("make", "key"),
    [
        (lambda: PositionBasedModel(noise=1.5), "noise"),
        (lambda: PositionBasedModel(eta=-0.1), "eta"),
        (lambda: PositionBasedModel(eta=math.inf), "eta"),
        (lambda: PositionBasedModel(g_max=0), "g_max"),
        (lambda: PositionBasedModel(examination=()), "examination"),
        (lambda: PositionBasedModel(examination=(1.0, 1.2)), "examination"),
        (lambda: CascadeModel(continue_after_click=-0.1), "continue_after_click"),
        (lambda: CascadeModel(abandon=2.0), "abandon"),
        (lambda: CascadeModel(noise=True), "noise"),
    ],
)
def test_bad_parameters_are_named(make, key):
    with pytest.raises(ClickModelError, match=f"^{key}: ") as info:
        make()
    assert info.value.key == key
    assert isinstance(info.value, ValueError)
    assert isinstance(info.value, LtrrError)


@pytest.mark.parametrize("grades", [[1, -1], [1, 1.5], [True]])
def test_bad_grades_are_rejected(grades):
    with pytest.raises(ClickModelError, match=r"^grades: must be integers >= 0"):
        PositionBasedModel().click_probabilities(grades)


def test_configs_are_immutable():
    model = PositionBasedModel()
    with pytest.raises(AttributeError):
        model.eta = 2.0  # type: ignore[misc]


def test_from_spec_defaults():
    assert from_spec("pbm") == PositionBasedModel()
    assert from_spec("cascade") == CascadeModel()
    assert from_spec(" PBM ") == PositionBasedModel()


def test_from_spec_parameters():
    assert from_spec("pbm:eta=0.8,noise=0.1") == PositionBasedModel(eta=0.8, noise=0.1)
    assert from_spec("cascade:continue=0.3,abandon=0.05,noise=0.02") == CascadeModel(
        continue_after_click=0.3, abandon=0.05, noise=0.02
    )
    assert from_spec("pbm:exam=1/0.6/0.3") == PositionBasedModel(examination=(1.0, 0.6, 0.3))
    assert from_spec("pbm: eta = 0.5 ,") == PositionBasedModel(eta=0.5)


def test_from_spec_g_max_from_caller_unless_the_spec_says():
    assert from_spec("pbm", g_max=3).g_max == 3
    assert from_spec("cascade:g_max=2", g_max=3).g_max == 2


@pytest.mark.parametrize(
    "model",
    [
        PositionBasedModel(eta=0.8, noise=0.123456789, g_max=3),
        PositionBasedModel(examination=(1.0, 0.5)),
        CascadeModel(continue_after_click=0.3, abandon=0.05, noise=0.02, g_max=2),
    ],
)
def test_spec_round_trips(model):
    assert from_spec(model.spec) == model


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("ubm", r"^model: unknown click model 'ubm' in 'ubm'; one of pbm, cascade"),
        ("", r"^model: unknown click model ''"),
        ("pbm:continue=0.3", r"^continue: unknown parameter for 'pbm'; one of eta, exam"),
        ("cascade:eta=1", r"^eta: unknown parameter for 'cascade'"),
        ("pbm:eta", r"^spec: expected key=value, got 'eta'"),
        ("pbm:=1", r"^spec: expected key=value"),
        ("pbm:eta=fast", r"^eta: must be a number, got 'fast'"),
        ("pbm:eta=nan", r"^eta: must be a finite number"),
        ("pbm:g_max=1.5", r"^g_max: must be an integer, got '1.5'"),
        ("pbm:exam=1/x", r"^exam: must be a number, got 'x'"),
        ("pbm:eta=1,eta=2", r"^eta: given twice"),
        ("pbm:eta=1,exam=1/0.5", r"^exam: give either eta or exam"),
        ("cascade:continue=1.5", r"^continue_after_click: must be a probability"),
    ],
)
def test_from_spec_errors(spec, message):
    with pytest.raises(ClickModelError, match=message):
        from_spec(spec)


def test_with_eta_only_changes_a_reciprocal_pbm():
    assert with_eta(PositionBasedModel(eta=1.0, noise=0.2), 0.6) == PositionBasedModel(
        eta=0.6, noise=0.2
    )
    profile = PositionBasedModel(examination=(1.0, 0.5))
    assert with_eta(profile, 0.6) is profile
    cascade = CascadeModel()
    assert with_eta(cascade, 0.6) is cascade
