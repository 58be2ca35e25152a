"""``/_ltrr/metrics`` and what the proxy counts, in process, in front of a fake OpenSearch.

The metrics are process-wide, so each test reads how much a value moved during its scenario.
"""

from __future__ import annotations

import asyncio

import orjson
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from prometheus_client.parser import text_string_to_metric_families

from ltrr.plugin.runtime import metrics
from ltrr.plugin.runtime.registry import CatalogRegistry
from ltrr.plugin.serve.server import SERVER_OPTIONS, Proxy

TARGET = "metrics-music"
CATALOG = f"""\
target: {TARGET}
budget: 10
policy: {{name: static}}
arms:
  - name: name
    template: multi_match.json.j2
    params: {{fields: [name]}}
    size: {{min: 4, max: 4}}
  - name: tags
    template: multi_match.json.j2
    params: {{fields: [tags]}}
    size: {{min: 3, max: 3}}
fallback: [{{arm: name, size: 4}}]
"""
HITS = {"hits": [{"_index": TARGET, "_id": str(i), "_score": 1.0} for i in range(8)]}


def fake_opensearch() -> web.Application:
    """Sub-searches for "half" fail on the tags arm; for "failfirst" both fail when both arms
    are asked (the static fallback plan, one arm, then answers)."""

    async def handle(request: web.Request) -> web.StreamResponse:
        body = await request.read()
        if request.path == "/_msearch":
            searches = body.splitlines()[1::2]
            responses = []
            for search in searches:
                failed = (b"half" in search and b"tags" in search) or (
                    b"failfirst" in search and len(searches) == 2
                )
                responses.append(
                    {"error": {"type": "x", "reason": "y"}, "status": 500}
                    if failed
                    else {"status": 200, "hits": HITS, "_shards": {}}
                )
            return web.json_response({"responses": responses})
        return web.json_response(
            {"path": request.path}, status=404 if "missing" in request.path else 200
        )

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handle)
    return app


def value(name: str, **labels: str) -> float:
    return metrics.REGISTRY.get_sample_value(name, labels) or 0.0


@pytest.fixture
def run(tmp_path):
    path = tmp_path / "music.yml"
    path.write_text(CATALOG)

    def runner(scenario):
        async def go():
            upstream = TestServer(fake_opensearch())
            await upstream.start_server()
            registry = CatalogRegistry([path], seed=1)
            registry.load_all()
            proxy = Proxy(registry, str(upstream.make_url("")).rstrip("/"))
            server = TestServer(proxy.app())
            await server.start_server(**SERVER_OPTIONS)
            async with TestClient(server) as client:
                result = await scenario(client)
            await upstream.close()
            return result

        return asyncio.run(go())

    return runner


def search(client, query, **extra):
    return client.post(f"/{TARGET}/_search", json={"ext": {"ltrr": {"query": query}}, **extra})


WATCHED = {
    "intercepted": ("ltrr_requests_total", {"route": "search", "outcome": "intercepted"}),
    "fallback": ("ltrr_requests_total", {"route": "search", "outcome": "fallback"}),
    "cached": ("ltrr_requests_total", {"route": "search", "outcome": "cached"}),
    "search_passthrough": ("ltrr_requests_total", {"route": "search", "outcome": "passthrough"}),
    "search_errors": ("ltrr_requests_total", {"route": "search", "outcome": "error"}),
    "other_passthrough": ("ltrr_requests_total", {"route": "other", "outcome": "passthrough"}),
    "by_body_key": ("ltrr_passthrough_total", {"route": "search", "reason": "body key"}),
    "not_intercepted": ("ltrr_passthrough_total", {"route": "other", "reason": "not intercepted"}),
    "error_400": ("ltrr_error_responses_total", {"route": "search", "status": "400"}),
    "search_seconds": ("ltrr_request_seconds_count", {"route": "search"}),
    "decisions": ("ltrr_decisions_total", {"target": TARGET}),
    "name_included": ("ltrr_arm_included_total", {"target": TARGET, "arm": "name"}),
    "tags_included": ("ltrr_arm_included_total", {"target": TARGET, "arm": "tags"}),
    "name_candidates": ("ltrr_arm_candidates_total", {"target": TARGET, "arm": "name"}),
    "tags_candidates": ("ltrr_arm_candidates_total", {"target": TARGET, "arm": "tags"}),
    "name_failures": ("ltrr_arm_failures_total", {"target": TARGET, "arm": "name"}),
    "tags_failures": ("ltrr_arm_failures_total", {"target": TARGET, "arm": "tags"}),
    "decide": ("ltrr_stage_seconds_count", {"target": TARGET, "stage": "decide"}),
    "retrieve": ("ltrr_stage_seconds_count", {"target": TARGET, "stage": "retrieve"}),
    "total": ("ltrr_stage_seconds_count", {"target": TARGET, "stage": "total"}),
    "total_inf": ("ltrr_stage_seconds_bucket", {"target": TARGET, "stage": "total", "le": "+Inf"}),
    "embed": ("ltrr_stage_seconds_count", {"target": TARGET, "stage": "embed"}),
    "msearch_calls": ("ltrr_upstream_seconds_count", {"call": "_msearch"}),
    "passthrough_calls": ("ltrr_upstream_seconds_count", {"call": "passthrough"}),
}


