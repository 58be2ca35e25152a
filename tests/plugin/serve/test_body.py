"""Request bodies decoded as their Content-Encoding says, bounded, with OpenSearch's 400s."""

from __future__ import annotations

import gzip
import zlib

import pytest

from ltrr.plugin.errors import BadRequest, PayloadTooLarge
from ltrr.plugin.serve.body import decoded

DATA = b'{"query": {"match": {"title": "miles davis"}}}' * 20
LIMIT = 1024 * 1024


def raw_deflate(data: bytes) -> bytes:
    compressor = zlib.compressobj(wbits=-15)
    return compressor.compress(data) + compressor.flush()


def opensearch_error(error, status, kind):
    cause = {"type": kind, "reason": error.reason}
    return {"error": {"root_cause": [cause], **cause}, "status": status}


# --- nothing to decode ---


@pytest.mark.parametrize(
    "headers",
    [{}, {"Content-Encoding": ""}, {"Content-Encoding": "identity"}, {"Content-Encoding": " , "}],
)
def test_identity_or_no_header_returns_the_raw_bytes(headers):
    assert decoded(headers, DATA, LIMIT) is DATA


def test_identity_is_returned_as_is_even_past_the_limit():
    # Only inflation is bounded here: the plain body's size is the server's business.
    big = b"x" * 100
    assert decoded({"Content-Encoding": "identity"}, big, 10) == big


# --- single encodings ---


@pytest.mark.parametrize("encoding", ["gzip", "x-gzip"])
def test_gzip_is_decoded(encoding):
    assert decoded({"Content-Encoding": encoding}, gzip.compress(DATA), LIMIT) == DATA


def test_zlib_framed_deflate_is_decoded():
    assert decoded({"Content-Encoding": "deflate"}, zlib.compress(DATA), LIMIT) == DATA


def test_raw_deflate_is_decoded():
    assert decoded({"Content-Encoding": "deflate"}, raw_deflate(DATA), LIMIT) == DATA


@pytest.mark.parametrize("encoding", ["GZIP", "Gzip", "  gzip  ", "X-GZIP"])
def test_the_encoding_is_case_insensitive_and_trimmed(encoding):
    assert decoded({"Content-Encoding": encoding}, gzip.compress(DATA), LIMIT) == DATA


def test_deflate_is_case_insensitive_for_the_raw_fallback_too():
    assert decoded({"Content-Encoding": "DEFLATE"}, raw_deflate(DATA), LIMIT) == DATA


def test_empty_data_round_trips():
    assert decoded({"Content-Encoding": "gzip"}, gzip.compress(b""), LIMIT) == b""


# --- stacked encodings: listed in the order applied, so undone from the last ---


def test_stacked_encodings_are_undone_last_applied_first():
    body = gzip.compress(zlib.compress(DATA))  # deflate applied first, then gzip
    assert decoded({"Content-Encoding": "deflate, gzip"}, body, LIMIT) == DATA


def test_stacked_encodings_the_other_way_round():
    body = zlib.compress(gzip.compress(DATA))  # gzip applied first, then deflate
    assert decoded({"Content-Encoding": "gzip, deflate"}, body, LIMIT) == DATA


def test_stacked_encodings_in_the_wrong_order_are_a_400():
    body = gzip.compress(zlib.compress(DATA))
    with pytest.raises(BadRequest) as caught:
        decoded({"Content-Encoding": "gzip, deflate"}, body, LIMIT)
    assert caught.value.status == 400
    assert caught.value.error_type == "parse_exception"


def test_identity_in_a_stack_is_skipped():
    body = gzip.compress(DATA)
    assert decoded({"Content-Encoding": "identity, GZip, identity"}, body, LIMIT) == DATA


# --- bodies that are not what they say ---


@pytest.mark.parametrize("encoding", ["gzip", "x-gzip", "deflate"])
def test_a_body_labelled_compressed_that_is_not_is_a_parse_exception(encoding):
    with pytest.raises(BadRequest) as caught:
        decoded({"Content-Encoding": encoding}, DATA, LIMIT)
    error = caught.value
    assert error.status == 400
    assert error.error_type == "parse_exception"
    assert f"[{encoding}]" in error.reason
    assert error.body() == opensearch_error(error, 400, "parse_exception")


