"""The learning loop's Learner over a real catalog, a real event log and a fake OpenSearch."""

from __future__ import annotations

import asyncio
import time
from dataclasses import replace

import numpy as np
import orjson
import pytest

from ltrr.bandit.decision import ArmChoice, Decision
from ltrr.plugin.errors import BadRequest, Forbidden, InvalidEvent, UnknownDecision
from ltrr.plugin.learn.bulk import DECISIONS_LOG
from ltrr.plugin.learn.intake import MAX_EVENTS_PER_OBJECT
from ltrr.plugin.learn.learner import Learner
from ltrr.plugin.learn.records import Served
from ltrr.plugin.learn.tokens import SECRET_ENV, FeedbackTokens
from ltrr.plugin.runtime.registry import CatalogRegistry
from ltrr.plugin.runtime.stats import Stats
from ltrr.plugin.runtime.upstream import UpstreamError, UpstreamReply
from ltrr.plugin.serve.retrieve import ArmResult, Retrieval
from ltrr.query_plans.fusion.base import ArmHit, FusedHit, Provenance
from ltrr.query_plans.rerank import RankedHit

CATALOG = """\
target: music
budget: 6
policy: {name: linucb}
arms:
  - name: a
    template: multi_match.json.j2
    params: {fields: [name]}
    size: {min: 3, max: 3}
  - name: b
    template: multi_match.json.j2
    params: {fields: [tags]}
    size: {min: 3, max: 3}
fusion: {method: rrf, k: 60}
feedback:
  events: {click: 1.0, play: 2.0, skip: -0.5}
  window_seconds: 10
  debias: {eta: 1.0, max_factor: 4}
memory:
  name_fields: [name]
fallback: [{arm: a, size: 3}]
"""

T0 = 1_800_000_000.0
WINDOW = 10.0
QUERY = "Daft  Punk"
# 18 base features (the catalog has no context fields), with distinct, easily checked values.
X = np.array(
    [
        1.0,
        0.5,
        0.25,
        0.0,
        1.0,
        0.0,
        0.125,
        0.0,
        0.0,
        0.375,
        1.0,
        0.0,
        0.0,
        0.0,
        0.5,
        -0.5,
        0.25,
        -1.0,
    ]
)
A_IDS = ("1", "2")  # what arm a retrieved
B_IDS = ("2", "3")  # what arm b retrieved
SHOWN = ("2", "1", "3")  # the final order the user saw (position 1, 2, 3)
EYE = np.eye(18)
XXT = np.outer(X, X)
DAY = "ltrr-decisions-2027.01.15"  # T0's UTC day


class Clock:
    def __init__(self, now=T0):
        self.now = now

    def __call__(self):
        return self.now


class FakeOpenSearch:
    """Decisions by ``_mget`` from ``docs`` (in their day's index); ``_bulk`` answers 201 per
    item unless ``fail`` says."""

    def __init__(self):
        self.docs = {}
        self.requests = []
        self.fail = None  # None | "item" | "status" | "transport"

    async def request(self, method, path, *, headers, body, timeout):
        self.requests.append((method, path, body))
        if method == "POST" and path == "/_mget":
            docs = []
            for wanted in orjson.loads(body)["docs"]:
                index, doc_id = wanted["_index"], wanted["_id"]
                doc = self.docs.get(doc_id)
                if index != DAY:
                    error = {"type": "index_not_found_exception", "reason": index}
                    docs.append({"_index": index, "_id": doc_id, "error": error})
                elif doc is None or DECISIONS_LOG.index_of(doc) != index:
                    docs.append({"_index": index, "_id": doc_id, "found": False})
                else:
                    docs.append({"_index": index, "_id": doc_id, "found": True, "_source": doc})
            return UpstreamReply(200, orjson.dumps({"docs": docs}))
        if method == "POST" and path == "/_bulk":
            if self.fail == "transport":
                raise UpstreamError("POST /_bulk: connection reset")
            if self.fail == "status":
                return UpstreamReply(503, b'{"error": "unavailable"}')
            items = []
            lines = iter(body.splitlines())
            for line in lines:
                ((name, meta),) = orjson.loads(line).items()
                if name != "delete":
                    next(lines)
                status = 500 if self.fail == "item" and not items else 201
                items.append(
                    {name: {"_index": meta["_index"], "_id": meta["_id"], "status": status}}
                )
            return UpstreamReply(
                200, orjson.dumps({"errors": self.fail is not None, "items": items})
            )
        return UpstreamReply(404, b"{}")

    def bulks(self):
        return [
            body for method, path, body in self.requests if (method, path) == ("POST", "/_bulk")
        ]


def make_registry(tmp_path):
    path = tmp_path / "music.yml"
    if not path.exists():
        path.write_text(CATALOG)
    registry = CatalogRegistry([path], seed=1)
    registry.load_all()
    return registry


@pytest.fixture
def fake():
    return FakeOpenSearch()


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def registry(tmp_path):
    return make_registry(tmp_path)


@pytest.fixture
def runtime(registry):
    return registry.runtimes()[0]


@pytest.fixture
def new_learner(tmp_path, fake, registry, clock):
    made = []

    def make(name="replica", *, registry=registry, **kwargs):
        learner = Learner(
            fake, registry, tmp_path / name, Stats(), clock=clock, fsync=False, **kwargs
        )
        made.append(learner)
        return learner

    yield make
    for learner in made:
        learner.events.close()


@pytest.fixture
def learner(new_learner):
    return new_learner()


def decision(included=("a", "b"), policy="linucb"):
    return Decision(
        tuple(ArmChoice(arm, arm in included, 3, 0.75, 0.25) for arm in ("a", "b")), policy
    )


def retrieval(failed=()):
    results = {}
    for arm, ids in (("a", A_IDS), ("b", B_IDS)):
        if arm in failed:
            results[arm] = ArmResult(arm, error="timed_out")
        else:
            results[arm] = ArmResult(
                arm, hits=tuple(ArmHit("music", i, 1.0, r) for r, i in enumerate(ids, 1))
            )
    return Retrieval(results, took_ms=3.0)


def ranked(ids=SHOWN):
    out = []
    for rank, doc_id in enumerate(ids, 1):
        provenance = tuple(
            Provenance(arm, found.index(doc_id) + 1, 1.0)
            for arm, found in (("a", A_IDS), ("b", B_IDS))
            if doc_id in found
        )
        fused = FusedHit("music", doc_id, 1.0 / rank, None, provenance)
        out.append(RankedHit(fused, 1.0 / rank, None))
    return out


def record(learner, runtime, decision_id="d1", *, x=X, included=("a", "b"), **kwargs):
    choice = kwargs.pop("choice", decision(included))
    features = None if x is None else tuple(float(v) for v in x)
    found = kwargs.pop("retrieval", retrieval())
    learner.record(
        runtime,
        decision_id,
        QUERY,
        {"segment": "pro"},
        replace(choice, features=features),
        {arm: frozenset(h.id for h in r.hits) for arm, r in found.results.items() if r.ok},
        ranked(),
        kwargs.pop("nonce", ""),
    )


