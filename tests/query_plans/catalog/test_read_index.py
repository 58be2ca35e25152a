import pytest

from ltrr.query_plans.catalog import load_catalog
from tests.query_plans.catalog._minimal import catalog_text, errors_of, write


def test_index_body_is_plain_data_with_env_expansion(tmp_path, monkeypatch):
    monkeypatch.setenv("LTRR_TEST_SHARDS", "3")
    text = catalog_text(
        append=(
            "index:\n"
            '  settings: {number_of_shards: "${LTRR_TEST_SHARDS}", replicas: "${LTRR_NONE:-1}"}\n'
            "  mappings: {properties: {name: {type: text}}}\n"
            "  aliases: {music_live: {}}\n"
        )
    )
    body = load_catalog(write(tmp_path, text)).index_body
    assert body == {
        "settings": {"number_of_shards": "3", "replicas": "1"},
        "mappings": {"properties": {"name": {"type": "text"}}},
        "aliases": {"music_live": {}},
    }
    with pytest.raises(TypeError):
        body["settings"] = {}  # type: ignore[index]


def test_empty_and_null_index_blocks(tmp_path):
    assert load_catalog(write(tmp_path, catalog_text(append="index: {}\n"))).index_body == {}
    assert load_catalog(write(tmp_path, catalog_text(append="index: null\n"))).index_body is None


@pytest.mark.parametrize(
    ("source", "parsed"),
    [
        ("true", True),
        ("{includes: [name], excludes: [vec]}", {"includes": ["name"], "excludes": ["vec"]}),
    ],
)
def test_more_source_values(tmp_path, source, parsed):
    assert (
        load_catalog(write(tmp_path, catalog_text(append=f"source: {source}\n"))).source == parsed
    )


@pytest.mark.parametrize(
    ("source", "parsed"),
    [("{includes: ['*']}", {"includes": ["*"]}), ("{enabled: true}", {"enabled": True})],
)
def test_a_memory_with_a_whole_source_loads(tmp_path, source, parsed):
    text = catalog_text(append=f"memory: {{}}\nindex:\n  mappings:\n    _source: {source}\n")
    catalog = load_catalog(write(tmp_path, text))
    assert catalog.index_body == {"mappings": {"_source": parsed}}
    assert catalog.memory is not None


@pytest.mark.parametrize(
    ("append", "expected"),
    [
        pytest.param("index: 5\n", [(15, "index", "must be a mapping, got 5")], id="not-mapping"),
        pytest.param(
            "index:\n  settings: [1]\n",
            [(16, "index.settings", "must be a mapping, got a list")],
            id="settings-list",
        ),
    ],
)
def test_index_errors(tmp_path, append, expected):
    assert errors_of(tmp_path, catalog_text(append=append)) == expected


def test_a_source_disabled_as_text_is_refused_at_its_line(tmp_path):
    text = catalog_text(
        append="memory: {}\nindex:\n  mappings:\n    _source:\n      enabled: 'false'\n"
    )
    ((line, key, message),) = errors_of(tmp_path, text)
    # the error points at the _source value (line 19), where enabled is written
    assert (line, key) == (19, "index.mappings._source")
    assert message.startswith("keeps every field (mappings._source.enabled is false) out of")


def test_every_bad_index_block_is_reported(tmp_path):
    text = catalog_text(append="index:\n  settings: 1\n  mappings: 2\n")
    assert [(line, key) for line, key, _ in errors_of(tmp_path, text)] == [
        (16, "index.settings"),
        (17, "index.mappings"),
    ]
