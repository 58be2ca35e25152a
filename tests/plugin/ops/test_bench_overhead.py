"""The benchmark's pure parts: the native hybrid body it times, and how it reports ratios."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from ltrr.plugin.errors import LtrrError
from ltrr.plugin.ops.bench_overhead import PAGE, _hybrid, _timed, _versus, overhead
from ltrr.plugin.runtime.registry import CatalogRegistry
from ltrr.query_plans.templates import TemplateRenderer

CATALOG = """\
target: books
budget: 40
policy: {name: linucb}
arms:
  - {name: lexical, template: multi_match.json.j2, params: {fields: [title]},
     size: {min: 5, max: 20}}
  - {name: phrase, template: multi_match.json.j2, params: {fields: [title], type: phrase},
     size: {min: 0, max: 10}}
fusion: {method: rrf, k: 60}
fallback: [{arm: lexical, size: 5}]
"""


def test_the_timed_hybrid_body_is_every_arm_at_one_depth_for_one_page(tmp_path: Path) -> None:
    (tmp_path / "books.yml").write_text(CATALOG, encoding="utf-8")
    registry = CatalogRegistry([tmp_path / "books.yml"], seed=1)
    registry.load_all()
    (runtime,) = registry.runtimes()
    try:
        query = _hybrid(runtime, TemplateRenderer(), "Dune", None, 20)
    finally:
        registry.close()
    assert query.arms == ("lexical", "phrase")
    assert orjson.loads(query.json()) == {
        "query": {
            "hybrid": {
                "queries": [
                    {"multi_match": {"query": "Dune", "fields": ["title"]}},
                    {"multi_match": {"query": "Dune", "fields": ["title"], "type": "phrase"}},
                ],
                "pagination_depth": 20,
            }
        },
        "size": PAGE,
    }


def test_ratios_are_ours_over_theirs() -> None:
    ours = {"p50": 30.0, "p99": 60.0, "mean": 33.0, "throughput_rps": 25.0}
    theirs = {"p50": 20.0, "p99": 40.0, "mean": 22.0, "throughput_rps": 50.0}
    # Above 1: the intercepted path is slower; throughput below 1: it serves fewer per second.
    assert _versus(ours, theirs) == {"p50": 1.5, "p99": 1.5, "mean": 1.5, "throughput": 0.5}
    assert _versus(ours, {**theirs, "p50": 0.0})["p50"] is None


def test_sequential_throughput_is_requests_over_summed_latency() -> None:
    # 4 requests in 10 + 20 + 30 + 40 = 100 ms, one after another: 40 per second.
    timed = _timed([10.0, 20.0, 30.0, 40.0])
    assert timed["throughput_rps"] == 40.0
    assert (timed["n"], timed["mean"]) == (4, 25.0)


def test_unknown_hybrid_methods_are_refused_before_anything_runs(tmp_path: Path) -> None:
    with pytest.raises(LtrrError, match=r"hybrid methods \['l2'\]"):
        overhead(tmp_path / "absent.yml", "http://127.0.0.1:1", 1, hybrid=("rrf", "l2"))