def body(decision_id="d1", *events):
    return orjson.dumps({"decision_id": decision_id, "events": list(events)})


def event(type_="click", object_id="1", position=None, id_=None):
    out = {"type": type_, "object_id": object_id}
    if position is not None:
        out["position"] = position
    if id_ is not None:
        out["id"] = id_
    return out


def token_for(learner, payload):
    """The feedback token a search returned for the payload's decision (None if unreadable);
    the records these tests make, and another replica's here, have the empty nonce."""
    try:
        decision_id = str(orjson.loads(payload)["decision_id"])
    except (orjson.JSONDecodeError, KeyError, TypeError):
        return None
    record = learner._open.get(decision_id)
    return learner.tokens.token(decision_id, record.nonce if record is not None else "")


def post(learner, payload):
    return learner.feedback(payload, token_for(learner, payload))


def feedback(learner, decision_id="d1", *events):
    return asyncio.run(post(learner, body(decision_id, *events)))


def logged(learner):
    lines, _ = learner.events.pending()
    return [orjson.loads(line) for line in lines]


def snapshot(runtime):
    s = runtime.agent.policy.stats
    return s.a.copy(), s.a_inv.copy(), s.b.copy(), s.counts.copy()


def assert_stats(runtime, *, a, b, counts):
    s = runtime.agent.policy.stats
    np.testing.assert_allclose(s.a, np.stack(a))
    np.testing.assert_allclose(s.b, np.stack(b))
    assert s.counts.tolist() == counts
    for arm in range(2):
        np.testing.assert_allclose(s.a_inv[arm] @ s.a[arm], EYE, atol=1e-9)


def assert_unchanged(runtime, before):
    for old, new in zip(before, snapshot(runtime), strict=True):
        np.testing.assert_array_equal(new, old)


# --- record ---


def test_record_keeps_the_decision_and_queues_its_document(learner, runtime):
    record(learner, runtime, "d1", retrieval=retrieval(failed=("b",)))
    assert learner.pending_decisions() == 1
    ((doc_id, doc),) = learner.decisions._queue
    assert doc_id == "d1"
    assert doc["timestamp"] == T0
    assert doc["window_seconds"] == WINDOW
    assert doc["learnable"] is True
    assert doc["target"] == "music"
    assert doc["features"] == X.tolist()
    assert doc["returned"] == [["music", "2"], ["music", "1"], ["music", "3"]]
    assert doc["arms"]["a"] == {
        "included": True,
        "size": 3,
        "propensity": 0.75,
        "score": 0.25,
        "ok": True,
        "results": ["1", "2"],
    }
    assert doc["arms"]["b"]["results"] == []  # it failed: no results, no zero reward
    assert doc["arms"]["b"]["ok"] is False
    assert learner.memory.pending_keys() == 1


@pytest.mark.parametrize(
    ("x", "policy"), [(None, "linucb"), (X, "static_fallback (policy error: boom)")]
)
def test_unlearnable_decision_is_logged_but_not_kept(learner, runtime, x, policy):
    record(learner, runtime, "d1", x=x, choice=decision(policy=policy))
    assert learner.pending_decisions() == 0
    ((_, doc),) = learner.decisions._queue
    assert doc["learnable"] is False
    with pytest.raises(UnknownDecision):
        feedback(learner, "d1", event())


# --- feedback ---


def test_click_rewards_only_the_arm_that_retrieved_the_object(learner, runtime, clock):
    a0 = runtime.agent.policy.stats.a[0].copy()
    np.testing.assert_array_equal(a0, EYE)  # ridge 1: the prior
    record(learner, runtime, "d1")
    clock.now = T0 + 3
    answer = feedback(learner, "d1", event("click", "1", position=2, id_="e1"))
    assert answer == {"acknowledged": True, "decision_id": "d1", "accepted": 1, "duplicates": 0}
    (logged_event,) = logged(learner)
    assert logged_event == {
        "event_id": "e1",
        "decision_id": "d1",
        "type": "click",
        "object_id": "1",
        "position": 2,
        "value": None,
        "timestamp": T0 + 3,
        "source": "api",
        "target": "music",
        "catalog": runtime.catalog.digest,
        "base_weight": 1.0,  # the catalog's weight for a click
        "weight": 2.0,  # 1.0 x min(4, 2 ** 1)
        "rewards": {"a": 2.0, "b": 0.0},  # "1" was retrieved by a only
        "received": T0 + 3,
    }
    # Both included arms observe the context once; only a earns the reward.
    assert_stats(runtime, a=[EYE + XXT, EYE + XXT], b=[2.0 * X, 0.0 * X], counts=[1, 1])
    assert learner.stats.counts["feedback_events"] == 1
    assert learner.stats.counts["feedback_duplicates"] == 0
    engaged = learner.memory._pending["music"].keys["daft punk"].engaged
    assert engaged == {"music/1": 2.0}


def test_later_events_only_add_to_b(learner, runtime, clock):
    record(learner, runtime, "d1")
    feedback(learner, "d1", event("click", "1", position=2))  # a: 2
    clock.now = T0 + 5
    feedback(learner, "d1", event("play", "3", position=3))  # b: 2 x 3 = 6
    assert_stats(runtime, a=[EYE + XXT, EYE + XXT], b=[2.0 * X, 6.0 * X], counts=[1, 1])
    clock.now = T0 + 6
    feedback(learner, "d1", event("click", "2", position=9))  # both: 1 x min(4, 9) = 4
    assert_stats(runtime, a=[EYE + XXT, EYE + XXT], b=[6.0 * X, 10.0 * X], counts=[1, 1])
    assert [e["weight"] for e in logged(learner)] == [2.0, 6.0, 4.0]
    assert [e["base_weight"] for e in logged(learner)] == [1.0, 2.0, 1.0]  # not debiased
    assert runtime.agent.policy.version() == 2


def test_several_events_in_one_request_count_the_context_once(learner, runtime):
    record(learner, runtime, "d1")
    answer = feedback(
        learner,
        "d1",
        event("click", "1", position=2),  # a: 2
        event("skip", "2", position=1),  # a and b: -0.5 (rank 1: no debiasing)
        event("play", "3"),  # b: 2 (no position: no debiasing)
    )
    assert answer["accepted"] == 3
    assert [e["rewards"] for e in logged(learner)] == [
        {"a": 2.0, "b": 0.0},
        {"a": -0.5, "b": -0.5},
        {"a": 0.0, "b": 2.0},
    ]
    assert_stats(runtime, a=[EYE + XXT, EYE + XXT], b=[1.5 * X, 1.5 * X], counts=[1, 1])
    # Only positive weights are remembered as engagement.
    engaged = learner.memory._pending["music"].keys["daft punk"].engaged
    assert engaged == {"music/1": 2.0, "music/3": 2.0}


