"""read_beir / write_beir on small hand-written folders, and on the real CACM if present."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from ltrr.plugin.errors import LtrrError
from ltrr.plugin.ops.data.beir import BeirDataset, Query, read_beir, write_beir

CACM = (Path(__file__).parents[4] / "../shared/datasets/cacm").resolve()


def _folder(
    tmp_path: Path,
    *,
    corpus: str = '{"_id": "d1", "title": "A", "text": "x"}\n{"_id": "d2", "title": "B"}\n'
    '{"_id": "d3", "title": "C", "text": "z", "year": 1970}\n',
    queries: str = '{"_id": "q1", "text": "one", "intent": "topic", "weight": 0.5}\n'
    '{"_id": "q2", "text": "two"}\n{"_id": "q3", "text": "three"}\n',
    qrels: str | None = "query-id\tcorpus-id\tscore\nq1\td1\t2\nq1\td2\t0\nq2\td3\t1\n",
    split: str = "test",
) -> Path:
    tmp_path.mkdir(parents=True, exist_ok=True)
    (tmp_path / "corpus.jsonl").write_text(corpus)
    (tmp_path / "queries.jsonl").write_text(queries)
    if qrels is not None:
        (tmp_path / "qrels").mkdir(exist_ok=True)
        (tmp_path / "qrels" / f"{split}.tsv").write_text(qrels)
    return tmp_path


def test_reads_graded_qrels_and_keeps_extra_fields(tmp_path: Path) -> None:
    data = read_beir(_folder(tmp_path))
    assert data.split == "test"
    assert data.path == tmp_path
    assert [d["_id"] for d in data.corpus] == ["d1", "d2", "d3"]
    assert data.corpus[1] == {"_id": "d2", "title": "B", "text": ""}  # missing text -> ""
    assert data.corpus[2]["year"] == 1970
    assert data.queries["q1"] == Query("q1", "one", {"intent": "topic", "weight": 0.5})
    assert dict(data.queries["q2"].meta) == {}
    assert data.qrels == {"q1": {"d1": 2, "d2": 0}, "q2": {"d3": 1}}


def test_summary_counts_grades_and_relevant_per_judged_query(tmp_path: Path) -> None:
    summary = read_beir(_folder(tmp_path)).summary()
    # q1 has 1 relevant (d1=2; d2=0 is judged-not-relevant), q2 has 1: mean (1 + 1) / 2 = 1.0
    assert summary == {
        "documents": 3,
        "queries": 3,
        "judged_queries": 2,
        "judgments_by_grade": {"0": 1, "1": 1, "2": 1},
        "mean_relevant_per_judged_query": 1.0,
        "unknown_query_refs": 0,
        "unknown_doc_refs": 0,
    }


def test_headerless_binary_qrels_with_crlf(tmp_path: Path) -> None:
    data = read_beir(_folder(tmp_path, qrels="q1\td1\t1\r\nq1\td3\t1\r\n\r\nq3\td2\t1\r\n"))
    assert data.qrels == {"q1": {"d1": 1, "d3": 1}, "q3": {"d2": 1}}
    # relevant per judged query: q1 2, q3 1 -> (2 + 1) / 2 = 1.5
    assert data.summary()["mean_relevant_per_judged_query"] == 1.5


def test_unknown_references_are_counted_not_fatal(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    qrels = "query-id\tcorpus-id\tscore\nq1\td1\t1\nq9\td1\t1\nq9\td2\t1\nq2\td99\t1\n"
    with caplog.at_level(logging.WARNING):
        data = read_beir(_folder(tmp_path, qrels=qrels))
    # q9 is not a query (2 rows); d99 is not a document (1 row)
    assert (data.unknown_query_refs, data.unknown_doc_refs) == (2, 1)
    summary = data.summary()
    assert (summary["unknown_query_refs"], summary["unknown_doc_refs"]) == (2, 1)
    assert summary["judged_queries"] == 2  # q1, q2; q9 is no query
    assert "unknown" in caplog.text


def test_default_split_is_the_only_tsv(tmp_path: Path) -> None:
    assert read_beir(_folder(tmp_path, split="dev")).split == "dev"


def test_default_split_prefers_test(tmp_path: Path) -> None:
    folder = _folder(tmp_path)
    (folder / "qrels" / "dev.tsv").write_text("q2\td2\t1\n")
    assert read_beir(folder).qrels["q1"] == {"d1": 2, "d2": 0}
    assert read_beir(folder, "dev").qrels == {"q2": {"d2": 1}}


def test_ambiguous_split_lists_the_files(tmp_path: Path) -> None:
    folder = _folder(tmp_path, split="dev")
    (folder / "qrels" / "train.tsv").write_text("q2\td2\t1\n")
    with pytest.raises(LtrrError, match=r"\['dev.tsv', 'train.tsv'\]"):
        read_beir(folder)
    with pytest.raises(LtrrError, match=r"test.tsv is missing"):
        read_beir(folder, "test")


@pytest.mark.parametrize("name", ["corpus.jsonl", "queries.jsonl"])
def test_missing_file(tmp_path: Path, name: str) -> None:
    (_folder(tmp_path) / name).unlink()
    with pytest.raises(LtrrError, match=name):
        read_beir(tmp_path)


def test_missing_qrels(tmp_path: Path) -> None:
    with pytest.raises(LtrrError, match=r"no qrels"):
        read_beir(_folder(tmp_path, qrels=None))


def test_malformed_json_names_the_line(tmp_path: Path) -> None:
    corpus = '{"_id": "d1", "title": "A"}\n\n{"_id": "d2", "title": }\n'
    with pytest.raises(LtrrError, match=r"corpus.jsonl:3: malformed JSON"):
        read_beir(_folder(tmp_path, corpus=corpus))


def test_line_without_id(tmp_path: Path) -> None:
    queries = '{"_id": "q1", "text": "one"}\n{"text": "two"}\n'
    with pytest.raises(LtrrError, match=r"queries.jsonl:2: line has no _id"):
        read_beir(_folder(tmp_path, queries=queries))


def test_duplicate_document_id(tmp_path: Path) -> None:
    corpus = '{"_id": "d1"}\n{"_id": "d2"}\n{"_id": "d1"}\n'
    with pytest.raises(LtrrError, match=r"corpus.jsonl:3: duplicate document id 'd1'.*line 1"):
        read_beir(_folder(tmp_path, corpus=corpus))


def test_bad_header(tmp_path: Path) -> None:
    with pytest.raises(LtrrError, match=r"test.tsv:1: header"):
        read_beir(_folder(tmp_path, qrels="qid\tdocid\trel\nq1\td1\t1\n"))


def test_non_integer_score(tmp_path: Path) -> None:
    qrels = "query-id\tcorpus-id\tscore\nq1\td1\t1\nq1\td2\t0.5\n"
    with pytest.raises(LtrrError, match=r"test.tsv:3: score '0.5' is not an integer"):
        read_beir(_folder(tmp_path, qrels=qrels))


def test_wrong_column_count(tmp_path: Path) -> None:
    with pytest.raises(LtrrError, match=r"test.tsv:2: expected 3"):
        read_beir(_folder(tmp_path, qrels="q1\td1\t1\nq1\tQ0\td2\t1\n"))


def test_round_trip_is_byte_stable(tmp_path: Path) -> None:
    data = read_beir(_folder(tmp_path / "a"))
    write_beir(tmp_path / "b", data.corpus, data.queries, data.qrels)
    again = read_beir(tmp_path / "b")
    assert again.corpus == data.corpus
    assert again.queries == data.queries
    assert again.qrels == data.qrels
    write_beir(tmp_path / "c", again.corpus, again.queries.values(), again.qrels, split="dev")
    for name in ("corpus.jsonl", "queries.jsonl"):
        assert (tmp_path / "b" / name).read_bytes() == (tmp_path / "c" / name).read_bytes()
    assert (tmp_path / "b" / "qrels" / "test.tsv").read_bytes() == (
        tmp_path / "c" / "qrels" / "dev.tsv"
    ).read_bytes()


def test_write_layout_sorted_keys_and_header(tmp_path: Path) -> None:
    write_beir(
        tmp_path,
        [{"text": "t", "_id": "d1", "title": "T"}],
        [Query("q1", "hello", {"weight": 1.0, "intent": "head"})],
        {"q1": {"d1": 3}},
    )
    assert (tmp_path / "corpus.jsonl").read_bytes() == b'{"_id":"d1","text":"t","title":"T"}\n'
    assert (tmp_path / "queries.jsonl").read_bytes() == (
        b'{"_id":"q1","intent":"head","text":"hello","weight":1.0}\n'
    )
    assert (
        tmp_path / "qrels" / "test.tsv"
    ).read_text() == "query-id\tcorpus-id\tscore\nq1\td1\t3\n"


def test_write_rejects_duplicate_ids(tmp_path: Path) -> None:
    with pytest.raises(LtrrError, match=r"duplicate _id 'd1'"):
        write_beir(tmp_path, [{"_id": "d1"}, {"_id": "d1"}], [], {})


def test_query_meta_is_read_only() -> None:
    meta = {"intent": "entity"}
    query = Query("q", "t", meta)
    meta["intent"] = "topic"
    assert query.meta["intent"] == "entity"
    with pytest.raises(TypeError):
        query.meta["intent"] = "x"  # type: ignore[index]


@pytest.mark.skipif(not CACM.is_dir(), reason=f"{CACM} not present beside the repository")
def test_real_cacm() -> None:
    data = read_beir(CACM)
    assert isinstance(data, BeirDataset)
    # Counted with shell tools: wc -l corpus.jsonl -> 3204; wc -l queries.jsonl -> 64;
    # tail -n +2 qrels/test.tsv | cut -f1 | sort -u | wc -l -> 52; 797 lines - header = 796.
    summary = data.summary()
    assert summary["documents"] == 3204
    assert summary["queries"] == 64
    assert summary["judged_queries"] == 52
    assert summary["judgments_by_grade"] == {"1": 796}
    assert summary["unknown_query_refs"] == summary["unknown_doc_refs"] == 0
