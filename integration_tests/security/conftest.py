"""The proxy in front of a real secured OpenSearch: the security plugin, HTTPS, real users.

One secured node per session (``NodeConfig(security=True)``, port 9210 and 9310, its own
state folder; ``LTRR_TEST_SECURED_PORT`` moves it), started here and stopped at the end
unless it was already running. It is skipped, with the reason, only when the security plugin
cannot be fetched from Maven Central; any other failure to start it fails the tests.

The users (``ltrr.plugin.ops.node.security``): ``alice`` reads and writes ``sec-a-*`` and
writes ``ubi_events``; ``bob`` only reads ``sec-b-*``; ``proxy`` is the proxy's own identity
(``LTRR_OPENSEARCH_AUTHORIZATION``); ``admin`` sets up and checks. Each test compares what a
user gets through the proxy with what the same user gets straight from the node.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests

from integration_tests.plugin.conftest import Proxy, running_proxy
from ltrr.plugin.errors import ProvisionError
from ltrr.plugin.learn.bulk import DECISIONS_INDEX, EVENTS_INDEX, MEMORY_INDEX, STATE_INDEX
from ltrr.plugin.ops.node import LocalNode, NodeConfig
from ltrr.plugin.ops.node import security as node_security
from ltrr.plugin.ops.node.bom import SECURED_PLUGINS
from ltrr.plugin.ops.node.fetch import fetch_artifacts
from ltrr.plugin.serve.server import ADMIN_TOKEN_ENV, OWN_AUTHORIZATION_ENV

SECURED_PORT = int(os.environ.get("LTRR_TEST_SECURED_PORT", "9210"))

# Entity names only in ``name``, topic words only in ``tags``: each query finds exactly the
# documents whose name holds it, on the node and through the proxy alike.
A_DOCS = {
    "zorblat-dumont": ("Zorblat Dumont", ["shoegaze", "fado"]),
    "zorblat-glisk": ("Zorblat Glisk", ["krautrock"]),
    "pellucid-ferraway": ("Pellucid Ferraway", ["zydeco"]),
    "tarnow-hollund": ("Tarnow Hollund", ["mariachi", "polka"]),
    "vesper-dumont": ("Vesper Dumont", ["gamelan"]),
}
B_DOCS = {
    "quintrel-dumont": ("Quintrel Dumont", ["qawwali"]),
    "quintrel-hollund": ("Quintrel Hollund", ["shoegaze"]),
    "mavoric-glisk": ("Mavoric Glisk", ["fado", "polka"]),
    "ombrio-ferraway": ("Ombrio Ferraway", ["krautrock"]),
    "kelvane-hollund": ("Kelvane Hollund", ["zydeco"]),
}
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


def catalog(target: str) -> str:
    """Lexical arms and the memory arm only: no embedder, no k-NN or LTR on this node."""
    return f"""\
target: {target}
budget: 15
deadline_ms: 10000
features:
  entity_field: name.keyword
policy: {{name: static}}
arms:
  - name: by_name
    template: multi_match.json.j2
    params: {{fields: [name]}}
    size: {{min: 5, max: 5}}
  - name: by_tag
    template: multi_match.json.j2
    params: {{fields: [tags]}}
    size: {{min: 5, max: 5}}
  - name: memory
    template: memory.json.j2
    size: {{min: 5, max: 5}}
fusion: {{method: rrf, k: 60}}
fallback:
  - {{arm: by_name, size: 5}}
feedback:
  events: {{click: 1.0, play: 2.0}}
  window_seconds: 600
memory:
  name_fields: [name]
  phrase_fields: [tags]
  flush_seconds: 0.5
