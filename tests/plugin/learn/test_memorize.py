"""MemoryUpdater against an in-memory OpenSearch: counts add up across replicas, once."""

from __future__ import annotations

import asyncio
import hashlib

import orjson
import pytest

from ltrr.plugin.learn.bulk import MEMORY_INDEX
from ltrr.plugin.learn.memorize import (
    MAPPING_TTL_SECONDS,
    MAX_ATTEMPTS,
    MemoryUpdater,
    check_sources,
    memory_doc_id,
)
from ltrr.plugin.runtime.upstream import UpstreamError
from ltrr.query_plans.catalog import CatalogError, MemoryConfig, load_catalog
from ltrr.query_plans.memory import keys
from tests.plugin._fake_opensearch import FakeOpenSearch

T0 = 1_700_000_000.0
HALF_LIFE_DAYS = 2.0
CONFIG = MemoryConfig(half_life_days=HALF_LIFE_DAYS, smoothing=5.0)

KEY, NEAR = keys("Head, Radio")
OTHER_KEY, OTHER_NEAR = keys("creep")
SONG = "music/42"
OTHER_SONG = "music/7"


class Clock:
    def __init__(self, now=T0):
        self.now = now

    def __call__(self):
        return self.now


def flush(updater):
    asyncio.run(updater.flush())


def memory_doc(store, key, target="music"):
    return store.source(MEMORY_INDEX, memory_doc_id(target, key))


def entity(store, ref):
    index, _, doc_id = ref.partition("/")
    return store.source(index, doc_id)


def with_entities(*refs):
    store = FakeOpenSearch()
    for ref in refs:
        index, _, doc_id = ref.partition("/")
        store.put(index, doc_id, {"name": f"entity {doc_id}", "ltrr_q2e": {"kept": 0.5}})
    return store


def record(updater, key, searches, engaged=(), target="music"):
    for _ in range(searches):
        updater.searched(target, CONFIG, key)
    for ref, weight in engaged:
        updater.engaged(target, CONFIG, key, ref, weight)


def test_keys_and_document_ids_are_what_they_are_said_to_be():
    assert (KEY, NEAR) == ("head radio", "~headradio")
    assert (OTHER_KEY, OTHER_NEAR) == ("creep", "~creep")
    expected = hashlib.sha256(b"music\nhead radio").hexdigest()[:40]
    assert memory_doc_id("music", KEY) == expected


def test_flush_writes_one_memory_document_per_key_and_the_scores_on_the_entities():
    store = with_entities(SONG, OTHER_SONG)
    updater = MemoryUpdater(store, clock=Clock())
    record(updater, KEY, 3, [(SONG, 1.0), (SONG, 1.0)])
    record(updater, OTHER_KEY, 1, [(OTHER_SONG, 2.0)])
    updater.searched("music", CONFIG, "")  # no words: not remembered
    updater.engaged("music", CONFIG, KEY, OTHER_SONG, 0.0)  # no positive weight: ignored
    updater.engaged("music", CONFIG, KEY, OTHER_SONG, -1.0)
    assert updater.pending_keys() == 2

    flush(updater)

    assert store.ids(MEMORY_INDEX) == {memory_doc_id("music", KEY), memory_doc_id("music", "creep")}
    assert memory_doc(store, KEY) == {
        "target": "music",
        "key": KEY,
        "searches": 3.0,
        "updated": T0,
        "engaged": {SONG: 2.0},
    }
    assert memory_doc(store, OTHER_KEY) == {
        "target": "music",
        "key": OTHER_KEY,
        "searches": 1.0,
        "updated": T0,
        "engaged": {OTHER_SONG: 2.0},
    }
    # engaged / (max(searches, engaged) + smoothing): 2 / (3 + 5), and 2 / (max(1, 2) + 5).
    assert entity(store, SONG) == {
        "name": "entity 42",
        "ltrr_q2e": {"kept": 0.5, KEY: 0.25, NEAR: 0.25},
    }
    assert entity(store, OTHER_SONG) == {
        "name": "entity 7",
        "ltrr_q2e": {"kept": 0.5, OTHER_KEY: 2 / 7, OTHER_NEAR: 2 / 7},
    }
    assert updater.pairs_written == 2
    assert updater.flushes == 1
    assert updater.pending_keys() == 0
    assert store.count(f"/{MEMORY_INDEX}/_mget") == 1
    assert store.count("/_bulk") == 2  # the merge, then the scores

    flush(updater)  # nothing pending: nothing read or written
    assert store.count(f"/{MEMORY_INDEX}/_mget") == 1
    assert store.count("/_bulk") == 2


