from __future__ import annotations

from ltrr.plugin.serve.pages import PageCache, RankedList, fingerprint


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def ranked(decision_id, key="k", hits=0):
    return RankedList(decision_id, [object()] * hits, {}, {}, key)


def test_found_by_id_and_by_fingerprint_within_ttl():
    clock = Clock()
    pages = PageCache(ttl_seconds=10, clock=clock)
    pages.put(ranked("d1", "k1"))
    assert pages.by_id("d1").decision_id == "d1"
    assert pages.by_fingerprint("k1").decision_id == "d1"
    clock.now = 10.5
    assert pages.by_id("d1") is None
    assert pages.by_fingerprint("k1") is None
    assert len(pages) == 0


def test_lru_bound_evicts_oldest_and_its_fingerprint():
    pages = PageCache(max_entries=2, clock=Clock())
    for n in range(3):
        pages.put(ranked(f"d{n}", f"k{n}"))
    assert pages.by_id("d0") is None
    assert pages.by_fingerprint("k0") is None
    assert pages.by_id("d2") is not None


def test_newer_decision_takes_over_the_fingerprint():
    pages = PageCache(clock=Clock())
    pages.put(ranked("d1", "same"))
    pages.put(ranked("d2", "same"))
    assert pages.by_fingerprint("same").decision_id == "d2"
    assert pages.by_id("d1") is not None


def test_fingerprint_ignores_key_order():
    assert fingerprint("c", "t", "q", {"a": 1, "b": 2}, [], None, None) == fingerprint(
        "c", "t", "q", {"b": 2, "a": 1}, [], None, None
    )
    base = fingerprint("c", "t", "q", {}, [], None, None)
    assert base != fingerprint("c", "t", "q2", {}, [], None, None)
    assert base != fingerprint("c2", "t", "q", {}, [], None, None)  # a reloaded catalog


def test_bounded_by_the_hits_held_too():
    pages = PageCache(max_hits=100, clock=Clock())
    pages.put(ranked("d1", "k1", hits=60))
    pages.put(ranked("d2", "k2", hits=30))
    pages.put(ranked("d3", "k3", hits=30))  # 120 > 100: the oldest goes
    assert pages.by_id("d1") is None
    assert pages.hits == 60
    pages.put(ranked("d4", "k4", hits=500))  # larger than the bound alone: kept, others go
    assert len(pages) == 1
    assert pages.hits == 500
