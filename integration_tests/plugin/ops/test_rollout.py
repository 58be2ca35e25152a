"""A rollout through a real ``ltrr serve`` and the real node, with simulated users whose answer is
known: the learner's plan searches the artists' names, the baseline plan only their tags, and
every query names one artist (plus one of its tags), so the learner's page is the better one.

The simulator's position-based click model clicks on the pages the proxy returns, the clicks
go back through ``/_ltrr/feedback``, and ``ltrr rollout``'s comparison then reads both sides
back from ``ltrr-decisions*`` and ``ltrr-events*``.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest
import requests
from opensearchpy import OpenSearch

from ltrr.plugin.learn.tokens import TOKEN_HEADER
from ltrr.plugin.ops.client import Cluster
from ltrr.plugin.ops.live.read import read_period
from ltrr.plugin.ops.rollout import compare, for_report, format_comparison
from ltrr.plugin.ops.simulate.clicks import from_spec

WORDS = ["zorblat", "quintrel", "mavoric", "pellucid", "tarnow", "vesper", "ombrio", "kelvane"]
SURNAMES = ["dumont", "ferraway"]
TOPICS = ["shoegaze", "krautrock", "zydeco", "mariachi", "gamelan", "polka", "fado", "qawwali"]
ARTISTS = [
    (f"{w}-{s}", f"{w.title()} {s.title()}", [TOPICS[(i + j) % 8], TOPICS[(3 * i + j + 1) % 8]])
    for i, w in enumerate(WORDS)
    for j, s in enumerate(SURNAMES)
]
SEARCHES = 150

CATALOG = """\
target: {alias}
budget: 20
deadline_ms: 5000
policy: {{name: static, include: [by_name]}}
arms:
  - name: by_name
    template: multi_match.json.j2
    params: {{fields: [name]}}
    size: {{min: 0, max: 10}}
  - name: by_tag
    template: multi_match.json.j2
    params: {{fields: [tags]}}
    size: {{min: 0, max: 10}}
fusion: {{method: rrf, k: 60}}
fallback:
  - {{arm: by_name, size: 10}}
feedback:
  events: {{click: 1.0}}
  window_seconds: 600
rollout:
{rollout}
"""
SPLIT = "  mode: split\n  share: 0.5\n  unit: session_id\n  baseline: [{arm: by_tag, size: 10}]\n"
INTERLEAVE = "  mode: interleave\n  baseline: [{arm: by_tag, size: 10}]\n"


@pytest.fixture(scope="module")
def index(client: OpenSearch) -> Iterator[str]:
    name = f"ltrr-it-rollout-{uuid.uuid4().hex[:8]}"
    client.indices.create(
        index=name, body={"settings": {"index": {"number_of_shards": 1, "number_of_replicas": 0}}}
    )
    for doc_id, artist, tags in ARTISTS:
        client.index(index=name, id=doc_id, body={"name": artist, "tags": tags})
    client.indices.refresh(index=name)
    yield name
    client.indices.delete(index=name, ignore_unavailable=True)


def _target(client: OpenSearch, index: str, folder: Path, rollout: str) -> tuple[str, Path]:
    alias = f"{index}-{uuid.uuid4().hex[:6]}"
    client.indices.put_alias(index=index, name=alias)
    path = folder / f"{alias}.yml"
    path.write_text(CATALOG.format(alias=alias, rollout=rollout))
    return alias, path


def _users(url: str, alias: str, seed: int) -> tuple[int, int]:
    """``SEARCHES`` simulated users, each searching one artist; returns (searches, clicks)."""
    rng = np.random.default_rng(seed)
    model = from_spec("pbm", g_max=1)
    clicks = 0
    for i in range(SEARCHES):
        doc_id, artist, tags = ARTISTS[int(rng.integers(len(ARTISTS)))]
        query = f"{artist} {tags[int(rng.integers(2))]}"
        body = {"size": 10, "ext": {"ltrr": {"query": query, "context": {"session_id": f"s{i}"}}}}
        answer = requests.post(f"{url}/{alias}/_search", json=body, timeout=30)
        assert answer.status_code == 200, answer.text
        ltrr = answer.json()["ext"]["ltrr"]
        shown = [h["_id"] for h in answer.json()["hits"]["hits"]]
        ranks = model.sample([int(d == doc_id) for d in shown], rng)
        if not ranks:
            continue
        events = [{"type": "click", "object_id": shown[r - 1], "position": r} for r in ranks]
        sent = requests.post(
            f"{url}/_ltrr/feedback",
            json={"decision_id": ltrr["decision_id"], "events": events},
            headers={TOKEN_HEADER: ltrr["feedback_token"]},
            timeout=30,
        )
        assert sent.status_code == 202, sent.text
        clicks += len(events)
    return SEARCHES, clicks


@pytest.fixture(scope="module")
def rolled_out(
    client: OpenSearch,
    index: str,
    opensearch_url: str,
    tmp_path_factory: pytest.TempPathFactory,
    start_proxy,
):
    """Both rollouts served by one proxy, the users' clicks sent, the logs read back."""
    folder = tmp_path_factory.mktemp("rollout")
    split_alias, split_path = _target(client, index, folder, SPLIT)
    mixed_alias, mixed_path = _target(client, index, folder, INTERLEAVE)
    started = time.time() - 1
    with start_proxy([split_path, mixed_path], folder / "proxy.log", model=False) as proxy:
        sent = {split_alias: _users(proxy.url, split_alias, 1)}
        sent[mixed_alias] = _users(proxy.url, mixed_alias, 2)
    # The proxy writes what it holds when it stops; then the logs are read as the command does.
    for pattern in ("ltrr-decisions*", "ltrr-events*"):
        client.indices.refresh(index=pattern)
    http = Cluster(opensearch_url)
    period = timedelta(seconds=time.time() - started + 1)
    logs = {}
    for alias in sent:  # as ``ltrr rollout`` and ``ltrr report`` read them
        read = read_period(http, period, targets=[alias])
        logs[alias] = (read.decisions, read.events)
    http.close()
    return sent, logs, split_alias, mixed_alias


