"""The pure parts of ``ltrr bench feedback``; the run itself needs a real OpenSearch."""

from __future__ import annotations

import math

import orjson
import pytest

from ltrr.plugin.ops.bench_feedback import (
    FeedbackBenchConfig,
    catalog_yaml,
    feedback_bodies,
    format_report,
    rate,
    search_queries,
    summarize,
    synthetic_docs,
)
from ltrr.plugin.ops.cli import build_parser, main
from ltrr.query_plans.catalog import load_catalog


def test_summarize_percentiles_max_and_mean():
    summary = summarize([float(v) for v in range(1, 101)])
    assert summary == {"p50": 50.5, "p99": 99.01, "max": 100.0, "mean": 50.5, "n": 100}


def test_summarize_nothing_is_nan_not_zero():
    summary = summarize([])
    assert summary["n"] == 0
    assert all(math.isnan(summary[k]) for k in ("p50", "p99", "max", "mean"))


def test_rate_never_divides_by_zero():
    assert rate(100, 0.5) == 200.0
    assert rate(100, 0.0) == 0.0


def test_synthetic_docs_are_deterministic_and_named_apart():
    docs = synthetic_docs(300, seed=7)
    assert docs == synthetic_docs(300, seed=7)
    assert docs != synthetic_docs(300, seed=8)
    assert len({d["name"] for d in docs}) == 300
    assert all(2 <= len(d["tags"].split()) <= 3 for d in docs)
    more = synthetic_docs(450, seed=7)  # past the 400 word pairs, names stay distinct
    assert len({d["name"] for d in more}) == 450


def test_queries_are_distinct_so_none_comes_from_the_page_cache():
    queries = search_queries(600, seed=7)
    assert len(set(queries)) == 600
    assert queries == search_queries(600, seed=7)


def test_the_catalog_loads_with_two_lexical_arms(tmp_path):
    path = tmp_path / "bench.yml"
    path.write_text(catalog_yaml("ltrr-bench-feedback-0123abcd"))
    catalog = load_catalog(path)
    assert catalog.targets == ("ltrr-bench-feedback-0123abcd",)
    assert [arm.name for arm in catalog.arms] == ["by_name", "by_tag"]
    assert not any(arm.needs_vector for arm in catalog.arms)
    assert catalog.embedding is None
    assert catalog.memory is None
    assert catalog.rerank is None
    assert dict(catalog.feedback.events) == {"click": 1.0, "play": 2.0}
    assert catalog.feedback.window_seconds == 600
    assert catalog.features.entity_field == "name.keyword"


def test_feedback_bodies_spread_one_click_per_round_over_the_hits():
    decisions = [(f"d{i}", f"t{i}", ["a", "b", "c", "d"]) for i in range(3)]
    bodies = [orjson.loads(b) for _, b in feedback_bodies(decisions, events=12, batch=1, tag="t")]
    per_decision: dict[str, list[str]] = {}
    for body in bodies:
        per_decision.setdefault(body["decision_id"], []).extend(
            e["object_id"] for e in body["events"]
        )
    # Round r clicks hit r of each decision: never the same object twice in four rounds.
    assert per_decision == {f"d{i}": ["a", "b", "c", "d"] for i in range(3)}


def test_feedback_bodies_split_events_into_batches_of_unique_shown_ids():
    decisions = [("d1", "t1", ["a", "b", "c"]), ("d2", "t2", ["x"])]
    made = feedback_bodies(decisions, events=25, batch=10, tag="t")
    assert [token for token, _ in made] == ["t1", "t2", "t1"]  # each with its decision's
    bodies = [orjson.loads(b) for _, b in made]
    assert [len(b["events"]) for b in bodies] == [10, 10, 5]
    assert [b["decision_id"] for b in bodies] == ["d1", "d2", "d1"]
    ids = [e["id"] for b in bodies for e in b["events"]]
    assert len(set(ids)) == 25
    shown = {d: hits for d, _, hits in decisions}
    for body in bodies:
        for event in body["events"]:
            assert event["object_id"] in shown[body["decision_id"]]
            assert event["type"] in {"click", "play"}
            assert shown[body["decision_id"]][event["position"] - 1] == event["object_id"]


def _report():
    quantiles = {"p50": 1.3, "p99": 9.5, "max": 12.0, "mean": 2.0, "n": 50}
    return {
        "index": "ltrr-bench-feedback-0123abcd",
        "docs": 300,
        "searches": 300,
        "concurrency": 32,
        "merge_seconds": 1.0,
        "intake": [
            {
                "batch": 1,
                "events": 5000,
                "requests": 5000,
                "events_per_s": 3000.4,
                "requests_per_s": 3000.4,
                "ack_ms": quantiles,
            },
        ],
        "local_update": {"visible_ms": quantiles, "ack_ms": quantiles, "missed": 0},
        "cross_replica_update": {"ms": summarize([]), "missed": 50, "bound_ms": 2000},
        "shipping": {
            "events": 5000,
            "seconds_from_first_send": 2.5,
            "seconds_after_last_ack": 0.4,
            "events_per_s": 2000.0,
        },
        "wall_seconds": 12.3,
    }


def test_format_report_one_row_per_measurement():
    lines = format_report(_report()).splitlines()
    assert lines[0].startswith("ltrr bench feedback: ltrr-bench-feedback-0123abcd (300 docs")
    assert lines[1].split()[:1] == ["measure"]
    intake = next(line for line in lines if line.startswith("intake, batch 1"))
    assert "5000 ev / 5000 req" in intake
    assert "3000 ev/s, 3000 req/s" in intake
    assert intake.split()[-3:] == ["1.3", "9.5", "12.0"]
    cross = next(line for line in lines if line.startswith("cross-replica"))
    assert cross.split()[-3:] == ["-", "-", "-"]  # nothing seen is not reported as 0 ms
    assert any("50 probes never seen by B" in line for line in lines)
    assert any("two merge intervals (~2000 ms" in line for line in lines)
    assert any(line.startswith("shipped to ltrr-events") and "2000 ev/s" in line for line in lines)


def test_cli_wires_bench_feedback_with_its_defaults():
    args = build_parser().parse_args(["bench", "feedback"])
    assert args.handler.__name__ == "_bench_feedback"
    assert (args.opensearch, args.searches, args.events, args.concurrency) == (
        "http://127.0.0.1:9200",
        200,
        5000,
        32,
    )
    assert (args.batch, args.probes, args.merge_seconds) == ([1, 10], 50, 1.0)
    args = build_parser().parse_args(["bench", "feedback", "--batch", "5", "--merge-seconds", "2"])
    assert (args.batch, args.merge_seconds) == ([5], 2.0)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--events", "0"], "--events must be at least 1"),
        (["--batch", "1", "1001"], "--batch values must be between 1 and 1000"),
        (["--merge-seconds", "0"], "--merge-seconds must be in (0, 60]"),
    ],
)
def test_bad_settings_fail_before_anything_is_created(argv, message, capsys):
    assert main(["bench", "feedback", "--opensearch", "http://127.0.0.1:1", *argv]) == 1
    assert message in capsys.readouterr().err


def test_config_defaults_match_the_cli():
    config = FeedbackBenchConfig()
    config.check()
    assert config.batches == (1, 10)
