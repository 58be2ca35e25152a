import dataclasses

from ltrr.query_plans.catalog import model, schema
from ltrr.query_plans.fusion import METHODS


def field_names(cls: type) -> set[str]:
    return {f.name for f in dataclasses.fields(cls)}


def test_key_tuples_have_no_repeats_and_required_keys_are_known():
    for keys in (
        schema.TOP_KEYS,
        schema.ARM_KEYS,
        schema.FEATURE_KEYS,
        schema.INDEX_KEYS,
        schema.FEEDBACK_KEYS,
        schema.DEBIAS_KEYS,
        schema.MEMORY_KEYS,
    ):
        assert len(set(keys)) == len(keys), keys
    assert set(schema.TOP_REQUIRED) <= set(schema.TOP_KEYS)
    assert schema.TOP_REQUIRED == ("target", "budget", "policy", "arms", "fallback")


def test_section_keys_match_the_model_fields():
    assert set(schema.FEATURE_KEYS) == field_names(model.FeatureConfig)
    assert set(schema.FEEDBACK_KEYS) == field_names(model.FeedbackConfig)
    assert set(schema.DEBIAS_KEYS) == field_names(model.DebiasConfig)
    assert set(schema.MEMORY_KEYS) == field_names(model.MemoryConfig)
    # an arm's ``size`` becomes min_size and max_size
    assert set(schema.ARM_KEYS) - {"size"} | {"min_size", "max_size"} == field_names(model.Arm)
    assert set(schema.FUSION_METHODS) == set(METHODS)


def test_bounds_are_ordered_and_hold_the_defaults():
    assert 0 < schema.MIN_FEEDBACK_WINDOW_SECONDS < schema.MAX_FEEDBACK_WINDOW_SECONDS
    assert schema.MAX_FEEDBACK_WINDOW_SECONDS == 604_800
    assert 0 < schema.MIN_FLUSH_SECONDS < schema.MAX_FLUSH_SECONDS
    feedback, memory = model.FeedbackConfig(), model.MemoryConfig()
    assert (
        schema.MIN_FEEDBACK_WINDOW_SECONDS
        <= feedback.window_seconds
        <= schema.MAX_FEEDBACK_WINDOW_SECONDS
    )
    assert 1 <= feedback.max_events <= schema.MAX_FEEDBACK_EVENTS
    assert feedback.credit in schema.CREDIT_RULES
    assert schema.MIN_FLUSH_SECONDS <= memory.flush_seconds <= schema.MAX_FLUSH_SECONDS
    assert model.FusionConfig().method in schema.FUSION_METHODS
    assert model.FusionConfig().norm in schema.NORMS
    assert schema.MAX_DEPTH < schema.MAX_NODES


def test_builtin_templates_hold_the_shipped_templates():
    folder = schema.BUILTIN_TEMPLATES
    assert folder.is_absolute()
    assert folder.is_dir()
    assert {p.name for p in folder.glob("*.j2")} == {
        "knn.json.j2",
        "memory.json.j2",
        "multi_match.json.j2",
        "rank_feature.json.j2",
    }


def test_name_patterns():
    assert schema.ARM_NAME.fullmatch("name_ngram2")
    assert not schema.ARM_NAME.fullmatch("Name")
    assert not schema.ARM_NAME.fullmatch("a-b")
    assert schema.EVENT_TYPE.fullmatch("cart:add.v2-x_Y")
    assert not schema.EVENT_TYPE.fullmatch("x" * 65)
    assert not schema.EVENT_TYPE.fullmatch("add to cart")
    match = schema.ENV_REF.fullmatch("${LTRR_MODEL_DIR:-/models/a}")
    assert match is not None
    assert match.groups() == ("LTRR_MODEL_DIR", "/models/a")
    assert schema.ENV_REF.fullmatch("${X}").groups() == ("X", None)
    assert schema.ENV_REF.fullmatch("${9X}") is None
