import pytest

from ltrr.query_plans.memory import (
    KeyStats,
    decay_factor,
    exact_key,
    keys,
    name_variants,
    near_key,
    predicted_for,
    predicted_q2e,
    rank_feature_value,
    source_loss,
    source_losses,
    split_ref,
)


def test_keys_normalise_and_near_keys_ignore_order_spacing_and_punctuation():
    assert exact_key("  Daft   PUNK! ") == "daft punk"
    assert exact_key("AC/DC") == "ac dc"
    assert exact_key("U.S.A. for Africa") == "u s a for africa"  # a dot would split a field
    assert near_key("Punk, Daft") == near_key("daft punk daft") == "~daftpunk"
    assert keys("?!") == ("", "")


def test_name_variants_cover_accents_ampersands_and_a_leading_the():
    assert name_variants("Björk") == ["björk", "bjork"]
    assert name_variants("The Beatles") == ["the beatles", "beatles"]
    assert name_variants("Simon & Garfunkel") == ["simon garfunkel", "simon and garfunkel"]


def test_predicted_scores_names_above_variants_above_tags():
    scores = predicted_q2e(["The Beatles", "Fab Four"], ["classic rock", "pop"])
    assert scores["the beatles"] == 1.0
    assert scores["~beatlesthe"] == 1.0
    assert scores["beatles"] == 0.8
    assert scores["fab four"] == 0.8
    assert scores["classic rock"] == pytest.approx(0.3)
    assert scores["pop"] == pytest.approx(0.15)
    assert list(scores)[:2] == ["the beatles", "~beatlesthe"]  # best first
    assert len(predicted_q2e(["x"], [f"tag {i}" for i in range(100)], max_keys=10)) == 10


def test_decay_halves_counts_each_half_life_and_never_grows():
    assert decay_factor(0.0, 7.0) == 1.0
    assert decay_factor(-5.0, 7.0) == 1.0
    assert decay_factor(7 * 86_400.0, 7.0) == pytest.approx(0.5)
    stats = KeyStats(searches=8.0, updated=0.0, engaged={"i/a": 4.0})
    later = stats.decayed_to(14 * 86_400.0, 7.0)
    assert later.searches == pytest.approx(2.0)
    assert later.engaged["i/a"] == pytest.approx(1.0)


def test_merge_adds_a_replicas_delta_after_decaying_the_stored_counts():
    stored = KeyStats(searches=4.0, updated=0.0, engaged={"i/a": 2.0})
    delta = KeyStats(searches=1.0, updated=0.0, engaged={"i/a": 1.0, "i/b": 3.0})
    merged = stored.merged(delta, 7 * 86_400.0, 7.0)
    assert merged.searches == pytest.approx(3.0)
    assert merged.engaged == pytest.approx({"i/a": 2.0, "i/b": 3.0})
    assert merged.updated == 7 * 86_400.0
    assert KeyStats.from_json(merged.to_json()) == merged


def test_score_is_a_smoothed_engagement_rate():
    stats = KeyStats(searches=10.0, engaged={"i/a": 4.0, "i/b": 0.0})
    assert stats.score("i/a", 5.0) == pytest.approx(4.0 / 15.0)
    assert stats.score("i/b", 5.0) == 0.0
    assert stats.score("i/unknown", 5.0) == 0.0
    # More engagement than counted searches (several events per search): the rate stays < 1.
    assert KeyStats(searches=1.0, engaged={"i/a": 3.0}).score("i/a", 0.0) == 1.0


def test_rank_feature_values_are_positive_and_finite():
    assert rank_feature_value(0.0) is None
    assert rank_feature_value(-1.0) is None
    assert rank_feature_value(float("nan")) is None
    assert rank_feature_value(1e-12) == 1e-6
    assert rank_feature_value(0.25) == 0.25
    assert split_ref("music/ac/dc") == ("music", "ac/dc")


def test_predicted_for_reads_names_and_phrases_from_the_catalogs_fields():
    source = {
        "name": "The Beatles",
        "meta": {"aliases": ["Fab Four"], "genre": 7},
        "tags": ["pop", None, "rock"],
    }
    got = predicted_for(source, ["name", "meta.aliases", "missing"], ["tags", "meta.genre"])
    assert got == predicted_q2e(["The Beatles", "Fab Four"], ["pop", "rock"])
    assert predicted_for({"other": 1}, ["name"], ["tags"]) == {}


@pytest.mark.parametrize(
    ("mappings", "lost"),
    [
        ({}, None),
        ({"_source": {"enabled": True}}, None),
        ({"_source": {"includes": ["*"]}}, None),
        ({"_source": {"excludes": []}}, None),
        ({"_source": {"enabled": False}}, "every field (mappings._source.enabled is false)"),
        ({"_source": {"enabled": "false"}}, "every field (mappings._source.enabled is false)"),
        ({"_source": {"excludes": ["embedding"]}}, "embedding (mappings._source.excludes)"),
        ({"_source": {"excludes": "vec*"}}, "vec* (mappings._source.excludes)"),
        (
            {"_source": {"includes": ["name", "tags"]}},
            "every field outside name, tags (mappings._source.includes)",
        ),
    ],
)
def test_source_loss_names_what_a_partial_update_would_drop(mappings, lost):
    assert source_loss(mappings) == lost


def test_source_losses_reads_a_mapping_answer_per_index():
    answer = {
        "music-b": {"mappings": {"_source": {"excludes": ["vec"]}}},
        "music-a": {"mappings": {"properties": {}}},
        "music-c": {},
    }
    assert source_losses(answer) == {
        "music-a": None,
        "music-b": "vec (mappings._source.excludes)",
        "music-c": None,
    }
