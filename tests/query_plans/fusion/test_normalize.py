import pytest

from ltrr.query_plans.fusion.normalize import get_normalizer, minmax, zscore


def test_minmax_rescales_to_unit_interval():
    # min 1, max 3, span 2: (3-1)/2 = 1.0, (1-1)/2 = 0.0, (2-1)/2 = 0.5
    assert minmax([3.0, 1.0, 2.0]) == [1.0, 0.0, 0.5]


def test_minmax_negative_scores():
    # min -4, max 0, span 4: (-4+4)/4 = 0, (-1+4)/4 = 0.75, (0+4)/4 = 1
    assert minmax([-4.0, -1.0, 0.0]) == [0.0, 0.75, 1.0]


@pytest.mark.parametrize("scores", [[5.0], [2.0, 2.0, 2.0], [0.1, 0.1]])
def test_minmax_without_spread_gives_one(scores):
    assert minmax(scores) == [1.0] * len(scores)


def test_zscore_textbook_example():
    # mean = 40/8 = 5; squared deviations 9,1,1,1,0,0,4,16 sum to 32; population var 32/8 = 4,
    # std 2: (2-5)/2 = -1.5, (4-5)/2 = -0.5, (5-5)/2 = 0, (7-5)/2 = 1, (9-5)/2 = 2
    assert zscore([2.0, 4.0, 4.0, 4.0, 5.0, 5.0, 7.0, 9.0]) == [
        -1.5,
        -0.5,
        -0.5,
        -0.5,
        0.0,
        0.0,
        1.0,
        2.0,
    ]


def test_zscore_three_values():
    # mean 2, var (1+0+1)/3 = 2/3, std sqrt(2/3): -1/sqrt(2/3) = -sqrt(1.5) = -1.2247...
    assert zscore([1.0, 2.0, 3.0]) == pytest.approx([-(1.5**0.5), 0.0, 1.5**0.5])


@pytest.mark.parametrize("scores", [[7.0], [3.0, 3.0], [0.1, 0.1, 0.1]])
def test_zscore_without_spread_gives_zero(scores):
    # 0.1 * 3 / 3 is not exactly 0.1 in floating point: equality must be tested on the raw scores
    assert zscore(scores) == [0.0] * len(scores)


def test_empty_lists():
    assert minmax([]) == []
    assert zscore([]) == []


def test_get_normalizer():
    assert get_normalizer("minmax") is minmax
    assert get_normalizer("zscore") is zscore
    with pytest.raises(ValueError, match="unknown score normalisation 'l2'"):
        get_normalizer("l2")
