"""``ubi_queries``: the record as UBI 1.3 defines it, and its batched, bounded writer."""

from __future__ import annotations

import asyncio

import orjson
import pytest

from ltrr.plugin.learn.deadletter import DeadLetters
from ltrr.plugin.learn.ubiqueries import (
    QUERIES_INDEX_BODY,
    UBI_QUERIES_INDEX,
    UbiQueries,
    iso_timestamp,
    node_has_ubi,
    query_record,
)
from ltrr.plugin.runtime.upstream import UpstreamError, UpstreamReply
from tests.plugin._fake_opensearch import FakeOpenSearch
from tests.plugin._ubi_schema import QUERY_REQUEST, errors


class Cluster(FakeOpenSearch):
    """The fake, plus index existence (``HEAD``) and creation (``PUT /index``)."""

    def __init__(self, *, exists: bool = False, head_status: int | None = None) -> None:
        super().__init__()
        self.created: dict[str, dict] = {}
        self.exists = exists
        self.head_status = head_status

    async def request(self, method, path, *, headers, body, timeout):
        name = path.strip("/")
        if method == "HEAD":
            self.requests.append((method, path))
            if self.head_status is not None:
                return UpstreamReply(self.head_status, b"")
            return UpstreamReply(200 if self.exists or name in self.created else 404, b"")
        if method == "PUT" and "/" not in name:
            self.requests.append((method, path))
            self.created[name] = orjson.loads(body)
            return UpstreamReply(200, b'{"acknowledged":true}')
        return await super().request(method, path, headers=headers, body=body, timeout=timeout)


def record(n: int, **extra) -> dict:
    return query_record(
        query_id=f"q{n}",
        query_response_id=f"r{n}",
        user_query="miles davis",
        hit_ids=["a", "b"],
        timestamp=1_764_633_600.0 + n,
        **extra,
    )


def test_the_record_is_a_valid_ubi_1_3_query_with_the_decision_namespaced():
    made = query_record(
        query_id="0123456789abcdef0123456789abcdef",
        query_response_id="r-1",
        user_query="kind of blue",
        hit_ids=["miles-davis", "john-coltrane"],
        timestamp=1_764_633_600.25,  # 2025-12-02T00:00:00.250Z
        client_id="browser-7",
        application="primary-search",
        object_id_field="sku",
        attributes={"experiment": "b", "ltrr": "the client's own, replaced"},
        decision={
            "decision_id": "d-1",
            "policy": "linucb",
            "arms": {"lexical": {"included": True}},
        },
    )
    assert made == {
        "query_id": "0123456789abcdef0123456789abcdef",
        "query_response_id": "r-1",
        "user_query": "kind of blue",
        "query_response_hit_ids": ["miles-davis", "john-coltrane"],
        "timestamp": "2025-12-02T00:00:00.250Z",
        "client_id": "browser-7",
        "application": "primary-search",
        "object_id_field": "sku",
        "query_attributes": {
            "experiment": "b",
            "ltrr": {
                "decision_id": "d-1",
                "policy": "linucb",
                "arms": {"lexical": {"included": True}},
            },
        },
    }
    assert errors(QUERY_REQUEST, made) == []


def test_a_minimal_record_has_no_empty_optional_fields_and_is_valid():
    made = record(1)
    assert set(made) == {
        "query_id",
        "query_response_id",
        "user_query",
        "query_response_hit_ids",
        "timestamp",
    }
    assert errors(QUERY_REQUEST, made) == []


def test_timestamps_are_iso_8601_utc_to_the_millisecond():
    assert iso_timestamp(0.0) == "1970-01-01T00:00:00.000Z"
    assert iso_timestamp(1_700_000_000.1234) == "2023-11-14T22:13:20.123Z"


def test_the_schema_check_can_fail():
    """The validator the tests rely on refuses what UBI refuses."""
    bad = {**record(1), "query_response_hit_ids": [1, 2], "timestamp": "yesterday"}
    del bad["user_query"]
    assert len(errors(QUERY_REQUEST, bad)) == 4


def test_records_are_written_in_batches_with_their_response_id_as_id():
    cluster = Cluster()
    queries = UbiQueries(cluster, batch=2)
    for n in range(5):
        queries.put(record(n))
    asyncio.run(queries.flush())
    assert cluster.ids(UBI_QUERIES_INDEX) == {f"r{n}" for n in range(5)}
    assert cluster.source(UBI_QUERIES_INDEX, "r3") == record(3)
    assert cluster.count("/_bulk") == 3  # 2 + 2 + 1
    assert queries.snapshot()["written"] == 5
    assert len(queries) == 0


def test_the_index_is_made_with_ubis_mapping_once_and_an_existing_one_is_left_alone():
    cluster = Cluster()
    queries = UbiQueries(cluster)
    queries.put(record(1))
    asyncio.run(queries.flush())
    queries.put(record(2))
    asyncio.run(queries.flush())
    assert cluster.created == {UBI_QUERIES_INDEX: QUERIES_INDEX_BODY}
    properties = cluster.created[UBI_QUERIES_INDEX]["mappings"]["properties"]
    assert properties["query_attributes"] == {"type": "flat_object"}
    assert properties["query_response_hit_ids"] == {"type": "keyword"}
    assert cluster.count(f"/{UBI_QUERIES_INDEX}") == 2  # one HEAD, one PUT

    existing = Cluster(exists=True)
    queries = UbiQueries(existing)
    queries.put(record(1))
    asyncio.run(queries.flush())
    assert existing.created == {}
    assert existing.ids(UBI_QUERIES_INDEX) == {"r1"}


