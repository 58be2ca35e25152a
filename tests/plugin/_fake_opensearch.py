"""An in-memory OpenSearch for the learning loop's writes: ``_mget`` and ``_bulk``, for real.

Documents carry a ``_seq_no`` from one global counter and a ``_primary_term``, so guarded
writes (``if_seq_no``/``if_primary_term``) conflict exactly as they would on a cluster. Hooks
run before a request is handled: to write concurrently between a read and a write (forcing a
409), to answer a whole request with an error, or to force the status of one bulk item.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from ltrr.plugin.runtime.upstream import UpstreamReply

Hook = Callable[[], object]  # a reply answers the request; anything else lets it through


@dataclass(slots=True)
class StoredDoc:
    source: dict[str, Any]
    seq_no: int
    primary_term: int


def deep_merge(base: Mapping[str, Any], patch: Mapping[str, Any]) -> dict[str, Any]:
    """What ``update`` with ``{"doc": patch}`` makes of ``base``: objects merge, others replace."""
    out = copy.deepcopy(dict(base))
    for key, value in patch.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def capped_merge(base: Mapping[str, Any], params: Mapping[str, Any]) -> dict[str, Any]:
    """What the memory's scripted update (``memorize.CAPPED_MERGE``) makes of ``base``: the new
    scores merged into the field, then only the ``max`` best kept (ties: the smaller key)."""
    out = copy.deepcopy(dict(base))
    old = out.get(params["field"])
    merged = {**(old if isinstance(old, Mapping) else {}), **params["features"]}
    best = sorted(merged.items(), key=lambda kv: (-kv[1], kv[0]))[: params["max"]]
    out[params["field"]] = dict(best)
    return out


_DAY_INDEX = re.compile(r"(.+)-\d{4}\.\d{2}\.\d{2}")


def alias_of(index: str) -> str:
    """The log alias a day index is behind (``ltrr-events-2026.12.02``: ``ltrr-events``)."""
    match = _DAY_INDEX.fullmatch(index)
    return match.group(1) if match else index


def _reply(status: int, body: Any) -> UpstreamReply:
    return UpstreamReply(status, orjson.dumps(body))


def _error(kind: str, reason: str) -> dict[str, Any]:
    return {"type": kind, "reason": reason}


class FakeOpenSearch:
    """A ``Transport`` over a dict of indices; every request is recorded in ``requests``."""

    def __init__(self, primary_term: int = 1) -> None:
        self.indices: dict[str, dict[str, StoredDoc]] = {}
        self.seq_no = -1  # the last one given out
        self.primary_term = primary_term
        self.requests: list[tuple[str, str]] = []
        # Each index's mapping as GET _mapping shows it (an index is known once written to).
        self.mappings: dict[str, dict[str, Any]] = {}
        self._hooks: list[tuple[str, Hook]] = []
        self._forced: dict[tuple[str, str], int] = {}
        self.bulk_bodies: list[bytes] = []  # every ``_bulk`` body, as sent

    # -- direct access, as another writer or an observer -----------------------------------------

    def put(self, index: str, doc_id: str, source: Mapping[str, Any]) -> int:
        """Write a document as someone else would (no guard); returns its new ``_seq_no``."""
        self.seq_no += 1
        stored = StoredDoc(copy.deepcopy(dict(source)), self.seq_no, self.primary_term)
        self.indices.setdefault(index, {})[doc_id] = stored
        return self.seq_no

    def behind(self, name: str) -> list[str]:
        """The indices a name reads: itself, or the day indices of a log's alias."""
        if name in self.indices:
            return [name]
        return sorted(i for i in self.indices if _DAY_INDEX.fullmatch(i) and alias_of(i) == name)

    def source(self, index: str, doc_id: str) -> dict[str, Any] | None:
        for name in self.behind(index):
            doc = self.indices[name].get(doc_id)
            if doc is not None:
                return copy.deepcopy(doc.source)
        return None

    def ids(self, index: str) -> set[str]:
        return {doc_id for name in self.behind(index) for doc_id in self.indices[name]}

    def count(self, path: str) -> int:
        return sum(1 for _, p in self.requests if p == path)

    # -- hooks -----------------------------------------------------------------------------------

    def on_next(self, path_suffix: str, hook: Hook, *, times: int = 1) -> None:
        """Run ``hook`` before each of the next ``times`` requests whose path ends so; a hook
        returning an ``UpstreamReply`` answers the request with it (nothing is applied)."""
        self._hooks.extend((path_suffix, hook) for _ in range(times))

    def fail_next(self, path_suffix: str, status: int = 500, *, times: int = 1) -> None:
        body = {"error": _error("internal_error", "injected failure"), "status": status}
        self.on_next(path_suffix, lambda: _reply(status, body), times=times)

    def force_item(self, index: str, doc_id: str, status: int) -> None:
        """The next bulk item on this document answers ``status`` and is not applied."""
        self._forced[(index, doc_id)] = status

    # -- the transport ---------------------------------------------------------------------------

    async def request(
        self,
        method: str,
        path: str,
        *,
        headers: Mapping[str, str],
        body: bytes | None,
        timeout: float | None,
    ) -> UpstreamReply:
        self.requests.append((method, path))
        for i, (suffix, hook) in enumerate(self._hooks):
            if path.endswith(suffix):
                del self._hooks[i]
                reply = hook()
                if isinstance(reply, UpstreamReply):
                    return reply
                break
        if method == "POST" and path == "/_bulk":
            assert headers.get("Content-Type") == "application/x-ndjson"
            return self._bulk(body or b"")
        if method == "POST" and path == "/_mget":
            return self._mget_docs(orjson.loads(body or b"{}"))
        if method == "POST" and path.endswith("/_mget"):
            return self._mget(path.strip("/").split("/")[0], orjson.loads(body or b"{}"))
        if method == "GET" and path.endswith("/_mapping"):
            return self._mapping(path.strip("/").split("/")[0])
        return _reply(400, {"error": _error("unsupported", f"{method} {path}"), "status": 400})

    def _mapping(self, index: str) -> UpstreamReply:
        if index not in self.indices and index not in self.mappings:
            reason = f"no such index [{index}]"
            return _reply(404, {"error": _error("index_not_found_exception", reason)})
        return _reply(200, {index: {"mappings": self.mappings.get(index, {})}})

    def _mget(self, index: str, body: Mapping[str, Any]) -> UpstreamReply:
        if index not in self.indices:
            reason = f"no such index [{index}]"
            return _reply(404, {"error": _error("index_not_found_exception", reason)})
        docs = []
        for doc_id in body["ids"]:
            stored = self.indices[index].get(doc_id)
            if stored is None:
                docs.append({"_index": index, "_id": doc_id, "found": False})
            else:
                docs.append(
                    {
                        "_index": index,
                        "_id": doc_id,
                        "_seq_no": stored.seq_no,
                        "_primary_term": stored.primary_term,
                        "found": True,
                        "_source": copy.deepcopy(stored.source),
                    }
                )
        return _reply(200, {"docs": docs})

    def _mget_docs(self, body: Mapping[str, Any]) -> UpstreamReply:
        """``POST /_mget`` naming each document's index: a missing index errs on its own."""
        docs = []
        for wanted in body["docs"]:
            index, doc_id = wanted["_index"], wanted["_id"]
            if index not in self.indices:
                error = _error("index_not_found_exception", f"no such index [{index}]")
                docs.append({"_index": index, "_id": doc_id, "error": error})
                continue
            answer = orjson.loads(self._mget(index, {"ids": [doc_id]}).body)
            docs.extend(answer["docs"])
        return _reply(200, {"docs": docs})

    def _bulk(self, body: bytes) -> UpstreamReply:
        self.bulk_bodies.append(body)
        if not body.endswith(b"\n"):
            reason = "The bulk request must be terminated by a newline [\\n]"
            return _reply(400, {"error": _error("illegal_argument_exception", reason)})
        lines = iter(body.splitlines())
        items = []
        for line in lines:
            ((op, meta),) = orjson.loads(line).items()
            source = orjson.loads(next(lines)) if op in ("index", "create", "update") else None
            items.append({op: self._apply(op, meta, source)})
        errors = any(next(iter(item.values()))["status"] >= 300 for item in items)
        return _reply(200, {"took": 1, "errors": errors, "items": items})

    def _apply(
        self, op: str, meta: Mapping[str, Any], source: dict[str, Any] | None
    ) -> dict[str, Any]:
        index, doc_id = meta["_index"], meta["_id"]
        out: dict[str, Any] = {"_index": index, "_id": doc_id}
        forced = self._forced.pop((index, doc_id), None)
        if forced is None:  # forced on the log's alias: whichever day the document goes to
            forced = self._forced.pop((alias_of(index), doc_id), None)
        if forced is not None:
            return {**out, "status": forced, "error": _error("injected", "forced status")}
        docs = self.indices.setdefault(index, {})
        current = docs.get(doc_id)
        guarded = "if_seq_no" in meta or "if_primary_term" in meta
        if guarded and (
            current is None
            or current.seq_no != meta.get("if_seq_no")
            or current.primary_term != meta.get("if_primary_term")
        ):
            reason = f"[{doc_id}]: version conflict, required seqNo [{meta.get('if_seq_no')}]"
            error = _error("version_conflict_engine_exception", reason)
            return {**out, "status": 409, "error": error}
        if op == "create" and current is not None:
            reason = f"[{doc_id}]: version conflict, document already exists"
            error = _error("version_conflict_engine_exception", reason)
            return {**out, "status": 409, "error": error}
        if op == "delete":
            if current is None:
                return {**out, "status": 404, "result": "not_found"}
            del docs[doc_id]
            self.seq_no += 1
            return {**out, "status": 200, "result": "deleted", "_seq_no": self.seq_no}
        if op == "update":
            if current is None:
                error = _error("document_missing_exception", f"[{doc_id}]: document missing")
                return {**out, "status": 404, "error": error}
            assert source is not None
            if "script" in source:
                merged = capped_merge(current.source, source["script"]["params"])
            else:
                merged = deep_merge(current.source, source["doc"])
            if merged == current.source:
                return {**out, "status": 200, "result": "noop", "_seq_no": current.seq_no}
            source = merged
        assert source is not None
        seq_no = self.put(index, doc_id, source)
        created = current is None
        result = "created" if created else "updated"
        return {
            **out,
            "status": 201 if created else 200,
            "result": result,
            "_seq_no": seq_no,
            "_primary_term": self.primary_term,
        }
