"""The replayed memory arm: captured predictions plus the Q2E scores users taught, by hand."""

from __future__ import annotations

from pathlib import Path

import pytest

from ltrr.plugin.ops.replay.memory import NEAR_BOOST, ReplayMemory, memory_arm
from ltrr.query_plans.catalog import MemoryConfig, load_catalog
from ltrr.query_plans.fusion.base import ArmHit

T0 = 1_800_000_000.0
DAY = 86_400.0
HALF_LIFE_DAYS = 14.0
CONFIG = MemoryConfig(smoothing=5.0, half_life_days=HALF_LIFE_DAYS)
INDEX = "music"

HEAD = """\
target: music
budget: 10
policy: {name: static}
arms:
  - {name: lexical, template: multi_match.json.j2, params: {fields: [name]}, size: {max: 10}}
"""
MEMORY_ARM = "  - {name: remembered, template: memory.json.j2, params: {}, size: {max: 20}}\n"
TAIL = "fallback: [{arm: lexical, size: 5}]\n"


def catalog(tmp_path: Path, text: str):
    path = tmp_path / "c.yml"
    path.write_text(text, encoding="utf-8")
    return load_catalog(path)


def captured(*scored: tuple[str, float]) -> tuple[ArmHit, ...]:
    return tuple(
        ArmHit(INDEX, doc_id, score, rank, {"name": doc_id})
        for rank, (doc_id, score) in enumerate(scored, start=1)
    )


def listed(hits) -> list[tuple[str, float]]:
    return [(h.id, h.score) for h in hits]


def memory(config: MemoryConfig = CONFIG) -> ReplayMemory:
    return ReplayMemory(config, INDEX)


def taught(query="Daft Punk", doc_id="d1", searches=1, clicks=(1.0,), now=T0) -> ReplayMemory:
    out = memory()
    teach(out, query, doc_id, searches, clicks, now)
    return out


def teach(mem, query, doc_id="d1", searches=1, clicks=(1.0,), now=T0):
    for _ in range(searches):
        mem.searched(query, now)
    for weight in clicks:
        mem.engaged(query, doc_id, weight, now)


# --- memory_arm ---


def test_memory_arm_is_the_arm_on_the_shipped_memory_template(tmp_path):
    text = HEAD + MEMORY_ARM + TAIL + "memory: {name_fields: [name]}\n"
    assert memory_arm(catalog(tmp_path, text)) == "remembered"


def test_no_memory_section_means_no_memory_arm(tmp_path):
    assert memory_arm(catalog(tmp_path, HEAD + TAIL)) is None


def test_a_memory_section_without_the_memory_template_has_no_memory_arm(tmp_path):
    assert memory_arm(catalog(tmp_path, HEAD + TAIL + "memory: {}\n")) is None


# --- learned scores ---


def test_one_search_and_one_click_add_the_smoothed_rate_and_its_near_share():
    mem = taught()  # "Daft Punk": 1 search, 1 click of weight 1 on d1
    hits = mem.hits("Daft Punk", captured(("c1", 0.3), ("d1", 0.1)), size=10)
    # exact key: 1 / (1 + 5); its own near key too, at the template's boost 0.5.
    learned = 1 / (1 + 5) + NEAR_BOOST * (1 / (1 + 5))
    assert NEAR_BOOST == 0.5
    assert listed(hits) == [("d1", pytest.approx(0.1 + learned)), ("c1", 0.3)]
    assert hits[0].score == pytest.approx(0.35)
    assert [(h.index, h.rank) for h in hits] == [(INDEX, 1), (INDEX, 2)]


def test_the_exact_score_is_one_sixth():
    mem = taught()
    # Ask with a query of the same exact key: normalised case and spacing.
    (hit,) = mem.hits("  daft   PUNK ", (), size=10)
    assert hit.id == "d1"
    assert hit.score == pytest.approx(1 / 6 * 1.5)
    assert mem._learned("daft punk") == {"d1": pytest.approx(1 / 6)}


def test_a_learned_entity_the_capture_lacks_joins_the_list():
    mem = taught()
    hits = mem.hits("Daft Punk", captured(("c1", 1.0), ("c2", 0.1)), size=10)
    assert listed(hits) == [("c1", 1.0), ("d1", pytest.approx(0.25)), ("c2", 0.1)]


def test_a_near_query_gets_half_the_best_score_of_the_exact_keys_sharing_its_near_key():
    mem = taught("Daft Punk", "d1", searches=1)  # d1: 1 / 6
    teach(mem, "punk, DAFT!", "d1", searches=3)  # exact key "punk daft"; d1: 1 / 8
    teach(mem, "punk, DAFT!", "d2", searches=0)  # d2: 1 / (max(3, 1) + 5) = 1 / 8
    assert mem._learned("punk daft") == {"d1": pytest.approx(1 / 8), "d2": pytest.approx(1 / 8)}

    # "daft daft punk" is its own exact key, never searched: only the near key answers it.
    hits = mem.hits("daft daft punk", captured(("c1", 0.05)), size=10)
    assert listed(hits) == [
        ("d1", pytest.approx(0.5 * max(1 / 6, 1 / 8))),
        ("d2", pytest.approx(0.5 * 1 / 8)),
        ("c1", 0.05),
    ]


def test_a_reworded_query_adds_the_near_share_to_a_captured_score():
    mem = taught()
    hits = mem.hits("punk daft", captured(("c1", 0.1), ("d1", 0.05)), size=10)
    assert listed(hits) == [("d1", pytest.approx(0.05 + 0.5 / 6)), ("c1", 0.1)]


