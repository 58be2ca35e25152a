import pytest

from ltrr.query_plans.catalog import FusionConfig
from ltrr.query_plans.fusion import combmnz, combsum, get_fusion, rrf
from ltrr.query_plans.fusion.base import ArmHit

RESULTS = {
    "a": [ArmHit("i", "x", 10.0, 1), ArmHit("i", "y", 6.0, 2), ArmHit("i", "z", 2.0, 3)],
    "b": [ArmHit("i", "y", 0.9, 1), ArmHit("i", "w", 0.3, 2)],
}


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        (FusionConfig(), lambda r, w: rrf(r, w, k=60)),
        (FusionConfig(method="rrf", k=5), lambda r, w: rrf(r, w, k=5)),
        (FusionConfig(method="combsum"), lambda r, w: combsum(r, w, norm="minmax")),
        (FusionConfig(method="combsum", norm="zscore"), lambda r, w: combsum(r, w, norm="zscore")),
        (FusionConfig(method="combmnz", norm="zscore"), lambda r, w: combmnz(r, w, norm="zscore")),
    ],
)
def test_binds_the_configured_parameters(config, expected):
    weights = {"b": 0.5}
    assert get_fusion(config)(RESULTS, weights) == expected(RESULTS, weights)


def test_k_changes_the_rrf_result():
    # y: 1/(5+2) + 1/(5+1) = 0.142857 + 0.166667 = 0.309524 (with k=60 it would be 0.032522)
    fused = get_fusion(FusionConfig(method="rrf", k=5))(RESULTS, {})
    assert fused[0].id == "y"
    assert fused[0].score == pytest.approx(1 / 7 + 1 / 6)


@pytest.mark.parametrize(
    ("config", "message"),
    [
        (FusionConfig(method="borda"), "unknown fusion method 'borda'"),
        (FusionConfig(method="combsum", norm="l2"), "unknown score normalisation 'l2'"),
        (FusionConfig(method="rrf", k=-1), "k must be >= 0"),
    ],
)
def test_bad_configs_fail_at_binding(config, message):
    with pytest.raises(ValueError, match=message):
        get_fusion(config)
