"""UBI on both sides, against the real node (which has no UBI plugin): searches with
``ext.ubi`` through the real proxy, intercepted and passed through, leave UBI 1.3 records in
``ubi_queries``; clicks and impressions written to ``ubi_events`` through the proxy then give
the same COEC judgments, computed as the Search Relevance Workbench computes them from those
two indices, as the project's own ``from_clicks``.
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest
import requests
from opensearchpy import OpenSearch

from ltrr.plugin.learn.ubiqueries import QUERIES_INDEX_BODY, UBI_QUERIES_INDEX
from ltrr.query_plans.ltr.judgments import Impression, from_clicks, position_ctr
from tests.plugin._ubi_schema import QUERY_REQUEST, QUERY_RESPONSE, errors

ARTISTS = [
    ("daft-punk", "Daft Punk", ["electronic", "house"]),
    ("portishead", "Portishead", ["trip-hop", "electronic"]),
    ("massive-attack", "Massive Attack", ["trip-hop", "electronic"]),
    ("aphex-twin", "Aphex Twin", ["electronic", "ambient"]),
    ("boards-of-canada", "Boards of Canada", ["electronic", "ambient"]),
    ("miles-davis", "Miles Davis", ["jazz", "trumpet"]),
    ("john-coltrane", "John Coltrane", ["jazz", "saxophone"]),
    ("chet-baker", "Chet Baker", ["jazz", "trumpet"]),
    ("tricky", "Tricky", ["trip-hop"]),
]
HEX_ID = re.compile(r"^[0-9a-f]{32}$")


def _catalog(alias: str) -> str:
    return f"""\
target: {alias}
budget: 10
deadline_ms: 5000
policy: {{name: static}}
arms:
  - name: by_name
    template: multi_match.json.j2
    params: {{fields: [name]}}
    size: {{min: 5, max: 5}}
  - name: by_tags
    template: multi_match.json.j2
    params: {{fields: [tags]}}
    size: {{min: 5, max: 5}}
fusion: {{method: rrf, k: 60}}
fallback:
  - {{arm: by_tags, size: 5}}
feedback:
  events: {{click: 1.0}}
  window_seconds: 600
