"""``write``: each action stored, refused for good or to retry, and a refused request bisected."""

from __future__ import annotations

import asyncio

import orjson
import pytest

from ltrr.plugin.learn.bulk import BulkRefused, Written, bulk, write
from ltrr.plugin.runtime.upstream import UpstreamError, UpstreamReply

INDEX = "ltrr-events"
MAPPER_ERROR = {"type": "mapper_parsing_exception", "reason": "failed to parse field [n]"}
BUSY_ERROR = {"type": "es_rejected_execution_exception", "reason": "queue full"}


class FakeBulk:
    """Answers ``_bulk`` as OpenSearch would, by a rule on each document:

    - an ``_id`` over 512 bytes refuses the whole request (400, like OpenSearch's
      ``action_request_validation_exception``);
    - ``"bad": true`` is a 400 item with a mapper error;
    - ``"busy": true`` is a 429 item;
    - anything else is stored (201).

    ``whole`` forces the whole request's status instead (a 500 or a 429, say).
    """

    def __init__(self, whole=None):
        self.whole = whole
        self.requests = []  # the _ids of each request, in order

    async def request(self, method, path, *, headers, body, timeout):
        assert (method, path) == ("POST", "/_bulk")
        assert headers == {"Content-Type": "application/x-ndjson"}
        assert body.endswith(b"\n")
        lines = body.split(b"\n")[:-1]
        assert len(lines) % 2 == 0, "every action here has a source line"
        pairs = [
            (orjson.loads(a), orjson.loads(s)) for a, s in zip(lines[::2], lines[1::2], strict=True)
        ]
        self.requests.append([action["index"]["_id"] for action, _ in pairs])
        if self.whole is not None:
            return UpstreamReply(self.whole, b'{"error": "whole request", "status": 0}')
        if any(len(action["index"]["_id"].encode()) > 512 for action, _ in pairs):
            error = {
                "type": "action_request_validation_exception",
                "reason": "Validation Failed: 1: id is too long",
            }
            return UpstreamReply(
                400, orjson.dumps({"error": {"root_cause": [error], **error}, "status": 400})
            )
        items = []
        for action, source in pairs:
            meta = action["index"]
            result = {"_index": meta["_index"], "_id": meta["_id"]}
            if source.get("bad"):
                result.update(status=400, error=MAPPER_ERROR)
            elif source.get("busy"):
                result.update(status=429, error=BUSY_ERROR)
            else:
                result.update(status=201, result="created")
            items.append({"index": result})
        errors = any(item["index"]["status"] >= 300 for item in items)
        return UpstreamReply(200, orjson.dumps({"took": 1, "errors": errors, "items": items}))


def action(doc_id, **source):
    return ({"index": {"_index": INDEX, "_id": doc_id}}, {"n": 1, **source})


def run(coro):
    return asyncio.run(coro)


# --- item by item ---


def test_all_stored():
    fake = FakeBulk()
    actions = [action(f"d{i}") for i in range(4)]
    assert run(write(fake, actions)) == Written((0, 1, 2, 3), (), ())
    assert fake.requests == [["d0", "d1", "d2", "d3"]]


def test_nothing_to_write_sends_nothing():
    fake = FakeBulk()
    assert run(write(fake, [])) == Written((), (), ())
    assert fake.requests == []


def test_mixed_items_land_at_their_positions():
    fake = FakeBulk()
    actions = [
        action("a"),  # 0 stored
        action("b", bad=True),  # 1 refused
        action("c", busy=True),  # 2 retry
        action("d"),  # 3 stored
        action("e", busy=True),  # 4 retry
        action("f", bad=True),  # 5 refused
        action("g"),  # 6 stored
    ]
    written = run(write(fake, actions))
    assert written.stored == (0, 3, 6)
    assert written.refused == ((1, MAPPER_ERROR), (5, MAPPER_ERROR))
    assert written.retry == (2, 4)
    assert len(fake.requests) == 1  # item errors are no reason to split


