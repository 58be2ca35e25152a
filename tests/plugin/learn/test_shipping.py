"""Shipper: the durable event log to ltrr-events, committed only past what OpenSearch stored
or refused for good (those go to the dead letters)."""

from __future__ import annotations

import asyncio

import orjson
import pytest

from ltrr.plugin.learn.bulk import EVENTS_INDEX
from ltrr.plugin.learn.deadletter import DeadLetters
from ltrr.plugin.learn.eventlog import EventLog, Position
from ltrr.plugin.learn.shipping import Shipper as _Shipper
from ltrr.plugin.runtime.upstream import UpstreamError
from tests.plugin._fake_opensearch import FakeOpenSearch


def doc(n):
    return {"event_id": f"e{n}", "decision_id": "d1", "type": "click", "weight": float(n)}


@pytest.fixture
def log(tmp_path):
    events = EventLog(tmp_path / "events", fsync=False)
    yield events
    events.close()


@pytest.fixture
def store():
    return FakeOpenSearch()


@pytest.fixture
def dead(tmp_path):
    return DeadLetters(tmp_path / "data")


@pytest.fixture
def Shipper(dead):
    def make(transport, events, batch=2000):
        return _Shipper(transport, events, dead, batch=batch)

    return make


def append(log, *numbers):
    return log.append([orjson.dumps(doc(n)) for n in numbers])


def pending_ids(log):
    lines, _ = log.pending()
    return [orjson.loads(line)["event_id"] for line in lines]


def ship(shipper):
    return asyncio.run(shipper.ship())


def test_nothing_pending_ships_nothing(store, log, Shipper):
    assert ship(Shipper(store, log)) == 0
    assert store.requests == []


def test_ships_every_pending_event_in_batches_under_its_event_id(store, log, Shipper):
    end = append(log, 1, 2, 3, 4, 5)
    shipper = Shipper(store, log, batch=2)

    assert ship(shipper) == 5

    assert store.count("/_bulk") == 3  # 2 + 2 + 1
    assert store.ids(EVENTS_INDEX) == {"e1", "e2", "e3", "e4", "e5"}
    assert store.source(EVENTS_INDEX, "e4") == doc(4)
    assert shipper.shipped == 5
    assert log.checkpoint == end
    assert pending_ids(log) == []
    assert ship(shipper) == 0  # and only new events next time
    append(log, 6)
    assert ship(shipper) == 1
    assert shipper.shipped == 6


def test_the_log_is_committed_only_after_each_bulk_succeeded(store, log, Shipper):
    first = append(log, 1, 2)
    append(log, 3)
    seen = []
    for _ in range(2):  # what the checkpoint is when each _bulk is sent
        store.on_next("/_bulk", lambda: seen.append(log.checkpoint))

    ship(Shipper(store, log, batch=2))

    assert seen == [Position(1, 0), first]


def test_a_failed_request_raises_and_commits_nothing_of_its_batch(store, log, Shipper):
    after_first = append(log, 1, 2)
    append(log, 3, 4)
    store.on_next("/_bulk", lambda: None)  # the first batch is stored
    store.fail_next("/_bulk", 503)
    shipper = Shipper(store, log, batch=2)

    with pytest.raises(UpstreamError, match="503"):
        ship(shipper)

    assert shipper.shipped == 2
    assert log.checkpoint == after_first
    assert pending_ids(log) == ["e3", "e4"]


def test_a_busy_item_raises_and_ships_no_further_batch(store, log, Shipper, dead):
    after_first = append(log, 1, 2)
    append(log, 3, 4, 5, 6)
    store.force_item(EVENTS_INDEX, "e3", 429)
    shipper = Shipper(store, log, batch=2)

    with pytest.raises(UpstreamError, match="1 events not stored yet"):
        ship(shipper)

    assert store.count("/_bulk") == 2  # the third batch was never sent
    assert store.ids(EVENTS_INDEX) == {"e1", "e2", "e4"}  # e4 was stored, e3 refused
    assert log.checkpoint == after_first
    assert pending_ids(log) == ["e3", "e4", "e5", "e6"]  # the whole batch is retried
    assert shipper.shipped == 2
    assert dead.count == 0  # busy is not refused


def test_an_item_refused_for_good_goes_to_the_dead_letters_and_the_rest_ships(
    store, log, Shipper, dead
):
    end = append(log, 1, 2, 3, 4, 5)
    store.force_item(EVENTS_INDEX, "e2", 400)  # a mapping error: it will never be stored
    shipper = Shipper(store, log, batch=2)

    assert ship(shipper) == 4

    assert store.ids(EVENTS_INDEX) == {"e1", "e3", "e4", "e5"}
    assert log.checkpoint == end  # nothing left to retry
    assert dead.count == 1
    (line,) = dead.path.read_text().splitlines()
    letter = orjson.loads(line)
    assert letter["index"] == EVENTS_INDEX
    assert letter["record"] == doc(2)
    assert DeadLetters(dead.path.parent).count == 1  # the count survives a restart
    assert ship(shipper) == 0  # and it is never sent again
    assert store.count("/_bulk") == 3


def test_a_whole_bulk_refused_is_split_until_the_refused_record_is_alone(store, log, Shipper, dead):
    end = append(log, 1, 2, 3)
    store.fail_next("/_bulk", 400)  # one bad action line refuses the whole request

    assert ship(Shipper(store, log)) == 3  # the halves, sent apart, are stored

    assert store.count("/_bulk") == 3
    assert store.ids(EVENTS_INDEX) == {"e1", "e2", "e3"}
    assert log.checkpoint == end
    assert dead.count == 0


def test_resending_a_batch_cannot_duplicate_an_event(store, log, Shipper):
    end = append(log, 1, 2, 3)
    store.force_item(EVENTS_INDEX, "e2", 503)
    shipper = Shipper(store, log, batch=3)
    with pytest.raises(UpstreamError):
        ship(shipper)
    assert store.ids(EVENTS_INDEX) == {"e1", "e3"}

    assert ship(shipper) == 3  # e1 and e3 again, under the same ids

    assert store.ids(EVENTS_INDEX) == {"e1", "e2", "e3"}
    assert [store.source(EVENTS_INDEX, f"e{n}") for n in (1, 2, 3)] == [doc(1), doc(2), doc(3)]
    assert log.checkpoint == end


def test_a_transport_error_leaves_everything_pending(log, dead):
    class Down:
        async def request(self, method, path, *, headers, body, timeout):
            raise UpstreamError("POST /_bulk: connection refused")

    append(log, 1, 2)
    with pytest.raises(UpstreamError, match="connection refused"):
        ship(_Shipper(Down(), log, dead))
    assert log.checkpoint == Position(1, 0)
    assert pending_ids(log) == ["e1", "e2"]
