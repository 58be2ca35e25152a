"""CatalogRegistry over catalog files in tmp_path: find, reload, agents and entity caches."""

from __future__ import annotations

import os

import numpy as np
import pytest

from ltrr.plugin.runtime.registry import CatalogRegistry
from ltrr.query_plans.catalog import CatalogError
from ltrr.query_plans.embed import EmbedderError

D = 18  # the base features; these catalogs add no context field
RIDGE = 2.0

ARM = """\
  - name: {name}
    template: multi_match.json.j2
    params: {{fields: [{name}_field]}}
    size: {{min: 1, max: 10}}
"""


def catalog_yaml(arms=("a", "b"), target="music", budget=30, features=""):
    return (
        f"target: {target}\n"
        f"budget: {budget}\n"
        f"policy: {{name: linucb, ridge: {RIDGE}}}\n"
        + (f"features: {{{features}}}\n" if features else "")
        + "arms:\n"
        + "".join(ARM.format(name=name) for name in arms)
        + f"fallback: [{{arm: {arms[0]}, size: 5}}]\n"
    )


def vector_catalog(tmp_path):
    """A catalog with a vector arm whose model folder has both files, neither usable: the
    catalog validates (the files exist), the embedder cannot load."""
    model = tmp_path / "model"
    model.mkdir()
    (model / "model.onnx").write_bytes(b"not a model")
    (model / "tokenizer.json").write_text("not a tokenizer")
    text = catalog_yaml().replace("arms:\n", f"embedding: {{model: {model}}}\narms:\n", 1)
    return text.replace(
        "fallback:",
        "  - {name: dense, template: knn.json.j2, params: {field: embedding},"
        " size: {min: 0, max: 10}, needs_vector: true}\nfallback:",
    )


def write(path, text, mtime):
    """Write a file with an explicit mtime, so change detection never races the file
    system's timestamp resolution."""
    path.write_text(text)
    os.utime(path, (mtime, mtime))
    return path


def loaded(*paths):
    registry = CatalogRegistry(paths, seed=1)
    registry.load_all()
    return registry


def only(registry):
    (runtime,) = registry.runtimes()
    return runtime


@pytest.fixture
def music(tmp_path):
    return write(tmp_path / "music.yml", catalog_yaml(), 1_000)


# --- load_all and find ---


def test_load_all_raises_the_first_bad_catalog(tmp_path, music):
    bad = write(tmp_path / "bad.yml", "target: broken\n", 1_000)
    registry = CatalogRegistry([music, bad], seed=1)
    with pytest.raises(CatalogError):
        registry.load_all()


def test_load_all_raises_when_the_embedder_cannot_load(tmp_path, music):
    write(music, vector_catalog(tmp_path), 1_000)
    with pytest.raises(EmbedderError):
        CatalogRegistry([music]).load_all()


def test_find_by_exact_target_and_by_pattern(tmp_path):
    logs = write(tmp_path / "logs.yml", catalog_yaml(target="[logs-*, metrics]"), 1_000)
    special = write(tmp_path / "special.yml", catalog_yaml(target="logs-special"), 1_000)
    registry = loaded(logs, special)
    by_path = {r.catalog.path: r for r in registry.runtimes()}
    logs_rt, special_rt = by_path[logs.resolve()], by_path[special.resolve()]

    assert registry.find("metrics") is logs_rt
    assert registry.find("logs-2024.01") is logs_rt  # the pattern
    assert registry.find("logs-*") is logs_rt  # the pattern itself is an exact target
    # An exact target wins over a pattern that also matches, whatever the catalog order.
    assert registry.find("logs-special") is special_rt


@pytest.mark.parametrize("target", ["unknown", "logs", "LOGS-2024", "logs-2024,metrics", "log*"])
def test_find_returns_none_for_unknown_targets_and_multi_target_expressions(tmp_path, target):
    logs = write(tmp_path / "logs.yml", catalog_yaml(target="[logs-*, metrics]"), 1_000)
    assert loaded(logs).find(target) is None


def test_state_key_is_the_first_target(tmp_path):
    logs = write(tmp_path / "logs.yml", catalog_yaml(target="[logs-*, metrics]"), 1_000)
    runtime = only(loaded(logs))
    assert runtime.catalog.targets == ("logs-*", "metrics")
    assert runtime.state_key == "logs-*"


# --- reload ---


def test_reload_of_an_unchanged_file_reports_nothing_and_keeps_the_runtime(music):
    registry = loaded(music)
    before = only(registry)
    assert registry.reload() == []
    assert only(registry) is before