def watched() -> dict[str, float]:
    return {key: value(name, **labels) for key, (name, labels) in WATCHED.items()}


def test_searches_passthroughs_and_errors_are_counted_as_computed(run):
    before = watched()

    async def scenario(client):
        ids = []
        for _ in range(3):
            response = await search(client, "ok")
            ids.append((await response.json())["ext"]["ltrr"]["decision_id"])
        assert (await search(client, "half")).status == 200
        answer = await (await search(client, "failfirst")).json()
        assert answer["ext"]["ltrr"]["fallback"] == "every arm failed"
        page = await client.post(
            f"/{TARGET}/_search",
            json={"from": 4, "size": 2, "ext": {"ltrr": {"query": "ok", "decision_id": ids[0]}}},
        )
        assert (await page.json())["ext"]["ltrr"]["page"]["cached"] is True
        aggs = await client.post(
            f"/{TARGET}/_search", json={"query": {"match_all": {}}, "aggs": {}}
        )
        assert aggs.status == 200
        assert (await client.get("/missing/_doc/1")).status == 404  # OpenSearch's own answer
        bad = await client.post(
            f"/{TARGET}/_search", data=b"{not json", headers={"Content-Type": "application/json"}
        )
        assert bad.status == 400

    run(scenario)
    after = watched()
    assert {key: after[key] - before[key] for key in WATCHED} == {
        "intercepted": 4,  # 3 x ok, 1 x half (one arm answered)
        "fallback": 1,  # failfirst: the static plan answered
        "cached": 1,
        "search_passthrough": 1,
        "search_errors": 1,
        "other_passthrough": 1,  # a 404 from OpenSearch is still a passthrough
        "by_body_key": 1,
        "not_intercepted": 1,
        "error_400": 1,
        "search_seconds": 8,  # every request on the search route
        "decisions": 5,  # the answered, uncached ones
        "name_included": 5,
        "tags_included": 4,  # not in failfirst's fallback plan
        "name_candidates": 20,  # 5 x 4
        "tags_candidates": 12,  # 4 x 3
        "name_failures": 1,  # failfirst's first attempt
        "tags_failures": 2,  # half, and failfirst's first attempt
        "decide": 5,
        "retrieve": 5,
        "total": 5,
        "total_inf": 5,
        "embed": 0,  # no embedder in this catalog
        "msearch_calls": 6,  # one per search, two for failfirst
        "passthrough_calls": 2,
    }


def test_refused_feedback_is_counted_by_reason(run):
    before = value("ltrr_feedback_refused_total", source="api", reason="http_error")
    errors = value("ltrr_error_responses_total", route="feedback", status="503")

    async def scenario(client):
        response = await client.post("/_ltrr/feedback", json={"decision_id": "d", "events": []})
        return response.status

    assert run(scenario) == 503  # this proxy has no data directory
    assert value("ltrr_feedback_refused_total", source="api", reason="http_error") == before + 1
    assert value("ltrr_error_responses_total", route="feedback", status="503") == errors + 1


def test_the_metrics_route_serves_the_text_format_with_every_family(run, monkeypatch):
    monkeypatch.delenv("LTRR_ADMIN_TOKEN", raising=False)

    async def scenario(client):
        await search(client, "ok")
        response = await client.get("/_ltrr/metrics")
        return response.status, response.headers["Content-Type"], await response.text()

    status, content_type, text = run(scenario)
    assert status == 200
    assert content_type.startswith("text/plain; version=0.0.4")
    families = {f.name for f in text_string_to_metric_families(text)}
    assert {
        "ltrr_requests",
        "ltrr_request_seconds",
        "ltrr_stage_seconds",
        "ltrr_upstream_seconds",
        "ltrr_arm_included",
        "ltrr_arm_reward",
        "ltrr_feedback_events",
        "ltrr_event_log_lag_seconds",
        "ltrr_open_decisions",
        "ltrr_resident_memory_bytes",
    } <= families


def test_with_a_token_the_metrics_need_it_as_a_header_or_a_bearer_credential(run, monkeypatch):
    monkeypatch.setenv("LTRR_ADMIN_TOKEN", "s3cret")
    cases = [
        {},
        {"Authorization": "Bearer wrong"},
        {"Authorization": "Basic s3cret"},
        {"X-LTRR-Admin-Token": "wrong", "Authorization": "Bearer wrong"},
        {"Authorization": "Bearer s3cret"},
        {"Authorization": "bearer  s3cret "},
        {"X-LTRR-Admin-Token": "s3cret"},
        {"X-LTRR-Admin-Token": "wrong", "Authorization": "Bearer s3cret"},
    ]

    async def scenario(client):
        out = []
        for headers in cases:
            for route in ("/_ltrr/metrics", "/_ltrr/stats"):
                response = await client.get(route, headers=headers)
                out.append((response.status, await response.read()))
        return out

    answers = run(scenario)
    assert [status for status, _ in answers] == [403] * 8 + [200] * 8
    refused = orjson.loads(answers[0][1])
    assert refused["status"] == 403
    assert refused["error"]["type"] == "security_exception"
    assert "Bearer" in refused["error"]["reason"]
