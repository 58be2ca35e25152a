import subprocess
import sys
import time

import pytest

from ltrr.plugin.errors import NodeStartError
from ltrr.plugin.ops.node import process
from ltrr.plugin.ops.node.config import NodeConfig


@pytest.fixture
def config(tmp_path):
    config = NodeConfig(port=9399, state_dir=tmp_path, cache_dir=tmp_path, start_timeout=5)
    config.node_dir.mkdir(parents=True)
    return config


def test_no_pid_file_or_garbage_means_not_running(config):
    assert process.owned_pid(config) is None
    config.pid_file.write_text("not a pid\n")
    assert process.owned_pid(config) is None


def test_a_live_pid_of_someone_else_is_not_ours(config):
    import os

    config.pid_file.write_text(f"{os.getpid()}\n")
    assert process.owned_pid(config) is None


def test_stop_terminates_only_our_process_and_clears_the_pid_file(config, impostor):
    ours = impostor(config.home)
    bystander = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    try:
        config.pid_file.write_text(f"{ours.pid}\n")
        assert process.owned_pid(config) == ours.pid
        process.stop(config, ours.pid, ours, timeout=10)
        assert ours.poll() is not None
        assert not config.pid_file.exists()
        assert process.owned_pid(config) is None
        assert bystander.poll() is None
    finally:
        bystander.kill()
        bystander.wait()


def test_stop_escalates_to_sigkill(config, impostor):
    stubborn = impostor(config.home, ignore_sigterm=True)
    began = time.monotonic()
    process.stop(config, stubborn.pid, stubborn, timeout=1)
    assert stubborn.returncode == -9
    assert time.monotonic() - began < 10


def test_a_dead_zombie_is_not_running(config, impostor):
    ours = impostor(config.home)
    config.pid_file.write_text(f"{ours.pid}\n")
    assert process.owned_pid(config) == ours.pid
    ours.kill()
    time.sleep(0.2)  # now a zombie until reaped
    assert process.owned_pid(config) is None


def test_wait_green_fails_fast_with_the_log_when_the_node_dies(config):
    config.logs.mkdir(parents=True)
    config.server_log.write_text("line 1\njava.lang.IllegalStateException: boom\n")
    dead = subprocess.Popen([sys.executable, "-c", "raise SystemExit(3)"])
    dead.wait()
    with pytest.raises(NodeStartError, match=r"exited with code 3[\s\S]*boom"):
        process.wait_green(config, dead, timeout=30)


def test_wait_green_times_out_with_the_log(config):
    with pytest.raises(
        NodeStartError, match=r"did not turn green or yellow within 1s[\s\S]*no log written"
    ):
        process.wait_green(config, None, timeout=1)


def test_log_tail_prefers_the_server_log(config):
    config.logs.mkdir(parents=True)
    config.console_log.write_text("console\n")
    assert process.log_tail(config) == "console\n"
    config.server_log.write_text("".join(f"{i}\n" for i in range(100)))
    assert process.log_tail(config, lines=2) == "98\n99\n"


def test_node_user_only_when_root(monkeypatch):
    monkeypatch.setattr("os.geteuid", lambda: 1000)
    assert process.node_user() is None
    monkeypatch.setattr("os.geteuid", lambda: 0)
    assert process.node_user() == "ltrr-opensearch"