def test_an_arm_that_was_not_included_learns_nothing(learner, runtime):
    record(learner, runtime, "d1", included=("b",))
    feedback(learner, "d1", event("click", "2", position=4))  # weight 4; a also retrieved it
    (logged_event,) = logged(learner)
    assert logged_event["rewards"] == {"b": 4.0}
    assert_stats(runtime, a=[EYE, EYE + XXT], b=[0.0 * X, 4.0 * X], counts=[0, 1])


def test_a_failed_arm_is_not_rewarded_even_if_included(learner, runtime):
    record(learner, runtime, "d1", retrieval=retrieval(failed=("a",)))
    feedback(learner, "d1", event("click", "3", position=1))
    assert logged(learner)[0]["rewards"] == {"b": 1.0}
    assert_stats(runtime, a=[EYE, EYE + XXT], b=[0.0 * X, X], counts=[0, 1])


# --- duplicates ---


def test_duplicate_ids_in_one_request_are_applied_once(learner, runtime):
    record(learner, runtime, "d1")
    answer = feedback(
        learner,
        "d1",
        event("click", "1", position=2, id_="e1"),
        event("play", "3", position=3, id_="e1"),  # same id: the same event, whatever it says
    )
    assert answer == {"acknowledged": True, "decision_id": "d1", "accepted": 1, "duplicates": 1}
    assert [e["event_id"] for e in logged(learner)] == ["e1"]
    assert_stats(runtime, a=[EYE + XXT, EYE + XXT], b=[2.0 * X, 0.0 * X], counts=[1, 1])
    assert learner.stats.counts["feedback_duplicates"] == 1


def test_resent_events_are_acknowledged_but_not_applied_again(learner, runtime, clock):
    record(learner, runtime, "d1")
    first = feedback(learner, "d1", event("click", "1", position=2))  # id hashed from content
    clock.now = T0 + 1  # the hash includes the timestamp, so the resend must carry the same one
    resent = {"type": "click", "object_id": "1", "position": 2, "timestamp": T0 * 1000}
    second = feedback(learner, "d1", resent)
    assert first["accepted"] == 1
    assert second == {"acknowledged": True, "decision_id": "d1", "accepted": 0, "duplicates": 1}
    assert len(logged(learner)) == 1
    assert_stats(runtime, a=[EYE + XXT, EYE + XXT], b=[2.0 * X, 0.0 * X], counts=[1, 1])
    assert learner.stats.counts["feedback_events"] == 1
    assert learner.stats.counts["feedback_duplicates"] == 1


# --- 400s ---


@pytest.mark.parametrize(
    ("payload", "advance", "error"),
    [
        (body("nope", event()), 0.0, UnknownDecision),
        (body("d1", event()), WINDOW + 0.5, UnknownDecision),
        (body("d1", event("hover", "1")), 0.0, InvalidEvent),
        (body("d1", event("click", "99")), 0.0, InvalidEvent),
        (body("d1", event("click", "1"), event("click", "4")), 0.0, InvalidEvent),  # all or none
        (b'{"decision_id": "d1", "events": [', 0.0, BadRequest),
        (b"", 0.0, BadRequest),
        (body("d1"), 0.0, BadRequest),  # no events
    ],
    ids=[
        "unknown",
        "past-window",
        "type",
        "object",
        "one-bad-of-two",
        "json",
        "empty",
        "no-events",
    ],
)
def test_rejected_feedback_changes_nothing(learner, runtime, clock, payload, advance, error):
    record(learner, runtime, "d1")
    before = snapshot(runtime)
    clock.now = T0 + advance
    with pytest.raises(error) as caught:
        asyncio.run(post(learner, payload))
    assert isinstance(caught.value, BadRequest)
    assert caught.value.status == 400
    assert logged(learner) == []
    assert_unchanged(runtime, before)
    assert learner.stats.counts["feedback_events"] == 0


def test_a_rejected_request_reserves_no_event_id(learner, runtime):
    record(learner, runtime, "d1")
    with pytest.raises(InvalidEvent, match=r"events\[1\]: object_id '4' was never shown"):
        feedback(learner, "d1", event("click", "1", id_="e1"), event("click", "4", id_="e2"))
    answer = feedback(learner, "d1", event("click", "1", id_="e1"))
    assert (answer["accepted"], answer["duplicates"]) == (1, 0)
    assert_stats(runtime, a=[EYE + XXT, EYE + XXT], b=[X, 0.0 * X], counts=[1, 1])


def lookup(decision_id):
    """The window (10 s) and an hour of clock skew either side of T0 (08:00) stay in T0's day:
    that day's index is read, then the index kept from before the days."""
    indices = [DAY, "ltrr-decisions-legacy"]
    return orjson.dumps({"docs": [{"_index": i, "_id": decision_id} for i in indices]})


def test_unknown_decision_is_looked_up_in_opensearch(learner, fake):
    with pytest.raises(UnknownDecision, match="unknown decision 'x/1 2'"):
        feedback(learner, "x/1 2", event())
    assert fake.requests == [("POST", "/_mget", lookup("x/1 2"))]


def test_type_error_names_the_known_types(learner, runtime):
    record(learner, runtime, "d1")
    with pytest.raises(InvalidEvent, match=r"events\[0\]: .*known: click, play, skip"):
        feedback(learner, "d1", event("hover", "1"))


def test_feedback_at_the_last_instant_of_the_window_is_accepted(learner, runtime, clock):
    record(learner, runtime, "d1")
    clock.now = T0 + WINDOW
    assert feedback(learner, "d1", event())["accepted"] == 1


# --- windows ---


def test_window_closing_without_feedback_is_reward_zero(learner, runtime, clock):
    record(learner, runtime, "d1")
    clock.now = T0 + WINDOW - 0.01
    assert learner.sweep() == 0
    assert runtime.agent.policy.stats.counts.tolist() == [0, 0]
    clock.now = T0 + WINDOW
    assert learner.sweep() == 1
    assert_stats(runtime, a=[EYE + XXT, EYE + XXT], b=[0.0 * X, 0.0 * X], counts=[1, 1])
    assert learner.pending_decisions() == 0
    assert learner.stats.counts["windows_closed_without_feedback"] == 1
    assert learner.sweep() == 0  # closed once
    assert runtime.agent.policy.stats.counts.tolist() == [1, 1]


def test_window_closing_updates_only_included_arms(learner, runtime, clock):
    record(learner, runtime, "d1", included=("a",))
    record(learner, runtime, "d2", retrieval=retrieval(failed=("b",)))
    clock.now = T0 + WINDOW
    assert learner.sweep() == 2
    assert_stats(runtime, a=[EYE + 2 * XXT, EYE], b=[0.0 * X, 0.0 * X], counts=[2, 0])


