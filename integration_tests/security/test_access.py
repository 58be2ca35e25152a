"""Through the proxy, each user reads and writes exactly what OpenSearch lets them: intercepted
searches and passthrough alike, compared request by request with the node's own answer."""

from __future__ import annotations

import json
from typing import Any

import pytest
import requests

from integration_tests.security.conftest import SecuredNode, Targets, stats, through

USERS = ("alice", "bob")


def _error(reply: requests.Response) -> tuple[int, str | None, list[str]]:
    """Status, error type and root-cause types: what a client's error handling reads."""
    try:
        body = reply.json()
    except ValueError:
        return reply.status_code, None, []
    error = body.get("error") if isinstance(body, dict) else None
    if not isinstance(error, dict):
        return reply.status_code, None, []
    return reply.status_code, error.get("type"), [c["type"] for c in error.get("root_cause", [])]


def _allowed_to_read(user: str, target: str, targets: Targets) -> bool:
    return (user, target) in {("alice", targets.a), ("bob", targets.b)}


def _ids(reply: requests.Response) -> set[str]:
    return {hit["_id"] for hit in reply.json()["hits"]["hits"]}


@pytest.mark.parametrize("user", USERS)
@pytest.mark.parametrize("which", ["a", "b"])
def test_an_intercepted_search_returns_what_the_user_may_read_and_no_more(
    proxy, secured: SecuredNode, targets: Targets, user: str, which: str
) -> None:
    target = getattr(targets, which)
    word = "zorblat" if target == targets.a else "quintrel"
    body = {"query": {"match": {"name": word}}, "size": 10}
    counters = ("intercepted", "all_arms_failed", "fell_through_to_passthrough")
    before = stats(proxy)
    direct = secured.direct("POST", f"/{target}/_search", user, json=body)
    proxied = through(proxy, secured, "POST", f"/{target}/_search", user, json=body)
    after = stats(proxy)
    moved = tuple(after.get(c, 0) - before.get(c, 0) for c in counters)
    if _allowed_to_read(user, target, targets):
        assert moved == (1, 0, 0)  # the LTR&R path answered
        assert direct.status_code == proxied.status_code == 200, proxied.text
        assert proxied.json()["ext"]["ltrr"]["decision_id"]
        assert _ids(proxied) == _ids(direct)
        assert _ids(proxied) == {
            d for d, (name, _) in targets.docs(target).items() if word in name.lower()
        }
    else:
        # Every arm (the user's own _msearch) refused, then the fallback plan; the original
        # request went on as it came, and OpenSearch refused it.
        assert moved == (0, 1, 1)
        assert _error(direct) == (403, "security_exception", ["security_exception"])
        assert _error(proxied) == _error(direct), proxied.text
        assert "hits" not in proxied.json()
        assert user in proxied.json()["error"]["reason"]  # OpenSearch's own refusal, passed on


@pytest.mark.parametrize("path", ["/_search?q=name:zorblat", "/_doc/zorblat-dumont", "/_search"])
def test_without_credentials_the_proxy_answers_as_the_node_does(
    proxy, secured: SecuredNode, targets: Targets, path: str
) -> None:
    direct = secured.direct("GET", f"/{targets.a}{path}", None)
    proxied = through(proxy, secured, "GET", f"/{targets.a}{path}", None)
    assert direct.status_code == proxied.status_code == 401
    assert proxied.content == direct.content
    assert proxied.headers.get("WWW-Authenticate") == direct.headers.get("WWW-Authenticate")


# (method, path, body); ``{id}`` is the user's own document, one per origin (direct, proxy).
PASSTHROUGH: list[tuple[str, str, Any]] = [
    ("PUT", "/{target}/_doc/{id}?refresh=true", {"name": "written {id}"}),
    ("GET", "/{target}/_doc/{id}", None),
    ("GET", "/{target}/_doc/zorblat-dumont", None),
    ("GET", "/{target}/_doc/quintrel-dumont", None),
    # Aggregations are never intercepted: a search passed through.
    ("POST", "/{target}/_search", {"size": 0, "aggs": {"n": {"value_count": {"field": "_id"}}}}),
    ("GET", "/{target}/_mapping", None),
    ("POST", "/{target}/_update/{id}?refresh=true", {"doc": {"tags": ["changed {id}"]}}),
]


