"""``ltrr memory predict``: the memory's index-time predictions, for an index that already exists.

Indexing tools write ``memory.predicted_field`` as they load documents; an index loaded by the
customer's own pipeline gets it here instead: every document is read once (scroll, sorted by
``_doc``), its predicted query -> entity scores computed from the catalog's ``name_fields`` and
``phrase_fields``, and written back with partial ``_update``s in bulk.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from opensearchpy import helpers

from ltrr.plugin.errors import LtrrError
from ltrr.plugin.ops.client import Cluster
from ltrr.query_plans.catalog import MemoryConfig, load_catalog
from ltrr.query_plans.memory import predicted_for, source_losses

PAGE = 500


def _ensure_whole_source(http: Cluster, target: str) -> None:
    """Partial updates are rebuilt from ``_source``: a field kept out of it would be lost."""
    for index, lost in source_losses(http.ok("GET", f"/{target}/_mapping", timeout=30)).items():
        if lost is not None:
            raise LtrrError(
                f"{index} keeps {lost} out of _source: writing predictions with partial updates"
                " would drop it from every document; keep _source whole (filter at query time)"
            )


def _ensure_mapping(http: Cluster, target: str, names: list[str]) -> None:
    """Both memory fields must be ``rank_features``: add them if missing, refuse another type."""
    found: dict[str, str] = {}
    fields = http.ok("GET", f"/{target}/_mapping/field/{','.join(names)}", timeout=30)
    for index in fields.values():
        for name, info in index.get("mappings", {}).items():
            leaf = name.rsplit(".", 1)[-1]
            found[name] = str(info.get("mapping", {}).get(leaf, {}).get("type"))
    wrong = {n: t for n, t in found.items() if t != "rank_features"}
    if wrong:
        raise LtrrError(f"{target}: memory fields must be rank_features, found {wrong}")
    missing = [n for n in names if n not in found]
    if missing:
        body = {"properties": {n: {"type": "rank_features"} for n in missing}}
        http.ok("PUT", f"/{target}/_mapping", body, timeout=60)


def _updates(
    hits: Iterator[dict[str, Any]],
    memory: MemoryConfig,
    counts: dict[str, int],
    progress: Callable[[int], None],
) -> Iterator[dict[str, Any]]:
    """One partial update per document that has the metadata to predict from."""
    for hit in hits:
        counts["documents"] += 1
        progress(counts["documents"])
        source: dict[str, Any] = hit.get("_source") or {}
        predicted = predicted_for(source, memory.name_fields, memory.phrase_fields)
        if not predicted:
            counts["without_metadata"] += 1
            continue
        counts["updated"] += 1
        yield {
            "_op_type": "update",
            "_index": hit["_index"],
            "_id": hit["_id"],
            "doc": {memory.predicted_field: predicted},
        }


def predict_memory(
    catalog_path: Path,
    opensearch_url: str,
    *,
    cluster: Cluster | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> dict[str, int]:
    """Write predicted Q2E scores on every document of the catalog's target; returns counts."""
    catalog = load_catalog(catalog_path)
    memory = catalog.memory
    if memory is None:
        raise LtrrError(f"{catalog_path}: the catalog has no memory section")
    target = catalog.targets[0]
    if any(c in target for c in "*,"):
        raise LtrrError(f"{catalog_path}: target {target!r} is a pattern; name one index")
    http = cluster if cluster is not None else Cluster(opensearch_url, timeout=120)
    _ensure_whole_source(http, target)
    _ensure_mapping(http, target, [memory.field, memory.predicted_field])
    total = int(http.ok("GET", f"/{target}/_count")["count"])
    counts = {"documents": 0, "updated": 0, "without_metadata": 0}
    hits = helpers.scan(
        http.client,
        index=target,
        query={"_source": [*memory.name_fields, *memory.phrase_fields]},
        size=PAGE,
        scroll="2m",
        request_timeout=120,
    )
    every_page = progress if progress is not None else (lambda _done, _total: None)
    updates = _updates(
        hits,
        memory,
        counts,
        lambda done: every_page(done, total) if done % PAGE == 0 or done == total else None,
    )
    # One bulk per page, stopping at the first page OpenSearch refused part of.
    while chunk := list(itertools.islice(updates, PAGE)):
        refused = http.bulk(chunk, chunk_size=PAGE)
        if refused:
            raise LtrrError(
                f"writing predictions failed for {len(refused)} documents: {refused[0]}"
            )
    http.ok("POST", f"/{target}/_refresh")
    return counts
