"""The simulator runner's own pieces: the UBI click it sends, which copy an intent searches,
and why a catalog's rerank is left out (a scripted cluster, no network). The whole run is
exercised against a real node in integration_tests/plugin/ops/test_simulate.py."""

from __future__ import annotations

from datetime import UTC, datetime
from types import SimpleNamespace

import orjson
import pytest

from ltrr.plugin.ops.simulate.results import PolicyRun
from ltrr.plugin.ops.simulate.run import (
    UBI_CLIENT,
    _click_event,
    _Contender,
    _intent_target,
    _rerank_unavailable,
)
from ltrr.query_plans.catalog import load_catalog
from tests.plugin.ops._scripted import scripted_cluster

CATALOG = """\
target: shop
budget: 20
policy: {{name: static}}
arms:
  - {{name: lexical, template: multi_match.json.j2, params: {{fields: [title]}},
     size: {{min: 1, max: 20}}}}
fallback: [{{arm: lexical, size: 10}}]
{rerank}"""


def catalog(tmp_path, rerank=""):
    path = tmp_path / "shop.yml"
    path.write_text(CATALOG.format(rerank=rerank))
    return load_catalog(path)


def test_a_click_is_a_ubi_event_for_the_decision_at_its_rank():
    when = datetime(2026, 3, 4, 5, 6, 7, tzinfo=UTC)
    assert _click_event("d-1", "doc-9", 3, when) == {
        "action_name": "click",
        "query_id": "d-1",
        "client_id": UBI_CLIENT,
        "timestamp": "2026-03-04T05:06:07+00:00",
        "event_attributes": {
            "object": {"object_id": "doc-9", "object_id_field": "_id"},
            "position": {"ordinal": 3},
        },
    }


def test_an_intent_without_its_own_copy_searches_the_shared_one():
    contender = _Contender(
        spec=None,  # type: ignore[arg-type]
        targets={"": "shop-sim-static", "entity": "shop-sim-oracle-entity"},
        run=PolicyRun("static", "", False),
    )
    assert _intent_target(contender, "entity") == "shop-sim-oracle-entity"
    assert _intent_target(contender, "topic") == "shop-sim-static"


class Node:
    """Answers cluster info, with or without the LTR plugin, and one stored model."""

    def __init__(self, plugin: bool, models: tuple[str, ...] = ()):
        self.plugin = plugin
        self.models = models
        self.paths = []

    def request(self, method, url, data=None, headers=None, timeout=None):
        path = url.removeprefix("http://os:9200")
        self.paths.append(path)
        body, status = {}, 200
        if path == "/":
            body = {"version": {"number": "2.19.1", "distribution": "opensearch"}}
        elif path == "/_cluster/health":
            body = {"status": "green"}
        elif path == "/_nodes/plugins":
            plugins = [{"name": "opensearch-ltr", "version": "2.19.1.0"}] if self.plugin else []
            body = {"nodes": {"n": {"modules": [], "plugins": plugins}}}
        elif "/_model/" in path:
            name = path.rsplit("/", 1)[1]
            status = 200 if name in self.models else 404
            body = {"found": status == 200}
        else:
            status, body = 404, {"error": f"unexpected {path}"}
        return SimpleNamespace(status_code=status, content=orjson.dumps(body))


def test_no_rerank_in_the_catalog_needs_no_question(tmp_path):
    node = Node(plugin=False)
    assert _rerank_unavailable(scripted_cluster(node), catalog(tmp_path)) is None
    assert node.paths == []


@pytest.mark.parametrize(
    ("node", "rerank", "expected", "asked"),
    [
        (Node(plugin=False), "rerank: {model: m1}", "The LTR plugin is not installed", None),
        (
            Node(plugin=True),
            "rerank: {model: m1}",
            "The LTR model m1 is not on this node",
            "/_ltr/_model/m1",
        ),
        (Node(True, ("m1",)), "rerank: {model: m1, store: s}", None, "/_ltr/s/_model/m1"),
    ],
    ids=["no-plugin", "no-model", "model-in-its-store"],
)
def test_a_rerank_that_cannot_run_is_left_out_with_the_reason(
    tmp_path, node, rerank, expected, asked
):
    reason = _rerank_unavailable(scripted_cluster(node), catalog(tmp_path, rerank))
    if expected is None:
        assert reason is None
    else:
        assert reason is not None
        assert reason.startswith(expected)
    assert (asked in node.paths) if asked else not any("_model" in p for p in node.paths)