def _fill(value: Any, **names: str) -> Any:
    if value is None:
        return None
    text = json.dumps(value)
    for name, replacement in names.items():
        text = text.replace("{" + name + "}", replacement)
    return json.loads(text)


@pytest.mark.parametrize("user", USERS)
@pytest.mark.parametrize("which", ["a", "b"])
def test_passthrough_reads_and_writes_are_allowed_and_denied_as_on_the_node(
    proxy, secured: SecuredNode, targets: Targets, user: str, which: str
) -> None:
    target = getattr(targets, which)
    before = stats(proxy)["passthrough"]
    for method, path, body in PASSTHROUGH:
        names = {"target": target, "id": f"direct-{user}"}
        direct = secured.direct(method, path.format(**names), user, json=_fill(body, **names))
        names["id"] = f"proxy-{user}"
        proxied = through(
            proxy, secured, method, path.format(**names), user, json=_fill(body, **names)
        )
        assert proxied.status_code == direct.status_code, (method, path, proxied.text)
        assert _error(proxied) == _error(direct), (method, path, proxied.text)
        if direct.status_code == 200 and path.endswith("_search"):
            assert proxied.json()["aggregations"] == direct.json()["aggregations"]
        if direct.status_code == 200 and "/_doc/" in path and "{id}" not in path:
            assert proxied.json() == direct.json()
    assert stats(proxy)["passthrough"] == before + len(PASSTHROUGH)
    # What the proxy wrote is exactly what the user may write, no more.
    stored = secured.direct("GET", f"/{target}/_doc/proxy-{user}")
    may_write = (user, target) == ("alice", targets.a)
    assert stored.status_code == (200 if may_write else 404), stored.text
    if may_write:
        assert stored.json()["_source"] == {
            "name": "written proxy-alice",
            "tags": ["changed proxy-alice"],
        }
        for origin in ("direct", "proxy"):
            secured.direct("DELETE", f"/{target}/_doc/{origin}-{user}?refresh=true")


@pytest.mark.parametrize("user", USERS)
def test_a_bulk_is_judged_item_by_item_as_on_the_node(
    proxy, secured: SecuredNode, targets: Targets, user: str
) -> None:
    def lines(origin: str) -> str:
        out = []
        for target in (targets.a, targets.b):
            out.append(json.dumps({"index": {"_index": target, "_id": f"bulk-{origin}-{user}"}}))
            out.append(json.dumps({"name": f"bulk {origin} {user}"}))
        return "\n".join(out) + "\n"

    ndjson = {"Content-Type": "application/x-ndjson"}
    direct = secured.direct(
        "POST", "/_bulk?refresh=true", user, data=lines("direct"), headers=ndjson
    )
    proxied = through(
        proxy, secured, "POST", "/_bulk?refresh=true", user, data=lines("proxy"), headers=ndjson
    )
    assert direct.status_code == proxied.status_code == 200, proxied.text

    def outcome(reply: requests.Response) -> list[tuple[int, str | None]]:
        items = [next(iter(item.values())) for item in reply.json()["items"]]
        return [(i["status"], i.get("error", {}).get("type")) for i in items]

    expected_a = (201, None) if user == "alice" else (403, "security_exception")
    assert outcome(direct) == [expected_a, (403, "security_exception")]
    assert outcome(proxied) == outcome(direct)
    for target in (targets.a, targets.b):
        for origin in ("direct", "proxy"):
            found = secured.direct("GET", f"/{target}/_doc/bulk-{origin}-{user}")
            assert found.status_code == (200 if (user, target) == ("alice", targets.a) else 404)
            secured.direct("DELETE", f"/{target}/_doc/bulk-{origin}-{user}?refresh=true")
