"""A real proxy (``ltrr serve`` in its own process) in front of the real node, over a small index.

The index holds a dozen artists with every field the four arm kinds need: text (``name``,
``tags``), a keyword name for the entity dictionary, a lucene ``knn_vector`` filled by the real
ONNX embedder, a ``rank_feature`` popularity and the memory's ``rank_features`` fields.
Aliases of it each get their own catalog, so one proxy serves several policies.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests
from opensearchpy import OpenSearch

from ltrr.plugin.learn.bulk import DECISIONS_INDEX, EVENTS_INDEX, MEMORY_INDEX, STATE_INDEX
from ltrr.plugin.learn.tokens import SECRET_ENV

ROOT = Path(__file__).resolve().parents[2]
SHARED_MODEL = ROOT.parent / "shared" / "models" / "all-MiniLM-L6-v2-onnx"

ARTISTS = [
    ("daft-punk", "Daft Punk", ["electronic", "house", "french"], 900),
    ("radiohead", "Radiohead", ["alternative rock", "experimental"], 1000),
    ("portishead", "Portishead", ["trip-hop", "electronic"], 400),
    ("massive-attack", "Massive Attack", ["trip-hop", "electronic", "bristol"], 500),
    ("the-beatles", "The Beatles", ["classic rock", "pop", "british"], 1200),
    ("beach-house", "Beach House", ["dream pop", "indie"], 300),
    ("house-of-pain", "House of Pain", ["hip-hop", "irish"], 150),
    ("aphex-twin", "Aphex Twin", ["electronic", "idm", "ambient"], 450),
    ("boards-of-canada", "Boards of Canada", ["electronic", "ambient", "idm"], 350),
    ("miles-davis", "Miles Davis", ["jazz", "trumpet"], 700),
    ("john-coltrane", "John Coltrane", ["jazz", "saxophone"], 600),
    ("bjork", "Björk", ["electronic", "experimental", "icelandic"], 650),
]


def ltr_model_name(index: str) -> str:
    """The LTR model the ``-ltr`` alias's catalog names (created by the test that needs it)."""
    return index.replace("-", "_") + "_model"


@dataclass(frozen=True)
class MusicIndex:
    name: str
    catalogs: dict[str, Path]  # alias -> catalog file

    @property
    def ltr_model(self) -> str:
        return ltr_model_name(self.name)


FEEDBACK_SECRET = "integration-tests-feedback-secret"


def model_dir() -> Path:
    path = Path(os.environ.get("LTRR_MODEL_DIR", SHARED_MODEL))
    if not (path / "model.onnx").exists():
        pytest.skip(f"the ONNX sentence model is not at {path} (set LTRR_MODEL_DIR)")
    return path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


MAPPING = {
    "settings": {"index": {"number_of_shards": 1, "number_of_replicas": 0, "knn": True}},
    "mappings": {
        "properties": {
            "name": {"type": "text", "fields": {"keyword": {"type": "keyword"}}},
            "tags": {"type": "text"},
            "genre": {"type": "keyword"},
            "popularity": {"type": "rank_feature"},
            "embedding": {
                "type": "knn_vector",
                "dimension": 384,
                "method": {"name": "hnsw", "engine": "lucene", "space_type": "cosinesimil"},
            },
            "ltrr_q2e": {"type": "rank_features"},
            "ltrr_q2e_predicted": {"type": "rank_features"},
        },
    },
}


def catalog_text(
    alias: str, policy: str, extra_arm: str = "", rerank: str = "", budget: int = 20
) -> str:
    return f"""\
target: {alias}
budget: {budget}
deadline_ms: 5000
embedding:
  model: ${{LTRR_MODEL_DIR}}
features:
  entity_field: name.keyword
  context: {{segment: categorical}}
policy: {policy}
arms:
  - name: lexical
    template: multi_match.json.j2
    params: {{fields: ["name^3", "tags"]}}
    size: {{min: 5, max: 5}}
  - name: dense
    template: knn.json.j2
    params: {{field: embedding}}
    needs_vector: true
    size: {{min: 5, max: 5}}
  - name: popular
    template: rank_feature.json.j2
    params: {{field: popularity, text_fields: [name, tags]}}
    size: {{min: 5, max: 5}}
  - name: memory
    template: memory.json.j2
    size: {{min: 5, max: 5}}
{extra_arm}fusion: {{method: rrf, k: 60}}
{rerank}fallback:
  - {{arm: lexical, size: 5}}
source: {{excludes: [embedding]}}
"""


