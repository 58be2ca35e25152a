"""``ltrr data index``: create a catalog's index, embed the corpus in batches, bulk-load it.

A checkpoint file, one per cluster and index (``<cluster_uuid>-<index>.json``), records the uuid
of the index this tool created and how many documents OpenSearch has acknowledged for exactly
this corpus, catalog mapping and model. An interrupted load resumes after the last acknowledged
batch (bulk writes by ``_id`` are idempotent, so a batch sent twice is harmless); a changed
corpus or definition rebuilds the index, saying so, so a half-old index is never taken for a
complete one. An existing index the checkpoint did not create (no checkpoint, another cluster's,
someone else's, or recreated since) is never deleted: the load stops and says so.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import orjson

from ltrr.plugin.errors import LtrrError
from ltrr.plugin.ops.client import Cluster
from ltrr.query_plans.catalog import Catalog
from ltrr.query_plans.embed import Embedder
from ltrr.query_plans.memory import predicted_for

# Documents per embedding call and bulk request: large enough that the embedder can group texts
# of similar length (the padding cost), small enough to checkpoint and show progress often.
BATCH = 512

Embed = Callable[[list[str]], npt.NDArray[np.float32]]


@dataclass(frozen=True, slots=True)
class IndexResult:
    index: str
    documents: int
    sent: int  # documents sent by this run (0 when the index was already complete)
    resumed_from: int
    seconds: float


def catalog_embedder(catalog: Catalog) -> Embedder | None:
    """The catalog's sentence model, when one of its arms searches by vector."""
    if not any(arm.needs_vector for arm in catalog.arms):
        return None
    if catalog.embedding is None:
        raise LtrrError(f"{catalog.path}: a vector arm needs an embedding section")
    return Embedder(
        catalog.embedding.model,
        max_length=catalog.embedding.max_length,
        cache_size=catalog.embedding.cache_size,
    )


def default_checkpoint(cluster_uuid: str, index: str) -> Path:
    """``$XDG_STATE_HOME/ltrr/index/<cluster_uuid>-<index>.json`` (default state home
    ``~/.local/state``): the same index name on two clusters gets two checkpoints."""
    root = Path(os.environ.get("XDG_STATE_HOME") or Path.home() / ".local" / "state")
    return root / "ltrr" / "index" / f"{cluster_uuid}-{index}.json"


def cluster_uuid(http: Cluster) -> str:
    """The cluster's ``cluster_uuid`` from ``GET /``."""
    uuid = http.ok("GET", "/", timeout=30).get("cluster_uuid")
    if not isinstance(uuid, str) or not uuid or uuid == "_na_":
        raise LtrrError(
            f"{http.url} reports no cluster_uuid (has the cluster formed?): cannot name the "
            "index checkpoint; pass --checkpoint FILE"
        )
    return uuid


def index_uuid(http: Cluster, index: str) -> str:
    """The index's own uuid, ``settings.index.uuid`` of ``GET /<index>/_settings``."""
    payload = http.ok("GET", f"/{index}/_settings", timeout=30)
    entry = payload.get(index) if isinstance(payload, dict) else None
    if entry is None and isinstance(payload, dict) and len(payload) == 1:
        entry = next(iter(payload.values()))  # an alias: its one index
    uuid = (entry or {}).get("settings", {}).get("index", {}).get("uuid")
    if not isinstance(uuid, str) or not uuid:
        raise LtrrError(f"GET /{index}/_settings on {http.url} names no single index uuid")
    return uuid


def embedded_text(doc: Mapping[str, Any]) -> str:
    """What the vector arm embeds: the BEIR convention, title then text."""
    return f"{doc.get('title', '')} {doc.get('text', '')}".strip()


def vector_field(catalog: Catalog) -> str | None:
    """The knn field the catalog's vector arms search, if any."""
    for arm in catalog.arms:
        if arm.needs_vector:
            return str(arm.params.get("field", "embedding"))
    return None