def test_reload_keeps_the_agent_when_the_bandit_sees_no_change(music):
    registry = loaded(music)
    before = only(registry)
    write(music, catalog_yaml(budget=40), 2_000)  # the budget is not the bandit's view

    (message,) = registry.reload()

    after = only(registry)
    assert message == f"catalog reloaded: {music.resolve()} ({after.catalog.digest[:12]})"
    assert after is not before
    assert after.catalog.budget == 40
    assert after.catalog.digest != before.catalog.digest
    assert after.agent is before.agent


def test_an_added_arm_makes_a_new_agent_that_carries_the_shared_arms_statistics(music):
    registry = loaded(music)
    old_agent = only(registry).agent
    x = np.zeros(D)
    x[0], x[3] = 1.0, 2.0
    old_agent.policy.update("a", x, 1.5)
    write(music, catalog_yaml(arms=("a", "b", "c")), 2_000)

    registry.reload()

    agent = only(registry).agent
    assert agent is not old_agent
    assert [arm.name for arm in agent.policy.arms] == ["a", "b", "c"]
    s = agent.policy.stats
    assert s.counts.tolist() == [1, 0, 0]
    np.testing.assert_allclose(s.a[0], RIDGE * np.eye(D) + np.outer(x, x))
    np.testing.assert_allclose(s.b[0], 1.5 * x)
    for arm in (1, 2):  # b had nothing to carry; c is new: both at the prior
        np.testing.assert_allclose(s.a[arm], RIDGE * np.eye(D))
        np.testing.assert_allclose(s.b[arm], np.zeros(D))


def test_a_bad_catalog_on_reload_keeps_the_old_one_and_reports_it(music):
    registry = loaded(music)
    before = only(registry)
    write(music, catalog_yaml(budget=0), 2_000)

    (message,) = registry.reload()

    assert message.startswith("catalog reload failed, keeping the previous version: ")
    assert "budget" in message
    assert only(registry) is before
    # Polling does not retry the same bad file, but picks up the next edit.
    assert registry.reload(only_changed=True) == []
    write(music, catalog_yaml(budget=50), 3_000)
    (message,) = registry.reload(only_changed=True)
    assert message.startswith("catalog reloaded: ")
    assert only(registry).catalog.budget == 50
    assert only(registry).agent is before.agent


def test_only_changed_skips_untouched_files_and_notices_a_template_edit(tmp_path):
    template = write(
        tmp_path / "multi_match.json.j2",  # the catalog's folder comes before the built-ins
        '{"multi_match": {"query": {{ query | tojson }}}}',
        1_000,
    )
    music = write(tmp_path / "music.yml", catalog_yaml(), 1_000)
    registry = loaded(music)
    before = only(registry)
    assert before.catalog.arms[0].template == template.resolve()

    assert registry.reload(only_changed=True) == []
    write(template, '{"multi_match": {"query": {{ query | tojson }}, "lenient": true}}', 2_000)
    (message,) = registry.reload(only_changed=True)

    assert message.startswith("catalog reloaded: ")
    assert only(registry).catalog.digest != before.catalog.digest


def test_reload_reports_an_embedder_that_fails_to_load(tmp_path, music):
    registry = loaded(music)
    before = only(registry)
    write(music, vector_catalog(tmp_path), 2_000)

    (message,) = registry.reload()

    assert message.startswith("catalog reload failed, keeping the previous version: ")
    assert only(registry) is before


# --- entities ---


def test_no_entity_field_means_no_entity_cache(music):
    assert only(loaded(music)).entities is None


def test_entity_cache_is_kept_across_reloads_when_the_field_is_unchanged(music):
    write(music, catalog_yaml(features="entity_field: name.keyword"), 1_000)
    registry = loaded(music)
    cache = only(registry).entities
    assert (cache.field, cache.refresh_seconds, cache.max_entries) == (
        "name.keyword",
        300.0,
        100_000,
    )
    cache.loaded_at = 12.0  # as if a dictionary had been read: it must survive the reload

    features = "entity_field: name.keyword, entity_refresh_seconds: 60"
    write(music, catalog_yaml(features=features), 2_000)
    registry.reload()
    assert only(registry).entities is cache
    assert cache.refresh_seconds == 60.0
    assert cache.loaded_at == 12.0

    write(music, catalog_yaml(features="entity_field: title.keyword"), 3_000)
    registry.reload()
    fresh = only(registry).entities
    assert fresh is not cache
    assert fresh.field == "title.keyword"
    assert fresh.loaded_at is None


def test_a_kept_entity_cache_takes_the_new_entity_max(music):
    write(music, catalog_yaml(features="entity_field: name.keyword, entity_max: 10"), 1_000)
    registry = loaded(music)
    assert only(registry).entities.max_entries == 10
    write(music, catalog_yaml(features="entity_field: name.keyword, entity_max: 20"), 2_000)
    registry.reload()
    assert only(registry).entities.max_entries == 20
