"""The cluster is the one the product needs, and the local node's life cycle behaves."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
import requests

from ltrr.plugin.errors import JavaNotFound, PluginNotInstalled, PortInUse
from ltrr.plugin.ops.cluster import KNN_PLUGIN, LTR_PLUGIN, NEURAL_PLUGIN, ClusterInfo
from ltrr.plugin.ops.node import LocalNode, NodeConfig
from ltrr.plugin.ops.node.bom import MODULES
from ltrr.plugin.ops.node.java import find_java_home

# What the official distribution's users have: every module the local node assembles.
REQUIRED_MODULES = {m.name for m in MODULES}
REQUIRED_PLUGINS = (KNN_PLUGIN, LTR_PLUGIN, NEURAL_PLUGIN)


def test_cluster_has_the_modules_and_plugins(cluster: ClusterInfo) -> None:
    assert cluster.distribution == "opensearch"
    assert cluster.version.split(".")[0] in {"2", "3"}
    assert set(cluster.modules) >= REQUIRED_MODULES
    assert any(m.startswith("transport-") for m in cluster.modules)
    for plugin in REQUIRED_PLUGINS:
        cluster.require(plugin)


def test_cluster_serves(client, index_name: str) -> None:
    """What matters is that the node takes writes and answers searches with every primary
    assigned, not a colour that another test's index can change."""
    client.indices.create(index=index_name, body={"settings": {"number_of_replicas": 0}})
    client.index(index=index_name, id="1", body={"title": "served"}, refresh=True)
    hits = client.search(index=index_name, body={"query": {"match": {"title": "served"}}})
    assert [h["_id"] for h in hits["hits"]["hits"]] == ["1"]
    shards = client.cat.shards(format="json", h="index,prirep,state")
    unassigned = [s for s in shards if s["prirep"] == "p" and s["state"] != "STARTED"]
    assert unassigned == []


def test_cat_plugins_agrees_with_cluster_info(opensearch_url: str, cluster: ClusterInfo) -> None:
    listed = requests.get(f"{opensearch_url}/_cat/plugins?h=component", timeout=10).text.split()
    for plugin in REQUIRED_PLUGINS:
        assert plugin in listed
    with pytest.raises(PluginNotInstalled, match="LTR plugin not installed"):
        ClusterInfo(**{**cluster.__dict__, "plugins": {}}).require(LTR_PLUGIN)


def test_the_modules_every_user_has_answer(client, index_name: str) -> None:
    """reindex (and its by-query APIs), parent-join, percolator, rank-eval, expressions,
    ingest processors, matrix stats: what a client's own server tests call."""
    body = {
        "settings": {"index": {"number_of_shards": 1, "number_of_replicas": 0}},
        "mappings": {
            "properties": {
                "text": {"type": "text"},
                "n": {"type": "integer"},
                "m": {"type": "integer"},
                "rel": {"type": "join", "relations": {"question": "answer"}},
                "query": {"type": "percolator"},
                "where": {"type": "geo_shape"},
            }
        },
    }
    client.indices.create(index=index_name, body=body)
    client.index(
        index=index_name, id="q", body={"text": "hello", "n": 1, "m": 2, "rel": "question"}
    )
    client.index(
        index=index_name,
        id="a",
        routing="q",
        body={"text": "hi", "n": 3, "m": 5, "rel": {"name": "answer", "parent": "q"}},
    )
    client.index(index=index_name, id="p", body={"query": {"match": {"text": "hello"}}})
    client.indices.refresh(index=index_name)
    updated = client.update_by_query(
        index=index_name,
        body={"query": {"term": {"n": 1}}, "script": {"source": "ctx._source.n += 1"}},
        refresh=True,
    )
    assert updated["updated"] == 1
    children = client.search(
        index=index_name,
        body={"query": {"has_parent": {"parent_type": "question", "query": {"match_all": {}}}}},
    )
    assert [h["_id"] for h in children["hits"]["hits"]] == ["a"]
    percolated = client.search(
        index=index_name,
        body={"query": {"percolate": {"field": "query", "document": {"text": "hello"}}}},
    )
    assert [h["_id"] for h in percolated["hits"]["hits"]] == ["p"]
    scored = client.search(
        index=index_name,
        body={
            "query": {
                "function_score": {
                    "query": {"exists": {"field": "m"}},
                    "script_score": {
                        "script": {"lang": "expression", "source": "doc['m'].value * 2"}
                    },
                    "boost_mode": "replace",
                }
            }
        },
    )
    assert sorted(h["_score"] for h in scored["hits"]["hits"]) == [4.0, 10.0]
    stats = client.search(
        index=index_name, body={"size": 0, "aggs": {"s": {"matrix_stats": {"fields": ["n", "m"]}}}}
    )
    assert stats["aggregations"]["s"]["doc_count"] == 2
    evaluated = client.rank_eval(
        index=index_name,
        body={
            "requests": [
                {
                    "id": "hello",
                    "request": {"query": {"match": {"text": "hello"}}},
                    "ratings": [{"_index": index_name, "_id": "q", "rating": 1}],
                }
            ],
            "metric": {"precision": {"k": 5, "relevant_rating_threshold": 1}},
        },
    )
    assert evaluated["metric_score"] == 1.0
    piped = client.ingest.simulate(
        body={
            "pipeline": {
                "processors": [
                    {"lowercase": {"field": "text"}},
                    {"user_agent": {"field": "agent"}},
                    {"script": {"source": "ctx.n = ctx.text.length()"}},
                ]
            },
            "docs": [{"_source": {"text": "HELLO", "agent": "Mozilla/5.0 (X11; Linux x86_64)"}}],
        }
    )
    doc = piped["docs"][0]["doc"]["_source"]
    assert doc["text"] == "hello"
    assert doc["n"] == 5
    assert doc["user_agent"]["os"]["name"] == "Linux"
    copy = f"{index_name}-copy"
    client.indices.create(index=copy, body=body)
    try:
        copied = client.reindex(
            body={"source": {"index": index_name}, "dest": {"index": copy}}, refresh=True
        )
        assert copied["created"] == 3
        deleted = client.delete_by_query(
            index=copy, body={"query": {"match_all": {}}}, refresh=True
        )
        assert deleted["deleted"] == 3
    finally:
        client.indices.delete(index=copy, ignore_unavailable=True)