def test_window_with_feedback_is_not_updated_again_when_it_closes(learner, runtime, clock):
    record(learner, runtime, "d1")
    feedback(learner, "d1", event("click", "1", position=2))
    before = snapshot(runtime)
    clock.now = T0 + WINDOW + 1
    assert learner.sweep() == 0
    assert_unchanged(runtime, before)
    assert learner.pending_decisions() == 0
    assert learner.stats.counts["windows_closed_without_feedback"] == 0


def test_windows_close_in_expiry_order(learner, runtime, clock):
    record(learner, runtime, "d1")
    clock.now = T0 + 4
    record(learner, runtime, "d2")
    clock.now = T0 + WINDOW
    assert learner.sweep() == 1
    assert learner.pending_decisions() == 1
    assert feedback(learner, "d2", event("click", "3"))["accepted"] == 1
    clock.now = T0 + 4 + WINDOW
    assert learner.sweep() == 0  # d2 had feedback
    assert_stats(runtime, a=[EYE + 2 * XXT, EYE + 2 * XXT], b=[0.0 * X, X], counts=[2, 2])


# --- another replica's decision ---


@pytest.fixture
def foreign(tmp_path, new_learner, fake):
    """A decision another replica (its own data dir and policy) made and logged."""
    other_registry = make_registry(tmp_path)
    other = new_learner("other", registry=other_registry)
    record(other, other_registry.runtimes()[0], "d9")
    ((doc_id, doc),) = other.decisions._queue
    fake.docs[doc_id] = orjson.loads(orjson.dumps(doc))
    return doc_id


def test_foreign_decision_feedback_adds_only_to_b(learner, runtime, clock, fake, foreign):
    clock.now = T0 + 2
    answer = feedback(learner, foreign, event("click", "2", position=1, id_="e1"))
    assert answer == {"acknowledged": True, "decision_id": "d9", "accepted": 1, "duplicates": 0}
    assert fake.requests == [("POST", "/_mget", lookup("d9"))]
    assert logged(learner)[0]["rewards"] == {"a": 1.0, "b": 1.0}
    assert_stats(runtime, a=[EYE, EYE], b=[X, X], counts=[0, 0])
    # Kept now: the next event needs no lookup, and duplicates are still recognised.
    feedback(learner, foreign, event("play", "3", position=2), event("click", "2", id_="e1"))
    assert len(fake.requests) == 1
    assert_stats(runtime, a=[EYE, EYE], b=[X, 5.0 * X], counts=[0, 0])
    # The owner closes its window; here it is only forgotten.
    clock.now = T0 + WINDOW
    assert learner.sweep() == 0
    assert learner.pending_decisions() == 0
    assert_stats(runtime, a=[EYE, EYE], b=[X, 5.0 * X], counts=[0, 0])


def test_foreign_decision_checks_window_and_objects(learner, runtime, clock, foreign):
    before = snapshot(runtime)
    with pytest.raises(InvalidEvent):
        feedback(learner, foreign, event("click", "99"))
    clock.now = T0 + WINDOW + 0.5
    with pytest.raises(UnknownDecision, match="past its feedback window"):
        feedback(learner, foreign, event("click", "2"))
    assert logged(learner) == []
    assert_unchanged(runtime, before)


def test_foreign_fallback_decision_is_refused(learner, runtime, fake, foreign):
    fake.docs[foreign]["learnable"] = False
    with pytest.raises(UnknownDecision, match="fallback"):
        feedback(learner, foreign, event("click", "2"))


# --- UBI ---


def ubi_doc(decision_id="d1", action="click", object_id="1", ordinal=None):
    attributes = {"object": {"object_id": object_id, "object_id_field": "_id"}}
    if ordinal is not None:
        attributes["position"] = {"ordinal": ordinal}
    return {
        "action_name": action,
        "query_id": decision_id,
        "client_id": "c1",
        "timestamp": "2027-01-15T08:00:00Z",
        "event_attributes": attributes,
    }


def ubi_bulk(*docs):
    out = bytearray()
    for index, doc in docs:
        out += orjson.dumps({"index": {"_index": index}}) + b"\n" + orjson.dumps(doc) + b"\n"
    return bytes(out)


def stored(*statuses):
    """OpenSearch's answer to a bulk whose items got these statuses."""
    items = [{"index": {"_index": "ubi_events", "status": s}} for s in statuses]
    return orjson.dumps({"errors": any(s >= 300 for s in statuses), "items": items})


CREATED = b'{"result": "created"}'


def test_ubi_events_are_learned_and_the_rest_counted(learner, runtime):
    record(learner, runtime, "d1")
    payload = ubi_bulk(
        ("ubi_events", ubi_doc("d1", "click", "1", ordinal=2)),  # a: 2
        ("ubi_events", ubi_doc("zz", "click", "1")),  # unknown decision
        ("ubi_events", ubi_doc("d1", "hover", "1")),  # not a catalog event type
        ("ubi_events", ubi_doc("d1", "click", "99")),  # never shown
        ("ubi_queries", {"query_id": "d1"}),  # another index
        ("ubi_events", ubi_doc("d1", "play", "3", ordinal=3)),  # b: 6
    )
    answer = stored(201, 201, 201, 201, 201, 201)
    assert asyncio.run(learner.ubi("POST", "/_bulk", payload, answer)) is None
    counts = learner.stats.counts
    assert counts["ubi_events"] == 2
    assert counts["ubi_skipped: unknown decision"] == 1
    assert counts["ubi_skipped: invalid event"] == 2
    assert counts["ubi_skipped: other index"] == 1
    events = logged(learner)
    assert [(e["source"], e["type"], e["weight"]) for e in events] == [
        ("ubi", "click", 2.0),
        ("ubi", "play", 6.0),
    ]
    assert_stats(runtime, a=[EYE + XXT, EYE + XXT], b=[2.0 * X, 6.0 * X], counts=[1, 1])


def test_ubi_events_opensearch_refused_are_not_learned(learner, runtime):
    record(learner, runtime, "d1")
    payload = ubi_bulk(
        ("ubi_events", ubi_doc("d1", "click", "1", ordinal=2)),  # refused: 400
        ("ubi_events", ubi_doc("d1", "play", "3", ordinal=3)),  # stored: b 6
    )
    asyncio.run(learner.ubi("POST", "/_bulk", payload, stored(400, 201)))
    assert learner.stats.counts["ubi_events"] == 1
    assert learner.stats.counts["ubi_skipped: refused by OpenSearch"] == 1
    assert [e["type"] for e in logged(learner)] == ["play"]
    assert_stats(runtime, a=[EYE + XXT, EYE + XXT], b=[0.0 * X, 6.0 * X], counts=[1, 1])


