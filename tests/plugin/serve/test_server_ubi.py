"""UBI on both sides, in process: ``ext.ubi`` answered as the UBI plugin answers it, and the
``ubi_queries`` records the proxy writes, in front of a fake OpenSearch that has the plugin or
not."""

from __future__ import annotations

import asyncio
import gzip
import re

import orjson
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from ltrr.plugin.learn.ubiqueries import UBI_QUERIES_INDEX
from ltrr.plugin.runtime.registry import CatalogRegistry
from ltrr.plugin.runtime.stats import Stats
from ltrr.plugin.runtime.upstream import UpstreamError
from ltrr.plugin.serve.server import SERVER_OPTIONS, Proxy
from ltrr.plugin.serve.ubifront import UbiFront
from tests.plugin._ubi_schema import QUERY_REQUEST, QUERY_RESPONSE, errors

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
DOCS = [("m1", "S-100"), ("m2", "S-200"), ("m3", "S-300")]
HEX_ID = re.compile(r"^[0-9a-f]{32}$")


def hits(index: str) -> list[dict]:
    return [
        {"_index": index, "_id": i, "_score": 3.0 - n, "_source": {"sku": sku, "name": i}}
        for n, (i, sku) in enumerate(DOCS)
    ]


class Node:
    """A fake OpenSearch: with ``ubi`` it has the plugin, else it refuses ``ext.ubi`` as a
    real node does. ``searches`` holds the bodies of the searches it was sent."""

    def __init__(self, *, ubi: bool = False, gzip_answers: bool = False) -> None:
        self.ubi = ubi
        self.gzip_answers = gzip_answers
        self.searches: list[tuple[str, bytes, str | None]] = []
        self.stored: dict[str, dict] = {}
        self.created: dict[str, dict] = {}

    def app(self) -> web.Application:
        async def handle(request: web.Request) -> web.StreamResponse:
            body = await request.read()
            path = request.path
            if path == "/_cat/plugins":
                rows = [{"name": "n1", "component": "opensearch-knn"}]
                if self.ubi:
                    rows.append({"name": "n1", "component": "opensearch-ubi"})
                return web.json_response(rows)
            if path == f"/{UBI_QUERIES_INDEX}" and request.method == "HEAD":
                return web.Response(status=200 if UBI_QUERIES_INDEX in self.created else 404)
            if path == f"/{UBI_QUERIES_INDEX}" and request.method == "PUT":
                self.created[UBI_QUERIES_INDEX] = orjson.loads(body)
                return web.json_response({"acknowledged": True})
            if path == "/_bulk":
                return web.json_response(self._bulk(body))
            if path == "/_msearch":
                lines = body.decode().splitlines()
                answer = {"hits": {"hits": hits("music")}, "_shards": {}}
                return web.json_response(
                    {"responses": [{"status": 200, **answer}] * (len(lines) // 2)}
                )
            if path.endswith("/_search"):
                return self._search(request, body)
            return web.json_response({"unexpected": path}, status=500)

        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", handle)
        return app

    def _bulk(self, body: bytes) -> dict:
        items = []
        lines = iter(body.splitlines())
        for line in lines:
            ((op, meta),) = orjson.loads(line).items()
            self.stored[meta["_id"]] = {"_index": meta["_index"], **orjson.loads(next(lines))}
            items.append({op: {"_index": meta["_index"], "_id": meta["_id"], "status": 201}})
        return {"errors": False, "items": items}

    def _search(self, request: web.Request, body: bytes) -> web.Response:
        self.searches.append((request.path, body, request.headers.get("Content-Encoding")))
        text = gzip.decompress(body) if request.headers.get("Content-Encoding") else body
        parsed = orjson.loads(text) if text else {}
        if request.path.startswith("/forbidden/"):
            error = {"type": "security_exception", "reason": "no permissions for [search]"}
            return web.json_response({"error": error, "status": 403}, status=403)
        answer: dict = {"took": 2, "hits": {"hits": hits(request.path.split("/")[1])}}
        if "ubi" in (parsed.get("ext") or {}):
            if not self.ubi:
                error = {
                    "type": "named_object_not_found_exception",
                    "reason": "unknown field [ubi]",
                }
                return web.json_response({"error": error, "status": 400}, status=400)
            answer["ext"] = {"ubi": {"query_id": parsed["ext"]["ubi"].get("query_id", "plugin-id")}}
        data = orjson.dumps(answer)
        if self.gzip_answers:
            return web.Response(
                body=gzip.compress(data),
                headers={"Content-Encoding": "gzip", "Content-Type": "application/json"},
            )
        return web.Response(body=data, content_type="application/json")

    def records(self) -> list[dict]:
        return [d for d in self.stored.values() if d.pop("_index") == UBI_QUERIES_INDEX]


@pytest.fixture
def run(tmp_path):
    path = tmp_path / "music.yml"
    path.write_text(CATALOG)

    def runner(scenario, node: Node, **options):
        async def go():
            upstream = TestServer(node.app())
            await upstream.start_server(**SERVER_OPTIONS)  # it sees bodies as they were sent
            registry = CatalogRegistry([path], seed=1)
            registry.load_all()
            proxy = Proxy(registry, str(upstream.make_url("")).rstrip("/"), **options)
            server = TestServer(proxy.app())
            await server.start_server(**SERVER_OPTIONS)
            try:
                async with TestClient(server) as client:
                    return await scenario(client, proxy)
            finally:
                await upstream.close()

        return asyncio.run(go())

    return runner


async def post(client, path, body, **kwargs):
    response = await client.post(path, data=orjson.dumps(body), **kwargs)
    return response.status, orjson.loads(await response.read())


async def flushed(proxy: Proxy, node: Node) -> list[dict]:
    assert proxy.ubi.queries is not None
    await proxy.ubi.queries.flush()
    return node.records()


UBI = {
    "query_id": "it-query-1",
    "client_id": "browser-7",
    "application": "primary-search",
    "object_id_field": "sku",
    "query_attributes": {"experiment": "b"},
}


def test_an_intercepted_search_answers_ext_ubi_and_logs_a_valid_ubi_record(run):
    node = Node()

    async def scenario(client, proxy):
        status, answer = await post(
            client, "/music/_search", {"query": {"match": {"name": "miles"}}, "ext": {"ubi": UBI}}
        )
        return status, answer, await flushed(proxy, node)

    status, answer, records = run(scenario, node)
    assert status == 200
    assert answer["ext"]["ubi"] == {"query_id": "it-query-1"}
    assert errors(QUERY_RESPONSE, answer["ext"]["ubi"]) == []
    assert answer["ext"]["ltrr"]["decision_id"] == "it-query-1"
    (record,) = records
    assert errors(QUERY_REQUEST, record) == []
    shown = [h["_source"]["sku"] for h in answer["hits"]["hits"]]
    assert shown == ["S-100", "S-200", "S-300"]
    assert record["query_response_hit_ids"] == shown  # object_id_field respected, in order
    assert record["query_id"] == "it-query-1"
    assert record["client_id"] == "browser-7"
    assert record["user_query"] == "miles"
    assert record["application"] == "primary-search"
    assert record["object_id_field"] == "sku"
    assert HEX_ID.match(record["query_response_id"])
    decision = record["query_attributes"]["ltrr"]
    assert record["query_attributes"]["experiment"] == "b"
    assert decision["decision_id"] == "it-query-1"
    assert decision["target"] == "music"
    assert decision["policy"] == "static"
    assert decision["arms"] == {"lexical": {"included": True, "size": 10, "propensity": 1.0}}
    assert decision["page"] == {"from": 0, "size": 10, "cached": False}
    assert not node.searches  # answered by the proxy, not by a passthrough


def test_every_intercepted_search_is_logged_even_without_ext_ubi(run):
    node = Node()

    async def scenario(client, proxy):
        body = {"ext": {"ltrr": {"query": "miles", "context": {"client_id": "ctx-client"}}}}
        status, answer = await post(client, "/music/_search", body)
        return status, answer, await flushed(proxy, node)

    status, answer, records = run(scenario, node)
    assert status == 200
    assert "ubi" not in answer["ext"]  # asked for nothing, answered nothing extra
    (record,) = records
    assert record["query_id"] == answer["ext"]["ltrr"]["decision_id"]
    assert record["client_id"] == "ctx-client"  # from ext.ltrr.context, lacking ext.ubi's
    assert record["query_response_hit_ids"] == ["m1", "m2", "m3"]  # _id: no object_id_field
    assert errors(QUERY_REQUEST, record) == []


def test_without_a_query_id_the_decision_id_is_ubis_query_id(run):
    node = Node()

    async def scenario(client, proxy):
        body = {"query": {"match": {"name": "miles"}}, "ext": {"ubi": {"user_query": "Miles!"}}}
        status, answer = await post(client, "/music/_search", body)
        return status, answer, await flushed(proxy, node)

    status, answer, (record,) = run(scenario, node)
    assert status == 200
    assert answer["ext"]["ubi"]["query_id"] == answer["ext"]["ltrr"]["decision_id"]
    assert HEX_ID.match(answer["ext"]["ubi"]["query_id"])
    assert record["query_id"] == answer["ext"]["ubi"]["query_id"]
    assert record["user_query"] == "Miles!"  # the client's own words win


def test_a_passthrough_on_a_node_without_ubi_is_answered_as_the_plugin_would(run):
    node = Node()

    async def scenario(client, proxy):
        body = {
            "query": {"match": {"name": "miles"}},
            "aggs": {"g": {"terms": {"field": "genre"}}},  # not for the LTR&R path
            "ext": {"ubi": {"client_id": "c-1", "user_query": "miles"}, "ltrr": {"explain": True}},
        }
        status, answer = await post(client, "/music/_search", body)
        return status, answer, await flushed(proxy, node)

    status, answer, (record,) = run(scenario, node)
    assert status == 200
    ((path, sent, encoding),) = node.searches
    assert path == "/music/_search"
    assert encoding is None
    assert orjson.loads(sent) == {
        "query": {"match": {"name": "miles"}},
        "aggs": {"g": {"terms": {"field": "genre"}}},
    }
    query_id = answer["ext"]["ubi"]["query_id"]
    assert HEX_ID.match(query_id)
    assert answer["hits"]["hits"] == hits("music")  # OpenSearch's answer, plus ext.ubi
    assert record["query_id"] == query_id
    assert record["query_response_hit_ids"] == ["m1", "m2", "m3"]
    assert record["client_id"] == "c-1"
    assert record["query_attributes"] == {
        "ltrr": {"target": "music", "passthrough": "body key aggs"}
    }
    assert errors(QUERY_REQUEST, record) == []


@pytest.mark.parametrize("path", ["/books/_search", "/_search", "/books,films/_search"])
def test_a_search_the_proxy_does_not_catalog_gets_ubi_too(run, path):
    node = Node()

    async def scenario(client, proxy):
        body = {
            "query": {"match_all": {}},
            "ext": {"ubi": {"query_id": "q-7", "object_id_field": "sku"}},
        }
        status, answer = await post(client, path, body)
        return status, answer, await flushed(proxy, node)

    status, answer, (record,) = run(scenario, node)
    assert status == 200
    assert answer["ext"] == {"ubi": {"query_id": "q-7"}}
    assert orjson.loads(node.searches[0][1]) == {"query": {"match_all": {}}}
    assert record["query_response_hit_ids"] == ["S-100", "S-200", "S-300"]
    assert record["user_query"] == ""  # as the plugin: no user_query given
    assert record["query_attributes"]["ltrr"]["passthrough"] == "not catalogued"
    assert errors(QUERY_REQUEST, record) == []


def test_a_search_opensearch_refuses_is_answered_as_it_is_and_logs_nothing(run):
    node = Node()

    async def scenario(client, proxy):
        status, answer = await post(
            client, "/forbidden/_search", {"ext": {"ubi": {"query_id": "q"}}}
        )
        return status, answer, await flushed(proxy, node)

    status, answer, records = run(scenario, node)
    assert status == 403
    assert answer["error"]["type"] == "security_exception"
    assert records == []


def test_a_gzip_body_and_a_gzip_answer_are_read_and_answered_plain(run):
    node = Node(gzip_answers=True)

    async def scenario(client, proxy):
        data = gzip.compress(orjson.dumps({"ext": {"ubi": {"query_id": "q-gz"}}}))
        response = await client.post(
            "/books/_search",
            data=data,
            headers={"Content-Encoding": "gzip", "Content-Type": "application/json"},
        )
        raw = await response.read()
        return (
            response.status,
            response.headers.get("Content-Encoding"),
            raw,
            await flushed(proxy, node),
        )

    status, encoding, raw, (record,) = run(scenario, node)
    assert status == 200
    assert encoding is None
    assert orjson.loads(raw)["ext"]["ubi"] == {"query_id": "q-gz"}
    assert record["query_response_hit_ids"] == ["m1", "m2", "m3"]


def test_a_search_without_ext_ubi_still_goes_on_as_it_came(run):
    node = Node()

    async def scenario(client, proxy):
        data = gzip.compress(b'{"query": {"match_all": {}}, "size": 1}')
        response = await client.post(
            "/books/_search",
            data=data,
            headers={"Content-Encoding": "gzip", "Content-Type": "application/json"},
        )
        return response.status, await flushed(proxy, node)

    status, records = run(scenario, node)
    assert status == 200
    ((_, sent, encoding),) = node.searches
    assert encoding == "gzip"
    assert gzip.decompress(sent) == b'{"query": {"match_all": {}}, "size": 1}'
    assert records == []


def test_with_the_plugin_a_passthrough_goes_on_untouched_and_the_plugin_logs_it(run):
    node = Node(ubi=True)

    async def scenario(client, proxy):
        body = {"query": {"match_all": {}}, "ext": {"ubi": {"query_id": "q-plugin"}}}
        passed = await post(client, "/books/_search", body)
        intercepted = await post(
            client,
            "/music/_search",
            {"query": {"match": {"name": "x"}}, "ext": {"ubi": {"query_id": "q-own"}}},
        )
        return proxy.ubi.plugin, passed, intercepted, await flushed(proxy, node)

    plugin, (status, answer), (status2, answer2), records = run(scenario, node)
    assert plugin is True
    assert status == 200
    assert answer["ext"]["ubi"] == {"query_id": "q-plugin"}
    assert orjson.loads(node.searches[0][1]) == {
        "query": {"match_all": {}},
        "ext": {"ubi": {"query_id": "q-plugin"}},
    }
    # The plugin never sees a search the proxy answers itself: the proxy logs that one.
    assert status2 == 200
    assert answer2["ext"]["ubi"] == {"query_id": "q-own"}
    assert [r["query_id"] for r in records] == ["q-own"]


@pytest.mark.parametrize(
    ("ubi", "names"),
    [
        ("not an object", "[ext.ubi]"),
        (None, "[ext.ubi]"),
        ({"query_id": {"a": 1}}, "[ext.ubi.query_id]"),
        ({"query_id": "q" * 513}, "[ext.ubi.query_id]"),
        ({"client_id": ["x"]}, "[ext.ubi.client_id]"),
        ({"user_query": {"text": 1}}, "[ext.ubi.user_query]"),
        ({"object_id_field": True}, "[ext.ubi.object_id_field]"),
        ({"query_attributes": "x"}, "[ext.ubi.query_attributes]"),
    ],
)
@pytest.mark.parametrize("path", ["/music/_search", "/books/_search"])
def test_a_malformed_ext_ubi_is_a_400_in_opensearch_format(run, ubi, names, path):
    node = Node()

    async def scenario(client, proxy):
        body = {"query": {"match": {"name": "miles"}}, "ext": {"ubi": ubi}}
        status, answer = await post(client, path, body)
        return status, answer, await flushed(proxy, node)

    status, answer, records = run(scenario, node)
    assert status == 400
    assert answer["status"] == 400
    assert answer["error"]["type"] == "x_content_parse_exception"
    assert names in answer["error"]["reason"]
    assert answer["error"]["root_cause"][0]["reason"] == answer["error"]["reason"]
    assert node.searches == []
    assert records == []


def test_logging_can_be_turned_off_and_ext_ubi_is_still_answered(run):
    node = Node()

    async def scenario(client, proxy):
        status, answer = await post(client, "/books/_search", {"ext": {"ubi": {"query_id": "q"}}})
        return proxy.ubi.queries, status, answer

    writer, status, answer = run(scenario, node, ubi_queries=False)
    assert writer is None
    assert status == 200
    assert answer["ext"]["ubi"] == {"query_id": "q"}
    assert node.stored == {}
    assert node.created == {}


def test_stats_show_the_plugin_and_the_writer(run):
    node = Node()

    async def scenario(client, proxy):
        await post(client, "/books/_search", {"ext": {"ubi": {"query_id": "q"}}})
        await flushed(proxy, node)
        response = await client.get("/_ltrr/stats")
        return await response.json()

    stats = run(scenario, node)
    assert stats["ubi"]["plugin"] is False
    assert stats["ubi"]["queries"]["written"] == 1
    assert stats["ubi"]["queries"]["queued"] == 0


class SilentNode:
    async def request(self, method, path, *, headers, body, timeout):
        raise UpstreamError("node down")


def test_a_silent_node_is_taken_as_without_the_plugin_and_refused_records_have_their_own_letters(
    tmp_path,
):
    front = asyncio.run(
        UbiFront.start(SilentNode(), Stats(), lambda: 0.0, data_dir=tmp_path, log_queries=True)
    )
    assert front.plugin is False
    assert front.queries is not None
    assert front.queries.dead_letters is not None
    # Not the learner's file: its count is of acknowledged events only.
    assert front.queries.dead_letters.path == tmp_path / "ubi-queries" / "dead-letter.jsonl"
    without = asyncio.run(
        UbiFront.start(SilentNode(), Stats(), lambda: 0.0, data_dir=None, log_queries=True)
    )
    assert without.queries is not None
    assert without.queries.dead_letters is None
