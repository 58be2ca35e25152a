"""Bounded logs against the real node (which has no ISM): daily indices named by each
document's own time behind one alias, the proxy's retention, a legacy index moved behind the
alias, the memory's key cap in painless, and off-policy evaluation across days.

Every name here has a prefix of its own (``LTRR_INDEX_PREFIX`` for the proxies), so that other
runs on the same node never meet these indices."""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import requests
from opensearchpy import OpenSearch

from integration_tests.plugin.learn.test_learning import (
    LINUCB,
    TOKENS,
    _create_index,
    catalog,
    feedback_token,
)
from ltrr.plugin.learn.bulk import EVENTS_INDEX, LOG_BODIES, PREFIX_ENV, write
from ltrr.plugin.learn.logs import Logs, TimeLog
from ltrr.plugin.learn.memorize import capped_update
from ltrr.plugin.learn.tokens import TOKEN_HEADER
from ltrr.plugin.runtime.clock import SIM_TIME_HEADER
from ltrr.plugin.runtime.upstream import AiohttpTransport, make_session

D1 = 1_767_225_600.0  # 2026-01-01 00:00:00 UTC: simulated days before today
DAY = 86_400.0


def names(day: float, alias: str) -> str:
    return f"{alias}-{datetime.fromtimestamp(day, UTC):%Y.%m.%d}"


@pytest.fixture
def prefix(client: OpenSearch) -> Iterator[str]:
    """A prefix of our own; everything made under it is deleted afterwards."""
    mine = f"ltrr-t15-{uuid.uuid4().hex[:8]}"
    yield mine
    client.indices.delete(index=f"{mine}-*", ignore_unavailable=True)
    for log in ("events", "decisions", "state", "memory"):
        client.indices.delete_index_template(name=f"{mine}-{log}", ignore=[404])


def run(opensearch_url: str, step):
    async def go():
        async with make_session() as session:
            return await step(AiohttpTransport(opensearch_url, session))

    return asyncio.run(go())


def event(n: int, received: float) -> dict:
    return {"event_id": f"e{n}", "decision_id": f"d{n}", "type": "click", "received": received}


def test_three_days_land_in_three_indices_the_alias_reads_them_and_retention_deletes_the_old(
    client: OpenSearch, opensearch_url: str, prefix: str
):
    log = TimeLog(f"{prefix}-events", "received", LOG_BODIES[EVENTS_INDEX])
    docs = [
        event(1, D1 + 5),
        event(2, D1 + DAY - 0.001),  # the last millisecond of the 1st
        event(3, D1 + DAY),  # the first of the 2nd
        event(4, D1 + DAY + 3_600),
        event(5, D1 + 2 * DAY + 60),
        event(6, D1 + 2 * DAY + 70),
    ]
    actions = [({"index": {"_index": log.index_of(d), "_id": d["event_id"]}}, d) for d in docs]
    now = D1 + 2 * DAY + 43_200  # noon on the 3rd
    logs = Logs(None, [log], retention_days=1)  # type: ignore[arg-type]

    async def write_all(transport):
        logs.transport = transport
        await logs.ensure(now)
        first = await write(transport, actions)
        again = await write(transport, actions)  # the shipper's resend after a crash
        return first, again

    first, again = run(opensearch_url, write_all)
    assert logs.ism is False  # this node has no ISM: the proxy enforces the retention
    assert len(first.stored) == len(again.stored) == 6
    day1, day2, day3, day4 = (names(D1 + k * DAY, log.alias) for k in range(4))
    made = client.indices.get_alias(name=log.alias)
    # The 1st and 2nd were made by the writes (from the template), the 3rd and 4th ahead.
    assert set(made) == {day1, day2, day3, day4}
    mapping = client.indices.get_mapping(index=day1)[day1]["mappings"]
    assert mapping["properties"]["received"]["type"] == "date"
    client.indices.refresh(index=log.alias)
    by_day = {i: client.count(index=i)["count"] for i in (day1, day2, day3, day4)}
    assert by_day == {day1: 2, day2: 2, day3: 2, day4: 0}
    assert client.count(index=log.alias)["count"] == 6  # read through the alias, no duplicate

    # Someone else's indices near ours: a name with more after the day, and an index of
    # another name that carries our alias. Neither is ours to delete.
    client.indices.create(index=f"{log.alias}-2020.01.01-keep")
    other = f"{prefix}-other-2020.01.01"
    client.indices.create(index=other, body={"aliases": {log.alias: {}}})

    # Retention 1 day at noon on the 3rd: the cut is noon on the 2nd. The 1st ended at
    # midnight before it: deleted. The 2nd ends at midnight after it: kept.
    deleted = run(opensearch_url, lambda t: _enforce(logs, t, now))
    assert deleted == [day1]
    assert not client.indices.exists(index=day1)
    assert client.indices.exists(index=f"{log.alias}-2020.01.01-keep")
    assert client.indices.exists(index=other)
    client.indices.refresh(index=log.alias)
    assert client.count(index=log.alias)["count"] == 4
    # A day later the 2nd is wholly past too; the 3rd is not.
    assert run(opensearch_url, lambda t: _enforce(logs, t, now + DAY)) == [day2]