def test_ubi_document_id_deduplicates(learner, runtime):
    record(learner, runtime, "d1")
    doc = orjson.dumps(ubi_doc("d1", "click", "2", ordinal=0))  # ordinal 0 counts as rank 1
    asyncio.run(learner.ubi("PUT", "/ubi_events/_doc/u-1", doc, CREATED))
    asyncio.run(learner.ubi("PUT", "/ubi_events/_doc/u-1", doc, CREATED))
    assert [e["event_id"] for e in logged(learner)] == ["u-1"]
    assert learner.stats.counts["ubi_events"] == 1
    assert_stats(runtime, a=[EYE + XXT, EYE + XXT], b=[X, X], counts=[1, 1])


def test_ubi_never_raises_on_what_it_cannot_learn(learner, runtime, clock):
    record(learner, runtime, "d1")
    clock.now = T0 + WINDOW + 1  # past the window
    before = snapshot(runtime)
    asyncio.run(learner.ubi("POST", "/ubi_events/_doc", orjson.dumps(ubi_doc("d1")), CREATED))
    asyncio.run(learner.ubi("POST", "/ubi_events/_bulk", b"not json\n", b"{}"))
    asyncio.run(learner.ubi("GET", "/ubi_events/_search", b"{}", b"{}"))
    assert learner.stats.counts["ubi_skipped: unknown decision"] == 1
    assert learner.stats.counts["ubi_skipped: malformed bulk"] == 1
    assert learner.stats.counts["ubi_events"] == 0
    assert logged(learner) == []
    assert_unchanged(runtime, before)


# --- shipping ---


def shipped_ids(bulk_body):
    lines = bulk_body.splitlines()
    actions = [orjson.loads(line) for line in lines[::2]]
    docs = [orjson.loads(line) for line in lines[1::2]]
    assert all(set(action) == {"index"} for action in actions)
    assert all(action["index"]["_index"] == "ltrr-events-2027.01.15" for action in actions)
    assert [a["index"]["_id"] for a in actions] == [d["event_id"] for d in docs]
    return [a["index"]["_id"] for a in actions]


def test_ship_events_indexes_by_event_id_and_commits(learner, runtime, fake):
    record(learner, runtime, "d1")
    feedback(learner, "d1", event("click", "1", id_="e1"), event("play", "3", id_="e2"))
    assert asyncio.run(learner.ship_events()) == 2
    (sent,) = fake.bulks()
    assert shipped_ids(sent) == ["e1", "e2"]
    assert orjson.loads(sent.splitlines()[1])["rewards"] == {"a": 1.0, "b": 0.0}
    assert learner.events.pending() == ([], learner.events.checkpoint)
    assert learner.shipped == 2
    assert asyncio.run(learner.ship_events()) == 0
    assert len(fake.bulks()) == 1
    feedback(learner, "d1", event("skip", "2", id_="e3"))
    assert asyncio.run(learner.ship_events()) == 1
    assert shipped_ids(fake.bulks()[-1]) == ["e3"]


@pytest.mark.parametrize("failure", ["item", "status", "transport"])
def test_failed_shipping_commits_nothing_and_resends(learner, runtime, fake, failure):
    record(learner, runtime, "d1")
    feedback(learner, "d1", event("click", "1", id_="e1"), event("play", "3", id_="e2"))
    checkpoint = learner.events.checkpoint
    fake.fail = failure
    with pytest.raises(UpstreamError):
        asyncio.run(learner.ship_events())
    assert learner.events.checkpoint == checkpoint
    assert [e["event_id"] for e in logged(learner)] == ["e1", "e2"]
    assert learner.shipped == 0
    fake.fail = None
    assert asyncio.run(learner.ship_events()) == 2
    assert [shipped_ids(b) for b in fake.bulks()] == [["e1", "e2"], ["e1", "e2"]]
    assert logged(learner) == []


# --- memory bound ---


def test_max_decisions_closes_the_oldest_early(new_learner, runtime, clock):
    learner = new_learner(max_decisions=2)
    for i, name in enumerate(("d1", "d2", "d3")):
        clock.now = T0 + i
        record(learner, runtime, name)
    assert learner.pending_decisions() == 2
    assert learner.stats.counts["windows_closed_early"] == 1
    assert_stats(runtime, a=[EYE + XXT, EYE + XXT], b=[0.0 * X, 0.0 * X], counts=[1, 1])
    with pytest.raises(UnknownDecision):
        feedback(learner, "d1", event())  # forgotten, and not in OpenSearch (never flushed)
    assert feedback(learner, "d2", event("click", "1", position=3))["accepted"] == 1
    assert_stats(runtime, a=[EYE + 2 * XXT, EYE + 2 * XXT], b=[3.0 * X, 0.0 * X], counts=[2, 2])


def test_early_close_after_feedback_does_not_count_the_context_again(new_learner, runtime, clock):
    learner = new_learner(max_decisions=1)
    record(learner, runtime, "d1")
    feedback(learner, "d1", event("click", "2", position=2))
    clock.now = T0 + 1
    record(learner, runtime, "d2")
    assert learner.pending_decisions() == 1
    assert learner.stats.counts["windows_closed_early"] == 1
    assert_stats(runtime, a=[EYE + XXT, EYE + XXT], b=[2.0 * X, 2.0 * X], counts=[1, 1])


@pytest.mark.parametrize("closer", ["sweep", "max_decisions"])
def test_window_closing_while_first_event_is_in_flight_counts_context_once(
    new_learner, runtime, clock, closer
):
    learner = new_learner(max_decisions=1)
    record(learner, runtime, "d1")
    clock.now = T0 + WINDOW  # the last instant at which feedback is still accepted

    async def race():
        task = asyncio.create_task(post(learner, body("d1", event("click", "1"))))
        await asyncio.sleep(0)  # the event id is reserved; the log write is in progress
        if closer == "sweep":
            learner.sweep()
        else:
            record(learner, runtime, "d2")  # past max_decisions: d1 closes early
        return await task

    assert asyncio.run(race())["accepted"] == 1
    # Once per included arm, as if the event had come first or the window had closed first.
    assert_stats(runtime, a=[EYE + XXT, EYE + XXT], b=[X, 0.0 * X], counts=[1, 1])


def test_reused_decision_id_closes_one_window_early(new_learner, runtime, clock):
    learner = new_learner(max_decisions=1)
    record(learner, runtime, "d1")
    clock.now = T0 + 1
    record(learner, runtime, "d1")  # a client-supplied decision id, searched again
    clock.now = T0 + 2
    record(learner, runtime, "d2")
    assert learner.pending_decisions() == 1
    # The older d1 closed when its id was reused, the newer one early to make room for d2.
    assert runtime.agent.policy.stats.counts.tolist() == [2, 2]
    assert learner.stats.counts["windows_closed_early"] == 1


# --- a simulated clock: no background loops, ``due`` per target ---


