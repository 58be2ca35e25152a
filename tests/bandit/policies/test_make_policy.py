import pytest

from ltrr.bandit.decision import ArmSpec
from ltrr.bandit.policies import (
    EpsilonGreedy,
    LinearThompson,
    LinUCB,
    PolicyConfig,
    PolicyConfigError,
    StaticPolicy,
    make_policy,
)
from ltrr.bandit.policies.base import POLICY_NAMES

ARMS = [ArmSpec("a", 0, 10), ArmSpec("b", 0, 10)]


@pytest.mark.parametrize(
    ("name", "cls"),
    [
        ("linucb", LinUCB),
        ("thompson", LinearThompson),
        ("epsilon_greedy", EpsilonGreedy),
        ("static", StaticPolicy),
    ],
)
def test_make_policy_by_name(name, cls):
    policy = make_policy(PolicyConfig(name), ARMS, 4, seed=1)
    assert type(policy) is cls
    assert policy.name == name
    assert policy.arms == tuple(ARMS)
    assert policy.n_features == 4


def test_every_configurable_name_has_a_policy():
    for name in POLICY_NAMES:
        assert make_policy(PolicyConfig(name), ARMS, 2, seed=None).name == name


def test_unknown_name():
    with pytest.raises(PolicyConfigError) as info:
        make_policy(PolicyConfig("ucb1"), ARMS, 2, seed=None)
    assert info.value.key == "name"
