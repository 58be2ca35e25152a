"""The replayed rollout on test_loop's two-arm catalog, where the pages are known by hand.

For q1 only arm b finds the relevant r (its rank 1), for q2 only arm a finds s (its rank 1).
A learner that always asks b (a static policy of b) against the baseline plan a: on q1 the
learner's page holds r and the baseline's does not, so only the learner's team can be clicked;
on q2 the reverse.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from scipy import stats

from ltrr.plugin.errors import LtrrError
from ltrr.plugin.ops.replay.loop import Replay
from ltrr.plugin.ops.replay.rollout import (
    baseline_sizes,
    interleave_result,
    run_interleave,
    run_split,
    split_result,
)
from ltrr.plugin.ops.simulate.clicks import from_spec
from ltrr.plugin.ops.simulate.stream import session_stream
from ltrr.query_plans.catalog import load_catalog
from tests.plugin.ops.replay.test_loop import CAPTURE, CATALOG, PAGE, QRELS, K, dataset

LEARNS_B = CATALOG.replace("policy: {name: static}", "policy: {name: static, include: [b]}")


def replay_of(catalog):
    """No noise clicks: only the relevant document is ever clicked."""
    return Replay(catalog, CAPTURE, QRELS, from_spec("pbm:noise=0", g_max=1), 7, PAGE, K, None)


@pytest.fixture
def catalog(tmp_path: Path):
    (tmp_path / "c.yml").write_text(LEARNS_B, encoding="utf-8")
    return load_catalog(tmp_path / "c.yml")


def test_interleaved_clicks_go_to_the_team_that_found_the_relevant_document(tmp_path, catalog):
    sessions = session_stream(dataset(tmp_path), 80, seed=7, users=20)
    outcomes = run_interleave(replay_of(catalog), sessions, "static", {"a": 2})
    assert len(outcomes) == 80
    for session, (mine, theirs) in zip(sessions, outcomes, strict=True):
        # A page of 2, one from each team; only the relevant document is ever clicked.
        if session.query_id == "q1":
            assert (theirs, mine <= 1) == (0, True)
        else:
            assert (mine, theirs <= 1) == (0, True)
    assert any(mine for mine, _ in outcomes)
    assert any(theirs for _, theirs in outcomes)


def test_the_split_serves_each_side_its_own_page(tmp_path, catalog):
    sessions = session_stream(dataset(tmp_path, ("q1",)), 60, seed=7, users=20)
    outcomes = run_split(replay_of(catalog), sessions, "static", {"a": 2}, 0.5)
    sides = [side for side, _ in outcomes]
    assert 10 <= sides.count("learner") <= 50
    # On q1 the baseline's page (arm a) never holds r: its side is never clicked.
    assert all(clicks == 0 for side, clicks in outcomes if side == "baseline")
    assert any(clicks for side, clicks in outcomes if side == "learner")


def test_the_warmup_searches_are_not_counted(tmp_path, catalog):
    sessions = session_stream(dataset(tmp_path), 30, seed=7, users=20)
    assert len(run_interleave(replay_of(catalog), sessions, "static", {"a": 2}, 10)) == 20
    assert len(run_split(replay_of(catalog), sessions, "static", {"a": 2}, 0.5, 25)) == 5


def test_interleave_result_by_hand():
    # Wins at searches 1, 2, 4, 5, 6, a tie at 3: the sign test after n searches sees w wins
    # and no loss: p = 2 / 2^w, below 5% from w = 6 on (2/64), first at the 7th search.
    run = interleave_result(1, [(1, 0), (2, 1), (0, 0), (1, 0), (1, 0), (3, 0), (1, 0)])
    assert (run.wins, run.losses, run.ties) == (6, 0, 1)
    assert run.needed == 7
    assert run.p_value == pytest.approx(2 / 64)
    assert run.learner_clicks == pytest.approx(9 / 7)
    assert run.baseline_clicks == pytest.approx(1 / 7)


def test_split_result_by_hand():
    outcomes = [("learner", 2), ("baseline", 0), ("learner", 1), ("baseline", 1)]
    run = split_result(3, outcomes)
    # After all four: learner 2, 1 (mean 1.5, var 0.5), baseline 0, 1 (mean 0.5, var 0.5):
    # se = sqrt(0.25 + 0.25), t = 1 / sqrt(0.5), df = 0.25 / (0.0625 + 0.0625) = 2.
    assert run.p_value == pytest.approx(2 * stats.t.sf(1 / 0.5**0.5, 2))
    assert run.needed is None
    assert (run.learner_clicks, run.baseline_clicks) == (1.5, 0.5)


def test_baselines_by_name(catalog):
    assert baseline_sizes(catalog, CAPTURE, "catalog") == {"a": 2}  # the fallback plan
    assert baseline_sizes(catalog, CAPTURE, "only:b") == {"b": 4}
    with pytest.raises(LtrrError, match="unknown baseline 'nope'"):
        baseline_sizes(catalog, CAPTURE, "nope")
