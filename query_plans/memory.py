"""The query -> entity (Q2E) memory: its keys, its index-time predictions, its learned scores.

Scores live on the entity documents as two ``rank_features`` fields whose feature names are
query keys: ``predicted`` (from the entity's own metadata, written at index time) and
``learned`` (smoothed, decayed engagement rates, written by the learning loop). A
``rank_feature`` query on ``<field>.<key>`` then retrieves exactly the entities remembered for
that query, already ordered by score, inside the same ``_msearch`` as the other arms.

Every query has two keys: the exact normalised text, and a "near" key that ignores word order,
repeated words and punctuation ("Punk, Daft!" and "daft punk" share one), so a small
rewording still finds the memory.
"""

from __future__ import annotations

import math
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ltrr.bandit.features import EntityDictionary

NEAR_PREFIX = "~"
MAX_KEY_CHARS = 200  # Lucene terms are capped; a longer "query" is not worth remembering
_SECONDS_PER_DAY = 86_400.0


def _words(text: str) -> list[str]:
    """Normalised words without punctuation or symbols (a dot would split a field path)."""
    cleaned = "".join(
        " " if unicodedata.category(c)[0] in "PSZ" else c for c in EntityDictionary.normalize(text)
    )
    return cleaned.split()


def exact_key(text: str) -> str:
    """The query's exact key: normalised words, single-spaced ("" for a query of no words)."""
    return " ".join(_words(text))[:MAX_KEY_CHARS]


def near_key(text: str) -> str:
    """Order-, repetition- and spacing-insensitive key; "" when the query has no words."""
    words = sorted(set(_words(text)))
    return (NEAR_PREFIX + "".join(words))[:MAX_KEY_CHARS] if words else ""


def keys(text: str) -> tuple[str, str]:
    return exact_key(text), near_key(text)


def _ascii_fold(text: str) -> str:
    return "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))


def name_variants(name: str) -> list[str]:
    """Spellings people type for a name: as is, accents dropped, "&"/"and", no leading "the"."""
    base = exact_key(name)
    if not base:
        return []
    out = [base]
    for candidate in (
        exact_key(_ascii_fold(name)),
        exact_key(name.replace("&", " and ")),
        exact_key(name.replace("&", " ")),
    ):
        if candidate and candidate not in out:
            out.append(candidate)
    for v in list(out):
        if v.startswith("the ") and v[4:] not in out:
            out.append(v[4:])
    return out


def predicted_q2e(
    names: Sequence[str],
    phrases: Sequence[str],
    *,
    name_score: float = 1.0,
    variant_score: float = 0.8,
    phrase_score: float = 0.3,
    max_keys: int = 64,
) -> dict[str, float]:
    """Queries an entity is likely to answer, from its own metadata, with a prior score.

    Its first name scores ``name_score``, other spellings and aliases ``variant_score``, and the
    k-th tag or category phrase (0-based) ``phrase_score / (1 + k)``: metadata lists its most
    telling tags first. Every key comes with its near key at the same score; a key reached
    several ways keeps its best score.
    """
    scores: dict[str, float] = {}

    def put(key: str, score: float) -> None:
        if key and score > 0.0 and scores.get(key, 0.0) < score:
            scores[key] = score

    for i, name in enumerate(names):
        for j, variant in enumerate(name_variants(name)):
            score = name_score if i == 0 and j == 0 else variant_score
            put(variant, score)
            put(near_key(variant), score)
    for k, phrase in enumerate(phrases):
        score = phrase_score / (1 + k)
        put(exact_key(phrase), score)
        put(near_key(phrase), score)
    ranked = sorted(scores.items(), key=lambda kv: (-kv[1], kv[0]))[:max_keys]
    return dict(ranked)


def _texts(value: object) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list | tuple):
        return [v for v in value if isinstance(v, str)]
    return []


def predicted_for(
    source: Mapping[str, Any], name_fields: Sequence[str], phrase_fields: Sequence[str]
) -> dict[str, float]:
    """``predicted_q2e`` of a document, reading names and phrases from the catalog's fields
    (top-level or dotted paths; a field may hold one string or a list)."""

    def read(path: str) -> list[str]:
        value: object = source
        for part in path.split("."):
            if not isinstance(value, Mapping):
                return []
            value = value.get(part)
        return _texts(value)

    names = [n for f in name_fields for n in read(f)]
    phrases = [p for f in phrase_fields for p in read(f)]
    return predicted_q2e(names, phrases)