def test_the_near_key_keeps_the_best_score_of_the_keys_sharing_it():
    store = with_entities(SONG)
    updater = MemoryUpdater(store, clock=Clock())
    swapped = keys("radio head")[0]
    assert keys("radio head")[1] == NEAR
    record(updater, KEY, 5, [(SONG, 5.0)])  # 5 / (5 + 5)
    record(updater, swapped, 15, [(SONG, 5.0)])  # 5 / (15 + 5)

    flush(updater)

    assert entity(store, SONG)["ltrr_q2e"] == {"kept": 0.5, KEY: 0.5, swapped: 0.25, NEAR: 0.5}


def test_two_replicas_flushing_into_one_store_add_up():
    store = with_entities(SONG, OTHER_SONG)
    clock = Clock()
    first, second = MemoryUpdater(store, clock=clock), MemoryUpdater(store, clock=clock)
    record(first, KEY, 2, [(SONG, 1.0)])
    record(second, KEY, 3, [(SONG, 2.0), (OTHER_SONG, 0.5)])

    flush(first)
    assert entity(store, SONG)["ltrr_q2e"][KEY] == 1 / (2 + 5)
    flush(second)

    assert memory_doc(store, KEY) == {
        "target": "music",
        "key": KEY,
        "searches": 5.0,
        "updated": T0,
        "engaged": {SONG: 3.0, OTHER_SONG: 0.5},
    }
    assert entity(store, SONG)["ltrr_q2e"] == {"kept": 0.5, KEY: 0.3, NEAR: 0.3}  # 3 / 10
    assert entity(store, OTHER_SONG)["ltrr_q2e"] == {"kept": 0.5, KEY: 0.05, NEAR: 0.05}


def test_counts_halve_after_one_half_life():
    store = with_entities(SONG)
    clock = Clock()
    updater = MemoryUpdater(store, clock=clock)
    record(updater, KEY, 4, [(SONG, 2.0)])
    flush(updater)
    assert entity(store, SONG)["ltrr_q2e"][KEY] == 2 / 9

    clock.now = T0 + HALF_LIFE_DAYS * 86_400
    record(updater, KEY, 1)
    flush(updater)

    # 4 searches decayed to 2, plus 1; 2 engagements decayed to 1: 1 / (3 + 5).
    assert memory_doc(store, KEY) == {
        "target": "music",
        "key": KEY,
        "searches": 3.0,
        "updated": clock.now,
        "engaged": {SONG: 1.0},
    }
    assert entity(store, SONG)["ltrr_q2e"][KEY] == 0.125

    clock.now += 2 * HALF_LIFE_DAYS * 86_400
    record(updater, KEY, 0, [(SONG, 1.0)])
    flush(updater)
    assert memory_doc(store, KEY)["searches"] == 0.75
    assert memory_doc(store, KEY)["engaged"] == {SONG: 1.25}
    assert entity(store, SONG)["ltrr_q2e"][KEY] == 1.25 / (1.25 + 5)