"""


@dataclass(frozen=True)
class SecuredNode:
    url: str
    ca: Path
    passwords: dict[str, str]

    def authorization(self, user: str) -> str:
        return node_security.basic_authorization(user, self.passwords[user])

    def headers(self, user: str | None) -> dict[str, str]:
        return {} if user is None else {"Authorization": self.authorization(user)}

    def direct(self, method: str, path: str, user: str | None = "admin", **kw: Any) -> Any:
        """A request straight to the node, as ``user`` (None: no credentials)."""
        headers = {**self.headers(user), **kw.pop("headers", {})}
        return requests.request(
            method, self.url + path, headers=headers, verify=str(self.ca), timeout=60, **kw
        )


@dataclass(frozen=True)
class Targets:
    a: str  # alice may read and write it
    b: str  # bob may read it; alice may not touch it
    catalogs: list[Path] = field(default_factory=list)

    def docs(self, target: str) -> dict[str, tuple[str, list[str]]]:
        return A_DOCS if target == self.a else B_DOCS


@pytest.fixture(scope="session")
def secured(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SecuredNode]:
    config = NodeConfig(port=SECURED_PORT, heap="512m", security=True)
    try:
        fetch_artifacts(config.cache_dir, config.plugin_dir, plugins=SECURED_PLUGINS, say=print)
    except ProvisionError as exc:
        pytest.skip(f"the security plugin could not be fetched from Maven Central: {exc}")
    node = LocalNode(config)
    already_running = node.is_running()
    node.up(say=print)
    try:
        yield SecuredNode(
            config.url, node_security.ca_file(config), node_security.passwords(config)
        )
    finally:
        if not already_running:
            node.down()


def _delete_matching(node: SecuredNode, index: str, query: dict[str, Any]) -> None:
    """Search and bulk-delete, as admin (the node has no delete_by_query without reindex
    being asked for; this keeps to the plain APIs)."""
    while True:
        node.direct("POST", f"/{index}/_refresh")
        reply = node.direct(
            "POST", f"/{index}/_search", json={"query": query, "size": 1000, "_source": False}
        )
        if reply.status_code != 200:
            return
        hits = reply.json()["hits"]["hits"]
        if not hits:
            return
        lines = "".join(
            f'{{"delete": {{"_index": "{h["_index"]}", "_id": "{h["_id"]}"}}}}\n' for h in hits
        )
        node.direct("POST", "/_bulk", data=lines, headers={"Content-Type": "application/x-ndjson"})


@pytest.fixture(scope="session")
def targets(secured: SecuredNode, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Targets]:
    suffix = uuid.uuid4().hex[:8]
    a, b = f"sec-a-{suffix}", f"sec-b-{suffix}"
    for name, docs in ((a, A_DOCS), (b, B_DOCS)):
        created = secured.direct("PUT", f"/{name}", json=MAPPING)
        assert created.status_code == 200, created.text
        lines = []
        for doc_id, (artist, tags) in docs.items():
            lines.append(f'{{"index": {{"_index": "{name}", "_id": "{doc_id}"}}}}')
            lines.append(json.dumps({"name": artist, "tags": tags}))
        loaded = secured.direct(
            "POST",
            "/_bulk?refresh=true",
            data="\n".join(lines) + "\n",
            headers={"Content-Type": "application/x-ndjson"},
        )
        assert loaded.status_code == 200, loaded.text
        assert not loaded.json()["errors"], loaded.text
    # UBI's index exists already (a client's first event must not need create_index).
    if secured.direct("HEAD", "/ubi_events").status_code == 404:
        made = secured.direct("PUT", "/ubi_events", json={"settings": {"number_of_replicas": 0}})
        assert made.status_code == 200 or "already_exists" in made.text, made.text
    folder = tmp_path_factory.mktemp("secured-catalogs")
    paths = []
    for name in (a, b):
        path = folder / f"{name}.yml"
        path.write_text(catalog(name))
        paths.append(path)
    yield Targets(a, b, paths)
    for name in (a, b):
        secured.direct("DELETE", f"/{name}")
    for index in (DECISIONS_INDEX, EVENTS_INDEX, STATE_INDEX, MEMORY_INDEX):
        _delete_matching(secured, index, {"terms": {"target": [a, b]}})
    _delete_matching(secured, "ubi_events", {"term": {"client_id.keyword": "sec-test"}})


@pytest.fixture(scope="session")
def start_secured_proxy(secured: SecuredNode, targets: Targets) -> Callable[..., Any]:
    """``ltrr serve`` against the secured node: by default with ``--opensearch-ca`` and the
    proxy user's identity; the admin routes answer this loopback client (no admin token)."""

    def start(
        log: Path,
        *,
        ca: Path | None = secured.ca,
        identity: str | None = "proxy",
    ) -> Any:
        environment: dict[str, str | None] = {ADMIN_TOKEN_ENV: None, OWN_AUTHORIZATION_ENV: None}
        if identity is not None:
            environment[OWN_AUTHORIZATION_ENV] = secured.authorization(identity)
        return running_proxy(
            targets.catalogs,
            secured.url,
            log,
            extra_args=["--opensearch-ca", str(ca)] if ca is not None else [],
            environment=environment,
            model=False,
        )

    return start


@pytest.fixture(scope="session")
def proxy(
    start_secured_proxy: Callable[..., Any], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Proxy]:
    log = tmp_path_factory.mktemp("secured-proxy") / "proxy.log"
    with start_secured_proxy(log) as running:
        yield running


def through(proxy: Proxy, node: SecuredNode, method: str, path: str, user: str | None, **kw: Any):
    """The same request through the proxy, as ``user``."""
    headers = {**node.headers(user), **kw.pop("headers", {})}
    return requests.request(method, proxy.url + path, headers=headers, timeout=60, **kw)


def stats(proxy: Proxy) -> dict[str, Any]:
    reply = requests.get(f"{proxy.url}/_ltrr/stats", timeout=10)
    assert reply.status_code == 200, reply.text
    return reply.json()


def wait_for(condition: Callable[[], Any], timeout: float = 20.0, interval: float = 0.2) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met in {timeout}s (last value {value!r})")
        time.sleep(interval)
