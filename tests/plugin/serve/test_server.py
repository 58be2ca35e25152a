"""The proxy app in process, in front of a fake OpenSearch that shows what reached it."""

from __future__ import annotations

import asyncio
import gzip
import json

import aiohttp
import orjson
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from ltrr.plugin.runtime.registry import CatalogRegistry
from ltrr.plugin.serve.server import SERVER_OPTIONS, Limits, Proxy

CATALOG = """\
target: music
budget: 10
policy: {name: static}
arms:
  - name: lexical
    template: multi_match.json.j2
    params: {fields: [name]}
    size: {min: 5, max: 10}
fallback: [{arm: lexical, size: 5}]
"""


def fake_opensearch() -> web.Application:
    async def echo(request: web.Request) -> web.StreamResponse:
        body = await request.read()
        if request.path == "/gzipped":
            return web.Response(
                body=gzip.compress(b'{"ok":true}'),
                headers={"Content-Encoding": "gzip", "Content-Type": "application/json"},
            )
        if request.path == "/stall":  # starts its answer, then goes silent
            response = web.StreamResponse(headers={"Content-Type": "text/plain"})
            await response.prepare(request)
            await response.write(b"first part ")
            await asyncio.sleep(5)
            return response
        if request.path == "/chunked":
            response = web.StreamResponse(headers={"Content-Type": "text/plain"})
            await response.prepare(request)
            for part in (b"one ", b"two ", b"three"):
                await response.write(part)
            await response.write_eof()
            return response
        if request.path == "/_msearch":
            lines = body.decode().splitlines()
            hits = {"hits": [{"_index": "music", "_id": "1", "_score": 1.0, "_source": {}}]}
            responses = [{"status": 200, "hits": hits, "_shards": {}} for _ in lines[1::2]]
            return web.json_response({"responses": responses, "headers": dict(request.headers)})
        return web.json_response(
            {
                "method": request.method,
                "path_qs": request.path_qs,
                "headers": {k: v for k, v in request.headers.items()},
                "body": body.decode(errors="replace"),
            },
            status=201,
        )

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", echo)
    return app


async def serving(proxy: Proxy) -> TestServer:
    """The proxy's app served as ``ltrr serve`` serves it (no automatic decompression)."""
    server = TestServer(proxy.app())
    await server.start_server(**SERVER_OPTIONS)
    return server


@pytest.fixture
def run(tmp_path):
    path = tmp_path / "music.yml"
    path.write_text(CATALOG)

    def runner(scenario, upstream_url=None, limits=None):
        async def go():
            upstream = TestServer(fake_opensearch())
            await upstream.start_server()
            registry = CatalogRegistry([path], seed=1)
            registry.load_all()
            url = upstream_url or str(upstream.make_url("")).rstrip("/")
            proxy = Proxy(registry, url, limits=limits)
            async with TestClient(await serving(proxy)) as client:
                result = await scenario(client)
            await upstream.close()
            return result

        return asyncio.run(go())

    return runner


def test_passthrough_forwards_end_to_end_headers_only(run):
    async def scenario(client):
        response = await client.post(
            "/some-index/_doc/1?refresh=true&pretty",
            data=b'{"a": 1}',
            headers={
                "Authorization": "Basic dXNlcjpwdw==",
                "Connection": "X-Hop",
                "X-Hop": "secret",
                "Proxy-Authorization": "Basic cHJveHk=",
                "Content-Type": "application/json",
            },
        )
        return response.status, await response.json()

    status, seen = run(scenario)
    assert status == 201
    assert seen["method"] == "POST"
    assert seen["path_qs"] == "/some-index/_doc/1?refresh=true&pretty"
    assert seen["body"] == '{"a": 1}'
    assert seen["headers"]["Authorization"] == "Basic dXNlcjpwdw=="
    assert "X-Hop" not in seen["headers"]
    assert "Proxy-Authorization" not in seen["headers"]