def two_targets(tmp_path):
    """A registry serving music and books, each with its own policy and memory."""
    folder = tmp_path / "two"
    folder.mkdir()
    (folder / "music.yml").write_text(CATALOG)
    (folder / "books.yml").write_text(CATALOG.replace("target: music", "target: books"))
    registry = CatalogRegistry([folder / "music.yml", folder / "books.yml"], seed=1)
    registry.load_all()
    by_target = {r.state_key: r for r in registry.runtimes()}
    assert set(by_target) == {"music", "books"}
    return registry, by_target


def memory_requests(fake):
    return [(m, p) for m, p, _ in fake.requests if p in ("/ltrr-memory/_mget", "/_bulk")]


def test_due_closes_only_the_given_targets_ended_windows_then_writes_their_memory(
    tmp_path, new_learner, fake, clock
):
    registry, runtimes = two_targets(tmp_path)
    learner = new_learner(registry=registry, background=False)
    music, books = runtimes["music"], runtimes["books"]
    record(learner, music, "m1")
    record(learner, books, "b1")
    record(learner, music, "m2")
    feedback(learner, "m2", event("click", "1"))  # m2 is not closed with reward 0
    clock.now = T0 + 5
    record(learner, music, "m3")  # its window ends at T0 + 15
    assert learner.memory.pending_targets() == ["books", "music"]

    clock.now = T0 + WINDOW
    closed, written = asyncio.run(learner.due(["music"]))

    assert (closed, written) == (1, ["music"])  # m1; m2 had feedback, m3 is still open
    assert learner.stats.counts["windows_closed_without_feedback"] == 1
    # m1 observed reward 0 and m2 its click on a's "1"; books learned nothing.
    assert_stats(music, a=[EYE + 2 * XXT, EYE + 2 * XXT], b=[X, 0.0 * X], counts=[2, 2])
    assert_stats(books, a=[EYE, EYE], b=[0.0 * X, 0.0 * X], counts=[0, 0])
    assert learner.pending_decisions() == 2  # b1 and m3
    assert learner.memory.pending_targets() == ["books"]
    written_keys = [
        orjson.loads(line)["key"] for body_ in fake.bulks() for line in body_.splitlines()[1::2]
    ]
    assert written_keys == ["daft punk"]  # music's key only
    (memory_bulk,) = fake.bulks()
    assert orjson.loads(memory_bulk.splitlines()[1])["target"] == "music"

    requests = len(fake.requests)
    assert asyncio.run(learner.due(["music"])) == (0, [])  # nothing more is due
    assert len(fake.requests) == requests  # and nothing pending to write

    clock.now = T0 + 5 + WINDOW
    closed, written = asyncio.run(learner.due(["books", "music"]))
    assert (closed, written) == (2, ["books"])  # b1 and m3; only books had memory pending
    assert_stats(books, a=[EYE + XXT, EYE + XXT], b=[0.0 * X, 0.0 * X], counts=[1, 1])
    assert music.agent.policy.stats.counts.tolist() == [3, 3]
    assert learner.pending_decisions() == 0
    assert learner.memory.pending_targets() == []
    assert learner.stats.counts["windows_closed_without_feedback"] == 3


def test_due_reads_the_learners_clock_not_the_sweep(tmp_path, new_learner, clock):
    registry, runtimes = two_targets(tmp_path)
    learner = new_learner(registry=registry, background=False)
    record(learner, runtimes["music"], "m1")
    clock.now = T0 + WINDOW - 0.01
    assert asyncio.run(learner.due(["music"]))[0] == 0
    assert learner.pending_decisions() == 1
    clock.now = T0 + WINDOW
    assert asyncio.run(learner.due(["music"]))[0] == 1
    assert learner.sweep() == 0  # already closed: its stale entry is skipped
    assert runtimes["music"].agent.policy.stats.counts.tolist() == [1, 1]


def test_due_for_an_unknown_target_does_nothing(tmp_path, new_learner, fake, clock):
    registry, runtimes = two_targets(tmp_path)
    learner = new_learner(registry=registry, background=False)
    record(learner, runtimes["music"], "m1")
    clock.now = T0 + 100
    assert asyncio.run(learner.due(["videos"])) == (0, [])
    assert asyncio.run(learner.due([])) == (0, [])
    assert learner.pending_decisions() == 1
    assert learner.memory.pending_targets() == ["music"]
    assert memory_requests(fake) == []


@pytest.mark.parametrize("background", [False, True])
def test_start_runs_background_loops_only_when_asked(new_learner, background):
    learner = new_learner(background=background)

    async def go():
        await learner.start()
        others = {t for t in asyncio.all_tasks() if t is not asyncio.current_task()}
        started = list(learner._tasks)
        await learner.stop()
        return started, others

    started, others = asyncio.run(go())
    assert learner.background is background
    # sweep, ship, decisions, memory, state, watch, retention
    assert len(started) == (7 if background else 0)
    assert others == set(started)  # nothing else was left running either


def test_a_learner_without_background_loops_still_writes_what_is_pending_at_stop(
    new_learner, runtime, fake
):
    learner = new_learner(background=False)

    async def go():
        await learner.start()
        record(learner, runtime, "d1")
        await learner.stop()

    asyncio.run(go())
    written = [orjson.loads(b.splitlines()[0]) for b in fake.bulks()]
    indices = sorted(next(iter(action.values()))["_index"] for action in written)
    assert indices == [DAY, "ltrr-memory", "ltrr-state"]


# --- a plan policy's decision ---


@pytest.fixture
def plan_runtime(tmp_path):
    folder = tmp_path / "plans"
    folder.mkdir()
    path = folder / "music.yml"
    path.write_text(CATALOG.replace("policy: {name: linucb}", "policy: {name: safe_plans}"))
    registry = CatalogRegistry([path], seed=1)
    registry.load_all()
    (runtime,) = registry.runtimes()
    assert runtime.agent.name == "safe_plans"
    return registry, runtime


@pytest.fixture
def reward_calls(monkeypatch):
    """Every ``Agent.reward`` call's keyword arguments; the real agent still learns."""
    from ltrr.bandit.agent import Agent

    calls = []
    real = Agent.reward

    def spy(self, features, rewards, **kwargs):
        calls.append({"features": tuple(features), "rewards": dict(rewards), **kwargs})
        return real(self, features, rewards, **kwargs)

    monkeypatch.setattr(Agent, "reward", spy)
    return calls


def plan_decision(plan="only:a"):
    included = ("a",) if plan == "only:a" else ("a", "b")
    return replace(decision(included, policy="safe_plans"), plan=plan, plan_propensity=0.05)


