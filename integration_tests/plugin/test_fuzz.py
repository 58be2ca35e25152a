"""Property-based fuzzing of what a client sends the proxy, against the real node.

Three surfaces: the intercepted search body, the feedback body, and ``_bulk`` NDJSON with UBI
lines. For every example: no 5xx of the proxy's own (a 5xx must be what OpenSearch itself
answers to the same request), and every error is OpenSearch's error JSON. At the end, every
event the proxy acknowledged (202) or learned from UBI has been stored in ``ltrr-events``: none
stalls shipping, none is dead-lettered. The budget is bounded and the examples derandomized,
so CI runs the same cases every time.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from typing import Any

import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opensearchpy import OpenSearch

from integration_tests.plugin.conftest import catalog_text
from ltrr.plugin.learn.bulk import EVENTS_INDEX
from ltrr.plugin.learn.tokens import TOKEN_HEADER
from ltrr.plugin.serve.intercept import strip_ltrr

EXAMPLES = 150
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
TALLY: Counter[str] = Counter()  # what the proxy acknowledged, checked at the end

scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=40)
)
values = st.recursive(
    scalars,
    lambda kids: (
        st.lists(kids, max_size=4) | st.dictionaries(st.text(max_size=8), kids, max_size=4)
    ),
    max_leaves=16,
)


def _deep(depth: int) -> dict[str, Any]:
    node: dict[str, Any] = {"match_all": {}}
    for _ in range(depth):
        node = {"bool": {"filter": [node]}}
    return node


texts = st.text(max_size=300) | st.sampled_from(["radiohead", "é" * 300, "a" * 5000, ""])
ltrr_ext = st.fixed_dictionaries(
    {},
    optional={
        "query": texts | values,
        "context": st.dictionaries(st.text(max_size=8), scalars, max_size=6) | values,
        "decision_id": st.text(max_size=600) | values,
        "explain": values,
    },
)
search_bodies = st.fixed_dictionaries(
    {},
    optional={
        "query": values | st.builds(lambda t: {"match": {"name": t}}, texts),
        "size": values | st.integers(-5, 20_000),
        "from": values | st.integers(-5, 2**65),
        "post_filter": values | st.integers(0, 300).map(_deep),
        "_source": values,
        "timeout": values,
        "ext": st.fixed_dictionaries(
            {}, optional={"ltrr": ltrr_ext, "ubi": st.dictionaries(st.text(max_size=8), values)}
        ),
    },
)


@pytest.fixture(scope="module")
def fuzzed(start_proxy, music, tmp_path_factory, client: OpenSearch):
    root = tmp_path_factory.mktemp("fuzz")
    target = f"{music.name}-static"
    catalog = root / "static.yml"
    catalog.write_text(catalog_text(target, "{name: static}"))
    with start_proxy([catalog], root / "proxy.log", data_dir=root / "data") as proxy:
        decisions = []
        for q in ("radiohead", "coldplay", "the", "love", "rock"):
            answer = requests.post(
                f"{proxy.url}/{target}/_search",
                json={"ext": {"ltrr": {"query": q}}},
                timeout=30,
            ).json()
            ltrr = answer["ext"]["ltrr"]
            hits = [h["_id"] for h in answer["hits"]["hits"]]
            decisions.append((ltrr["decision_id"], ltrr["feedback_token"], hits))
        yield proxy, target, decisions


def _opensearch_error(response: requests.Response) -> None:
    """OpenSearch's shape: {"error": {...root_cause...} or a string, "status": <the status>}."""
    body = response.json()
    assert body["status"] == response.status_code, body
    error = body["error"]
    if isinstance(error, dict):
        assert error["type"]
        assert error["reason"] is not None
        assert isinstance(error["root_cause"], list)


def _check(response: requests.Response, direct: requests.Response | None) -> None:
    if response.status_code >= 500:
        # Only OpenSearch's own 5xx may come back, the same as the request gets direct.
        assert direct is not None, response.text
        assert response.status_code == direct.status_code, response.text
    if response.status_code >= 400:
        _opensearch_error(response)


@FUZZ
@given(body=search_bodies, raw=st.none() | st.binary(max_size=200))
def test_fuzzed_searches_get_no_5xx_and_opensearch_errors(fuzzed, opensearch_url, body, raw):
    proxy, target, _ = fuzzed
    data = raw if raw is not None else json.dumps(body).encode()
    headers = {"Content-Type": "application/json"}
    response = requests.post(
        f"{proxy.url}/{target}/_search", data=data, headers=headers, timeout=60
    )
    direct = None
    if response.status_code >= 500:
        # What the proxy forwards when it passes a search on: the body without ext.ltrr.
        sent = data if raw is not None else json.dumps(strip_ltrr(body)).encode()
        direct = requests.post(
            f"{opensearch_url}/{target}/_search", data=sent, headers=headers, timeout=60
        )
    _check(response, direct)


