"""The learning loop against the real node: feedback in, policies and memory changed, nothing lost.

The index is built so that each query type has one right arm: entity names appear only in
``name`` and topic words only in ``tags``, so ``by_name`` finds the artist an entity query
means and ``by_tag`` finds what a topic query means, never the other way round.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import orjson
import pytest
import requests
from opensearchpy import OpenSearch

from integration_tests.plugin.conftest import model_dir
from ltrr.plugin.learn.bulk import DECISIONS_INDEX, EVENTS_INDEX, MEMORY_INDEX, STATE_INDEX
from ltrr.plugin.learn.tokens import TOKEN_HEADER
from ltrr.query_plans.memory import predicted_q2e

FIRST = ["zorblat", "quintrel", "mavoric", "pellucid", "tarnow", "vesper", "ombrio", "kelvane"]
LAST = ["dumont", "ferraway", "glisk", "hollund"]
TOPICS = ["shoegaze", "krautrock", "zydeco", "mariachi", "gamelan", "polka", "fado", "qawwali"]


def _artists() -> list[tuple[str, str, list[str]]]:
    rng = np.random.default_rng(3)
    out = []
    for i, first in enumerate(FIRST):
        for j, last in enumerate(LAST[:2]):
            tags = [TOPICS[(i + j) % len(TOPICS)], TOPICS[(i * 3 + j + 1) % len(TOPICS)]]
            out.append((f"{first}-{last}", f"{first.title()} {last.title()}", tags))
    rng.shuffle(out)
    return out


ARTISTS = _artists()

MAPPING = {
    "settings": {"index": {"number_of_shards": 1, "number_of_replicas": 0}},
    "mappings": {
        "properties": {
            "name": {"type": "text", "fields": {"keyword": {"type": "keyword"}}},
            "tags": {"type": "text"},
            "ltrr_q2e": {"type": "rank_features"},
            "ltrr_q2e_predicted": {"type": "rank_features"},
        }
    },
}


def catalog(target: str, policy: str, *, memory_arm: bool = False, window: float = 3.0) -> str:
    memory = (
        "  - name: memory\n    template: memory.json.j2\n"
        "    size: {min: 5, max: 5}\n    cost: 0.05\n"
        if memory_arm
        else ""
    )
    return f"""\
target: {target}
budget: 20
deadline_ms: 5000
features:
  entity_field: name.keyword
policy: {policy}
arms:
  - name: by_name
    template: multi_match.json.j2
    params: {{fields: [name]}}
    size: {{min: 5, max: 5}}
    cost: 0.3
  - name: by_tag
    template: multi_match.json.j2
    params: {{fields: [tags]}}
    size: {{min: 5, max: 5}}
    cost: 0.3
{memory}fusion: {{method: rrf, k: 60}}
fallback:
  - {{arm: by_name, size: 5}}
feedback:
  events: {{click: 1.0, play: 2.0, skip: -0.5}}
  window_seconds: {window}
memory:
  name_fields: [name]
  phrase_fields: [tags]
  flush_seconds: 0.5
"""


LINUCB = "{name: linucb, alpha: 0.3, min_probability: 0.02, temperature: 0.1}"


def _create_index(client: OpenSearch) -> str:
    name = f"ltrr-it-learn-{uuid.uuid4().hex[:8]}"
    client.indices.create(index=name, body=MAPPING)
    for doc_id, artist, tags in ARTISTS:
        predicted = predicted_q2e([artist], tags)
        client.index(
            index=name,
            id=doc_id,
            body={"name": artist, "tags": tags, "ltrr_q2e_predicted": predicted},
        )
    client.indices.refresh(index=name)
    return name


@pytest.fixture(scope="module")
def learn_index(client: OpenSearch) -> str:
    name = _create_index(client)
    yield name
    client.indices.delete(index=name, ignore_unavailable=True)


@pytest.fixture
def memory_index(client: OpenSearch) -> str:
    """An index of its own: the memory is written on the documents, whichever alias learned."""
    name = _create_index(client)
    yield name
    client.indices.delete(index=name, ignore_unavailable=True)


@pytest.fixture
def make_target(client: OpenSearch, learn_index: str, tmp_path: Path):
    """An alias of the learning index with its own catalog, so each test has its own state."""

    def make(policy: str = LINUCB, index: str | None = None, **options) -> tuple[str, Path]:
        index = index or learn_index
        alias = f"{index}-{uuid.uuid4().hex[:6]}"
        client.indices.put_alias(index=index, name=alias)
        path = tmp_path / f"{alias}.yml"
        path.write_text(catalog(alias, policy, **options))
        return alias, path

    return make


# decision id -> the feedback token its search returned, as a client keeps it
TOKENS: dict[str, str] = {}


def search(url: str, target: str, query: str, **ltrr) -> dict:
    body = {"size": 10, "ext": {"ltrr": {"query": query, **ltrr}}}
    response = requests.post(f"{url}/{target}/_search", json=body, timeout=30)
    assert response.status_code == 200, response.text
    answer = response.json()
    if "feedback_token" in answer["ext"]["ltrr"]:
        TOKENS[answer["ext"]["ltrr"]["decision_id"]] = answer["ext"]["ltrr"]["feedback_token"]
    return answer


def feedback_token(decision_id: str) -> str:
    return TOKENS.get(decision_id, "no-search-returned-one")


def feedback(url: str, decision_id: str, events: list[dict]) -> requests.Response:
    return requests.post(
        f"{url}/_ltrr/feedback",
        json={"decision_id": decision_id, "events": events},
        headers={TOKEN_HEADER: feedback_token(decision_id)},
        timeout=30,
    )


def ubi_click(url: str, decision_id: str, object_id: str, ordinal: int) -> None:
    doc = {
        "action_name": "click",
        "query_id": decision_id,
        "client_id": "simulated-user",
        "timestamp": datetime.now(UTC).isoformat(),
        "message_type": "INFO",
        "event_attributes": {
            "object": {"object_id": object_id, "object_id_field": "_id"},
            "position": {"ordinal": ordinal},
        },
    }
    response = requests.post(f"{url}/ubi_events/_doc", json=doc, timeout=30)
    assert response.status_code in (200, 201), response.text


def stats(url: str) -> dict:
    return requests.get(f"{url}/_ltrr/stats", timeout=10).json()


def catalog_stats(url: str, target: str) -> dict:
    for entry in stats(url)["catalogs"].values():
        if entry["targets"] == [target]:
            return entry
    raise AssertionError(f"no catalog for {target}")


def wait_for(condition, timeout: float = 20.0, interval: float = 0.2):
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met in {timeout}s (last value {value!r})")
        time.sleep(interval)


def settle(url: str, target: str) -> None:
    """Wait until every decision's window has closed, then for two more state merges."""
    wait_for(lambda: stats(url)["learning"]["decisions_pending"] == 0, timeout=30)
    merges = stats(url)["learning"]["state"][target]["merges"]
    wait_for(lambda: stats(url)["learning"]["state"][target]["merges"] >= merges + 2, timeout=30)


