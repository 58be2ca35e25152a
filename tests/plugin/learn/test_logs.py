"""Daily log indices: named by the document's own UTC day, deleted once wholly past the
retention (by the proxy, or by an ISM policy when the cluster has ISM)."""

from __future__ import annotations

import asyncio

import orjson
import pytest

from ltrr.plugin.learn.bulk import DECISIONS_LOG, EVENTS_LOG
from ltrr.plugin.learn.logs import (
    Logs,
    TimeLog,
    cutoff,
    days_between,
    expired,
    has_ism,
    ism_policy,
)
from ltrr.plugin.runtime.upstream import UpstreamError, UpstreamReply

MIDNIGHT = 1_796_169_600.0  # 2026-12-02 00:00:00 UTC (1796169600 / 86400 = 20789 days)
LOG = TimeLog("t-events", "received", {"mappings": {"properties": {}}})


def test_a_document_is_filed_under_its_own_utc_day_across_midnight():
    assert LOG.index_for(MIDNIGHT - 0.001) == "t-events-2026.12.01"
    assert LOG.index_for(MIDNIGHT) == "t-events-2026.12.02"
    assert LOG.index_for(MIDNIGHT + 86_399.999) == "t-events-2026.12.02"
    assert LOG.index_for(MIDNIGHT + 86_400) == "t-events-2026.12.03"


def test_a_document_index_comes_from_its_time_field_not_the_clock():
    assert EVENTS_LOG.index_of({"received": MIDNIGHT - 1, "timestamp": MIDNIGHT}) == (
        "ltrr-events-2026.12.01"
    )
    assert DECISIONS_LOG.index_of({"timestamp": MIDNIGHT}) == "ltrr-decisions-2026.12.02"
    # An event line from before ``received`` was written: its own timestamp.
    assert EVENTS_LOG.index_of({"timestamp": MIDNIGHT + 5}) == "ltrr-events-2026.12.02"
    assert EVENTS_LOG.index_of({"received": True}) == "ltrr-events-1970.01.01"


def test_only_our_exact_day_names_have_a_day():
    assert LOG.day_start("t-events-2026.12.02") == MIDNIGHT
    for other in (
        "t-events",
        "t-events-legacy",
        "t-events-2026.12.02-copy",
        "t-events-2026.13.02",  # no such month
        "t-events-2026.12.2",
        "x-t-events-2026.12.02",
        "t-eventsX2026.12.02",
    ):
        assert LOG.day_start(other) is None, other


def test_a_day_goes_once_its_whole_day_is_older_than_the_retention():
    names = ["t-events-2026.11.01", "t-events-2026.11.02", "t-events-2026.11.03", "t-events-x"]
    # 30 days before 2026-12-02 00:00 is 2026-11-02 00:00: the 1st of November ended then.
    now = MIDNIGHT
    assert cutoff(now, 30) == MIDNIGHT - 30 * 86_400
    assert expired(LOG, names, now, 30) == ["t-events-2026.11.01"]
    # A millisecond short of the 2nd's end being 30 days old: the 2nd is kept.
    assert expired(LOG, names, now + 86_400 - 0.001, 30) == ["t-events-2026.11.01"]
    assert expired(LOG, names, now + 86_400, 30) == ["t-events-2026.11.01", "t-events-2026.11.02"]
    assert expired(LOG, names, now + 10 * 86_400, 0) == []  # 0: kept for ever


def test_days_between_covers_each_utc_day_once():
    assert days_between(MIDNIGHT - 1, MIDNIGHT + 1) == [MIDNIGHT - 86_400, MIDNIGHT]
    assert days_between(MIDNIGHT + 5, MIDNIGHT + 6) == [MIDNIGHT]


def test_the_ism_policy_never_deletes_a_day_before_the_proxy_would():
    # The index of 2026-12-02 may be made on 2026-12-01 (a day ahead). The proxy deletes it at
    # 2026-12-03 + 30 days; creation + 32 days is then at the earliest.
    body = ism_policy(LOG, 30)["policy"]
    assert body["default_state"] == "kept"
    (kept, deleted) = body["states"]
    assert kept["transitions"] == [
        {"state_name": "deleted", "conditions": {"min_index_age": "32d"}}
    ]
    assert deleted["actions"] == [{"delete": {}}]
    assert body["ism_template"] == [{"index_patterns": ["t-events-*"], "priority": 500}]


class Cluster:
    """Answers by (method, path); records every request with its body."""

    def __init__(self, answers):
        self.answers = answers
        self.requests = []

    async def request(self, method, path, *, headers, body, timeout):
        self.requests.append((method, path, orjson.loads(body) if body else None))
        status, answer = self.answers.get((method, path), (404, {}))
        return UpstreamReply(status, orjson.dumps(answer))


PLUGINS = "/_cat/plugins?format=json"


