from __future__ import annotations

from multidict import CIMultiDict

from ltrr.plugin.serve.passthrough import end_to_end


def test_hop_by_hop_and_connection_named_headers_are_dropped():
    headers = CIMultiDict(
        [
            ("Host", "proxy:9250"),
            ("Connection", "keep-alive, X-Trace-Hop"),
            ("Keep-Alive", "timeout=5"),
            ("X-Trace-Hop", "1"),
            ("TE", "trailers"),
            ("Transfer-Encoding", "chunked"),
            ("Upgrade", "h2c"),
            ("Proxy-Authorization", "Basic cHJveHk="),
            ("Content-Length", "12"),
            ("Authorization", "Basic dXNlcg=="),
            ("Accept-Encoding", "gzip"),
            ("X-Opaque-Id", "trace-1"),
            ("Cookie", "a=1"),
            ("Cookie", "b=2"),
            ("X-LTRR-Admin-Token", "s3cret"),  # the proxy's own: never forwarded
        ]
    )
    assert list(end_to_end(headers).items()) == [
        ("Authorization", "Basic dXNlcg=="),
        ("Accept-Encoding", "gzip"),
        ("X-Opaque-Id", "trace-1"),
        ("Cookie", "a=1"),
        ("Cookie", "b=2"),
    ]
