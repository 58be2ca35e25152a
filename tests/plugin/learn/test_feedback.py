from __future__ import annotations

import hashlib
import time

import orjson
import pytest

from ltrr.plugin.errors import BadRequest
from ltrr.plugin.learn.feedback import (
    UBI_INDEX,
    FeedbackEvent,
    UbiExtract,
    is_ubi_write,
    parse_feedback,
    ubi_events,
)

NOW = 1_800_000_000.5
T0 = 1_795_946_400  # 2026-11-29T10:00:00Z, from calendar.timegm
GOOD = {"type": "click", "object_id": "doc-7"}


def body(events, decision_id="dec-1", **extra):
    return orjson.dumps({"decision_id": decision_id, "events": events, **extra})


def one(**fields):
    event = {"type": "click", "object_id": "doc-7", **fields}
    return parse_feedback(body([event]), now=NOW)[1][0]


def nd(*docs):
    return b"".join(orjson.dumps(doc) + b"\n" for doc in docs)


def ubi_doc(**overrides):
    doc = {
        "action_name": "click",
        "query_id": "dec-1",
        "client_id": "client-1",
        "session_id": "session-1",
        "timestamp": "2026-11-29T10:00:00.123Z",
        "message_type": "INFO",
        "message": "clicked",
        "event_attributes": {
            "object": {"object_id": "doc-7", "object_id_field": "_id", "description": "x"},
            "position": {"ordinal": 3},
        },
    }
    doc.update(overrides)
    return doc


# --- parse_feedback: valid bodies ---


def test_valid_body_parses_every_field():
    raw = body(
        [
            {
                "type": "click",
                "object_id": "doc-7",
                "position": 3,
                "value": 1.0,
                "timestamp": "2026-11-29T10:00:00Z",
                "id": "client-evt-1",
            },
            {"type": "play", "object_id": 42, "value": 95, "timestamp": 1_795_946_400_123},
            {"type": "view", "object_id": "doc-9"},
        ]
    )
    decision_id, events = parse_feedback(raw, now=NOW)
    assert decision_id == "dec-1"
    first, second, third = events
    assert first == FeedbackEvent(
        event_id="client-evt-1",
        decision_id="dec-1",
        type="click",
        object_id="doc-7",
        position=3,
        value=1.0,
        timestamp=1_795_946_400.0,
        source="api",
    )
    assert second.object_id == "42"
    assert second.position is None
    assert second.value == 95.0
    assert isinstance(second.value, float)
    assert second.timestamp == 1_795_946_400.123
    assert third.value is None
    assert third.position is None
    assert third.timestamp == NOW  # absent timestamp: the injected clock
    assert len(second.event_id) == 32
    assert all(c in "0123456789abcdef" for c in second.event_id)


@pytest.mark.parametrize(
    ("timestamp", "expected"),
    [
        ("2026-11-29T10:00:00Z", T0),
        ("2026-11-29T10:00:00.250Z", T0 + 0.25),
        ("2026-11-29T11:30:00+01:30", T0),
        ("2026-11-29T05:00:00-05:00", T0),
        ("2026-11-29T10:00:00", T0),  # naive means UTC
        ("2026-11-29T10:00:00.123+0000", 1_795_946_400.123),
        (T0 * 1000, T0),
        (T0 * 1000 + 123, 1_795_946_400.123),
        (0, 0.0),
        (1500.0, 1.5),
        (None, NOW),
    ],
)
def test_timestamps_become_epoch_seconds_exactly(timestamp, expected):
    assert one(timestamp=timestamp).timestamp == expected


@pytest.mark.skipif(not hasattr(time, "tzset"), reason="needs time.tzset")
def test_naive_iso_is_utc_whatever_the_server_zone(monkeypatch):
    monkeypatch.setenv("TZ", "America/New_York")
    time.tzset()
    try:
        assert one(timestamp="2026-11-29T10:00:00").timestamp == T0
    finally:
        monkeypatch.undo()
        time.tzset()


def test_null_optional_fields_mean_absent():
    event = one(position=None, value=None, timestamp=None, id=None)
    assert (event.position, event.value, event.timestamp) == (None, None, NOW)
    assert event.event_id == one().event_id


