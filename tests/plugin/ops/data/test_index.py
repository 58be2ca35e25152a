"""data/index.py: fingerprint, document_source, the checkpoint, and index_corpus against a fake
OpenSearch session (``requests.Session`` replaced in the module)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pytest
from requests.structures import CaseInsensitiveDict

from ltrr.plugin.errors import LtrrError
from ltrr.plugin.ops.data import index as index_mod
from ltrr.plugin.ops.data.index import (
    IndexResult,
    _Checkpoint,
    document_source,
    fingerprint,
    index_corpus,
)
from ltrr.query_plans.catalog import Catalog, load_catalog
from tests.plugin.ops._scripted import scripted_cluster

CATALOG = """\
target: [artists, artists-b]
budget: 20
policy: {name: static}
embedding: {model: /models/m1}
arms:
  - {name: lexical, template: multi_match.json.j2, params: {fields: [name, tags]},
     size: {min: 1, max: 20}}
fallback: [{arm: lexical, size: 10}]
memory: {predicted_field: q2e_predicted, name_fields: [name], phrase_fields: [tags]}
index:
  settings: {index: {number_of_shards: 1}}
  mappings:
    properties:
      name: {type: text}
      tags: {type: text}
      q2e_predicted: {type: rank_features}
"""

VECTOR_ARM = """\
  - {name: dense, template: knn.json.j2, params: {field: vec}, size: {min: 0, max: 20},
     needs_vector: true}