def fingerprint(catalog: Catalog, corpus: Sequence[Mapping[str, Any]]) -> str:
    """Changes whenever the documents, the index definition or the embedding model change,
    or anything else that changes what is written: the memory's predicted field and sources,
    the vector field."""
    h = hashlib.sha256()
    h.update(orjson.dumps(dict(catalog.index_body or {}), option=orjson.OPT_SORT_KEYS))
    h.update(str(catalog.embedding.model if catalog.embedding else "").encode())
    memory = catalog.memory
    written = {
        "vector_field": vector_field(catalog),
        "memory": [memory.predicted_field, memory.name_fields, memory.phrase_fields]
        if memory is not None
        else None,
    }
    h.update(orjson.dumps(written, option=orjson.OPT_SORT_KEYS))
    for doc in corpus:
        h.update(orjson.dumps(doc, option=orjson.OPT_SORT_KEYS))
    return h.hexdigest()


def document_source(catalog: Catalog, doc: Mapping[str, Any]) -> dict[str, Any]:
    """The fields the mapping declares, plus the memory's index-time predictions."""
    properties = (catalog.index_body or {}).get("mappings", {}).get("properties", {})
    source = {k: v for k, v in doc.items() if k != "_id" and (not properties or k in properties)}
    memory = catalog.memory
    if memory is not None:
        predicted = predicted_for(doc, memory.name_fields, memory.phrase_fields)
        if predicted:
            source[memory.predicted_field] = predicted
    return source


def _batches(items: Sequence[Mapping[str, Any]], start: int, size: int) -> Iterator[range]:
    for first in range(start, len(items), size):
        yield range(first, min(first + size, len(items)))


