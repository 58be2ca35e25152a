"""opensearch-py pointed at the proxy behaves exactly as it does against OpenSearch.

Each operation runs twice, once direct and once through the proxy, on twin indices with the
same history, so the answers must match byte for byte once the index name and ``took`` are
normalised.
"""

from __future__ import annotations

import gzip
import uuid
from typing import Any

import pytest
import requests
from opensearchpy import NotFoundError, OpenSearch

MAPPING = {"settings": {"number_of_shards": 1, "number_of_replicas": 0}}


def _norm(value: Any, index: str) -> Any:
    if isinstance(value, dict):
        return {k: _norm(v, index) for k, v in value.items() if k != "took"}
    if isinstance(value, list):
        return [_norm(v, index) for v in value]
    if isinstance(value, str):
        return value.replace(index, "<index>")
    return value


@pytest.fixture
def twins(client: OpenSearch) -> Any:
    base = f"ltrr-it-pt-{uuid.uuid4().hex[:8]}"
    names = (f"{base}-a", f"{base}-b")
    yield names
    for name in names:
        client.indices.delete(index=name, ignore_unavailable=True)


def test_opensearch_py_crud_search_msearch_bulk(client, proxy_client, twins):
    direct_index, proxied_index = twins

    def both(op):
        a = op(client, direct_index)
        b = op(proxy_client, proxied_index)
        assert _norm(a, direct_index) == _norm(b, proxied_index)
        return b

    both(lambda c, i: c.indices.create(index=i, body=MAPPING))
    both(lambda c, i: c.index(index=i, id="1", body={"title": "hello world", "n": 1}))
    both(lambda c, i: c.index(index=i, id="2", body={"title": "hello there", "n": 2}))
    both(
        lambda c, i: c.bulk(
            body=[
                {"index": {"_index": i, "_id": "3"}},
                {"title": "bulk one", "n": 3},
                {"create": {"_index": i, "_id": "4"}},
                {"title": "bulk two", "n": 4},
                {"delete": {"_index": i, "_id": "2"}},
            ]
        )
    )
    both(lambda c, i: c.indices.refresh(index=i))
    got = both(lambda c, i: c.get(index=i, id="1"))
    assert got["_source"] == {"title": "hello world", "n": 1}
    assert both(lambda c, i: c.exists(index=i, id="1")) is True
    assert both(lambda c, i: c.exists(index=i, id="2")) is False
    found = both(
        lambda c, i: c.search(index=i, body={"query": {"match": {"title": "hello"}}, "sort": ["n"]})
    )
    assert [h["_id"] for h in found["hits"]["hits"]] == ["1"]
    both(
        lambda c, i: c.msearch(
            body=[
                {"index": i},
                {"query": {"match_all": {}}, "sort": ["n"]},
                {"index": i},
                {"size": 0, "aggs": {"total": {"sum": {"field": "n"}}}},
            ]
        )
    )
    assert both(lambda c, i: c.count(index=i))["count"] == 3
    both(lambda c, i: c.delete(index=i, id="1"))
    for c, i in ((client, direct_index), (proxy_client, proxied_index)):
        with pytest.raises(NotFoundError) as raised:
            c.get(index=i, id="1")
        assert raised.value.status_code == 404


def _raw(url: str, method: str, path: str, **kwargs) -> requests.Response:
    return requests.request(method, url + path, timeout=30, **kwargs)


@pytest.mark.parametrize(
    ("method", "path", "kwargs"),
    [
        ("GET", "/", {}),
        ("GET", "/_cluster/health?pretty", {}),
        ("GET", "/_cat/indices/ltrr-it-does-not-exist?v", {}),
        ("HEAD", "/ltrr-it-does-not-exist", {}),
        ("GET", "/ltrr-it-does-not-exist/_doc/1", {}),
        ("POST", "/ltrr-it-does-not-exist/_search", {"data": b"{not json"}),
        (
            "POST",
            "/_msearch",
            {
                "data": b'{}\n{"size":0}\n',
                "headers": {"Content-Type": "application/x-ndjson"},
            },
        ),
        ("GET", "/_nodes/stats/jvm", {"headers": {"Accept-Encoding": "gzip"}}),
    ],
)
def test_raw_requests_are_byte_identical(opensearch_url, proxy, method, path, kwargs):
    direct = _raw(opensearch_url, method, path, **kwargs)
    proxied = _raw(proxy.url, method, path, **kwargs)
    assert proxied.status_code == direct.status_code
    for header in ("Content-Type", "Content-Encoding", "Content-Length"):
        if header == "Content-Length" and ("_nodes" in path or b'"took"' in direct.content):
            continue  # node stats and took change between the two calls
        assert proxied.headers.get(header) == direct.headers.get(header), header
    if "_nodes" in path:
        # the compressed body went through untouched: still gzip, still the same shape
        assert proxied.headers.get("Content-Encoding") == "gzip"
        assert proxied.raw is not None
        assert set(proxied.json()) == set(direct.json())
    elif b'"took"' in direct.content:
        assert _norm(proxied.json(), "-") == _norm(direct.json(), "-")
        assert len(proxied.content) - len(direct.content) <= 4  # only took's digits may differ
    else:
        assert proxied.content == direct.content


