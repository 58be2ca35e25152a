"""The capture: its file format, its key, the entity names it pages through, and reuse."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import orjson
import pytest
from opensearchpy.exceptions import ConnectionError as ClientConnectionError

from ltrr.plugin.errors import LtrrError
from ltrr.plugin.ops.data.beir import BeirDataset, Query
from ltrr.plugin.ops.replay.capture import (
    FORMAT,
    Capture,
    QueryCapture,
    capture,
    capture_key,
    entity_names,
)
from ltrr.query_plans.catalog import Catalog, load_catalog
from ltrr.query_plans.fusion.base import ArmHit
from tests.plugin.ops._scripted import scripted_cluster

CATALOG = """\
target: t
budget: 4
policy: {name: static}
arms:
  - {name: a, template: multi_match.json.j2, params: {fields: [x]}, size: {min: 0, max: 4}}
  - {name: b, template: multi_match.json.j2, params: {fields: [y]}, size: {min: 0, max: 4}}
fusion: {method: rrf, k: 1}
fallback: [{arm: a, size: 2}]
"""


class Script:
    """Answers (method, path) from ``routes`` (a body, or a function of the request body) and
    records every call; anything else is refused."""

    def __init__(self, routes: dict[tuple[str, str], Any]) -> None:
        self.routes = routes
        self.calls: list[tuple[str, str, Any]] = []

    def request(self, method, url, data=None, headers=None, timeout=None):
        path = url.removeprefix("http://os:9200")
        body = orjson.loads(data) if data else None
        self.calls.append((method, path, body))
        answer = self.routes.get((method, path))
        if answer is None:
            raise ClientConnectionError("N/A", f"refused {method} {path}", None)
        reply = answer(body) if callable(answer) else answer
        return SimpleNamespace(status_code=200, content=orjson.dumps(reply))


def _hits(*ids: str) -> tuple[ArmHit, ...]:
    return tuple(ArmHit("books", doc, 10.0 - rank, rank) for rank, doc in enumerate(ids, 1))


def _capture() -> Capture:
    return Capture(
        index="books",
        key="k123",
        queries={
            "q1": QueryCapture(
                lists={"a": _hits("d1", "d2", "d3"), "b": _hits("d3")},
                natives={"rrf": ("d3", "d1"), "minmax": ("d1",)},
            ),
            "q2": QueryCapture(lists={"a": (), "b": _hits("d9", "d8")}, natives={"rrf": ()}),
        },
        native_candidates=8,
        entities=("Ann", "Bob"),
    )


@pytest.fixture
def catalog(tmp_path: Path) -> Catalog:
    (tmp_path / "c.yml").write_text(CATALOG, encoding="utf-8")
    return load_catalog(tmp_path / "c.yml")


@pytest.fixture
def data(tmp_path: Path) -> BeirDataset:
    return BeirDataset(
        corpus=[],
        queries={"q1": Query("q1", "one"), "q2": Query("q2", "two")},
        qrels={"q1": {"d3": 1}, "q2": {"d9": 1}},
        split="test",
        path=tmp_path / "data",
    )


def _key_routes(uuid: str = "u-1", cluster: str = "c-1") -> dict[tuple[str, str], Any]:
    return {
        ("GET", "/"): {"cluster_uuid": cluster, "version": {"number": "3.0.0"}},
        ("GET", "/books/_settings"): {"books": {"settings": {"index": {"uuid": uuid}}}},
        ("GET", "/books/_stats/segments,docs"): {
            "_all": {"primaries": {"segments": {"count": 1}, "docs": {"count": 9}}}
        },
    }


KEY_CALLS = [("GET", "/"), ("GET", "/books/_settings"), ("GET", "/books/_stats/segments,docs")]


# -- the file format -----------------------------------------------------------------------------


def test_capture_round_trips_through_json() -> None:
    original = _capture()
    restored = Capture.from_json(original.to_json())
    assert restored == original
    assert restored.entities == ("Ann", "Bob")
    assert restored.native_candidates == 8


def test_ranks_are_restored_one_to_n_from_the_list_order() -> None:
    raw = orjson.loads(_capture().to_json())
    assert raw["format"] == FORMAT
    assert raw["queries"]["q1"]["lists"]["a"] == [
        ["books", "d1", 9.0],
        ["books", "d2", 8.0],
        ["books", "d3", 7.0],
    ]  # no rank stored: the position is the rank
    restored = Capture.from_json(orjson.dumps(raw))
    assert [h.rank for h in restored.queries["q1"].lists["a"]] == [1, 2, 3]
    assert [h.rank for h in restored.queries["q2"].lists["b"]] == [1, 2]
    assert restored.queries["q2"].lists["a"] == ()


def test_a_capture_without_entities_reads_as_none() -> None:
    raw = orjson.loads(_capture().to_json())
    del raw["entities"]
    assert Capture.from_json(orjson.dumps(raw)).entities == ()


@pytest.mark.parametrize("fmt", [FORMAT + 1, None])
def test_a_capture_of_another_format_is_refused(fmt: int | None) -> None:
    raw = orjson.loads(_capture().to_json())
    if fmt is None:
        del raw["format"]
    else:
        raw["format"] = fmt
    with pytest.raises(LtrrError, match="capture of another format"):
        Capture.from_json(orjson.dumps(raw))


# -- entity names --------------------------------------------------------------------------------


def test_entity_names_page_through_the_composite_aggregation() -> None:
    pages = [
        {
            "buckets": [{"key": {"name": "Ann"}}, {"key": {"name": "Bob"}}],
            "after_key": {"name": "Bob"},
        },
        {"buckets": [{"key": {"name": 42}}], "after_key": {"name": 42}},
        # An after_key may come with the last, empty page: no buckets ends it anyway.
        {"buckets": [], "after_key": {"name": 42}},
    ]

    def search(body: dict[str, Any]) -> dict[str, Any]:
        return {"aggregations": {"entities": pages[len(script.calls) - 1]}}

    script = Script({("POST", "/books/_search"): search})
    assert entity_names(scripted_cluster(script), "books", "artist") == ["Ann", "Bob", "42"]
    bodies = [body for _, _, body in script.calls]
    assert len(bodies) == 3
    first = bodies[0]["aggs"]["entities"]["composite"]
    assert bodies[0]["size"] == 0
    assert first == {"size": 10_000, "sources": [{"name": {"terms": {"field": "artist"}}}]}
    assert bodies[1]["aggs"]["entities"]["composite"]["after"] == {"name": "Bob"}
    assert bodies[2]["aggs"]["entities"]["composite"]["after"] == {"name": 42}


def test_entity_names_stop_when_there_is_no_after_key() -> None:
    script = Script(
        {
            ("POST", "/books/_search"): {
                "aggregations": {"entities": {"buckets": [{"key": {"name": "Ann"}}]}}
            }
        }
    )
    assert entity_names(scripted_cluster(script), "books", "artist") == ["Ann"]
    assert len(script.calls) == 1


# -- the key -------------------------------------------------------------------------------------


def test_capture_key_is_stable_and_reads_the_cluster_and_the_index_uuid(
    catalog: Catalog, data: BeirDataset
) -> None:
    script = Script(_key_routes())
    http = scripted_cluster(script)
    key = capture_key(http, "books", catalog, data)
    assert len(key) == 20
    int(key, 16)  # hex
    assert capture_key(http, "books", catalog, data) == key
    assert [(m, p) for m, p, _ in script.calls] == KEY_CALLS * 2


def test_capture_key_changes_with_each_of_its_parts(
    catalog: Catalog, data: BeirDataset, tmp_path: Path
) -> None:
    def key(routes=None, catalog_=catalog, data_=data) -> str:
        http = scripted_cluster(Script(routes or _key_routes()))
        return capture_key(http, "books", catalog_, data_)

    base = key()
    (tmp_path / "other.yml").write_text(CATALOG.replace("budget: 4", "budget: 5"), "utf-8")
    other_catalog = load_catalog(tmp_path / "other.yml")
    assert other_catalog.digest != catalog.digest
    variants = {
        "index rebuilt": key(_key_routes(uuid="u-2")),
        "another cluster": key(_key_routes(cluster="c-2")),
        "another catalog": key(catalog_=other_catalog),
        "another split": key(data_=BeirDataset([], data.queries, data.qrels, "dev", data.path)),
        "another dataset": key(
            data_=BeirDataset([], data.queries, data.qrels, "test", tmp_path / "elsewhere")
        ),
    }
    for what, value in variants.items():
        assert value != base, what
    assert len(set(variants.values())) == len(variants)


# -- reuse ---------------------------------------------------------------------------------------


def test_a_saved_capture_is_read_back_without_asking_the_cluster(
    catalog: Catalog, data: BeirDataset, tmp_path: Path
) -> None:
    script = Script(_key_routes())  # only the key's two requests are answered
    http = scripted_cluster(script)
    key = capture_key(http, "books", catalog, data)
    folder = tmp_path / "work"
    folder.mkdir()
    saved = _capture()
    (folder / f"capture-{key}.json").write_bytes(saved.to_json())
    script.calls.clear()
    said: list[str] = []
    result = capture(http, catalog, data, "books", folder, k=10, say=said.append, progress=False)
    assert result == saved
    assert [(m, p) for m, p, _ in script.calls] == KEY_CALLS
    assert said == [f"replaying 2 queries captured in {folder / f'capture-{key}.json'}"]


def test_a_capture_saved_under_another_key_is_not_reused(
    catalog: Catalog, data: BeirDataset, tmp_path: Path
) -> None:
    script = Script(_key_routes(uuid="rebuilt"))
    http = scripted_cluster(script)
    folder = tmp_path / "work"
    folder.mkdir()
    (folder / "capture-0123456789abcdef0123.json").write_bytes(_capture().to_json())
    # Past the key it goes to the cluster (to install the native pipelines), which refuses.
    with pytest.raises(LtrrError):
        capture(http, catalog, data, "books", folder, k=10, say=lambda _: None, progress=False)
    assert len(script.calls) > 2


# -- a capture from the node ---------------------------------------------------------------------


class Node:
    """A node enough for a capture: the key's two GETs, search pipelines, ``_msearch`` (arm a
    searches field x, arm b field y) and the native hybrid search. ``refuse`` names pipelines
    whose creation fails."""

    def __init__(self, refuse: tuple[str, ...] = ()) -> None:
        self.refuse = refuse
        self.calls: list[tuple[str, str]] = []
        self.msearch: list[list[dict[str, Any]]] = []
        self.pipelines: set[str] = set()

    def request(self, method, url, data=None, headers=None, timeout=None):
        path = url.removeprefix("http://os:9200")
        self.calls.append((method, path))
        routes = _key_routes()
        if (method, path) in routes:
            return self._reply(routes[(method, path)])
        if path.startswith("/_search/pipeline/"):
            name = path.removeprefix("/_search/pipeline/")
            if method == "PUT":
                if any(name.endswith(f"-{method_}") for method_ in self.refuse):
                    return self._reply({"error": "refused"}, 400)
                self.pipelines.add(name)
                return self._reply({"acknowledged": True})
            if method == "DELETE":
                if name not in self.pipelines:
                    return self._reply({"error": "missing"}, 404)
                self.pipelines.discard(name)
                return self._reply({"acknowledged": True})
        if method == "POST" and path == "/_msearch":
            lines = [orjson.loads(line) for line in data.splitlines() if line.strip()]
            bodies = lines[1::2]
            self.msearch.append(bodies)
            responses = []
            for body in bodies:
                arm = "a" if '"x"' in orjson.dumps(body).decode() else "b"
                ids = [f"{arm}{n}" for n in range(1, 4)]
                responses.append(
                    {
                        "took": 1,
                        "timed_out": False,
                        "_shards": {"total": 1, "successful": 1, "failed": 0},
                        "hits": {
                            "hits": [
                                {"_index": "books", "_id": doc, "_score": 3.0 - i}
                                for i, doc in enumerate(ids)
                            ]
                        },
                    }
                )
            return self._reply({"responses": responses})
        if method == "POST" and path.startswith("/books/_search?search_pipeline="):
            method_ = path.rsplit("-", 1)[-1].split("&")[0]
            ids = ["a1", "b1"] if method_ == "rrf" else ["b1", "a1"]
            return self._reply({"hits": {"hits": [{"_id": doc} for doc in ids]}})
        raise ClientConnectionError("N/A", f"refused {method} {path}", None)

    @staticmethod
    def _reply(body: Any, status: int = 200) -> SimpleNamespace:
        return SimpleNamespace(status_code=status, content=orjson.dumps(body))


def test_a_capture_from_the_node_is_saved_and_then_replayed(
    catalog: Catalog, data: BeirDataset, tmp_path: Path
) -> None:
    node = Node()
    http = scripted_cluster(node)
    folder = tmp_path / "work"  # made by the capture
    made = capture(http, catalog, data, "books", folder, k=10, say=lambda _: None, progress=False)
    key = capture_key(http, "books", catalog, data)
    assert made.key == key
    assert made.index == "books"
    assert set(made.queries) == {"q1", "q2"}
    q1 = made.queries["q1"]
    assert {arm: [h.id for h in hits] for arm, hits in q1.lists.items()} == {
        "a": ["a1", "a2", "a3"],
        "b": ["b1", "b2", "b3"],
    }
    assert [h.rank for h in q1.lists["a"]] == [1, 2, 3]
    assert q1.natives == {"rrf": ("a1", "b1"), "minmax": ("b1", "a1")}
    assert made.native_candidates == 4  # two sub-queries at depth 4 // 2
    assert made.entities == ()  # the catalog has no entity field
    # Every arm was asked for its full list (its max size, 4), one _msearch per query.
    assert len(node.msearch) == 2
    assert all([body["size"] for body in bodies] == [4, 4] for bodies in node.msearch)
    # The pipelines made for the capture are gone again.
    assert node.pipelines == set()
    assert (folder / f"capture-{key}.json").read_bytes() == made.to_json()
    # A second capture reads the file: only the key is asked of the node.
    node.calls.clear()
    again = capture(http, catalog, data, "books", folder, k=10, say=lambda _: None, progress=False)
    assert again == made
    assert node.calls == KEY_CALLS


def test_pipelines_already_made_are_removed_when_a_later_one_fails(
    catalog: Catalog, data: BeirDataset, tmp_path: Path
) -> None:
    node = Node(refuse=("minmax",))
    http = scripted_cluster(node)
    with pytest.raises(LtrrError):
        capture(http, catalog, data, "books", tmp_path, k=10, say=lambda _: None, progress=False)
    assert node.pipelines == set()