fallback:"""

CORPUS = [
    {"_id": f"d{n}", "name": f"Artist {n}", "tags": ["rock"], "plays": n} for n in range(1, 6)
]


def _catalog(tmp_path: Path, text: str = CATALOG, name: str = "c.yml") -> Catalog:
    (tmp_path / name).write_text(text, encoding="utf-8")
    return load_catalog(tmp_path / name)


@pytest.fixture
def catalog(tmp_path: Path) -> Catalog:
    return _catalog(tmp_path)


# --- fingerprint and document_source ------------------------------------------------------------


def test_fingerprint_is_stable_and_follows_every_input(tmp_path: Path, catalog: Catalog) -> None:
    base = fingerprint(catalog, CORPUS)
    assert fingerprint(catalog, [dict(d) for d in CORPUS]) == base
    # Key order inside a document does not matter (sorted keys).
    assert fingerprint(catalog, [dict(reversed(d.items())) for d in CORPUS]) == base
    changed_doc = [*CORPUS[:-1], {**CORPUS[-1], "plays": 99}]
    assert fingerprint(catalog, changed_doc) != base
    assert fingerprint(catalog, CORPUS[:-1]) != base
    variants = {
        "body": CATALOG.replace("number_of_shards: 1", "number_of_shards: 2"),
        "model": CATALOG.replace("/models/m1", "/models/m2"),
        "memory": CATALOG.replace("phrase_fields: [tags]", "phrase_fields: []"),
    }
    for what, text in variants.items():
        other = _catalog(tmp_path, text, f"{what}.yml")
        assert fingerprint(other, CORPUS) != base, what


def test_document_source_keeps_mapped_fields_and_adds_predictions(catalog: Catalog) -> None:
    doc = {"_id": "a1", "name": "Abba", "tags": ["pop", "disco"], "plays": 7}
    # name "abba" scores 1.0 (and its near key "~abba"); tag k scores 0.3 / (1 + k):
    # pop 0.3, disco 0.3 / 2 = 0.15, each with its near key. "plays" is not mapped; _id never.
    assert document_source(catalog, doc) == {
        "name": "Abba",
        "tags": ["pop", "disco"],
        "q2e_predicted": {
            "abba": 1.0,
            "~abba": 1.0,
            "pop": 0.3,
            "~pop": 0.3,
            "disco": 0.15,
            "~disco": 0.15,
        },
    }


def test_document_source_without_mappings_or_memory_keeps_everything(tmp_path: Path) -> None:
    bare = CATALOG.split("memory:")[0]
    catalog = _catalog(tmp_path, bare, "bare.yml")
    assert document_source(catalog, {"_id": "x", "name": "N", "plays": 3}) == {
        "name": "N",
        "plays": 3,
    }


# --- the checkpoint ----------------------------------------------------------------------------


def test_checkpoint_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "idx.json"
    mark = _Checkpoint(path, "idx", "f1")
    assert mark.done() == 0  # no file yet
    mark.save(1024, 3000)
    assert mark.done() == 1024
    assert orjson.loads(path.read_bytes()) == {
        "index": "idx",
        "fingerprint": "f1",
        "done": 1024,
        "total": 3000,
    }
    assert list(path.parent.iterdir()) == [path]  # the temporary file was moved, not left


def test_checkpoint_for_another_index_or_corpus_counts_nothing(tmp_path: Path) -> None:
    path = tmp_path / "idx.json"
    _Checkpoint(path, "idx", "f1").save(10, 20)
    assert _Checkpoint(path, "other", "f1").done() == 0
    assert _Checkpoint(path, "idx", "f2").done() == 0
    for junk in (b"{torn", b"[1, 2]", b""):
        path.write_bytes(junk)
        assert _Checkpoint(path, "idx", "f1").done() == 0


def test_checkpoint_save_is_atomic(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "idx.json"
    mark = _Checkpoint(path, "idx", "f1")
    mark.save(512, 1000)

    def crash(src: Any, dst: Any) -> None:
        raise OSError("power cut")

    monkeypatch.setattr(index_mod.os, "replace", crash)
    with pytest.raises(OSError, match="power cut"):
        mark.save(1000, 1000)
    assert mark.done() == 512  # the previous checkpoint, whole


# --- index_corpus against a fake session -----------------------------------------------------


class _Reply:
    def __init__(self, status: int = 200, body: Any = None) -> None:
        self.status_code = status
        self._body = {} if body is None else body
        self.text = orjson.dumps(self._body).decode()
        self.headers = CaseInsensitiveDict({"Content-Type": "application/json; charset=UTF-8"})

    def json(self) -> Any:
        return self._body

    @property
    def content(self) -> bytes:
        return self.text.encode()


class _FakeOpenSearch:
    """One index: ``exists`` and ``count`` are the cluster's answers. Each bulk request records
    the ids it carried and the checkpoint's ``done`` at that moment; ``fail_bulk`` (1-based)
    answers that bulk with an item error on its first document."""

    def __init__(self, checkpoint: Path, *, exists: bool, count: int = 0, fail_bulk: int = 0):
        self.checkpoint = checkpoint
        self.exists = exists
        self.count = count
        self.fail_bulk = fail_bulk
        self.calls: list[tuple[str, str]] = []
        self.created: Any = None
        self.bulks: list[list[str]] = []
        self.done_before_bulk: list[int] = []
        self.sources: list[dict[str, Any]] = []

    def request(self, method: str, url: str, data: Any = None, **_: Any) -> _Reply:
        """The scripted connection's entry: one method per verb, as a cluster answers."""
        if method == "PUT":
            return self.put(url, json=orjson.loads(data) if data else None)
        if method == "POST":
            return self.post(url, data=data or b"")
        return {"HEAD": self.head, "GET": self.get, "DELETE": self.delete}[method](url)

    def head(self, url: str, **_: Any) -> _Reply:
        self.calls.append(("HEAD", url))
        return _Reply(200 if self.exists else 404)

    def get(self, url: str, **_: Any) -> _Reply:
        self.calls.append(("GET", url))
        return _Reply(200, {"count": self.count})

    def delete(self, url: str, **_: Any) -> _Reply:
        self.calls.append(("DELETE", url))
        self.exists = False
        return _Reply(200)

    def put(self, url: str, json: Any = None, **_: Any) -> _Reply:
        self.calls.append(("PUT", url))
        self.created = json
        self.exists = True
        return _Reply(200, {"acknowledged": True})

    def post(self, url: str, data: bytes = b"", **_: Any) -> _Reply:
        self.calls.append(("POST", url))
        if not url.endswith("/_bulk"):
            return _Reply(200)
        lines = [orjson.loads(line) for line in data.splitlines() if line.strip()]
        ids = [line["index"]["_id"] for line in lines[0::2]]
        self.sources.extend(lines[1::2])
        self.bulks.append(ids)
        self.done_before_bulk.append(
            int(orjson.loads(self.checkpoint.read_bytes())["done"])
            if self.checkpoint.exists()
            else -1
        )
        if len(self.bulks) == self.fail_bulk:
            error = {"type": "mapper_parsing_exception", "reason": "bad name"}
            item = {"index": {"_id": ids[0], "status": 400, "error": error}}
            return _Reply(200, {"errors": True, "items": [item]})
        return _Reply(200, {"errors": False, "items": []})