async def _enforce(logs: Logs, transport, now: float) -> list[str]:
    logs.transport = transport
    return await logs.enforce(now)


def test_a_concrete_index_from_before_is_moved_behind_the_alias_losing_nothing(
    client: OpenSearch, opensearch_url: str, prefix: str
):
    log = TimeLog(f"{prefix}-events", "received", LOG_BODIES[EVENTS_INDEX])
    client.indices.create(index=log.alias, body=dict(LOG_BODIES[EVENTS_INDEX]))
    for n in range(3):
        client.index(index=log.alias, id=f"old{n}", body=event(n, D1 - 10 * DAY + n))
    client.indices.refresh(index=log.alias)
    now = D1
    logs = Logs(None, [log], retention_days=30)  # type: ignore[arg-type]
    run(opensearch_url, lambda t: _ensure(logs, t, now))

    aliases = client.indices.get_alias(name=log.alias)
    assert log.legacy in aliases  # the old index's documents, behind the alias
    assert client.indices.exists_alias(name=log.alias)
    client.indices.refresh(index=log.alias)
    assert client.count(index=log.alias)["count"] == 3
    # Started again, nothing more happens: the name is an alias now.
    run(opensearch_url, lambda t: _ensure(logs, t, now))
    assert client.count(index=log.legacy)["count"] == 3
    # The legacy index goes when its newest document (10 days before D1, + 2 s) is past.
    assert run(opensearch_url, lambda t: _enforce(logs, t, now)) == []
    logs.retention_days = 9
    assert run(opensearch_url, lambda t: _enforce(logs, t, now)) == [log.legacy]


async def _ensure(logs: Logs, transport, now: float) -> None:
    logs.transport = transport
    await logs.ensure(now)


def test_the_memory_cap_keeps_the_best_keys_in_painless(client: OpenSearch, prefix: str):
    index = f"{prefix}-entities"
    body = {
        "settings": {"number_of_shards": 1, "number_of_replicas": 0},
        "mappings": {"properties": {"name": {"type": "text"}, "q": {"type": "rank_features"}}},
    }
    client.indices.create(index=index, body=body)
    client.index(index=index, id="1", body={"name": "x", "q": {"a": 0.5, "b": 0.2}}, refresh=True)
    # b drops to 0.1; c 0.3 and d 0.2 arrive: five keys' worth for three places.
    update = capped_update("q", {"c": 0.3, "d": 0.2, "b": 0.1}, 3)
    client.bulk(body=[{"update": {"_index": index, "_id": "1"}}, update], refresh=True)
    assert client.get(index=index, id="1")["_source"] == {
        "name": "x",
        "q": {"a": 0.5, "c": 0.3, "d": 0.2},
    }
    # The memory arm's query finds the kept keys, and no longer the dropped one.
    for key, found in (("c", 1), ("a", 1), ("b", 0)):
        query = {"query": {"rank_feature": {"field": f"q.{key}"}}}
        assert client.search(index=index, body=query)["hits"]["total"]["value"] == found, key