def test_gzip_and_chunked_answers_come_back_unchanged(run):
    async def scenario(client):
        zipped = await client.get("/gzipped", auto_decompress=False)
        raw = await zipped.read()
        chunked = await client.get("/chunked")
        return zipped.headers["Content-Encoding"], raw, chunked.headers, await chunked.read()

    encoding, raw, chunked_headers, text = run(scenario)
    assert encoding == "gzip"
    assert gzip.decompress(raw) == b'{"ok":true}'
    assert chunked_headers.get("Transfer-Encoding") == "chunked"
    assert text == b"one two three"


def test_streamed_request_body_over_the_cap_is_413(run):
    async def scenario(client):
        async def body():
            for _ in range(64):
                yield b"x" * 1024

        response = await client.post("/_bulk", data=body())
        return response.status, await response.json()

    status, error = run(scenario, limits=Limits(max_body=16 * 1024))
    assert status == 413
    assert error["error"]["type"] == "content_too_long_exception"


def test_intercepted_search_uses_the_callers_credentials_upstream(run):
    async def scenario(client):
        response = await client.post(
            "/music/_search",
            json={"ext": {"ltrr": {"query": "radiohead"}}},
            headers={"Authorization": "Bearer abc", "Accept-Encoding": "gzip"},
        )
        return response.status, response.headers, await response.json()

    status, headers, body = run(scenario)
    assert status == 200
    assert headers["X-LTRR-Decision-Id"] == body["ext"]["ltrr"]["decision_id"]
    assert [h["_id"] for h in body["hits"]["hits"]] == ["1"]


def test_unreachable_opensearch_is_a_502_in_opensearch_format(run):
    async def scenario(client):
        response = await client.get("/_cluster/health")
        return response.status, await response.json()

    status, error = run(scenario, upstream_url="http://127.0.0.1:1")
    assert status == 502
    assert error["status"] == 502
    assert error["error"]["type"] == "proxy_exception"
    assert "127.0.0.1" not in orjson.dumps(error).decode()  # no upstream host in an answer


def test_a_gzip_body_is_forwarded_compressed_as_it_came(run):
    plain = b'{"title": "caf\xc3\xa9"}'

    async def scenario(client):
        response = await client.put(
            "/some-index/_doc/1",
            data=gzip.compress(plain),
            headers={"Content-Encoding": "gzip", "Content-Type": "application/json"},
        )
        return response.status, await response.json()

    status, seen = run(scenario)
    assert status == 201
    assert seen["headers"]["Content-Encoding"] == "gzip"
    assert seen["body"].encode() == plain  # the upstream inflated what the proxy sent


def test_an_intercepted_search_reads_a_gzip_body(run):
    body = orjson.dumps({"ext": {"ltrr": {"query": "abba"}}})

    async def scenario(client):
        response = await client.post(
            "/music/_search",
            data=gzip.compress(body),
            headers={"Content-Encoding": "gzip", "Content-Type": "application/json"},
        )
        return response.status, await response.json()

    status, answer = run(scenario)
    assert status == 200
    assert "decision_id" in answer["ext"]["ltrr"]


def test_a_body_labelled_gzip_that_is_not_is_a_400_in_opensearch_format(run):
    async def scenario(client):
        response = await client.post(
            "/music/_search",
            data=b'{"ext": {"ltrr": {"query": "abba"}}}',
            headers={"Content-Encoding": "gzip", "Content-Type": "application/json"},
        )
        return response.status, await response.json()

    status, error = run(scenario)
    assert status == 400
    assert error["status"] == 400
    assert error["error"]["type"] == "parse_exception"
    assert "gzip" in error["error"]["reason"]


def test_a_deep_post_filter_and_a_huge_from_are_400s_in_opensearch_format(run):
    deep: dict = {"match_all": {}}
    for _ in range(256):
        deep = {"bool": {"filter": [deep]}}
    ltrr = {"ext": {"ltrr": {"query": "abba"}}}
    cases = [
        ({**ltrr, "post_filter": deep}, "nested more than 64 levels"),
        ({**ltrr, "_source": deep}, "nested more than 64 levels"),
        # orjson reads a number past 64 bits as a float: not an integer.
        ({**ltrr, "from": 99999999999999999999}, "[from] must be an integer"),
        ({**ltrr, "from": 9995, "size": 10}, "Result window is too large"),
    ]

    async def scenario(client):
        out = []
        for body, _ in cases:
            response = await client.post(
                "/music/_search",
                data=json.dumps(body),  # orjson refuses an int past 64 bits
                headers={"Content-Type": "application/json"},
            )
            out.append((response.status, await response.json()))
        return out

    for (status, error), (_, reason) in zip(run(scenario), cases, strict=True):
        assert status == 400, error
        assert error["status"] == 400
        assert reason in error["error"]["reason"], error


