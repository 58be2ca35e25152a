"""The proxy's own writes: _bulk, _mget, guarded writes, BulkQueue and index creation."""

from __future__ import annotations

import asyncio

import orjson
import pytest

from ltrr.plugin.learn.bulk import (
    DECISIONS_INDEX,
    INDEX_BODIES,
    MEMORY_INDEX,
    STATE_INDEX,
    BulkQueue,
    Versioned,
    bulk,
    bulk_body,
    ensure_indices,
    guarded,
    mget,
)
from ltrr.plugin.runtime.upstream import UpstreamError, UpstreamReply
from tests.plugin._fake_opensearch import FakeOpenSearch


class Recorder:
    """Answers every request with ``reply``; records method, path, headers and body."""

    def __init__(self, reply):
        self.reply = reply
        self.requests = []

    async def request(self, method, path, *, headers, body, timeout):
        self.requests.append((method, path, dict(headers), body, timeout))
        return self.reply


def run(coro):
    return asyncio.run(coro)


@pytest.fixture
def store():
    return FakeOpenSearch()


# --- bulk ---


def test_bulk_body_is_ndjson_with_a_source_line_only_where_there_is_one():
    body = bulk_body(
        [
            ({"index": {"_index": "i", "_id": "1"}}, {"n": 1}),
            ({"delete": {"_index": "i", "_id": "2"}}, None),
        ]
    )
    assert body == (
        b'{"index":{"_index":"i","_id":"1"}}\n{"n":1}\n{"delete":{"_index":"i","_id":"2"}}\n'
    )


def test_bulk_of_nothing_sends_nothing():
    transport = Recorder(UpstreamReply(500, b""))
    assert run(bulk(transport, [])) == []
    assert transport.requests == []


def test_bulk_returns_each_items_status_in_order(store):
    store.put("i", "old", {"n": 0})
    actions = [
        ({"index": {"_index": "i", "_id": "new"}}, {"n": 1}),
        ({"create": {"_index": "i", "_id": "old"}}, {"n": 2}),  # exists: 409
        ({"delete": {"_index": "i", "_id": "gone"}}, None),  # missing: 404
    ]

    results = run(bulk(store, actions))

    assert [status for status, _ in results] == [201, 409, 404]
    assert [r["_id"] for _, r in results] == ["new", "old", "gone"]
    assert results[1][1]["error"]["type"] == "version_conflict_engine_exception"
    assert store.source("i", "new") == {"n": 1}
    assert store.source("i", "old") == {"n": 0}


def test_bulk_sends_ndjson_with_the_timeout():
    reply = UpstreamReply(200, orjson.dumps({"items": [{"index": {"status": 200}}]}))
    transport = Recorder(reply)
    run(bulk(transport, [({"index": {"_index": "i", "_id": "1"}}, {"n": 1})], timeout=7.5))
    ((method, path, headers, body, timeout),) = transport.requests
    assert (method, path, timeout) == ("POST", "/_bulk", 7.5)
    assert headers == {"Content-Type": "application/x-ndjson"}
    assert body == b'{"index":{"_index":"i","_id":"1"}}\n{"n":1}\n'


def test_an_item_without_a_status_counts_as_500():
    transport = Recorder(UpstreamReply(200, orjson.dumps({"items": [{"index": {"_id": "1"}}]})))
    ((status, result),) = run(bulk(transport, [({"index": {"_index": "i", "_id": "1"}}, {})]))
    assert status == 500
    assert result == {"_id": "1"}


def test_a_failed_bulk_request_raises(store):
    store.fail_next("/_bulk", 503)
    with pytest.raises(UpstreamError, match="_bulk answered 503"):
        run(bulk(store, [({"index": {"_index": "i", "_id": "1"}}, {"n": 1})]))
    assert store.ids("i") == set()


def test_fewer_items_than_actions_raises():
    transport = Recorder(UpstreamReply(200, orjson.dumps({"items": [{"index": {"status": 201}}]})))
    actions = [({"index": {"_index": "i", "_id": str(n)}}, {}) for n in range(2)]
    with pytest.raises(UpstreamError, match="1 items for 2 actions"):
        run(bulk(transport, actions))


