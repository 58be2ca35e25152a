"""data/index.py: fingerprint, document_source, the checkpoint, and index_corpus against a fake
cluster answering a scripted opensearch-py connection (``tests/plugin/ops/_scripted.py``)."""

from __future__ import annotations

import re
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
    default_checkpoint,
    document_source,
    fingerprint,
    index_corpus,
)
from ltrr.query_plans.catalog import Catalog, load_catalog
from tests.plugin.ops._scripted import URL, scripted_cluster

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


def test_default_checkpoint_is_keyed_by_cluster_and_index(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    assert default_checkpoint("c-a", "artists") == tmp_path / "state/ltrr/index/c-a-artists.json"
    assert default_checkpoint("c-b", "artists") != default_checkpoint("c-a", "artists")
    monkeypatch.delenv("XDG_STATE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert default_checkpoint("c-a", "artists") == (
        tmp_path / "home/.local/state/ltrr/index/c-a-artists.json"
    )


def test_checkpoint_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "idx.json"
    mark = _Checkpoint(path, "idx", "f1", "u1")
    assert mark.done() == 0  # no file yet
    assert mark.read() == {}
    mark.save(1024, 3000)
    assert mark.done() == 1024
    assert mark.owns("u1")
    assert orjson.loads(path.read_bytes()) == {
        "index": "idx",
        "index_uuid": "u1",
        "fingerprint": "f1",
        "done": 1024,
        "total": 3000,
    }
    assert list(path.parent.iterdir()) == [path]  # the temporary file was moved, not left


def test_checkpoint_for_another_index_uuid_or_corpus_counts_nothing(tmp_path: Path) -> None:
    path = tmp_path / "idx.json"
    _Checkpoint(path, "idx", "f1", "u1").save(10, 20)
    assert _Checkpoint(path, "other", "f1", "u1").done() == 0
    assert _Checkpoint(path, "idx", "f2", "u1").done() == 0
    assert _Checkpoint(path, "idx", "f1", "u2").done() == 0  # the index was recreated
    assert not _Checkpoint(path, "idx", "f1").owns("u2")
    assert not _Checkpoint(path, "other", "f1").owns("u1")
    for junk in (b"{torn", b"[1, 2]", b""):
        path.write_bytes(junk)
        assert _Checkpoint(path, "idx", "f1", "u1").done() == 0
        assert not _Checkpoint(path, "idx", "f1").owns("u1")


def test_checkpoint_save_is_atomic(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "idx.json"
    mark = _Checkpoint(path, "idx", "f1", "u1")
    mark.save(512, 1000)

    def crash(src: Any, dst: Any) -> None:
        raise OSError("power cut")

    monkeypatch.setattr(index_mod.os, "replace", crash)
    with pytest.raises(OSError, match="power cut"):
        mark.save(1000, 1000)
    assert mark.done() == 512  # the previous checkpoint, whole


# --- index_corpus against a fake cluster -------------------------------------------------------


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


BASE = URL


class _FakeOpenSearch:
    """One cluster (``cluster_uuid``) with one index: ``exists``, its ``uuid`` and ``count`` are
    the cluster's answers; each create gives the index a new uuid (``u-1``, ``u-2``...). Each
    bulk request records the ids it carried and the checkpoint at that moment; ``fail_bulk``
    (1-based) answers that bulk with an item error on its first document. ``said`` collects
    what index_corpus says."""

    def __init__(
        self,
        checkpoint: Path | None,
        *,
        exists: bool,
        count: int = 0,
        fail_bulk: int = 0,
        uuid: str = "u-0",
        cluster_uuid: str = "c-a",
    ):
        self.checkpoint = checkpoint
        self.exists = exists
        self.count = count
        self.fail_bulk = fail_bulk
        self.uuid = uuid
        self.cluster_uuid = cluster_uuid
        self.creates = 0
        self.calls: list[tuple[str, str]] = []
        self.created: Any = None
        self.bulks: list[list[str]] = []
        self.saved_before_bulk: list[dict[str, Any] | None] = []
        self.sources: list[dict[str, Any]] = []
        self.said: list[str] = []

    @property
    def done_before_bulk(self) -> list[int]:
        return [int(saved["done"]) if saved else -1 for saved in self.saved_before_bulk]

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
        path = url.removeprefix(BASE)
        if path == "/":
            return _Reply(200, {"name": "node-1", "cluster_uuid": self.cluster_uuid})
        if path.endswith("/_settings"):
            if not self.exists:
                return _Reply(404, {"error": {"type": "index_not_found_exception"}})
            name = path.split("/")[1]
            return _Reply(200, {name: {"settings": {"index": {"uuid": self.uuid}}}})
        return _Reply(200, {"count": self.count})

    def delete(self, url: str, **_: Any) -> _Reply:
        self.calls.append(("DELETE", url))
        self.exists = False
        return _Reply(200)

    def put(self, url: str, json: Any = None, **_: Any) -> _Reply:
        self.calls.append(("PUT", url))
        self.created = json
        self.exists = True
        self.creates += 1
        self.uuid = f"u-{self.creates}"
        return _Reply(200, {"acknowledged": True})

    def post(self, url: str, data: bytes = b"", **_: Any) -> _Reply:
        self.calls.append(("POST", url))
        if not url.endswith("/_bulk"):
            return _Reply(200)
        lines = [orjson.loads(line) for line in data.splitlines() if line.strip()]
        ids = [line["index"]["_id"] for line in lines[0::2]]
        self.sources.extend(lines[1::2])
        self.bulks.append(ids)
        path = self.checkpoint
        self.saved_before_bulk.append(
            orjson.loads(path.read_bytes()) if path is not None and path.exists() else None
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
        checkpoint=kwargs.pop("checkpoint", fake.checkpoint),
        batch=2,
        progress=False,
        say=fake.said.append,
        **kwargs,
    )


def _saved(path: Path | None) -> dict[str, Any]:
    assert path is not None
    raw: dict[str, Any] = orjson.loads(path.read_bytes())
    return raw


def _own(fake: _FakeOpenSearch, digest: str, done: int, total: int) -> None:
    """A checkpoint that records the fake's current index as the one this tool created."""
    assert fake.checkpoint is not None
    _Checkpoint(fake.checkpoint, "artists", digest, fake.uuid).save(done, total)


def _url(path: str) -> str:
    return f"{BASE}{path}"


LOAD_ALL = [
    ("POST", _url("/_bulk")),
    ("POST", _url("/_bulk")),
    ("POST", _url("/_bulk")),
    ("POST", _url("/artists/_refresh")),
]
CREATE = [
    ("PUT", _url("/artists")),
    ("GET", _url("/artists/_settings")),
]


def test_fresh_run_creates_the_index_and_checkpoints_each_batch(
    catalog: Catalog, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = _FakeOpenSearch(tmp_path / "cp.json", exists=False)
    result = _run(catalog, fake, monkeypatch)
    # 5 documents in batches of 2: d1 d2 | d3 d4 | d5, into the first target.
    assert fake.bulks == [["d1", "d2"], ["d3", "d4"], ["d5"]]
    # Before each bulk the checkpoint holds what was acknowledged so far: 0, 2, 4, and always
    # the uuid of the index it created.
    assert fake.done_before_bulk == [0, 2, 4]
    assert [saved and saved["index_uuid"] for saved in fake.saved_before_bulk] == ["u-1"] * 3
    assert _saved(fake.checkpoint) == {
        "index": "artists",
        "index_uuid": "u-1",
        "fingerprint": fingerprint(catalog, CORPUS),
        "done": 5,
        "total": 5,
    }
    # An absent index is created, never deleted first; its uuid is read back.
    assert fake.calls == [("HEAD", _url("/artists")), *CREATE, *LOAD_ALL]
    assert fake.created == dict(catalog.index_body or {})
    assert "plays" not in fake.sources[0]
    assert "q2e_predicted" in fake.sources[0]
    assert (result.index, result.documents, result.sent, result.resumed_from) == (
        "artists",
        5,
        5,
        0,
    )


def test_the_default_checkpoint_is_per_cluster(
    catalog: Catalog, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path))
    folder = tmp_path / "ltrr" / "index"
    # Each fake watches the file it expects; index_corpus is given no checkpoint and names it.
    first = _FakeOpenSearch(folder / "c-a-artists.json", exists=False, cluster_uuid="c-a")
    _run(catalog, first, monkeypatch, checkpoint=None)
    assert first.calls == [("GET", _url("/")), ("HEAD", _url("/artists")), *CREATE, *LOAD_ALL]
    assert sorted(p.name for p in folder.iterdir()) == ["c-a-artists.json"]
    assert first.done_before_bulk == [0, 2, 4]
    assert _saved(first.checkpoint)["index_uuid"] == "u-1"
    # The same index name on another cluster: its own (absent) checkpoint, so its index is
    # not this tool's, and the first cluster's checkpoint is neither used nor touched.
    before = (folder / "c-a-artists.json").read_bytes()
    second = _FakeOpenSearch(
        folder / "c-b-artists.json", exists=True, uuid="u-1", cluster_uuid="c-b"
    )
    with pytest.raises(LtrrError, match="not created by this tool's checkpoint"):
        _run(catalog, second, monkeypatch, checkpoint=None)
    assert second.calls == [
        ("GET", _url("/")),
        ("HEAD", _url("/artists")),
        ("GET", _url("/artists/_settings")),
    ]
    assert sorted(p.name for p in folder.iterdir()) == ["c-a-artists.json"]
    assert (folder / "c-a-artists.json").read_bytes() == before
    # Absent on the second cluster: created and checkpointed beside the first one.
    third = _FakeOpenSearch(folder / "c-b-artists.json", exists=False, cluster_uuid="c-b")
    _run(catalog, third, monkeypatch, checkpoint=None)
    assert third.done_before_bulk == [0, 2, 4]
    assert sorted(p.name for p in folder.iterdir()) == ["c-a-artists.json", "c-b-artists.json"]
    assert (folder / "c-a-artists.json").read_bytes() == before


def test_a_cluster_without_a_uuid_cannot_name_the_checkpoint(
    catalog: Catalog, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path))
    fake = _FakeOpenSearch(None, exists=False, cluster_uuid="_na_")
    with pytest.raises(LtrrError, match=r"reports no cluster_uuid.*--checkpoint"):
        _run(catalog, fake, monkeypatch)
    assert fake.calls == [("GET", _url("/"))]


def test_resumed_run_sends_only_the_rest(
    catalog: Catalog, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = _FakeOpenSearch(tmp_path / "cp.json", exists=True, uuid="u-7")
    _own(fake, fingerprint(catalog, CORPUS), 4, 5)  # 2 batches
    result = _run(catalog, fake, monkeypatch)
    assert fake.bulks == [["d5"]]
    assert fake.calls == [
        ("HEAD", _url("/artists")),
        ("GET", _url("/artists/_settings")),
        ("POST", _url("/_bulk")),
        ("POST", _url("/artists/_refresh")),
    ]
    assert (result.sent, result.resumed_from) == (1, 4)  # 5 - 4 sent
    assert _saved(fake.checkpoint)["done"] == 5
    assert _saved(fake.checkpoint)["index_uuid"] == "u-7"  # kept on every save
    assert fake.said[0] == "index artists: resuming after 4 of 5 acknowledged documents"


def test_a_load_stopped_before_its_first_batch_resumes_without_deleting(
    catalog: Catalog, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = _FakeOpenSearch(tmp_path / "cp.json", exists=True, uuid="u-3")
    _own(fake, fingerprint(catalog, CORPUS), 0, 5)  # created, nothing acknowledged yet
    result = _run(catalog, fake, monkeypatch)
    assert fake.calls == [
        ("HEAD", _url("/artists")),
        ("GET", _url("/artists/_settings")),
        *LOAD_ALL,
    ]
    assert (result.sent, result.resumed_from) == (5, 0)
    assert _saved(fake.checkpoint)["index_uuid"] == "u-3"


def test_a_changed_corpus_or_definition_rebuilds_and_says_so(
    catalog: Catalog, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = _FakeOpenSearch(tmp_path / "cp.json", exists=True, uuid="u-0")
    _own(fake, fingerprint(catalog, CORPUS[:4]), 4, 4)  # this tool's index, another corpus
    result = _run(catalog, fake, monkeypatch)
    assert fake.calls == [
        ("HEAD", _url("/artists")),
        ("GET", _url("/artists/_settings")),
        ("DELETE", _url("/artists")),
        *CREATE,
        *LOAD_ALL,
    ]
    assert fake.bulks == [["d1", "d2"], ["d3", "d4"], ["d5"]]
    assert fake.said[0] == (
        "index artists: the documents or the index definition (mapping, embedding model, "
        "memory) changed since it was loaded: deleting and rebuilding it"
    )
    assert result.resumed_from == 0
    # The checkpoint now records the new index and the new fingerprint.
    assert _saved(fake.checkpoint)["index_uuid"] == "u-1"
    assert _saved(fake.checkpoint)["fingerprint"] == fingerprint(catalog, CORPUS)


@pytest.mark.parametrize(
    ("recorded", "why"),
    [
        (None, "there is no checkpoint"),
        ({"index": "other", "index_uuid": "u-0"}, "is for index 'other'"),
        ({"index": "artists"}, "records no index uuid"),  # a checkpoint of the old format
        (
            {"index": "artists", "index_uuid": "u-old"},
            "records index uuid u-old, this one is u-0 .another cluster's index, or recreated",
        ),
    ],
    ids=["no-checkpoint", "other-index", "no-uuid", "other-uuid"],
)
def test_an_index_the_checkpoint_did_not_create_is_never_deleted(
    catalog: Catalog,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    recorded: dict[str, Any] | None,
    why: str,
) -> None:
    fake = _FakeOpenSearch(tmp_path / "cp.json", exists=True, uuid="u-0")
    assert fake.checkpoint is not None
    if recorded is not None:
        digest = fingerprint(catalog, CORPUS)  # even a matching corpus does not make it ours
        fake.checkpoint.write_bytes(
            orjson.dumps({**recorded, "fingerprint": digest, "done": 5, "total": 5})
        )
    before = fake.checkpoint.read_bytes() if fake.checkpoint.exists() else None
    with pytest.raises(LtrrError) as raised:
        _run(catalog, fake, monkeypatch)
    message = str(raised.value)
    assert message.startswith(
        f"index artists already exists on {BASE} but was not created by this tool's checkpoint ("
    )
    assert re.search(why, message), message
    assert message.endswith(
        "It will not be deleted: delete it yourself (DELETE /artists) or choose another index "
        "with --index."
    )
    assert fake.calls == [("HEAD", _url("/artists")), ("GET", _url("/artists/_settings"))]
    assert fake.exists
    assert fake.uuid == "u-0"
    assert (fake.checkpoint.read_bytes() if fake.checkpoint.exists() else None) == before


def test_a_checkpoint_without_its_index_starts_over(
    catalog: Catalog, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = _FakeOpenSearch(tmp_path / "cp.json", exists=False)
    _own(fake, fingerprint(catalog, CORPUS), 4, 5)
    _run(catalog, fake, monkeypatch)
    assert fake.calls == [("HEAD", _url("/artists")), *CREATE, *LOAD_ALL]
    assert fake.bulks[0] == ["d1", "d2"]
    assert _saved(fake.checkpoint)["index_uuid"] == "u-1"


def test_complete_checkpoint_with_matching_count_sends_nothing(
    catalog: Catalog, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = _FakeOpenSearch(tmp_path / "cp.json", exists=True, count=5)
    _own(fake, fingerprint(catalog, CORPUS), 5, 5)
    result = _run(catalog, fake, monkeypatch)
    assert fake.bulks == []
    assert fake.calls == [
        ("HEAD", _url("/artists")),
        ("GET", _url("/artists/_settings")),
        ("GET", _url("/artists/_count")),
    ]
    assert (result.sent, result.resumed_from, result.documents) == (0, 5, 5)
    assert fake.said == ["index artists: 5 documents already loaded"]


def test_complete_checkpoint_with_a_short_index_rebuilds_and_says_so(
    catalog: Catalog, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = _FakeOpenSearch(tmp_path / "cp.json", exists=True, count=3)  # 3 of 5: lost some
    _own(fake, fingerprint(catalog, CORPUS), 5, 5)
    result = _run(catalog, fake, monkeypatch)
    assert fake.bulks == [["d1", "d2"], ["d3", "d4"], ["d5"]]
    assert fake.calls == [
        ("HEAD", _url("/artists")),
        ("GET", _url("/artists/_settings")),
        ("GET", _url("/artists/_count")),
        ("DELETE", _url("/artists")),
        *CREATE,
        *LOAD_ALL,
    ]
    assert fake.said[0] == (
        "index artists: the checkpoint says 5 documents were loaded but the index holds 3: "
        "deleting and rebuilding it"
    )
    assert (result.sent, result.resumed_from) == (5, 0)


def test_a_bulk_item_error_names_the_document_and_keeps_the_last_good_batch(
    catalog: Catalog, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = _FakeOpenSearch(tmp_path / "cp.json", exists=False, fail_bulk=2)
    with pytest.raises(LtrrError, match=r"bulk load into artists failed: document d3: .*bad name"):
        _run(catalog, fake, monkeypatch)
    assert fake.bulks == [["d1", "d2"], ["d3", "d4"]]  # stopped at the failing batch
    assert _saved(fake.checkpoint)["done"] == 2
    assert ("POST", _url("/artists/_refresh")) not in fake.calls


def test_an_explicit_index_overrides_the_target(
    catalog: Catalog, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = _FakeOpenSearch(tmp_path / "cp.json", exists=False)
    result = _run(catalog, fake, monkeypatch, index="copy")
    assert result.index == "copy"
    assert fake.calls[:3] == [
        ("HEAD", _url("/copy")),
        ("PUT", _url("/copy")),
        ("GET", _url("/copy/_settings")),
    ]
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
