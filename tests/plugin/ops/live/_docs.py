"""Hand-written decision and event documents, shaped as the proxy writes them."""

from __future__ import annotations

from ltrr.plugin.ops.live.read import Period

NAMES = ["entity_exact", "entity_prefix", "quoted_phrase", "query_tokens"]


def decision(
    decision_id,
    timestamp,
    query,
    features,
    arms,
    *,
    took=None,
    timings=None,
    fallback=None,
    learnable=True,
    policy="linucb",
    context=None,
):
    """``arms``: name -> (included, ok)."""
    doc = {
        "decision_id": decision_id,
        "target": "music",
        "catalog": "abc",
        "policy": policy,
        "timestamp": timestamp,
        "query": query,
        "context": context or {},
        "learnable": learnable,
        "feature_names": NAMES if features is not None else [],
        "features": features,
        "arms": {
            name: {"included": inc, "ok": ok, "size": 5, "propensity": 0.5}
            for name, (inc, ok) in arms.items()
        },
    }
    if took is not None:
        doc.update(took_ms=took, timings_ms=timings or {}, fallback=fallback)
    return doc


def event(decision_id, rewards, kind="click"):
    return {"decision_id": decision_id, "type": kind, "rewards": rewards, "received": 2000}


ENTITY = [1.0, 1.0, 0.0, 0.2]
ONE_WORD = [0.0, 0.0, 0.0, 0.1]


def period(with_latency=True, contexts=None):
    """Four searches 10 s apart: two for a name, one word, one fallback of four words."""
    contexts = contexts or [None] * 4
    lat = with_latency
    decisions = [
        decision(
            "d1", 1000.0, "daft punk", ENTITY,
            {"lexical": (True, True), "dense": (True, True), "memory": (False, True)},
            took=10.0 if lat else None, timings={"decide": 1.0, "retrieve": 8.0},
            context=contexts[0],
        ),
        decision(
            "d2", 1010.0, "jazz", ONE_WORD,
            {"lexical": (True, True), "dense": (True, False), "memory": (False, True)},
            took=30.0 if lat else None, timings={"decide": 2.0, "retrieve": 25.0},
            context=contexts[1],
        ),
        decision(
            "d3", 1020.0, "music from the nineties", None,
            {"lexical": (True, True), "dense": (False, True), "memory": (False, True)},
            took=20.0 if lat else None, timings={"decide": 3.0},
            fallback="policy error: KeyError('x')", learnable=False, policy="static",
            context=contexts[2],
        ),
        decision(
            "d4", 1030.0, "Daft Punk", ENTITY,
            {"lexical": (True, True), "dense": (False, True), "memory": (False, True)},
            took=40.0 if lat else None, timings={"decide": 4.0, "retrieve": 30.0},
            context=contexts[3],
        ),
    ]  # fmt: skip
    events = [
        event("d1", {"lexical": 1.0, "dense": 1.0}),
        event("d1", {"lexical": 0.0, "dense": 2.0}, "play"),
        event("d2", {"lexical": 1.0}),  # dense failed: the learner pays only arms that answered
        event("old", {"lexical": 5.0}),  # a decision from before the period
    ]
    return Period(900.0, 1100.0, ("music",), decisions, events)