def test_a_conflicting_write_is_read_again_and_counted_once():
    store = with_entities(SONG)
    clock = Clock()
    first = MemoryUpdater(store, clock=clock)
    record(first, KEY, 1, [(SONG, 1.0)])
    flush(first)
    record(first, KEY, 2)

    def concurrent_flush():  # another replica merges between the read and the guarded write
        doc = memory_doc(store, KEY)
        doc["searches"] += 4.0
        doc["engaged"][SONG] += 1.0
        store.put(MEMORY_INDEX, memory_doc_id("music", KEY), doc)

    store.on_next("/_bulk", concurrent_flush)
    bulks = store.count("/_bulk")
    flush(first)

    assert store.count("/_bulk") == bulks + 3  # conflict, retry, then the scores
    assert memory_doc(store, KEY)["searches"] == 1.0 + 4.0 + 2.0
    assert memory_doc(store, KEY)["engaged"] == {SONG: 2.0}
    assert entity(store, SONG)["ltrr_q2e"][KEY] == 2 / (7 + 5)
    assert first.pending_keys() == 0


def test_a_merge_that_keeps_conflicting_keeps_its_counts():
    store = with_entities(SONG)
    updater = MemoryUpdater(store, clock=Clock())
    record(updater, KEY, 1, [(SONG, 1.0)])
    flush(updater)
    record(updater, KEY, 2)

    def touch():
        store.put(MEMORY_INDEX, memory_doc_id("music", KEY), memory_doc(store, KEY))

    store.on_next("/_bulk", touch, times=MAX_ATTEMPTS)
    with pytest.raises(UpstreamError, match="still conflicting"):
        flush(updater)
    assert memory_doc(store, KEY)["searches"] == 1.0
    assert updater.pending_keys() == 1

    flush(updater)
    assert memory_doc(store, KEY)["searches"] == 3.0
    assert memory_doc(store, KEY)["engaged"] == {SONG: 1.0}


@pytest.mark.parametrize("failing", [f"/{MEMORY_INDEX}/_mget", "/_bulk"])
def test_a_failed_flush_keeps_the_pending_counts_for_the_next_one(failing):
    store = with_entities(SONG)
    updater = MemoryUpdater(store, clock=Clock())
    record(updater, KEY, 2, [(SONG, 1.0)])

    store.fail_next(failing, 500)
    with pytest.raises(UpstreamError, match="500"):
        flush(updater)
    assert store.ids(MEMORY_INDEX) == set()
    assert entity(store, SONG)["ltrr_q2e"] == {"kept": 0.5}
    assert updater.pending_keys() == 1

    record(updater, KEY, 1, [(SONG, 0.5)])  # more arrives meanwhile
    flush(updater)

    assert memory_doc(store, KEY)["searches"] == 3.0
    assert memory_doc(store, KEY)["engaged"] == {SONG: 1.5}
    assert entity(store, SONG)["ltrr_q2e"][KEY] == 1.5 / (3 + 5)
    assert updater.pending_keys() == 0

    flush(updater)  # and nothing is merged a second time
    assert memory_doc(store, KEY)["searches"] == 3.0


def test_one_target_failing_does_not_hold_back_or_repeat_another():
    store = with_entities(SONG)
    updater = MemoryUpdater(store, clock=Clock())
    record(updater, KEY, 1, [(SONG, 1.0)], target="music")
    record(updater, KEY, 2, target="books")
    store.on_next(f"/{MEMORY_INDEX}/_mget", lambda: None)  # music's merge goes through
    store.fail_next(f"/{MEMORY_INDEX}/_mget", 500)  # books' read fails

    with pytest.raises(UpstreamError):
        flush(updater)
    assert memory_doc(store, KEY, "music")["searches"] == 1.0
    assert memory_doc(store, KEY, "books") is None
    assert updater.pending_keys() == 1

    flush(updater)
    assert memory_doc(store, KEY, "music")["searches"] == 1.0
    assert memory_doc(store, KEY, "books")["searches"] == 2.0