class _Checkpoint:
    """What this tool loaded into one index: its name and uuid (recorded when it created the
    index), the fingerprint of what was written, and how many documents were acknowledged."""

    def __init__(self, path: Path, index: str, digest: str, index_uuid: str | None = None) -> None:
        self.path = path
        self.index = index
        self.digest = digest
        self.index_uuid = index_uuid

    def read(self) -> dict[str, Any]:
        """The saved checkpoint, or ``{}`` when there is none (or it is unreadable)."""
        try:
            raw = orjson.loads(self.path.read_bytes())
        except (OSError, orjson.JSONDecodeError):
            return {}
        return raw if isinstance(raw, dict) else {}

    def owns(self, uuid: str) -> bool:
        """Whether the checkpoint records this index, ``uuid``, as the one it created."""
        raw = self.read()
        return raw.get("index") == self.index and raw.get("index_uuid") == uuid

    def done(self) -> int:
        """Documents acknowledged for this index (its uuid) and fingerprint, else 0."""
        raw = self.read()
        if raw.get("index") != self.index or raw.get("fingerprint") != self.digest:
            return 0
        if raw.get("index_uuid") != self.index_uuid:
            return 0
        return int(raw.get("done", 0))

    def save(self, done: int, total: int) -> None:
        """Atomically, so a crash mid-write leaves the previous checkpoint, never a torn one."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        payload = {
            "index": self.index,
            "index_uuid": self.index_uuid,
            "fingerprint": self.digest,
            "done": done,
            "total": total,
        }
        tmp.write_bytes(orjson.dumps(payload))
        os.replace(tmp, self.path)


def _foreign(http: Cluster, mark: _Checkpoint, uuid: str) -> LtrrError:
    """The refusal for an existing index that the checkpoint did not create."""
    raw = mark.read()
    if not raw:
        why = f"there is no checkpoint {mark.path}"
    elif raw.get("index") != mark.index:
        why = f"the checkpoint {mark.path} is for index {raw.get('index')!r}"
    elif not raw.get("index_uuid"):
        why = f"the checkpoint {mark.path} records no index uuid"
    else:
        why = (
            f"the checkpoint {mark.path} records index uuid {raw.get('index_uuid')}, this one is "
            f"{uuid} (another cluster's index, or recreated since)"
        )
    return LtrrError(
        f"index {mark.index} already exists on {http.url} but was not created by this tool's "
        f"checkpoint ({why}). It will not be deleted: delete it yourself "
        f"(DELETE /{mark.index}) or choose another index with --index."
    )


def _create(http: Cluster, catalog: Catalog, mark: _Checkpoint, total: int) -> None:
    """Create the index and record its uuid in a fresh checkpoint."""
    name = mark.index
    status, created = http.request("PUT", f"/{name}", dict(catalog.index_body or {}), timeout=60)
    if status != 200:
        raise LtrrError(f"could not create index {name}: {str(created)[:500]}")
    mark.index_uuid = index_uuid(http, name)
    mark.save(0, total)


def index_corpus(
    cluster: Cluster | str,
    catalog: Catalog,
    corpus: Sequence[Mapping[str, Any]],
    embed: Embed | None,
    *,
    checkpoint: Path | None = None,
    index: str | None = None,
    batch: int = BATCH,
    progress: bool = True,
    say: Callable[[str], None] = print,
) -> IndexResult:
    """Load ``corpus`` into the catalog's first target (or ``index``), resuming if possible."""
    from tqdm import tqdm

    started = time.perf_counter()
    name = index or catalog.targets[0]
    field = vector_field(catalog)
    if field is not None and embed is None:
        raise LtrrError(f"catalog {catalog.path} has a vector arm: an embedding model is needed")
    ids = [str(doc.get("_id", "")) for doc in corpus]
    if not all(ids):
        raise LtrrError("every document needs an _id")
    http = cluster if isinstance(cluster, Cluster) else Cluster(cluster, timeout=300)
    path = checkpoint or default_checkpoint(cluster_uuid(http), name)
    mark = _Checkpoint(path, name, fingerprint(catalog, corpus))
    total = len(corpus)
    if http.request("HEAD", f"/{name}", timeout=30)[0] != 200:
        _create(http, catalog, mark, total)
        done = 0
    else:
        uuid = index_uuid(http, name)
        if not mark.owns(uuid):
            raise _foreign(http, mark, uuid)
        mark.index_uuid = uuid
        done = mark.done()
        rebuild = ""
        if mark.read().get("fingerprint") != mark.digest:
            rebuild = (
                "the documents or the index definition (mapping, embedding model, memory) "
                "changed since it was loaded"
            )
        elif done >= total:
            count = http.ok("GET", f"/{name}/_count", timeout=30).get("count")
            if count == total:
                say(f"index {name}: {count} documents already loaded")
                return IndexResult(name, total, 0, done, time.perf_counter() - started)
            rebuild = (
                f"the checkpoint says {done} documents were loaded but the index holds {count}"
            )
        if rebuild:
            say(f"index {name}: {rebuild}: deleting and rebuilding it")
            status, payload = http.request("DELETE", f"/{name}", timeout=60)
            if status not in (200, 404):
                raise LtrrError(f"could not delete index {name}: {str(payload)[:500]}")
            _create(http, catalog, mark, total)
            done = 0
        else:
            say(f"index {name}: resuming after {done} of {total} acknowledged documents")
    resumed_from = done
    bar = tqdm(
        total=len(corpus), initial=done, unit="doc", desc=f"indexing {name}", disable=not progress
    )
    try:
        for chunk in _batches(corpus, done, batch):
            docs = [corpus[i] for i in chunk]
            vectors = embed([embedded_text(d) for d in docs]) if field and embed else None
            actions = []
            for n, doc in enumerate(docs):
                source = document_source(catalog, doc)
                if vectors is not None and field is not None:
                    source[field] = vectors[n].tolist()
                actions.append({"_index": name, "_id": ids[chunk[n]], "_source": source})
            refused = http.bulk(actions, chunk_size=len(actions))
            if refused:
                raise LtrrError(f"bulk load into {name} failed: {_first_error(refused)}")
            done = chunk.stop
            mark.save(done, len(corpus))
            bar.update(len(docs))
    finally:
        bar.close()
    http.ok("POST", f"/{name}/_refresh")
    seconds = time.perf_counter() - started
    say(f"index {name}: loaded {done - resumed_from} documents in {seconds:.1f} s")
    return IndexResult(name, len(corpus), done - resumed_from, resumed_from, seconds)


def _first_error(refused: Sequence[Mapping[str, Any]]) -> str:
    for item in refused:
        for action in item.values():
            if action.get("error"):
                return f"document {action.get('_id')}: {orjson.dumps(action['error']).decode()}"
    return str(refused[:1])[:500]