def test_the_split_logs_both_sides_with_their_propensities(rolled_out):
    sent, logs, alias, _ = rolled_out
    decisions, events = logs[alias]
    assert len(decisions) == SEARCHES
    assert len(events) == sent[alias][1]
    sides = [d["rollout"]["side"] for d in decisions]
    assert {d["rollout"]["share"] for d in decisions} == {0.5}
    assert 40 <= sides.count("learner") <= 110  # Binomial(150, 1/2): 75 +- 6
    for doc in decisions:
        arms = doc["arms"]
        if doc["rollout"]["side"] == "baseline":
            assert doc["policy"] == "rollout_baseline"
            assert doc["learnable"] is False
            assert (arms["by_tag"]["included"], arms["by_tag"]["propensity"]) == (True, 1.0)
            assert arms["by_name"]["included"] is False
        else:
            assert doc["policy"] == "static"
            assert doc["learnable"] is True
            assert arms["by_name"]["included"]
            assert arms["by_name"]["propensity"] == 1.0
        assert doc["took_ms"] > 0
    result = compare(decisions, events)
    print(format_comparison(result))  # shown with pytest -s
    split = result.split
    assert split is not None
    assert result.unassigned == 0
    assert split.learner.searches + split.baseline.searches == SEARCHES
    assert split.learner.clicks + split.baseline.clicks == sent[alias][1]
    # The learner's page leads with the artist; the baseline's has it among its tag's artists.
    assert split.difference.estimate > 0


def test_interleaving_detects_the_better_page(rolled_out):
    sent, logs, _, alias = rolled_out
    decisions, events = logs[alias]
    assert len(decisions) == SEARCHES
    for doc in decisions:
        rollout = doc["rollout"]
        assert rollout["mode"] == "interleave"
        assert rollout["baseline"] == {"by_tag": 10}
        learner, baseline = rollout["teams"]["learner"], rollout["teams"]["baseline"]
        assert abs(len(learner) - len(baseline)) <= 1  # the draft keeps the teams even
        assert not set(learner) & set(baseline)
        assert doc["learnable"] is True
        assert doc["arms"]["by_name"]["propensity"] == 1.0
    result = compare(decisions, events).interleave
    assert result is not None
    assert result.searches == SEARCHES
    clicks = sent[alias][1]
    assert (
        round(result.learner_clicks_per_search.estimate * SEARCHES)
        + round(result.baseline_clicks_per_search.estimate * SEARCHES)
        + result.unattributed_clicks
        == clicks
    )
    assert result.wins > result.losses
    assert result.significant
    text = format_comparison(compare(decisions, events))
    print(text)  # what ``ltrr rollout`` prints for this target (shown with pytest -s)
    view = for_report(decisions, events)  # what ``ltrr report`` shows of it
    assert view is not None
    assert view["verdict"] == "significant at 5%"
    assert "significant at 5%" in text
    assert "not significant" not in text