def test_a_plan_decisions_feedback_gives_the_agent_its_plan_page_and_query(
    new_learner, plan_runtime, clock, reward_calls
):
    registry, runtime = plan_runtime
    learner = new_learner(registry=registry)
    policy = runtime.agent.policy
    record(learner, runtime, "d1", choice=plan_decision("only:a"))
    assert learner._open.get("d1").plan == "only:a"
    clock.now = T0 + 1
    feedback(learner, "d1", event("click", "1", position=2))  # weight 2 after debiasing
    clock.now = T0 + 2
    feedback(learner, "d1", event("play", "3", position=3))

    assert reward_calls == [
        {
            "features": tuple(X),
            "rewards": {"a": 2.0},
            "first": True,
            "plan": "only:a",
            "page": 1.0,  # the page's reward is the event's weight, not debiased
            "query": QUERY,
        },
        {
            "features": tuple(X),
            "rewards": {"a": 0.0},  # "3" was b's, and b was not asked
            "first": False,
            "plan": "only:a",
            "page": 2.0,
            "query": QUERY,
        },
    ]
    # The real policy learned it for that plan and that query.
    only_a = policy.plans.index("only:a")
    assert policy.stats.counts.tolist() == [int(i == only_a) for i in range(len(policy.plans))]
    shown, _ = policy.history.get("daft punk")
    assert shown.tolist() == [float(i == only_a) for i in range(len(policy.plans))]


def test_a_plan_decisions_window_closing_gives_its_plan_and_query_reward_zero(
    new_learner, plan_runtime, clock, reward_calls
):
    registry, runtime = plan_runtime
    learner = new_learner(registry=registry, background=False)
    policy = runtime.agent.policy
    record(learner, runtime, "d1", choice=plan_decision("all"))
    clock.now = T0 + WINDOW
    assert asyncio.run(learner.due(["music"]))[0] == 1
    assert reward_calls == [
        {
            "features": tuple(X),
            "rewards": {"a": 0.0, "b": 0.0},
            "first": True,
            "plan": "all",
            "query": QUERY,
        }
    ]
    assert policy.stats.counts.tolist()[policy.plans.index("all")] == 1
    assert policy.history.get("daft punk") is not None


# -- who may send feedback, and how much -------------------------------------------------------


@pytest.mark.parametrize("token", [None, "", "0" * 32, "forged"])
def test_feedback_without_the_decisions_token_is_a_403_and_changes_nothing(learner, runtime, token):
    record(learner, runtime, "d1")
    before = snapshot(runtime)
    with pytest.raises(Forbidden) as caught:
        asyncio.run(learner.feedback(body("d1", event("click", "1")), token))
    assert caught.value.status == 403
    assert caught.value.body()["error"]["type"] == "security_exception"
    assert logged(learner) == []
    assert_unchanged(runtime, before)


def test_a_token_is_for_one_decision_only(learner, runtime):
    record(learner, runtime, "d1")
    record(learner, runtime, "d2")
    with pytest.raises(Forbidden):
        asyncio.run(learner.feedback(body("d2", event()), learner.tokens.token("d1", "")))


def test_a_token_is_for_one_draw_of_an_id_only(learner, runtime):
    """A client that reuses another's decision id gets a new nonce, so its token never fits
    the decision it displaced, nor that one's token the new one."""
    record(learner, runtime, "d1")
    first = learner.tokens.token("d1", "")
    record(learner, runtime, "d1", nonce="n2")
    with pytest.raises(Forbidden):
        asyncio.run(learner.feedback(body("d1", event()), first))
    accepted = asyncio.run(learner.feedback(body("d1", event()), learner.tokens.token("d1", "n2")))
    assert accepted["accepted"] == 1


def test_the_secret_survives_a_restart_and_is_shared_through_the_environment(tmp_path, monkeypatch):
    monkeypatch.delenv(SECRET_ENV, raising=False)
    first = FeedbackTokens.load(tmp_path / "data")
    again = FeedbackTokens.load(tmp_path / "data")
    assert first.token("d1", "n") == again.token("d1", "n")
    assert first.token("d1", "n") != first.token("d1", "m")
    assert first.token("d1", "n") != FeedbackTokens.load(tmp_path / "other").token("d1", "n")
    assert (tmp_path / "data" / "feedback-secret").stat().st_mode & 0o077 == 0
    assert [p.name for p in (tmp_path / "data").iterdir()] == ["feedback-secret"]
    monkeypatch.setenv(SECRET_ENV, "s" * 32)
    shared = FeedbackTokens.load(tmp_path / "data").token("d1", "n")
    other = FeedbackTokens.load(tmp_path / "other").token("d1", "n")
    assert shared == other != first.token("d1", "n")
    assert not first.valid("d1", "n", "é" * 32)  # a header aiohttp could not decode


def test_feedback_over_the_caps_is_refused_whole_and_ubi_past_them_is_counted(learner, runtime):
    record(learner, runtime, "d1")
    many = [event("click", "1", id_=f"e{i}") for i in range(MAX_EVENTS_PER_OBJECT + 1)]
    with pytest.raises(InvalidEvent, match="per object"):
        feedback(learner, "d1", *many)
    assert logged(learner) == []
    feedback(learner, "d1", *many[:-1])
    assert len(logged(learner)) == MAX_EVENTS_PER_OBJECT
    payload = ubi_bulk(
        ("ubi_events", ubi_doc("d1", "click", "1")),  # over the object's cap
        ("ubi_events", ubi_doc("d1", "play", "2")),  # fine
    )
    asyncio.run(learner.ubi("POST", "/_bulk", payload, stored(201, 201)))
    assert learner.stats.counts["ubi_skipped: over the caps per decision"] == 1
    assert learner.stats.counts["ubi_events"] == 1


# --- metrics ---


def metric(name, **labels):
    from ltrr.plugin.runtime import metrics

    return metrics.REGISTRY.get_sample_value(name, labels) or 0.0


def test_feedback_and_its_rewards_are_counted_in_the_metrics(learner, runtime, clock):
    names = [
        ("ltrr_feedback_events_total", {"source": "api", "outcome": "accepted"}),
        ("ltrr_feedback_events_total", {"source": "api", "outcome": "duplicate"}),
        ("ltrr_arm_reward_count", {"target": "music", "arm": "a"}),
        ("ltrr_arm_reward_sum", {"target": "music", "arm": "a"}),
        ("ltrr_arm_reward_count", {"target": "music", "arm": "b"}),
        ("ltrr_arm_reward_sum", {"target": "music", "arm": "b"}),
        ("ltrr_events_shipped_total", {}),
    ]
    before = [metric(name, **labels) for name, labels in names]
    record(learner, runtime, "d1")
    record(learner, runtime, "d2", included=("a",))
    clock.now = T0 + 3
    click = event("click", "1", position=2, id_="e1")  # a retrieved "1": 1.0 x 2 (debiased)
    play = event("play", "3", position=1, id_="e2")  # only b retrieved "3": 2.0 x 1
    feedback(learner, "d1", click, play)
    feedback(learner, "d1", click)  # a duplicate
    assert asyncio.run(learner.ship_events()) == 2
    clock.now = T0 + WINDOW  # d2 closes without feedback: reward 0 for a, its one arm
    assert learner.sweep() == 1
    pairs = zip(names, before, strict=True)
    moved = [metric(name, **labels) - was for (name, labels), was in pairs]
    assert moved == [
        2,  # accepted
        1,  # duplicate
        3,  # a: the click, the play (0 for a), d2's zero
        2.0,
        2,  # b: the click (0 for b), the play
        2.0,
        2,  # shipped
    ]


