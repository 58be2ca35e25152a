"""bench soak's pure parts: the mix, the settings it refuses, the report it prints."""

from __future__ import annotations

import os

import pytest

from ltrr.plugin.ops.bench_soak import MIX, SoakConfig, format_report, pick, rss_mb
from ltrr.plugin.ops.cli import build_parser


def test_the_mix_shares_add_up_and_each_draw_falls_on_its_path():
    assert sum(share for _, share in MIX) == pytest.approx(1.0)
    assert [pick(d) for d in (0.0, 0.59, 0.6, 0.84, 0.85, 0.999)] == [
        "intercepted",
        "intercepted",
        "passthrough",
        "passthrough",
        "feedback",
        "feedback",
    ]


@pytest.mark.parametrize(("seconds", "clients"), [(0, 4), (10, 0), (10, 5000)])
def test_settings_that_measure_nothing_are_refused(seconds, clients):
    with pytest.raises(ValueError, match="must be in"):
        SoakConfig(seconds=seconds, clients=clients).check()


def test_rss_is_read_from_proc():
    assert 1 < rss_mb(os.getpid()) < 100_000


def test_the_report_prints_every_path_and_the_memory_growth():
    latency = {"p50": 12.5, "p99": 80.25, "max": 90.0, "mean": 20.0, "n": 1200}
    report = {
        "seconds": 60.0,
        "clients": 16,
        "requests": 9000,
        "requests_per_s": 150.0,
        "paths": {
            "feedback": {"latency_ms": latency, "statuses": {202: 1190, 400: 10}},
            "intercepted": {"latency_ms": latency, "statuses": {200: 1200}},
        },
        "rss_mb": {"start": 400.0, "end": 450.5},
        "open_decisions": {"start": 50, "end": 5050},
        "open_decisions_mb": 30.0,
        "rss_mb_per_1000_open": 10.1,
    }
    text = format_report(report)
    assert "9,000 requests in 60.0 s from 16 clients: 150.0 req/s" in text
    assert "202: 1,190, 400: 10" in text
    assert "RSS 400.0 MB -> 450.5 MB; open decisions 50 -> 5,050" in text
    assert "growth per 1,000 open decisions: 10.1 MB" in text


def test_cli_wires_bench_soak():
    args = build_parser().parse_args(["bench", "soak", "--seconds", "5", "--clients", "3"])
    assert args.handler.__name__ == "_bench_soak"
    assert (args.seconds, args.clients) == (5.0, 3)