def test_integral_float_object_id_is_the_same_id_as_the_integer():
    assert one(object_id=7.0).object_id == "7"
    assert one(object_id=7).object_id == "7"
    assert one(object_id=1.5).object_id == "1.5"


def test_max_events_is_inclusive():
    events = [{"type": "click", "object_id": str(i)} for i in range(3)]
    _, parsed = parse_feedback(body(events), now=NOW, max_events=3)
    assert [e.object_id for e in parsed] == ["0", "1", "2"]
    with pytest.raises(BadRequest, match=r"events must have at most 2 entries, got 3"):
        parse_feedback(body(events), now=NOW, max_events=2)


def test_limits_are_inclusive():
    assert one(type="t" * 64).type == "t" * 64
    assert one(object_id="o" * 512).object_id == "o" * 512
    assert one(id="i" * 512).event_id == "i" * 512
    long_decision = "d" * 512
    decision_id, _ = parse_feedback(body([GOOD], decision_id=long_decision), now=NOW)
    assert decision_id == long_decision


# --- parse_feedback: every validation error ---


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"", "request body is required"),
        (b"  \n", "request body is required"),
        (b"{not json", "request body is not valid JSON"),
        (b"[1, 2]", "request body must be a JSON object, got [1,2]"),
        (b'"text"', 'request body must be a JSON object, got "text"'),
        (orjson.dumps({"events": [GOOD]}), "decision_id is required"),
        (body([GOOD], decision_id=""), "decision_id must be a non-empty string of at most 512"),
        (body([GOOD], decision_id="   "), "decision_id must be a non-empty string"),
        (body([GOOD], decision_id=12), "decision_id must be a non-empty string"),
        (body([GOOD], decision_id=None), "decision_id must be a non-empty string"),
        (body([GOOD], decision_id="d" * 513), "decision_id must be a non-empty string"),
        (orjson.dumps({"decision_id": "d"}), "events is required"),
        (body([]), "events must be a non-empty list, got []"),
        (body({"type": "click"}), "events must be a non-empty list"),
        (body(None), "events must be a non-empty list, got null"),
        (body([GOOD, "click"]), 'events[1] must be an object, got "click"'),
        (body([GOOD, GOOD, [1]]), "events[2] must be an object, got [1]"),
        (
            body([{**GOOD, "positon": 3, "extra": 1}]),
            "events[0] has unknown keys extra, positon",
        ),
        (body([{"object_id": "a"}]), "events[0].type is required"),
        (body([{"type": "click"}]), "events[0].object_id is required"),
        (body([{**GOOD, "type": ""}]), "events[0].type must be a non-empty string of at most 64"),
        (body([{**GOOD, "type": 5}]), "events[0].type must be a non-empty string"),
        (body([{**GOOD, "type": None}]), "events[0].type must be a non-empty string"),
        (body([{**GOOD, "type": "t" * 65}]), "events[0].type must be a non-empty string"),
        (body([{**GOOD, "object_id": ""}]), "events[0].object_id must be a non-empty string or"),
        (body([{**GOOD, "object_id": True}]), "events[0].object_id must be"),
        (body([{**GOOD, "object_id": {"id": 1}}]), "events[0].object_id must be"),
        (body([{**GOOD, "object_id": None}]), "events[0].object_id must be"),
        (body([{**GOOD, "object_id": "o" * 513}]), "events[0].object_id must be"),
        (
            body([GOOD, GOOD, {**GOOD, "position": -1}]),
            "events[2].position must be a positive integer of at most 2147483647, got -1",
        ),
        (
            body([{**GOOD, "position": 0}]),
            "events[0].position must be a positive integer of at most 2147483647, got 0",
        ),
        (body([{**GOOD, "position": 2.0}]), "events[0].position must be a positive integer"),
        (body([{**GOOD, "position": True}]), "events[0].position must be a positive integer"),
        (body([{**GOOD, "position": "3"}]), 'of at most 2147483647, got "3"'),
        (body([{**GOOD, "value": "1"}]), 'events[0].value must be a finite number, got "1"'),
        (body([{**GOOD, "value": False}]), "events[0].value must be a finite number, got false"),
        (body([{**GOOD, "value": [1]}]), "events[0].value must be a finite number"),
        (body([{**GOOD, "timestamp": "yesterday"}]), "events[0].timestamp must be an ISO 8601"),
        (body([{**GOOD, "timestamp": -1}]), "events[0].timestamp must be an ISO 8601"),
        (body([{**GOOD, "timestamp": True}]), "events[0].timestamp must be"),
        (body([{**GOOD, "timestamp": {"ms": 1}}]), "events[0].timestamp must be"),
        (body([{**GOOD, "timestamp": 10**15}]), "events[0].timestamp must be"),
        (body([{**GOOD, "timestamp": "1969-12-31T23:59:59Z"}]), "events[0].timestamp must be"),
        (body([{**GOOD, "timestamp": "2026-11-29T10:00:00Z" + " " * 60}]), "timestamp must be"),
        (body([{**GOOD, "id": ""}]), "events[0].id must be a non-empty string of at most 512"),
        (body([{**GOOD, "id": 17}]), "events[0].id must be a non-empty string"),
        (body([{**GOOD, "id": "i" * 513}]), "events[0].id must be a non-empty string"),
    ],
)
def test_validation_errors_name_the_field(raw, reason):
    with pytest.raises(BadRequest) as caught:
        parse_feedback(raw, now=NOW)
    assert reason in caught.value.reason
    assert caught.value.status == 400