@pytest.mark.parametrize(
    ("plugins", "found"),
    [
        ([{"name": "n1", "component": "opensearch-knn"}], False),
        ([{"name": "n1", "component": "opensearch-index-management"}], True),
        ([], False),
    ],
)
def test_ism_is_detected_from_the_node_plugins(plugins, found):
    assert asyncio.run(has_ism(Cluster({("GET", PLUGINS): (200, plugins)}))) is found


def test_ism_detection_that_cannot_answer_raises():
    with pytest.raises(UpstreamError, match="_cat/plugins answered 403"):
        asyncio.run(has_ism(Cluster({("GET", PLUGINS): (403, {})})))


OLD, KEPT = "t-events-2026.10.01", "t-events-2026.11.30"
BACKING = {OLD: {"aliases": {"t-events": {}}}, KEPT: {"aliases": {"t-events": {}}}}


def test_without_ism_the_proxy_deletes_the_days_past_the_retention_only():
    cluster = Cluster(
        {
            ("GET", "/t-events/_alias"): (200, BACKING),
            ("DELETE", f"/{OLD}"): (200, {"acknowledged": True}),
        }
    )
    logs = Logs(cluster, [LOG], retention_days=30)
    logs.ism = False
    assert asyncio.run(logs.enforce(MIDNIGHT)) == [OLD]
    deletes = [path for method, path, _ in cluster.requests if method == "DELETE"]
    assert deletes == [f"/{OLD}"]


def test_with_ism_the_proxy_deletes_nothing_itself():
    cluster = Cluster({("GET", "/t-events/_alias"): (200, BACKING)})
    logs = Logs(cluster, [LOG], retention_days=30)
    logs.ism = True
    assert asyncio.run(logs.enforce(MIDNIGHT)) == []
    assert cluster.requests == []


def test_with_ism_ensure_installs_the_policy_and_adds_it_to_existing_days():
    policy = "/_plugins/_ism/policies/t-events-retention"
    cluster = Cluster(
        {
            ("GET", PLUGINS): (200, [{"component": "opensearch-index-management"}]),
            ("PUT", policy): (201, {"_id": "t-events-retention"}),
            ("PUT", "/_index_template/t-events"): (200, {"acknowledged": True}),
            ("GET", "/t-events/_alias"): (200, BACKING),
            ("PUT", "/t-events/_mapping"): (200, {"acknowledged": True}),
            ("PUT", "/t-events-2026.12.02"): (200, {"acknowledged": True}),
            ("PUT", "/t-events-2026.12.03"): (200, {"acknowledged": True}),
        }
    )
    logs = Logs(cluster, [LOG], retention_days=7)
    asyncio.run(logs.ensure(MIDNIGHT + 60))
    assert logs.ism is True
    sent = {(m, p): b for m, p, b in cluster.requests}
    assert sent[("PUT", policy)] == ism_policy(LOG, 7)
    assert ("POST", "/_plugins/_ism/add/t-events-*") in sent
    assert sent[("PUT", "/t-events-2026.12.02")]["aliases"] == {"t-events": {}}


def test_the_legacy_index_goes_when_its_newest_document_is_past_the_retention():
    backing = {"t-events-legacy": {"aliases": {"t-events": {}}}}

    def legacy(newest_ms, total=3):
        search = {
            "hits": {"total": {"value": total}},
            "aggregations": {"newest": {"value": newest_ms}},
        }
        return Cluster(
            {
                ("GET", "/t-events/_alias"): (200, backing),
                ("POST", "/t-events-legacy/_search"): (200, search),
                ("DELETE", "/t-events-legacy"): (200, {"acknowledged": True}),
            }
        )

    limit_ms = (MIDNIGHT - 30 * 86_400) * 1000
    for newest, gone in ((limit_ms, True), (limit_ms + 1, False), (None, False)):
        logs = Logs(legacy(newest), [LOG], retention_days=30)
        logs.ism = False
        assert asyncio.run(logs.enforce(MIDNIGHT)) == (["t-events-legacy"] if gone else []), newest
    logs = Logs(legacy(None, total=0), [LOG], retention_days=30)
    logs.ism = False
    assert asyncio.run(logs.enforce(MIDNIGHT)) == ["t-events-legacy"]  # empty: nothing to lose


def test_a_name_that_is_still_a_concrete_index_is_reported_not_deleted():
    # The alias name resolves to an index of that very name: the layout before the days.
    cluster = Cluster({("GET", "/t-events/_alias"): (200, {"t-events": {"aliases": {}}})})
    logs = Logs(cluster, [LOG], retention_days=1)
    logs.ism = False
    assert asyncio.run(logs.enforce(MIDNIGHT + 400 * 86_400)) == []
    assert all(method != "DELETE" for method, _, _ in cluster.requests)
