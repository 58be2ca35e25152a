"""``ltrr memory predict``: the memory's index-time predictions, for an index that already exists.

Indexing tools write ``memory.predicted_field`` as they load documents; an index loaded by the
customer's own pipeline gets it here instead: every document is read once (scroll, sorted by
``_doc``), its predicted query -> entity scores computed from the catalog's ``name_fields`` and
``phrase_fields``, and written back with partial ``_update``s in bulk.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import orjson
import requests

from ltrr.plugin.errors import LtrrError
from ltrr.query_plans.catalog import load_catalog
from ltrr.query_plans.memory import predicted_for, source_losses

PAGE = 500


def _ensure_whole_source(http: requests.Session, url: str, target: str) -> None:
    """Partial updates are rebuilt from ``_source``: a field kept out of it would be lost."""
    reply = http.get(f"{url}/{target}/_mapping", timeout=30)
    if reply.status_code != 200:
        raise LtrrError(f"reading the mapping of {target} failed: {reply.text[:300]}")
    for index, lost in source_losses(reply.json()).items():
        if lost is not None:
            raise LtrrError(
                f"{index} keeps {lost} out of _source: writing predictions with partial updates"
                " would drop it from every document; keep _source whole (filter at query time)"
            )


def _ensure_mapping(http: requests.Session, url: str, target: str, names: list[str]) -> None:
    """Both memory fields must be ``rank_features``: add them if missing, refuse another type."""
    reply = http.get(f"{url}/{target}/_mapping/field/{','.join(names)}", timeout=30)
    if reply.status_code != 200:
        raise LtrrError(f"reading the mapping of {target} failed: {reply.text[:300]}")
    found: dict[str, str] = {}
    for index in reply.json().values():
        for name, info in index.get("mappings", {}).items():
            leaf = name.rsplit(".", 1)[-1]
            found[name] = str(info.get("mapping", {}).get(leaf, {}).get("type"))
    wrong = {n: t for n, t in found.items() if t != "rank_features"}
    if wrong:
        raise LtrrError(f"{target}: memory fields must be rank_features, found {wrong}")
    missing = [n for n in names if n not in found]
    if missing:
        body = {"properties": {n: {"type": "rank_features"} for n in missing}}
        added = http.put(f"{url}/{target}/_mapping", data=orjson.dumps(body), timeout=60)
        if added.status_code != 200:
            raise LtrrError(f"adding {missing} to {target}'s mapping failed: {added.text[:300]}")


def predict_memory(
    catalog_path: Path,
    opensearch_url: str,
    *,
    headers: Mapping[str, str] | None = None,
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
    url = opensearch_url.rstrip("/")
    http = requests.Session()
    http.headers.update({"Content-Type": "application/json", **(headers or {})})
    _ensure_whole_source(http, url, target)
    _ensure_mapping(http, url, target, [memory.field, memory.predicted_field])
    fields = [*memory.name_fields, *memory.phrase_fields]
    reply = http.post(
        f"{url}/{target}/_search",
        params={"scroll": "2m"},
        data=orjson.dumps({"size": PAGE, "sort": ["_doc"], "_source": fields}),
        timeout=120,
    )
    if reply.status_code != 200:
        raise LtrrError(f"reading {target} failed: {reply.status_code} {reply.text[:300]}")
    page = reply.json()
    total = int(page["hits"]["total"]["value"])
    counts = {"documents": 0, "updated": 0, "without_metadata": 0}
    scroll_id = page.get("_scroll_id")
    try:
        while page["hits"]["hits"]:
            lines = bytearray()
            for hit in page["hits"]["hits"]:
                counts["documents"] += 1
                source: dict[str, Any] = hit.get("_source") or {}
                predicted = predicted_for(source, memory.name_fields, memory.phrase_fields)
                if not predicted:
                    counts["without_metadata"] += 1
                    continue
                action = {"update": {"_index": hit["_index"], "_id": hit["_id"]}}
                lines += orjson.dumps(action) + b"\n"
                lines += orjson.dumps({"doc": {memory.predicted_field: predicted}}) + b"\n"
                counts["updated"] += 1
            if lines:
                written = http.post(
                    f"{url}/_bulk",
                    data=bytes(lines),
                    headers={"Content-Type": "application/x-ndjson"},
                    timeout=120,
                )
                if written.status_code != 200 or written.json().get("errors"):
                    raise LtrrError(f"writing predictions failed: {written.text[:500]}")
            if progress is not None:
                progress(counts["documents"], total)
            reply = http.post(
                f"{url}/_search/scroll",
                data=orjson.dumps({"scroll": "2m", "scroll_id": scroll_id}),
                timeout=120,
            )
            if reply.status_code != 200:
                raise LtrrError(f"reading {target} failed: {reply.status_code} {reply.text[:300]}")
            page = reply.json()
            scroll_id = page.get("_scroll_id", scroll_id)
    finally:
        if scroll_id:
            http.delete(
                f"{url}/_search/scroll", data=orjson.dumps({"scroll_id": scroll_id}), timeout=30
            )
    http.post(f"{url}/{target}/_refresh", timeout=60)
    return counts
