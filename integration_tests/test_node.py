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

from ltrr.plugin.cluster import KNN_PLUGIN, LTR_PLUGIN, ClusterInfo
from ltrr.plugin.errors import JavaNotFound, PluginNotInstalled, PortInUse
from ltrr.plugin.node import LocalNode, NodeConfig
from ltrr.plugin.node.java import find_java_home

REQUIRED_MODULES = {"analysis-common", "lang-mustache", "lang-painless", "mapper-extras"}


def test_cluster_has_the_modules_and_knn(cluster: ClusterInfo) -> None:
    assert cluster.distribution == "opensearch"
    assert cluster.version.split(".")[0] in {"2", "3"}
    assert cluster.health in {"green", "yellow"}  # a user's own cluster may have replicas
    assert set(cluster.modules) >= REQUIRED_MODULES
    assert any(m.startswith("transport-") for m in cluster.modules)
    assert cluster.has_plugin(KNN_PLUGIN)


def test_cat_plugins_agrees_with_cluster_info(opensearch_url: str, cluster: ClusterInfo) -> None:
    listed = requests.get(f"{opensearch_url}/_cat/plugins?h=component", timeout=10).text.split()
    assert KNN_PLUGIN in listed
    assert (LTR_PLUGIN in listed) == cluster.has_plugin(LTR_PLUGIN)
    if LTR_PLUGIN not in listed:
        with pytest.raises(PluginNotInstalled, match="LTR plugin not installed"):
            cluster.require(LTR_PLUGIN)


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
        [sys.executable, "-m", "ltrr.plugin.cli", *args],
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    )


def test_status_command_reports_version_modules_and_plugins(local_node: LocalNode) -> None:
    done = ltrr("opensearch", "status", "--port", str(local_node.config.port))
    assert done.returncode == 0, done.stderr
    assert "version:      opensearch 2.19.1" in done.stdout
    assert "health:       green" in done.stdout
    for module in REQUIRED_MODULES:
        assert module in done.stdout
    assert f"{KNN_PLUGIN} 2.19.1.0" in done.stdout
    assert "LTR" in done.stdout

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
        assert info.health == "green"
        assert info.has_plugin(KNN_PLUGIN)
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
