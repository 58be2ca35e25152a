import socket

import pytest

from ltrr.plugin.errors import PortInUse
from ltrr.plugin.ops.node import LocalNode, NodeConfig


@pytest.fixture
def listener():
    """Something that is not ours, and not even HTTP, holding a port."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen()
    yield sock.getsockname()[1]
    sock.close()


def test_up_refuses_a_port_held_by_a_stranger(listener, tmp_path, monkeypatch):
    def no_download(*args, **kwargs):
        raise AssertionError("must not fetch or assemble for a port it cannot use")

    monkeypatch.setattr("ltrr.plugin.ops.node.fetch_artifacts", no_download)
    node = LocalNode(NodeConfig(port=listener, state_dir=tmp_path, cache_dir=tmp_path))
    with pytest.raises(PortInUse, match=f"listens at http://127.0.0.1:{listener}"):
        node.up()
    assert not node.is_running()


def test_down_without_a_node_is_a_no_op(tmp_path):
    node = LocalNode(NodeConfig(port=9397, state_dir=tmp_path, cache_dir=tmp_path))
    messages = []
    assert node.down(say=messages.append) is False
    assert messages == ["No OpenSearch started by ltrr is running for port 9397"]


def test_status_of_a_node_that_is_still_starting(tmp_path, impostor):
    config = NodeConfig(port=9396, state_dir=tmp_path, cache_dir=tmp_path)
    config.node_dir.mkdir(parents=True)
    starting = impostor(config.home)
    config.pid_file.write_text(f"{starting.pid}\n")
    status = LocalNode(config).status()
    assert f"node:         running, pid {starting.pid}" in status
    assert "cluster:      not answering yet" in status