def test_odd_bytes_in_token_headers_are_a_403_not_a_500(run, monkeypatch):
    monkeypatch.setenv("LTRR_ADMIN_TOKEN", "s3cret")

    async def scenario(client):
        response = await client.get("/_ltrr/stats", headers={"X-LTRR-Admin-Token": "\u00e9\u00ff"})
        return response.status, await response.json()

    status, error = run(scenario)
    assert status == 403
    assert error["error"]["type"] == "security_exception"


def test_stats_counts_what_happened(run):
    async def scenario(client):
        await client.post("/music/_search", json={"ext": {"ltrr": {"query": "x"}}})
        await client.post("/music/_search", json={"query": {"match_all": {}}, "aggs": {}})
        response = await client.get("/_ltrr/stats")
        return orjson.loads(await response.read())

    stats = run(scenario)
    assert stats["intercepted"] == 1
    assert stats["passthrough"] == 1
    assert stats["passthrough_reasons"] == {"body key aggs": 1}


def test_stats_answer_loopback_without_a_token_and_anyone_only_with_it(run, monkeypatch):
    async def scenario(client):
        out = []
        for headers in ({}, {"X-LTRR-Admin-Token": "wrong"}, {"X-LTRR-Admin-Token": "s3cret"}):
            response = await client.get("/_ltrr/stats", headers=headers)
            out.append((response.status, await response.json()))
        return out

    monkeypatch.delenv("LTRR_ADMIN_TOKEN", raising=False)
    assert [status for status, _ in run(scenario)] == [200, 200, 200]  # loopback, no token set
    monkeypatch.setenv("LTRR_ADMIN_TOKEN", "s3cret")
    (none, _), (wrong, error), (right, stats) = run(scenario)
    assert (none, wrong, right) == (403, 403, 200)
    assert error["error"]["type"] == "security_exception"
    assert "catalogs" in stats


def test_stats_refuse_a_remote_client_when_no_admin_token_is_set(monkeypatch):
    from aiohttp.test_utils import make_mocked_request

    from ltrr.plugin.errors import Forbidden

    monkeypatch.delenv("LTRR_ADMIN_TOKEN", raising=False)

    class Transport:
        def get_extra_info(self, name, default=None):
            return ("203.0.113.7", 50000) if name == "peername" else default

    request = make_mocked_request("GET", "/_ltrr/stats", transport=Transport())
    with pytest.raises(Forbidden, match="loopback clients only"):
        Proxy._admin(request)


def test_a_body_too_deep_for_orjson_still_passes_through_without_ext_ltrr(run):
    deep: dict = {"match_all": {}}
    for _ in range(100):  # 300 levels: past orjson's 254
        deep = {"bool": {"filter": [deep]}}
    body = {"query": {"match_all": {}}, "aggs": {}, "post_filter": deep, "ext": {"ltrr": {}}}

    async def scenario(client):
        response = await client.post("/music/_search", data=json.dumps(body))
        return response.status, await response.json()

    status, seen = run(scenario)
    assert status == 201  # the fake OpenSearch's echo: it was forwarded
    forwarded = json.loads(seen["body"])
    assert "ext" not in forwarded
    assert forwarded["post_filter"] == deep


def test_an_answer_that_stalls_midway_is_cut_never_followed_by_a_second_answer(run):
    async def scenario(client):
        response = await client.get("/stall", timeout=aiohttp.ClientTimeout(total=10))
        head = (response.status, response.headers.get("Content-Type"))
        try:
            body = await response.read()
        except aiohttp.ClientPayloadError:
            body = None  # the connection was closed mid-answer, as it must be
        return head, body

    head, body = run(scenario, limits=Limits(upstream_seconds=0.3))
    assert head == (200, "text/plain")
    assert body is None or b"HTTP/1.1" not in body
