"""build_music on a tiny hand-made HetRec folder (and zip), the name variants, and the real data."""

from __future__ import annotations

import random
import zipfile
from pathlib import Path

import orjson
import pytest

from ltrr.plugin.errors import LtrrError
from ltrr.plugin.ops.data.beir import read_beir
from ltrr.plugin.ops.data.music import (
    QWERTY_NEIGHBOURS,
    MusicConfig,
    build_music,
    misspell,
    normalise,
    partial_name,
)

REAL = (Path(__file__).parents[4] / "../shared/datasets/lastfm-hetrec2k").resolve()
OUTPUTS = ("corpus.jsonl", "queries.jsonl", "qrels/test.tsv", "music.json")

# Artist 6 has no plays, 77 is an orphan, tag 99 is unknown; "Abba" and "ABBA!" collide.
ARTISTS = (
    "id\tname\turl\tpictureURL\n"
    "1\tThe Rolling Stones\thttp://x/1\thttp://p/1\n"
    "2\tBjörk\thttp://x/2\thttp://p/2\n"
    "3\tAbba\thttp://x/3\thttp://p/3\n"
    "4\tABBA!\thttp://x/4\thttp://p/4\n"
    "5\tMuse\thttp://x/5\thttp://p/5\n"
    "6\tSilent One\thttp://x/6\thttp://p/6\n"
)
TAGS = "tagID\ttagValue\r\n1\trock\r\n2\télectronique\r\n3\tindie\r\n4\tpop\r\n"
PLAYS = (
    "userID\tartistID\tweight\r\n"
    "1\t1\t100\r\n2\t1\t50\r\n1\t2\t30\r\n3\t2\t10\r\n1\t3\t5\r\n2\t4\t7\r\n3\t5\t64\r\n"
    "3\t99\t12\r\n"
)
TAGGINGS = "userID\tartistID\ttagID\tday\tmonth\tyear\n" + "".join(
    f"{u}\t{a}\t{t}\t{d}\t1\t2009\n"
    for u, a, t, d in [
        (1, 1, 1, 1), (2, 1, 1, 1), (3, 1, 1, 1), (4, 1, 1, 1),  # rock on 1: 4 users
        (1, 1, 3, 1), (2, 1, 3, 1),  # indie on 1: 2 users
        (1, 1, 4, 1),  # pop on 1: 1 user
        (1, 2, 2, 1), (2, 2, 2, 1), (3, 2, 2, 1),  # électronique on 2: 3 users
        (1, 2, 1, 1), (2, 2, 1, 1),  # rock on 2: 2 users
        (3, 2, 3, 1),  # indie on 2: 1 user
        (1, 3, 4, 1), (2, 3, 3, 1),  # pop, indie on 3: 1 user each (tie -> tag id)
        (5, 5, 1, 1), (5, 5, 1, 2), (6, 5, 1, 1),  # rock on 5: 3 rows, 2 distinct users
        (5, 5, 2, 1),  # électronique on 5: 1 user
        (1, 6, 1, 1),  # artist without plays
        (1, 77, 1, 1),  # orphan: artist 77 is not in artists.dat
        (1, 1, 99, 1),  # unknown tag
    ]
)  # fmt: skip

SMALL = MusicConfig(
    top_tags=2,
    entity_queries=10,
    topic_queries=5,
    head_queries=2,
    misspelled_share=0.0,
    partial_share=0.0,
    min_topic_artists=1,
    grade_thresholds=(2, 3, 4),
)


def _hetrec(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "artists.dat").write_bytes(ARTISTS.encode("utf-8"))
    (folder / "tags.dat").write_bytes(TAGS.encode("latin-1"))
    (folder / "user_artists.dat").write_bytes(PLAYS.encode())
    (folder / "user_taggedartists.dat").write_bytes(TAGGINGS.encode())
    return folder


