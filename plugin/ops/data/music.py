"""A music-search benchmark derived from HetRec 2011 Last.fm 2K, in the BEIR layout.

Last.fm 2K has artists, user tags and play counts but no queries. Music search traffic is a mix
of intents that want different retrieval arms: people type (often misspelt or partial) artist
names, browse by genre-like tags, and a popular head repeats all day. The builder derives one
query set per intent with judgments that follow from the data itself, so that a router that
learns "which arm for which query" has something real to learn. See README.md beside this file.
"""

from __future__ import annotations

import hashlib
import math
import random
import re
import unicodedata
import zipfile
from collections import Counter, defaultdict
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import orjson

from ltrr.plugin.errors import LtrrError
from ltrr.plugin.ops.data.beir import Query, write_beir

__all__ = ["MusicConfig", "build_music", "misspell", "normalise", "partial_name"]

# The files the derivation reads, with the header each must start with.
SOURCE_FILES: dict[str, tuple[str, ...]] = {
    "artists.dat": ("id", "name", "url", "pictureURL"),
    "tags.dat": ("tagID", "tagValue"),
    "user_artists.dat": ("userID", "artistID", "weight"),
    "user_taggedartists.dat": ("userID", "artistID", "tagID", "day", "month", "year"),
}

_QWERTY_ROWS = ("qwertyuiop", "asdfghjkl", "zxcvbnm")


def _qwerty_neighbours() -> dict[str, str]:
    # Staggered rows: a key touches its row neighbours, keys i and i+1 of the row above and
    # keys i-1 and i of the row below (s: a d / w e / z x).
    out: dict[str, str] = {}
    for r, row in enumerate(_QWERTY_ROWS):
        for i, key in enumerate(row):
            near = [row[j] for j in (i - 1, i + 1) if 0 <= j < len(row)]
            if r > 0:
                above = _QWERTY_ROWS[r - 1]
                near += [above[j] for j in (i, i + 1) if 0 <= j < len(above)]
            if r < len(_QWERTY_ROWS) - 1:
                below = _QWERTY_ROWS[r + 1]
                near += [below[j] for j in (i - 1, i) if 0 <= j < len(below)]
            out[key] = "".join(near)
    return out


QWERTY_NEIGHBOURS = _qwerty_neighbours()


