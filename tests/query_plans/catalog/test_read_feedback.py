import pytest

from ltrr.query_plans.catalog import DebiasConfig, FeedbackConfig, load_catalog
from tests.query_plans.catalog._minimal import catalog_text, errors_of, write


def test_feedback_at_its_bounds(tmp_path):
    text = catalog_text(
        append=(
            "feedback:\n"
            "  events: {skip: -2, dwell: 0}\n"
            "  window_seconds: 0.1\n"
            "  max_events: 100000\n"
            "  debias: {eta: 0, max_factor: 1}\n"
            "  credit: unique\n"
        )
    )
    feedback = load_catalog(write(tmp_path, text)).feedback
    assert feedback == FeedbackConfig(
        events={"skip": -2.0, "dwell": 0.0},
        window_seconds=0.1,
        debias=DebiasConfig(eta=0.0, max_factor=1.0),
        max_events=100_000,
        credit="unique",
    )
    assert [type(w) for w in feedback.events.values()] == [float, float]


def test_the_longest_window_is_a_week(tmp_path):
    text = catalog_text(append="feedback: {window_seconds: 604800}\n")
    assert load_catalog(write(tmp_path, text)).feedback.window_seconds == 604_800.0


@pytest.mark.parametrize(
    ("append", "expected"),
    [
        pytest.param(
            "feedback: [click]\n",
            [(15, "feedback", "must be a mapping, got a list")],
            id="not-a-mapping",
        ),
        pytest.param(
            "feedback: {windows: 10}\n",
            [(15, "feedback.windows", "unknown key 'windows'; did you mean 'window_seconds'?")],
            id="misspelled-key",
        ),
        pytest.param(
            "feedback: {credit: 1}\n",
            [(15, "feedback.credit", "must be a string, got 1")],
            id="credit-not-text",
        ),
        pytest.param(
            "feedback:\n  events: {click: 1}\n  max_events: -1\n  credit: all\n"
            "  debias: {eta: x}\n",
            [
                (17, "feedback.max_events", "must be between 1 and 100000, got -1"),
                (18, "feedback.credit", "unknown value 'all' (expected one of: presence, unique)"),
                (19, "feedback.debias.eta", "must be a number, got 'x'"),
            ],
            id="every-error-at-its-line",
        ),
    ],
)
def test_feedback_errors(tmp_path, append, expected):
    assert errors_of(tmp_path, catalog_text(append=append)) == expected
