"""The proxy in front of an OpenSearch that misbehaves: a relay on loopback between them goes
silent (a black hole, or a node under SIGSTOP), slow, or down, then recovers.

Each case checks the cap on latency (the catalog's deadline for an intercepted search, the
upstream timeout for a forwarded request), that the answer is OpenSearch's error JSON, and
that the proxy serves normally once the relay is healthy again.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from integration_tests.plugin.conftest import catalog_text, running_proxy

DEADLINE_MS = 1000
UPSTREAM_TIMEOUT = 2.0
SLACK = 1.0  # the proxy's own work, the machine's load


class Relay:
    """A TCP relay whose mode can change under live connections: ``pass``, ``hold`` (bytes
    are taken and never delivered), ``slow`` (each chunk waits ``delay``) or ``down`` (no
    listener; live connections cut)."""

    def __init__(self, upstream: tuple[str, int]) -> None:
        self.upstream = upstream
        self.mode = "pass"
        self.delay = 0.0
        self._listener: socket.socket | None = None
        self._live: list[socket.socket] = []
        self._lock = threading.Lock()
        probe = socket.socket()
        probe.bind(("127.0.0.1", 0))
        self.port = probe.getsockname()[1]
        probe.close()
        self._listen()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _listen(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(128)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            try:
                server = socket.create_connection(self.upstream)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._live += [client, server]
            for a, b in ((client, server), (server, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while chunk := source.recv(65536):
                while self.mode == "hold":
                    time.sleep(0.02)
                if self.mode == "slow":
                    time.sleep(self.delay)
                sink.sendall(chunk)
        except OSError:
            pass
        finally:
            for s in (source, sink):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)

    def set(self, mode: str, delay: float = 0.0) -> None:
        if mode == "down" and self._listener is not None:
            with contextlib.suppress(OSError):  # wakes the accepting thread, which a close won't
                self._listener.shutdown(socket.SHUT_RDWR)
            self._listener.close()
            self._listener = None
            with self._lock:
                live, self._live = self._live, []
            for s in live:
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)
        elif mode != "down" and self._listener is None:
            self._listen()
        self.delay = delay
        self.mode = mode

    def close(self) -> None:
        self.set("down")


@pytest.fixture
def faulty(opensearch_url: str, music, tmp_path: Path) -> Iterator[tuple[Relay, str, str]]:
    host, port = opensearch_url.removeprefix("http://").split(":")
    relay = Relay((host, int(port)))
    target = f"{music.name}-static"
    catalog = tmp_path / "static.yml"
    text = catalog_text(target, "{name: static}")
    catalog.write_text(text.replace("deadline_ms: 5000", f"deadline_ms: {DEADLINE_MS}"))
    with running_proxy(
        [catalog], relay.url, tmp_path / "proxy.log", upstream_timeout=UPSTREAM_TIMEOUT
    ) as proxy:
        yield relay, proxy.url, target
    relay.close()


def _timed(method: str, url: str, **kwargs) -> tuple[float, requests.Response]:
    started = time.monotonic()
    response = requests.request(method, url, timeout=30, **kwargs)
    return time.monotonic() - started, response


def _search(url: str, target: str) -> tuple[float, requests.Response]:
    return _timed("POST", f"{url}/{target}/_search", json={"ext": {"ltrr": {"query": "radiohead"}}})


def _is_error(response: requests.Response, status: int) -> None:
    assert response.status_code == status, response.text
    error = response.json()
    assert error["status"] == status
    assert error["error"]["root_cause"][0]["type"]


def _recovers(relay: Relay, url: str, target: str) -> None:
    relay.set("pass")
    _, response = _search(url, target)
    assert response.status_code == 200, response.text
    assert response.json()["ext"]["ltrr"]["decision_id"]
    assert _timed("GET", f"{url}/_cluster/health")[1].status_code == 200


@pytest.mark.parametrize("mode", ["hold", "slow"])
def test_a_silent_or_slow_node_costs_at_most_the_deadline(faulty, mode):
    relay, url, target = faulty
    _recovers(relay, url, target)  # warm: the pool holds live connections to the relay
    relay.set(mode, delay=1.5)
    for _ in range(3):
        took, response = _search(url, target)
        assert took < DEADLINE_MS / 1000 + SLACK, took
        _is_error(response, 504)
        took, response = _timed("GET", f"{url}/_cluster/health")
        assert took < UPSTREAM_TIMEOUT + (1.5 if mode == "slow" else 0) + SLACK, took
        if mode == "hold":
            _is_error(response, 504)
    _recovers(relay, url, target)


def test_a_node_that_is_down_is_a_fast_502_and_comes_back(faulty):
    relay, url, target = faulty
    _recovers(relay, url, target)
    relay.set("down")
    for path in ("/_cluster/health", f"/{target}/_search"):
        took, response = _timed(
            "POST" if "search" in path else "GET",
            url + path,
            json={"ext": {"ltrr": {"query": "radiohead"}}} if "search" in path else None,
        )
        assert took < SLACK, (path, took)
        _is_error(response, 502)
        assert str(relay.port) not in response.text  # no upstream address in an answer
    _recovers(relay, url, target)


def test_a_node_that_never_answers_fails_the_start_with_a_message(tmp_path, music):
    hole = socket.socket()
    hole.bind(("127.0.0.1", 0))
    hole.listen(8)  # accepts connections (the kernel does), never answers
    catalog = tmp_path / "static.yml"
    catalog.write_text(catalog_text(f"{music.name}-static", "{name: static}"))
    port = hole.getsockname()[1]
    started = time.monotonic()
    with (
        pytest.raises(pytest.fail.Exception) as failed,
        running_proxy(
            [catalog], f"http://127.0.0.1:{port}", tmp_path / "proxy.log", upstream_timeout=2.0
        ),
    ):
        pass
    assert time.monotonic() - started < 30
    assert "did not answer within 2 s" in str(failed.value)
    hole.close()
