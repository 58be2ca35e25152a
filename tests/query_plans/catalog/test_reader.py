import pytest
import yaml

from ltrr.query_plans.catalog.reader import (
    BAD,
    CatalogError,
    Reader,
    show_node,
    suggest,
)


def compose(text: str) -> yaml.Node:
    return yaml.compose(text, Loader=yaml.SafeLoader)


def reader(**environ: str) -> Reader:
    return Reader("cat.yml", environ)


def value_of(text: str, name: str = "v") -> yaml.Node:
    """The value node of ``name`` in a one-level mapping."""
    for key, value in compose(text).value:
        if key.value == name:
            return value
    raise AssertionError(name)


def errors(r: Reader) -> list[tuple[int | None, str, str]]:
    return [(e.line, e.key, e.message) for e in r.errors]


# -- CatalogError -----------------------------------------------------------------------------


def test_catalog_error_formats_path_line_and_key():
    error = CatalogError("cat.yml", 14, "arms[1].size.max", "must be >= 1, got 0")
    assert str(error) == "cat.yml:14: arms[1].size.max: must be >= 1, got 0"
    assert (error.path, error.line, error.key, error.message) == (
        "cat.yml",
        14,
        "arms[1].size.max",
        "must be >= 1, got 0",
    )
    assert isinstance(error, ValueError)
    assert str(CatalogError("cat.yml", None, "budget", "bad")) == "cat.yml: budget: bad"
    assert str(CatalogError("cat.yml", 3, "", "bad")) == "cat.yml:3: bad"


# -- mappings ---------------------------------------------------------------------------------


def test_unknown_key_is_suggested_at_its_own_line():
    r = reader()
    fields = r.mapping(compose("name: a\nsise: 3\n"), "arms[0]", ("name", "size"))
    assert fields is not None
    assert list(fields) == ["name"]
    assert errors(r) == [(2, "arms[0].sise", "unknown key 'sise'; did you mean 'size'?")]


def test_unknown_key_without_a_close_match_lists_the_choices():
    r = reader()
    r.mapping(compose("zzz: 1\n"), "", ("name", "size"))
    assert errors(r) == [(1, "zzz", "unknown key 'zzz' (expected one of: name, size)")]


def test_missing_required_key_is_reported_at_the_mapping():
    r = reader()
    r.mapping(compose("x: 0\nsection:\n  a: 1\n").value[1][1], "section", ("a", "b"), ("a", "b"))
    assert errors(r) == [(3, "section.b", "required key is missing")]


def test_a_misspelled_required_key_is_not_also_reported_missing():
    r = reader()
    r.mapping(compose("nmae: x\n"), "arm", ("name",), ("name",))
    assert errors(r) == [(1, "arm.nmae", "unknown key 'nmae'; did you mean 'name'?")]


def test_duplicate_key_names_the_first_line():
    r = reader()
    fields = r.mapping(compose("a: 1\nb: 2\na: 3\n"), "top", None)
    assert fields is not None
    assert fields["a"].value.value == "1"  # the first one is kept
    assert errors(r) == [(3, "top.a", "duplicate key (first at line 1)")]


def test_own_keys_override_merged_ones_without_a_duplicate_error():
    r = reader()
    node = compose("base: &b {x: 1, y: 2}\nv:\n  <<: *b\n  y: 5\n").value[1][1]
    fields = r.mapping(node, "v", ("x", "y"))
    assert fields is not None
    assert {k: f.value.value for k, f in fields.items()} == {"x": "1", "y": "5"}
    assert r.errors == []
    # read again (an alias is read once per use): still no false duplicate
    assert r.mapping(node, "v", ("x", "y")) is not None
    assert r.errors == []


def test_keys_must_be_strings_and_a_mapping_must_be_a_mapping():
    r = reader()
    fields = r.mapping(compose("1: a\nok: b\n"), "m", None)
    assert fields is not None
    assert list(fields) == ["ok"]
    assert r.mapping(compose("m: [1, 2]\n").value[0][1], "m", None) is None
    assert errors(r) == [
        (1, "m", "keys must be strings, got 1"),
        (1, "m", "must be a mapping, got a list"),
    ]


