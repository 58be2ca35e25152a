"""Read and write collections in the BEIR layout, failing loudly with ``file:line`` on bad input.

BEIR (corpus.jsonl, queries.jsonl, qrels/<split>.tsv) is the lingua franca of retrieval
benchmarks, so every dataset here, downloaded or derived, goes through this one loader. Real
copies are messy (headerless qrels, CRLF, judgments for documents that were dropped), so the
loader tolerates what is harmless, counts what is suspicious, and refuses what is ambiguous.
"""

from __future__ import annotations

import logging
import os
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

import orjson

from ltrr.plugin.errors import LtrrError

__all__ = ["BeirDataset", "Query", "read_beir", "write_beir"]

log = logging.getLogger(__name__)

QRELS_HEADER = ("query-id", "corpus-id", "score")


@dataclass(frozen=True, slots=True)
class Query:
    """One information need; ``meta`` keeps every extra field (intent, weight, ...) untouched
    so that derived benchmarks can carry their own labels through the standard layout."""

    id: str
    text: str
    meta: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # A read-only view: a frozen dataclass whose mapping can still be mutated is not frozen.
        object.__setattr__(self, "meta", MappingProxyType(dict(self.meta)))


@dataclass(frozen=True, slots=True)
class BeirDataset:
    """A loaded collection. Judgments with score <= 0 are kept: they mean "judged, not
    relevant", which differs from "never judged" for metrics such as bpref or judged@k."""

    corpus: list[dict[str, Any]]
    queries: dict[str, Query]
    qrels: dict[str, dict[str, int]]
    split: str
    path: Path
    unknown_query_refs: int = 0
    unknown_doc_refs: int = 0

    def summary(self) -> dict[str, Any]:
        """The numbers worth checking before trusting a benchmark run on this collection."""
        grades: Counter[int] = Counter()
        relevant: list[int] = []
        judged = 0
        for qid, judgments in self.qrels.items():
            grades.update(judgments.values())
            if qid in self.queries:
                judged += 1
                relevant.append(sum(1 for score in judgments.values() if score > 0))
        return {
            "documents": len(self.corpus),
            "queries": len(self.queries),
            "judged_queries": judged,
            "judgments_by_grade": {str(grade): grades[grade] for grade in sorted(grades)},
            "mean_relevant_per_judged_query": sum(relevant) / len(relevant) if relevant else 0.0,
            "unknown_query_refs": self.unknown_query_refs,
            "unknown_doc_refs": self.unknown_doc_refs,
        }


def read_beir(folder: Path, split: str | None = None) -> BeirDataset:
    """Load ``folder``; ``split`` defaults to ``test``, else the only qrels file there is."""
    folder = Path(folder)
    if not folder.is_dir():
        raise LtrrError(f"{folder} is not a folder; expected a BEIR dataset folder")
    for name in ("corpus.jsonl", "queries.jsonl"):
        if not (folder / name).is_file():
            raise LtrrError(f"{folder} is not a BEIR folder: {name} is missing")
    qrels_path = folder / "qrels" / f"{_choose_split(folder, split)}.tsv"
    corpus = _read_corpus(folder / "corpus.jsonl")
    queries = _read_queries(folder / "queries.jsonl")
    qrels = _read_qrels(qrels_path)
    doc_ids = {doc["_id"] for doc in corpus}
    unknown_queries = sum(len(j) for qid, j in qrels.items() if qid not in queries)
    unknown_docs = sum(1 for j in qrels.values() for did in j if did not in doc_ids)
    if unknown_queries or unknown_docs:
        log.warning(
            "%s: %d judgments name unknown queries, %d name unknown documents (kept, not fatal)",
            qrels_path,
            unknown_queries,
            unknown_docs,
        )
    return BeirDataset(
        corpus=corpus,
        queries=queries,
        qrels=qrels,
        split=qrels_path.stem,
        path=folder,
        unknown_query_refs=unknown_queries,
        unknown_doc_refs=unknown_docs,
    )


def write_beir(
    folder: Path,
    corpus: Iterable[Mapping[str, Any]],
    queries: Mapping[str, Query] | Iterable[Query],
    qrels: Mapping[str, Mapping[str, int]],
    split: str = "test",
) -> None:
    """Write the BEIR layout with sorted JSON keys and input order kept, so that the same
    input always gives the same bytes (derived benchmarks are checked by hash)."""
    folder = Path(folder)
    items = list(queries.values()) if isinstance(queries, Mapping) else list(queries)
    docs: list[bytes] = []
    seen: set[str] = set()
    for n, doc in enumerate(corpus, 1):
        doc_id = doc.get("_id")
        if not isinstance(doc_id, str) or not doc_id:
            raise LtrrError(f"document #{n} has no string _id; BEIR ids are strings")
        if doc_id in seen:
            raise LtrrError(f"document #{n}: duplicate _id {doc_id!r}")
        seen.add(doc_id)
        docs.append(orjson.dumps(dict(doc), option=orjson.OPT_SORT_KEYS))
    lines: list[bytes] = []
    for query in items:
        clash = {"_id", "text"} & set(query.meta)
        if clash:
            raise LtrrError(f"query {query.id!r}: meta may not redefine {sorted(clash)}")
        row = {**query.meta, "_id": query.id, "text": query.text}
        lines.append(orjson.dumps(row, option=orjson.OPT_SORT_KEYS))
    tsv = ["\t".join(QRELS_HEADER)]
    for qid, judgments in qrels.items():
        for did, score in judgments.items():
            if isinstance(score, bool) or not isinstance(score, int):
                raise LtrrError(f"qrels {qid!r}/{did!r}: score {score!r} is not an integer")
            tsv.append(f"{qid}\t{did}\t{score}")
    (folder / "qrels").mkdir(parents=True, exist_ok=True)
    _write_atomic(folder / "corpus.jsonl", b"".join(line + b"\n" for line in docs))
    _write_atomic(folder / "queries.jsonl", b"".join(line + b"\n" for line in lines))
    _write_atomic(folder / "qrels" / f"{split}.tsv", ("\n".join(tsv) + "\n").encode())


