"""``serve`` as ``ltrr serve`` runs it: what aiohttp's HTTP parser refuses, before any route,
is answered in OpenSearch's error JSON too."""

from __future__ import annotations

import asyncio
import json

import pytest

from ltrr.plugin.serve.server import serve
from ltrr.plugin.serve.workers import bind
from tests.plugin.serve.test_server import CATALOG


async def _exchange(port: int, raw: bytes) -> tuple[int, dict, bytes]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(raw)
    await writer.drain()
    answer = await asyncio.wait_for(reader.read(), 10)  # the connection is closed after it
    writer.close()
    head, _, body = answer.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), json.loads(body), head


@pytest.mark.parametrize(
    "raw",
    [
        b"BR\x01W / HTTP/1.1\r\nHost: x\r\n\r\n",
        b"GET /" + b"a" * 100_000 + b" HTTP/1.1\r\nHost: x\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n",
    ],
    ids=["bad method", "long url", "bad header"],
)
def test_what_the_http_parser_refuses_is_an_opensearch_error(tmp_path, raw):
    catalog = tmp_path / "music.yml"
    catalog.write_text(CATALOG)

    async def go():
        sock = bind("127.0.0.1", 0)
        port = sock.getsockname()[1]
        task = asyncio.create_task(serve([catalog], "http://127.0.0.1:1", sock=sock))
        try:
            await asyncio.sleep(0.3)  # the start-up (the socket is bound already)
            assert not task.done(), task
            return await _exchange(port, raw)
        finally:
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task

    status, error, head = asyncio.run(go())
    assert status == 400
    assert b"application/json" in head
    assert error["status"] == 400
    assert error["error"]["type"] == "illegal_argument_exception"
    assert error["error"]["root_cause"][0]["reason"]