@pytest.mark.parametrize("when", ["scores", "retry"])
def test_a_flush_failing_after_a_merge_does_not_count_it_twice(when):
    store = with_entities(SONG, OTHER_SONG)
    updater = MemoryUpdater(store, clock=Clock())
    record(updater, KEY, 2, [(SONG, 1.0)])
    record(updater, OTHER_KEY, 1, [(OTHER_SONG, 1.0)])
    if when == "scores":  # both keys merged, then the entity updates fail
        store.on_next("/_bulk", lambda: None)
        store.fail_next("/_bulk", 500)
    else:  # KEY merged, OTHER_KEY conflicts, and the retry's write fails
        other_id = memory_doc_id("music", OTHER_KEY)
        store.on_next("/_bulk", lambda: store.put(MEMORY_INDEX, other_id, {"searches": 0.0}))
        store.fail_next("/_bulk", 500)

    if when == "retry":
        with pytest.raises(UpstreamError):
            flush(updater)
    else:  # the counts are safe in ltrr-memory: a failed score write is logged, not raised
        flush(updater)
    assert memory_doc(store, KEY)["searches"] == 2.0  # merged before the failure

    flush(updater)
    assert memory_doc(store, KEY)["searches"] == 2.0  # fails: 4.0, merged a second time
    assert memory_doc(store, KEY)["engaged"] == {SONG: 1.0}


def test_a_deleted_entity_is_skipped():
    store = with_entities(OTHER_SONG)  # music/42 is gone
    updater = MemoryUpdater(store, clock=Clock())
    record(updater, KEY, 1, [(SONG, 1.0), (OTHER_SONG, 3.0)])

    flush(updater)

    assert entity(store, SONG) is None  # an update does not create the document
    assert entity(store, OTHER_SONG)["ltrr_q2e"] == {"kept": 0.5, KEY: 0.375, NEAR: 0.375}
    assert memory_doc(store, KEY)["engaged"] == {SONG: 1.0, OTHER_SONG: 3.0}
    assert updater.pairs_written == 1
    assert updater.pending_keys() == 0

    flush(updater)
    assert memory_doc(store, KEY)["searches"] == 1.0


def test_no_score_is_written_to_an_index_that_keeps_a_field_out_of_source():
    # A partial update is rebuilt from _source: the excluded vector would be gone.
    store = with_entities(SONG)
    store.mappings["music"] = {"_source": {"excludes": ["embedding"]}}
    updater = MemoryUpdater(store, clock=Clock())
    record(updater, KEY, 1, [(SONG, 1.0)])

    flush(updater)

    assert entity(store, SONG) == {"name": "entity 42", "ltrr_q2e": {"kept": 0.5}}
    assert memory_doc(store, KEY)["engaged"] == {SONG: 1.0}  # the counts are kept
    assert updater.pairs_written == 0
    assert updater.pairs_refused == 1
    assert (
        updater.refused_because
        == "music keeps embedding (mappings._source.excludes) out of _source"
    )
    assert store.count("/_bulk") == 1  # the merge only


def test_the_mapping_is_read_once_a_minute_and_a_fixed_one_is_written_to():
    store = with_entities(SONG)
    store.mappings["music"] = {"_source": {"enabled": False}}
    clock = Clock()
    updater = MemoryUpdater(store, clock=clock)
    record(updater, KEY, 1, [(SONG, 1.0)])
    flush(updater)
    record(updater, KEY, 1, [(SONG, 1.0)])
    flush(updater)
    assert store.count("/music/_mapping") == 1
    assert updater.pairs_refused == 2

    store.mappings["music"] = {}  # source made whole (a re-created index, say)
    clock.now += MAPPING_TTL_SECONDS
    record(updater, KEY, 1, [(SONG, 1.0)])
    flush(updater)
    assert store.count("/music/_mapping") == 2
    assert updater.pairs_written == 1
    # 3 engagements over 3 searches, 3 / (3 + 5), the first two decayed by a minute's worth
    scores = entity(store, SONG)["ltrr_q2e"]
    assert scores[KEY] == scores[NEAR] == pytest.approx(0.375, rel=1e-3)