@pytest.mark.parametrize(
    ("encoding", "compressed"),
    [
        ("gzip", gzip.compress(DATA)),
        ("deflate", zlib.compress(DATA)),
        ("deflate", raw_deflate(DATA)),
    ],
)
def test_a_truncated_stream_is_a_400(encoding, compressed):
    with pytest.raises(BadRequest) as caught:
        decoded({"Content-Encoding": encoding}, compressed[: len(compressed) // 2], LIMIT)
    assert caught.value.status == 400
    assert caught.value.error_type == "parse_exception"


def test_a_gzip_missing_only_its_trailer_is_a_400():
    compressed = gzip.compress(DATA)
    with pytest.raises(BadRequest) as caught:
        decoded({"Content-Encoding": "gzip"}, compressed[:-4], LIMIT)  # no ISIZE
    assert caught.value.status == 400


def test_a_gzip_with_a_bad_crc_is_a_400():
    compressed = bytearray(gzip.compress(DATA))
    compressed[-8] ^= 0xFF  # the CRC32 of the trailer
    with pytest.raises(BadRequest) as caught:
        decoded({"Content-Encoding": "gzip"}, bytes(compressed), LIMIT)
    assert caught.value.status == 400


def test_a_gzip_of_several_members_is_decoded_whole():
    first, second = b'{"index":{}}\n', b'{"query":{"match_all":{}}}\n' * 3
    body = gzip.compress(first) + gzip.compress(second)
    assert gzip.decompress(body) == first + second
    assert decoded({"Content-Encoding": "gzip"}, body, LIMIT) == first + second


def test_junk_after_a_gzip_stream_is_a_400():
    with pytest.raises(BadRequest):
        decoded({"Content-Encoding": "gzip"}, gzip.compress(DATA) + b"junk", LIMIT)


def test_a_several_member_gzip_bomb_is_never_inflated_past_the_limit():
    # Whatever becomes of later members, the bound must hold for the first one.
    bomb = gzip.compress(b"\0" * (2 * LIMIT)) + gzip.compress(b"{}")
    with pytest.raises(PayloadTooLarge):
        decoded({"Content-Encoding": "gzip"}, bomb, LIMIT)


@pytest.mark.parametrize("encoding", ["br", "zstd", "compress", "gzip;q=1"])
def test_an_unknown_encoding_is_an_illegal_argument(encoding):
    with pytest.raises(BadRequest) as caught:
        decoded({"Content-Encoding": encoding}, DATA, LIMIT)
    error = caught.value
    assert error.status == 400
    assert error.error_type == "illegal_argument_exception"
    assert f"[{encoding}]" in error.reason
    assert error.body() == opensearch_error(error, 400, "illegal_argument_exception")


def test_an_unknown_encoding_is_refused_before_anything_is_inflated():
    # "br" was applied last, so it is the first to undo: refused even though gzip is fine.
    with pytest.raises(BadRequest) as caught:
        decoded({"Content-Encoding": "gzip, br"}, gzip.compress(DATA), LIMIT)
    assert caught.value.error_type == "illegal_argument_exception"


# --- the bound ---


def test_a_gzip_bomb_is_payload_too_large():
    bomb = gzip.compress(b"\0" * (10 * 1024 * 1024))
    assert len(bomb) < 20 * 1024  # small on the wire
    with pytest.raises(PayloadTooLarge) as caught:
        decoded({"Content-Encoding": "gzip"}, bomb, LIMIT)
    error = caught.value
    assert error.status == 413
    assert str(LIMIT) in error.reason
    assert error.body() == opensearch_error(error, 413, "content_too_long_exception")


@pytest.mark.parametrize("compress", [zlib.compress, raw_deflate])
def test_a_deflate_bomb_is_payload_too_large(compress):
    bomb = compress(b"\0" * (10 * 1024 * 1024))
    with pytest.raises(PayloadTooLarge):
        decoded({"Content-Encoding": "deflate"}, bomb, LIMIT)


def test_a_stacked_bomb_is_payload_too_large():
    bomb = gzip.compress(gzip.compress(b"\0" * (50 * 1024 * 1024)))
    with pytest.raises(PayloadTooLarge):
        decoded({"Content-Encoding": "gzip, gzip"}, bomb, LIMIT)


@pytest.mark.parametrize(
    ("encoding", "compress"),
    [("gzip", gzip.compress), ("deflate", zlib.compress), ("deflate", raw_deflate)],
)
def test_exactly_at_the_limit_passes_and_one_byte_over_does_not(encoding, compress):
    at_limit = b"\0" * LIMIT
    assert decoded({"Content-Encoding": encoding}, compress(at_limit), LIMIT) == at_limit
    with pytest.raises(PayloadTooLarge):
        decoded({"Content-Encoding": encoding}, compress(at_limit + b"\0"), LIMIT)


def test_the_limit_applies_to_each_inflated_layer():
    inner = gzip.compress(b"a" * 2000)
    body = gzip.compress(inner)
    # The outer layer fits (it inflates to the small inner stream), the inner does not.
    assert len(inner) < 1000
    with pytest.raises(PayloadTooLarge):
        decoded({"Content-Encoding": "gzip, gzip"}, body, 1000)
    assert decoded({"Content-Encoding": "gzip, gzip"}, body, 2000) == b"a" * 2000
