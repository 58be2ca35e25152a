"""session_stream and daypart on a hand-built BeirDataset (no files read)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from ltrr.plugin.errors import LtrrError
from ltrr.plugin.ops.data.beir import BeirDataset, Query
from ltrr.plugin.ops.simulate.stream import daypart, session_stream


def _data(queries: list[Query], qrels: dict[str, dict[str, int]] | None = None) -> BeirDataset:
    judged = {"q1": {"d1": 1}, "q2": {"d2": 0}} if qrels is None else qrels
    return BeirDataset(
        corpus=[{"_id": "d1"}, {"_id": "d2"}],
        queries={q.id: q for q in queries},
        qrels=judged,
        split="test",
        path=Path("/data/toy"),
    )


# q1 weight 1 and q2 weight 3 are judged (q2 only with a grade 0: judged all the same);
# q3 is unjudged and has by far the largest weight, so drawing it would show at once.
QUERIES = [
    Query("q1", "one", {"weight": 1.0, "intent": "artist"}),
    Query("q2", "two", {"weight": 3.0}),
    Query("q3", "three", {"weight": 100.0, "intent": "genre"}),
]


@pytest.mark.parametrize(
    ("hour", "part"),
    [
        (0, "night"),
        (4, "night"),
        (5, "morning"),
        (11, "morning"),
        (12, "afternoon"),
        (17, "afternoon"),
        (18, "evening"),
        (22, "evening"),
        (23, "night"),
    ],
)
def test_daypart_boundaries(hour: int, part: str) -> None:
    assert daypart(hour) == part


def test_same_seed_same_stream_other_seed_another() -> None:
    data = _data(QUERIES)
    first = session_stream(data, 30, seed=7, users=50)
    assert first == session_stream(data, 30, seed=7, users=50)
    other = session_stream(data, 30, seed=8, users=50)
    assert [(s.query_id, s.time) for s in first] != [(s.query_id, s.time) for s in other]


def test_session_i_does_not_depend_on_the_stream_length() -> None:
    data = _data(QUERIES)
    short = session_stream(data, 10, seed=3, users=50)
    long = session_stream(data, 50, seed=3, users=50)
    assert short == long[:10]
    assert [s.index for s in long] == list(range(50))


def test_frequencies_follow_the_weights_over_judged_queries_only() -> None:
    n = 4000
    counts = Counter(s.query_id for s in session_stream(_data(QUERIES), n, seed=11, users=100))
    assert set(counts) == {"q1", "q2"}  # q3 is unjudged, weight 100 notwithstanding
    # P(q2) = 3 / (1 + 3) = 0.75; sd of the share = sqrt(0.75 * 0.25 / 4000) = 0.0068, so
    # 0.03 is over 4 sd: a wrong weighting (0.5 uniform, or 0.97 with q3's weight) fails.
    assert counts["q2"] / n == pytest.approx(0.75, abs=0.03)


def test_queries_without_weight_are_uniform() -> None:
    plain = [Query("q1", "one"), Query("q2", "two")]
    n = 2000
    counts = Counter(s.query_id for s in session_stream(_data(plain), n, seed=5, users=20))
    # P = 0.5 each; sd = sqrt(0.25 / 2000) = 0.011, abs 0.05 is over 4 sd.
    assert counts["q1"] / n == pytest.approx(0.5, abs=0.05)


def test_sessions_carry_the_query_intent_and_a_full_context() -> None:
    for session in session_stream(_data(QUERIES), 40, seed=1, users=30):
        expected_text, expected_intent = {"q1": ("one", "artist"), "q2": ("two", "all")}[
            session.query_id
        ]
        assert (session.text, session.intent) == (expected_text, expected_intent)
        assert set(session.context) == {"segment", "locale", "daypart"}
        assert session.context["segment"] == session.segment
        assert session.context["daypart"] == daypart(session.time.hour)
        assert session.time.tzinfo is not None


def test_a_zero_weight_query_is_never_drawn() -> None:
    queries = [Query("q1", "one", {"weight": 0}), Query("q2", "two", {"weight": 2})]
    assert {s.query_id for s in session_stream(_data(queries), 200, seed=2, users=10)} == {"q2"}


def test_bad_inputs_raise() -> None:
    with pytest.raises(LtrrError, match="--sessions must be at least 1, got 0"):
        session_stream(_data(QUERIES), 0, seed=1)
    with pytest.raises(LtrrError, match=r"no query has judgments in qrels/test\.tsv"):
        session_stream(_data(QUERIES, qrels={"q9": {"d1": 1}}), 5, seed=1)
    negative = [Query("q1", "one", {"weight": -1}), Query("q2", "two")]
    with pytest.raises(LtrrError, match="weights must be >= 0"):
        session_stream(_data(negative), 5, seed=1)
    zeros = [Query("q1", "one", {"weight": 0}), Query("q2", "two", {"weight": 0.0})]
    with pytest.raises(LtrrError, match="not all 0"):
        session_stream(_data(zeros), 5, seed=1)