def test_skipped_ubi_events_are_refusals_by_reason_in_the_metrics(learner, runtime):
    reasons = ("unknown decision", "invalid event", "other index")
    before = {r: metric("ltrr_feedback_refused_total", source="ubi", reason=r) for r in reasons}
    accepted = metric("ltrr_feedback_events_total", source="ubi", outcome="accepted")
    record(learner, runtime, "d1")
    payload = ubi_bulk(
        ("ubi_events", ubi_doc("d1", "click", "1", ordinal=2)),
        ("ubi_events", ubi_doc("zz", "click", "1")),  # unknown decision
        ("ubi_events", ubi_doc("d1", "hover", "1")),  # not a catalog event type
        ("ubi_events", ubi_doc("d1", "click", "99")),  # never shown
        ("ubi_queries", {"query_id": "d1"}),  # another index
    )
    asyncio.run(learner.ubi("POST", "/_bulk", payload, stored(201, 201, 201, 201, 201)))
    after = {r: metric("ltrr_feedback_refused_total", source="ubi", reason=r) for r in reasons}
    assert {r: after[r] - before[r] for r in reasons} == {
        "unknown decision": 1,
        "invalid event": 2,
        "other index": 1,
    }
    assert metric("ltrr_feedback_events_total", source="ubi", outcome="accepted") == accepted + 1


def test_the_learning_gauges_show_open_decisions_and_the_shipping_lag(learner, runtime, clock):
    learner.publish_gauges()
    assert metric("ltrr_open_decisions") == 0
    assert metric("ltrr_event_log_unshipped_bytes") == 0
    assert metric("ltrr_event_log_lag_seconds") == 0
    record(learner, runtime, "d1")
    record(learner, runtime, "d2")
    feedback(learner, "d1", event("click", "1", id_="e1"))
    learner.shipper.caught_up -= 30.0  # as if the shipper had last caught up 30 s ago
    learner.publish_gauges()
    assert metric("ltrr_open_decisions") == 2
    assert metric("ltrr_open_decisions_bytes") == learner._open.bytes > 0
    assert metric("ltrr_event_log_unshipped_bytes") == learner.events.backlog() > 0
    assert metric("ltrr_event_log_lag_seconds") >= 30.0
    asyncio.run(learner.ship_events())
    clock.now = T0 + WINDOW
    learner.sweep()
    learner.publish_gauges()
    assert metric("ltrr_open_decisions") == 0
    assert metric("ltrr_open_decisions_bytes") == 0
    assert metric("ltrr_event_log_unshipped_bytes") == 0
    assert metric("ltrr_event_log_lag_seconds") == 0


# --- a rollout's baseline side ---

BASELINE_SIDE = {"mode": "split", "side": "baseline", "share": 0.5, "unit": "u", "assigned": True}


def baseline_record(learner, runtime, decision_id="d1"):
    """A baseline search: a fixed plan (no features, no policy), on the baseline's side."""
    found = retrieval()
    learner.record(
        runtime,
        decision_id,
        QUERY,
        {"u": "s1"},
        decision(policy="rollout_baseline"),
        {arm: frozenset(h.id for h in r.hits) for arm, r in found.results.items()},
        ranked(),
        "",
        Served(4.5, {}, None),
        rollout=BASELINE_SIDE,
    )


def test_a_baseline_search_takes_and_logs_clicks_but_teaches_nothing(learner, runtime, clock):
    before = snapshot(runtime)
    baseline_record(learner, runtime)
    assert learner.pending_decisions() == 1
    ((_, doc),) = learner.decisions._queue
    assert (doc["learnable"], doc["rollout"], doc["took_ms"]) == (False, BASELINE_SIDE, 4.5)
    answer = feedback(learner, "d1", event("click", "2", position=1))
    assert answer["accepted"] == 1
    (stored,) = logged(learner)
    assert (stored["decision_id"], stored["object_id"], stored["type"]) == ("d1", "2", "click")
    assert_unchanged(runtime, before)
    clock.now = T0 + WINDOW  # nor does its window close with a reward 0
    learner.sweep()
    assert_unchanged(runtime, before)


def test_a_baseline_search_without_clicks_closes_with_no_reward(learner, runtime, clock):
    before = snapshot(runtime)
    baseline_record(learner, runtime)
    clock.now = T0 + WINDOW
    assert learner.sweep() == 0
    assert learner.pending_decisions() == 0
    assert_unchanged(runtime, before)


def test_another_replicas_baseline_search_takes_clicks(learner, runtime, fake, tmp_path):
    other_registry = make_registry(tmp_path)
    other = learner.__class__(
        fake, other_registry, tmp_path / "other", Stats(), clock=learner.clock, fsync=False
    )
    try:
        baseline_record(other, other_registry.runtimes()[0], "d7")
        ((doc_id, doc),) = other.decisions._queue
        fake.docs[doc_id] = orjson.loads(orjson.dumps(doc))
    finally:
        other.events.close()
    before = snapshot(runtime)
    assert feedback(learner, "d7", event("click", "3"))["accepted"] == 1
    assert [e["decision_id"] for e in logged(learner)] == ["d7"]
    assert_unchanged(runtime, before)


# --- retention of the logs ---


def test_retention_counts_from_the_earlier_of_the_clock_and_the_wall(new_learner, clock):
    learner = new_learner(background=False, retention_days=3)
    seen = []

    async def enforce(now):
        seen.append(now)
        return []

    learner.logs.enforce = enforce
    clock.now = 1_000_000_000.0  # a simulated 2001: its own days are retained
    asyncio.run(learner.retain())
    clock.now = 4_000_000_000.0  # a simulated 2096: today's real days must stay
    before = time.time()
    asyncio.run(learner.retain())
    assert seen[0] == 1_000_000_000.0
    assert before <= seen[1] <= time.time()


def test_a_simulated_clock_retains_once_a_simulated_day(new_learner, clock):
    learner = new_learner(background=False)
    days = []

    async def enforce(now):
        days.append(now // 86_400)
        return []

    learner.logs.enforce = enforce
    start = 1_000_000_000.0  # 2001-09-09 01:46:40 UTC (6,400 s into its day)
    # 23:59:40 is still that day; 00:00:20 is the next.
    for offset in (0.0, 3_600.0, 79_980.0, 80_020.0, 80_100.0):
        clock.now = start + offset
        asyncio.run(learner.due(["music"]))
    assert days == [start // 86_400, start // 86_400 + 1]
