"""proxy.py: the ``ltrr serve`` process handle. The child process, the clock and the cluster
connection are faked (or the interpreter replaced by a script that exits at once); no real
proxy or OpenSearch is started."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any, ClassVar

import orjson
import pytest
from opensearchpy.exceptions import ConnectionError as ClientConnectionError

from ltrr.plugin.errors import LtrrError
from ltrr.plugin.ops import cli
from ltrr.plugin.ops.simulate import proxy as proxy_mod
from ltrr.plugin.ops.simulate.proxy import ProxyProcess
from tests.plugin.ops._scripted import scripted_cluster

LISTEN = "127.0.0.1:9999"


class FakeProcess:
    """What ``subprocess.Popen`` returns: exits with ``code`` after ``polls`` polls (never when
    ``code`` is None); ``hang`` makes ``wait(timeout)`` time out."""

    instances: ClassVar[list[FakeProcess]] = []

    def __init__(self, command: list[str], **kwargs: Any) -> None:
        self.command = command
        self.kwargs = kwargs
        self.signals: list[int] = []
        self.killed = False
        self.waits: list[float | None] = []
        self.returncode: int | None = None
        self.polls = 0
        FakeProcess.instances.append(self)

    exit_after: int | None = None
    code: int | None = None
    hang = False

    def poll(self) -> int | None:
        self.polls += 1
        if self.code is not None and self.exit_after is not None and self.polls > self.exit_after:
            self.returncode = self.code
        return self.returncode

    def send_signal(self, sig: int) -> None:
        self.signals.append(sig)

    def wait(self, timeout: float | None = None) -> int:
        self.waits.append(timeout)
        if self.hang and not self.killed:
            raise subprocess.TimeoutExpired(self.command, timeout or 0)
        self.returncode = -15 if not self.killed else -9
        return self.returncode

    def kill(self) -> None:
        self.killed = True


class Clock:
    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


class Stats:
    """``GET /_ltrr/stats`` answers ``statuses`` in order (the last repeats); None refuses."""

    def __init__(self, *statuses: int | None) -> None:
        self.statuses = list(statuses)
        self.urls: list[str] = []

    def request(self, method, url, data=None, headers=None, timeout=None):
        self.urls.append(f"{method} {url}")
        status = self.statuses.pop(0) if len(self.statuses) > 1 else self.statuses[0]
        if status is None:
            raise ClientConnectionError("N/A", "connection refused", None)
        return SimpleNamespace(status_code=status, content=orjson.dumps({"searches": 7}))


@pytest.fixture
def fakes(monkeypatch: pytest.MonkeyPatch):
    """Popen, the clock and the cluster connection replaced; yields a namespace to set them."""
    FakeProcess.instances = []
    clock = Clock()
    state = SimpleNamespace(clock=clock, stats=Stats(200), clusters=[])

    def cluster(url: str, timeout: float = 60.0):
        state.clusters.append((url, timeout))
        return scripted_cluster(state.stats, url=url)

    monkeypatch.setattr(proxy_mod.subprocess, "Popen", FakeProcess)
    monkeypatch.setattr(proxy_mod, "time", clock)
    monkeypatch.setattr(proxy_mod, "Cluster", cluster)
    monkeypatch.setattr(FakeProcess, "code", None)
    monkeypatch.setattr(FakeProcess, "exit_after", None)
    monkeypatch.setattr(FakeProcess, "hang", False)
    return state


def handle(tmp_path: Path, **kwargs: Any) -> ProxyProcess:
    return ProxyProcess(
        [tmp_path / "a.yml", tmp_path / "b.yml"],
        "http://os:9200",
        LISTEN,
        tmp_path / "data",
        seed=11,
        log=tmp_path / "logs" / "proxy.log",
        **kwargs,
    )


def test_the_command_line_serves_every_catalog_with_the_run_settings(tmp_path: Path, fakes) -> None:
    proxy = handle(tmp_path, merge_seconds=0.5)
    assert proxy.url == "http://127.0.0.1:9999"
    proxy.start()
    (process,) = FakeProcess.instances
    assert process.command == [
        sys.executable,
        "-m",
        "ltrr.plugin.ops.cli",
        "serve",
        "--catalog",
        str(tmp_path / "a.yml"),
        str(tmp_path / "b.yml"),
        "--opensearch",
        "http://os:9200",
        "--listen",
        LISTEN,
        "--data-dir",
        str(tmp_path / "data"),
        "--seed",
        "11",
        "--merge-seconds",
        "0.5",
        "--log-level",
        "warning",
    ]
    assert process.kwargs["stderr"] == subprocess.STDOUT
    assert process.kwargs["env"] == dict(os.environ)
    assert (tmp_path / "logs").is_dir()  # the log's folder is made


def test_the_command_line_is_one_the_cli_accepts(tmp_path: Path, fakes) -> None:
    handle(tmp_path).start()
    args = cli.build_parser().parse_args(FakeProcess.instances[0].command[3:])
    assert args.catalog == [str(tmp_path / "a.yml"), str(tmp_path / "b.yml")]
    assert (args.opensearch, args.listen, args.seed) == ("http://os:9200", LISTEN, 11)
    assert (args.data_dir, args.merge_seconds, args.log_level) == (
        tmp_path / "data",
        2.0,
        "warning",
    )


def test_start_returns_once_the_stats_answer(tmp_path: Path, fakes) -> None:
    fakes.stats = Stats(None, 503, 200)  # refused, starting, ready
    handle(tmp_path).start()
    assert fakes.stats.urls == ["GET http://127.0.0.1:9999/_ltrr/stats"] * 3
    assert fakes.clusters == [("http://127.0.0.1:9999", 2)] * 3
    assert fakes.clock.sleeps == [0.3, 0.3]
    assert FakeProcess.instances[0].signals == []  # left running


def test_an_early_exit_raises_with_the_log_tail(tmp_path: Path, fakes, monkeypatch) -> None:
    monkeypatch.setattr(FakeProcess, "code", 2)
    monkeypatch.setattr(FakeProcess, "exit_after", 1)  # alive at the first poll, gone after
    fakes.stats = Stats(None)
    proxy = handle(tmp_path)
    proxy.log.parent.mkdir(parents=True)
    proxy.log.write_text("head-" + "y" * 2500 + "-tail\n")
    with pytest.raises(LtrrError) as err:
        proxy.start()
    tail = ("head-" + "y" * 2500 + "-tail\n")[-2000:]
    assert str(err.value) == f"the proxy exited with 2; see {proxy.log}:\n{tail}"
    assert "head-" not in str(err.value)


def test_a_proxy_that_never_answers_is_stopped_at_the_deadline(tmp_path: Path, fakes) -> None:
    fakes.stats = Stats(None)
    with pytest.raises(LtrrError) as err:
        handle(tmp_path).start(timeout=1.0)
    assert str(err.value) == (
        f"the proxy did not answer within 1 s; see {tmp_path / 'logs' / 'proxy.log'}"
    )
    # polled at t = 0, 0.3, 0.6, 0.9; t = 1.2 is past the deadline
    assert len(fakes.stats.urls) == 4
    process = FakeProcess.instances[0]
    assert process.signals == [signal.SIGTERM]
    assert process.waits == [30.0]


def test_stop_sends_sigterm_once_and_kills_a_proxy_that_hangs(
    tmp_path: Path, fakes, monkeypatch
) -> None:
    monkeypatch.setattr(FakeProcess, "hang", True)
    proxy = handle(tmp_path)
    proxy.start()
    proxy.stop(timeout=5.0)
    process = FakeProcess.instances[0]
    assert process.signals == [signal.SIGTERM]
    assert process.killed is True
    assert process.waits == [5.0, None]
    proxy.stop()  # the handle is released: nothing more is sent
    assert process.signals == [signal.SIGTERM]


def test_stop_leaves_an_exited_process_and_a_never_started_one_alone(tmp_path: Path, fakes) -> None:
    handle(tmp_path).stop()  # never started: nothing to do
    proxy = handle(tmp_path)
    proxy.start()
    process = FakeProcess.instances[0]
    process.returncode = 0
    proxy.stop()
    assert process.signals == []
    assert process.waits == []


def test_wait_and_stats_go_to_the_process_and_the_proxy(tmp_path: Path, fakes) -> None:
    proxy = handle(tmp_path)
    proxy.wait()  # not started: returns at once
    proxy.start()
    assert proxy.stats() == {"searches": 7}
    assert fakes.clusters[-1] == ("http://127.0.0.1:9999", 10)
    proxy.wait()
    assert FakeProcess.instances[0].waits == [None]


def test_a_real_process_that_exits_at_once_is_reported_with_its_output(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A real child (a shell script standing in for the interpreter) that prints its arguments
    and a long line, then exits 3: start() reads the appended log."""
    script = tmp_path / "fake-python"
    script.write_text(
        '#!/bin/sh\necho "argv: $*"\nhead -c 3000 /dev/zero | tr "\\0" x\necho END\nexit 3\n'
    )
    script.chmod(0o755)
    monkeypatch.setattr(proxy_mod.sys, "executable", str(script))
    monkeypatch.setattr(
        proxy_mod, "Cluster", lambda url, timeout=60.0: scripted_cluster(Stats(None), url=url)
    )
    proxy = handle(tmp_path)
    proxy.log.parent.mkdir(parents=True)
    proxy.log.write_text("earlier run\n")
    with pytest.raises(LtrrError) as err:
        proxy.start(timeout=30.0)
    message = str(err.value)
    assert message == f"the proxy exited with 3; see {proxy.log}:\n" + "x" * 1996 + "END\n"
    log = proxy.log.read_text()
    assert log.startswith("earlier run\nargv: -m ltrr.plugin.ops.cli serve --catalog ")
    assert "--seed 11 --merge-seconds 2.0 --log-level warning\n" in log