def test_field_errors_are_illegal_argument_and_json_errors_parse_exceptions():
    with pytest.raises(BadRequest) as bad_json:
        parse_feedback(b"{", now=NOW)
    assert bad_json.value.error_type == "parse_exception"
    with pytest.raises(BadRequest) as bad_field:
        parse_feedback(body([{**GOOD, "position": -1}]), now=NOW)
    assert bad_field.value.error_type == "illegal_argument_exception"
    assert bad_field.value.body()["error"]["reason"] == (
        "events[0].position must be a positive integer of at most 2147483647, got -1"
    )


def test_long_bad_values_are_shortened_in_the_reason():
    with pytest.raises(BadRequest) as caught:
        parse_feedback(body([{**GOOD, "value": "x" * 1000}]), now=NOW)
    assert caught.value.reason.endswith("...")
    assert len(caught.value.reason) < 200


def test_type_is_not_checked_against_a_catalog():
    assert one(type="anything-goes").type == "anything-goes"


# --- deterministic ids ---


def test_identical_events_get_the_same_id_across_requests():
    first = one(position=3, value=2.5, timestamp="2026-11-29T10:00:00Z")
    again = one(position=3, value=2.5, timestamp=T0 * 1000)  # same instant, other spelling
    assert first.event_id == again.event_id
    assert len(first.event_id) == 32


def test_the_id_is_a_sha1_prefix_of_the_fields():
    event = one(position=3, value=2.5, timestamp=T0 * 1000)
    key = orjson.dumps(["dec-1", "click", "doc-7", 3, 2.5, float(T0)])
    assert event.event_id == hashlib.sha1(key, usedforsecurity=False).hexdigest()[:32]


@pytest.mark.parametrize(
    "change",
    [
        {"type": "play"},
        {"object_id": "doc-8"},
        {"position": 4},
        {"position": None},
        {"value": 2.6},
        {"value": None},
        {"timestamp": T0 * 1000 + 1},
    ],
)
def test_any_changed_field_changes_the_id(change):
    base = {"position": 3, "value": 2.5, "timestamp": T0 * 1000}
    assert one(**base).event_id != one(**{**base, **change}).event_id


def test_another_decision_changes_the_id():
    event = {"type": "click", "object_id": "doc-7", "timestamp": 0}
    _, (a,) = parse_feedback(body([event], decision_id="dec-1"), now=NOW)
    _, (b,) = parse_feedback(body([event], decision_id="dec-2"), now=NOW)
    assert a.event_id != b.event_id


def test_integer_and_float_value_hash_alike():
    assert one(value=2, timestamp=0).event_id == one(value=2.0, timestamp=0).event_id


def test_client_id_wins_over_the_hash():
    with_id = one(id="evt-1", timestamp=0)
    assert with_id.event_id == "evt-1"
    assert one(timestamp=0).event_id != "evt-1"