@pytest.fixture
def local_node(opensearch_url: str) -> LocalNode:
    if not opensearch_url.startswith("http://127.0.0.1:"):
        pytest.skip("the session's cluster is not the local node")
    node = LocalNode(NodeConfig(port=int(opensearch_url.rsplit(":", 1)[1])))
    if not node.is_running():
        pytest.skip("the session's cluster is not the local node")
    return node


def ltrr(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ltrr.plugin.ops.cli", *args],
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    )


def test_status_command_reports_version_modules_and_plugins(local_node: LocalNode) -> None:
    done = ltrr("opensearch", "status", "--port", str(local_node.config.port))
    assert done.returncode == 0, done.stderr
    assert "version:      opensearch 2.19.1" in done.stdout
    assert "health:       " in done.stdout
    for module in REQUIRED_MODULES:
        assert module in done.stdout
    for plugin in REQUIRED_PLUGINS:
        assert f"{plugin} 2.19.1.0" in done.stdout
    assert "LTR:          installed" in done.stdout

    logs = ltrr("opensearch", "logs", "-n", "5", "--port", str(local_node.config.port))
    assert logs.returncode == 0, logs.stderr
    assert len(logs.stdout.splitlines()) == 5


def test_up_refuses_a_port_it_does_not_own(local_node: LocalNode, tmp_path: Path) -> None:
    stranger = LocalNode(NodeConfig(port=local_node.config.port, state_dir=tmp_path))
    with pytest.raises(PortInUse):
        stranger.up()
    assert local_node.is_running()


@pytest.mark.lifecycle
def test_second_node_up_status_down() -> None:
    """A whole life cycle on a second port, from the warm cache: offline, idempotent, clean."""
    try:
        find_java_home()
    except JavaNotFound as exc:
        pytest.skip(str(exc))
    # Not under pytest's tmp_path: that is private to us, and as root the node runs as another user.
    state = Path(tempfile.mkdtemp(prefix="ltrr-it-state-"))
    state.chmod(0o755)
    port = int(os.environ.get("LTRR_TEST_SECOND_PORT", "9211"))
    node = LocalNode(NodeConfig(port=port, heap="512m", state_dir=state))
    try:
        info = node.up()
        pid = node.pid()
        assert pid is not None
        assert info.health == "green"  # its own fresh data: nothing yellow in it
        for plugin in REQUIRED_PLUGINS:
            assert info.has_plugin(plugin)
        # The transport port is pinned beside the HTTP one, never floating into another node's.
        nodes = requests.get(f"{node.url}/_nodes/transport", timeout=10).json()["nodes"]
        (transport,) = [n["transport"]["publish_address"] for n in nodes.values()]
        assert transport.endswith(f":{port + 100}")
        created = requests.put(f"{node.url}/ltrr-it-defaults", timeout=30)
        assert created.status_code == 200, created.text
        settings = requests.get(f"{node.url}/ltrr-it-defaults/_settings", timeout=10).json()
        assert settings["ltrr-it-defaults"]["settings"]["index"]["number_of_replicas"] == "0"
        assert node.up().version == info.version
        assert node.pid() == pid, "a second up must not start a second process"
        assert "running, pid" in node.status()
        assert "started" in node.log_lines(200)
    finally:
        assert node.down()
    assert not node.is_running()
    assert not Path(f"/proc/{pid}").exists() or not node.is_running()
    with pytest.raises(requests.ConnectionError):
        requests.get(node.url, timeout=5)
    assert node.down() is False
    shutil.rmtree(state)
