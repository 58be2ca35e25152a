"""``ltrr demo``: the proxy in front of a local node over a real test collection, end to end.

It starts the local node, indexes a BEIR-layout corpus (CACM by default, from configuration)
with real embeddings, starts the proxy, runs the collection's own queries through it, prints
what each decision asked and how much of the judged-relevant set it found, and keeps serving.
"""

from __future__ import annotations

import asyncio
import csv
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import requests
from aiohttp import web

from ltrr.plugin.catalogs import CatalogRegistry
from ltrr.plugin.errors import LtrrError
from ltrr.plugin.server import Proxy, parse_listen
from ltrr.query_plans.catalog import Catalog

# Documents per embedding call and bulk request: large enough that embed_batch can group texts
# of similar length (the padding cost), small enough to show progress.
BATCH = 512


@dataclass(frozen=True, slots=True)
class BeirDataset:
    corpus: list[dict[str, Any]]
    queries: dict[str, str]
    qrels: dict[str, dict[str, int]]


def read_beir(folder: Path, split: str = "test") -> BeirDataset:
    """corpus.jsonl, queries.jsonl and qrels/<split>.tsv, as BEIR lays them out."""
    for name in ("corpus.jsonl", "queries.jsonl", f"qrels/{split}.tsv"):
        if not (folder / name).is_file():
            raise LtrrError(f"{folder} is not a BEIR folder: {name} is missing")
    corpus = [orjson.loads(line) for line in (folder / "corpus.jsonl").open("rb") if line.strip()]
    queries = {
        q["_id"]: q["text"]
        for q in (orjson.loads(line) for line in (folder / "queries.jsonl").open("rb"))
    }
    qrels: dict[str, dict[str, int]] = {}
    with (folder / "qrels" / f"{split}.tsv").open() as f:
        for row in csv.DictReader(f, delimiter="\t"):
            qrels.setdefault(row["query-id"], {})[row["corpus-id"]] = int(row["score"])
    return BeirDataset(corpus, queries, qrels)


def _batches(items: list[dict[str, Any]], size: int) -> Iterator[list[dict[str, Any]]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def index_beir(
    url: str,
    catalog: Catalog,
    data: BeirDataset,
    embed: Callable[[list[str]], Any],
    say: Callable[[str], None],
) -> str:
    """Create the catalog's index and load the corpus, unless it is already there in full."""
    index = catalog.targets[0]
    http = requests.Session()
    count = http.get(f"{url}/{index}/_count", timeout=30)
    if count.status_code == 200 and count.json()["count"] == len(data.corpus):
        say(f"index {index}: {len(data.corpus)} documents already loaded")
        return index
    http.delete(f"{url}/{index}", timeout=60)
    created = http.put(f"{url}/{index}", json=dict(catalog.index_body or {}), timeout=60)
    if created.status_code != 200:
        raise LtrrError(f"could not create index {index}: {created.text}")
    done = 0
    for batch in _batches(data.corpus, BATCH):
        vectors = embed([f"{d.get('title', '')} {d.get('text', '')}".strip() for d in batch])
        lines = bytearray()
        for doc, vector in zip(batch, vectors, strict=True):
            lines += orjson.dumps({"index": {"_index": index, "_id": doc["_id"]}}) + b"\n"
            source = {"title": doc.get("title", ""), "text": doc.get("text", "")}
            source["embedding"] = [float(v) for v in vector]
            lines += orjson.dumps(source) + b"\n"
        reply = http.post(
            f"{url}/_bulk",
            data=bytes(lines),
            headers={"Content-Type": "application/x-ndjson"},
            timeout=120,
        )
        if reply.status_code != 200 or reply.json().get("errors"):
            raise LtrrError(f"bulk load into {index} failed: {reply.text[:500]}")
        done += len(batch)
        print(f"\r  indexed {done}/{len(data.corpus)}", end="", file=sys.stderr, flush=True)
    print(file=sys.stderr)
    http.post(f"{url}/{index}/_refresh", timeout=60)
    say(f"index {index}: loaded {done} documents with embeddings")
    return index


async def _queries_through_proxy(
    proxy_url: str, index: str, data: BeirDataset, say: Callable[[str], None], limit: int
) -> None:
    recalls: list[float] = []
    async with aiohttp.ClientSession() as session:
        for query_id, text in list(data.queries.items())[:limit]:
            body = {"size": 10, "_source": ["title"], "ext": {"ltrr": {"query": text}}}
            async with session.post(f"{proxy_url}/{index}/_search", json=body) as reply:
                payload = await reply.json()
            if reply.status != 200:
                raise LtrrError(f"the proxy answered {reply.status}: {payload}")
            ltrr = payload["ext"]["ltrr"]
            asked = ", ".join(
                f"{arm}:{info['size']} (p={info['propensity']:.2f})"
                for arm, info in ltrr["arms"].items()
                if info["included"]
            )
            relevant = data.qrels.get(query_id, {})
            found = {h["_id"] for h in payload["hits"]["hits"]} & set(relevant)
            if relevant:
                recalls.append(len(found) / len(relevant))
            top = payload["hits"]["hits"][0]["_source"]["title"] if payload["hits"]["hits"] else "-"
            say(f"q{query_id}: {text[:60]!r}")
            say(f"    asked {asked}; {len(found)}/{len(relevant)} relevant in top 10")
            say(f"    first: {top[:70]}")
    if recalls:
        say(f"mean recall@10 over {len(recalls)} judged queries: {sum(recalls) / len(recalls):.3f}")


async def run_demo(
    catalog_path: Path,
    dataset: Path,
    opensearch_url: str,
    listen: str,
    say: Callable[[str], None],
    *,
    queries: int = 8,
    keep_serving: bool = True,
) -> None:
    registry = CatalogRegistry([catalog_path], seed=0)
    registry.load_all()
    (runtime,) = registry.runtimes()
    if runtime.embedder is None:
        raise LtrrError("the demo catalog needs an embedding model for its vector arm")
    data = read_beir(dataset)
    embedder = runtime.embedder
    index = await asyncio.to_thread(
        index_beir, opensearch_url, runtime.catalog, data, embedder.embed_batch, say
    )
    proxy = Proxy(registry, opensearch_url)
    runner = web.AppRunner(proxy.app(), access_log=None)
    await runner.setup()
    host, port = parse_listen(listen)
    await web.TCPSite(runner, host, port).start()
    proxy_url = f"http://{host}:{port}"
    say(f"proxy on {proxy_url} -> {opensearch_url}; catalog {catalog_path}")
    try:
        await _queries_through_proxy(proxy_url, index, data, say, queries)
        if keep_serving:
            say(
                f"serving; try: curl -s {proxy_url}/{index}/_search -H 'Content-Type: "
                f'application/json\' -d \'{{"ext":{{"ltrr":{{"query":"parallel sorting"}}}}}}\''
            )
            say("Ctrl-C stops the proxy (the node keeps running; 'ltrr opensearch down' stops it)")
            await asyncio.Event().wait()
    finally:
        await runner.cleanup()