# Near-valid events probe the edges of what ltrr-events stores: positions about 2**31, ids
# about 512 bytes (in accented letters), timestamps a microsecond past the epoch.
edge_events = st.fixed_dictionaries(
    {"type": st.sampled_from(["click", "play", "skip"])},
    optional={
        "position": st.integers(1, 50) | st.integers(2**31 - 3, 2**31 + 3),
        "timestamp": st.sampled_from(["1970-01-01T00:00:00.000001Z", "2026-12-01T10:00:00+01:00"])
        | st.floats(min_value=0, max_value=2.5e14)
        | st.integers(0, 253_402_300_799_999),
        "id": st.text(alphabet="aé", min_size=1, max_size=520),
        "value": st.floats(allow_nan=False, allow_infinity=False),
    },
)
events = edge_events | st.fixed_dictionaries(
    {"type": st.sampled_from(["click", "play", "skip"]) | st.text(max_size=70)},
    optional={
        "object_id": values,
        "position": values | st.integers(-3, 2**40),
        "value": values,
        "timestamp": values
        | st.sampled_from(["1970-01-01T00:00:00.000001Z", "2026-12-01T00:00:00Z", "9999-12-31"])
        | st.floats(min_value=0, max_value=3e14),
        "id": st.text(max_size=600) | values,
    },
)


@FUZZ
@given(
    pick=st.integers(0, 4),
    shown=st.integers(0, 9),
    batch=st.lists(events, max_size=4),
    forge=st.sampled_from([None, "token", "other", "none"]),
    raw=st.none() | st.binary(max_size=100),
)
def test_fuzzed_feedback_gets_no_5xx_and_what_it_acknowledges_ships(
    fuzzed, pick, shown, batch, forge, raw
):
    proxy, _, decisions = fuzzed
    decision_id, token, hits = decisions[pick]
    for event in batch:  # most events name an object the decision showed, so some are taken
        if "object_id" not in event and hits:
            event["object_id"] = hits[shown % len(hits)]
    body = raw if raw is not None else json.dumps({"decision_id": decision_id, "events": batch})
    headers = {"Content-Type": "application/json"}
    if forge != "none":
        headers[TOKEN_HEADER] = token if forge in (None, "token") else decisions[pick - 1][1]
    response = requests.post(f"{proxy.url}/_ltrr/feedback", data=body, headers=headers, timeout=60)
    _check(response, None)
    if response.status_code == 202:
        TALLY["acknowledged"] += response.json()["accepted"]


ubi_docs = st.fixed_dictionaries(
    {"action_name": st.sampled_from(["click", "play", "hover"]) | st.text(max_size=10)},
    optional={
        "client_id": st.sampled_from(["simulated-user"]),
        "timestamp": values | st.sampled_from(["2026-12-01T00:00:00Z", "1e-6", "not a date"]),
        "event_attributes": st.fixed_dictionaries(
            {},
            optional={
                "object": st.fixed_dictionaries({}, optional={"object_id": values}),
                "position": st.fixed_dictionaries(
                    {}, optional={"ordinal": values | st.integers(-5, 2**66)}
                ),
            },
        ),
    },
)


@FUZZ
@given(
    pick=st.integers(0, 4),
    docs=st.lists(st.tuples(ubi_docs, st.integers(0, 9), st.booleans()), min_size=1, max_size=4),
    junk=st.none() | st.binary(max_size=60),
)
def test_fuzzed_ubi_bulks_get_opensearch_answers_and_what_is_learned_ships(
    fuzzed, opensearch_url, pick, docs, junk
):
    proxy, _, decisions = fuzzed
    decision_id, _, hits = decisions[pick]
    lines = b""
    for doc, shown, named in docs:
        doc["client_id"] = "simulated-user"
        doc["query_id"] = decision_id
        attributes = doc.setdefault("event_attributes", {})
        if named and hits:
            attributes.setdefault("object", {})["object_id"] = hits[shown % len(hits)]
        lines += b'{"index": {"_index": "ubi_events"}}\n' + json.dumps(doc).encode() + b"\n"
    if junk is not None:
        lines += junk + b"\n"
    headers = {"Content-Type": "application/x-ndjson"}
    response = requests.post(f"{proxy.url}/_bulk", data=lines, headers=headers, timeout=60)
    direct = None
    if response.status_code >= 500:
        direct = requests.post(f"{opensearch_url}/_bulk", data=lines, headers=headers, timeout=60)
    _check(response, direct)


def _stats(url: str) -> dict[str, Any]:
    return requests.get(f"{url}/_ltrr/stats", timeout=10).json()


def test_every_acknowledged_event_was_stored(fuzzed, client: OpenSearch):
    proxy, _, decisions = fuzzed
    time.sleep(1.0)  # a UBI write is answered first and learned right after: let the last one
    deadline = time.monotonic() + 60
    while _stats(proxy.url)["learning"]["events_unshipped_bytes"] > 0:
        assert time.monotonic() < deadline, _stats(proxy.url)["learning"]
        time.sleep(0.5)
    counters = _stats(proxy.url)
    learning = counters["learning"]
    # This proxy took only the fuzzed writes: its UBI count is what it learned from them.
    TALLY["ubi learned"] = counters.get("ubi_events", 0)
    expected = TALLY["acknowledged"] + TALLY["ubi learned"]
    assert TALLY["acknowledged"] > 0  # the fuzzing reached the learning path
    assert learning["events_dead_lettered"] == 0
    client.indices.refresh(index=EVENTS_INDEX)
    ids = [d for d, _, _ in decisions]
    stored = client.count(index=EVENTS_INDEX, body={"query": {"terms": {"decision_id": ids}}})[
        "count"
    ]
    found = client.search(
        index=EVENTS_INDEX, body={"query": {"terms": {"decision_id": ids}}, "size": 100}
    )["hits"]["hits"]
    assert stored == expected, (TALLY, learning, [h["_source"] for h in found])