def test_documents_tags_and_popularity(tmp_path: Path) -> None:
    summary = build_music(_hetrec(tmp_path / "src"), tmp_path / "out", config=SMALL)
    data = read_beir(tmp_path / "out")
    docs = {d["_id"]: d for d in data.corpus}
    assert list(docs) == ["1", "2", "3", "4", "5"]  # 6 has no plays
    # 1: plays 100 + 50, users {1, 2}; rock 4 users > indie 2 > pop 1
    assert docs["1"] == {
        "_id": "1",
        "name": "The Rolling Stones",
        "title": "The Rolling Stones",
        "tags": ["rock", "indie"],
        "text": "rock, indie",
        "popularity": 150,
        "listeners": 2,
    }
    # 2: 30 + 10 plays; électronique 3 users > rock 2 > indie 1; Latin-1 decoded
    assert (docs["2"]["tags"], docs["2"]["popularity"], docs["2"]["listeners"]) == (
        ["électronique", "rock"],
        40,
        2,
    )
    assert docs["3"]["tags"] == ["indie", "pop"]  # 1 user each: tag id 3 before 4
    assert (docs["4"]["tags"], docs["4"]["text"], docs["4"]["popularity"]) == ([], "", 7)
    # 5: rock by users 5 (twice) and 6 = 2 distinct users > électronique 1
    assert (docs["5"]["tags"], docs["5"]["popularity"]) == (["rock", "électronique"], 64)
    assert summary["documents"] == 5
    assert summary["skipped"] == {
        "artists_without_plays": 1,
        "entity_names_colliding": 2,  # Abba, ABBA!
        "entity_names_empty": 0,
        "play_rows_unknown_artist": 1,
        "tag_rows_artist_without_plays": 1,
        "tag_rows_unknown_artist": 1,
        "tag_rows_unknown_tag": 1,
    }
    assert summary["source"]["tags.dat"]["encoding"] == "latin-1"
    assert summary["source"]["tags.dat"]["line_endings"] == "crlf"
    assert summary["source"]["user_taggedartists.dat"]["rows"] == 22


def test_queries_grades_and_weights(tmp_path: Path) -> None:
    summary = build_music(_hetrec(tmp_path / "src"), tmp_path / "out", config=SMALL)
    data = read_beir(tmp_path / "out")
    q = data.queries
    entity = {qid: x for qid, x in q.items() if x.meta["intent"] == "entity"}
    # Unique names: 1, 2, 5 (3 and 4 collide); all three drawn, none altered (shares 0).
    assert sorted(x.text for x in entity.values()) == ["Björk", "Muse", "The Rolling Stones"]
    for qid, x in entity.items():
        assert x.meta["variant"] == "exact"
        assert data.qrels[qid] == {x.meta["artist_id"]: 3}  # entity_grade: the top grade
    # Grades with thresholds (2, 3, 4): rock 1 <- 4 users -> 3; 2 <- 2 -> 1; 5 <- 2 -> 1.
    topics = {x.text: data.qrels[qid] for qid, x in q.items() if x.meta["intent"] == "topic"}
    assert topics == {
        "rock": {"1": 3, "2": 1, "5": 1},
        "électronique": {"2": 2},  # 3 users on 2; 1 user on 5 is not relevant
        "indie": {"1": 1},  # pop has no artist with 2 users: no topic
    }
    head = [(qid, x) for qid, x in q.items() if x.meta["intent"] == "head"]
    # Most played unique name: 1 (150). Most used tag: rock, 4 + 2 + 3 = 9 rows.
    assert [(qid, x.text, x.meta["source_intent"]) for qid, x in head] == [
        ("head-1", "The Rolling Stones", "entity"),
        ("head-2", "rock", "topic"),
    ]
    assert data.qrels["head-1"] == {"1": 3}
    assert data.qrels["head-2"] == {"1": 3, "2": 1, "5": 1}
    # Traffic: head 0.4 / 2; entity 0.6 * 0.6 / 3; topic 0.6 * 0.4 / 3.
    weight = {x.meta["intent"]: x.meta["weight"] for x in q.values()}
    assert weight == {"head": 0.2, "entity": 0.12, "topic": 0.08}
    assert summary["queries_by_intent"] == {"entity": 3, "topic": 3, "head": 2}
    # grade 1: rock 2 + indie 1 + head rock 2 = 5; grade 2: électronique 1;
    # grade 3: entity 3 + head artist 1 (entity_grade) + rock on 1, topic and head 2 = 6
    assert summary["judgments_by_grade"] == {"1": 5, "2": 1, "3": 6}


