import math
import os
import subprocess
import sys
from datetime import datetime

import numpy as np
import pytest

from ltrr.bandit.features import (
    BASE_FEATURES,
    EntityDictionary,
    FeatureBuilder,
    category_slot,
    trigrams,
)

# Wednesday 06:00: hour angle pi/2, weekday 2 -> angle 4*pi/7.
WEDNESDAY_6AM = datetime(2024, 5, 8, 6, 0)
CLOCK = [1.0, math.cos(math.pi / 2), math.sin(4 * math.pi / 7), math.cos(4 * math.pi / 7)]


def shape_of(builder: FeatureBuilder, query: str, entities=None, now=WEDNESDAY_6AM):
    x = builder.build(query, {}, now, entities)
    return dict(zip(builder.names, x.tolist(), strict=True))


@pytest.fixture
def plain() -> FeatureBuilder:
    return FeatureBuilder([], 8)


@pytest.fixture
def entities() -> EntityDictionary:
    return EntityDictionary(["Harry Potter", "The Hobbit", "東京タワー", "C++"])


def test_base_layout(plain):
    assert plain.names == BASE_FEATURES
    assert plain.n_features == 18
    assert plain.names[0] == "bias"


def test_latin_query_with_entity(plain, entities):
    f = shape_of(plain, "Harry Potter", entities)
    expected = {
        "bias": 1.0,
        "query_chars": 12 / 64,
        "query_tokens": 2 / 10,
        "digit_fraction": 0.0,
        "has_digit": 0.0,
        "quoted_phrase": 0.0,
        "uppercase_fraction": 2 / 11,
        "punctuation_fraction": 0.0,
        "non_ascii_fraction": 0.0,
        "mean_token_chars": 5.5 / 10,
        "single_token": 0.0,
        "entity_exact": 1.0,
        "entity_prefix": 1.0,
        "entity_similarity": 1.0,
    }
    for name, value in expected.items():
        assert f[name] == pytest.approx(value), name
    clock = [f["hour_sin"], f["hour_cos"], f["weekday_sin"], f["weekday_cos"]]
    assert clock == pytest.approx(CLOCK)


def test_quotes_digits_and_punctuation(plain):
    # text '"iPhone 15" PRO!': 16 chars, 3 tokens of 7, 3 and 4 chars,
    # digits 1 and 5, uppercase P P R O of 9 cased letters, punctuation " " !
    f = shape_of(plain, '  "iPhone   15" PRO! ')
    assert f["query_chars"] == pytest.approx(16 / 64)
    assert f["query_tokens"] == pytest.approx(0.3)
    assert f["digit_fraction"] == pytest.approx(2 / 16)
    assert f["has_digit"] == 1.0
    assert f["quoted_phrase"] == 1.0
    assert f["uppercase_fraction"] == pytest.approx(4 / 9)
    assert f["punctuation_fraction"] == pytest.approx(3 / 16)
    assert f["mean_token_chars"] == pytest.approx(14 / 3 / 10)
    assert f["entity_exact"] == f["entity_prefix"] == 0.0  # no dictionary


def test_non_ascii_and_symbols(plain):
    f = shape_of(plain, "Café ÜBER")
    assert f["non_ascii_fraction"] == pytest.approx(2 / 9)
    assert f["uppercase_fraction"] == pytest.approx(5 / 8)
    f = shape_of(plain, "¿Qué?")
    assert f["punctuation_fraction"] == pytest.approx(2 / 5)
    assert f["non_ascii_fraction"] == pytest.approx(2 / 5)
    assert shape_of(plain, "€5")["punctuation_fraction"] == pytest.approx(1 / 2)  # symbols count


def test_unbalanced_quote_is_not_a_phrase(plain):
    assert shape_of(plain, 'say "hello')["quoted_phrase"] == 0.0
    assert shape_of(plain, "«bonjour» monde")["quoted_phrase"] == 1.0
    assert shape_of(plain, "「東京」")["quoted_phrase"] == 1.0


