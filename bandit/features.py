"""The context vector a policy sees: cheap, language-agnostic query shape, time and caller context.

Every feature is bounded (to [0, 1], or [-1, 1] for the clock) so that a linear model's
weights stay comparable and no feature dominates the ridge prior. Numeric context fields are
the exception: they enter as given, so the caller should send them already scaled.
Categorical fields use a stable hash (CRC-32, not Python's salted ``hash``) so that a vector,
and the statistics learnt from it, mean the same thing in every process and after a restart.
"""

from __future__ import annotations

import math
import re
import string
import unicodedata
import zlib
from bisect import bisect_left
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime

import numpy as np
import numpy.typing as npt

Vector = npt.NDArray[np.float64]

BASE_FEATURES: tuple[str, ...] = (
    "bias",
    "query_chars",
    "query_tokens",
    "digit_fraction",
    "has_digit",
    "quoted_phrase",
    "uppercase_fraction",
    "punctuation_fraction",
    "non_ascii_fraction",
    "mean_token_chars",
    "single_token",
    "entity_exact",
    "entity_prefix",
    "entity_similarity",
    "hour_sin",
    "hour_cos",
    "weekday_sin",
    "weekday_cos",
)
CONTEXT_KINDS = ("numeric", "categorical")

# Saturation points: past them a query is simply "long", and the feature stays at 1.
CHARS_SCALE = 64.0
TOKENS_SCALE = 10.0
TOKEN_CHARS_SCALE = 10.0

_TWO_PI = 2.0 * math.pi
_ASCII_PUNCTUATION = frozenset(string.punctuation)  # exactly the ASCII P* and S* characters
# Opening and closing quote pairs across scripts; \u2039/\u203a are the single guillemets.
_QUOTED = re.compile(
    '"[^"]+"|“[^”]+”|„[^“”]+[“”]|«[^»]+»|\u2039[^\u203a]+\u203a|「[^」]+」|『[^』]+』'
)
_QUOTE_CHARS = frozenset('"“„«\u2039「『')


def _is_punctuation(char: str) -> bool:
    return unicodedata.category(char)[0] == "P"


def _is_punctuation_or_symbol(char: str) -> bool:
    return unicodedata.category(char)[0] in "PS"


def category_slot(field: str, value: str, buckets: int) -> int:
    """The bucket of ``field=value``; CRC-32 so it is the same in every process and release."""
    return zlib.crc32(f"{field}={value}".encode()) % buckets


def trigrams(text: str) -> frozenset[str]:
    """The character trigrams of a normalised text, padded so that word starts count
    (as PostgreSQL's pg_trgm pads them): "abc" gives "  a", " ab", "abc", "bc "."""
    padded = f"  {text} "
    return frozenset(padded[i : i + 3] for i in range(len(padded) - 2))


class EntityDictionary:
    """Known entity names, normalised and sorted, so exact and prefix look-ups are a bisect."""

    __slots__ = ("_gram_counts", "_names", "_postings", "min_prefix")

    def __init__(self, names: Iterable[str], *, min_prefix: int = 2) -> None:
        normalised = {self.normalize(name) for name in names}
        normalised.discard("")
        self._names: tuple[str, ...] = tuple(sorted(normalised))
        self.min_prefix = min_prefix
        # Character trigrams -> the names holding them, for the typo-tolerant similarity.
        postings: dict[str, list[int]] = {}
        counts = np.empty(len(self._names), dtype=np.float64)
        for i, name in enumerate(self._names):
            grams = trigrams(name)
            counts[i] = len(grams)
            for gram in grams:
                postings.setdefault(gram, []).append(i)
        self._postings = {g: np.asarray(ids, dtype=np.int32) for g, ids in postings.items()}
        self._gram_counts = counts

    @staticmethod
    def normalize(text: str) -> str:
        """One spelling per name: NFKC, casefolded, single spaces, no punctuation at the ends.

        The plan and the entity look-ups share it, so "  Harry  POTTER!" and "harry potter"
        are the same query everywhere.
        """
        folded = " ".join(unicodedata.normalize("NFKC", text).casefold().split())
        start, end = 0, len(folded)
        while start < end and (folded[start] == " " or _is_punctuation(folded[start])):
            start += 1
        while end > start and (folded[end - 1] == " " or _is_punctuation(folded[end - 1])):
            end -= 1
        return folded[start:end]

    def __len__(self) -> int:
        return len(self._names)

    def exact(self, query: str) -> bool:
        """Whether the query, normalised, is a known name."""
        return self.exact_normalized(self.normalize(query))

    def prefix(self, query: str) -> bool:
        """Whether the query, normalised, starts a known name (a whole name counts).

        Queries shorter than ``min_prefix`` characters never match: one letter starts too many
        names to say anything.
        """
        return self.prefix_normalized(self.normalize(query))

    def exact_normalized(self, norm: str) -> bool:
        """``exact`` for a query the caller has already normalised (saves a second pass)."""
        names = self._names
        i = bisect_left(names, norm)
        return bool(norm) and i < len(names) and names[i] == norm

    def similarity(self, query: str) -> float:
        """How close the query is to the nearest known name, allowing typos and missing words:
        the Dice coefficient of their character trigrams, 1.0 for a known name."""
        return self.similarity_normalized(self.normalize(query))

    def similarity_normalized(self, norm: str) -> float:
        """``similarity`` for a query the caller has already normalised."""
        if not norm or not self._names:
            return 0.0
        if self.exact_normalized(norm):
            return 1.0
        grams = trigrams(norm)
        hits = [ids for gram in grams if (ids := self._postings.get(gram)) is not None]
        if not hits:
            return 0.0
        shared = np.bincount(np.concatenate(hits), minlength=len(self._names))
        dice = 2.0 * shared / (len(grams) + self._gram_counts)
        return min(float(dice.max()), 1.0)

    def prefix_normalized(self, norm: str) -> bool:
        """``prefix`` for a query the caller has already normalised."""
        if len(norm) < max(self.min_prefix, 1):
            return False
        names = self._names
        i = bisect_left(names, norm)
        return i < len(names) and names[i].startswith(norm)