def test_music_json_matches_the_return_value(tmp_path: Path) -> None:
    summary = build_music(_hetrec(tmp_path / "src"), tmp_path / "out", seed=5, config=SMALL)
    assert orjson.loads((tmp_path / "out" / "music.json").read_bytes()) == summary
    assert summary["seed"] == 5
    assert summary["config"]["grade_thresholds"] == [2, 3, 4]


def test_same_seed_same_bytes(tmp_path: Path) -> None:
    source = _hetrec(tmp_path / "src")
    config = MusicConfig(entity_queries=3, min_topic_artists=1, misspelled_share=0.5)
    build_music(source, tmp_path / "a", seed=7, config=config)
    build_music(source, tmp_path / "b", seed=7, config=config)
    for name in OUTPUTS:
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()


@pytest.mark.parametrize("inner", ["", "hetrec2011-lastfm-2k/"])
def test_zip_reads_in_place_and_gives_the_same_bytes(tmp_path: Path, inner: str) -> None:
    source = _hetrec(tmp_path / "src")
    archive = tmp_path / "hetrec2011-lastfm-2k.zip"
    with zipfile.ZipFile(archive, "w") as z:
        for path in sorted(source.iterdir()):
            z.write(path, inner + path.name)
    build_music(source, tmp_path / "from-folder", config=SMALL)
    build_music(archive, tmp_path / "from-zip", config=SMALL)
    for name in OUTPUTS:
        folder_bytes = (tmp_path / "from-folder" / name).read_bytes()
        assert folder_bytes == (tmp_path / "from-zip" / name).read_bytes()


def test_missing_file_and_bad_rows(tmp_path: Path) -> None:
    source = _hetrec(tmp_path / "src")
    (source / "tags.dat").unlink()
    with pytest.raises(LtrrError, match=r"tags.dat is missing"):
        build_music(source, tmp_path / "out")
    _hetrec(source)
    (source / "user_artists.dat").write_text("userID\tartistID\tweight\n1\t1\t3\n1\t2\n")
    with pytest.raises(LtrrError, match=r"user_artists.dat:3: 2 tab-separated columns"):
        build_music(source, tmp_path / "out")
    (source / "user_artists.dat").write_text("user\tartist\tplays\n1\t1\t3\n")
    with pytest.raises(LtrrError, match=r"user_artists.dat:1: header"):
        build_music(source, tmp_path / "out")
    with pytest.raises(LtrrError, match=r"expected the HetRec"):
        build_music(tmp_path / "nowhere", tmp_path / "out")


@pytest.mark.parametrize(
    "bad",
    [
        {"misspelled_share": 0.8, "partial_share": 0.3},
        {"head_traffic": 1.5},
        {"grade_thresholds": (2, 2, 15)},
        {"top_tags": 0},
        {"entity_queries": -1},
    ],
)
def test_config_is_validated(bad: dict[str, object]) -> None:
    with pytest.raises(LtrrError, match=r"MusicConfig"):
        MusicConfig(**bad)  # type: ignore[arg-type]


def _osa_distance(a: str, b: str) -> int:
    """Edit distance with adjacent transpositions (optimal string alignment)."""
    d = [[i + j if i * j == 0 else 0 for j in range(len(b) + 1)] for i in range(len(a) + 1)]
    for i in range(1, len(a) + 1):
        for j in range(1, len(b) + 1):
            cost = a[i - 1] != b[j - 1]
            d[i][j] = min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost)
            if i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                d[i][j] = min(d[i][j], d[i - 2][j - 2] + 1)
    return d[len(a)][len(b)]