def _run(
    catalog: Catalog,
    fake: _FakeOpenSearch,
    monkeypatch: pytest.MonkeyPatch,
    corpus: list[dict[str, Any]] = CORPUS,
    **kwargs: Any,
) -> IndexResult:
    return index_corpus(
        scripted_cluster(fake),
        catalog,
        corpus,
        kwargs.pop("embed", None),
        checkpoint=fake.checkpoint,
        batch=2,
        progress=False,
        say=lambda _: None,
        **kwargs,
    )


def _saved(path: Path) -> dict[str, Any]:
    raw: dict[str, Any] = orjson.loads(path.read_bytes())
    return raw


def test_fresh_run_creates_the_index_and_checkpoints_each_batch(
    catalog: Catalog, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = _FakeOpenSearch(tmp_path / "cp.json", exists=False)
    result = _run(catalog, fake, monkeypatch)
    # 5 documents in batches of 2: d1 d2 | d3 d4 | d5, into the first target.
    assert fake.bulks == [["d1", "d2"], ["d3", "d4"], ["d5"]]
    # Before each bulk the checkpoint holds what was acknowledged so far: 0, 2, 4.
    assert fake.done_before_bulk == [0, 2, 4]
    assert _saved(fake.checkpoint)["done"] == 5
    assert _saved(fake.checkpoint)["total"] == 5
    assert fake.calls[:3] == [
        ("HEAD", "http://os:9200/artists"),
        ("DELETE", "http://os:9200/artists"),
        ("PUT", "http://os:9200/artists"),
    ]
    assert fake.calls[-1] == ("POST", "http://os:9200/artists/_refresh")
    assert fake.created == dict(catalog.index_body or {})
    assert "plays" not in fake.sources[0]
    assert "q2e_predicted" in fake.sources[0]
    assert (result.index, result.documents, result.sent, result.resumed_from) == (
        "artists",
        5,
        5,
        0,
    )


def test_resumed_run_sends_only_the_rest(
    catalog: Catalog, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = _FakeOpenSearch(tmp_path / "cp.json", exists=True)
    _Checkpoint(fake.checkpoint, "artists", fingerprint(catalog, CORPUS)).save(4, 5)  # 2 batches
    result = _run(catalog, fake, monkeypatch)
    assert fake.bulks == [["d5"]]
    assert not any(method in ("DELETE", "PUT") for method, _ in fake.calls)
    assert (result.sent, result.resumed_from) == (1, 4)  # 5 - 4 sent
    assert _saved(fake.checkpoint)["done"] == 5


def test_a_checkpoint_for_another_corpus_starts_over(
    catalog: Catalog, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = _FakeOpenSearch(tmp_path / "cp.json", exists=True)
    _Checkpoint(fake.checkpoint, "artists", fingerprint(catalog, CORPUS[:4])).save(4, 4)
    result = _run(catalog, fake, monkeypatch)
    assert fake.bulks == [["d1", "d2"], ["d3", "d4"], ["d5"]]
    assert ("DELETE", "http://os:9200/artists") in fake.calls
    assert result.resumed_from == 0


def test_a_checkpoint_without_its_index_starts_over(
    catalog: Catalog, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = _FakeOpenSearch(tmp_path / "cp.json", exists=False)
    _Checkpoint(fake.checkpoint, "artists", fingerprint(catalog, CORPUS)).save(4, 5)
    _run(catalog, fake, monkeypatch)
    assert fake.bulks[0] == ["d1", "d2"]


def test_complete_checkpoint_with_matching_count_sends_nothing(
    catalog: Catalog, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = _FakeOpenSearch(tmp_path / "cp.json", exists=True, count=5)
    _Checkpoint(fake.checkpoint, "artists", fingerprint(catalog, CORPUS)).save(5, 5)
    result = _run(catalog, fake, monkeypatch)
    assert fake.bulks == []
    assert fake.calls == [
        ("HEAD", "http://os:9200/artists"),
        ("GET", "http://os:9200/artists/_count"),
    ]
    assert (result.sent, result.resumed_from, result.documents) == (0, 5, 5)


def test_complete_checkpoint_with_a_short_index_reloads(
    catalog: Catalog, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = _FakeOpenSearch(tmp_path / "cp.json", exists=True, count=3)  # 3 of 5: lost some
    _Checkpoint(fake.checkpoint, "artists", fingerprint(catalog, CORPUS)).save(5, 5)
    result = _run(catalog, fake, monkeypatch)
    assert fake.bulks == [["d1", "d2"], ["d3", "d4"], ["d5"]]
    assert ("DELETE", "http://os:9200/artists") in fake.calls
    assert (result.sent, result.resumed_from) == (5, 0)


def test_a_bulk_item_error_names_the_document_and_keeps_the_last_good_batch(
    catalog: Catalog, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = _FakeOpenSearch(tmp_path / "cp.json", exists=False, fail_bulk=2)
    with pytest.raises(LtrrError, match=r"bulk load into artists failed: document d3: .*bad name"):
        _run(catalog, fake, monkeypatch)
    assert fake.bulks == [["d1", "d2"], ["d3", "d4"]]  # stopped at the failing batch
    assert _saved(fake.checkpoint)["done"] == 2
    assert ("POST", "http://os:9200/artists/_refresh") not in fake.calls


def test_an_explicit_index_overrides_the_target(
    catalog: Catalog, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = _FakeOpenSearch(tmp_path / "cp.json", exists=False)
    result = _run(catalog, fake, monkeypatch, index="copy")
    assert result.index == "copy"
    assert fake.calls[0] == ("HEAD", "http://os:9200/copy")
    assert _saved(fake.checkpoint)["index"] == "copy"


def test_bad_inputs_raise(
    catalog: Catalog, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = _FakeOpenSearch(tmp_path / "cp.json", exists=False)
    with pytest.raises(LtrrError, match="every document needs an _id"):
        _run(catalog, fake, monkeypatch, corpus=[{"_id": "d1"}, {"name": "no id"}])

    class NoCreate(_FakeOpenSearch):
        def put(self, url: str, json: Any = None, **_: Any) -> _Reply:
            return _Reply(400, {"error": "resource_already_exists_exception"})

    with pytest.raises(LtrrError, match="could not create index artists"):
        _run(catalog, NoCreate(tmp_path / "cp2.json", exists=False), monkeypatch)


def test_vector_arms_get_the_embedded_title_and_text(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    model = tmp_path / "model"
    model.mkdir()
    for name in ("model.onnx", "tokenizer.json"):
        (model / name).write_bytes(b"")  # loading checks only that they exist
    text = CATALOG.replace("/models/m1", str(model)).replace("fallback:", VECTOR_ARM, 1)
    catalog = _catalog(tmp_path, text, "vec.yml")
    seen: list[list[str]] = []

    def embed(texts: list[str]) -> np.ndarray:
        seen.append(texts)
        return np.array([[float(len(t)), 1.0] for t in texts], dtype=np.float32)

    fake = _FakeOpenSearch(tmp_path / "cp.json", exists=False)
    docs = [{"_id": "a", "title": "T", "text": "body"}, {"_id": "b", "text": "xy"}]
    _run(catalog, fake, monkeypatch, corpus=docs, embed=embed)
    # title then text, stripped: "T body" (6 characters), "xy" (2); one batch of 2.
    assert seen == [["T body", "xy"]]
    assert [s["vec"] for s in fake.sources] == [[6.0, 1.0], [2.0, 1.0]]
    with pytest.raises(LtrrError, match="has a vector arm: an embedding model is needed"):
        _run(
            catalog, _FakeOpenSearch(tmp_path / "cp3.json", exists=False), monkeypatch, corpus=docs
        )