def test_an_unreadable_mapping_counts_as_unsafe():
    store = with_entities(SONG)
    store.fail_next("/music/_mapping", 503)
    updater = MemoryUpdater(store, clock=Clock())
    record(updater, KEY, 1, [(SONG, 1.0)])
    flush(updater)
    assert entity(store, SONG) == {"name": "entity 42", "ltrr_q2e": {"kept": 0.5}}
    assert updater.pairs_refused == 1
    assert "answered 503" in (updater.refused_because or "")
    assert store.count("/music/_mapping") == 1
    record(updater, KEY, 1, [(SONG, 1.0)])
    flush(updater)  # a failed read is retried after MAPPING_RETRY_SECONDS, not at once
    assert store.count("/music/_mapping") == 1


def test_only_indices_behind_the_target_are_written_to():
    # A decision's hits name their index; the memory writes only where the target leads.
    store = with_entities(SONG, "elsewhere/1")
    updater = MemoryUpdater(store, clock=Clock())
    record(updater, KEY, 1, [(SONG, 1.0), ("elsewhere/1", 1.0)])
    flush(updater)
    assert entity(store, SONG)["ltrr_q2e"][KEY] == pytest.approx(1 / 6)
    assert entity(store, "elsewhere/1") == {"name": "entity 1", "ltrr_q2e": {"kept": 0.5}}
    assert updater.pairs_refused == 1
    assert updater.refused_because == "elsewhere is not an index behind music"


def _catalog(tmp_path, memory=True):
    text = (
        "target: music\nbudget: 10\npolicy: {name: static}\narms:\n"
        "  - {name: lexical, template: multi_match.json.j2, params: {fields: [name]},"
        " size: {max: 10}}\nfallback: [{arm: lexical, size: 5}]\n"
        + ("memory: {}\n" if memory else "")
    )
    path = tmp_path / "c.yml"
    path.write_text(text)
    return load_catalog(path)


class _AliasOverTwo:
    """GET <alias>/_mapping answering for both indices behind it, or failing."""

    def __init__(self, status=200):
        self.status = status

    async def request(self, method, path, *, headers, body, timeout):
        from ltrr.plugin.runtime.upstream import UpstreamReply

        assert (method, path) == ("GET", "/music/_mapping")
        mappings = {
            "music-a": {"mappings": {"properties": {}}},
            "music-b": {"mappings": {"_source": {"excludes": ["vec"]}}},
        }
        return UpstreamReply(self.status, orjson.dumps(mappings if self.status == 200 else {}))


def test_one_lossy_index_behind_an_alias_is_named(tmp_path):
    with pytest.raises(
        CatalogError, match=r"index music-b keeps vec \(mappings._source.excludes\)"
    ):
        asyncio.run(check_sources(_AliasOverTwo(), [_catalog(tmp_path)]))


def test_a_mapping_that_cannot_be_read_at_start_is_checked_before_writes(tmp_path, caplog):
    asyncio.run(check_sources(_AliasOverTwo(status=403), [_catalog(tmp_path)]))
    assert "not checked at start" in caplog.text


def test_a_served_catalog_whose_index_would_lose_a_field_is_refused(tmp_path):
    store = with_entities(SONG)
    store.mappings["music"] = {"_source": {"excludes": ["embedding"]}}
    with pytest.raises(CatalogError, match="index music keeps embedding"):
        asyncio.run(check_sources(store, [_catalog(tmp_path)]))
    asyncio.run(check_sources(store, [_catalog(tmp_path, memory=False)]))  # no memory: no writes
    asyncio.run(check_sources(FakeOpenSearch(), [_catalog(tmp_path)]))  # not created yet


# --- flush of some targets (a simulated clock moves each target on its own) ---


