import pytest

from ltrr.query_plans.catalog import BUILTIN_TEMPLATES, FallbackArm, load_catalog
from tests.query_plans.catalog._minimal import catalog_text, errors_of, model_folder, write


def test_targets_and_arm_fields(tmp_path):
    text = catalog_text(
        ("target: music", 'target: [music, "books-*"]'),
        ("    size: {min: 5, max: 10}\n", "    size: {min: 5, max: 10}\n    cost: 0\n"),
        (
            "    size: {max: 10}\n",
            "    size: {max: 10}\n    needs_vector: false\n    index: popular-v2\n",
        ),
    )
    catalog = load_catalog(write(tmp_path, text))
    assert catalog.targets == ("music", "books-*")
    lexical, popular = catalog.arms
    assert (lexical.min_size, lexical.max_size, lexical.cost, lexical.index) == (5, 10, 0.0, None)
    assert type(lexical.cost) is float
    assert (popular.min_size, popular.needs_vector, popular.index) == (0, False, "popular-v2")
    assert popular.template == BUILTIN_TEMPLATES / "rank_feature.json.j2"
    assert popular.params == {"field": "popularity", "text_fields": ["name"]}
    assert catalog.fallback == (FallbackArm("lexical", 5),)


def test_a_null_arm_index_means_the_request_target(tmp_path):
    text = catalog_text(("    size: {max: 10}\n", "    size: {max: 10}\n    index: null\n"))
    assert load_catalog(write(tmp_path, text)).arm("popular").index is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param(
            catalog_text(("target: music", "target: []")),
            [(1, "target", "must list at least one of indices, aliases or patterns")],
            id="target-empty-list",
        ),
        pytest.param(
            catalog_text(("target: music", 'target: [music, "a b"]')),
            [(1, "target[1]", "'a b' is not one index, alias or pattern; list several instead")],
            id="target-item-with-space",
        ),
        pytest.param(
            catalog_text(("    size: {max: 10}\n", "    size: 10\n")),
            [(12, "arms[1].size", "must be a mapping, got 10")],
            id="size-not-mapping",
        ),
        pytest.param(
            catalog_text(("    size: {max: 10}\n", "    size: {max: 10}\n    index: ''\n")),
            [(13, "arms[1].index", "must not be empty")],
            id="arm-index-empty",
        ),
        pytest.param(
            catalog_text(
                (
                    "  - name: popular\n    template: rank_feature.json.j2\n    params:",
                    "  - params:",
                )
            ),
            [
                (9, "arms[1].name", "required key is missing"),
                (9, "arms[1].template", "required key is missing"),
            ],
            id="arm-without-name-and-template",
        ),
    ],
)
def test_target_and_arm_errors(tmp_path, text, expected):
    assert errors_of(tmp_path, text) == expected


def test_arms_must_be_a_list_and_nothing_else_is_blamed(tmp_path):
    text = "target: music\nbudget: 20\npolicy: {name: static}\narms: lexical\n"
    text += "fallback:\n  - {arm: lexical, size: 5}\n"
    # the fallback's arm cannot be checked against arms that did not parse: one error only
    assert errors_of(tmp_path, text) == [(4, "arms", "must be a list of arms, got 'lexical'")]


@pytest.mark.parametrize(
    ("entry", "expected"),
    [
        pytest.param(
            "{arm: lexical}",
            [(14, "fallback[0].size", "required key is missing")],
            id="size-missing",
        ),
        pytest.param(
            "{arm: lexical, size: 0}",
            [(14, "fallback[0].size", "must be >= 1, got 0")],
            id="size-zero",
        ),
        pytest.param(
            "{arm: lexical, size: 5, weight: 2}",
            [(14, "fallback[0].weight", "unknown key 'weight' (expected one of: arm, size)")],
            id="unknown-key",
        ),
    ],
)
def test_fallback_entry_errors(tmp_path, entry, expected):
    text = catalog_text(("{arm: lexical, size: 5}", entry))
    assert errors_of(tmp_path, text) == expected


def test_the_fallback_may_not_use_a_vector_arm(tmp_path):
    model_folder(tmp_path)
    text = catalog_text(
        ("    size: {max: 10}\n", "    size: {max: 10}\n    needs_vector: true\n"),
        ("{arm: lexical, size: 5}", "{arm: popular, size: 5}"),
        append="embedding: {model: model}\n",
    )
    ((line, key, message),) = errors_of(tmp_path, text)
    assert (line, key) == (15, "fallback[0].arm")
    assert message.startswith("arm 'popular' needs a query vector; the fallback also runs when")
