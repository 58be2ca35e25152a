"""The index housekeeping a simulation needs: one fresh copy of the index per contender.

Copies are made with ``_clone`` (hard-linked segments: seconds, not a re-index), which needs
the source write-blocked for the moment of the copy. What earlier runs left in the shared
``ltrr-state`` and ``ltrr-memory`` indices for a copy's name is forgotten first, so every run
starts from the same prior. The hybrid contenders' search pipelines are created and removed
here too.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import orjson
import requests

from ltrr.plugin.errors import LtrrError
from ltrr.plugin.learn.bulk import MEMORY_INDEX, STATE_INDEX


def _check(reply: requests.Response, what: str) -> dict[str, Any]:
    if reply.status_code >= 300:
        raise LtrrError(f"{what}: OpenSearch answered {reply.status_code}: {reply.text[:400]}")
    body: dict[str, Any] = reply.json()
    return body


def clone_index(http: requests.Session, url: str, source: str, targets: Sequence[str]) -> None:
    """Fresh copies of ``source`` named ``targets`` (existing ones are replaced)."""
    for target in targets:
        if http.head(f"{url}/{target}", timeout=30).status_code == 200:
            _check(http.delete(f"{url}/{target}", timeout=60), f"delete {target}")
    _check(
        http.put(f"{url}/{source}/_settings", json={"index.blocks.write": True}, timeout=60),
        f"write-block {source}",
    )
    try:
        for target in targets:
            _check(
                http.post(
                    f"{url}/{source}/_clone/{target}",
                    json={"settings": {"index.blocks.write": None, "index.number_of_replicas": 0}},
                    timeout=120,
                ),
                f"clone {source} to {target}",
            )
        _check(
            http.get(
                f"{url}/_cluster/health/{','.join(targets)}",
                params={"wait_for_status": "yellow", "timeout": "60s"},
                timeout=90,
            ),
            "wait for the copies",
        )
    finally:
        http.put(f"{url}/{source}/_settings", json={"index.blocks.write": None}, timeout=60)


def ensure_ubi_index(http: requests.Session, url: str, name: str = "ubi_events") -> None:
    """Create the UBI events index the simulated clicks go to, unless it exists.

    Auto-created by the first click, it would take the cluster's default of one replica and
    keep a single node yellow; created here it has as many replicas as the cluster can hold.
    """
    if http.head(f"{url}/{name}", timeout=30).status_code == 200:
        return
    body = {"settings": {"index": {"number_of_shards": 1, "auto_expand_replicas": "0-1"}}}
    reply = http.put(f"{url}/{name}", json=body, timeout=60)
    if reply.status_code != 200 and "resource_already_exists" not in reply.text:
        _check(reply, f"create {name}")


def put_pipeline(http: requests.Session, url: str, name: str, body: Mapping[str, Any]) -> None:
    """Create (or replace) the search pipeline ``name``."""
    _check(
        http.put(f"{url}/_search/pipeline/{name}", json=body, timeout=60),
        f"create the search pipeline {name}",
    )


def delete_pipelines(http: requests.Session, url: str, names: Sequence[str]) -> None:
    """Remove search pipelines; one already gone (404) is no error."""
    for name in names:
        reply = http.delete(f"{url}/_search/pipeline/{name}", timeout=60)
        if reply.status_code != 404:
            _check(reply, f"delete the search pipeline {name}")


def drop_indices(http: requests.Session, url: str, names: Sequence[str]) -> None:
    for name in names:
        http.delete(f"{url}/{name}", timeout=60)


def forget_targets(
    http: requests.Session,
    url: str,
    targets: Sequence[str],
    indices: Sequence[str] = (STATE_INDEX, MEMORY_INDEX),
) -> int:
    """Delete the documents of ``targets`` from the learning loop's ``indices`` (by default
    the shared state and the memory); returns how many.

    The node may lack the reindex module (no ``_delete_by_query``), so this searches and
    bulk-deletes, which works everywhere.
    """
    removed = 0
    for index in indices:
        if http.head(f"{url}/{index}", timeout=30).status_code != 200:
            continue
        http.post(f"{url}/{index}/_refresh", timeout=60)
        while True:
            found = _check(
                http.post(
                    f"{url}/{index}/_search",
                    json={
                        "size": 5000,
                        "_source": False,
                        "query": {
                            "bool": {
                                "should": [
                                    {"terms": {"target": list(targets)}},
                                    {"ids": {"values": [f"{t}:_catalog" for t in targets]}},
                                ]
                            }
                        },
                    },
                    timeout=60,
                ),
                f"search {index}",
            )
            hits = found["hits"]["hits"]
            if not hits:
                break
            lines = b"".join(
                orjson.dumps({"delete": {"_index": index, "_id": h["_id"]}}) + b"\n" for h in hits
            )
            deleted = _check(
                http.post(
                    f"{url}/_bulk",
                    params={"refresh": "true"},
                    data=lines,
                    headers={"Content-Type": "application/x-ndjson"},
                    timeout=120,
                ),
                f"delete from {index}",
            )
            if deleted.get("errors"):
                # A document that cannot be deleted would be found again: fail, never spin.
                raise LtrrError(f"delete from {index}: {_first_error(deleted)}")
            removed += len(hits)
    return removed


def _first_error(body: dict[str, Any]) -> str:
    for item in body.get("items", ()):
        for action in item.values():
            if action.get("error"):
                return f"document {action.get('_id')}: {orjson.dumps(action['error']).decode()}"
    return "the bulk request reported errors"
