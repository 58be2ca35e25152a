"""Learning under real access control: UBI events are learned only when OpenSearch stored them
for the user who sent them, feedback needs its decision's token, and the memory writes as
the proxy's own identity (and, without one, is refused by the node and says so)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import requests

from integration_tests.plugin.conftest import Proxy
from integration_tests.security.conftest import SecuredNode, Targets, stats, through, wait_for
from ltrr.plugin.learn.bulk import EVENTS_INDEX
from ltrr.plugin.learn.tokens import TOKEN_HEADER


def _search(proxy: Proxy, node: SecuredNode, user: str, target: str, word: str) -> dict[str, Any]:
    body = {"query": {"match": {"name": word}}, "size": 10}
    reply = through(proxy, node, "POST", f"/{target}/_search", user, json=body)
    assert reply.status_code == 200, reply.text
    answer: dict[str, Any] = reply.json()
    assert answer["hits"]["hits"], answer
    return answer


def _ubi_event(decision_id: str, object_id: str) -> dict[str, Any]:
    return {
        "action_name": "click",
        "query_id": decision_id,
        "client_id": "sec-test",
        "timestamp": datetime.now(UTC).isoformat(),
        "message_type": "INFO",
        "event_attributes": {
            "object": {"object_id": object_id, "object_id_field": "_id"},
            "position": {"ordinal": 1},
        },
    }


def _stored_ubi(node: SecuredNode, decision_id: str) -> int:
    node.direct("POST", "/ubi_events/_refresh")
    reply = node.direct(
        "POST",
        "/ubi_events/_search",
        json={"query": {"term": {"query_id.keyword": decision_id}}},
    )
    assert reply.status_code == 200, reply.text
    return int(reply.json()["hits"]["total"]["value"])


def _learned(proxy: Proxy) -> int:
    return int(stats(proxy).get("ubi_events", 0))


def test_alices_ubi_event_is_stored_and_learned_from(
    proxy, secured: SecuredNode, targets: Targets
) -> None:
    answer = _search(proxy, secured, "alice", targets.a, "zorblat")
    decision_id = answer["ext"]["ltrr"]["decision_id"]
    clicked = answer["hits"]["hits"][0]["_id"]
    before = _learned(proxy)
    reply = through(
        proxy, secured, "POST", "/ubi_events/_doc", "alice", json=_ubi_event(decision_id, clicked)
    )
    assert reply.status_code == 201, reply.text
    # Learned once OpenSearch's answer is in (the client has it already).
    wait_for(lambda: _learned(proxy) == before + 1)
    assert _stored_ubi(secured, decision_id) == 1

    # The learned event reaches ltrr-events, shipped as the proxy's own identity.
    def shipped() -> int:
        secured.direct("POST", f"/{EVENTS_INDEX}/_refresh")
        found = secured.direct(
            "POST",
            f"/{EVENTS_INDEX}/_search",
            json={"query": {"term": {"decision_id": decision_id}}},
        )
        return int(found.json()["hits"]["total"]["value"]) if found.status_code == 200 else 0

    assert wait_for(shipped) == 1


def test_bobs_ubi_event_is_refused_by_opensearch_and_not_learned(
    proxy, secured: SecuredNode, targets: Targets
) -> None:
    answer = _search(proxy, secured, "bob", targets.b, "quintrel")
    decision_id = answer["ext"]["ltrr"]["decision_id"]
    clicked = answer["hits"]["hits"][0]["_id"]
    event = _ubi_event(decision_id, clicked)
    before = stats(proxy)

    direct = secured.direct("POST", "/ubi_events/_doc", "bob", json=event)
    proxied = through(proxy, secured, "POST", "/ubi_events/_doc", "bob", json=event)
    assert direct.status_code == proxied.status_code == 403, proxied.text
    assert proxied.json()["error"]["type"] == direct.json()["error"]["type"] == "security_exception"

    # The same event in a _bulk: OpenSearch answers 200 and refuses the item.
    line = json.dumps({"index": {"_index": "ubi_events"}}) + "\n" + json.dumps(event) + "\n"
    bulk = through(
        proxy,
        secured,
        "POST",
        "/_bulk",
        "bob",
        data=line,
        headers={"Content-Type": "application/x-ndjson"},
    )
    assert bulk.status_code == 200, bulk.text
    (item,) = bulk.json()["items"]
    assert item["index"]["status"] == 403

    skipped = "ubi_skipped: refused by OpenSearch"
    after = wait_for(lambda: (s := stats(proxy)).get(skipped, 0) > before.get(skipped, 0) and s)
    assert after[skipped] == before.get(skipped, 0) + 1
    assert after.get("ubi_events", 0) == before.get("ubi_events", 0)  # nothing learned
    assert _stored_ubi(secured, decision_id) == 0


def _q2e(node: SecuredNode, target: str, doc_id: str) -> dict[str, float]:
    reply = node.direct("GET", f"/{target}/_doc/{doc_id}")
    assert reply.status_code == 200, reply.text
    return dict(reply.json()["_source"].get("ltrr_q2e") or {})


def _feedback(proxy: Proxy, answer: dict[str, Any], doc_id: str, token: str | None) -> Any:
    ltrr = answer["ext"]["ltrr"]
    headers = {TOKEN_HEADER: token} if token is not None else {}
    return requests.post(
        f"{proxy.url}/_ltrr/feedback",
        json={
            "decision_id": ltrr["decision_id"],
            "events": [{"type": "click", "object_id": doc_id, "position": 1}],
        },
        headers=headers,
        timeout=30,
    )


def test_feedback_with_the_token_writes_the_memory_as_the_proxy_not_as_the_reader(
    proxy, secured: SecuredNode, targets: Targets
) -> None:
    """Bob may only read sec-b-*; his feedback still teaches the memory, whose partial update
    of the document goes as the proxy user: the one write bob cannot make himself."""
    answer = _search(proxy, secured, "bob", targets.b, "kelvane")
    clicked = answer["hits"]["hits"][0]["_id"]
    assert clicked == "kelvane-hollund"
    assert "kelvane" not in _q2e(secured, targets.b, clicked)

    assert _feedback(proxy, answer, clicked, None).status_code == 403
    assert _feedback(proxy, answer, clicked, "not-the-token").status_code == 403
    accepted = _feedback(proxy, answer, clicked, answer["ext"]["ltrr"]["feedback_token"])
    assert accepted.status_code == 202, accepted.text
    assert accepted.json()["accepted"] == 1

    learned = wait_for(lambda: _q2e(secured, targets.b, clicked).get("kelvane"))
    assert learned > 0
    assert stats(proxy)["learning"]["memory_pairs_written"] >= 1
    # Bob himself may not make that write.
    own = secured.direct(
        "POST", f"/{targets.b}/_update/{clicked}", "bob", json={"doc": {"ltrr_q2e": {"x": 1.0}}}
    )
    assert own.status_code == 403, own.text


def test_without_its_own_identity_the_memory_is_refused_by_the_node_and_says_so(
    start_secured_proxy, secured: SecuredNode, targets: Targets, tmp_path
) -> None:
    """No LTRR_OPENSEARCH_AUTHORIZATION: the proxy's own writes carry no credentials, so the
    secured node refuses them; searches and feedback still work for the user, and the failed
    memory writes are counted in /_ltrr/stats and logged, never silent."""
    log = tmp_path / "proxy.log"
    with start_secured_proxy(log, identity=None) as bare:
        answer = _search(bare, secured, "alice", targets.a, "pellucid")
        clicked = answer["hits"]["hits"][0]["_id"]
        accepted = _feedback(bare, answer, clicked, answer["ext"]["ltrr"]["feedback_token"])
        assert accepted.status_code == 202, accepted.text

        def refused() -> dict[str, Any] | None:
            learning = stats(bare)["learning"]
            failing = learning["memory_flush_failures"] >= 2
            return learning if failing and "401" in (learning["memory_last_error"] or "") else None

        learning = wait_for(refused)
        assert learning["memory_pairs_written"] == 0
        assert learning["memory_pending_keys"] >= 1  # kept for when it can write
        assert "pellucid" not in _q2e(secured, targets.a, clicked)
    assert "memory flush failed" in log.read_text()
