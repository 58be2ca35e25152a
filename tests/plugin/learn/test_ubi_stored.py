"""Learning only what OpenSearch stored, and the feedback bounds that keep events storable."""

from __future__ import annotations

import orjson
import pytest

from ltrr.plugin.errors import BadRequest
from ltrr.plugin.learn.feedback import (
    MAX_ID_BYTES,
    MAX_POSITION,
    UBI_INDEX,
    FeedbackEvent,
    UbiExtract,
    parse_feedback,
    stored_items,
    ubi_events,
)
from tests.plugin.learn.test_feedback import nd, ubi_doc

NOW = 1_800_000_000.5


def answer(*statuses, errors=True):
    """A ``_bulk`` answer with one item per status, in order."""
    items = [
        {"index": {"_index": UBI_INDEX, "_id": str(i), "status": s}} for i, s in enumerate(statuses)
    ]
    return orjson.dumps({"took": 3, "errors": errors, "items": items})


def feedback(events, decision_id="dec-1"):
    return orjson.dumps({"decision_id": decision_id, "events": events})


def one_event(**fields):
    (event,) = parse_feedback(feedback([{"type": "click", "object_id": "d", **fields}]), now=NOW)[1]
    return event


def one_ubi(doc):
    extract = ubi_events("POST", "/ubi_events/_doc", orjson.dumps(doc), now=NOW)
    assert extract.skipped == {}, extract.skipped
    (event,) = extract.events
    return event


# The bulk of the brief: another index, two UBI documents, a UBI delete.
FOUR = nd(
    {"index": {"_index": "music", "_id": "m1"}},
    {"name": "so what"},
    {"index": {"_index": UBI_INDEX, "_id": "e1"}},
    ubi_doc(),
    {"create": {"_index": UBI_INDEX, "_id": "e2"}},
    ubi_doc(action_name="purchase"),
    {"delete": {"_index": UBI_INDEX, "_id": "old"}},
)


# --- stored_items ---


def test_stored_items_are_the_2xx_items_by_position():
    assert stored_items(answer(201, 201, 400, 200)) == frozenset({0, 1, 3})
    assert stored_items(answer(299, 300, 199, 429, 500)) == frozenset({0})


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"not json",
        b"\x1f\x8b\x08\x00",  # a compressed answer nobody inflated
        b"[]",
        b"null",
        b'"items"',
        b'{"errors": false}',  # filter_path=errors drops the items
        b'{"errors": false, "items": null}',
        b'{"errors": false, "items": {"0": {"index": {"status": 201}}}}',
    ],
)
def test_an_answer_that_does_not_say_stores_nothing(raw):
    assert stored_items(raw) == frozenset()


def test_odd_items_are_not_stored_but_keep_the_numbering():
    items = [
        {"index": {"status": "201"}},  # a string, not a status
        {"index": {"status": 201.0}},  # a float, not a status
        {"index": {"status": True}},
        {},
        [],
        {"index": None},
        {"index": {}},
        {"create": {"status": 201}},
    ]
    raw = orjson.dumps({"errors": True, "items": items})
    assert stored_items(raw) == frozenset({7})


# --- UbiExtract.stored on a bulk ---


def test_bulk_items_number_every_action_line():
    extract = ubi_events("POST", "/_bulk", FOUR, now=NOW)
    assert [e.event_id for e in extract.events] == ["e1", "e2"]
    assert extract.items == [1, 2]
    assert extract.skipped == {"other index": 1, "delete action": 1}


def test_only_the_events_opensearch_stored_survive():
    extract = ubi_events("POST", "/_bulk", FOUR, now=NOW)
    kept = extract.stored(answer(201, 201, 400, 200))
    assert [e.event_id for e in kept.events] == ["e1"]
    assert kept.items == [1]
    assert kept.skipped == {"other index": 1, "delete action": 1, "refused by OpenSearch": 1}
    # the original is untouched
    assert extract.items == [1, 2]
    assert extract.skipped == {"other index": 1, "delete action": 1}