def test_a_busy_item_is_retried_and_a_down_cluster_keeps_the_whole_batch():
    cluster = Cluster(exists=True)
    queries = UbiQueries(cluster)
    queries.put(record(1))
    queries.put(record(2))
    cluster.force_item(UBI_QUERIES_INDEX, "r2", 429)
    assert asyncio.run(queries.flush_once()) is False
    assert cluster.ids(UBI_QUERIES_INDEX) == {"r1"}
    assert len(queries) == 1
    cluster.fail_next("/_bulk", 503)
    assert asyncio.run(queries.flush_once()) is False
    assert len(queries) == 1
    assert asyncio.run(queries.flush_once()) is True
    assert cluster.ids(UBI_QUERIES_INDEX) == {"r1", "r2"}
    snap = queries.snapshot()
    assert (snap["written"], snap["failed_flushes"], snap["dropped"]) == (2, 2, 0)


def test_an_unanswered_index_check_keeps_the_records_for_later():
    cluster = Cluster(head_status=403)
    queries = UbiQueries(cluster)
    queries.put(record(1))
    with pytest.raises(UpstreamError):
        asyncio.run(queries.flush())
    assert len(queries) == 1
    cluster.head_status = None
    asyncio.run(queries.flush())
    assert cluster.ids(UBI_QUERIES_INDEX) == {"r1"}


def test_a_record_refused_for_good_goes_to_the_dead_letters(tmp_path):
    cluster = Cluster(exists=True)
    letters = DeadLetters(tmp_path)
    queries = UbiQueries(cluster, dead_letters=letters)
    queries.put(record(1))
    queries.put(record(2))
    cluster.force_item(UBI_QUERIES_INDEX, "r1", 400)
    asyncio.run(queries.flush())
    assert cluster.ids(UBI_QUERIES_INDEX) == {"r2"}
    (line,) = (tmp_path / "dead-letter.jsonl").read_text().splitlines()
    kept = orjson.loads(line)
    assert kept["index"] == UBI_QUERIES_INDEX
    assert kept["record"] == record(1)
    snap = queries.snapshot()
    assert (snap["dead_lettered"], snap["dropped"], snap["written"]) == (1, 0, 1)


def test_without_dead_letters_a_refused_record_is_counted_as_dropped():
    cluster = Cluster(exists=True)
    queries = UbiQueries(cluster)
    queries.put(record(1))
    cluster.force_item(UBI_QUERIES_INDEX, "r1", 400)
    asyncio.run(queries.flush())
    assert queries.snapshot()["dropped"] == 1
    assert len(queries) == 0


def test_the_queue_is_bounded_dropping_the_oldest():
    queries = UbiQueries(Cluster(), max_queued=3)
    for n in range(5):
        queries.put(record(n))
    assert len(queries) == 3
    assert queries.snapshot()["dropped"] == 2
    cluster = queries.transport
    asyncio.run(queries.flush())
    assert cluster.ids(UBI_QUERIES_INDEX) == {"r2", "r3", "r4"}


class Plugins:
    def __init__(self, status: int, body: bytes) -> None:
        self.reply = UpstreamReply(status, body)
        self.asked: list[tuple[str, str]] = []

    async def request(self, method, path, *, headers, body, timeout):
        self.asked.append((method, path))
        return self.reply


@pytest.mark.parametrize(
    ("status", "body", "expected"),
    [
        (200, b'[{"name":"n1","component":"opensearch-knn"}]', False),
        (
            200,
            b'[{"name":"n1","component":"opensearch-knn"},{"name":"n2","component":"opensearch-ubi"}]',
            True,
        ),
        (200, b"[]", False),
        (403, b'{"error":"no"}', None),
        (200, b"not json", None),
        (200, b'{"unexpected":"shape"}', None),
    ],
)
def test_the_plugin_is_found_on_any_node(status, body, expected):
    plugins = Plugins(status, body)
    assert asyncio.run(node_has_ubi(plugins)) is expected
    assert plugins.asked == [("GET", "/_cat/plugins?format=json&h=component")]


def test_a_record_queued_as_its_maker_is_made_once_and_keeps_its_ids_when_retried():
    cluster = Cluster(exists=True)
    queries = UbiQueries(cluster)
    made = []

    def maker():
        made.append(1)
        return record(len(made) + 10)  # a new id each time it is called

    queries.put(maker)
    cluster.force_item(UBI_QUERIES_INDEX, "r11", 503)
    assert asyncio.run(queries.flush_once()) is False
    assert asyncio.run(queries.flush_once()) is True
    assert made == [1]
    assert cluster.ids(UBI_QUERIES_INDEX) == {"r11"}


def test_a_record_that_cannot_be_made_is_dropped_and_the_rest_go_on():
    cluster = Cluster(exists=True)
    queries = UbiQueries(cluster)

    def broken():
        raise KeyError("hits")

    queries.put(broken)
    queries.put(lambda: record(2))
    asyncio.run(queries.flush())
    assert cluster.ids(UBI_QUERIES_INDEX) == {"r2"}
    assert queries.snapshot()["dropped"] == 1