def test_duplicates_in_one_batch_share_an_id_and_are_kept():
    _, events = parse_feedback(body([{**GOOD, "timestamp": 0}] * 2), now=NOW)
    assert len(events) == 2
    assert events[0].event_id == events[1].event_id


# --- to_json / from_json ---


def test_to_json_from_json_round_trip_through_bytes():
    for event in (
        one(position=3, value=1.5, id="e"),
        one(),
        *ubi_events("POST", "/ubi_events/_doc", orjson.dumps(ubi_doc()), now=NOW).events,
    ):
        data = event.to_json()
        assert set(data) == {
            "event_id",
            "decision_id",
            "type",
            "object_id",
            "position",
            "value",
            "timestamp",
            "source",
        }
        assert FeedbackEvent.from_json(orjson.loads(orjson.dumps(data))) == event


def test_to_json_is_plain():
    assert one(position=3, value=1.5, id="e", timestamp=0).to_json() == {
        "event_id": "e",
        "decision_id": "dec-1",
        "type": "click",
        "object_id": "doc-7",
        "position": 3,
        "value": 1.5,
        "timestamp": 0.0,
        "source": "api",
    }


def test_from_json_accepts_integer_numbers():
    data = {**one(value=2.0).to_json(), "value": 2, "timestamp": 5}
    event = FeedbackEvent.from_json(data)
    assert (event.value, event.timestamp) == (2.0, 5.0)
    assert isinstance(event.value, float)
    assert isinstance(event.timestamp, float)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"source": "web"}, "source"),
        ({"event_id": ""}, "event_id"),
        ({"decision_id": None}, "decision_id"),
        ({"type": 3}, "type"),
        ({"object_id": 7}, "object_id"),
        ({"position": 0}, "position"),
        ({"position": True}, "position"),
        ({"value": "1"}, "value"),
        ({"timestamp": None}, "timestamp"),
    ],
)
def test_from_json_rejects_a_corrupt_record(change, message):
    with pytest.raises(ValueError, match=message):
        FeedbackEvent.from_json({**one().to_json(), **change})


def test_from_json_rejects_a_missing_field():
    data = one().to_json()
    del data["object_id"]
    with pytest.raises(ValueError, match="object_id"):
        FeedbackEvent.from_json(data)


# --- is_ubi_write ---


@pytest.mark.parametrize(
    ("method", "path", "expected"),
    [
        ("POST", "/ubi_events/_doc", True),
        ("post", "/ubi_events/_doc", True),
        ("PUT", "/ubi_events/_doc", True),
        ("PUT", "/ubi_events/_doc/abc", True),
        ("POST", "/ubi_events/_doc/abc", True),
        ("POST", "/ubi_events/_doc/abc?refresh=true", True),
        ("POST", "/ubi_events/_doc/?refresh=wait_for", True),
        ("PUT", "/ubi_events/_create/abc", True),
        ("POST", "/ubi_events/_create/abc", True),
        ("POST", "/ubi_events/_bulk", True),
        ("POST", "/_bulk", True),
        ("POST", "/_bulk?refresh=true", True),
        ("PUT", "/_bulk", True),
        ("POST", "/other/_bulk", True),  # its lines may still name ubi_events
        ("GET", "/ubi_events/_search", False),
        ("POST", "/ubi_events/_search", False),
        ("GET", "/ubi_events/_doc/abc", False),
        ("DELETE", "/ubi_events/_doc/abc", False),
        ("HEAD", "/ubi_events/_doc/abc", False),
        ("GET", "/_bulk", False),
        ("POST", "/other/_doc", False),
        ("PUT", "/other/_doc/abc", False),
        ("POST", "/ubi_queries/_doc", False),
        ("POST", "/ubi_events_old/_doc", False),
        ("POST", "/ubi_events/_update/abc", False),
        ("POST", "/ubi_events/_create", False),  # a create needs an id
        ("POST", "/ubi_events/_doc/a/b", False),
        ("PUT", "/ubi_events", False),
        ("POST", "/_ltrr/feedback", False),
        ("POST", "/", False),
        ("POST", "", False),
    ],
)
def test_is_ubi_write(method, path, expected):
    assert is_ubi_write(method, path) is expected