# --- mget and guarded ---


def test_mget_returns_only_the_documents_found_with_their_versions(store):
    store.put("i", "x", {"v": "x"})  # seq_no 0
    store.put("other", "z", {})  # seq_no 1
    store.put("i", "y", {"v": "y"})  # seq_no 2

    found = run(mget(store, "i", ["y", "missing", "x"]))

    assert found == {
        "x": Versioned({"v": "x"}, 0, 1),
        "y": Versioned({"v": "y"}, 2, 1),
    }


def test_mget_of_nothing_or_of_a_missing_index_finds_nothing(store):
    assert run(mget(store, "i", [])) == {}
    assert store.requests == []
    assert run(mget(store, "absent", ["x"])) == {}  # 404: nothing stored yet
    assert store.requests == [("POST", "/absent/_mget")]


def test_mget_raises_on_another_error(store):
    store.put("i", "x", {})
    store.fail_next("/_mget", 500)
    with pytest.raises(UpstreamError, match="_mget i answered 500"):
        run(mget(store, "i", ["x"]))


def test_guarded_creates_when_absent_and_quotes_the_version_when_present():
    assert guarded("s", "k", None) == {"create": {"_index": "s", "_id": "k"}}
    assert guarded("s", "k", Versioned({}, 7, 2)) == {
        "index": {"_index": "s", "_id": "k", "if_seq_no": 7, "if_primary_term": 2}
    }


def test_a_guarded_write_conflicts_when_someone_wrote_since_the_read(store):
    store.put("s", "k", {"n": 1})
    (read,) = run(mget(store, "s", ["k"])).values()
    store.put("s", "k", {"n": 2})  # another replica, in between

    ((stale, _),) = run(bulk(store, [(guarded("s", "k", read), {"n": 3})]))
    (fresh,) = run(mget(store, "s", ["k"])).values()
    ((ok, _),) = run(bulk(store, [(guarded("s", "k", fresh), {"n": 3})]))

    assert (stale, ok) == (409, 200)
    assert store.source("s", "k") == {"n": 3}


# --- BulkQueue ---


def test_queue_drops_the_oldest_beyond_max_queued(store):
    queue = BulkQueue(store, DECISIONS_INDEX, max_queued=3)
    for n in range(5):
        queue.put(f"d{n}", {"n": n})
    assert len(queue) == 3
    assert queue.dropped == 2
    run(queue.flush())
    assert store.ids(DECISIONS_INDEX) == {"d2", "d3", "d4"}


def test_flush_writes_in_batches_and_counts_refusals(store):
    queue = BulkQueue(store, DECISIONS_INDEX, batch=2)
    for n in range(5):
        queue.put(f"d{n}", {"n": n})
    store.force_item(DECISIONS_INDEX, "d3", 400)  # a mapping error: not retried

    run(queue.flush())

    assert store.count("/_bulk") == 3
    assert len(queue) == 0
    assert (queue.written, queue.dropped) == (4, 1)
    assert store.ids(DECISIONS_INDEX) == {"d0", "d1", "d2", "d4"}
    assert store.source(DECISIONS_INDEX, "d4") == {"n": 4}


def test_a_failed_flush_keeps_the_batch_for_the_next_one(store):
    queue = BulkQueue(store, DECISIONS_INDEX, batch=2)
    for n in range(3):
        queue.put(f"d{n}", {"n": n})
    store.on_next("/_bulk", lambda: None)  # the first batch goes through
    store.fail_next("/_bulk", 503)

    with pytest.raises(UpstreamError):
        run(queue.flush())
    assert (len(queue), queue.written, queue.dropped) == (1, 2, 0)

    run(queue.flush())
    assert (len(queue), queue.written) == (0, 3)
    assert store.ids(DECISIONS_INDEX) == {"d0", "d1", "d2"}


