import pytest

from ltrr.query_plans.catalog import FallbackArm, RolloutConfig, load_catalog
from tests.query_plans.catalog._minimal import catalog_text, errors_of, write


def test_a_split_with_a_named_baseline(tmp_path):
    text = catalog_text(
        append=(
            "rollout:\n"
            "  mode: split\n"
            "  share: 0.25\n"
            "  unit: session_id\n"
            "  baseline: [{arm: lexical, size: 10}, {arm: popular, size: 4}]\n"
        )
    )
    catalog = load_catalog(write(tmp_path, text))
    assert catalog.rollout == RolloutConfig(
        mode="split",
        share=0.25,
        unit="session_id",
        baseline=(FallbackArm("lexical", 10), FallbackArm("popular", 4)),
        salt="music",  # the target, by default
    )
    assert catalog.is_split
    assert not catalog.is_interleaved
    assert catalog.baseline_plan() == (FallbackArm("lexical", 10), FallbackArm("popular", 4))


def test_interleave_against_the_static_plan_by_default(tmp_path):
    text = catalog_text(append="rollout: {mode: interleave, salt: experiment-3}\n")
    catalog = load_catalog(write(tmp_path, text))
    assert catalog.rollout == RolloutConfig(mode="interleave", salt="experiment-3")
    assert catalog.is_interleaved
    assert catalog.baseline_plan() == (FallbackArm("lexical", 5),)  # the fallback


def test_no_rollout_section_means_no_rollout(tmp_path):
    catalog = load_catalog(write(tmp_path, catalog_text()))
    assert catalog.rollout is None
    assert not catalog.is_split
    assert not catalog.is_interleaved


@pytest.mark.parametrize(
    ("append", "expected"),
    [
        pytest.param(
            "rollout: {share: 0.5}\n",
            [(15, "rollout.mode", "required key is missing")],
            id="no-mode",
        ),
        pytest.param(
            "rollout: {mode: canary}\n",
            [
                (
                    15,
                    "rollout.mode",
                    "unknown value 'canary' (expected one of: split, interleave)",
                )
            ],
            id="bad-mode",
        ),
        pytest.param(
            "rollout: {mode: split, unit: user}\n",
            [(15, "rollout.share", "required key is missing for mode split")],
            id="split-without-share",
        ),
        pytest.param(
            "rollout: {mode: split, share: 0.5}\n",
            [(15, "rollout.unit", "required key is missing for mode split")],
            id="split-without-unit",
        ),
        pytest.param(
            "rollout: {mode: split, share: 1.5, unit: user}\n",
            [(15, "rollout.share", "must be between 0.0 and 1.0, got 1.5")],
            id="share-above-one",
        ),
        pytest.param(
            "rollout: {mode: interleave, share: 0.5}\n",
            [
                (
                    15,
                    "rollout.share",
                    "applies to mode split only: interleave shows both pages in every search",
                )
            ],
            id="interleave-with-share",
        ),
        pytest.param(
            "rollout: {mode: interleave, baseline: [{arm: lexcal, size: 5}]}\n",
            [(15, "rollout.baseline[0].arm", "unknown arm 'lexcal'; did you mean 'lexical'?")],
            id="unknown-baseline-arm",
        ),
        pytest.param(
            "rollout: {mode: interleave, baseline: [{arm: lexical, size: 50}]}\n",
            [
                (
                    15,
                    "rollout.baseline[0].size",
                    "must be within arm 'lexical''s sizes (between 5 and 10), got 50",
                )
            ],
            id="baseline-size-out-of-bounds",
        ),
        pytest.param(
            "rollout: {mode: interleave, ramp: 3}\n",
            [
                (
                    15,
                    "rollout.ramp",
                    "unknown key 'ramp' (expected one of: mode, share, unit, baseline, salt)",
                )
            ],
            id="unknown-key",
        ),
    ],
)
def test_rollout_errors(tmp_path, append, expected):
    assert errors_of(tmp_path, catalog_text(append=append)) == expected


def test_interleaving_refuses_a_rerank(tmp_path):
    text = catalog_text(append="rerank: {model: m}\nrollout: {mode: interleave}\n")
    (error,) = errors_of(tmp_path, text)
    assert error[:2] == (16, "rollout.mode")
    assert "interleave cannot run with a rerank" in error[2]


def test_a_split_may_run_with_a_rerank(tmp_path):
    text = catalog_text(
        append="rerank: {model: m}\nrollout: {mode: split, share: 0.1, unit: user}\n"
    )
    assert errors_of(tmp_path, text) == []