def test_an_item_refused_without_an_error_object_keeps_its_status():
    class NoError:
        async def request(self, method, path, *, headers, body, timeout):
            items = [{"index": {"status": 201}}, {"index": {"status": 409}}]
            return UpstreamReply(200, orjson.dumps({"errors": True, "items": items}))

    written = run(write(NoError(), [action("a"), action("b")]))
    assert written == Written((0,), ((1, {"status": 409}),), ())


@pytest.mark.parametrize(("status", "kind"), [(500, "retry"), (503, "retry"), (409, "refused")])
def test_item_statuses_other_than_429(status, kind):
    class Answer:
        async def request(self, method, path, *, headers, body, timeout):
            items = [{"create": {"status": status, "error": {"type": "x"}}}]
            return UpstreamReply(200, orjson.dumps({"errors": True, "items": items}))

    written = run(write(Answer(), [action("a")]))
    if kind == "retry":
        assert written == Written((), (), (0,))
    else:
        assert written == Written((), ((0, {"type": "x"}),), ())


def test_the_timeout_is_passed_to_every_request():
    timeouts = []

    class Timed(FakeBulk):
        async def request(self, method, path, *, headers, body, timeout):
            timeouts.append(timeout)
            return await super().request(method, path, headers=headers, body=body, timeout=timeout)

    actions = [action("a"), action("x" * 513)]
    run(write(Timed(), actions, timeout=7.5))
    assert timeouts == [7.5, 7.5, 7.5]


# --- a whole request refused: bisected ---


def test_a_whole_request_refused_is_bisected_to_the_one_bad_action():
    fake = FakeBulk()
    long_id = "x" * 513
    ids = ["d0", "d1", "d2", long_id, "d4"]
    written = run(write(fake, [action(i) for i in ids]))
    assert written.stored == (0, 1, 2, 4)
    assert written.retry == ()
    ((position, reason),) = written.refused
    assert position == 3
    assert reason["type"] == "bulk_refused"
    assert "400" in reason["reason"]
    assert "action_request_validation_exception" in reason["reason"]
    # By hand, halving as write() does (half = len // 2):
    #   1. [0 1 2 3 4] refused -> [0 1] + [2 3 4]
    #   2. [0 1]       stored
    #   3. [2 3 4]     refused -> [2] + [3 4]
    #   4. [2]         stored
    #   5. [3 4]       refused -> [3] + [4]
    #   6. [3]         refused, alone: bulk_refused
    #   7. [4]         stored
    assert fake.requests == [
        ids,
        ["d0", "d1"],
        ["d2", long_id, "d4"],
        ["d2"],
        [long_id, "d4"],
        [long_id],
        ["d4"],
    ]
    assert len(fake.requests) == 7


def test_the_id_bound_is_in_bytes():
    fake = FakeBulk()
    fits, too_long = "é" * 256, "é" * 257  # 512 and 514 bytes
    written = run(write(fake, [action(fits), action(too_long)]))
    assert written.stored == (0,)
    assert [p for p, _ in written.refused] == [1]
    assert len(fake.requests) == 3  # [0 1] refused, then [0] and [1]


def test_bisection_keeps_item_errors_and_positions_of_the_other_halves():
    fake = FakeBulk()
    actions = [
        action("a", bad=True),  # 0 refused by its item
        action("b", busy=True),  # 1 retry
        action("x" * 600),  # 2 refuses the whole request
        action("c"),  # 3 stored
    ]
    written = run(write(fake, actions))
    assert written.stored == (3,)
    assert written.retry == (1,)
    assert [p for p, _ in written.refused] == [0, 2]
    assert written.refused[0][1] == MAPPER_ERROR
    assert written.refused[1][1]["type"] == "bulk_refused"
    # [0 1 2 3] refused -> [0 1] answered, [2 3] refused -> [2] refused, [3] stored
    assert [len(r) for r in fake.requests] == [4, 2, 2, 1, 1]