def test_pending_targets_are_the_targets_with_pending_keys_sorted():
    updater = MemoryUpdater(with_entities(), clock=Clock())
    assert updater.pending_targets() == []
    updater.searched("videos", CONFIG, "")  # no words: nothing pending
    updater.engaged("videos", CONFIG, KEY, SONG, 0.0)
    assert updater.pending_targets() == []
    record(updater, KEY, 1, target="music")
    record(updater, OTHER_KEY, 1, target="books")
    record(updater, KEY, 1, target="books")
    assert updater.pending_targets() == ["books", "music"]


def test_flush_of_some_targets_writes_only_theirs_and_keeps_the_others_pending():
    store = with_entities(SONG)
    store.put("books", "9", {"name": "entity 9"})
    updater = MemoryUpdater(store, clock=Clock())
    record(updater, KEY, 2, [(SONG, 1.0)], target="music")
    record(updater, KEY, 3, [("books/9", 1.0)], target="books")
    record(updater, OTHER_KEY, 1, target="books")
    record(updater, KEY, 1, target="videos")

    asyncio.run(updater.flush(["music"]))

    assert memory_doc(store, KEY, "music") == {
        "target": "music",
        "key": KEY,
        "searches": 2.0,
        "updated": T0,
        "engaged": {SONG: 1.0},
    }
    assert memory_doc(store, KEY, "books") is None
    assert memory_doc(store, OTHER_KEY, "books") is None
    assert memory_doc(store, KEY, "videos") is None
    assert entity(store, SONG)["ltrr_q2e"][KEY] == 1 / (2 + 5)
    assert store.source("books", "9") == {"name": "entity 9"}
    assert updater.pending_targets() == ["books", "videos"]
    assert updater.pending_keys() == 3
    assert updater.flushes == 1

    asyncio.run(updater.flush(frozenset({"books", "nowhere"})))

    assert memory_doc(store, KEY, "books")["searches"] == 3.0
    assert memory_doc(store, OTHER_KEY, "books")["searches"] == 1.0
    assert store.source("books", "9")["ltrr_q2e"] == {KEY: 1 / (3 + 5), NEAR: 1 / (3 + 5)}
    assert memory_doc(store, KEY, "music")["searches"] == 2.0  # not merged a second time
    assert updater.pending_targets() == ["videos"]

    asyncio.run(updater.flush())  # all of them
    assert memory_doc(store, KEY, "videos")["searches"] == 1.0
    assert updater.pending_targets() == []
    assert updater.pending_keys() == 0


def test_flush_of_no_target_writes_nothing():
    store = with_entities(SONG)
    updater = MemoryUpdater(store, clock=Clock())
    record(updater, KEY, 1, [(SONG, 1.0)])
    asyncio.run(updater.flush([]))
    assert store.requests == []
    assert updater.pending_targets() == ["music"]
    assert updater.pending_keys() == 1


def test_a_failed_flush_of_some_targets_gives_their_counts_back_and_keeps_the_rest():
    store = with_entities(SONG)
    updater = MemoryUpdater(store, clock=Clock())
    record(updater, KEY, 2, [(SONG, 1.0)], target="music")
    record(updater, KEY, 4, target="books")
    store.fail_next(f"/{MEMORY_INDEX}/_mget", 500)

    with pytest.raises(UpstreamError, match="500"):
        asyncio.run(updater.flush(["music"]))
    assert updater.pending_targets() == ["books", "music"]
    assert updater.pending_keys() == 2

    record(updater, KEY, 1, target="music")  # more arrives meanwhile
    asyncio.run(updater.flush(["music"]))
    assert memory_doc(store, KEY, "music")["searches"] == 3.0
    assert memory_doc(store, KEY, "music")["engaged"] == {SONG: 1.0}
    assert memory_doc(store, KEY, "books") is None
    assert updater.pending_targets() == ["books"]
    assert updater._pending["books"].keys[KEY].searches == 4.0  # untouched by either flush