def test_the_exact_key_of_a_near_query_adds_to_its_near_share():
    mem = taught("Daft Punk", "d1")  # d1: 1 / 6 on "daft punk"
    teach(mem, "punk daft", "d1", searches=1, clicks=(1.0, 1.0))  # d1: 2 / (2 + 5)
    (hit,) = mem.hits("punk daft", (), size=10)
    assert hit.score == pytest.approx(2 / 7 + 0.5 * max(1 / 6, 2 / 7))


def test_a_query_of_other_words_learns_nothing_from_them():
    mem = taught()
    hits = mem.hits("radiohead", captured(("c1", 0.3), ("c2", 0.2)), size=10)
    assert listed(hits) == [("c1", 0.3), ("c2", 0.2)]


def test_clicks_weigh_by_their_weight_and_non_positive_ones_are_ignored():
    mem = memory()
    teach(mem, "creep", "d1", searches=4, clicks=(2.0, 0.0, -1.0))
    mem.engaged("?!", "d1", 5.0, T0)  # no words: not remembered
    mem.searched("...", T0)
    assert mem._keys.keys() == {"creep"}
    assert mem._learned("creep") == {"d1": pytest.approx(2 / (4 + 5))}


def test_more_clicks_than_searches_are_not_a_rate_over_one():
    mem = taught("creep", "d1", searches=1, clicks=(3.0,))
    assert mem._learned("creep") == {"d1": pytest.approx(3 / (3 + 5))}


# --- ordering and size ---


def test_captured_ties_keep_their_order_and_learned_ties_follow_them():
    mem = taught()  # d1 learns 0.25 in all for "Daft Punk"
    ties = captured(("b", 0.25), ("a", 0.25), ("c", 0.25))
    hits = mem.hits("Daft Punk", ties, size=10)
    assert [h.id for h in hits] == ["b", "a", "c", "d1"]
    assert [h.rank for h in hits] == [1, 2, 3, 4]


def test_size_truncates_the_list_after_ranking():
    mem = taught()
    hits = mem.hits("Daft Punk", captured(("c1", 0.3), ("c2", 0.2), ("d1", 0.01)), size=2)
    assert listed(hits) == [("c1", 0.3), ("d1", pytest.approx(0.26))]
    assert [h.rank for h in hits] == [1, 2]
    assert mem.hits("Daft Punk", captured(("c1", 0.3)), size=0) == ()


def test_a_query_without_words_returns_the_captured_list_as_is():
    mem = taught()
    before = captured(("c2", 0.2), ("c1", 0.3), ("c3", 0.1))
    assert mem.hits("?!", before, size=10) == before  # not re-ranked, sources kept
    assert mem.hits("", before, size=2) == before[:2]


def test_nothing_learned_yet_returns_the_captured_order():
    mem = memory()
    mem.searched("Daft Punk", T0)  # searched, never clicked
    hits = mem.hits("Daft Punk", captured(("c1", 0.3), ("c2", 0.2)), size=10)
    assert listed(hits) == [("c1", 0.3), ("c2", 0.2)]


# --- decay ---


def test_counts_halve_over_one_half_life():
    mem = taught()  # 1 search, 1 click at T0
    later = T0 + HALF_LIFE_DAYS * DAY
    mem.searched("Daft Punk", later)
    # 0.5 + 1 searches, 0.5 of a click: 0.5 / (1.5 + 5).
    assert mem._keys["daft punk"].searches == pytest.approx(1.5)
    assert mem._keys["daft punk"].engaged == {"music/d1": pytest.approx(0.5)}
    assert mem._keys["daft punk"].updated == later
    assert mem._learned("daft punk") == {"d1": pytest.approx(0.5 / 6.5)}

    mem.engaged("Daft Punk", "d1", 1.0, later + 2 * HALF_LIFE_DAYS * DAY)
    # Two more half-lives: 1.5 searches -> 0.375, 0.5 clicks -> 0.125, plus the new one.
    assert mem._keys["daft punk"].searches == pytest.approx(0.375)
    assert mem._learned("daft punk") == {"d1": pytest.approx(1.125 / (1.125 + 5))}


def test_a_clock_stepping_back_decays_nothing():
    mem = taught(now=T0)
    mem.searched("Daft Punk", T0 - DAY)
    assert mem._keys["daft punk"].searches == 2.0
    assert mem._keys["daft punk"].updated == T0
    assert mem._learned("daft punk") == {"d1": pytest.approx(1 / 7)}


def test_each_key_decays_on_its_own():
    mem = taught("Daft Punk", now=T0)
    teach(mem, "creep", "d2", now=T0 + HALF_LIFE_DAYS * DAY)
    # "daft punk" was not touched since T0: its counts (and score) are as they were.
    assert mem._keys["daft punk"].searches == 1.0
    assert mem._learned("daft punk") == {"d1": pytest.approx(1 / 6)}
    assert mem._learned("creep") == {"d2": pytest.approx(1 / 6)}


def test_another_half_life_changes_the_ranking():
    mem = taught("Daft Punk", "d1", searches=1, clicks=(1.0,))
    later = T0 + HALF_LIFE_DAYS * DAY
    teach(mem, "Daft Punk", "d2", searches=0, clicks=(1.0,), now=later)
    # Both counts of d1 halved: 0.5 / (max(0.5, 0.5) + 5); d2: 1 / (max(0.5, 1) + 5).
    learned = mem._learned("daft punk")
    assert learned == {"d1": pytest.approx(0.5 / 5.5), "d2": pytest.approx(1 / 6)}
    hits = mem.hits("Daft Punk", (), size=10)
    assert [h.id for h in hits] == ["d2", "d1"]
    assert hits[0].score == pytest.approx(1.5 / 6)