class _Slot:
    """Precomputed layout of one context field, so ``build`` does no string work per field."""

    __slots__ = ("categorical", "name", "offset")

    def __init__(self, name: str, categorical: bool, offset: int) -> None:
        self.name = name
        self.categorical = categorical
        self.offset = offset


def _as_number(value: object) -> float:
    """A numeric context value, or 0.0 when it is missing, not a number or not finite."""
    if isinstance(value, bool | int | float):
        try:
            number = float(value)
        except OverflowError:
            return 0.0
    elif isinstance(value, str):
        try:
            number = float(value)
        except ValueError:
            return 0.0
    else:
        return 0.0
    return number if math.isfinite(number) else 0.0


def _category_values(value: object) -> tuple[str, ...]:
    """The categories a context value names; a list is several at once (multi-hot)."""
    if value is None:
        return ()
    if isinstance(value, bool):
        return ("true" if value else "false",)
    if isinstance(value, str | int | float):
        return (str(value),)
    if isinstance(value, list | tuple):
        return tuple(v for item in value for v in _category_values(item))
    return ()


def _shape(text: str, n_chars: int, n_tokens: int) -> list[float]:
    """The query's shape: length, digits, quotes, case, punctuation, script."""
    digits = sum(map(str.isdigit, text))
    upper = sum(map(str.isupper, text))
    cased = upper + sum(map(str.islower, text))
    if text.isascii():
        punctuation = sum(map(_ASCII_PUNCTUATION.__contains__, text))
        non_ascii = 0
    else:
        punctuation = sum(map(_is_punctuation_or_symbol, text))
        non_ascii = n_chars - len(text.encode("ascii", "ignore"))
    quoted = 1.0 if not _QUOTE_CHARS.isdisjoint(text) and _QUOTED.search(text) is not None else 0.0
    per_char = 1.0 / n_chars
    return [
        min(n_chars / CHARS_SCALE, 1.0),
        min(n_tokens / TOKENS_SCALE, 1.0),
        digits * per_char,
        1.0 if digits else 0.0,
        quoted,
        upper / cased if cased else 0.0,
        punctuation * per_char,
        non_ascii * per_char,
        min((n_chars - n_tokens + 1) / n_tokens / TOKEN_CHARS_SCALE, 1.0),
        1.0 if n_tokens == 1 else 0.0,
    ]


class FeatureBuilder:
    """Turns (query, caller context, clock, entities) into the policy's float64 vector."""

    __slots__ = ("_slots", "hash_buckets", "n_features", "names")

    def __init__(self, context_fields: Sequence[tuple[str, str]], hash_buckets: int) -> None:
        if isinstance(hash_buckets, bool) or not isinstance(hash_buckets, int) or hash_buckets < 1:
            raise ValueError(f"hash_buckets must be a positive integer, got {hash_buckets!r}")
        names = list(BASE_FEATURES)
        slots: list[_Slot] = []
        seen: set[str] = set()
        for name, kind in context_fields:
            if not name:
                raise ValueError("a context field needs a name")
            if name in seen:
                raise ValueError(f"context field {name!r} is listed twice")
            if kind not in CONTEXT_KINDS:
                raise ValueError(f"context field {name!r}: kind must be one of {CONTEXT_KINDS}")
            seen.add(name)
            slots.append(_Slot(name, kind == "categorical", len(names)))
            if kind == "categorical":
                names.extend(f"ctx:{name}#{k}" for k in range(hash_buckets))
            else:
                names.append(f"ctx:{name}")
        self.names: tuple[str, ...] = tuple(names)
        self.n_features = len(names)
        self.hash_buckets = hash_buckets
        self._slots = tuple(slots)

    def build(
        self,
        query: str,
        context: Mapping[str, object],
        now: datetime,
        entities: EntityDictionary | None,
    ) -> Vector:
        """The vector for one search; ``now`` is read as given (the caller picks the zone)."""
        tokens = query.split()
        n_tokens = len(tokens)
        text = " ".join(tokens)
        n_chars = len(text)

        shape = _shape(text, n_chars, n_tokens) if n_chars else [0.0] * 10

        exact = prefix = similar = 0.0
        if entities is not None and n_chars:
            norm = EntityDictionary.normalize(text)
            exact = 1.0 if entities.exact_normalized(norm) else 0.0
            prefix = 1.0 if entities.prefix_normalized(norm) else 0.0
            similar = entities.similarity_normalized(norm)

        hour = _TWO_PI * (now.hour + now.minute / 60.0) / 24.0
        weekday = _TWO_PI * now.weekday() / 7.0
        values = [
            1.0,
            *shape,
            exact,
            prefix,
            similar,
            math.sin(hour),
            math.cos(hour),
            math.sin(weekday),
            math.cos(weekday),
        ]
        if self._slots:
            values.extend([0.0] * (self.n_features - len(values)))
            buckets = self.hash_buckets
            for slot in self._slots:
                raw = context.get(slot.name)
                if raw is None:
                    continue
                if slot.categorical:
                    for category in _category_values(raw):
                        values[slot.offset + category_slot(slot.name, category, buckets)] = 1.0
                else:
                    values[slot.offset] = _as_number(raw)
        return np.array(values, dtype=np.float64)