def test_searches_arriving_during_a_flush_of_their_target_are_kept_for_the_next():
    store = with_entities(SONG)
    updater = MemoryUpdater(store, clock=Clock())
    record(updater, KEY, 1, target="music")
    # While music's merge is in flight, another search of music and one of books come in.
    store.on_next(
        f"/{MEMORY_INDEX}/_mget",
        lambda: (record(updater, KEY, 1, target="music"), record(updater, KEY, 1, target="books")),
    )
    asyncio.run(updater.flush(["music"]))
    assert memory_doc(store, KEY, "music")["searches"] == 1.0
    assert updater.pending_targets() == ["books", "music"]
    asyncio.run(updater.flush(["music"]))
    assert memory_doc(store, KEY, "music")["searches"] == 2.0
    assert updater.pending_targets() == ["books"]


def test_scores_that_opensearch_refuses_are_counted_not_only_logged():
    """An identity that may not update the entity index (a 403 per item) is visible in the
    stats: ``pairs_failed`` and the last error, while the counts stay in ltrr-memory."""
    store = with_entities(SONG, OTHER_SONG)
    store.force_item("music", "42", 403)
    updater = MemoryUpdater(store, clock=Clock())
    record(updater, KEY, 2, [(SONG, 1.0), (OTHER_SONG, 1.0)])

    flush(updater)

    assert updater.pairs_written == 1
    assert updater.pairs_failed == 1
    assert "403" in (updater.last_error or "")
    assert entity(store, SONG)["ltrr_q2e"] == {"kept": 0.5}
    assert memory_doc(store, KEY)["engaged"] == {SONG: 1.0, OTHER_SONG: 1.0}


def test_a_flush_that_fails_in_the_background_is_counted():
    store = with_entities(SONG)
    updater = MemoryUpdater(store, clock=Clock())
    record(updater, KEY, 1, [(SONG, 1.0)])
    store.fail_next(f"/{MEMORY_INDEX}/_mget", 401, times=100)

    async def two_rounds():
        task = asyncio.create_task(updater.run(0.01))
        await asyncio.sleep(0.1)
        task.cancel()

    asyncio.run(two_rounds())
    assert updater.flush_failures >= 2
    assert "401" in (updater.last_error or "")
    assert updater.pending_keys() == 1


# --- the cap on learned keys per entity document ---


def test_an_entity_keeps_only_its_max_keys_best_scoring_learned_keys():
    capped = MemoryConfig(half_life_days=HALF_LIFE_DAYS, smoothing=5.0, max_keys=3)
    store = with_entities(SONG)  # it holds {"kept": 0.5} already
    updater = MemoryUpdater(store, clock=Clock())
    for _ in range(3):
        updater.searched("music", capped, KEY)
    updater.engaged("music", capped, KEY, SONG, 2.0)  # 2 / (3 + 5) = 0.25, and its near key
    updater.searched("music", capped, OTHER_KEY)
    updater.engaged("music", capped, OTHER_KEY, SONG, 1.0)  # 1 / (1 + 5) = 0.1667, near too

    flush(updater)

    # Five keys for three places: 0.5, then the two at 0.25 ("h" sorts before "~"); both
    # "creep" keys, the lowest, are dropped. The other fields are untouched.
    assert entity(store, SONG) == {
        "name": "entity 42",
        "ltrr_q2e": {"kept": 0.5, "head radio": 0.25, "~headradio": 0.25},
    }


def test_the_cap_is_one_scripted_update_of_the_learned_field_only():
    capped = MemoryConfig(max_keys=7)
    store = with_entities(SONG)
    updater = MemoryUpdater(store, clock=Clock())
    updater.searched("music", capped, OTHER_KEY)
    updater.engaged("music", capped, OTHER_KEY, SONG, 1.0)
    flush(updater)
    bodies = [
        orjson.loads(line)
        for b in store.bulk_bodies
        for line in b.splitlines()
        if b"script" in line
    ]
    ((script,),) = [[b["script"]] for b in bodies]
    assert script["lang"] == "painless"
    assert script["params"] == {
        "field": "ltrr_q2e",
        "features": {"creep": 1 / 6, "~creep": 1 / 6},
        "max": 7,
    }
