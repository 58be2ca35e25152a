import pytest

from ltrr.query_plans.catalog import (
    ContextField,
    EmbeddingConfig,
    FeatureConfig,
    load_catalog,
)
from tests.query_plans.catalog._minimal import catalog_text, errors_of, write


def test_features_at_their_bounds(tmp_path):
    text = catalog_text(
        append=(
            "features:\n"
            "  entity_field: null\n"
            "  entity_refresh_seconds: 0.5\n"
            "  entity_max: 1\n"
            "  context: {}\n"
            "  hash_buckets: 1024\n"
        )
    )
    assert load_catalog(write(tmp_path, text)).features == FeatureConfig(
        entity_field=None,
        entity_refresh_seconds=0.5,
        entity_max=1,
        context=(),
        hash_buckets=1024,
    )


def test_context_keeps_the_written_order(tmp_path):
    text = catalog_text(append="features:\n  context: {locale: categorical, age: numeric}\n")
    assert load_catalog(write(tmp_path, text)).features.context == (
        ContextField("locale", "categorical"),
        ContextField("age", "numeric"),
    )


def test_an_embedding_no_arm_uses_is_read_but_its_folder_is_not_checked(tmp_path):
    text = catalog_text(append="embedding: {model: models/none, max_length: 2, cache_size: 0}\n")
    catalog = load_catalog(write(tmp_path, text))
    assert catalog.embedding == EmbeddingConfig(
        model=tmp_path / "models" / "none", max_length=2, cache_size=0
    )


@pytest.mark.parametrize(
    ("append", "expected"),
    [
        pytest.param(
            "features: {entity_refresh_seconds: 0}\n",
            [(15, "features.entity_refresh_seconds", "must be > 0.0, got 0")],
            id="refresh-zero",
        ),
        pytest.param(
            "features:\n  entity_field: ''\n  entity_max: 1.5\n",
            [
                (16, "features.entity_field", "must not be empty"),
                (17, "features.entity_max", "must be an integer, got 1.5"),
            ],
            id="entity-field-and-max",
        ),
        pytest.param(
            "features: {context: [segment]}\n",
            [(15, "features.context", "must be a mapping, got a list")],
            id="context-list",
        ),
        pytest.param(
            "embedding: {max_length: 1}\n",
            [(15, "embedding.model", "required key is missing")],
            id="embedding-without-model",
        ),
        pytest.param(
            "embedding:\n  model: m\n  max_length: 1\n  cache_size: -1\n",
            [
                (17, "embedding.max_length", "must be >= 2, got 1"),
                (18, "embedding.cache_size", "must be >= 0, got -1"),
            ],
            id="embedding-sizes",
        ),
    ],
)
def test_feature_and_embedding_errors(tmp_path, append, expected):
    assert errors_of(tmp_path, catalog_text(append=append)) == expected