@pytest.fixture(scope="session")
def music(client: OpenSearch, tmp_path_factory: pytest.TempPathFactory) -> Iterator[MusicIndex]:
    from ltrr.query_plans.embed import Embedder

    name = f"ltrr-it-music-{uuid.uuid4().hex[:8]}"
    client.indices.create(index=name, body=MAPPING)
    with Embedder(model_dir()) as embedder:
        vectors = embedder.embed_batch([f"{a[1]} {' '.join(a[2])}" for a in ARTISTS])
    for (doc_id, artist, tags, plays), vector in zip(ARTISTS, vectors, strict=True):
        client.index(
            index=name,
            id=doc_id,
            body={
                "name": artist,
                "tags": tags,
                "genre": tags[0],
                "popularity": plays,
                "embedding": [float(v) for v in vector],
            },
        )
    client.indices.refresh(index=name)
    folder = tmp_path_factory.mktemp("catalogs")
    broken = folder / "broken.json.j2"
    broken.write_text('{"match": {"name": {{ params.no_such_param }}}}\n')
    catalogs = {
        f"{name}-static": catalog_text(f"{name}-static", "{name: static}"),
        f"{name}-linucb": catalog_text(
            f"{name}-linucb", "{name: linucb, alpha: 1.0, min_probability: 0.05}"
        ),
        # Tests that send feedback learn here, so that -linucb stays a fresh policy whose
        # propensities a test can compute (test_search), whatever order the tests run in.
        f"{name}-learning": catalog_text(
            f"{name}-learning", "{name: linucb, alpha: 1.0, min_probability: 0.05}"
        ),
        f"{name}-faulty": catalog_text(
            f"{name}-faulty",
            "{name: static}",
            extra_arm=(
                "  - name: missing_index\n    template: multi_match.json.j2\n"
                "    index: ltrr-it-no-such-index\n"
                "    params: {fields: [name]}\n    size: {min: 5, max: 5}\n"
                "  - name: broken\n    template: broken.json.j2\n"
                "    size: {min: 5, max: 5}\n"
            ),
            budget=30,
        ),
        f"{name}-rerank": catalog_text(
            f"{name}-rerank",
            "{name: static}",
            rerank="rerank: {model: ltrr_it_no_such_model}\n",
        ),
        f"{name}-ltr": catalog_text(
            f"{name}-ltr", "{name: static}", rerank=f"rerank: {{model: {ltr_model_name(name)}}}\n"
        ),
    }
    paths: dict[str, Path] = {}
    for alias, text in catalogs.items():
        client.indices.put_alias(index=name, name=alias)
        path = folder / f"{alias}.yml"
        path.write_text(text)
        paths[alias] = path
    yield MusicIndex(name, paths)
    client.indices.delete(index=name, ignore_unavailable=True)


@dataclass(frozen=True)
class Proxy:
    url: str
    log: Path
    process: subprocess.Popen[bytes]


