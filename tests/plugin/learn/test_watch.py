"""IndexWatch: a learning index deleted under the proxy is noticed, recreated and counted; for
a log, when every day index behind its alias is gone."""

from __future__ import annotations

import asyncio
import itertools

import orjson

from ltrr.plugin.learn.bulk import (
    DECISIONS_LOG,
    EVENTS_INDEX,
    EVENTS_LOG,
    MEMORY_INDEX,
    STATE_INDEX,
)
from ltrr.plugin.learn.logs import Logs
from ltrr.plugin.learn.watch import IndexWatch
from ltrr.plugin.runtime.upstream import UpstreamReply

NAMES = (STATE_INDEX, MEMORY_INDEX)
NOW = 1_796_169_600.0 + 3_600  # 2026-12-02 01:00 UTC
TODAY = "ltrr-events-2026.12.02"
TOMORROW = "ltrr-events-2026.12.03"


class Cluster:
    """Indices by name with a uuid each (and their aliases); templates recorded."""

    def __init__(self) -> None:
        self.indices: dict[str, str] = {}
        self.aliases: dict[str, set[str]] = {}
        self.templates: dict[str, dict] = {}
        self._uuids = (f"uuid-{n}" for n in itertools.count())

    def create(self, name: str, aliases=()) -> None:
        self.indices[name] = next(self._uuids)
        self.aliases[name] = set(aliases)

    def drop(self, name: str) -> None:
        del self.indices[name]
        del self.aliases[name]

    def resolve(self, name: str) -> list[str]:
        if name in self.indices:
            return [name]
        return sorted(i for i, a in self.aliases.items() if name in a)

    async def request(self, method, path, *, headers, body, timeout):
        name = path.strip("/").split("/")[0]
        if path == "/_cat/plugins?format=json":
            return UpstreamReply(200, b"[]")
        if path.startswith("/_index_template/"):
            self.templates[path.rsplit("/", 1)[1]] = orjson.loads(body)
            return UpstreamReply(200, b'{"acknowledged": true}')
        if "/_settings/index.uuid" in path:
            found = {
                i: {"settings": {"index": {"uuid": self.indices[i]}}}
                for n in name.split(",")
                for i in self.resolve(n)
            }
            return UpstreamReply(200, orjson.dumps(found))
        if path.endswith("/_alias"):
            found = {i: {"aliases": {a: {} for a in self.aliases[i]}} for i in self.resolve(name)}
            return UpstreamReply(200 if found else 404, orjson.dumps(found))
        if method == "HEAD":
            return UpstreamReply(200 if self.resolve(name) else 404, b"")
        if method == "PUT" and path.endswith("/_mapping"):
            return UpstreamReply(200 if self.resolve(name) else 404, b"{}")
        if method == "PUT":
            if name in self.indices:
                return UpstreamReply(400, b'{"error":{"type":"resource_already_exists_exception"}}')
            aliases = orjson.loads(body).get("aliases", {}) if body else {}
            self.create(name, aliases)
            return UpstreamReply(200, b"{}")
        raise AssertionError((method, path))


def watch_of(cluster: Cluster) -> IndexWatch:
    logs = Logs(cluster, (EVENTS_LOG, DECISIONS_LOG), retention_days=30)
    return IndexWatch(cluster, NAMES, logs, clock=lambda: NOW)


def test_templates_are_installed_and_missing_indices_created_at_start():
    cluster = Cluster()
    cluster.create(STATE_INDEX)
    watch = watch_of(cluster)
    asyncio.run(watch.start())
    assert set(cluster.templates) == {STATE_INDEX, MEMORY_INDEX, "ltrr-events", "ltrr-decisions"}
    assert cluster.templates[STATE_INDEX]["index_patterns"] == [STATE_INDEX]
    assert cluster.templates[EVENTS_INDEX]["index_patterns"] == ["ltrr-events-*"]
    assert cluster.templates[EVENTS_INDEX]["template"]["aliases"] == {"ltrr-events": {}}
    # Today's and tomorrow's day indices, each behind its log's alias.
    assert set(cluster.indices) == {
        STATE_INDEX,
        MEMORY_INDEX,
        TODAY,
        TOMORROW,
        "ltrr-decisions-2026.12.02",
        "ltrr-decisions-2026.12.03",
    }
    assert cluster.aliases[TODAY] == {"ltrr-events"}
    assert watch.uuids[EVENTS_INDEX] == {cluster.indices[TODAY], cluster.indices[TOMORROW]}
    assert watch.uuids[STATE_INDEX] == {cluster.indices[STATE_INDEX]}


def test_a_deleted_index_is_recreated_and_counted_and_one_recreated_by_a_write_too():
    cluster = Cluster()
    watch = watch_of(cluster)
    asyncio.run(watch.start())
    assert asyncio.run(watch.check()) == []

    cluster.drop(STATE_INDEX)  # DELETE ltrr-state, say
    cluster.drop(MEMORY_INDEX)
    cluster.create(MEMORY_INDEX)  # deleted, then auto-created by a write: another uuid
    assert asyncio.run(watch.check()) == [STATE_INDEX, MEMORY_INDEX]
    assert STATE_INDEX in cluster.indices
    assert dict(watch.recreated) == {STATE_INDEX: 1, MEMORY_INDEX: 1}
    assert asyncio.run(watch.check()) == []  # noticed once


def test_a_log_is_lost_only_when_none_of_its_day_indices_is_left():
    cluster = Cluster()
    watch = watch_of(cluster)
    asyncio.run(watch.start())

    cluster.drop(TOMORROW)  # one day gone (a retention elsewhere, or by hand): not the log
    assert asyncio.run(watch.check()) == []
    assert TOMORROW not in cluster.indices  # made once a day, not at every check

    cluster.drop(TODAY)  # DELETE *: the whole log gone
    assert asyncio.run(watch.check()) == [EVENTS_INDEX]
    assert {TODAY, TOMORROW} <= set(cluster.indices)  # both made again, behind the alias
    assert cluster.aliases[TODAY] == {"ltrr-events"}
    assert dict(watch.recreated) == {EVENTS_INDEX: 1}
    assert asyncio.run(watch.check()) == []