def test_every_action_bad_is_every_action_refused():
    fake = FakeBulk()
    written = run(write(fake, [action(c * 513) for c in "abc"]))
    assert written.stored == ()
    assert [p for p, _ in written.refused] == [0, 1, 2]
    # [a b c] -> [a] | [b c] -> [b] | [c]: every node of the halving tree is one request
    assert len(fake.requests) == 5


def test_a_single_action_refused_is_not_retried():
    fake = FakeBulk()
    written = run(write(fake, [action("x" * 513)]))
    assert [p for p, _ in written.refused] == [0]
    assert len(fake.requests) == 1


# --- a whole request failing, not refusing: the caller keeps its batch ---


@pytest.mark.parametrize("status", [401, 403, 404, 429, 500, 502, 503])
def test_a_whole_request_busy_or_failing_raises_and_is_not_bisected(status):
    # 401/403: credentials being fixed; 404: the index being recreated. Not the records' fault,
    # so nothing is bisected down to dead letters.
    fake = FakeBulk(whole=status)
    actions = [action(f"d{i}") for i in range(5)]
    with pytest.raises(UpstreamError) as caught:
        run(write(fake, actions))
    assert not isinstance(caught.value, BulkRefused)
    assert str(status) in str(caught.value)
    assert len(fake.requests) == 1


@pytest.mark.parametrize("status", [401, 403, 404, 429, 500, 503])
def test_bulk_raises_plain_upstream_error_when_busy_or_failing(status):
    with pytest.raises(UpstreamError) as caught:
        run(bulk(FakeBulk(whole=status), [action("a")]))
    assert type(caught.value) is UpstreamError


@pytest.mark.parametrize("status", [400, 409, 413])
def test_bulk_raises_bulk_refused_for_other_4xx(status):
    with pytest.raises(BulkRefused):
        run(bulk(FakeBulk(whole=status), [action("a")]))


def test_bulk_refused_is_an_upstream_error():
    assert issubclass(BulkRefused, UpstreamError)


@pytest.mark.parametrize("status", [400, 413])
def test_write_bisects_any_other_whole_4xx_down_to_single_refusals(status):
    fake = FakeBulk(whole=status)
    written = run(write(fake, [action("a"), action("b")]))
    assert written.stored == ()
    assert [p for p, _ in written.refused] == [0, 1]
    assert all(r["type"] == "bulk_refused" for _, r in written.refused)
    assert len(fake.requests) == 3


def test_a_short_answer_is_an_upstream_error():
    class Short:
        async def request(self, method, path, *, headers, body, timeout):
            return UpstreamReply(200, b'{"errors": false, "items": [{"index": {"status": 201}}]}')

    with pytest.raises(UpstreamError, match="1 items for 2 actions"):
        run(write(Short(), [action("a"), action("b")]))


@pytest.mark.parametrize("reply", [b"<html>ok</html>", b"[]"])
def test_an_unreadable_200_answer_is_an_upstream_error(reply):
    class Unreadable:
        async def request(self, method, path, *, headers, body, timeout):
            return UpstreamReply(200, reply)

    with pytest.raises(UpstreamError):
        run(write(Unreadable(), [action("a")]))


# --- Written ---


def test_shifted_moves_every_position():
    written = Written((0, 2), ((1, {"type": "t"}),), (3,))
    assert written.shifted(10) == Written((10, 12), ((11, {"type": "t"}),), (13,))
    assert written.shifted(0) == written


def test_add_concatenates_each_part_in_order():
    first = Written((0,), ((1, {"type": "a"}),), ())
    rest = Written((0,), (), (1,)).shifted(2)
    assert first + rest == Written((0, 2), ((1, {"type": "a"}),), (3,))
    assert Written((), (), ()) + first == first