def _write_atomic(path: Path, data: bytes) -> None:
    # A reader never sees half a file, even if the build is interrupted.
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def _choose_split(folder: Path, split: str | None) -> str:
    qrels_dir = folder / "qrels"
    available = sorted(p.name for p in qrels_dir.glob("*.tsv")) if qrels_dir.is_dir() else []
    if split is not None:
        if (qrels_dir / f"{split}.tsv").is_file():
            return split
        raise LtrrError(
            f"{qrels_dir / (split + '.tsv')} is missing; qrels/ holds {available or 'nothing'}"
        )
    if "test.tsv" in available:
        return "test"
    if len(available) == 1:
        return available[0].removesuffix(".tsv")
    if not available:
        raise LtrrError(f"{folder} is not a BEIR folder: no qrels/*.tsv file")
    raise LtrrError(f"{qrels_dir} has no test.tsv and several splits; pick one of {available}")


def _lines(path: Path) -> Iterator[tuple[int, str]]:
    """Non-blank lines with their 1-based numbers, tolerant of CRLF and a UTF-8 BOM."""
    with path.open("rb") as f:
        for number, raw in enumerate(f, 1):
            try:
                line = raw.decode("utf-8-sig" if number == 1 else "utf-8")
            except UnicodeDecodeError as e:
                raise LtrrError(f"{path}:{number}: not UTF-8 ({e.reason})") from None
            line = line.rstrip("\r\n")
            if line.strip():
                yield number, line


def _json_rows(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    for number, line in _lines(path):
        try:
            row = orjson.loads(line)
        except orjson.JSONDecodeError as e:
            raise LtrrError(f"{path}:{number}: malformed JSON ({e})") from None
        if not isinstance(row, dict):
            raise LtrrError(f"{path}:{number}: expected a JSON object, got {type(row).__name__}")
        doc_id = row.get("_id")
        if isinstance(doc_id, int) and not isinstance(doc_id, bool):
            row["_id"] = doc_id = str(doc_id)  # some exports write numeric ids
        if not isinstance(doc_id, str) or not doc_id:
            raise LtrrError(f"{path}:{number}: line has no _id")
        yield number, row


def _read_corpus(path: Path) -> list[dict[str, Any]]:
    corpus: list[dict[str, Any]] = []
    seen: dict[str, int] = {}
    for number, row in _json_rows(path):
        doc_id = row["_id"]
        if doc_id in seen:
            raise LtrrError(
                f"{path}:{number}: duplicate document id {doc_id!r} (first on line {seen[doc_id]})"
            )
        seen[doc_id] = number
        for key in ("title", "text"):
            value = row.setdefault(key, "")
            if value is None:
                row[key] = ""
            elif not isinstance(value, str):
                raise LtrrError(f"{path}:{number}: {key} must be a string")
        corpus.append(row)
    return corpus


def _read_queries(path: Path) -> dict[str, Query]:
    queries: dict[str, Query] = {}
    lines: dict[str, int] = {}
    for number, row in _json_rows(path):
        qid = row.pop("_id")
        text = row.pop("text", None)
        if not isinstance(text, str):
            raise LtrrError(f"{path}:{number}: query {qid!r} has no text")
        if qid in queries:
            raise LtrrError(
                f"{path}:{number}: duplicate query id {qid!r} (first on line {lines[qid]})"
            )
        lines[qid] = number
        queries[qid] = Query(qid, text, row)
    return queries


def _read_qrels(path: Path) -> dict[str, dict[str, int]]:
    qrels: dict[str, dict[str, int]] = {}
    first = True
    for number, line in _lines(path):
        cells = line.split("\t")
        if first:
            first = False
            if not _is_int(cells[-1]):
                if tuple(cells) != QRELS_HEADER:
                    raise LtrrError(
                        f"{path}:{number}: header {line!r}; expected "
                        "'query-id<TAB>corpus-id<TAB>score' (or no header)"
                    )
                continue
        if len(cells) != 3:
            raise LtrrError(f"{path}:{number}: expected 3 tab-separated columns, got {len(cells)}")
        qid, did, score = (cell.strip() for cell in cells)
        if not _is_int(score):
            raise LtrrError(f"{path}:{number}: score {score!r} is not an integer")
        judgments = qrels.setdefault(qid, {})
        if did in judgments and judgments[did] != int(score):
            raise LtrrError(f"{path}:{number}: {qid}/{did} judged twice with different scores")
        judgments[did] = int(score)
    return qrels


def _is_int(cell: str) -> bool:
    text = cell.strip()
    return text.removeprefix("-").isdigit()
