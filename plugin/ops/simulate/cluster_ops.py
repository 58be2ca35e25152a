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

from ltrr.plugin.errors import LtrrError
from ltrr.plugin.learn.bulk import MEMORY_INDEX, STATE_INDEX
from ltrr.plugin.ops.client import Cluster


def _check(reply: tuple[int, Any], what: str) -> dict[str, Any]:
    status, body = reply
    if status >= 300:
        raise LtrrError(f"{what}: OpenSearch answered {status}: {str(body)[:400]}")
    return body if isinstance(body, dict) else {}


def clone_index(http: Cluster, source: str, targets: Sequence[str]) -> None:
    """Fresh copies of ``source`` named ``targets`` (existing ones are replaced).

    The copies never refresh on their own (``refresh_interval: -1``): the proxy's simulated
    clock refreshes a copy when its memory is written, so what a search sees never depends on
    when a wall-clock refresh happened to run."""
    for target in targets:
        if http.exists(f"/{target}"):
            _check(http.request("DELETE", f"/{target}"), f"delete {target}")
    _check(
        http.request("PUT", f"/{source}/_settings", {"index.blocks.write": True}),
        f"write-block {source}",
    )
    try:
        for target in targets:
            _check(
                http.request(
                    "POST",
                    f"/{source}/_clone/{target}",
                    {
                        "settings": {
                            "index.blocks.write": None,
                            "index.number_of_replicas": 0,
                            "index.refresh_interval": "-1",
                        }
                    },
                    timeout=120,
                ),
                f"clone {source} to {target}",
            )
        _check(
            http.request(
                "GET",
                f"/_cluster/health/{','.join(targets)}",
                params={"wait_for_status": "yellow", "timeout": "60s"},
                timeout=90,
            ),
            "wait for the copies",
        )
    finally:
        http.request("PUT", f"/{source}/_settings", {"index.blocks.write": None})


def ensure_ubi_index(http: Cluster, name: str = "ubi_events") -> None:
    """Create the UBI events index the simulated clicks go to, unless it exists.

    Auto-created by the first click, it would take the cluster's default of one replica and
    keep a single node yellow; created here it has as many replicas as the cluster can hold.
    """
    if http.exists(f"/{name}"):
        return
    body = {"settings": {"index": {"number_of_shards": 1, "auto_expand_replicas": "0-1"}}}
    status, reply = http.request("PUT", f"/{name}", body)
    if status != 200 and "resource_already_exists" not in str(reply):
        _check((status, reply), f"create {name}")


def put_pipeline(http: Cluster, name: str, body: Mapping[str, Any]) -> None:
    """Create (or replace) the search pipeline ``name``."""
    _check(
        http.request("PUT", f"/_search/pipeline/{name}", dict(body)),
        f"create the search pipeline {name}",
    )


def delete_pipelines(http: Cluster, names: Sequence[str]) -> None:
    """Remove search pipelines; one already gone (404) is no error."""
    for name in names:
        reply = http.request("DELETE", f"/_search/pipeline/{name}")
        if reply[0] != 404:
            _check(reply, f"delete the search pipeline {name}")


def drop_indices(http: Cluster, names: Sequence[str]) -> None:
    for name in names:
        http.request("DELETE", f"/{name}")


def _owned(targets: Sequence[str]) -> dict[str, Any]:
    return {
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
    }


def forget_targets(
    http: Cluster,
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
        if not http.exists(f"/{index}"):
            continue
        http.request("POST", f"/{index}/_refresh")
        while True:
            found = _check(
                http.request("POST", f"/{index}/_search", _owned(targets)), f"search {index}"
            )
            hits = found["hits"]["hits"]
            if not hits:
                break
            # Each from the index it is in: a log's name is an alias over its day indices.
            actions = [
                {"_op_type": "delete", "_index": h.get("_index", index), "_id": h["_id"]}
                for h in hits
            ]
            refused = http.bulk(actions, chunk_size=len(actions), refresh=True)
            if refused:
                # A document that cannot be deleted would be found again: fail, never spin.
                raise LtrrError(f"delete from {index}: {_first_error(refused)}")
            removed += len(hits)
    return removed


def _first_error(refused: Sequence[Mapping[str, Any]]) -> str:
    for item in refused:
        for action in item.values():
            if action.get("error"):
                return f"document {action.get('_id')}: {orjson.dumps(action['error']).decode()}"
    return "the bulk request reported errors"