def decay_factor(elapsed_seconds: float, half_life_days: float) -> float:
    """How much of a count survives ``elapsed_seconds``; clocks that step back decay nothing."""
    if elapsed_seconds <= 0.0:
        return 1.0
    return float(0.5 ** (elapsed_seconds / (half_life_days * _SECONDS_PER_DAY)))


@dataclass(slots=True)
class KeyStats:
    """Decayed counts for one query key: searches with it, and engagement per entity.

    The counts are additive, so every proxy replica can accumulate its own delta and merge it
    into the shared document; decay is applied to the stored counts up to the merge time first.
    """

    searches: float = 0.0
    updated: float = 0.0  # epoch seconds the counts are decayed to
    engaged: dict[str, float] = field(default_factory=dict)  # "index/id" -> decayed weight

    def decayed_to(self, now: float, half_life_days: float) -> KeyStats:
        f = decay_factor(now - self.updated, half_life_days)
        return KeyStats(
            self.searches * f, max(now, self.updated), {k: v * f for k, v in self.engaged.items()}
        )

    def merged(self, delta: KeyStats, now: float, half_life_days: float) -> KeyStats:
        """Self decayed to ``now``, plus ``delta`` (whose counts are taken as of ``now``)."""
        out = self.decayed_to(now, half_life_days)
        out.searches += delta.searches
        for entity, weight in delta.engaged.items():
            out.engaged[entity] = out.engaged.get(entity, 0.0) + weight
        return out

    def score(self, entity: str, smoothing: float) -> float:
        """Smoothed engagement rate e / (n + smoothing), the learned Q2E score (0 if unknown).

        A query searched once with one click scores less than one searched a hundred times
        with a hundred clicks: the smoothing pseudo-searches are what separates them.
        """
        engaged = self.engaged.get(entity, 0.0)
        if engaged <= 0.0:
            return 0.0
        return engaged / (max(self.searches, engaged) + smoothing)

    def to_json(self) -> dict[str, Any]:
        return {"searches": self.searches, "updated": self.updated, "engaged": dict(self.engaged)}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> KeyStats:
        engaged = data.get("engaged") or {}
        return cls(
            float(data.get("searches", 0.0)),
            float(data.get("updated", 0.0)),
            {str(k): float(v) for k, v in engaged.items() if math.isfinite(float(v))},
        )


def rank_feature_value(score: float) -> float | None:
    """A score as ``rank_features`` stores it: positive and finite, or None (leave it out).

    Lucene keeps 9 significant bits, so tiny scores are floored to a value it can hold.
    """
    if not math.isfinite(score) or score <= 0.0:
        return None
    return max(score, 1e-6)


def entity_ref(index: str, doc_id: str) -> str:
    return f"{index}/{doc_id}"


def split_ref(ref: str) -> tuple[str, str]:
    index, _, doc_id = ref.partition("/")
    return index, doc_id


def source_losses(response: Mapping[str, Any]) -> dict[str, str | None]:
    """Per index of a ``GET <target>/_mapping`` answer, what a partial update would lose."""
    return {
        str(index): source_loss(entry.get("mappings") or {})
        for index, entry in sorted(response.items())
    }


def source_loss(mappings: Mapping[str, Any]) -> str | None:
    """What a partial ``_update`` of a document of this mapping would drop, or None.

    OpenSearch rebuilds an updated document from its ``_source``, so any field kept out of it
    (an excluded vector, say) is silently gone after the memory writes a score. The memory only
    writes to documents whose ``_source`` is whole; this says which field stands in the way.
    """
    source = mappings.get("_source")
    if not isinstance(source, Mapping):
        return None
    if source.get("enabled") is False or str(source.get("enabled")).lower() == "false":
        return "every field (mappings._source.enabled is false)"
    excludes = _texts(source.get("excludes"))
    if excludes:
        return f"{', '.join(excludes)} (mappings._source.excludes)"
    includes = _texts(source.get("includes"))
    if includes and "*" not in includes:
        return f"every field outside {', '.join(includes)} (mappings._source.includes)"
    return None
