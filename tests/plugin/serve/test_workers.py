"""Binding: a taken port is refused, never shared; workers get their own data directories."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from ltrr.plugin.errors import PortInUse
from ltrr.plugin.serve.workers import LISTEN_FD_ENV, WORKER_ENV, bind, inherited, worker_data_dir


def test_a_port_another_socket_listens_on_is_refused_even_if_it_allows_reuse():
    other = socket.socket()
    other.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)  # as the old proxy did
    other.bind(("127.0.0.1", 0))
    other.listen(1)
    port = other.getsockname()[1]
    try:
        with pytest.raises(PortInUse, match=f"127.0.0.1:{port} is already in use"):
            bind("127.0.0.1", port)
    finally:
        other.close()


def test_a_free_port_is_bound_and_listening():
    sock = bind("127.0.0.1", 0)
    try:
        port = sock.getsockname()[1]
        with socket.create_connection(("127.0.0.1", port), timeout=5):
            pass
    finally:
        sock.close()


def test_a_worker_finds_its_socket_and_index_in_the_environment(monkeypatch):
    sock = bind("127.0.0.1", 0)
    monkeypatch.setenv(LISTEN_FD_ENV, str(sock.fileno()))
    monkeypatch.setenv(WORKER_ENV, "3")
    found = inherited()
    assert found is not None
    again, index = found
    assert index == 3
    assert again.getsockname() == sock.getsockname()
    again.detach()  # the same descriptor: closed once, below
    sock.close()
    monkeypatch.delenv(LISTEN_FD_ENV)
    assert inherited() is None


def test_each_worker_has_its_own_data_directory():
    assert worker_data_dir(Path("/d"), 0, 1) == Path("/d")
    assert worker_data_dir(Path("/d"), 1, 2) == Path("/d/worker-1")