def test_refusals_add_to_an_existing_refused_count():
    extract = UbiExtract(
        ubi_events("POST", "/_bulk", FOUR, now=NOW).events, {"refused by OpenSearch": 2}, [1, 2]
    )
    kept = extract.stored(answer(201, 500, 409, 200))
    assert kept.events == []
    assert kept.skipped == {"refused by OpenSearch": 4}


def test_everything_stored_keeps_everything():
    extract = ubi_events("POST", "/_bulk", FOUR, now=NOW)
    kept = extract.stored(answer(201, 201, 201, 200, errors=False))
    assert kept == UbiExtract(extract.events, extract.skipped, [1, 2])


def test_an_answer_without_items_learns_nothing_from_a_bulk():
    extract = ubi_events("POST", "/_bulk", FOUR, now=NOW)
    kept = extract.stored(b'{"errors": false}')
    assert kept.events == []
    assert kept.items == []
    assert kept.skipped["refused by OpenSearch"] == 2


def test_a_non_json_answer_learns_nothing_from_a_bulk():
    extract = ubi_events("POST", "/_bulk", FOUR, now=NOW)
    kept = extract.stored(b"<html>502 Bad Gateway</html>")
    assert kept.events == []
    assert kept.skipped["refused by OpenSearch"] == 2


def test_a_short_answer_refuses_the_items_it_does_not_mention():
    extract = ubi_events("POST", "/_bulk", FOUR, now=NOW)
    kept = extract.stored(answer(201, 201))  # item 2 is never answered
    assert [e.event_id for e in kept.events] == ["e1"]
    assert kept.skipped["refused by OpenSearch"] == 1


def test_blank_lines_do_not_shift_the_numbering():
    # OpenSearch skips blank action lines without numbering them.
    marker = orjson.dumps({"index": {"_index": UBI_INDEX, "_id": "e1"}})
    assert marker in FOUR
    raw = b"\n \n" + FOUR.replace(marker, b"\r\n\n" + marker)
    extract = ubi_events("POST", "/_bulk", raw, now=NOW)
    assert extract.items == [1, 2]
    assert [e.event_id for e in extract.stored(answer(201, 201, 400, 200)).events] == ["e1"]


def test_no_events_means_nothing_to_refuse():
    extract = ubi_events(
        "POST", "/_bulk", nd({"index": {"_index": UBI_INDEX}}, ubi_doc(query_id=None)), now=NOW
    )
    assert extract.stored(b"junk") == UbiExtract([], {"no query_id": 1}, [])


# --- UbiExtract.stored on a single document ---


@pytest.mark.parametrize(
    "reply",
    [
        b'{"_index":"ubi_events","_id":"x","result":"created"}',
        b"",
        b"not json",
        b'{"errors": true, "items": [{"index": {"status": 400}}]}',
    ],
)
def test_a_single_document_survives_whatever_the_answer_body(reply):
    extract = ubi_events("PUT", "/ubi_events/_doc/x", orjson.dumps(ubi_doc()), now=NOW)
    assert extract.items == [None]
    kept = extract.stored(reply)
    assert [e.event_id for e in kept.events] == ["x"]
    assert kept.items == [None]
    assert kept.skipped == {}


# --- parse_feedback: position and id bounds ---


def test_position_at_max_int_is_accepted_and_one_more_is_a_400():
    assert MAX_POSITION == 2**31 - 1
    assert one_event(position=2**31 - 1).position == 2**31 - 1
    with pytest.raises(BadRequest) as caught:
        one_event(position=2**31)
    assert caught.value.status == 400
    assert caught.value.error_type == "illegal_argument_exception"
    assert "events[0].position" in caught.value.reason
    assert str(2**31 - 1) in caught.value.reason


@pytest.mark.parametrize("position", [0, -1, 2**63, 1.0, True, "3"])
def test_positions_that_are_not_positive_integers_are_a_400(position):
    with pytest.raises(BadRequest):
        one_event(position=position)


def test_event_id_bound_is_in_bytes():
    assert MAX_ID_BYTES == 512
    assert one_event(id="é" * 256).event_id == "é" * 256  # 512 bytes
    with pytest.raises(BadRequest) as caught:
        one_event(id="é" * 300)  # 300 characters, 600 bytes
    assert caught.value.status == 400
    assert "events[0].id" in caught.value.reason
    assert "512 bytes" in caught.value.reason


