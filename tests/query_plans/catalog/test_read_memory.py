import pytest

from ltrr.query_plans.catalog import MemoryConfig, load_catalog
from tests.query_plans.catalog._minimal import catalog_text, errors_of, write


def test_memory_at_its_bounds(tmp_path):
    text = catalog_text(
        append=(
            "memory:\n"
            "  field: learned\n"
            "  predicted_field: guessed\n"
            "  name_fields: [title, aka]\n"
            "  phrase_fields: []\n"
            "  half_life_days: 0.01\n"
            "  smoothing: 0\n"
            "  predicted_weight: 0\n"
            "  flush_seconds: 3600\n"
            "  max_keys: 100000\n"
        )
    )
    assert load_catalog(write(tmp_path, text)).memory == MemoryConfig(
        field="learned",
        predicted_field="guessed",
        name_fields=("title", "aka"),
        phrase_fields=(),
        half_life_days=0.01,
        smoothing=0.0,
        predicted_weight=0.0,
        flush_seconds=3600.0,
        max_keys=100_000,
    )


def test_an_entity_keeps_a_thousand_learned_keys_unless_told(tmp_path):
    default = load_catalog(write(tmp_path, catalog_text(append="memory: {}\n"))).memory
    assert default is not None
    assert default.max_keys == 1000
    one = load_catalog(write(tmp_path, catalog_text(append="memory: {max_keys: 1}\n"))).memory
    assert one is not None
    assert one.max_keys == 1


def test_the_shortest_flush_is_a_tenth_of_a_second(tmp_path):
    text = catalog_text(append="memory: {flush_seconds: 0.1}\n")
    memory = load_catalog(write(tmp_path, text)).memory
    assert memory is not None
    assert memory.flush_seconds == 0.1


@pytest.mark.parametrize(
    ("append", "expected"),
    [
        pytest.param(
            "memory: {predicted_field: ltrr_q2e}\n",
            [
                (
                    15,
                    "memory.predicted_field",
                    "is 'ltrr_q2e', the same as memory.field; learned and predicted scores"
                    " need a field each",
                )
            ],
            id="predicted-field-is-the-default-field",
        ),
        pytest.param(
            "memory: {half_life_days: -1}\n",
            [(15, "memory.half_life_days", "must be > 0.0, got -1")],
            id="half-life-negative",
        ),
        pytest.param(
            "memory:\n  name_fields: [name, {a: 1}]\n",
            [(16, "memory.name_fields[1]", "must be a single value, got a mapping")],
            id="name-field-mapping",
        ),
        pytest.param(
            "memory:\n  phrase_fields:\n    - tags\n    - tags\n",
            [(18, "memory.phrase_fields[1]", "'tags' is already at line 17")],
            id="phrase-field-twice",
        ),
        pytest.param(
            "memory: {smoothing: true}\n",
            [(15, "memory.smoothing", "must be a number, got true")],
            id="smoothing-bool",
        ),
        pytest.param(
            "memory: {max_keys: 0}\n",
            [(15, "memory.max_keys", "must be between 1 and 100000, got 0")],
            id="max-keys-zero",
        ),
        pytest.param(
            "memory: {max_keys: 2.5}\n",
            [(15, "memory.max_keys", "must be an integer, got 2.5")],
            id="max-keys-fraction",
        ),
    ],
)
def test_memory_errors(tmp_path, append, expected):
    assert errors_of(tmp_path, catalog_text(append=append)) == expected