def test_cjk_single_token(plain, entities):
    f = shape_of(plain, "東京タワー", entities)
    assert f["query_chars"] == pytest.approx(5 / 64)
    assert f["query_tokens"] == pytest.approx(0.1)
    assert f["single_token"] == 1.0
    assert f["non_ascii_fraction"] == 1.0
    assert f["uppercase_fraction"] == 0.0  # uncased script
    assert f["mean_token_chars"] == pytest.approx(0.5)
    assert (f["entity_exact"], f["entity_prefix"]) == (1.0, 1.0)
    f = shape_of(plain, "東京", entities)
    assert (f["entity_exact"], f["entity_prefix"]) == (0.0, 1.0)


def test_trigrams_are_padded_so_word_starts_count():
    assert trigrams("abc") == {"  a", " ab", "abc", "bc "}
    assert trigrams("a b") == {"  a", " a ", "a b", " b "}


def test_similarity_is_the_dice_of_trigrams_with_the_nearest_name():
    names = EntityDictionary(["abc", "abcd", "xyz"])
    # "abd": {"  a", " ab", "abd", "bd "}; with "abc" it shares "  a" and " ab": 2*2 / (4+4).
    # With "abcd" ({"  a", " ab", "abc", "bcd", "cd "}): 2*2 / (4+5), less; "xyz" none.
    assert names.similarity("abd") == pytest.approx(0.5)
    assert names.similarity("ABC!") == 1.0  # a known name, normalised
    assert names.similarity("qqq") == 0.0  # no trigram in common
    assert names.similarity("") == 0.0
    assert EntityDictionary([]).similarity("abc") == 0.0


def test_a_misspelt_name_is_closer_to_its_entity_than_a_word_is(plain):
    names = EntityDictionary(["Radiohead", "Red Hot Chili Peppers"])
    misspelt = shape_of(plain, "radiohed", names)
    partial = shape_of(plain, "chili peppers", names)
    word = shape_of(plain, "rock", names)
    other = shape_of(plain, "jazz", names)
    assert (misspelt["entity_exact"], misspelt["entity_prefix"]) == (0.0, 0.0)
    assert misspelt["entity_similarity"] == pytest.approx(2 * 7 / (9 + 10))  # "hed " is new
    # "chili peppers" has 14 trigrams, the full name 22; 13 shared ("  c" is "t c" there).
    assert partial["entity_similarity"] == pytest.approx(2 * 13 / (14 + 22))
    # "rock" shares only the padded start "  r" with "radiohead": 2 * 1 / (5 + 10).
    assert word["entity_similarity"] == pytest.approx(2 / 15)
    assert other["entity_similarity"] == 0.0
    assert shape_of(plain, "radiohed")["entity_similarity"] == 0.0  # no dictionary


def test_long_query_saturates(plain):
    f = shape_of(plain, "a" * 100)
    assert f["query_chars"] == 1.0
    assert f["mean_token_chars"] == 1.0
    f = shape_of(plain, " ".join(["w"] * 30))
    assert f["query_tokens"] == 1.0


def test_empty_query_has_bias_and_clock_only(plain, entities):
    x = plain.build("   ", {}, WEDNESDAY_6AM, entities)
    assert x[0] == 1.0
    assert np.all(x[1:14] == 0.0)
    assert x[14:].tolist() == pytest.approx(CLOCK)


def test_clock_uses_minutes_and_monday_is_zero(plain):
    f = shape_of(plain, "x", now=datetime(2024, 5, 6, 18, 30))  # Monday 18:30
    angle = 2 * math.pi * 18.5 / 24
    assert (f["hour_sin"], f["hour_cos"]) == pytest.approx((math.sin(angle), math.cos(angle)))
    assert (f["weekday_sin"], f["weekday_cos"]) == pytest.approx((0.0, 1.0))


def test_all_values_are_bounded(plain, entities):
    for query in ["", "a", "HELLO!!!", "12345", '"x"', "ЁЖ ёж", "🙂🙂", "a b c d e f g h i j k"]:
        x = plain.build(query, {}, datetime(2024, 1, 1, 23, 59), entities)
        assert x.dtype == np.float64
        assert np.all(x >= -1.0)
        assert np.all(x <= 1.0)