def _sim_search(url: str, target: str, query: str, when: float) -> dict:
    body = {"size": 10, "ext": {"ltrr": {"query": query}}}
    headers = {SIM_TIME_HEADER: str(when)}
    response = requests.post(f"{url}/{target}/_search", json=body, headers=headers, timeout=30)
    assert response.status_code == 200, response.text
    answer = response.json()
    TOKENS[answer["ext"]["ltrr"]["decision_id"]] = answer["ext"]["ltrr"]["feedback_token"]
    return answer


def test_decisions_and_events_of_three_simulated_days_are_read_across_days_then_retained(
    client: OpenSearch, opensearch_url: str, prefix: str, start_proxy, tmp_path: Path
):
    target = _create_index(client)
    try:
        path = tmp_path / "days.yml"
        path.write_text(catalog(target, LINUCB, window=600.0))
        env = {PREFIX_ENV: prefix}
        options = {"environment": env, "model": False}
        clicked = 0
        with start_proxy(
            [path], tmp_path / "proxy.log", extra_args=["--simulated-clock"], **options
        ) as proxy:
            for day in range(3):
                for k, query in enumerate(("shoegaze", "dream pop")):
                    when = D1 + day * DAY + 3_600 * (k + 1)
                    answer = _sim_search(proxy.url, target, query, when)
                    decision_id = answer["ext"]["ltrr"]["decision_id"]
                    if k == 0:  # one click a day
                        hit = answer["hits"]["hits"][0]["_id"]
                        reply = requests.post(
                            f"{proxy.url}/_ltrr/feedback",
                            json={
                                "decision_id": decision_id,
                                "events": [{"type": "click", "object_id": hit, "id": f"c{day}"}],
                            },
                            headers={
                                TOKEN_HEADER: feedback_token(decision_id),
                                SIM_TIME_HEADER: str(when + 1),
                            },
                            timeout=30,
                        )
                        assert reply.status_code == 202, reply.text
                        clicked += 1
        # Stopped: every decision and event is written, each in its own simulated day.
        client.indices.refresh(index=f"{prefix}-decisions,{prefix}-events")
        for log in ("decisions", "events"):
            alias = f"{prefix}-{log}"
            counts = {
                names(D1 + k * DAY, alias): client.count(index=names(D1 + k * DAY, alias))["count"]
                for k in range(3)
            }
            per_day = 2 if log == "decisions" else 1
            assert counts == {names(D1 + k * DAY, alias): per_day for k in range(3)}, log

        # Off-policy evaluation reads the decisions, and their rewards, across the days.
        ope = subprocess.run(
            [
                sys.executable,
                "-m",
                "ltrr.plugin.ops.cli",
                "ope",
                "--decisions",
                f"{prefix}-decisions",
                "--target-catalog",
                str(path),
                "--opensearch",
                opensearch_url,
            ],
            env={**os.environ, **env},
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert ope.returncode == 0, ope.stderr
        assert "read 6: 6 used" in ope.stdout, ope.stdout
        # The rewards are joined from the events of all three days: 3 clicks worth 1 each over
        # 6 decisions is a logged value of 0.5.
        assert re.search(r"^logged\s+0\.500\s", ope.stdout, re.MULTILINE), ope.stdout

        # The proxy's own retention, on the simulated clock: 1 day, at noon on the 3rd.
        with start_proxy(
            [path],
            tmp_path / "proxy2.log",
            extra_args=["--simulated-clock", "--retention-days", "1"],
            **options,
        ) as proxy:
            now = D1 + 2 * DAY + 43_200
            tick = requests.post(
                f"{proxy.url}/_ltrr/_sim/clock", json={"now": now, "targets": [target]}, timeout=60
            )
            assert tick.status_code == 200, tick.text
        for log in ("decisions", "events"):
            alias = f"{prefix}-{log}"
            left = set(client.indices.get_alias(name=alias))
            assert names(D1, alias) not in left, log
            assert {names(D1 + DAY, alias), names(D1 + 2 * DAY, alias)} <= left, log
    finally:
        client.indices.delete(index=target, ignore_unavailable=True)