# -- scalars ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "low", "high", "expected", "message"),
    [
        ("v: 5", 1, 10, 5, None),
        ("v: 1", 1, 10, 1, None),
        ("v: 10", 1, 10, 10, None),
        ("v: 0", 1, 10, None, "must be between 1 and 10, got 0"),
        ("v: 11", 1, 10, None, "must be between 1 and 10, got 11"),
        ("v: -3", 0, None, None, "must be >= 0, got -3"),
        ("v: 2.0", 0, None, None, "must be an integer, got 2.0"),
        ("v: true", 0, None, None, "must be an integer, got true"),
        ("v: '7'", 0, None, None, "must be an integer, got '7'"),
    ],
)
def test_integer_bounds_and_type(text, low, high, expected, message):
    r = reader()
    assert r.integer(value_of("x: 0\n" + text), "v", low, high) == expected
    assert errors(r) == ([] if message is None else [(2, "v", message)])


@pytest.mark.parametrize(
    ("text", "strict", "expected", "message"),
    [
        ("v: 0", False, 0.0, None),
        ("v: 0", True, None, "must be > 0.0, got 0"),
        ("v: 0.001", True, 0.001, None),
        ("v: -0.5", False, None, "must be >= 0.0, got -0.5"),
        ("v: .inf", False, None, "must be a number, got .inf"),
        ("v: .nan", False, None, "must be a number, got .nan"),
        ("v: false", False, None, "must be a number, got false"),
    ],
)
def test_number_bounds_and_type(text, strict, expected, message):
    r = reader()
    assert r.number(value_of(text), "v", 0.0, strict=strict) == expected
    assert errors(r) == ([] if message is None else [(1, "v", message)])


def test_number_is_a_float_and_has_an_upper_bound():
    r = reader()
    value = r.number(value_of("v: 3"), "v", 0.0, 5.0)
    assert value == 3.0
    assert type(value) is float
    assert r.number(value_of("v: 5.5"), "v", 0.0, 5.0) is None
    assert errors(r) == [(1, "v", "must be between 0.0 and 5.0, got 5.5")]


def test_boolean_takes_yaml_booleans_only():
    r = reader()
    assert r.boolean(value_of("v: false"), "v") is False
    assert r.boolean(value_of("v: yes"), "v") is True  # YAML 1.1, as PyYAML reads it
    assert r.boolean(value_of("v: 1"), "v") is None
    assert r.boolean(value_of("v: 'true'"), "v") is None
    assert errors(r) == [
        (1, "v", "must be true or false, got 1"),
        (1, "v", "must be true or false, got 'true'"),
    ]


def test_choice_suggests_or_lists():
    r = reader()
    choices = ("rrf", "combsum", "combmnz")
    assert r.choice(value_of("v: combsum"), "v", choices) == "combsum"
    assert r.choice(value_of("v: combsun"), "v", choices) is None
    assert r.choice(value_of("v: max"), "v", choices) is None
    assert errors(r) == [
        (1, "v", "unknown value 'combsun'; did you mean 'combsum'?"),
        (1, "v", "unknown value 'max' (expected one of: rrf, combsum, combmnz)"),
    ]


def test_text_refuses_blank_and_non_strings():
    r = reader()
    assert r.text(value_of("v: '  '"), "v") is None
    assert r.text(value_of("v: 12"), "v") is None
    assert r.text(value_of("v: [a]"), "v") is None
    assert errors(r) == [
        (1, "v", "must not be empty"),
        (1, "v", "must be a string, got 12"),
        (1, "v", "must be a single value, got a list"),
    ]


def test_sequence_must_be_a_non_empty_list():
    r = reader()
    items = r.sequence(value_of("v: [a, b]"), "v", what="names")
    assert items is not None
    assert [n.value for n in items] == ["a", "b"]
    assert r.sequence(value_of("v: []"), "v", what="names") is None
    assert r.sequence(value_of("v: a"), "v", what="names") is None
    assert errors(r) == [
        (1, "v", "must list at least one of names"),
        (1, "v", "must be a list of names, got 'a'"),
    ]


def test_optional_is_the_default_when_absent_and_none_when_invalid():
    r = reader()
    fields = r.mapping(compose("k: 0\n"), "s", ("k", "m"))
    assert fields is not None
    assert r.optional(fields, "m", "s", lambda n, k: r.integer(n, k, 1), 42) == 42
    assert r.optional(fields, "k", "s", lambda n, k: r.integer(n, k, 1), 42) is None
    assert errors(r) == [(1, "s.k", "must be >= 1, got 0")]