def test_context_layout_and_values():
    builder = FeatureBuilder([("device", "categorical"), ("score", "numeric")], 8)
    assert builder.n_features == 18 + 8 + 1
    assert builder.names[18:] == (*(f"ctx:device#{k}" for k in range(8)), "ctx:score")
    x = builder.build("q", {"device": "mobile", "score": 2.5}, WEDNESDAY_6AM, None)
    device = x[18:26]
    assert device.tolist() == [0, 0, 0, 0, 0, 0, 0, 1]  # crc32("device=mobile") % 8 == 7
    assert x[26] == 2.5


def test_missing_context_is_zero():
    builder = FeatureBuilder([("device", "categorical"), ("score", "numeric")], 8)
    x = builder.build("q", {}, WEDNESDAY_6AM, None)
    assert np.all(x[18:] == 0.0)
    x = builder.build("q", {"device": None, "score": None}, WEDNESDAY_6AM, None)
    assert np.all(x[18:] == 0.0)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [(3, 3.0), ("2.5", 2.5), (True, 1.0), ("abc", 0.0), (float("nan"), 0.0), ({"a": 1}, 0.0)],
)
def test_numeric_context_values(raw, expected):
    builder = FeatureBuilder([("score", "numeric")], 2)
    assert builder.build("q", {"score": raw}, WEDNESDAY_6AM, None)[18] == expected


def test_categorical_list_is_multi_hot():
    builder = FeatureBuilder([("tags", "categorical")], 8)
    x = builder.build("q", {"tags": ["red", "blue", "c"]}, WEDNESDAY_6AM, None)
    # crc32 % 8: tags=red -> 6, tags=blue -> 1, tags=c -> 6 (a collision stays 1.0)
    assert x[18:].tolist() == [0, 1, 0, 0, 0, 0, 1, 0]


def test_hash_is_a_fixed_constant():
    assert category_slot("device", "mobile", 2**32) == 4081717047
    assert category_slot("device", "tablet", 8) == 5
    assert category_slot("lang", "de", 8) == 1


def test_hash_is_stable_across_processes():
    code = (
        "from ltrr.bandit.features import category_slot;"
        "print(category_slot('device', 'mobile', 2**32), category_slot('lang', 'fr', 8))"
    )
    for seed in ("0", "12345"):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        out = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True
        )
        assert out.stdout.split() == ["4081717047", "4"]


@pytest.mark.parametrize(
    ("fields", "buckets"),
    [
        ([], 0),
        ([], True),
        ([("a", "text")], 4),
        ([("a", "numeric"), ("a", "categorical")], 4),
        ([("", "numeric")], 4),
    ],
)
def test_invalid_builder(fields, buckets):
    with pytest.raises(ValueError):  # noqa: PT011 - the message varies by mistake
        FeatureBuilder(fields, buckets)


@pytest.mark.parametrize(
    ("text", "normalised"),
    [
        ("  Harry   POTTER!! ", "harry potter"),
        ("\uff21\uff22\uff23", "abc"),  # full-width ABC
        ('"C++"', "c++"),
        ("Straße", "strasse"),
        ("...", ""),
        ("(The) Hobbit.", "the) hobbit"),
        ("¡Hola!", "hola"),
    ],
)
def test_normalize(text, normalised):
    assert EntityDictionary.normalize(text) == normalised


def test_entity_dictionary(entities):
    assert len(entities) == 4
    assert entities.exact("the HOBBIT")
    assert entities.exact("  c++ ")
    assert not entities.exact("hobbit")
    assert entities.prefix("harry pot")
    assert entities.prefix("Harry Potter")  # a whole name counts
    assert not entities.prefix("potter")
    assert not entities.prefix("h")  # shorter than min_prefix
    assert not entities.prefix("zzz")  # past the last name
    assert not entities.exact("")
    assert not entities.prefix("")


def test_entity_dictionary_deduplicates_and_drops_empty():
    d = EntityDictionary(["A", "a ", "!!", "", "b"], min_prefix=1)
    assert len(d) == 2
    assert d.prefix("b")