def test_a_busy_item_stays_queued_first_and_is_written_next_time(store):
    queue = BulkQueue(store, DECISIONS_INDEX, batch=10)
    for n in range(3):
        queue.put(f"d{n}", {"n": n})
    store.force_item(DECISIONS_INDEX, "d1", 429)

    with pytest.raises(UpstreamError, match="1 documents not written yet"):
        run(queue.flush())
    assert (len(queue), queue.written, queue.dropped) == (1, 2, 0)

    run(queue.flush())
    assert store.ids(DECISIONS_INDEX) == {"d0", "d1", "d2"}


def test_concurrent_flushes_write_every_document_once(store):
    """Two flushes at once, and documents queued while a bulk is in flight: once, two
    flushers each deleted the head they had not sent, and a decision went missing."""

    class Slow:
        def __init__(self) -> None:
            self.sent: list[str] = []

        async def request(self, method, path, *, headers, body, timeout):
            await asyncio.sleep(0.01)
            lines = body.decode().splitlines()
            self.sent += [orjson.loads(line)["index"]["_id"] for line in lines[::2]]
            return await store.request(method, path, headers=headers, body=body, timeout=timeout)

    slow = Slow()
    queue = BulkQueue(slow, DECISIONS_INDEX, batch=3)
    for n in range(7):
        queue.put(f"d{n}", {"n": n})

    async def go():
        async def late():
            await asyncio.sleep(0.005)  # while the first bulk is in flight
            queue.put("late", {"n": 99})

        await asyncio.gather(queue.flush(), queue.flush(), late())

    run(go())
    assert sorted(slow.sent) == sorted([f"d{n}" for n in range(7)] + ["late"])
    assert store.ids(DECISIONS_INDEX) == {*(f"d{n}" for n in range(7)), "late"}
    assert (len(queue), queue.written) == (0, 8)


# --- ensure_indices ---


ACKNOWLEDGED = UpstreamReply(200, b'{"acknowledged":true}')


class Cluster:
    """HEAD says which indices exist; every PUT answers ``put_reply``."""

    def __init__(self, existing=(), put_reply=ACKNOWLEDGED):
        self.existing = set(existing)
        self.put_reply = put_reply
        self.requests = []

    async def request(self, method, path, *, headers, body, timeout):
        self.requests.append((method, path, None if body is None else orjson.loads(body)))
        if method == "HEAD":
            return UpstreamReply(200 if path.strip("/") in self.existing else 404, b"")
        return self.put_reply


def test_ensure_indices_creates_the_missing_and_extends_the_existing_mappings():
    cluster = Cluster(existing={STATE_INDEX})

    run(ensure_indices(cluster, [STATE_INDEX, MEMORY_INDEX]))

    state_properties = INDEX_BODIES[STATE_INDEX]["mappings"]["properties"]
    assert cluster.requests == [
        ("HEAD", "/ltrr-state", None),
        ("PUT", "/ltrr-state/_mapping", {"properties": state_properties}),
        ("HEAD", "/ltrr-memory", None),
        ("PUT", "/ltrr-memory", INDEX_BODIES[MEMORY_INDEX]),
    ]
    assert state_properties["arm"] == {"type": "keyword"}


def test_ensure_indices_by_default_covers_the_state_and_the_memory():
    """The two logs are daily indices behind aliases, made by ``logs``, not here."""
    cluster = Cluster()
    run(ensure_indices(cluster))
    created = [path for method, path, _ in cluster.requests if method == "PUT"]
    assert created == ["/ltrr-state", "/ltrr-memory"]


def test_ensure_indices_accepts_a_replica_that_created_it_first():
    race = UpstreamReply(400, b'{"error":{"type":"resource_already_exists_exception"}}')
    run(ensure_indices(Cluster(put_reply=race), [STATE_INDEX]))  # no error


def test_ensure_indices_raises_when_creation_fails():
    refused = UpstreamReply(403, b'{"error":{"type":"security_exception"}}')
    with pytest.raises(UpstreamError, match="creating ltrr-state: 403"):
        run(ensure_indices(Cluster(put_reply=refused), [STATE_INDEX]))