# --- ubi_events: single documents ---


def test_single_doc_becomes_an_event():
    extract = ubi_events("POST", "/ubi_events/_doc", orjson.dumps(ubi_doc()), now=NOW)
    assert extract.skipped == {}
    (event,) = extract.events
    assert event.decision_id == "dec-1"
    assert event.type == "click"
    assert event.object_id == "doc-7"
    assert event.position == 3
    assert event.value is None
    assert event.timestamp == 1_795_946_400.123
    assert event.source == "ubi"
    assert len(event.event_id) == 32


def test_single_doc_without_id_hashes_like_the_api():
    doc = ubi_doc(timestamp=T0 * 1000, value=4)
    (event,) = ubi_events("POST", "/ubi_events/_doc", orjson.dumps(doc), now=NOW).events
    api = one(position=3, value=4, timestamp=T0 * 1000)
    assert event.value == 4.0
    assert event.event_id == api.event_id


def test_doc_id_from_the_path_is_the_event_id():
    path = "/ubi_events/_doc/evt-9?refresh=true"
    (event,) = ubi_events("PUT", path, orjson.dumps(ubi_doc()), now=NOW).events
    assert event.event_id == "evt-9"


def test_create_id_from_the_path_is_the_event_id():
    (event,) = ubi_events(
        "PUT", "/ubi_events/_create/evt-10", orjson.dumps(ubi_doc()), now=NOW
    ).events
    assert event.event_id == "evt-10"
    assert event.object_id == "doc-7"


def test_escaped_path_id_is_decoded():
    (event,) = ubi_events("PUT", "/ubi_events/_doc/a%20b", orjson.dumps(ubi_doc()), now=NOW).events
    assert event.event_id == "a b"


@pytest.mark.parametrize(
    ("ordinal", "rank"),
    [(0, 1), (1, 1), (3, 3), (-1, None), (2.0, None), ("3", None), (True, None), (None, None)],
)
def test_ubi_ordinal_is_a_one_based_rank(ordinal, rank):
    doc = ubi_doc(event_attributes={"object": {"object_id": "d"}, "position": {"ordinal": ordinal}})
    (event,) = ubi_events("POST", "/ubi_events/_doc", orjson.dumps(doc), now=NOW).events
    assert event.position == rank


def test_ubi_without_position_or_timestamp():
    doc = ubi_doc(event_attributes={"object": {"object_id": 12}})
    del doc["timestamp"]
    (event,) = ubi_events("POST", "/ubi_events/_doc", orjson.dumps(doc), now=NOW).events
    assert (event.object_id, event.position, event.timestamp) == ("12", None, NOW)


@pytest.mark.parametrize(
    ("doc", "reason"),
    [
        (ubi_doc(query_id=None), "no query_id"),
        ({k: v for k, v in ubi_doc().items() if k != "query_id"}, "no query_id"),
        (ubi_doc(query_id=""), "no query_id"),
        (ubi_doc(query_id=5), "bad query_id"),
        (ubi_doc(query_id="q" * 513), "bad query_id"),
        (ubi_doc(action_name=None), "no action_name"),
        (ubi_doc(action_name="a" * 65), "bad action_name"),
        (ubi_doc(event_attributes=None), "no object_id"),
        (ubi_doc(event_attributes="x"), "no object_id"),
        (ubi_doc(event_attributes={"object": "doc-7"}), "no object_id"),
        (ubi_doc(event_attributes={"object": {"description": "x"}}), "no object_id"),
        (ubi_doc(event_attributes={"object": {"object_id": ""}}), "no object_id"),
        (ubi_doc(event_attributes={"object": {"object_id": [1]}}), "bad object_id"),
        (ubi_doc(timestamp="last tuesday"), "bad timestamp"),
        (ubi_doc(timestamp=-5), "bad timestamp"),
        ([ubi_doc()], "malformed"),
        ("click", "malformed"),
    ],
)
def test_unusable_ubi_docs_are_counted_not_raised(doc, reason):
    extract = ubi_events("POST", "/ubi_events/_doc", orjson.dumps(doc), now=NOW)
    assert extract == UbiExtract(events=[], skipped={reason: 1})