# -- environment ------------------------------------------------------------------------------


def test_environment_variables_expand():
    r = reader(HOST="es", PORT="9200", EMPTY="")
    assert r.text(value_of("v: http://${HOST}:${PORT}/"), "v") == "http://es:9200/"
    assert r.text(value_of("v: ${NOPE:-fallback}"), "v") == "fallback"
    # set-but-empty counts as unset, shell style
    assert r.text(value_of("v: ${EMPTY:-used}"), "v") == "used"
    assert r.text(value_of("v: $HOST and ${HOST"), "v") == "$HOST and ${HOST"  # not references
    assert r.errors == []


def test_an_unset_variable_is_an_error_naming_it():
    r = reader(EMPTY="")
    node = value_of("x: 1\nv: a${NOPE}b${EMPTY}${NOPE}\n")
    assert r.scalar(node, "v") is BAD
    assert errors(r) == [
        (
            2,
            "v",
            "environment variable NOPE, EMPTY is not set (or is empty), so "
            "'a${NOPE}b${EMPTY}${NOPE}' expands to 'ab'; set it, or write ${NOPE:-default}",
        )
    ]


def test_an_empty_default_expands_to_an_empty_text():
    r = reader()
    assert r.scalar(value_of("v: ${NOPE:-}"), "v") == ""
    assert r.text(value_of("v: ${NOPE:-}"), "v") is None
    assert errors(r) == [(1, "v", "must not be empty")]


# -- free-form data ---------------------------------------------------------------------------


def test_plain_reads_json_like_data_with_env_expansion():
    r = reader(F="title")
    value = r.plain(value_of("v: {fields: ['${F}^2', n], boost: 1.5, flag: true, none: null}"), "v")
    assert value == {"fields": ["title^2", "n"], "boost": 1.5, "flag": True, "none": None}
    assert r.errors == []


def test_plain_refuses_non_json_scalars_at_their_key():
    r = reader()
    node = value_of("v:\n  a: 1\n  b: [x, .nan]\n  c: 2024-01-01\n")
    assert r.plain(node, "v") is BAD
    assert errors(r) == [
        (3, "v.b[1]", "must be a finite number, got .nan"),
        (
            4,
            "v.c",
            "must be a string, number, boolean or null, got 2024-01-01 (a date); "
            "quote it to keep it as text",
        ),
    ]


def test_plain_stops_a_recursive_alias():
    r = reader()
    assert r.plain(value_of("v: &a [1, *a]\n"), "v") is BAD
    assert errors(r) == [
        # the first node deeper than 64 levels: the leading 1 of the 65th list
        (1, "v" + "[1]" * 64 + "[0]", "too deeply nested (a recursive YAML alias?)")
    ]


def test_plain_mapping_must_be_a_mapping_and_is_read_only():
    r = reader()
    value = r.plain_mapping(value_of("v: {a: 1}"), "v")
    assert value == {"a": 1}
    with pytest.raises(TypeError):
        value["a"] = 2  # type: ignore[index]
    assert r.plain_mapping(value_of("v: 3"), "v") is None
    assert errors(r) == [(1, "v", "must be a mapping, got 3")]


# -- helpers ----------------------------------------------------------------------------------


def test_show_node_and_suggest():
    assert show_node(value_of("v: " + "x" * 41)) == repr("x" * 37 + "...")
    assert show_node(value_of("v: " + "x" * 40)) == repr("x" * 40)
    assert show_node(value_of("v: null")) == "null"
    assert show_node(value_of("v: 1.5")) == "1.5"
    assert show_node(value_of("v: {a: 1}")) == "a mapping"
    assert suggest("lexicl", ["lexical", "dense"]) == "; did you mean 'lexical'?"
    assert suggest("zz", ["lexical", "dense"]) == " (expected one of: lexical, dense)"
    assert suggest("zz", []) == ""


def test_a_recursive_alias_does_not_spoil_later_reads():
    r = reader()
    root = compose("a: &x [*x]\nb: {ok: 1}\nc: 2024-01-01\n")
    (_, a), (_, b), (_, c) = root.value
    assert r.plain(a, "a") is BAD
    assert r.plain(b, "b") == {"ok": 1}
    assert r.plain(c, "c") is BAD
    assert [e.key for e in r.errors][1:] == ["c"]
