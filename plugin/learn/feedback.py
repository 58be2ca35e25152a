"""Feedback events from the two intake paths, parsed into one normalised form.

Pure functions (the clock is passed in as ``now``) so that every rule here is tested without a
network. Our own ``/_ltrr/feedback`` API is strict: a client that sends something we cannot learn
from gets a precise 400. UBI writes are the opposite: they belong to OpenSearch and are forwarded
unchanged, so nothing here may raise on them; what cannot be learned from is only counted.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TypeVar
from urllib.parse import unquote

import orjson

from ltrr.plugin.errors import BadRequest, LtrrError

UBI_INDEX = "ubi_events"

# What ``ltrr-events`` accepts, checked at intake: an event acknowledged must be storable.
MAX_ID_BYTES = 512  # OpenSearch's cap on an ``_id`` (UTF-8 bytes); decision ids share it.
MAX_TYPE_CHARS = 64
MAX_POSITION = 2**31 - 1  # ``position`` is an ``integer`` field
# Year 9999: later dates do not fit a ``date`` field, and are a unit mistake anyway.
MAX_EPOCH_MILLIS = 253_402_300_799_999
MAX_TIMESTAMP_CHARS = 64
EVENT_KEYS = frozenset({"type", "object_id", "position", "value", "timestamp", "id"})
SOURCES = frozenset({"api", "ubi"})
BULK_ACTIONS = frozenset({"index", "create", "update", "delete"})

T = TypeVar("T")
_Reader = Callable[[object], T | None]


@dataclass(frozen=True, slots=True)
class FeedbackEvent:
    event_id: str
    decision_id: str
    type: str
    object_id: str
    position: int | None
    value: float | None
    timestamp: float
    source: str

    def to_json(self) -> dict[str, object]:
        return {
            "event_id": self.event_id,
            "decision_id": self.decision_id,
            "type": self.type,
            "object_id": self.object_id,
            "position": self.position,
            "value": self.value,
            "timestamp": self.timestamp,
            "source": self.source,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, object]) -> FeedbackEvent:
        """Checks types, because the durable log outlives the code that wrote it."""
        source = _stored_text(data, "source")
        if source not in SOURCES:
            raise ValueError(f"feedback event source must be one of {sorted(SOURCES)}: {source!r}")
        position = data.get("position")
        if position is not None and (type(position) is not int or position < 1):
            raise ValueError(f"feedback event position must be a positive integer: {position!r}")
        value = data.get("value")
        if value is not None and _number(value) is None:
            raise ValueError(f"feedback event value must be a finite number: {value!r}")
        timestamp = _number(data.get("timestamp"))
        if timestamp is None:
            raise ValueError(
                f"feedback event timestamp must be a number: {data.get('timestamp')!r}"
            )
        return cls(
            event_id=_stored_text(data, "event_id"),
            decision_id=_stored_text(data, "decision_id"),
            type=_stored_text(data, "type"),
            object_id=_stored_text(data, "object_id"),
            position=position,
            value=_number(value),
            timestamp=timestamp,
            source=source,
        )


@dataclass(frozen=True, slots=True)
class UbiExtract:
    """``items[i]`` is the bulk item (counted as OpenSearch numbers its answer's ``items``)
    that ``events[i]`` came from; None for a single-document write."""

    events: list[FeedbackEvent]
    skipped: dict[str, int]
    items: list[int | None] = field(default_factory=list)

    def stored(self, answer: bytes) -> UbiExtract:
        """Only the events OpenSearch stored, from its answer to the write; the rest are
        counted as refused. A single document is stored when the write succeeded at all."""
        kept = stored_items(answer) if any(i is not None for i in self.items) else None
        events: list[FeedbackEvent] = []
        items: list[int | None] = []
        skipped = dict(self.skipped)
        for event, item in zip(self.events, self.items, strict=True):
            if item is None or (kept is not None and item in kept):
                events.append(event)
                items.append(item)
            else:
                skipped["refused by OpenSearch"] = skipped.get("refused by OpenSearch", 0) + 1
        return UbiExtract(events, skipped, items)


def stored_items(answer: bytes) -> frozenset[int]:
    """The bulk items OpenSearch answered with a 2xx; none when the answer does not say
    (a ``filter_path`` that drops ``items``, say), since learning must not guess."""
    try:
        parsed = orjson.loads(answer)
    except orjson.JSONDecodeError:
        return frozenset()
    items = parsed.get("items") if isinstance(parsed, dict) else None
    if not isinstance(items, list):
        return frozenset()
    stored = set()
    for number, item in enumerate(items):
        result = next(iter(item.values()), None) if isinstance(item, dict) and item else None
        status = result.get("status") if isinstance(result, dict) else None
        if type(status) is int and 200 <= status < 300:
            stored.add(number)
    return frozenset(stored)


def _hash_id(
    decision_id: str,
    type_: str,
    object_id: str,
    position: int | None,
    value: float | None,
    timestamp: float,
) -> str:
    """Derived from the content so that a client resending the same event is deduplicated."""
    key = orjson.dumps([decision_id, type_, object_id, position, value, timestamp])
    return hashlib.sha1(key, usedforsecurity=False).hexdigest()[:32]


# --- shared field rules: None means "not usable", each intake path reports it its own way ---


def _text(value: object, max_chars: int) -> str | None:
    if not isinstance(value, str) or not value.strip() or len(value) > max_chars:
        return None
    return value


def id_text(value: object) -> str | None:
    """An id OpenSearch stores: its cap is in bytes, so 300 accented letters are too long."""
    if not isinstance(value, str) or not value.strip():
        return None
    try:
        size = len(value.encode("utf-8"))
    except UnicodeEncodeError:  # a lone surrogate, which no index can store
        return None
    return value if size <= MAX_ID_BYTES else None


def stored_seconds(seconds: float) -> float:
    """Milliseconds, the date field's precision; tinier fractions print as ``1e-06``, which
    the ``epoch_second`` format refuses."""
    return round(seconds, 3)


def _object_id(value: object) -> str | None:
    """OpenSearch ids are strings, but clients often send numeric ones as JSON numbers."""
    if isinstance(value, bool):
        return None
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        value = int(value)
    if isinstance(value, int | float):
        value = str(value)
    return id_text(value)


def _number(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def _timestamp(value: object) -> float | None:
    """Epoch seconds from an ISO 8601 string (naive means UTC) or from epoch milliseconds."""
    if isinstance(value, str):
        if len(value) > MAX_TIMESTAMP_CHARS:
            return None
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            return None
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=UTC)
        seconds = parsed.timestamp()
        return stored_seconds(seconds) if 0 <= seconds <= MAX_EPOCH_MILLIS / 1000 else None
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    if not math.isfinite(value) or not 0 <= value <= MAX_EPOCH_MILLIS:
        return None
    return stored_seconds(value / 1000)


def _show(value: object) -> str:
    try:
        shown = orjson.dumps(value).decode()
    except TypeError:
        shown = repr(value)
    return shown if len(shown) <= 80 else shown[:77] + "..."


def _stored_text(data: Mapping[str, object], name: str) -> str:
    value = data.get(name)
    if not isinstance(value, str) or not value:
        raise ValueError(f"feedback event {name} must be a non-empty string: {value!r}")
    return value


# --- our own API ---


def _invalid(reason: str) -> BadRequest:
    return BadRequest(reason, error_type="illegal_argument_exception")


def parse_feedback(
    body: bytes, *, now: float, max_events: int = 1000
) -> tuple[str, list[FeedbackEvent]]:
    """Strict, so that a client bug shows up as a 400 naming the field, not as silent noise."""
    if not body.strip():
        raise BadRequest("request body is required")
    try:
        parsed = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise BadRequest(f"request body is not valid JSON: {exc}") from None
    if not isinstance(parsed, dict):
        raise BadRequest(f"request body must be a JSON object, got {_show(parsed)}")
    if "decision_id" not in parsed:
        raise _invalid("decision_id is required")
    decision_id = id_text(parsed["decision_id"])
    if decision_id is None:
        raise _invalid(
            f"decision_id must be a non-empty string of at most {MAX_ID_BYTES} bytes, "
            f"got {_show(parsed['decision_id'])}"
        )
    if "events" not in parsed:
        raise _invalid("events is required")
    raw_events = parsed["events"]
    if not isinstance(raw_events, list) or not raw_events:
        raise _invalid(f"events must be a non-empty list, got {_show(raw_events)}")
    if len(raw_events) > max_events:
        raise _invalid(f"events must have at most {max_events} entries, got {len(raw_events)}")
    events = [
        _api_event(raw, f"events[{index}]", decision_id, now)
        for index, raw in enumerate(raw_events)
    ]
    return decision_id, events


def _position(value: object) -> int | None:
    return value if type(value) is int and 1 <= value <= MAX_POSITION else None


def _type_text(value: object) -> str | None:
    return _text(value, MAX_TYPE_CHARS)


def _required(raw: Mapping[str, object], key: str, read: _Reader[T], where: str, rule: str) -> T:
    """A key the caller checked is present, read, or a 400 saying what it must be."""
    value = read(raw[key])
    if value is None:
        raise _invalid(f"{where}.{key} must be {rule}, got {_show(raw[key])}")
    return value


def _optional(
    raw: Mapping[str, object], key: str, read: _Reader[T], where: str, rule: str
) -> T | None:
    if raw.get(key) is None:
        return None
    value = read(raw[key])
    if value is None:
        raise _invalid(f"{where}.{key} must be {rule}, got {_show(raw[key])}")
    return value


def _api_event(raw: object, where: str, decision_id: str, now: float) -> FeedbackEvent:
    if not isinstance(raw, dict):
        raise _invalid(f"{where} must be an object, got {_show(raw)}")
    unknown = sorted(set(raw) - EVENT_KEYS)
    if unknown:
        raise _invalid(
            f"{where} has unknown keys {', '.join(unknown)} "
            f"(allowed: {', '.join(sorted(EVENT_KEYS))})"
        )
    for required in ("type", "object_id"):
        if required not in raw:
            raise _invalid(f"{where}.{required} is required")
    type_ = _required(
        raw,
        "type",
        _type_text,
        where,
        f"a non-empty string of at most {MAX_TYPE_CHARS} characters",
    )
    object_id = _required(
        raw,
        "object_id",
        _object_id,
        where,
        f"a non-empty string or a number, of at most {MAX_ID_BYTES} bytes",
    )
    position = _optional(
        raw, "position", _position, where, f"a positive integer of at most {MAX_POSITION}"
    )
    value = _optional(raw, "value", _number, where, "a finite number")
    timestamp = _optional(
        raw,
        "timestamp",
        _timestamp,
        where,
        "an ISO 8601 string or epoch milliseconds (>= 0, before year 10000)",
    )
    if timestamp is None:
        timestamp = stored_seconds(now)
    client_id = _optional(
        raw, "id", id_text, where, f"a non-empty string of at most {MAX_ID_BYTES} bytes"
    )
    fields = (decision_id, type_, object_id, position, value, timestamp)
    return FeedbackEvent(client_id or _hash_id(*fields), *fields, source="api")


# --- UBI compatibility ---


@dataclass(frozen=True, slots=True)
class _Route:
    bulk: bool
    index: str | None  # the URL's index: the target of a single document, a bulk's default
    doc_id: str | None


def _route(method: str, path: str) -> _Route | None:
    method = method.upper()
    if method not in ("POST", "PUT"):
        return None
    path = path.split("?", 1)[0].split("#", 1)[0]
    parts = path.strip("/").split("/")
    if parts == ["_bulk"]:
        return _Route(bulk=True, index=None, doc_id=None)
    if len(parts) == 2 and parts[1] == "_bulk" and parts[0] and not parts[0].startswith("_"):
        return _Route(bulk=True, index=parts[0], doc_id=None)
    if not parts or parts[0] != UBI_INDEX:
        return None
    if parts[1:] == ["_doc"]:
        return _Route(bulk=False, index=UBI_INDEX, doc_id=None)
    if len(parts) == 3 and parts[1] in ("_doc", "_create") and parts[2]:
        return _Route(bulk=False, index=UBI_INDEX, doc_id=unquote(parts[2]))
    return None


def is_ubi_write(method: str, path: str) -> bool:
    """Any bulk counts: its lines may name ``ubi_events`` whatever the URL says."""
    return _route(method, path) is not None


def may_carry_ubi(method: str, path: str, body: bytes) -> bool:
    """Whether the write can hold a UBI event at all (an ingestion bulk is a byte scan away
    from no): only then is OpenSearch's answer kept and read."""
    route = _route(method, path)
    if route is None:
        return False
    return not route.bulk or route.index == UBI_INDEX or UBI_INDEX.encode() in body


class _MalformedBulk(LtrrError):
    """OpenSearch rejects the whole bulk for this, so none of its documents will be stored."""


@dataclass(frozen=True, slots=True)
class _Doc:
    doc_id: str | None
    source: bytes


def ubi_events(method: str, path: str, body: bytes, *, now: float) -> UbiExtract:
    """Counts rather than raises: the write goes to OpenSearch unchanged whatever we think."""
    route = _route(method, path)
    extract = UbiExtract([], {}, [])
    if route is None:
        return extract
    items: list[tuple[int | None, _Doc | str]]
    if route.bulk and route.index != UBI_INDEX and UBI_INDEX.encode() not in body:
        return extract  # an ingestion bulk: a byte scan, not a parse
    if route.bulk:
        try:
            items = list(enumerate(_bulk_items(body, route.index)))
        except _MalformedBulk:
            return UbiExtract([], {"malformed bulk": 1}, [])
    else:
        items = [(None, _Doc(route.doc_id, body))]
    for number, item in items:
        outcome = _ubi_event(item, now) if isinstance(item, _Doc) else item
        if isinstance(outcome, FeedbackEvent):
            extract.events.append(outcome)
            extract.items.append(number)
        else:
            extract.skipped[outcome] = extract.skipped.get(outcome, 0) + 1
    return extract


def _action(line: bytes) -> tuple[str, dict[str, object]]:
    """A bulk action line's action and metadata; OpenSearch refuses the bulk for anything else."""
    try:
        action = orjson.loads(line)
    except orjson.JSONDecodeError:
        raise _MalformedBulk from None
    if not isinstance(action, dict) or len(action) != 1:
        raise _MalformedBulk
    ((name, meta),) = action.items()
    if name not in BULK_ACTIONS or not isinstance(meta, dict):
        raise _MalformedBulk
    return name, meta


def _bulk_item(
    name: str, meta: Mapping[str, object], source: bytes | None, url_index: str | None
) -> _Doc | str:
    index = meta.get("_index")
    if index is None:
        index = url_index
    if index != UBI_INDEX:
        return "other index"
    if name in ("delete", "update"):
        return f"{name} action"
    if source is None:
        return "malformed"  # an action line with no source line: OpenSearch drops it
    doc_id = meta.get("_id")
    if doc_id is None:
        return _Doc(None, source)
    if isinstance(doc_id, int | str) and not isinstance(doc_id, bool):
        return _Doc(str(doc_id), source)
    return "bad _id"


def _bulk_items(body: bytes, url_index: str | None) -> Iterator[_Doc | str]:
    """Each ``ubi_events`` index/create document, or the reason a bulk item is not one.

    Framed as OpenSearch frames it, so that what we learn from is what it stores.
    """
    if body and not body.endswith(b"\n"):
        raise _MalformedBulk  # "The bulk request must be terminated by a newline"
    lines = iter(body.split(b"\n")[:-1])
    for line in lines:
        if not line.strip():
            continue  # OpenSearch skips empty action lines too
        name, meta = _action(line)
        # Read the source line first, whatever the item: it frames the rest of the body.
        source = None if name == "delete" else next(lines, None)
        yield _bulk_item(name, meta, source, url_index)


def _missing(value: object) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def _ubi_rank(attributes: Mapping[str, object]) -> int | None:
    """UBI ordinals are meant to be 1-based, but some clients count from 0."""
    place = attributes.get("position")
    ordinal = place.get("ordinal") if isinstance(place, dict) else None
    if type(ordinal) is not int or not 0 <= ordinal <= MAX_POSITION:
        return None  # learned from without a position, as ``ltrr-events`` could not store it
    return max(ordinal, 1)


class _Skipped(LtrrError):
    """A UBI document we cannot learn from; the reason is counted, never raised further."""


def _ubi_field(value: object, read: _Reader[T], name: str) -> T:
    """The field read, else skip the document as missing it or as having a bad one."""
    parsed = read(value)
    if parsed is None:
        raise _Skipped(f"no {name}" if _missing(value) else f"bad {name}")
    return parsed


def _ubi_object_id(attributes: Mapping[str, object]) -> str:
    target = attributes.get("object")
    raw = target.get("object_id") if isinstance(target, dict) else None
    return _ubi_field(raw, _object_id, "object_id")


def _ubi_source(doc: _Doc) -> dict[str, object]:
    if doc.doc_id is not None and id_text(doc.doc_id) is None:
        raise _Skipped("bad _id")  # OpenSearch refuses it, so it is never stored
    try:
        parsed = orjson.loads(doc.source)
    except orjson.JSONDecodeError:
        raise _Skipped("malformed") from None
    if not isinstance(parsed, dict):
        raise _Skipped("malformed")
    return parsed


def _ubi_event(doc: _Doc, now: float) -> FeedbackEvent | str:
    """The event, or the reason it is skipped."""
    try:
        parsed = _ubi_source(doc)
        decision_id = _ubi_field(parsed.get("query_id"), id_text, "query_id")
        type_ = _ubi_field(parsed.get("action_name"), _type_text, "action_name")
        raw_attributes = parsed.get("event_attributes")
        attributes = raw_attributes if isinstance(raw_attributes, dict) else {}
        object_id = _ubi_object_id(attributes)
    except _Skipped as skipped:
        return str(skipped)
    raw_timestamp = parsed.get("timestamp")
    timestamp = stored_seconds(now) if raw_timestamp is None else _timestamp(raw_timestamp)
    if timestamp is None:
        return "bad timestamp"  # OpenSearch's date mapping rejects it, so it is never stored
    position = _ubi_rank(attributes)
    value = _number(parsed.get("value"))
    fields = (decision_id, type_, object_id, position, value, timestamp)
    return FeedbackEvent(doc.doc_id or _hash_id(*fields), *fields, source="ubi")