@pytest.mark.parametrize("raw", [b"", b"{not json", b"\xff\xfe", b"null"])
def test_unparseable_single_doc_is_malformed(raw):
    assert ubi_events("POST", "/ubi_events/_doc", raw, now=NOW).skipped == {"malformed": 1}


def test_non_numeric_value_is_ignored_not_skipped():
    (event,) = ubi_events(
        "POST", "/ubi_events/_doc", orjson.dumps(ubi_doc(value="12")), now=NOW
    ).events
    assert event.value is None


def test_not_a_ubi_write_extracts_nothing():
    raw = orjson.dumps(ubi_doc())
    assert ubi_events("POST", "/other/_doc", raw, now=NOW) == UbiExtract([], {})
    assert ubi_events("GET", "/ubi_events/_search", raw, now=NOW) == UbiExtract([], {})


# --- ubi_events: bulk ---


def test_bulk_mixing_indices_actions_and_a_malformed_line():
    raw = (
        nd(
            {"index": {"_index": UBI_INDEX, "_id": "e1"}},
            ubi_doc(),
            {"index": {"_index": "music", "_id": "m1"}},
            ubi_doc(),  # looks like UBI but goes to another index
            {"delete": {"_index": UBI_INDEX, "_id": "old"}},  # no source line
            {"create": {"_index": UBI_INDEX}},
            ubi_doc(action_name="add_to_cart", timestamp=T0 * 1000),
            {"update": {"_index": UBI_INDEX, "_id": "e1"}},
            {"doc": {"action_name": "click", "query_id": "dec-1"}},
            {"create": {"_index": UBI_INDEX, "_id": "e3"}},
        )
        + b'{"action_name": "click", broken\n'
        + nd(
            {"delete": {"_index": "music", "_id": "m2"}},
            {"index": {"_index": UBI_INDEX, "_id": "e4"}},
            ubi_doc(query_id=None),
            {"index": {"_index": UBI_INDEX, "_id": 5}},
            ubi_doc(event_attributes={"object": {"object_id": "doc-9"}}),
        )
    )
    extract = ubi_events("POST", "/_bulk?refresh=true", raw, now=NOW)
    assert [(e.event_id, e.type, e.object_id, e.position) for e in extract.events] == [
        ("e1", "click", "doc-7", 3),
        (extract.events[1].event_id, "add_to_cart", "doc-7", 3),
        ("5", "click", "doc-9", None),
    ]
    assert len(extract.events[1].event_id) == 32
    assert extract.events[1].timestamp == T0
    assert extract.skipped == {
        "other index": 2,
        "delete action": 1,
        "update action": 1,
        "malformed": 1,
        "no query_id": 1,
    }


def test_index_bulk_uses_the_url_index_unless_a_line_names_another():
    raw = nd(
        {"index": {"_id": "e1"}},
        ubi_doc(),
        {"create": {}},
        ubi_doc(action_name="purchase"),
        {"index": {"_index": "music"}},
        ubi_doc(),
    )
    extract = ubi_events("POST", "/ubi_events/_bulk", raw, now=NOW)
    first, second = extract.events
    assert (first.event_id, first.type) == ("e1", "click")
    assert second.type == "purchase"
    assert len(second.event_id) == 32
    assert extract.skipped == {"other index": 1}


def test_other_index_bulk_can_still_carry_ubi_lines():
    raw = nd({"index": {}}, ubi_doc(), {"index": {"_index": UBI_INDEX, "_id": "u"}}, ubi_doc())
    extract = ubi_events("POST", "/music/_bulk", raw, now=NOW)
    assert [e.event_id for e in extract.events] == ["u"]
    assert extract.skipped == {"other index": 1}


def test_bulk_without_index_anywhere_is_skipped():
    raw = nd({"index": {}}, ubi_doc(), {"index": {"_index": UBI_INDEX}}, ubi_doc())
    extract = ubi_events("POST", "/_bulk", raw, now=NOW)
    assert extract.skipped == {"other index": 1}
    assert len(extract.events) == 1