def test_decision_id_bound_is_in_bytes():
    event = {"type": "click", "object_id": "d"}
    assert parse_feedback(feedback([event], "é" * 256), now=NOW)[0] == "é" * 256
    with pytest.raises(BadRequest) as caught:
        parse_feedback(feedback([event], "é" * 300), now=NOW)
    assert caught.value.status == 400
    assert "decision_id" in caught.value.reason
    assert "512 bytes" in caught.value.reason


def test_object_id_bound_is_in_bytes():
    assert one_event(object_id="é" * 256).object_id == "é" * 256
    with pytest.raises(BadRequest) as caught:
        one_event(object_id="é" * 257)
    assert "events[0].object_id" in caught.value.reason


# --- timestamps at millisecond precision ---


@pytest.mark.parametrize(
    "timestamp",
    [
        "1970-01-01T00:00:00.000001Z",
        "1970-01-01T00:00:00.000400Z",
        "1970-01-01T00:00:00.000001",
        "1970-01-01T00:00:00.000001+00:00",
        0.001,  # epoch milliseconds: a microsecond
        0.4,
    ],
)
def test_a_sub_millisecond_timestamp_is_stored_as_zero(timestamp):
    event = one_event(timestamp=timestamp)
    assert event.timestamp == 0.0
    assert b"e-" not in orjson.dumps(event.to_json())


def test_tiny_timestamps_never_print_with_an_exponent():
    for micros in range(0, 5000, 7):
        iso = f"1970-01-01T00:00:00.{micros % 1_000_000:06d}Z"
        for timestamp in (iso, micros / 1000):
            dumped = orjson.dumps(one_event(timestamp=timestamp).to_json())
            assert b"e-" not in dumped, (timestamp, dumped)
            assert b"E-" not in dumped


def test_a_millisecond_timestamp_is_kept():
    event = one_event(timestamp="1970-01-01T00:00:00.001Z")
    assert event.timestamp == 0.001
    assert b'"timestamp":0.001' in orjson.dumps(event.to_json())


def test_a_tiny_clock_is_stored_at_millisecond_precision_too():
    (event,) = parse_feedback(feedback([{"type": "click", "object_id": "d"}]), now=1e-6)[1]
    assert event.timestamp == 0.0
    assert b"e-" not in orjson.dumps(event.to_json())


def test_a_ubi_tiny_timestamp_is_stored_as_zero():
    event = one_ubi(ubi_doc(timestamp="1970-01-01T00:00:00.000001Z"))
    assert event.timestamp == 0.0
    assert b"e-" not in orjson.dumps(event.to_json())


def test_the_stored_event_round_trips():
    event = one_event(timestamp="1970-01-01T00:00:00.000001Z")
    assert FeedbackEvent.from_json(orjson.loads(orjson.dumps(event.to_json()))) == event


# --- UBI positions that ltrr-events could not store ---


@pytest.mark.parametrize("ordinal", [2**63 - 1, 2**64 - 1, 2**31, -1, 3.0])
def test_a_ubi_ordinal_that_cannot_be_stored_is_learned_without_a_position(ordinal):
    attributes = {"object": {"object_id": "doc-7"}, "position": {"ordinal": ordinal}}
    event = one_ubi(ubi_doc(event_attributes=attributes))
    assert event.position is None
    assert event.object_id == "doc-7"


def test_a_ubi_ordinal_at_max_int_is_kept():
    attributes = {"object": {"object_id": "doc-7"}, "position": {"ordinal": 2**31 - 1}}
    assert one_ubi(ubi_doc(event_attributes=attributes)).position == 2**31 - 1


def test_a_huge_ordinal_in_the_raw_json_is_learned_without_a_position():
    raw = orjson.dumps(ubi_doc()).replace(b'"ordinal":3', b'"ordinal":9223372036854775807')
    assert b"9223372036854775807" in raw
    (event,) = ubi_events("POST", "/ubi_events/_doc", raw, now=NOW).events
    assert event.position is None