@pytest.mark.parametrize("name", ["Metallica", "Abba", "Pink Floyd", "Sigur Rós", "AC/DC Live"])
def test_misspelling_is_one_edit_after_the_first_character(name: str) -> None:
    lengths = set()
    for seed in range(60):
        typo = misspell(name, random.Random(seed))
        assert typo != name
        assert typo[0] == name[0]
        assert _osa_distance(name, typo) == 1, typo
        lengths.add(len(typo) - len(name))
    assert lengths == {-1, 0, 1}  # deletion; substitution or transposition; doubling


def test_misspelling_is_deterministic_per_seed() -> None:
    names = ["Metallica", "Radiohead", "Depeche Mode", "Sigur Rós"]
    first = [misspell(n, random.Random(3)) for n in names]
    assert first == [misspell(n, random.Random(3)) for n in names]
    many = {misspell("Radiohead", random.Random(seed)) for seed in range(20)}
    assert len(many) > 1  # the seed matters


@pytest.mark.parametrize("name", ["U2", "Air", "ABC", "M.I.A"])
def test_short_names_are_not_misspelt(name: str) -> None:
    assert misspell(name, random.Random(1)) == name  # fewer than 4 letters


def test_qwerty_neighbours_by_hand() -> None:
    # s: row a-s-d, above w e, below z x; q: w, below a; m: n, above j k
    assert set(QWERTY_NEIGHBOURS["s"]) == set("adwezx")
    assert set(QWERTY_NEIGHBOURS["q"]) == set("wa")
    assert set(QWERTY_NEIGHBOURS["m"]) == set("njk")


def test_substitution_keeps_case_and_uses_a_neighbour() -> None:
    for seed in range(200):
        typo = misspell("ZZZZ", random.Random(seed))
        if len(typo) == 4 and typo != "ZZZZ":  # only substitution keeps the length here
            changed = [c for c, o in zip(typo, "ZZZZ", strict=True) if c != o]
            assert len(changed) == 1
            assert changed[0] in "ASX"  # z's neighbours, upper-cased


def test_partial_names() -> None:
    rng = random.Random(0)
    assert partial_name("The Beatles", rng) == "Beatles"
    assert partial_name("The Alan Parsons Project", rng) == "Alan Parsons Project"
    assert partial_name("Pink Floyd", rng) == "Floyd"  # Floyd 5 letters > Pink 4
    assert partial_name("Daft Punk", rng) == "Daft"  # tie: the first
    assert partial_name("Muse", rng) is None
    seen = {partial_name("Red Hot Chili Peppers", random.Random(s)) for s in range(30)}
    assert seen == {"Peppers", "Red Hot"}


def test_normalise() -> None:
    assert (
        normalise("Panic! At the  Disco") == normalise("Panic at the Disco") == "panic at the disco"
    )
    assert normalise("\uff32\uff25\uff24") == "red"  # full-width R E D
    assert normalise("!!!") == ""


@pytest.mark.skipif(not REAL.is_dir(), reason=f"{REAL} not present beside the repository")
def test_real_lastfm(tmp_path: Path) -> None:
    summary = build_music(REAL, tmp_path / "music")
    # awk -F'\t' 'NR>1{print $2}' user_artists.dat | sort -u | wc -l -> 17632, and
    # artists.dat has 17633 lines - 1 header = 17632: every artist has plays.
    assert summary["documents"] == 17632
    assert summary["skipped"]["tag_rows_unknown_artist"] == 1538  # PROVENANCE.md
    assert summary["skipped"]["artists_without_plays"] == 0
    by_intent = summary["queries_by_intent"]
    assert by_intent["entity"] == 1500
    assert by_intent["topic"] > 0
    assert by_intent["head"] == 40
    # 0.3 * 1500 = 450 misspelt, 0.15 * 1500 = 225 partial
    assert summary["entity_variants"] == {"exact": 825, "misspelt": 450, "partial": 225}
    data = read_beir(tmp_path / "music")
    assert data.unknown_doc_refs == data.unknown_query_refs == 0
    assert all(doc["popularity"] >= 1 for doc in data.corpus)
    total = sum(x.meta["weight"] for x in data.queries.values())
    assert total == pytest.approx(1.0)