def test_bulk_tolerates_crlf_and_blank_action_lines():
    raw = (
        b"\r\n"
        + orjson.dumps({"index": {"_index": UBI_INDEX, "_id": "a"}})
        + b"\r\n"
        + orjson.dumps(ubi_doc())
        + b"\r\n  \n\n"
        + orjson.dumps({"index": {"_index": UBI_INDEX, "_id": "b"}})
        + b"\n"
        + orjson.dumps(ubi_doc())
        + b"\n"
    )
    extract = ubi_events("POST", "/_bulk", raw, now=NOW)
    assert [e.event_id for e in extract.events] == ["a", "b"]
    assert extract.skipped == {}


def test_trailing_action_without_source_is_one_malformed_item():
    raw = nd({"index": {"_index": UBI_INDEX, "_id": "a"}}, ubi_doc(), {"create": {}})
    extract = ubi_events("POST", "/ubi_events/_bulk", raw, now=NOW)
    assert [e.event_id for e in extract.events] == ["a"]
    assert extract.skipped == {"malformed": 1}


def test_null_meta_index_falls_back_to_the_url_index():
    raw = nd({"index": {"_index": None, "_id": None}}, ubi_doc())
    (event,) = ubi_events("POST", "/ubi_events/_bulk", raw, now=NOW).events
    assert len(event.event_id) == 32
    assert ubi_events("POST", "/other/_bulk", raw, now=NOW) == UbiExtract([], {})


def test_empty_bulk_extracts_nothing():
    assert ubi_events("POST", "/_bulk", b"", now=NOW) == UbiExtract([], {})
    assert ubi_events("POST", "/_bulk", b"\n\n", now=NOW) == UbiExtract([], {})


def test_empty_source_line_is_malformed_not_the_next_action():
    raw = (
        orjson.dumps({"index": {"_index": UBI_INDEX, "_id": "a"}})
        + b"\n\n"
        + nd({"index": {"_index": UBI_INDEX, "_id": "b"}}, ubi_doc())
    )
    extract = ubi_events("POST", "/_bulk", raw, now=NOW)
    assert [e.event_id for e in extract.events] == ["b"]
    assert extract.skipped == {"malformed": 1}


@pytest.mark.parametrize(
    "raw",
    [
        b"not json\n" + nd(ubi_doc()),
        nd({"index": {"_index": UBI_INDEX}}, ubi_doc(), {"upsert": {}}, ubi_doc()),
        nd({"index": {"_index": UBI_INDEX}, "create": {}}, ubi_doc()),
        nd(["index"], ubi_doc()),
        nd({"index": None}, ubi_doc()),
        nd({"index": {"_index": UBI_INDEX}}, ubi_doc())[:-1],  # no final newline
        nd({"index": {"_index": UBI_INDEX}}, ubi_doc()) + b"  ",
    ],
)
def test_a_bulk_opensearch_rejects_whole_teaches_nothing(raw):
    extract = ubi_events("POST", "/ubi_events/_bulk", raw, now=NOW)
    assert extract == UbiExtract([], {"malformed bulk": 1})


def test_an_ingestion_bulk_that_never_names_ubi_events_is_not_parsed():
    raw = b"not json at all\n" + nd({"index": {"_index": "music"}}, {"name": "x"})
    assert ubi_events("POST", "/_bulk", raw, now=NOW) == UbiExtract([], {})


def test_bulk_with_a_bad_meta_id_is_skipped():
    raw = nd(
        {"index": {"_index": UBI_INDEX, "_id": {"x": 1}}},
        ubi_doc(),
        {"index": {"_index": UBI_INDEX, "_id": ""}},
        ubi_doc(),
    )
    assert ubi_events("POST", "/_bulk", raw, now=NOW).skipped == {"bad _id": 2}


def test_ubi_extraction_never_raises_on_junk():
    junk = [b"\x00\x01", b"\n\n\n", b"{}\n{}\n", b"[]", b"\xff" * 10, b'{"index":{}}']
    for raw in junk:
        for method, path in [("POST", "/_bulk"), ("POST", "/ubi_events/_doc")]:
            extract = ubi_events(method, path, raw, now=NOW)
            assert extract.events == []