"""


@pytest.fixture
def ubi_index(client: OpenSearch, tmp_path: Path) -> Iterator[tuple[str, str, Path]]:
    """(index, its catalogued alias, the alias's catalog)."""
    name = f"ltrr-it-ubi-{uuid.uuid4().hex[:8]}"
    client.indices.create(
        index=name,
        body={
            "settings": {"number_of_shards": 1, "number_of_replicas": 0},
            "mappings": {
                "properties": {
                    "name": {"type": "text"},
                    "tags": {"type": "text"},
                    "sku": {"type": "keyword"},
                }
            },
        },
    )
    for n, (doc_id, artist, tags) in enumerate(ARTISTS):
        body = {"name": artist, "tags": tags, "sku": f"SKU-{n:03d}"}
        client.index(index=name, id=doc_id, body=body)
    client.indices.refresh(index=name)
    alias = f"{name}-cat"
    client.indices.put_alias(index=name, name=alias)
    path = tmp_path / f"{alias}.yml"
    path.write_text(_catalog(alias))
    yield name, alias, path
    client.indices.delete(index=name, ignore_unavailable=True)


def _delete(client: OpenSearch, index: str, query: dict) -> None:
    if not client.indices.exists(index=index):
        return
    client.indices.refresh(index=index)
    found = client.search(index=index, body={"query": query, "size": 1000, "_source": False})
    actions = [{"delete": {"_index": index, "_id": h["_id"]}} for h in found["hits"]["hits"]]
    if actions:
        client.bulk(body=actions, refresh=True)


@pytest.fixture
def ubi_client(client: OpenSearch) -> Iterator[str]:
    """A UBI ``client_id`` of this test's own; its records and events are removed after."""
    client_id = f"ltrr-it-ubi-{uuid.uuid4().hex[:8]}"
    yield client_id
    _delete(client, UBI_QUERIES_INDEX, {"term": {"client_id": client_id}})
    _delete(client, "ubi_events", {"term": {"client_id.keyword": client_id}})


def _search(url: str, target: str, body: dict) -> dict:
    response = requests.post(f"{url}/{target}/_search", json=body, timeout=30)
    assert response.status_code == 200, response.text
    return response.json()


def _records(client: OpenSearch, client_id: str, expected: int) -> dict[str, dict]:
    """The test's records once the proxy's background writer has sent them all."""
    deadline = time.monotonic() + 30
    while True:
        if client.indices.exists(index=UBI_QUERIES_INDEX):
            client.indices.refresh(index=UBI_QUERIES_INDEX)
            found = client.search(
                index=UBI_QUERIES_INDEX,
                body={"query": {"term": {"client_id": client_id}}, "size": 100},
            )["hits"]["hits"]
            if len(found) >= expected:
                return {h["_source"]["query_id"]: h["_source"] for h in found}
        assert time.monotonic() < deadline, "the ubi_queries records did not arrive in 30 s"
        time.sleep(0.3)


def _event(query_id: str, client_id: str, action: str, object_id: str, ordinal: int) -> dict:
    return {
        "action_name": action,
        "query_id": query_id,
        "client_id": client_id,
        "timestamp": datetime.now(UTC).isoformat(),
        "message_type": "INFO",
        "event_attributes": {
            "object": {"object_id": object_id, "object_id_field": "_id"},
            "position": {"ordinal": ordinal},
        },
    }


def _workbench_coec(queries: list[dict], events: list[dict]) -> dict[tuple[str, str], float]:
    """COEC as the Search Relevance Workbench computes it (CoecClickModel): per rank, clicks
    over impressions over every event; per (user query, object), its clicks over the
    rank's rate at its best rank times its impressions; 0 when nothing is expected. The user
    query comes from ``ubi_queries`` by the event's ``query_id``."""
    user_query = {q["query_id"]: q["user_query"] for q in queries}
    clicks_at: dict[int, int] = {}
    shown_at: dict[int, int] = {}
    pairs: dict[tuple[str, str], list[int]] = {}  # clicks, impressions, best rank
    for event in events:
        rank = event["event_attributes"]["position"]["ordinal"]
        action = event["action_name"]
        counts = clicks_at if action == "click" else shown_at
        counts[rank] = counts.get(rank, 0) + 1
        key = (user_query[event["query_id"]], event["event_attributes"]["object"]["object_id"])
        pair = pairs.setdefault(key, [0, 0, 1 << 31])
        pair[0 if action == "click" else 1] += 1
        pair[2] = min(pair[2], rank)
    ctr = {r: clicks_at.get(r, 0) / n for r, n in shown_at.items()}
    out = {}
    for key, (clicks, impressions, rank) in pairs.items():
        expected = ctr.get(rank, 0.0) * impressions
        out[key] = clicks / expected if expected > 0 else 0.0
    return out


def test_ubi_searches_leave_valid_records_and_their_coec_matches_ours(
    client, start_proxy, ubi_index, ubi_client, opensearch_url, tmp_path
):
    index, alias, catalog = ubi_index
    direct = requests.post(
        f"{opensearch_url}/{index}/_search", json={"ext": {"ubi": {"query_id": "x"}}}, timeout=30
    )
    assert direct.status_code == 400, "this test needs a node without the UBI plugin"
    assert "ubi" in direct.json()["error"]["reason"]

    with start_proxy([catalog], tmp_path / "proxy.log", model=False) as proxy:
        stats = requests.get(f"{proxy.url}/_ltrr/stats", timeout=10).json()
        assert stats["ubi"]["plugin"] is False
        # Intercepted, each with the client's query_id, three hits shown each.
        texts = ["electronic", "jazz", "trip-hop"]
        shown: dict[str, list[str]] = {}
        for n, text in enumerate(texts):
            query_id = f"{ubi_client}-q{n}"
            answer = _search(
                proxy.url,
                alias,
                {
                    "size": 3,
                    "query": {"multi_match": {"query": text, "fields": ["name", "tags"]}},
                    "ext": {"ubi": {"query_id": query_id, "client_id": ubi_client}},
                },
            )
            assert answer["ext"]["ubi"] == {"query_id": query_id}
            assert errors(QUERY_RESPONSE, answer["ext"]["ubi"]) == []
            assert answer["ext"]["ltrr"]["decision_id"] == query_id
            shown[query_id] = [h["_id"] for h in answer["hits"]["hits"]]
            assert len(shown[query_id]) == 3
        # Intercepted without a query_id: the decision id is UBI's query_id.
        own = _search(
            proxy.url,
            alias,
            {"query": {"match": {"tags": "ambient"}}, "ext": {"ubi": {"client_id": ubi_client}}},
        )
        own_id = own["ext"]["ubi"]["query_id"]
        assert own_id == own["ext"]["ltrr"]["decision_id"]
        # Passed through (aggregations), on the catalogued alias and on the bare index.
        passed = _search(
            proxy.url,
            alias,
            {
                "query": {"match": {"tags": "jazz"}},
                "aggs": {"n": {"value_count": {"field": "sku"}}},
                "ext": {"ubi": {"client_id": ubi_client, "user_query": "jazz"}},
            },
        )
        passed_id = passed["ext"]["ubi"]["query_id"]
        assert HEX_ID.match(passed_id)
        assert passed["aggregations"]["n"]["value"] == 3
        bare = _search(
            proxy.url,
            index,
            {
                "query": {"match": {"tags": "trumpet"}},
                "ext": {
                    "ubi": {
                        "query_id": f"{ubi_client}-bare",
                        "client_id": ubi_client,
                        "object_id_field": "sku",
                        "application": "it-app",
                        "query_attributes": {"experiment": "b"},
                    }
                },
            },
        )
        assert bare["ext"] == {"ubi": {"query_id": f"{ubi_client}-bare"}}
        # A search OpenSearch refuses is answered as it is, and logs nothing.
        refused = requests.post(
            f"{proxy.url}/{index}/_search",
            json={"query": {"no_such_query": {}}, "ext": {"ubi": {"client_id": ubi_client}}},
            timeout=30,
        )
        assert refused.status_code == 400
        assert "no_such_query" in refused.json()["error"]["reason"]  # not ext.ubi: stripped

        records = _records(client, ubi_client, 6)
        assert len(records) == 6  # the refused search left none
        for record in records.values():
            assert errors(QUERY_REQUEST, record) == [], record
            assert record["client_id"] == ubi_client
        for query_id, ids in shown.items():
            record = records[query_id]
            assert record["query_response_hit_ids"] == ids
            decision = record["query_attributes"]["ltrr"]
            assert decision["decision_id"] == query_id
            assert decision["target"] == alias
            assert decision["policy"] == "static"
            assert set(decision["arms"]) == {"by_name", "by_tags"}
        assert records[own_id]["user_query"] == "ambient"
        assert records[passed_id]["user_query"] == "jazz"
        assert records[passed_id]["query_response_hit_ids"] == [
            h["_id"] for h in passed["hits"]["hits"]
        ]
        assert records[passed_id]["query_attributes"]["ltrr"]["passthrough"] == "body key aggs"
        bare_record = records[f"{ubi_client}-bare"]
        assert bare_record["query_response_hit_ids"] == [
            h["_source"]["sku"] for h in bare["hits"]["hits"]
        ]
        assert bare_record["application"] == "it-app"
        assert bare_record["query_attributes"]["experiment"] == "b"
        mapping = client.indices.get_mapping(index=UBI_QUERIES_INDEX)[UBI_QUERIES_INDEX]
        assert mapping["mappings"]["properties"]["query_attributes"] == {"type": "flat_object"}
        assert (
            mapping["mappings"]["properties"]["query_id"]
            == QUERIES_INDEX_BODY["mappings"]["properties"]["query_id"]
        )

        # Impressions of every hit shown, and clicks: q0 at rank 1, q1 at ranks 1 and 2,
        # q2 at rank 3 (ordinals are 1-based, as the proxy reads them).
        clicked = {0: {1}, 1: {1, 2}, 2: {3}}
        lines = []
        for n, (query_id, ids) in enumerate(shown.items()):
            for rank, doc_id in enumerate(ids, start=1):
                actions = ["impression"] + (["click"] if rank in clicked[n] else [])
                for action in actions:
                    lines.append(orjson.dumps({"index": {"_index": "ubi_events"}}))
                    lines.append(orjson.dumps(_event(query_id, ubi_client, action, doc_id, rank)))
        response = requests.post(
            f"{proxy.url}/_bulk?refresh=true",
            data=b"\n".join(lines) + b"\n",
            headers={"Content-Type": "application/x-ndjson"},
            timeout=30,
        )
        assert response.status_code == 200, response.text
        assert not response.json()["errors"], response.text
        deadline = time.monotonic() + 20
        while requests.get(f"{proxy.url}/_ltrr/stats", timeout=10).json().get("ubi_events") != 4:
            assert time.monotonic() < deadline, "the proxy did not learn the 4 clicks"
            time.sleep(0.2)

    client.indices.refresh(index="ubi_events")
    events = [
        h["_source"]
        for h in client.search(
            index="ubi_events",
            body={"query": {"term": {"client_id.keyword": ubi_client}}, "size": 100},
        )["hits"]["hits"]
    ]
    assert len(events) == 9 + 4
    logged = [records[q] for q in shown]
    workbench = _workbench_coec(logged, events)

    user_query = {r["query_id"]: r["user_query"] for r in logged}
    clicks = {
        (e["query_id"], e["event_attributes"]["object"]["object_id"])
        for e in events
        if e["action_name"] == "click"
    }
    impressions = [
        Impression(
            user_query[e["query_id"]],
            e["event_attributes"]["object"]["object_id"],
            e["event_attributes"]["position"]["ordinal"],
            (e["query_id"], e["event_attributes"]["object"]["object_id"]) in clicks,
        )
        for e in events
        if e["action_name"] == "impression"
    ]
    ours = from_clicks(impressions, method="coec", prior=position_ctr(impressions))

    # By hand: rank 1 has 2 clicks in 3 impressions, ranks 2 and 3 one in three each, so a
    # click at rank 1 is worth 1 / (2/3) = 1.5 and one at rank 2 or 3 is worth 3.
    by_hand = {}
    for n, ids in enumerate(shown.values()):
        for rank, doc_id in enumerate(ids, start=1):
            worth = 0.0
            if rank in clicked[n]:
                worth = 1.5 if rank == 1 else 3.0
            by_hand[(texts[n], doc_id)] = worth
    assert workbench == pytest.approx(by_hand)
    assert {(q, d): s for q, docs in ours.scores.items() for d, s in docs.items()} == pytest.approx(
        by_hand
    )
