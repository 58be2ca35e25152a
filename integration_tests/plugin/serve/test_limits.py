"""Requests that would hold the proxy: bodies that never finish arriving get a 408 in
OpenSearch's format, and the proxy keeps answering everyone else."""

from __future__ import annotations

import json
import socket
import time

import requests


def _half_sent(url: str, path: str, *, chunked: bool = False) -> socket.socket:
    host, port = url.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)), timeout=30)
    framing = "Transfer-Encoding: chunked" if chunked else "Content-Length: 1000"
    method = "PUT" if chunked else "POST"
    head = (
        f"{method} {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
        f"{framing}\r\n\r\n"
    )
    first = b'{"query": '
    sock.sendall(head.encode() + (b"%x\r\n%s\r\n" % (len(first), first) if chunked else first))
    return sock  # and never the rest


def _answer(sock: socket.socket) -> tuple[int, dict]:
    raw = b""
    while b"\r\n\r\n" not in raw:
        chunk = sock.recv(65536)
        assert chunk, "the proxy closed the connection without an answer"
        raw += chunk
    head, _, body = raw.partition(b"\r\n\r\n")
    length = next(
        int(line.split(b":", 1)[1])
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"content-length:")
    )
    while len(body) < length:
        body += sock.recv(65536)
    return int(head.split(b" ", 2)[1]), json.loads(body[:length])


def test_half_sent_bodies_get_a_408_and_never_hold_the_proxy(start_proxy, music, tmp_path):
    with start_proxy(
        list(music.catalogs.values()), tmp_path / "proxy.log", body_timeout=1.0
    ) as proxy:
        paths = [
            "/ltrr-it-any/_doc/1",  # passthrough, a small body read at once
            f"/{music.name}-static/_search",  # intercepted
            "/_ltrr/feedback",
            "/_bulk",  # a UBI-capable write
        ]
        socks = [_half_sent(proxy.url, path) for path in paths for _ in range(25)]
        # A streamed body (no length): passthrough forwards it chunk by chunk.
        socks += [_half_sent(proxy.url, paths[0], chunked=True) for _ in range(25)]
        started = time.monotonic()
        # Meanwhile everyone else is answered.
        assert requests.get(f"{proxy.url}/_cluster/health", timeout=10).status_code == 200
        for sock in socks:
            status, error = _answer(sock)
            assert status == 408, error
            assert error["status"] == 408
            assert error["error"]["type"] == "timeout_exception"
            sock.close()
        assert time.monotonic() - started < 15
        assert requests.get(f"{proxy.url}/_cluster/health", timeout=10).status_code == 200


def test_what_the_http_parser_refuses_is_answered_in_opensearch_format(
    start_proxy, music, tmp_path
):
    """A bad method, a 1 MB URL, a broken header: refused before any route, yet in JSON."""
    with start_proxy(list(music.catalogs.values()), tmp_path / "proxy.log") as proxy:
        host, port = proxy.url.removeprefix("http://").split(":")
        for raw in (
            b"BR\x01W / HTTP/1.1\r\nHost: x\r\n\r\n",
            b"GET /" + b"a" * 1_000_000 + b" HTTP/1.1\r\nHost: x\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n",
        ):
            with socket.create_connection((host, int(port)), timeout=30) as sock:
                sock.sendall(raw)
                status, error = _answer(sock)
            assert status == 400, error
            assert error["status"] == 400
            assert error["error"]["type"] == "illegal_argument_exception"
            assert error["error"]["reason"]
        assert requests.get(f"{proxy.url}/_cluster/health", timeout=10).status_code == 200
