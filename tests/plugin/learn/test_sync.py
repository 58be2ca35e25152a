"""StateSync against an in-memory OpenSearch: replicas' bandit statistics add up exactly once."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from ltrr.bandit.decision import ArmSpec
from ltrr.bandit.policies import PolicyConfig, make_policy
from ltrr.bandit.state import carry_over, layout_digest
from ltrr.plugin.learn.bulk import STATE_INDEX, bulk, mget
from ltrr.plugin.learn.sync import MAX_ATTEMPTS, StateSync
from ltrr.plugin.runtime.registry import CatalogRegistry
from tests.plugin._fake_opensearch import FakeOpenSearch

D = 18  # the base features; the catalogs below add no context field
RIDGE = 2.0
PRIOR_A = np.eye(D) * RIDGE

ARM = """\
  - name: {name}
    template: multi_match.json.j2
    params: {{fields: [{name}_field]}}
    size: {{min: 1, max: 10}}
"""


def catalog_yaml(arms=("a", "b"), context=""):
    features = f"features: {{context: {{{context}}}}}\n" if context else ""
    return (
        "target: music\n"
        "budget: 30\n"
        f"policy: {{name: linucb, ridge: {RIDGE}}}\n"
        f"{features}"
        "arms:\n"
        + "".join(ARM.format(name=name) for name in arms)
        + f"fallback: [{{arm: {arms[0]}, size: 5}}]\n"
    )


@pytest.fixture
def catalog(tmp_path):
    path = tmp_path / "music.yml"
    path.write_text(catalog_yaml())
    return path


def replica(path, store):
    """One proxy replica: its own registry (so its own policy) and StateSync, on ``store``."""
    registry = CatalogRegistry([path], seed=1)
    registry.load_all()
    return registry, StateSync(store, registry.runtimes)


def policy_of(registry):
    (runtime,) = registry.runtimes()
    return runtime.agent.policy


def sync(state):
    asyncio.run(state.sync_all())


def vec(**entries):
    """A feature vector with the given coordinates set (``i0=1.0`` sets feature 0)."""
    x = np.zeros(D)
    for name, value in entries.items():
        x[int(name[1:])] = value
    return x


def learn(policy, arm, observations):
    """Apply (x, reward) updates; returns the delta (ΣxxT, Σreward·x, n) computed by hand."""
    a, b = np.zeros((D, D)), np.zeros(D)
    for x, reward in observations:
        policy.update(arm, x, reward)
        a += np.outer(x, x)
        b += reward * x
    return a, b, len(observations)


def total(*deltas):
    """The prior plus every delta: what every replica must end up serving."""
    a, b, n = PRIOR_A.copy(), np.zeros(D), 0
    for da, db, dn in deltas:
        a, b, n = a + da, b + db, n + dn
    return a, b, n


def stored(store, arm):
    return store.source(STATE_INDEX, f"music:{arm}")


def assert_doc(doc, expected):
    a, b, n = expected
    assert doc["n"] == n
    np.testing.assert_allclose(np.asarray(doc["a"]), a, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(np.asarray(doc["b"]), b, rtol=1e-12, atol=1e-12)


def assert_local(policy, arm, expected):
    """The policy serves exactly ``expected``, with a consistent inverse and θ."""
    a, b, n = expected
    i = [spec.name for spec in policy.arms].index(arm)
    s = policy.stats
    assert int(s.counts[i]) == n
    np.testing.assert_allclose(s.a[i], a, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(s.b[i], b, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(s.a_inv[i], np.linalg.inv(a), rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(s.theta[i], np.linalg.solve(a, b), rtol=1e-9, atol=1e-12)


def assert_nothing_pending(policy):
    s = policy.stats
    assert not s.pending_n.any()
    assert not s.pending_a.any()
    assert not s.pending_b.any()


X1 = vec(i0=1.0, i1=0.5)
X2 = vec(i0=1.0, i3=2.0)
X3 = vec(i0=1.0, i1=-1.0, i16=0.25)


# -- one replica ------------------------------------------------------------------------------


def test_a_fresh_policy_writes_nothing_until_it_has_a_delta(catalog):
    store = FakeOpenSearch()
    registry, state = replica(catalog, store)
    (runtime,) = registry.runtimes()

    sync(state)
    # Only the catalog record: no arm has learned anything, the prior needs no document.
    assert store.ids(STATE_INDEX) == {"music:_catalog"}
    assert stored(store, "_catalog") == {
        "target": "music",
        "arm": "_catalog",
        "catalog": runtime.catalog.digest,
        "arms": ["a", "b"],
    }
    seq_no, bulks = store.seq_no, store.count("/_bulk")
    reads = store.count(f"/{STATE_INDEX}/_mget")

    sync(state)  # nothing learned still: one read of the arms, no write at all
    assert store.seq_no == seq_no
    assert store.count("/_bulk") == bulks
    assert store.count(f"/{STATE_INDEX}/_mget") == reads + 1
    assert_local(runtime.agent.policy, "a", total())
    assert state.snapshot() == {
        "music": {"merges": 2, "conflicts": 0, "last_error": None, "versions": {}}
    }

    delta = learn(runtime.agent.policy, "a", [(X1, 1.0)])
    sync(state)
    assert store.ids(STATE_INDEX) == {"music:_catalog", "music:a"}
    assert_doc(stored(store, "a"), total(delta))


def test_one_sync_creates_the_documents_and_serves_prior_plus_delta(catalog):
    store = FakeOpenSearch()
    registry, state = replica(catalog, store)
    policy = policy_of(registry)
    delta_a = learn(policy, "a", [(X1, 1.0), (X2, 0.0), (X1, 2.0)])
    delta_b = learn(policy, "b", [(X3, 0.5)])

    sync(state)

    doc = stored(store, "a")
    assert doc["target"] == "music"
    assert doc["arm"] == "a"
    assert doc["layout"] == layout_digest(registry.runtimes()[0].agent.feature_names)
    assert doc["ridge"] == RIDGE
    assert_doc(doc, total(delta_a))
    assert_doc(stored(store, "b"), total(delta_b))
    # Hand check of one entry: A[0][0] = ridge + 1 + 1 + 1, b[0] = 1 + 0 + 2.
    assert doc["a"][0][0] == 5.0
    assert doc["b"][0] == 3.0
    assert doc["n"] == 3
    assert_local(policy, "a", total(delta_a))  # the delta is served once, not twice
    assert_local(policy, "b", total(delta_b))
    assert_nothing_pending(policy)
    versions = state.snapshot()["music"]["versions"]
    assert versions == {
        "a": store.indices[STATE_INDEX]["music:a"].seq_no,
        "b": store.indices[STATE_INDEX]["music:b"].seq_no,
    }


def test_a_lost_index_gets_everything_back_not_the_prior_plus_the_last_delta(catalog):
    store = FakeOpenSearch()
    registry, state = replica(catalog, store)
    policy = policy_of(registry)
    first = learn(policy, "a", [(X1, 1.0), (X2, 0.0)])
    sync(state)
    store.indices[STATE_INDEX].clear()  # DELETE *: every stored document gone
    state.lost()
    second = learn(policy, "a", [(X3, 2.0)])

    sync(state)

    # What the replica held (prior + both deltas) is stored again, and still served.
    assert_doc(stored(store, "a"), total(first, second))
    assert_local(policy, "a", total(first, second))
    assert_nothing_pending(policy)
    # Arm b never learned anything: it stays unwritten, at the prior.
    assert "music:b" not in store.indices[STATE_INDEX]
    assert "music:_catalog" in store.indices[STATE_INDEX]  # reconciled again


def test_what_arrives_during_a_merge_is_served_and_merged_next_round(catalog):
    store = FakeOpenSearch()
    registry, state = replica(catalog, store)
    policy = policy_of(registry)
    first = learn(policy, "a", [(X1, 1.0)])
    later = []
    store.on_next("/_bulk", lambda: None)  # the catalog record's bulk comes first
    # An update lands after the deltas were taken, before the write: it stays pending.
    store.on_next("/_bulk", lambda: later.append(learn(policy, "a", [(X2, 1.0)])))

    sync(state)
    assert_doc(stored(store, "a"), total(first))
    assert_local(policy, "a", total(first, *later))
    assert int(policy.stats.pending_n[0]) == 1

    sync(state)
    assert_doc(stored(store, "a"), total(first, *later))
    assert_local(policy, "a", total(first, *later))
    assert_nothing_pending(policy)


# -- replicas ---------------------------------------------------------------------------------


def test_two_replicas_converge_to_the_prior_plus_both_deltas(catalog):
    store = FakeOpenSearch()
    registry1, state1 = replica(catalog, store)
    registry2, state2 = replica(catalog, store)
    p1, p2 = policy_of(registry1), policy_of(registry2)
    assert p1 is not p2
    d1a = learn(p1, "a", [(X1, 1.0), (X2, 0.0)])
    d1b = learn(p1, "b", [(X3, 1.0)])
    d2a = learn(p2, "a", [(X3, 2.0)])
    d2b = learn(p2, "b", [(X1, 0.5), (X2, 1.5)])

    for _ in range(2):
        sync(state1)
        sync(state2)

    expected_a, expected_b = total(d1a, d2a), total(d1b, d2b)
    # By hand: A[0][0] = ridge + 3 observations with x0 = 1, b[0] = 1 + 0 + 2, n = 3.
    assert expected_a[0][0, 0] == 5.0
    assert expected_a[1][0] == 3.0
    assert expected_a[2] == 3
    for policy in (p1, p2):
        assert_local(policy, "a", expected_a)
        assert_local(policy, "b", expected_b)
        assert_nothing_pending(policy)
    assert_doc(stored(store, "a"), expected_a)
    assert_doc(stored(store, "b"), expected_b)
    np.testing.assert_array_equal(p1.stats.a, p2.stats.a)
    np.testing.assert_array_equal(p1.stats.b, p2.stats.b)

    seq_no = store.seq_no
    sync(state1)
    sync(state2)
    assert store.seq_no == seq_no  # converged: nothing more to write


def test_a_conflicting_write_is_read_again_and_counted_once(catalog):
    store = FakeOpenSearch()
    registry1, state1 = replica(catalog, store)
    registry2, state2 = replica(catalog, store)
    p1, p2 = policy_of(registry1), policy_of(registry2)
    d0 = learn(p1, "a", [(X1, 1.0)])
    sync(state1)
    sync(state2)  # replica 2 has its catalog record checked and the arm read
    d1 = learn(p1, "a", [(X2, 1.0)])
    d2 = learn(p2, "a", [(X3, 2.0)])
    bulks = store.count("/_bulk")

    def concurrent_write():  # replica 2 merges between replica 1's read and its write
        doc = stored(store, "a")
        a, b, n = d2
        doc["a"] = (np.asarray(doc["a"]) + a).tolist()
        doc["b"] = (np.asarray(doc["b"]) + b).tolist()
        doc["n"] += n
        store.put(STATE_INDEX, "music:a", doc)
        p2.stats.take_pending(0)  # replica 2 has merged its delta

    store.on_next("/_bulk", concurrent_write)
    sync(state1)

    assert state1.snapshot()["music"]["conflicts"] == 1
    assert state1.snapshot()["music"]["last_error"] is None
    assert store.count("/_bulk") == bulks + 2  # the conflicting write and its retry
    assert_doc(stored(store, "a"), total(d0, d2, d1))
    assert_local(p1, "a", total(d0, d2, d1))
    assert_nothing_pending(p1)

    sync(state2)
    assert_local(p2, "a", total(d0, d1, d2))


def test_a_merge_that_keeps_conflicting_keeps_its_delta_for_the_next_round(catalog):
    store = FakeOpenSearch()
    registry, state = replica(catalog, store)
    policy = policy_of(registry)
    d0 = learn(policy, "a", [(X1, 1.0)])
    sync(state)
    d1 = learn(policy, "a", [(X2, 3.0)])

    def touch():  # another writer rewrites the document (same content, new seq_no)
        store.put(STATE_INDEX, "music:a", stored(store, "a"))

    store.on_next("/_bulk", touch, times=MAX_ATTEMPTS)
    sync(state)

    snapshot = state.snapshot()["music"]
    assert snapshot["conflicts"] == MAX_ATTEMPTS
    assert "still conflicting" in snapshot["last_error"]
    assert snapshot["merges"] == 1
    assert_doc(stored(store, "a"), total(d0))
    assert int(policy.stats.pending_n[0]) == 1  # given back, not lost

    sync(state)
    assert state.snapshot()["music"]["last_error"] is None
    assert_doc(stored(store, "a"), total(d0, d1))
    assert_local(policy, "a", total(d0, d1))
    assert_nothing_pending(policy)


@pytest.mark.parametrize("failing", [f"/{STATE_INDEX}/_mget", "/_bulk"])
def test_a_failing_store_gives_the_delta_back_and_it_is_merged_once_later(catalog, failing):
    store = FakeOpenSearch()
    registry, state = replica(catalog, store)
    policy = policy_of(registry)
    sync(state)  # the catalog record is written: the next requests are the arms' merge
    delta = learn(policy, "a", [(X1, 1.0), (X3, -1.0)])

    store.fail_next(failing, 500)
    sync(state)  # logged, not raised

    assert "500" in state.snapshot()["music"]["last_error"]
    assert stored(store, "a") is None
    assert int(policy.stats.pending_n[0]) == 2
    assert_local(policy, "a", total(delta))  # still served locally meanwhile

    later = learn(policy, "a", [(X2, 1.0)])
    sync(state)
    assert state.snapshot()["music"]["last_error"] is None
    assert_doc(stored(store, "a"), total(delta, later))
    assert_local(policy, "a", total(delta, later))
    assert_nothing_pending(policy)


def test_an_item_that_fails_does_not_make_the_written_ones_count_twice(catalog):
    store = FakeOpenSearch()
    registry, state = replica(catalog, store)
    policy = policy_of(registry)
    sync(state)
    delta_a = learn(policy, "a", [(X1, 1.0)])
    delta_b = learn(policy, "b", [(X2, 1.0)])

    store.force_item(STATE_INDEX, "music:a", 429)  # rejected; b, after it, is written
    sync(state)
    assert stored(store, "a") is None
    assert_doc(stored(store, "b"), total(delta_b))

    sync(state)
    assert_doc(stored(store, "a"), total(delta_a))
    assert_doc(stored(store, "b"), total(delta_b))  # fails: b's delta was merged twice


# -- layouts and catalog changes --------------------------------------------------------------


def test_a_document_for_another_feature_layout_is_ignored_and_overwritten(catalog):
    store = FakeOpenSearch()
    foreign = {
        "layout": layout_digest(["some", "other", "layout"]),
        "ridge": RIDGE,
        "a": (np.eye(D) * 7.0).tolist(),
        "b": np.ones(D).tolist(),
        "n": 40,
    }
    store.put(STATE_INDEX, "music:a", {**foreign, "target": "music", "arm": "a"})
    registry, state = replica(catalog, store)
    layout = layout_digest(registry.runtimes()[0].agent.feature_names)
    misshapen = {**foreign, "layout": layout, "a": np.eye(3).tolist(), "b": [0.0] * 3}
    store.put(STATE_INDEX, "music:b", {**misshapen, "target": "music", "arm": "b"})
    policy = policy_of(registry)
    delta = learn(policy, "a", [(X1, 1.0)])

    sync(state)

    # a: the prior plus this replica's delta, not 7·I + delta; b: reset to the prior.
    assert_doc(stored(store, "a"), total(delta))
    assert stored(store, "a")["layout"] == layout
    assert_doc(stored(store, "b"), total())
    assert stored(store, "b")["layout"] == layout
    assert_local(policy, "a", total(delta))
    assert_local(policy, "b", total())


def test_a_changed_catalog_drops_removed_arms_and_keeps_the_others(catalog, tmp_path):
    store = FakeOpenSearch()
    old_registry, old_state = replica(catalog, store)
    old_policy = policy_of(old_registry)
    delta_a = learn(old_policy, "a", [(X1, 1.0), (X2, 2.0)])
    learn(old_policy, "b", [(X3, 1.0)])
    sync(old_state)
    assert store.ids(STATE_INDEX) == {"music:_catalog", "music:a", "music:b"}

    catalog.write_text(catalog_yaml(("a", "c")))  # a replica restarts with the new catalog
    registry, state = replica(catalog, store)
    (runtime,) = registry.runtimes()
    sync(state)

    assert store.ids(STATE_INDEX) == {"music:_catalog", "music:a"}
    assert stored(store, "_catalog")["arms"] == ["a", "c"]
    assert stored(store, "_catalog")["catalog"] == runtime.catalog.digest
    assert runtime.catalog.digest != old_registry.runtimes()[0].catalog.digest
    assert_doc(stored(store, "a"), total(delta_a))
    assert_local(runtime.agent.policy, "a", total(delta_a))  # kept from the shared state
    assert_local(runtime.agent.policy, "c", total())  # new: the prior

    delta_c = learn(runtime.agent.policy, "c", [(X3, 1.0)])
    sync(state)
    assert_doc(stored(store, "c"), total(delta_c))


def test_a_reload_carries_shared_arms_and_their_pending_delta(catalog):
    store = FakeOpenSearch()
    registry, state = replica(catalog, store)
    old_policy = policy_of(registry)
    synced = learn(old_policy, "a", [(X1, 1.0)])
    learn(old_policy, "b", [(X2, 1.0)])
    sync(state)
    pending = learn(old_policy, "a", [(X3, 2.0)])  # not merged yet when the catalog changes

    catalog.write_text(catalog_yaml(("c", "a")))
    assert registry.reload()
    policy = policy_of(registry)
    assert policy is not old_policy
    assert [arm.name for arm in policy.arms] == ["c", "a"]
    sync(state)

    assert store.ids(STATE_INDEX) == {"music:_catalog", "music:a"}
    assert stored(store, "_catalog")["arms"] == ["c", "a"]
    assert_doc(stored(store, "a"), total(synced, pending))
    assert_local(policy, "a", total(synced, pending))
    assert_local(policy, "c", total())
    assert_nothing_pending(policy)
    assert list(state.snapshot()) == ["music"]
    assert state.snapshot()["music"]["merges"] == 1  # a new policy is tracked afresh


def test_carry_over_copies_the_arms_both_policies_share():
    config = PolicyConfig("linucb", ridge=RIDGE)
    old = make_policy(config, [ArmSpec("a", 1, 10), ArmSpec("b", 1, 10)], D, 1)
    new = make_policy(config, [ArmSpec("c", 1, 10), ArmSpec("a", 1, 10)], D, 1)
    delta_a = learn(old, "a", [(X1, 1.0), (X2, -1.0)])
    learn(old, "b", [(X3, 1.0)])

    assert carry_over(old, new) == ["a"]

    assert_local(new, "a", total(delta_a))
    assert_local(new, "c", total())
    for name in ("pending_a", "pending_b", "pending_n"):
        np.testing.assert_array_equal(getattr(new.stats, name)[1], getattr(old.stats, name)[0])
    assert int(new.stats.pending_n[1]) == 2
    assert not new.stats.pending_n[0]
    learn(old, "a", [(X3, 5.0)])  # copies, not views: the old policy learns on alone
    assert_local(new, "a", total(delta_a))


def test_carry_over_copies_nothing_between_unlike_policies():
    arms = [ArmSpec("a", 1, 10)]
    linucb = make_policy(PolicyConfig("linucb"), arms, D, 1)
    learn(linucb, "a", [(X1, 1.0)])
    wider = make_policy(PolicyConfig("linucb"), arms, D + 1, 1)
    static = make_policy(PolicyConfig("static"), arms, D, 1)

    assert carry_over(linucb, wider) == []
    assert carry_over(linucb, static) == []
    assert carry_over(static, linucb) == []
    assert not wider.stats.counts.any()


def test_the_fake_store_guards_writes_as_opensearch_does():
    store = FakeOpenSearch()

    def meta(doc_id, **guard):
        return {"_index": "idx", "_id": doc_id, **guard}

    async def scenario():
        assert await mget(store, "idx", ["1"]) == {}  # no index yet
        created = await bulk(store, [({"create": meta("1")}, {"x": {"y": 1}, "w": 0})])
        read = await mget(store, "idx", ["1", "2"])
        written = await bulk(
            store,
            [
                ({"create": meta("1")}, {"x": 0}),
                ({"index": meta("1", if_seq_no=9, if_primary_term=1)}, {}),
                ({"index": meta("2", if_seq_no=0, if_primary_term=1)}, {}),
                ({"update": meta("1")}, {"doc": {"x": {"z": 2}, "w": 3}}),
                ({"update": meta("2")}, {"doc": {"x": 1}}),
            ],
        )
        updated = store.source("idx", "1")
        removed = await bulk(
            store,
            [
                ({"index": meta("1", if_seq_no=1, if_primary_term=2)}, {}),
                ({"index": meta("1", if_seq_no=1, if_primary_term=1)}, {"v": 1}),
                ({"delete": meta("1")}, None),
                ({"delete": meta("1")}, None),
            ],
        )
        return created, read, written, updated, removed

    created, read, written, updated, removed = asyncio.run(scenario())
    assert [(status, result["_seq_no"]) for status, result in created] == [(201, 0)]
    assert list(read) == ["1"]
    assert (read["1"].source, read["1"].seq_no, read["1"].primary_term) == (
        {"x": {"y": 1}, "w": 0},
        0,
        1,
    )
    assert [status for status, _ in written] == [409, 409, 409, 200, 404]
    assert written[3][1]["_seq_no"] == 1
    assert updated == {"x": {"y": 1, "z": 2}, "w": 3}
    assert [status for status, _ in removed] == [409, 200, 200, 404]
    assert store.ids("idx") == set()


def test_merges_conflicts_and_failures_are_counted_in_the_metrics(catalog):
    from ltrr.plugin.runtime import metrics

    def value(name):
        return metrics.REGISTRY.get_sample_value(name, {"target": "music"}) or 0.0

    names = ("ltrr_state_merges_total", "ltrr_state_conflicts_total")
    names += ("ltrr_state_merge_failures_total",)
    before = [value(name) for name in names]
    store = FakeOpenSearch()
    registry, state = replica(catalog, store)
    policy = policy_of(registry)
    learn(policy, "a", [(X1, 1.0)])
    sync(state)  # merged
    learn(policy, "a", [(X2, 3.0)])

    def touch():
        store.put(STATE_INDEX, "music:a", stored(store, "a"))

    store.on_next("/_bulk", touch, times=MAX_ATTEMPTS)
    sync(state)  # conflicts on every attempt, and fails
    sync(state)  # merged
    moved = [value(name) - was for name, was in zip(names, before, strict=True)]
    assert moved == [2, MAX_ATTEMPTS, 1]
