"""IndexWatch: a learning index deleted under the proxy is noticed, recreated and counted."""

from __future__ import annotations

import asyncio
import itertools

import orjson

from ltrr.plugin.learn.bulk import DECISIONS_INDEX, EVENTS_INDEX, STATE_INDEX
from ltrr.plugin.learn.watch import IndexWatch
from ltrr.plugin.runtime.upstream import UpstreamReply

NAMES = (EVENTS_INDEX, DECISIONS_INDEX, STATE_INDEX)


class Cluster:
    """Indices by name with a uuid each; templates recorded; a DELETE drops an index."""

    def __init__(self) -> None:
        self.indices: dict[str, str] = {}
        self.templates: dict[str, dict] = {}
        self._uuids = (f"uuid-{n}" for n in itertools.count())

    def create(self, name: str) -> None:
        self.indices[name] = next(self._uuids)

    async def request(self, method, path, *, headers, body, timeout):
        name = path.strip("/").split("/")[0]
        if path.startswith("/_index_template/"):
            self.templates[path.rsplit("/", 1)[1]] = orjson.loads(body)
            return UpstreamReply(200, b'{"acknowledged": true}')
        if "/_settings/index.uuid" in path:
            wanted = name.split(",")
            found = {
                n: {"settings": {"index": {"uuid": self.indices[n]}}}
                for n in wanted
                if n in self.indices
            }
            return UpstreamReply(200, orjson.dumps(found))
        if method == "HEAD":
            return UpstreamReply(200 if name in self.indices else 404, b"")
        if method == "PUT" and path.endswith("/_mapping"):
            return UpstreamReply(200, b"{}")
        if method == "PUT":
            self.create(name)
            return UpstreamReply(200, b"{}")
        raise AssertionError((method, path))


def test_templates_are_installed_and_missing_indices_created_at_start():
    cluster = Cluster()
    cluster.create(EVENTS_INDEX)
    watch = IndexWatch(cluster, NAMES)
    asyncio.run(watch.start())
    assert set(cluster.templates) == set(NAMES)
    assert cluster.templates[STATE_INDEX]["index_patterns"] == [STATE_INDEX]
    assert set(cluster.indices) == set(NAMES)
    assert watch.uuids == cluster.indices


def test_a_deleted_index_is_recreated_and_counted_and_one_recreated_by_a_write_too():
    cluster = Cluster()
    watch = IndexWatch(cluster, NAMES)
    asyncio.run(watch.start())
    assert asyncio.run(watch.check()) == []

    del cluster.indices[STATE_INDEX]  # DELETE *, say
    cluster.create(EVENTS_INDEX)  # deleted, then auto-created by a write: another uuid
    assert asyncio.run(watch.check()) == [EVENTS_INDEX, STATE_INDEX]
    assert STATE_INDEX in cluster.indices
    assert dict(watch.recreated) == {EVENTS_INDEX: 1, STATE_INDEX: 1}

    assert asyncio.run(watch.check()) == []  # noticed once
    assert watch.uuids == cluster.indices
