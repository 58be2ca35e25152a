"""predict.py: ``ltrr memory predict`` against a scripted opensearch-py connection (mapping checks,
the scroll, the bulk of partial updates, the counts and the final refresh)."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any
from urllib.parse import parse_qsl

import orjson
import pytest
from opensearchpy.exceptions import ConnectionError as ClientConnectionError

from ltrr.plugin.errors import LtrrError
from ltrr.plugin.ops.predict import predict_memory
from tests.plugin.ops._scripted import URL, scripted_cluster

CATALOG = """\
target: [{target}]
budget: 20
policy: {{name: static}}
arms:
  - {{name: lexical, template: multi_match.json.j2, params: {{fields: [name, tags]}},
     size: {{min: 1, max: 20}}}}
fallback: [{{arm: lexical, size: 10}}]
{memory}
"""
MEMORY = (
    "memory: {field: q2e, predicted_field: q2e_pred, name_fields: [name, meta.alias],"
    " phrase_fields: [tags]}"
)
FIELDS_PATH = "/artists/_mapping/field/q2e,q2e_pred"

# name "Abba" (first name, first spelling) scores 1.0 with its near key; tag k scores 0.3/(1+k).
ABBA = {"abba": 1.0, "~abba": 1.0, "pop": 0.3, "~pop": 0.3, "disco": 0.15, "~disco": 0.15}
# "The Beatles": "the beatles" 1.0 (near key sorts the words: "~beatlesthe"); the variant without
# "the" 0.8; the alias (second name, meta.alias) 0.8; the single tag 0.3.
BEATLES = {
    "the beatles": 1.0,
    "~beatlesthe": 1.0,
    "beatles": 0.8,
    "~beatles": 0.8,
    "fab four": 0.8,
    "~fabfour": 0.8,
    "rock": 0.3,
    "~rock": 0.3,
}


def catalog(tmp_path: Path, target: str = "artists", memory: str = MEMORY) -> Path:
    path = tmp_path / "c.yml"
    path.write_text(CATALOG.format(target=target, memory=memory), encoding="utf-8")
    return path


def hit(doc_id: str, source: dict[str, Any] | None) -> dict[str, Any]:
    out: dict[str, Any] = {"_index": "artists", "_id": doc_id}
    if source is not None:
        out["_source"] = source
    return out


def page(scroll_id: str, hits: list[dict[str, Any]]) -> dict[str, Any]:
    shards = {"total": 1, "successful": 1, "skipped": 0, "failed": 0}
    return {"_scroll_id": scroll_id, "_shards": shards, "hits": {"hits": hits}}


class Script:
    """Answers (method, path) from ``routes`` (a list is consumed in order); records every call
    as (method, path, params, payload): JSON bodies decoded, a bulk's NDJSON as a list of lines.
    An unlisted call is refused as a connection error, so an unexpected request fails loudly."""

    def __init__(self, routes: dict[tuple[str, str], Any]) -> None:
        self.routes = routes
        self.calls: list[tuple[str, str, dict[str, str], Any]] = []

    def request(self, method, url, data=None, headers=None, timeout=None):
        path, _, query = url.removeprefix(URL).partition("?")
        if data and path.endswith("/_bulk"):
            payload: Any = [orjson.loads(line) for line in data.splitlines() if line.strip()]
        else:
            payload = orjson.loads(data) if data else None
        self.calls.append((method, path, dict(parse_qsl(query)), payload))
        answer = self.routes.get((method, path))
        if answer is None:
            raise ClientConnectionError("N/A", f"unscripted {method} {path}", None)
        if isinstance(answer, list):
            answer = answer.pop(0)
        if callable(answer):
            answer = answer(payload)
        status, body = answer if isinstance(answer, tuple) else (200, answer)
        return SimpleNamespace(status_code=status, content=orjson.dumps(body))

    def paths(self) -> list[tuple[str, str]]:
        return [(method, path) for method, path, _, _ in self.calls]

    def payload(self, method: str, path: str) -> Any:
        return next(p for m, q, _, p in self.calls if (m, q) == (method, path))


def stored(lines: list[dict[str, Any]]) -> dict[str, Any]:
    """Every update of a bulk body stored, as a cluster answers."""
    items = [
        {op: {**meta, "status": 200, "result": "updated"}}
        for line in lines
        for op, meta in line.items()
        if op == "update"
    ]
    return {"errors": False, "items": items}


def mapping(source: dict[str, Any] | None = None) -> dict[str, Any]:
    mappings: dict[str, Any] = {"properties": {"name": {"type": "text"}}}
    if source is not None:
        mappings["_source"] = source
    return {"artists": {"mappings": mappings}}


def fields(**types: str) -> dict[str, Any]:
    return {
        "artists": {
            "mappings": {
                name: {"full_name": name, "mapping": {name: {"type": kind}}}
                for name, kind in types.items()
            }
        }
    }


def routes(
    hits_pages: list[dict[str, Any]],
    *,
    count: int,
    field_types: dict[str, str] | None = None,
    bulk: Any = stored,
) -> dict[tuple[str, str], Any]:
    types = field_types if field_types is not None else {"q2e": "rank_features"}
    return {
        ("GET", "/artists/_mapping"): mapping(),
        ("GET", FIELDS_PATH): fields(**types),
        ("PUT", "/artists/_mapping"): {"acknowledged": True},
        ("GET", "/artists/_count"): {"count": count},
        ("POST", "/artists/_search"): hits_pages[0],
        ("POST", "/_search/scroll"): list(hits_pages[1:]),
        ("DELETE", "/_search/scroll"): {"succeeded": True, "num_freed": 1},
        ("POST", "/_bulk"): bulk,
        ("POST", "/artists/_refresh"): {"_shards": {"total": 1, "successful": 1}},
    }


def two_pages() -> list[dict[str, Any]]:
    return [
        page(
            "s1",
            [
                hit("a1", {"name": "Abba", "tags": ["pop", "disco"]}),
                hit("x1", {"tags": []}),
            ],
        ),
        page(
            "s2",
            [
                hit("b1", {"name": "The Beatles", "meta": {"alias": "Fab Four"}, "tags": "rock"}),
                hit("x2", None),
            ],
        ),
        page("s3", []),
    ]


# --- refusals before any write -------------------------------------------------------------------


def test_a_catalog_without_memory_is_refused_before_any_request(tmp_path: Path) -> None:
    script = Script({})
    with pytest.raises(LtrrError, match="the catalog has no memory section"):
        predict_memory(catalog(tmp_path, memory=""), URL, cluster=scripted_cluster(script))
    assert script.calls == []


def test_a_pattern_target_is_refused_before_any_request(tmp_path: Path) -> None:
    script = Script({})
    with pytest.raises(LtrrError, match=r"target 'artists-\*' is a pattern; name one index"):
        predict_memory(catalog(tmp_path, "artists-*"), URL, cluster=scripted_cluster(script))
    assert script.calls == []


@pytest.mark.parametrize(
    ("source", "lost"),
    [
        ({"excludes": ["vec", "blob"]}, "vec, blob (mappings._source.excludes)"),
        ({"enabled": False}, "every field (mappings._source.enabled is false)"),
        ({"includes": ["name"]}, "every field outside name (mappings._source.includes)"),
    ],
    ids=["excludes", "disabled", "includes"],
)
def test_an_index_that_keeps_fields_out_of_source_is_refused(
    tmp_path: Path, source: dict[str, Any], lost: str
) -> None:
    script = Script({("GET", "/artists/_mapping"): mapping(source)})
    with pytest.raises(LtrrError) as err:
        predict_memory(catalog(tmp_path), URL, cluster=scripted_cluster(script))
    assert str(err.value).startswith(f"artists keeps {lost} out of _source")
    assert script.paths() == [("GET", "/artists/_mapping")]  # nothing written


def test_memory_fields_of_another_type_are_refused(tmp_path: Path) -> None:
    script = Script(
        {
            ("GET", "/artists/_mapping"): mapping(),
            ("GET", FIELDS_PATH): fields(q2e="rank_features", q2e_pred="float"),
        }
    )
    with pytest.raises(LtrrError) as err:
        predict_memory(catalog(tmp_path), URL, cluster=scripted_cluster(script))
    assert str(err.value) == (
        "artists: memory fields must be rank_features, found {'q2e_pred': 'float'}"
    )
    assert ("PUT", "/artists/_mapping") not in script.paths()


def test_a_whole_source_with_a_wildcard_include_is_accepted(tmp_path: Path) -> None:
    script = Script(routes([page("s1", [])], count=0))
    script.routes[("GET", "/artists/_mapping")] = mapping({"includes": ["*"]})
    counts = predict_memory(catalog(tmp_path), URL, cluster=scripted_cluster(script))
    assert counts == {"documents": 0, "updated": 0, "without_metadata": 0}


# --- the mapping -------------------------------------------------------------------------------


def test_a_missing_memory_field_is_added_as_rank_features(tmp_path: Path) -> None:
    script = Script(routes([page("s1", [])], count=0, field_types={"q2e": "rank_features"}))
    predict_memory(catalog(tmp_path), URL, cluster=scripted_cluster(script))
    assert script.payload("PUT", "/artists/_mapping") == {
        "properties": {"q2e_pred": {"type": "rank_features"}}
    }


def test_both_fields_missing_are_added_in_one_put(tmp_path: Path) -> None:
    script = Script(routes([page("s1", [])], count=0, field_types={}))
    predict_memory(catalog(tmp_path), URL, cluster=scripted_cluster(script))
    puts = [p for m, q, _, p in script.calls if (m, q) == ("PUT", "/artists/_mapping")]
    assert puts == [
        {"properties": {"q2e": {"type": "rank_features"}, "q2e_pred": {"type": "rank_features"}}}
    ]


def test_fields_already_mapped_are_not_put_again(tmp_path: Path) -> None:
    types = {"q2e": "rank_features", "q2e_pred": "rank_features"}
    script = Script(routes([page("s1", [])], count=0, field_types=types))
    predict_memory(catalog(tmp_path), URL, cluster=scripted_cluster(script))
    assert ("PUT", "/artists/_mapping") not in script.paths()


# --- the scroll, the updates, the counts ---------------------------------------------------------


def test_every_document_is_read_and_updated_with_its_predictions(tmp_path: Path) -> None:
    script = Script(routes(two_pages(), count=4))
    counts = predict_memory(catalog(tmp_path), URL, cluster=scripted_cluster(script))

    # a1 and b1 have metadata; x1 (empty tags, no name) and x2 (no _source) do not.
    assert counts == {"documents": 4, "updated": 2, "without_metadata": 2}
    assert script.payload("POST", "/_bulk") == [
        {"update": {"_index": "artists", "_id": "a1"}},
        {"doc": {"q2e_pred": ABBA}},
        {"update": {"_index": "artists", "_id": "b1"}},
        {"doc": {"q2e_pred": BEATLES}},
    ]


def test_the_requests_come_in_order_and_end_with_a_refresh(tmp_path: Path) -> None:
    script = Script(routes(two_pages(), count=4))
    predict_memory(catalog(tmp_path), URL, cluster=scripted_cluster(script))
    assert script.paths() == [
        ("GET", "/artists/_mapping"),
        ("GET", FIELDS_PATH),
        ("PUT", "/artists/_mapping"),
        ("GET", "/artists/_count"),
        ("POST", "/artists/_search"),
        ("POST", "/_search/scroll"),
        ("POST", "/_search/scroll"),
        ("DELETE", "/_search/scroll"),
        ("POST", "/_bulk"),
        ("POST", "/artists/_refresh"),
    ]


def test_the_scroll_reads_only_the_metadata_fields_sorted_by_doc(tmp_path: Path) -> None:
    script = Script(routes(two_pages(), count=4))
    predict_memory(catalog(tmp_path), URL, cluster=scripted_cluster(script))
    _, _, params, body = next(c for c in script.calls if c[:2] == ("POST", "/artists/_search"))
    assert params == {"scroll": "2m", "size": "500"}
    assert body == {"_source": ["name", "meta.alias", "tags"], "sort": "_doc"}
    scrolls = [p for m, q, _, p in script.calls if (m, q) == ("POST", "/_search/scroll")]
    assert scrolls == [{"scroll_id": "s1", "scroll": "2m"}, {"scroll_id": "s2", "scroll": "2m"}]
    # the last scroll id is cleared
    assert script.payload("DELETE", "/_search/scroll") == {"scroll_id": ["s3"]}


def test_documents_without_metadata_send_no_bulk_at_all(tmp_path: Path) -> None:
    pages = [page("s1", [hit("x1", {"plays": 3}), hit("x2", {"name": ""})]), page("s2", [])]
    script = Script(routes(pages, count=2))
    counts = predict_memory(catalog(tmp_path), URL, cluster=scripted_cluster(script))
    assert counts == {"documents": 2, "updated": 0, "without_metadata": 2}
    assert ("POST", "/_bulk") not in script.paths()
    assert script.paths()[-1] == ("POST", "/artists/_refresh")


def test_progress_is_reported_once_the_count_is_reached(tmp_path: Path) -> None:
    script = Script(routes(two_pages(), count=4))
    seen: list[tuple[int, int]] = []
    predict_memory(
        catalog(tmp_path),
        URL,
        cluster=scripted_cluster(script),
        progress=lambda done, total: seen.append((done, total)),
    )
    # 4 documents, fewer than a page of 500: only the last one (done == total) reports.
    assert seen == [(4, 4)]


# --- a refused write -----------------------------------------------------------------------------


def test_a_refused_update_raises_and_skips_the_refresh(tmp_path: Path) -> None:
    def one_refused(lines: list[dict[str, Any]]) -> dict[str, Any]:
        error = {"type": "document_missing_exception", "reason": "[b1]: document missing"}
        return {
            "errors": True,
            "items": [
                {"update": {"_index": "artists", "_id": "a1", "status": 200}},
                {"update": {"_index": "artists", "_id": "b1", "status": 404, "error": error}},
            ],
        }

    script = Script(routes(two_pages(), count=4, bulk=one_refused))
    with pytest.raises(LtrrError) as err:
        predict_memory(catalog(tmp_path), URL, cluster=scripted_cluster(script))
    message = str(err.value)
    assert message.startswith("writing predictions failed for 1 documents: ")
    assert "document_missing_exception" in message
    assert "'b1'" in message
    assert ("POST", "/artists/_refresh") not in script.paths()