@contextmanager
def running_proxy(
    catalogs: list[Path],
    opensearch_url: str,
    log: Path,
    *,
    data_dir: Path | None = None,
    seed: int = 7,
    merge_seconds: float = 0.5,
    body_timeout: float = 30.0,
    upstream_timeout: float = 60.0,
    admin_token: str | None = None,
    extra_args: Sequence[str] = (),
    environment: Mapping[str, str | None] | None = None,
    model: bool = True,
) -> Iterator[Proxy]:
    """``ltrr serve`` in its own process, with small caps so that tests can reach them.

    ``extra_args`` go to ``ltrr serve`` (``--opensearch-ca``, say); ``environment`` sets
    variables (None removes one); ``model: False`` for catalogs without an embedder, so that
    no sentence model is needed."""
    port = _free_port()
    data_dir = data_dir or log.parent / f"data-{port}"
    env = {
        **os.environ,
        # Shared by every test proxy, as replicas share it: a test signs its feedback with it.
        SECRET_ENV: FEEDBACK_SECRET,
    }
    if model:
        env["LTRR_MODEL_DIR"] = str(model_dir())
    for name, value in (environment or {}).items():
        if value is None:
            env.pop(name, None)
        else:
            env[name] = value
    admin = {}
    if admin_token is not None:
        env["LTRR_ADMIN_TOKEN"] = admin_token
        admin = {"X-LTRR-Admin-Token": admin_token}
    with log.open("wb") as out:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "ltrr.plugin.ops.cli",
                "serve",
                "--catalog",
                *map(str, catalogs),
                "--opensearch",
                opensearch_url,
                "--listen",
                f"127.0.0.1:{port}",
                "--max-body-bytes",
                str(1024 * 1024),
                "--max-msearch-lines",
                "100",
                "--data-dir",
                str(data_dir),
                "--seed",
                str(seed),
                "--merge-seconds",
                str(merge_seconds),
                "--body-timeout",
                str(body_timeout),
                "--upstream-timeout",
                str(upstream_timeout),
                *extra_args,
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
        )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        if process.poll() is not None:
            pytest.fail(f"ltrr serve exited with {process.returncode}:\n{log.read_text()}")
        try:
            if requests.get(f"{url}/_ltrr/stats", headers=admin, timeout=2).status_code == 200:
                break
        except requests.RequestException:
            pass
        if time.monotonic() > deadline:
            process.kill()
            pytest.fail(f"ltrr serve did not answer in 60 s:\n{log.read_text()}")
        time.sleep(0.2)
    try:
        yield Proxy(url, log, process)
    finally:
        if process.poll() is None:
            process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture(scope="session")
def start_proxy(opensearch_url: str):
    """Tests that need a proxy of their own (reload, signals) start it with this."""

    def start(catalogs: list[Path], log: Path, **options):
        return running_proxy(catalogs, opensearch_url, log, **options)

    return start


@pytest.fixture(scope="session")
def embed() -> Iterator[Callable[[str], list[float]]]:
    from ltrr.query_plans.embed import Embedder

    with Embedder(model_dir()) as embedder:
        yield lambda text: [float(v) for v in embedder.embed(text)]


@pytest.fixture(scope="session")
def proxy(
    music: MusicIndex, opensearch_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Proxy]:
    log = tmp_path_factory.mktemp("proxy") / "proxy.log"
    with running_proxy(list(music.catalogs.values()), opensearch_url, log) as running:
        yield running


@pytest.fixture(scope="session")
def proxy_client(proxy: Proxy) -> Iterator[OpenSearch]:
    os_client = OpenSearch(hosts=[proxy.url], timeout=60)
    yield os_client
    os_client.close()


def _delete_matching(client: OpenSearch, index: str, query: dict) -> None:
    """Search and bulk-delete (the node built here has no reindex module: no delete_by_query)."""
    if not client.indices.exists(index=index):
        return
    while True:
        client.indices.refresh(index=index)
        hits = client.search(index=index, body={"query": query, "size": 1000, "_source": False})[
            "hits"
        ]["hits"]
        if not hits:
            return
        # Each from its own index: a log's name is an alias over its day indices.
        actions = [{"delete": {"_index": h["_index"], "_id": h["_id"]}} for h in hits]
        client.bulk(body=actions)


@pytest.fixture(scope="session", autouse=True)
def _forget_test_learning(client: OpenSearch) -> Iterator[None]:
    """The proxies log decisions, events, statistics and memory for the test targets into the
    learning loop's own indices; remove what the tests wrote there, and their UBI events and
    query records."""
    yield
    for index in (DECISIONS_INDEX, EVENTS_INDEX, STATE_INDEX, MEMORY_INDEX):
        _delete_matching(client, index, {"prefix": {"target": "ltrr-it-"}})
    for client_id in ("simulated-user", "ltrr-simulator"):
        _delete_matching(client, "ubi_events", {"term": {"client_id.keyword": client_id}})
    # Every search a test proxy answered left its UBI record, naming its target.
    _delete_matching(
        client, "ubi_queries", {"prefix": {"query_attributes.ltrr.target": "ltrr-it-"}}
    )
