import asyncio

from ltrr.plugin.runtime.upstream import UpstreamReply, WithHeaders


class Recorder:
    def __init__(self):
        self.calls = []

    async def request(self, method, path, *, headers, body, timeout):
        self.calls.append((method, path, dict(headers), body, timeout))
        return UpstreamReply(200, b"{}")


def test_the_proxys_own_identity_is_added_and_wins_over_any_caller_header():
    inner = Recorder()
    own = WithHeaders(inner, {"Authorization": "Basic bHRycjpzZWNyZXQ="})
    reply = asyncio.run(
        own.request(
            "POST",
            "/_bulk",
            headers={"Authorization": "Bearer caller", "X-Opaque-Id": "t1"},
            body=b"x",
            timeout=3.0,
        )
    )
    assert reply.status == 200
    assert inner.calls == [
        (
            "POST",
            "/_bulk",
            {"Authorization": "Basic bHRycjpzZWNyZXQ=", "X-Opaque-Id": "t1"},
            b"x",
            3.0,
        )
    ]


def test_no_identity_adds_nothing():
    inner = Recorder()
    asyncio.run(WithHeaders(inner, {}).request("GET", "/", headers={}, body=None, timeout=None))
    assert inner.calls[0][2] == {}