@dataclass(frozen=True, slots=True)
class MusicConfig:
    """Knobs of the derivation; defaults are the published benchmark, so change them only to
    study a variant and keep the resulting ``music.json`` beside any result."""

    top_tags: int = 5
    entity_queries: int = 1500
    topic_queries: int = 300
    head_queries: int = 40
    popularity_exponent: float = 0.5
    misspelled_share: float = 0.3
    partial_share: float = 0.15
    min_topic_artists: int = 30
    # Users needed for grades 1, 2, 3; fewer than the first means "not relevant".
    grade_thresholds: tuple[int, int, int] = (2, 5, 15)
    # The artist a name query looks for is the perfect answer, so it gets the top grade: on a
    # graded click model a name query then earns as much as a topic's best hit.
    entity_grade: int = 3
    head_traffic: float = 0.4
    entity_traffic_share: float = 0.6

    def __post_init__(self) -> None:
        for name in ("top_tags", "entity_queries", "topic_queries", "head_queries"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise LtrrError(f"MusicConfig.{name} must be an integer >= 0, got {value!r}")
        if self.top_tags < 1:
            raise LtrrError("MusicConfig.top_tags must be >= 1: documents need some metadata")
        if not 1 <= self.entity_grade <= 3:
            raise LtrrError("MusicConfig.entity_grade must be 1, 2 or 3")
        if self.min_topic_artists < 1:
            raise LtrrError("MusicConfig.min_topic_artists must be >= 1")
        if not 0 <= self.popularity_exponent <= 4:
            raise LtrrError("MusicConfig.popularity_exponent must be in [0, 4]")
        for name in ("misspelled_share", "partial_share", "head_traffic", "entity_traffic_share"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise LtrrError(f"MusicConfig.{name} must be in [0, 1]")
        if self.misspelled_share + self.partial_share > 1.0:
            raise LtrrError("MusicConfig: misspelled_share + partial_share must be <= 1")
        low, mid, high = self.grade_thresholds
        if not 1 <= low < mid < high:
            raise LtrrError(
                f"MusicConfig.grade_thresholds must rise strictly from >= 1, got "
                f"{self.grade_thresholds}"
            )


def normalise(name: str) -> str:
    """The form two names must share to be "the same name" to a searcher: case, width,
    punctuation and spacing do not tell artists apart when typed into a box."""
    text = unicodedata.normalize("NFKC", name).casefold()
    return " ".join("".join(c if c.isalnum() else " " for c in text).split())


def misspell(name: str, rng: random.Random) -> str:
    """One realistic typing error, never on the first character (people get that one right);
    names with fewer than 4 letters come back unchanged, since one edit would make them
    another word rather than a typo."""
    return _misspell(name, rng)[0]


def _misspell(name: str, rng: random.Random) -> tuple[str, str]:
    if sum(c.isalpha() for c in name) < 4:
        return name, "none"
    letters = [i for i in range(1, len(name)) if name[i].isalpha()]
    options: dict[str, list[int]] = {
        "substitution": [i for i in letters if name[i].lower() in QWERTY_NEIGHBOURS],
        "deletion": letters,
        "transposition": [
            i
            for i in letters
            if i + 1 < len(name)
            and name[i + 1].isalpha()
            and name[i].casefold() != name[i + 1].casefold()
        ],
        "doubling": letters,
    }
    kinds = [kind for kind, places in options.items() if places]
    kind = rng.choice(kinds)
    i = rng.choice(options[kind])
    if kind == "substitution":
        new = rng.choice(QWERTY_NEIGHBOURS[name[i].lower()])
        return name[:i] + (new.upper() if name[i].isupper() else new) + name[i + 1 :], kind
    if kind == "deletion":
        return name[:i] + name[i + 1 :], kind
    if kind == "transposition":
        return name[:i] + name[i + 1] + name[i] + name[i + 2 :], kind
    return name[: i + 1] + name[i] + name[i + 1 :], kind


def partial_name(name: str, rng: random.Random) -> str | None:
    """What people type when they remember only part of a name: without a leading "The",
    else the longest word or the first two words. ``None`` for one-word names."""
    words = name.split()
    if len(words) < 2:
        return None
    if words[0].casefold() == "the":
        return " ".join(words[1:])
    longest = max(words, key=len)  # the first of equally long words
    if len(words) >= 3 and rng.random() < 0.5:
        return " ".join(words[:2])
    return longest


@dataclass(frozen=True, slots=True)
class _Source:
    tables: dict[str, list[list[str]]]
    files: dict[str, dict[str, Any]]


def _read_source(source: Path) -> _Source:
    """The four tables from a folder or the official zip (read in place), each decoded as
    UTF-8 if it is valid UTF-8 and as Latin-1 otherwise (tags.dat), with any line ending."""
    raw: dict[str, bytes] = {}
    if source.is_dir():
        for name in SOURCE_FILES:
            if not (source / name).is_file():
                raise LtrrError(f"{source} is not a HetRec Last.fm 2K folder: {name} is missing")
            raw[name] = (source / name).read_bytes()
    elif source.is_file() and zipfile.is_zipfile(source):
        with zipfile.ZipFile(source) as archive:
            members = {Path(n).name: n for n in archive.namelist() if not n.endswith("/")}
            for name in SOURCE_FILES:
                if name not in members:
                    raise LtrrError(f"{source}: the archive has no {name}")
                raw[name] = archive.read(members[name])
    else:
        raise LtrrError(
            f"{source}: expected the HetRec Last.fm 2K folder or hetrec2011-lastfm-2k.zip"
        )
    tables: dict[str, list[list[str]]] = {}
    files: dict[str, dict[str, Any]] = {}
    for name, header in SOURCE_FILES.items():
        data = raw[name]
        try:
            text, encoding = data.decode("utf-8-sig"), "utf-8"
        except UnicodeDecodeError:
            text, encoding = data.decode("latin-1"), "latin-1"
        rows = _parse_table(name, text, header)
        tables[name] = rows
        files[name] = {
            "sha256": hashlib.sha256(data).hexdigest(),
            "rows": len(rows),
            "encoding": encoding,
            "line_endings": "crlf" if b"\r\n" in data else "lf",
        }
    return _Source(tables, files)


def _parse_table(name: str, text: str, header: tuple[str, ...]) -> list[list[str]]:
    lines = re.split(r"\r\n|\r|\n", text)
    if tuple(lines[0].split("\t")) != header:
        raise LtrrError(f"{name}:1: header {lines[0]!r}; expected {chr(9).join(header)!r}")
    rows: list[list[str]] = []
    for number, line in enumerate(lines[1:], 2):
        if not line.strip():
            continue
        cells = line.split("\t")
        if len(cells) != len(header):
            raise LtrrError(
                f"{name}:{number}: {len(cells)} tab-separated columns, expected {len(header)}"
            )
        rows.append(cells)
    return rows


def _ints(name: str, row: list[str], columns: int) -> list[int]:
    try:
        return [int(cell) for cell in row[:columns]]
    except ValueError:
        raise LtrrError(f"{name}: row {row!r} has a non-integer id or count") from None


def build_music(
    source: Path, out: Path, *, seed: int = 13, config: MusicConfig = MusicConfig()
) -> dict[str, Any]:
    """Derive the benchmark from ``source`` into ``out``; the same seed and source always give
    the same bytes, and ``out/music.json`` records how they were made."""
    rng = random.Random(seed)
    src = _read_source(Path(source))
    skipped: Counter[str] = Counter()

    names = {row[0]: row[1] for row in src.tables["artists.dat"]}
    tag_values = {row[0]: row[1] for row in src.tables["tags.dat"]}

    plays: Counter[str] = Counter()
    listeners: defaultdict[str, set[str]] = defaultdict(set)
    for row in src.tables["user_artists.dat"]:
        weight = _ints("user_artists.dat", row, 3)[2]
        if row[1] not in names:
            skipped["play_rows_unknown_artist"] += 1
            continue
        if weight < 0:
            raise LtrrError(f"user_artists.dat: negative play count in {row!r}")
        plays[row[1]] += weight
        listeners[row[1]].add(row[0])
    artists = sorted((a for a in names if plays[a] >= 1), key=int)
    skipped["artists_without_plays"] = len(names) - len(artists)
    known = set(artists)

    users_of: defaultdict[tuple[str, str], set[str]] = defaultdict(set)
    tag_rows: Counter[str] = Counter()
    for row in src.tables["user_taggedartists.dat"]:
        _ints("user_taggedartists.dat", row, 3)
        user, artist, tag = row[0], row[1], row[2]
        if artist not in names:
            skipped["tag_rows_unknown_artist"] += 1
        elif artist not in known:
            skipped["tag_rows_artist_without_plays"] += 1
        elif tag not in tag_values:
            skipped["tag_rows_unknown_tag"] += 1
        else:
            users_of[(artist, tag)].add(user)
            tag_rows[tag] += 1
    tags_of: defaultdict[str, list[tuple[int, int, str]]] = defaultdict(list)
    for (artist, tag), users in users_of.items():
        tags_of[artist].append((-len(users), int(tag), tag))

    corpus: list[dict[str, Any]] = []
    for artist in artists:
        top = [tag_values[t] for _, _, t in sorted(tags_of[artist])[: config.top_tags]]
        corpus.append(
            {
                "_id": artist,
                "name": names[artist],
                "title": names[artist],
                "text": ", ".join(top),
                "tags": top,
                "popularity": plays[artist],
                "listeners": len(listeners[artist]),
            }
        )

    # Names a searcher cannot tell apart are no fair "find this artist" query.
    by_name: defaultdict[str, list[str]] = defaultdict(list)
    for artist in artists:
        by_name[normalise(names[artist])].append(artist)
    unique = [a for a in artists if normalise(names[a]) and len(by_name[normalise(names[a])]) == 1]
    skipped["entity_names_empty"] = len(by_name.get("", []))
    skipped["entity_names_colliding"] = len(artists) - len(unique) - skipped["entity_names_empty"]
    taken = set(by_name)

    low = config.grade_thresholds[0]
    relevant: defaultdict[str, dict[str, int]] = defaultdict(dict)
    for (artist, tag), users in users_of.items():
        if len(users) >= low:
            relevant[tag][artist] = _grade(len(users), config.grade_thresholds)
    topical = sorted((t for t in relevant if len(relevant[t]) >= config.min_topic_artists), key=int)

    entity = _entity_queries(unique, names, plays, taken, rng, config)
    topics = sorted(rng.sample(topical, min(config.topic_queries, len(topical))), key=int)
    head_artists = sorted(unique, key=lambda a: (-plays[a], int(a)))[: config.head_queries // 2]
    head_tags = sorted(topical, key=lambda t: (-tag_rows[t], int(t)))[
        : config.head_queries - len(head_artists)
    ]

    weights = _weights(len(entity), len(topics), len(head_artists) + len(head_tags), config)
    queries: list[Query] = []
    qrels: dict[str, dict[str, int]] = {}
    width = len(str(max(len(entity), len(topics), config.head_queries, 1)))
    for n, (artist, text, variant, edit) in enumerate(entity, 1):
        qid = f"entity-{n:0{width}d}"
        meta: dict[str, Any] = {"intent": "entity", "weight": weights["entity"]}
        meta |= {"artist_id": artist, "name": names[artist], "variant": variant}
        if edit:
            meta["edit"] = edit
        queries.append(Query(qid, text, meta))
        qrels[qid] = {artist: config.entity_grade}
    for n, tag in enumerate(topics, 1):
        qid = f"topic-{n:0{width}d}"
        meta = {"intent": "topic", "weight": weights["topic"], "tag_id": tag}
        queries.append(Query(qid, tag_values[tag], meta))
        qrels[qid] = dict(sorted(relevant[tag].items(), key=lambda kv: int(kv[0])))
    for n, artist in enumerate(head_artists, 1):
        qid = f"head-{n:0{width}d}"
        meta = {"intent": "head", "weight": weights["head"], "source_intent": "entity"}
        meta |= {"artist_id": artist, "name": names[artist], "variant": "exact"}
        queries.append(Query(qid, names[artist], meta))
        qrels[qid] = {artist: config.entity_grade}
    for n, tag in enumerate(head_tags, len(head_artists) + 1):
        qid = f"head-{n:0{width}d}"
        meta = {"intent": "head", "weight": weights["head"], "source_intent": "topic"}
        meta["tag_id"] = tag
        queries.append(Query(qid, tag_values[tag], meta))
        qrels[qid] = dict(sorted(relevant[tag].items(), key=lambda kv: int(kv[0])))

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    write_beir(out, corpus, queries, qrels)
    grades = Counter(score for judged in qrels.values() for score in judged.values())
    variants = Counter(q.meta["variant"] for q in queries if q.meta["intent"] == "entity")
    summary: dict[str, Any] = {
        "seed": seed,
        "config": asdict(config),
        "source": src.files,
        "skipped": dict(sorted(skipped.items())),
        "documents": len(corpus),
        "queries": len(queries),
        "queries_by_intent": dict(Counter(str(q.meta["intent"]) for q in queries)),
        "entity_variants": dict(sorted(variants.items())),
        "judgments_by_grade": {str(g): grades[g] for g in sorted(grades)},
        "weights": weights,
    }
    (out / "music.json").write_bytes(
        orjson.dumps(summary, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS) + b"\n"
    )
    return orjson.loads(orjson.dumps(summary))  # type: ignore[no-any-return]


def _grade(users: int, thresholds: tuple[int, int, int]) -> int:
    return sum(1 for t in thresholds if users >= t)


def _entity_queries(
    candidates: list[str],
    names: Mapping[str, str],
    plays: Mapping[str, int],
    taken: set[str],
    rng: random.Random,
    config: MusicConfig,
) -> list[tuple[str, str, str, str]]:
    """(artist, query text, variant, edit) for artists drawn without replacement with
    probability proportional to popularity**exponent, so the tail is asked about too."""
    # Efraimidis-Spirakis: the k largest log(u) / w are a weighted sample without replacement;
    # logs keep u ** (1 / w) from rounding to 1 for the most played artists.
    keys = {
        a: math.log(1.0 - rng.random()) / plays[a] ** config.popularity_exponent for a in candidates
    }
    drawn = sorted(candidates, key=lambda a: (-keys[a], int(a)))[: config.entity_queries]
    n = len(drawn)
    order = drawn[:]
    rng.shuffle(order)
    variant: dict[str, tuple[str, str, str]] = {}
    want = round(config.misspelled_share * n)
    for artist in order:
        if len(variant) == want:
            break
        text, edit = _misspell(names[artist], rng)
        if edit != "none" and normalise(text) not in taken:
            variant[artist] = (text, "misspelt", edit)
    want = round(config.partial_share * n)
    done = 0
    for artist in order:
        if done == want:
            break
        if artist in variant:
            continue
        part = partial_name(names[artist], rng)
        if part is not None and len(normalise(part)) >= 3 and normalise(part) not in taken:
            variant[artist] = (part, "partial", "")
            done += 1
    return [(a, *variant.get(a, (names[a], "exact", ""))) for a in drawn]


def _weights(entity: int, topic: int, head: int, config: MusicConfig) -> dict[str, float]:
    """Per-query traffic shares: head carries ``head_traffic``, the rest splits between entity
    and topic; an empty intent hands its share to the others so the weights sum to 1."""
    rest = 1.0 - config.head_traffic
    share = {
        "entity": rest * config.entity_traffic_share,
        "topic": rest * (1.0 - config.entity_traffic_share),
        "head": config.head_traffic,
    }
    counts = {"entity": entity, "topic": topic, "head": head}
    total = sum(share[k] for k in share if counts[k])
    if total <= 0:
        return {k: 0.0 for k in share}
    # Rounded so that the JSON shows 0.00024, not 0.00023999999999999998.
    return {k: round(share[k] / total / counts[k], 12) if counts[k] else 0.0 for k in share}
