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
from datetime import UTC, datetime
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
from ltrr.query_plans.memory import predicted_for

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
    mapping = http.get(f"{url}/{index}/_mapping", timeout=30)
    fields: Any = next(iter(mapping.json().values()), {}) if mapping.status_code == 200 else {}
    current = (
        catalog.memory is None or catalog.memory.predicted_field in orjson.dumps(fields).decode()
    )
    if current and count.status_code == 200 and count.json()["count"] == len(data.corpus):
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
            source: dict[str, Any] = {"title": doc.get("title", ""), "text": doc.get("text", "")}
            memory = catalog.memory
            if memory is not None:  # the memory starts from what the metadata predicts
                predicted = predicted_for(source, memory.name_fields, memory.phrase_fields)
                if predicted:
                    source[memory.predicted_field] = predicted
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
    """The collection's queries through the proxy; a simulated user clicks the relevant hits.

    Clicks go back alternately through ``/_ltrr/feedback`` and as UBI events to
    ``ubi_events``, so both intake paths take part.
    """
    recalls: list[float] = []
    clicks = 0
    async with aiohttp.ClientSession() as session:
        for n, (query_id, text) in enumerate(list(data.queries.items())[:limit]):
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
            hits = payload["hits"]["hits"]
            found = {h["_id"] for h in hits} & set(relevant)
            if relevant:
                recalls.append(len(found) / len(relevant))
            top = hits[0]["_source"]["title"] if hits else "-"
            say(f"q{query_id}: {text[:60]!r}")
            say(f"    asked {asked}; {len(found)}/{len(relevant)} relevant in top 10")
            say(f"    first: {top[:70]}")
            for rank, hit in enumerate(hits, start=1):
                if hit["_id"] not in relevant:
                    continue
                clicks += 1
                await _click(session, proxy_url, ltrr["decision_id"], hit["_id"], rank, n % 2 == 1)
    if recalls:
        say(f"mean recall@10 over {len(recalls)} judged queries: {sum(recalls) / len(recalls):.3f}")
    say(f"simulated user: {clicks} clicks on relevant hits, half as UBI events")


async def _click(
    session: aiohttp.ClientSession,
    proxy_url: str,
    decision_id: str,
    doc_id: str,
    rank: int,
    ubi: bool,
) -> None:
    event: dict[str, Any]
    if ubi:
        event = {
            "action_name": "click",
            "query_id": decision_id,
            "client_id": "ltrr-demo",
            "timestamp": datetime.now(UTC).isoformat(),
            "event_attributes": {
                "object": {"object_id": doc_id, "object_id_field": "_id"},
                "position": {"ordinal": rank},
            },
        }
        url = f"{proxy_url}/ubi_events/_doc"
    else:
        event = {
            "decision_id": decision_id,
            "events": [{"type": "click", "object_id": doc_id, "position": rank}],
        }
        url = f"{proxy_url}/_ltrr/feedback"
    async with session.post(url, json=event) as reply:
        if reply.status >= 300:
            raise LtrrError(f"feedback answered {reply.status}: {await reply.text()}")


async def run_demo(
    catalog_path: Path,
    dataset: Path,
    opensearch_url: str,
    listen: str,
    say: Callable[[str], None],
    *,
    queries: int = 8,
    keep_serving: bool = True,
    data_dir: Path,
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
    proxy = Proxy(registry, opensearch_url, data_dir=data_dir)
    runner = web.AppRunner(proxy.app(), access_log=None)
    await runner.setup()
    host, port = parse_listen(listen)
    await web.TCPSite(runner, host, port).start()
    proxy_url = f"http://{host}:{port}"
    say(f"proxy on {proxy_url} -> {opensearch_url}; catalog {catalog_path}")
    try:
        await _queries_through_proxy(proxy_url, index, data, say, queries)
        await asyncio.sleep(3.0)  # shipping, memory and state run every second or two
        if proxy.learner is not None:
            learned = proxy.learner.snapshot()
            say(
                f"learned: policy version {runtime.policy.version()}, "
                f"{learned['events_shipped']} events shipped to ltrr-events, "
                f"{learned['decisions_logged']} decisions to ltrr-decisions, "
                f"{learned['memory_pairs_written']} memory scores written"
            )
        if keep_serving:
            say(
                f"serving; try: curl -s {proxy_url}/{index}/_search -H 'Content-Type: "
                f'application/json\' -d \'{{"ext":{{"ltrr":{{"query":"parallel sorting"}}}}}}\''
            )
            say("Ctrl-C stops the proxy (the node keeps running; 'ltrr opensearch down' stops it)")
            await asyncio.Event().wait()
    finally:
        await runner.cleanup()