def test_gzip_bytes_pass_through_undecoded(proxy):
    response = requests.get(
        f"{proxy.url}/_cluster/health",
        headers={"Accept-Encoding": "gzip"},
        stream=True,
        timeout=30,
    )
    raw = response.raw.read(decode_content=False)
    assert response.headers["Content-Encoding"] == "gzip"
    assert gzip.decompress(raw).startswith(b"{")


def test_hop_by_hop_headers_are_not_forwarded(proxy):
    # A hop-by-hop header named in Connection must not reach OpenSearch; OpenSearch echoes
    # nothing, so check that the request still works and the response has no such header.
    response = requests.get(
        f"{proxy.url}/",
        headers={"Connection": "keep-alive, X-Hop", "X-Hop": "1", "Keep-Alive": "timeout=5"},
        timeout=30,
    )
    assert response.status_code == 200
    assert "X-Hop" not in response.headers
    assert "Keep-Alive" not in response.headers


def test_chunked_request_body_streams(client, proxy, twins):
    index = twins[1]
    client.indices.create(index=index, body=MAPPING)

    def lines():
        for n in range(200):
            yield f'{{"index":{{"_index":"{index}","_id":"{n}"}}}}\n{{"n":{n}}}\n'.encode()

    response = requests.post(
        f"{proxy.url}/_bulk?refresh=true",
        data=lines(),
        headers={"Content-Type": "application/x-ndjson"},
        timeout=60,
    )
    assert response.status_code == 200, response.text
    assert response.json()["errors"] is False
    assert client.count(index=index)["count"] == 200


def test_a_large_answer_streams_through_unchanged(client, opensearch_url, proxy, twins):
    index = twins[0]
    client.indices.create(index=index, body=MAPPING)
    lines = []
    for n in range(16):
        lines.append({"index": {"_index": index, "_id": str(n)}})
        lines.append({"n": n, "text": f"{n} " * 50_000})  # about 100 KB each
    client.bulk(body=lines, refresh=True)
    body = {"size": 16, "sort": ["n"], "query": {"match_all": {}}}
    direct = requests.post(f"{opensearch_url}/{index}/_search", json=body, timeout=60)
    proxied = requests.post(f"{proxy.url}/{index}/_search", json=body, timeout=60)
    assert len(proxied.content) > 1024 * 1024  # over the proxy's buffer: the streamed path
    assert proxied.status_code == direct.status_code == 200
    assert _norm(proxied.json(), index) == _norm(direct.json(), index)


def test_opensearch_py_with_http_compress_works_through_the_proxy(client, proxy, music, twins):
    """``http_compress=True`` gzips every request body: passthrough forwards those bytes as
    they came, and the proxy inflates only what it reads itself (an intercepted search, the
    lines of an _msearch, a UBI bulk)."""
    direct_index, proxied_index = twins
    direct = OpenSearch(hosts=[client.transport.hosts[0]], http_compress=True, timeout=60)
    proxied = OpenSearch(hosts=[proxy.url], http_compress=True, timeout=60)
    try:
        for c, i in ((direct, direct_index), (proxied, proxied_index)):
            c.indices.create(index=i, body=MAPPING)
            c.index(index=i, id="1", body={"title": "café crème", "n": 1})
            c.bulk(body=[{"index": {"_index": i, "_id": "2"}}, {"title": "thé vert", "n": 2}])
            c.indices.refresh(index=i)
        for op in (
            lambda c, i: c.get(index=i, id="1"),
            lambda c, i: c.search(index=i, body={"query": {"match": {"title": "café"}}}),
            lambda c, i: c.msearch(
                body=[{"index": i}, {"query": {"match_all": {}}, "sort": ["n"]}]
            ),
            lambda c, i: c.count(index=i, body={"query": {"match": {"title": "thé"}}}),
        ):
            assert _norm(op(proxied, proxied_index), proxied_index) == _norm(
                op(direct, direct_index), direct_index
            )
        answer = proxied.search(
            index=f"{music.name}-static", body={"query": {"match": {"name": "radiohead"}}}
        )
        assert answer["ext"]["ltrr"]["decision_id"]  # intercepted, from a gzip body
        assert answer["hits"]["hits"][0]["_id"] == "radiohead"
    finally:
        direct.close()
        proxied.close()


def test_a_body_labelled_gzip_that_is_not_is_an_error_in_opensearch_format(
    opensearch_url, proxy, music
):
    """OpenSearch drops the connection on such a body. Passthrough does not inflate bodies,
    so the proxy sees the drop and answers a 502 in OpenSearch's format; an intercepted
    search, whose body the proxy reads, is a 400."""
    kwargs = {
        "data": b'{"query": {"match_all": {}}}',
        "headers": {"Content-Type": "application/json", "Content-Encoding": "gzip"},
    }
    with pytest.raises(requests.ConnectionError):
        _raw(opensearch_url, "POST", "/ltrr-it-does-not-exist/_search", **kwargs)
    proxied = _raw(proxy.url, "POST", "/ltrr-it-does-not-exist/_search", **kwargs)
    assert proxied.status_code == 502
    assert proxied.json()["error"]["type"] == "proxy_exception"
    assert opensearch_url.split("//")[1] not in proxied.text  # no upstream host in an answer
    intercepted = _raw(proxy.url, "POST", f"/{music.name}-static/_search", **kwargs)
    assert intercepted.status_code == 400
    assert intercepted.json()["error"]["type"] == "parse_exception"