def simulate(url: str, target: str, rounds: int, seed: int) -> list[tuple[str, dict]]:
    """Alternate entity and topic queries; the user clicks what the query meant, if shown.

    Even rounds answer through ``/_ltrr/feedback``, odd rounds through UBI ``ubi_events``.
    """
    rng = np.random.default_rng(seed)
    out = []
    for i in range(rounds):
        if i % 2 == 0:
            doc_id, artist, _ = ARTISTS[rng.integers(len(ARTISTS))]
            kind, query, wanted = "entity", artist, {doc_id}
        else:
            topic = TOPICS[rng.integers(len(TOPICS))]
            kind, query = "topic", topic
            wanted = {d for d, _, tags in ARTISTS if topic in tags}
        answer = search(url, target, query, context={"segment": "sim"})
        decision_id = answer["ext"]["ltrr"]["decision_id"]
        ids = [h["_id"] for h in answer["hits"]["hits"]]
        clicked = [(rank, d) for rank, d in enumerate(ids, start=1) if d in wanted][:1]
        for rank, doc in clicked:
            if (i // 2) % 2 == 0:
                event = {"type": "click", "object_id": doc, "position": rank}
                response = feedback(url, decision_id, [event])
                assert response.status_code == 202, response.text
            else:
                ubi_click(url, decision_id, doc, rank)
        out.append((kind, answer["ext"]["ltrr"]))
    return out


def mean_propensity(history: list[tuple[str, dict]], kind: str, arm: str, part: slice) -> float:
    values = [ext["arms"][arm]["propensity"] for k, ext in history if k == kind]
    return float(np.mean(values[part]))


def test_online_loop_shifts_each_query_type_to_the_arm_that_finds_it(
    start_proxy, make_target, tmp_path
):
    target, path = make_target()
    with start_proxy([path], tmp_path / "proxy.log") as proxy:
        history = simulate(proxy.url, target, rounds=240, seed=11)
        counters = stats(proxy.url)
    early, late = slice(0, 2), slice(-20, None)  # the first decisions, against the last
    name_entity = [mean_propensity(history, "entity", "by_name", p) for p in (early, late)]
    tag_entity = [mean_propensity(history, "entity", "by_tag", p) for p in (early, late)]
    name_topic = [mean_propensity(history, "topic", "by_name", p) for p in (early, late)]
    tag_topic = [mean_propensity(history, "topic", "by_tag", p) for p in (early, late)]
    # Entity queries move to by_name, topic queries to by_tag, each away from the other arm.
    assert tag_entity[1] < tag_entity[0] - 0.3, tag_entity
    assert name_topic[1] < name_topic[0] - 0.3, name_topic
    assert name_entity[1] > tag_entity[1] + 0.5, (name_entity, tag_entity)
    assert tag_topic[1] > name_topic[1] + 0.5, (tag_topic, name_topic)
    # Both intake paths were used and learned from.
    assert counters["feedback_events"] >= 50
    assert counters["ubi_events"] >= 50


def test_ubi_events_reach_opensearch_unchanged(client, start_proxy, make_target, tmp_path):
    target, path = make_target()
    with start_proxy([path], tmp_path / "proxy.log") as proxy:
        answer = search(proxy.url, target, FIRST[0].title() + " " + LAST[0].title())
        decision_id = answer["ext"]["ltrr"]["decision_id"]
        doc = answer["hits"]["hits"][0]["_id"]
        ubi_click(proxy.url, decision_id, doc, 1)
        client.indices.refresh(index="ubi_events")
        found = client.search(
            index="ubi_events", body={"query": {"term": {"query_id.keyword": decision_id}}}
        )["hits"]["hits"]
        assert len(found) == 1
        assert found[0]["_source"]["event_attributes"]["object"]["object_id"] == doc
        wait_for(lambda: stats(proxy.url).get("ubi_events") == 1)


def test_bad_feedback_gets_a_400_with_the_reason(start_proxy, make_target, tmp_path):
    target, path = make_target()
    with start_proxy([path], tmp_path / "proxy.log") as proxy:
        answer = search(proxy.url, target, "shoegaze")
        decision_id = answer["ext"]["ltrr"]["decision_id"]
        shown = answer["hits"]["hits"][0]["_id"]
        cases = [
            (b"{not json", "not valid JSON"),
            (
                {
                    "decision_id": "no-such-decision",
                    "events": [{"type": "click", "object_id": shown}],
                },
                "unknown decision",
            ),
            (
                {
                    "decision_id": decision_id,
                    "events": [{"type": "click", "object_id": "never-shown"}],
                },
                "never shown",
            ),
            (
                {"decision_id": decision_id, "events": [{"type": "purchase", "object_id": shown}]},
                "not an event type",
            ),
            (
                {
                    "decision_id": decision_id,
                    "events": [{"type": "click", "object_id": shown, "position": 0}],
                },
                "position",
            ),
            ({"decision_id": decision_id, "events": []}, "non-empty"),
        ]
        for body, reason in cases:
            if isinstance(body, bytes):
                response = requests.post(f"{proxy.url}/_ltrr/feedback", data=body, timeout=10)
            else:
                signed = {TOKEN_HEADER: feedback_token(body["decision_id"])}
                response = requests.post(
                    f"{proxy.url}/_ltrr/feedback", json=body, headers=signed, timeout=10
                )
            assert response.status_code == 400, (body, response.text)
            error = response.json()
            assert error["status"] == 400
            assert reason in error["error"]["reason"], (reason, error)
        # Duplicates and out-of-order events are harmless: idempotent by event id.
        events = [
            {"type": "play", "object_id": shown, "id": "e2", "timestamp": 2_000},
            {"type": "click", "object_id": shown, "id": "e1", "timestamp": 1_000},
        ]
        first = feedback(proxy.url, decision_id, events)
        again = feedback(proxy.url, decision_id, events[::-1])
        assert first.status_code == again.status_code == 202
        assert first.json()["accepted"] == 2
        assert again.json() == {**first.json(), "accepted": 0, "duplicates": 2}
        version = catalog_stats(proxy.url, target)["policy_version"]
        assert version == sum(
            1 for info in answer["ext"]["ltrr"]["arms"].values() if info["included"]
        )


def test_decision_without_feedback_counts_as_reward_zero_when_its_window_closes(
    start_proxy, make_target, tmp_path
):
    target, path = make_target(window=1.0)
    with start_proxy([path], tmp_path / "proxy.log") as proxy:
        answer = search(proxy.url, target, "gamelan")
        included = [a for a, i in answer["ext"]["ltrr"]["arms"].items() if i["included"]]
        assert catalog_stats(proxy.url, target)["policy_version"] == 0
        arms = wait_for(
            lambda: (
                catalog_stats(proxy.url, target)["policy_arms"]
                if catalog_stats(proxy.url, target)["policy_version"]
                else None
            )
        )
        assert {a for a, s in arms.items() if s["n"] == 1} == set(included)
        assert all(s["b_abs_sum"] == 0.0 for s in arms.values())
        late = feedback(
            proxy.url,
            answer["ext"]["ltrr"]["decision_id"],
            [{"type": "click", "object_id": answer["hits"]["hits"][0]["_id"]}],
        )
        assert late.status_code == 400
        assert "window" in late.json()["error"]["reason"]


def _memory_rank(answer: dict, doc_id: str) -> int | None:
    for hit in answer["hits"]["hits"]:
        if hit["_id"] == doc_id:
            ranks = [p["rank"] for p in hit["_ltrr"]["provenance"] if p["arm"] == "memory"]
            return ranks[0] if ranks else None
    return None


def test_memory_serves_predicted_then_learned_query_entity_pairs(
    client, start_proxy, make_target, memory_index, tmp_path
):
    target, path = make_target("{name: static}", index=memory_index, memory_arm=True)
    with start_proxy([path], tmp_path / "proxy.log") as proxy:
        # Predicted at index time from the entity's own name: found before any feedback.
        doc_id, artist, _ = ARTISTS[0]
        answer = search(proxy.url, target, artist.lower(), explain=True)
        assert _memory_rank(answer, doc_id) == 1
        # Learned: a topic query; the user plays an artist that is not first in memory.
        topic = TOPICS[2]
        answer = search(proxy.url, target, topic, explain=True)
        tagged = [
            h["_id"]
            for h in answer["hits"]["hits"]
            if h["_id"] in {d for d, _, tags in ARTISTS if topic in tags}
        ]
        engaged = tagged[-1]
        response = feedback(
            proxy.url,
            answer["ext"]["ltrr"]["decision_id"],
            [{"type": "play", "object_id": engaged, "position": 3}],
        )
        assert response.status_code == 202

        def learned():
            client.indices.refresh(index=target)
            return client.get(index=target, id=engaged)["_source"].get("ltrr_q2e", {}).get(topic)

        score = wait_for(learned)
        # The smoothed engagement rate: weight 2 over (2 searches counted, or the weight) + 5.
        assert score == pytest.approx(2.0 / (2.0 + 5.0), rel=1e-2), score
        client.indices.refresh(index=target)
        again = search(proxy.url, target, topic.upper() + "!", explain=True)
        assert _memory_rank(again, engaged) == 1
        assert again["ext"]["ltrr"]["arms"]["memory"]["hits"] >= 1


def _arm_totals(history: list[dict]) -> int:
    return sum(
        1
        for ext in history
        for info in ext["arms"].values()
        if info["included"] and info.get("status") == "ok"
    )


def test_two_replicas_converge_to_the_sum_of_their_feedback(
    client, start_proxy, make_target, tmp_path
):
    target, path = make_target(window=2.0)
    with (
        start_proxy([path], tmp_path / "r1.log", merge_seconds=0.5) as r1,
        start_proxy([path], tmp_path / "r2.log", merge_seconds=0.5) as r2,
    ):
        history = [ext for _, ext in simulate(r1.url, target, rounds=30, seed=1)]
        history += [ext for _, ext in simulate(r2.url, target, rounds=30, seed=2)]
        # Feedback for a decision another replica made: read from ltrr-decisions, b only.
        answer = search(r1.url, target, "polka")
        time.sleep(1.5)  # the decision log is written about every second
        response = feedback(
            r2.url,
            answer["ext"]["ltrr"]["decision_id"],
            [{"type": "click", "object_id": answer["hits"]["hits"][0]["_id"]}],
        )
        assert response.status_code == 202, response.text
        history.append(answer["ext"]["ltrr"])
        expected = _arm_totals(history)

        def converged():
            one = catalog_stats(r1.url, target)
            two = catalog_stats(r2.url, target)
            if one["policy_version"] != expected or two["policy_version"] != expected:
                return None
            return one, two

        one, two = wait_for(converged, timeout=30)
        for arm, mine in one["policy_arms"].items():
            theirs = two["policy_arms"][arm]
            assert mine["n"] == theirs["n"]
            assert mine["b_abs_sum"] == pytest.approx(theirs["b_abs_sum"], rel=1e-9)
            assert mine["a_trace"] == pytest.approx(theirs["a_trace"], rel=1e-9)
        client.indices.refresh(index=STATE_INDEX)
        docs = client.search(
            index=STATE_INDEX, body={"query": {"term": {"target": target}}, "size": 20}
        )["hits"]["hits"]
        stored = {d["_source"]["arm"]: d["_source"] for d in docs}
        assert sum(stored[arm]["n"] for arm in one["policy_arms"]) == expected


def _probe(url: str, target: str) -> list[dict]:
    queries = ["Zorblat Dumont", "shoegaze", "Tarnow Ferraway", "fado", "kelvane"]
    return [search(url, target, q, context={"segment": "probe"})["ext"]["ltrr"] for q in queries]


def test_restart_resumes_the_same_policy(start_proxy, make_target, tmp_path):
    target, path = make_target(window=1.0)
    with start_proxy([path], tmp_path / "cold.log", data_dir=tmp_path / "cold") as cold:
        cold_probe = _probe(cold.url, target)
        cold.process.kill()  # before any window closes: nothing learned or stored
    target, path = make_target(window=1.0)
    data = tmp_path / "data"
    with start_proxy([path], tmp_path / "a.log", data_dir=data, merge_seconds=0.5) as a:
        simulate(a.url, target, rounds=60, seed=5)
        settle(a.url, target)
        before = catalog_stats(a.url, target)["policy_version"]
        probe_a = _probe(a.url, target)
        a.process.kill()  # the probes' windows stay open: the stored state is the settled one
    with start_proxy([path], tmp_path / "b.log", data_dir=data) as b:
        assert catalog_stats(b.url, target)["policy_version"] == before
        probe_b = _probe(b.url, target)
        b.process.kill()  # the probes' windows stay open: B learned nothing from them
    with start_proxy([path], tmp_path / "c.log", data_dir=data) as c:
        probe_c = _probe(c.url, target)
    for ext_a, ext_b, ext_c in zip(probe_a, probe_b, probe_c, strict=True):
        for arm in ext_a["arms"]:
            assert ext_b["arms"][arm]["propensity"] == pytest.approx(
                ext_a["arms"][arm]["propensity"], abs=1e-9
            )
        # Same seed, same statistics: the very same decisions.
        decided = ("included", "size", "propensity", "score")
        for arm, info in ext_c["arms"].items():
            assert {k: info[k] for k in decided} == {k: ext_b["arms"][arm][k] for k in decided}
    moved = [
        abs(b["arms"][arm]["propensity"] - cold["arms"][arm]["propensity"])
        for b, cold in zip(probe_b, cold_probe, strict=True)
        for arm in b["arms"]
    ]
    assert max(moved) > 0.2


SAFE_PLANS = "{name: safe_plans, epsilon: 0.2, ridge: 1.0}"


def test_safe_plans_restarts_with_what_it_learned(client, start_proxy, make_target, tmp_path):
    """A plan policy's statistics go to ltrr-state, one document per plan, and a restarted
    proxy serves them: the same per-plan counts and sums, the same version."""
    target, path = make_target(policy=SAFE_PLANS, window=1.0)
    data = tmp_path / "data"
    with start_proxy([path], tmp_path / "a.log", data_dir=data, merge_seconds=0.5) as a:
        simulate(a.url, target, rounds=60, seed=5)
        settle(a.url, target)
        before = catalog_stats(a.url, target)
        a.process.kill()
    assert before["policy_version"] > 0
    client.indices.refresh(index=STATE_INDEX)
    docs = client.search(
        index=STATE_INDEX, body={"query": {"term": {"target": target}}, "size": 50}
    )["hits"]["hits"]
    stored = {d["_source"]["arm"]: d["_source"] for d in docs if "n" in d["_source"]}
    assert "plan:all" in stored
    assert sum(doc["n"] for doc in stored.values()) == before["policy_version"]
    with start_proxy([path], tmp_path / "b.log", data_dir=data) as b:
        after = catalog_stats(b.url, target)
    assert after["policy_version"] == before["policy_version"]
    for plan, mine in before["policy_arms"].items():
        assert after["policy_arms"][plan]["n"] == mine["n"]
        assert after["policy_arms"][plan]["b_abs_sum"] == pytest.approx(mine["b_abs_sum"])


def test_sigkill_mid_burst_loses_no_acknowledged_event(client, start_proxy, make_target, tmp_path):
    target, path = make_target(window=600.0)
    data = tmp_path / "data"
    acked: list[str] = []
    sent: list[str] = []
    lock = threading.Lock()
    with start_proxy([path], tmp_path / "a.log", data_dir=data) as proxy:
        # Enough decisions, and events spread over their hits, to stay within the caps per
        # decision and per object.
        found = (search(proxy.url, target, t) for t in TOPICS for _ in range(6))
        answers = [a for a in found if a["hits"]["hits"]]
        stop = threading.Event()

        def burst(worker: int) -> None:
            session = requests.Session()
            n = 0
            while not stop.is_set():
                answer = answers[(worker + n) % len(answers)]
                hits = answer["hits"]["hits"]
                event_id = f"w{worker}-{n}"
                n += 1
                with lock:
                    sent.append(event_id)
                event = {
                    "type": "click",
                    "object_id": hits[(worker + n // len(answers)) % len(hits)]["_id"],
                    "id": event_id,
                }
                try:
                    response = session.post(
                        f"{proxy.url}/_ltrr/feedback",
                        json={
                            "decision_id": answer["ext"]["ltrr"]["decision_id"],
                            "events": [event],
                        },
                        headers={TOKEN_HEADER: answer["ext"]["ltrr"]["feedback_token"]},
                        timeout=10,
                    )
                except requests.RequestException:
                    return
                if response.status_code == 202:
                    with lock:
                        acked.append(event_id)

        workers = [threading.Thread(target=burst, args=(w,)) for w in range(8)]
        for w in workers:
            w.start()
        wait_for(lambda: len(acked) >= 300, timeout=60, interval=0.01)
        os.kill(proxy.process.pid, signal.SIGKILL)
        proxy.process.wait()
        stop.set()
        for w in workers:
            w.join()
    assert len(acked) >= 300
    decision_ids = [a["ext"]["ltrr"]["decision_id"] for a in answers]
    with start_proxy([path], tmp_path / "b.log", data_dir=data):

        def shipped():
            client.indices.refresh(index=EVENTS_INDEX)
            body = {"query": {"terms": {"decision_id": decision_ids}}}
            return client.count(index=EVENTS_INDEX, body=body)["count"] >= len(acked) and True

        wait_for(shipped, timeout=30)
    client.indices.refresh(index=EVENTS_INDEX)
    found = []
    body = {
        "query": {"terms": {"decision_id": decision_ids}},
        "size": 10_000,
        "_source": ["event_id"],
    }
    for hit in client.search(index=EVENTS_INDEX, body=body)["hits"]["hits"]:
        found.append(hit["_source"]["event_id"])
    assert set(acked) <= set(found)  # every acknowledged event arrived
    assert len(found) == len(set(found))  # exactly once
    assert set(found) <= set(sent)  # and nothing that was never sent


def test_catalog_change_keeps_other_arms_drops_removed_and_starts_added_at_the_prior(
    client, start_proxy, make_target, tmp_path
):
    target, path = make_target(window=1.0)
    data = tmp_path / "data"
    with start_proxy([path], tmp_path / "v1.log", data_dir=data, merge_seconds=0.5) as v1:
        simulate(v1.url, target, rounds=20, seed=8)
        settle(v1.url, target)
        before = catalog_stats(v1.url, target)["policy_arms"]
    kept = before["by_name"]
    assert kept["n"] > 0
    # v2: by_tag removed, by_both added.
    text = (
        path.read_text()
        .replace("name: by_tag", "name: by_both")
        .replace("params: {fields: [tags]}", "params: {fields: [name, tags]}")
    )
    assert "by_both" in text
    path.write_text(text)
    with start_proxy([path], tmp_path / "v2.log", data_dir=data, merge_seconds=0.5) as v2:
        arms = catalog_stats(v2.url, target)["policy_arms"]
        assert arms["by_name"] == kept
        n_features = len(search(v2.url, target, "fado", explain=True)["ext"]["ltrr"]["features"])
        prior = {"n": 0, "b_abs_sum": 0.0, "a_trace": float(n_features)}  # ridge 1: A = I
        assert arms["by_both"] == prior
        client.indices.refresh(index=STATE_INDEX)
        docs = client.search(
            index=STATE_INDEX, body={"query": {"term": {"target": target}}, "size": 20}
        )["hits"]["hits"]
        stored = {d["_source"]["arm"]: d["_source"] for d in docs}
        assert "by_tag" not in stored
        assert stored["_catalog"]["arms"] == ["by_name", "by_both"]
        assert stored["by_name"]["n"] == kept["n"]
        assert "arms removed ['by_tag'] dropped" in (tmp_path / "v2.log").read_text()


def test_memory_predict_fills_an_index_loaded_without_it(
    client, opensearch_url, start_proxy, tmp_path
):
    from ltrr.plugin.ops.predict import predict_memory

    name = f"ltrr-it-learn-{uuid.uuid4().hex[:8]}"
    plain = {k: v for k, v in MAPPING["mappings"]["properties"].items() if k in ("name", "tags")}
    client.indices.create(index=name, body={**MAPPING, "mappings": {"properties": plain}})
    try:
        for doc_id, artist, tags in ARTISTS:
            client.index(index=name, id=doc_id, body={"name": artist, "tags": tags})
        client.index(index=name, id="no-metadata", body={"other": 1})
        client.indices.refresh(index=name)
        path = tmp_path / "catalog.yml"
        path.write_text(catalog(name, "{name: static}", memory_arm=True))
        counts = predict_memory(path, opensearch_url)
        assert counts == {"documents": 17, "updated": 16, "without_metadata": 1}
        mapping = client.indices.get_mapping(index=name)[name]["mappings"]["properties"]
        assert mapping["ltrr_q2e"] == mapping["ltrr_q2e_predicted"] == {"type": "rank_features"}
        doc_id, artist, tags = ARTISTS[3]
        source = client.get(index=name, id=doc_id)["_source"]
        assert source["ltrr_q2e_predicted"] == predicted_q2e([artist], tags)
        with start_proxy([path], tmp_path / "proxy.log") as proxy:
            answer = search(proxy.url, name, artist.upper(), explain=True)
            assert _memory_rank(answer, doc_id) == 1
    finally:
        client.indices.delete(index=name, ignore_unavailable=True)


def _vector_catalog(target: str) -> str:
    return f"""\
target: {target}
budget: 30
deadline_ms: 5000
embedding:
  model: ${{LTRR_MODEL_DIR}}
policy: {{name: static}}
arms:
  - name: by_name
    template: multi_match.json.j2
    params: {{fields: [name]}}
    size: {{min: 10, max: 10}}
  - name: dense
    template: knn.json.j2
    params: {{field: embedding}}
    needs_vector: true
    size: {{min: 10, max: 10}}
  - name: memory
    template: memory.json.j2
    size: {{min: 10, max: 10}}
fusion: {{method: rrf, k: 60}}
fallback:
  - {{arm: by_name, size: 10}}
feedback:
  events: {{click: 1.0}}
  window_seconds: 3
memory:
  name_fields: [name]
  phrase_fields: [tags]
  flush_seconds: 0.5
source: {{excludes: [embedding]}}
"""


VECTOR_MAPPING = {
    "settings": {"index": {"number_of_shards": 1, "number_of_replicas": 0, "knn": True}},
    "mappings": {
        "properties": {
            **MAPPING["mappings"]["properties"],
            "embedding": {
                "type": "knn_vector",
                "dimension": 384,
                "method": {"name": "hnsw", "engine": "lucene", "space_type": "cosinesimil"},
            },
        }
    },
}


def test_memory_writes_keep_every_field_and_the_dense_arm_still_finds_them(
    client, start_proxy, embed, tmp_path
):
    name = f"ltrr-it-learn-{uuid.uuid4().hex[:8]}"
    client.indices.create(index=name, body=VECTOR_MAPPING)
    try:
        originals = {}
        for doc_id, artist, tags in ARTISTS:
            originals[doc_id] = {
                "name": artist,
                "tags": tags,
                "embedding": embed(f"{artist} {' '.join(tags)}"),
                "ltrr_q2e_predicted": predicted_q2e([artist], tags),
            }
            client.index(index=name, id=doc_id, body=originals[doc_id])
        client.indices.refresh(index=name)
        path = tmp_path / "vectors.yml"
        path.write_text(_vector_catalog(name))
        clicked = [doc_id for doc_id, _, _ in ARTISTS[:8]]
        with start_proxy([path], tmp_path / "proxy.log") as proxy:
            for i, (doc_id, artist, _) in enumerate(ARTISTS[:8]):
                answer = search(proxy.url, name, artist)
                assert "embedding" not in answer["hits"]["hits"][0]["_source"]  # off the wire
                ids = [h["_id"] for h in answer["hits"]["hits"]]
                rank = ids.index(doc_id) + 1
                decision_id = answer["ext"]["ltrr"]["decision_id"]
                if i % 2 == 0:  # both intake paths
                    response = feedback(
                        proxy.url,
                        decision_id,
                        [{"type": "click", "object_id": doc_id, "position": rank}],
                    )
                    assert response.status_code == 202, response.text
                else:
                    ubi_click(proxy.url, decision_id, doc_id, rank)

            def learned_all() -> bool:
                client.indices.refresh(index=name)
                docs = client.mget(index=name, body={"ids": clicked})["docs"]
                return all(d["_source"].get("ltrr_q2e") for d in docs)

            wait_for(learned_all, timeout=30)
            learning = stats(proxy.url)["learning"]
            assert learning["memory_pairs_written"] >= len(clicked)
            assert learning["memory_pairs_refused"] == 0

            client.indices.refresh(index=name)
            for doc_id, original in originals.items():
                source = client.get(index=name, id=doc_id)["_source"]
                learned = source.pop("ltrr_q2e", None)
                assert (learned is not None) == (doc_id in clicked), doc_id
                assert set(source) == set(original), doc_id  # every field is still there
                assert source["name"] == original["name"]
                assert source["tags"] == original["tags"]
                assert source["ltrr_q2e_predicted"] == pytest.approx(original["ltrr_q2e_predicted"])
                assert source["embedding"] == pytest.approx(original["embedding"])
            for doc_id in clicked:
                # The index still holds each updated document's vector: its own finds it first.
                own = client.search(
                    index=name,
                    body={
                        "size": 1,
                        "_source": False,
                        "query": {
                            "knn": {"embedding": {"vector": originals[doc_id]["embedding"], "k": 1}}
                        },
                    },
                )["hits"]["hits"]
                assert [h["_id"] for h in own] == [doc_id]
                artist = originals[doc_id]["name"]
                answer = search(
                    proxy.url, name, f"{artist} {' '.join(originals[doc_id]['tags'])}", explain=True
                )
                hit = next(h for h in answer["hits"]["hits"] if h["_id"] == doc_id)
                assert "dense" in {p["arm"] for p in hit["_ltrr"]["provenance"]}, hit
    finally:
        client.indices.delete(index=name, ignore_unavailable=True)


def test_a_catalog_whose_memory_would_lose_a_field_is_refused_at_start(
    client, opensearch_url, tmp_path
):
    name = f"ltrr-it-learn-{uuid.uuid4().hex[:8]}"
    lossy = {
        **VECTOR_MAPPING,
        "mappings": {**VECTOR_MAPPING["mappings"], "_source": {"excludes": ["embedding"]}},
    }
    client.indices.create(index=name, body=lossy)
    try:
        path = tmp_path / "lossy.yml"
        path.write_text(_vector_catalog(name))
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "ltrr.plugin.ops.cli",
                "serve",
                "--catalog",
                str(path),
                "--opensearch",
                opensearch_url,
                "--listen",
                "127.0.0.1:0",
                "--data-dir",
                str(tmp_path / "data"),
            ],
            capture_output=True,
            text=True,
            timeout=120,
            env={**os.environ, "LTRR_MODEL_DIR": str(model_dir())},
        )
        assert done.returncode == 1, done.stdout + done.stderr
        assert (
            f"index {name} keeps embedding (mappings._source.excludes) out of _source"
            in done.stderr
        )
    finally:
        client.indices.delete(index=name, ignore_unavailable=True)


def test_memory_predict_refuses_an_index_that_keeps_a_field_out_of_source(
    client, opensearch_url, tmp_path
):
    from ltrr.plugin.errors import LtrrError
    from ltrr.plugin.ops.predict import predict_memory

    name = f"ltrr-it-learn-{uuid.uuid4().hex[:8]}"
    lossy = {
        **MAPPING,
        "mappings": {**MAPPING["mappings"], "_source": {"excludes": ["tags"]}},
    }
    client.indices.create(index=name, body=lossy)
    try:
        client.index(index=name, id="a", body={"name": "Zorblat", "tags": ["polka"]}, refresh=True)
        path = tmp_path / "catalog.yml"
        path.write_text(catalog(name, "{name: static}", memory_arm=True))
        with pytest.raises(LtrrError, match=rf"{name} keeps tags \(mappings._source.excludes\)"):
            predict_memory(path, opensearch_url)
        hit = client.search(index=name, body={"query": {"match": {"tags": "polka"}}})
        assert [h["_id"] for h in hit["hits"]["hits"]] == ["a"]  # untouched: still found
    finally:
        client.indices.delete(index=name, ignore_unavailable=True)


# -- intake: what the proxy acknowledges, OpenSearch can store ---------------------------------


def _events_of(client: OpenSearch, decision_id: str) -> set[str]:
    client.indices.refresh(index=EVENTS_INDEX)
    body = {"query": {"term": {"decision_id": decision_id}}, "size": 1000, "_source": ["event_id"]}
    return {
        h["_source"]["event_id"]
        for h in client.search(index=EVENTS_INDEX, body=body)["hits"]["hits"]
    }


def test_events_ltrr_events_would_refuse_are_400s_and_never_block_the_rest(
    client, start_proxy, make_target, tmp_path
):
    target, path = make_target(window=600.0)
    with start_proxy([path], tmp_path / "proxy.log") as proxy:
        answer = search(proxy.url, target, "shoegaze")
        decision_id = answer["ext"]["ltrr"]["decision_id"]
        shown = [h["_id"] for h in answer["hits"]["hits"]]
        click = {"type": "click", "object_id": shown[0]}
        refused = [
            {**click, "id": "é" * 300},  # 300 characters, 600 bytes: over the _id cap
            {**click, "position": 2**31},  # past an integer field
        ]
        for event in refused:
            response = feedback(proxy.url, decision_id, [event])
            assert response.status_code == 400, (event, response.text)
            assert response.json()["error"]["type"] == "illegal_argument_exception"
        # A timestamp of a microsecond past the epoch once shipped as 1e-6, which the date
        # mapping refuses: it is stored to the millisecond now.
        tiny = {**click, "id": "tiny", "timestamp": "1970-01-01T00:00:00.000001Z"}
        assert feedback(proxy.url, decision_id, [tiny]).status_code == 202
        later = [
            {"type": "click", "object_id": shown[i % len(shown)], "id": f"later-{i}", "position": 1}
            for i in range(20)
        ]
        assert feedback(proxy.url, decision_id, later).status_code == 202
        expected = {"tiny", *(e["id"] for e in later)}
        wait_for(lambda: _events_of(client, decision_id) == expected, timeout=30)
        assert stats(proxy.url)["learning"]["events_dead_lettered"] == 0


def test_a_record_ltrr_events_can_never_store_goes_to_the_dead_letters(
    client, start_proxy, make_target, tmp_path
):
    """Records already in the durable log (written by an older version, say) that OpenSearch
    refuses: one whose id fails the whole _bulk, one whose position fails its item."""
    from ltrr.plugin.learn.eventlog import EventLog

    target, path = make_target()
    data = tmp_path / "data"
    decision_id = f"dead-{uuid.uuid4().hex[:8]}"

    def event(event_id: str, **extra) -> bytes:
        doc = {
            "event_id": event_id,
            "decision_id": decision_id,
            "type": "click",
            "object_id": "x",
            "position": 1,
            "value": None,
            "timestamp": 1_700_000_000.0,
            "source": "api",
            "target": target,
            **extra,
        }
        return orjson.dumps(doc)

    log = EventLog(data / "events")
    log.append([event("x" * 600), event("huge", position=2**40), event("good")])
    log.close()
    with start_proxy([path], tmp_path / "proxy.log", data_dir=data) as proxy:
        wait_for(lambda: _events_of(client, decision_id) == {"good"}, timeout=30)
        learning = stats(proxy.url)["learning"]
        assert learning["events_dead_lettered"] == 2
        assert learning["events_unshipped_bytes"] == 0
    letters = [orjson.loads(line) for line in (data / "dead-letter.jsonl").read_text().splitlines()]
    assert sorted(letter["record"]["event_id"] for letter in letters) == ["huge", "x" * 600]
    assert all(letter["index"] == EVENTS_INDEX and letter["reason"] for letter in letters)


def test_ubi_events_opensearch_refused_are_not_learned(client, start_proxy, make_target, tmp_path):
    target, path = make_target(window=600.0)
    with start_proxy([path], tmp_path / "proxy.log") as proxy:
        answer = search(proxy.url, target, "shoegaze")
        decision_id = answer["ext"]["ltrr"]["decision_id"]
        shown = [h["_id"] for h in answer["hits"]["hits"]]

        def doc(object_id: str, ordinal: int) -> dict:
            return {
                "action_name": "click",
                "query_id": decision_id,
                "client_id": "simulated-user",
                "timestamp": datetime.now(UTC).isoformat(),
                "event_attributes": {
                    "object": {"object_id": object_id, "object_id_field": "_id"},
                    "position": {"ordinal": ordinal},
                },
            }

        lines = b""
        for d in (doc(shown[0], 1), doc(shown[1], 2**64)):  # past a long: OpenSearch refuses it
            lines += orjson.dumps({"index": {"_index": "ubi_events"}}) + b"\n"
            lines += json.dumps(d).encode() + b"\n"  # orjson refuses an int past 64 bits
        response = requests.post(
            f"{proxy.url}/_bulk",
            data=lines,
            headers={"Content-Type": "application/x-ndjson"},
            timeout=30,
        )
        assert response.status_code == 200, response.text
        statuses = [item["index"]["status"] for item in response.json()["items"]]
        assert statuses == [201, 400]
        # The proxy answers the write first and learns right after: wait for it.
        counters = wait_for(lambda: (c := stats(proxy.url)).get("ubi_events") and c)
        assert counters["ubi_events"] == 1
        assert counters["ubi_skipped: refused by OpenSearch"] == 1
        wait_for(lambda: len(_events_of(client, decision_id)) == 1, timeout=30)


def test_a_decision_id_opensearch_could_not_store_is_a_400_and_the_log_keeps_flowing(
    start_proxy, make_target, tmp_path
):
    target, path = make_target()
    with start_proxy([path], tmp_path / "proxy.log") as proxy:
        for ext in (
            {"ltrr": {"query": "shoegaze", "decision_id": "é" * 300}},
            {"ltrr": {"query": "shoegaze"}, "ubi": {"query_id": "q" * 513}},
        ):
            response = requests.post(f"{proxy.url}/{target}/_search", json={"ext": ext}, timeout=30)
            assert response.status_code == 400, response.text
            assert "512 bytes" in response.json()["error"]["reason"]
        search(proxy.url, target, "shoegaze", decision_id="é" * 256)  # 512 bytes: fine
        wait_for(lambda: stats(proxy.url)["learning"]["decisions_logged"] == 1, timeout=30)
        assert stats(proxy.url)["learning"]["decisions_dropped"] == 0


def test_deleted_learning_indices_are_recreated_and_the_learned_state_written_back(
    client, start_proxy, make_target, tmp_path
):
    """A client's test suite runs ``DELETE *``: the proxy notices, recreates its indices with
    their mappings, says so, and writes back the statistics it holds instead of starting
    over."""
    target, path = make_target(window=1.0)
    with start_proxy([path], tmp_path / "proxy.log", merge_seconds=0.5) as proxy:
        simulate(proxy.url, target, rounds=20, seed=3)
        settle(proxy.url, target)
        before = catalog_stats(proxy.url, target)["policy_version"]
        assert before > 0
        loop = (STATE_INDEX, MEMORY_INDEX, DECISIONS_INDEX, EVENTS_INDEX)
        # Every concrete index: the two logs' names are aliases over their day indices.
        doomed = (STATE_INDEX, MEMORY_INDEX, f"{DECISIONS_INDEX}-*", f"{EVENTS_INDEX}-*")
        client.indices.delete(index=",".join(doomed))

        def recreated():
            return set(stats(proxy.url)["learning"]["indices_recreated"]) == set(loop)

        wait_for(recreated, timeout=30)
        for name in loop:
            assert client.indices.exists(index=name)
        days = client.indices.get_mapping(index=EVENTS_INDEX)  # today's and tomorrow's
        assert days
        assert all(
            m["mappings"]["properties"]["timestamp"]["type"] == "date" for m in days.values()
        )

        def written_back():
            client.indices.refresh(index=STATE_INDEX)
            body = {"query": {"term": {"target": target}}, "size": 100}
            docs = client.search(index=STATE_INDEX, body=body)["hits"]["hits"]
            return sum(d["_source"].get("n", 0) for d in docs)

        wait_for(lambda: written_back() == before, timeout=30)
        assert catalog_stats(proxy.url, target)["policy_version"] == before
        assert "was deleted" in proxy.log.read_text()
        # The loop goes on: a new decision and its event arrive in the new indices.
        answer = search(proxy.url, target, "shoegaze")
        decision_id = answer["ext"]["ltrr"]["decision_id"]
        event = {"type": "click", "object_id": answer["hits"]["hits"][0]["_id"], "id": "after"}
        assert feedback(proxy.url, decision_id, [event]).status_code == 202
        wait_for(lambda: _events_of(client, decision_id) == {"after"}, timeout=30)


# -- who may send feedback, and how much; who may read the stats -----------------------------


def test_feedback_needs_the_token_its_search_returned(client, start_proxy, make_target, tmp_path):
    target, path = make_target(window=600.0)
    with start_proxy([path], tmp_path / "proxy.log") as proxy:
        answer = search(proxy.url, target, "shoegaze")
        ltrr = answer["ext"]["ltrr"]
        decision_id = ltrr["decision_id"]
        click = {"type": "click", "object_id": answer["hits"]["hits"][0]["_id"]}
        body = {"decision_id": decision_id, "events": [click]}
        other = search(proxy.url, target, "krautrock")["ext"]["ltrr"]["feedback_token"]
        for headers in ({}, {TOKEN_HEADER: "0" * 32}, {TOKEN_HEADER: other}):
            response = requests.post(
                f"{proxy.url}/_ltrr/feedback", json=body, headers=headers, timeout=30
            )
            assert response.status_code == 403, response.text
            assert response.json()["error"]["type"] == "security_exception"
        assert stats(proxy.url).get("feedback_events", 0) == 0
        signed = {TOKEN_HEADER: ltrr["feedback_token"]}
        response = requests.post(
            f"{proxy.url}/_ltrr/feedback", json=body, headers=signed, timeout=30
        )
        assert response.status_code == 202, response.text


def test_one_decision_takes_a_bounded_number_of_events(client, start_proxy, make_target, tmp_path):
    """Once 10,000 events for one decision were accepted in 10 requests."""
    target, path = make_target(window=600.0)
    with start_proxy([path], tmp_path / "proxy.log") as proxy:
        answer = search(proxy.url, target, "shoegaze")
        decision_id = answer["ext"]["ltrr"]["decision_id"]
        shown = [h["_id"] for h in answer["hits"]["hits"]]
        statuses = []
        for r in range(10):
            events = [
                {"type": "click", "object_id": shown[i % len(shown)], "id": f"r{r}-{i}"}
                for i in range(1000)
            ]
            statuses.append(feedback(proxy.url, decision_id, events).status_code)
        assert statuses == [400] * 10  # all or nothing: each would pass the caps
        small = [{"type": "click", "object_id": o, "id": f"ok-{o}"} for o in shown]
        assert feedback(proxy.url, decision_id, small).status_code == 202
        learned = stats(proxy.url)["feedback_events"]
        assert learned == len(shown) <= 100


def test_stats_need_the_admin_token_when_one_is_set(start_proxy, make_target, tmp_path):
    _, path = make_target()
    with start_proxy([path], tmp_path / "proxy.log", admin_token="op-secret") as proxy:
        refused = requests.get(f"{proxy.url}/_ltrr/stats", timeout=10)
        assert refused.status_code == 403
        assert refused.json()["error"]["type"] == "security_exception"
        assert str(path) not in refused.text  # no catalog path to a stranger
        allowed = requests.get(
            f"{proxy.url}/_ltrr/stats", headers={"X-LTRR-Admin-Token": "op-secret"}, timeout=10
        )
        assert allowed.status_code == 200
        assert str(path) in allowed.text
