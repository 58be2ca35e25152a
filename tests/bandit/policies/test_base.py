import pytest

from ltrr.bandit.policies.base import PolicyConfig, PolicyConfigError, parse_policy_config


def test_parse_valid():
    config = parse_policy_config(
        "linucb", {"alpha": 2, "ridge": 0.5, "min_probability": 0.1, "include": ["a"]}
    )
    assert config == PolicyConfig(
        "linucb", alpha=2.0, ridge=0.5, min_probability=0.1, include=("a",)
    )
    assert parse_policy_config("static", {}) == PolicyConfig("static")


@pytest.mark.parametrize(
    ("name", "params", "key"),
    [
        ("ucb1", {}, "name"),
        ("linucb", {"gamma": 1.0}, "gamma"),
        ("linucb", {"alpha": "1"}, "alpha"),
        ("linucb", {"alpha": True}, "alpha"),
        ("linucb", {"alpha": -0.1}, "alpha"),
        ("epsilon_greedy", {"epsilon": 1.5}, "epsilon"),
        ("thompson", {"v": -1}, "v"),
        ("linucb", {"ridge": 0}, "ridge"),
        ("linucb", {"temperature": 0.0}, "temperature"),
        ("linucb", {"min_probability": 0.6}, "min_probability"),
        ("static", {"include": "a"}, "include"),
        ("static", {"include": [1]}, "include"),
    ],
)
def test_parse_invalid(name, params, key):
    with pytest.raises(PolicyConfigError) as info:
        parse_policy_config(name, params)
    assert info.value.key == key


def test_config_is_immutable():
    config = PolicyConfig("linucb")
    with pytest.raises(AttributeError):
        config.alpha = 2.0  # type: ignore[misc]
