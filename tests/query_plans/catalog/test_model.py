from pathlib import Path

import pytest

from ltrr.bandit.decision import ArmSpec
from ltrr.bandit.policies.base import PolicyConfig
from ltrr.query_plans.catalog.model import Arm, Catalog, FallbackArm, FusionConfig


def arm(name: str, **kw: object) -> Arm:
    return Arm(name=name, template=Path("/t.json.j2"), params={}, min_size=0, max_size=10, **kw)


def catalog(*arms: Arm) -> Catalog:
    return Catalog(
        path=Path("/c.yml"),
        targets=("music",),
        arms=arms,
        policy=PolicyConfig("static"),
        budget=20,
        fusion=FusionConfig(),
        fallback=(FallbackArm(arms[0].name, 5),),
    )


def test_arm_lookup_by_name():
    lexical, dense = arm("lexical"), arm("dense", needs_vector=True)
    c = catalog(lexical, dense)
    assert c.arm("dense") is dense
    assert c.arm("lexical") is lexical


def test_unknown_arm_is_a_key_error_naming_it():
    c = catalog(arm("lexical"))
    with pytest.raises(KeyError) as raised:
        c.arm("Lexical")
    assert raised.value.args == ("Lexical",)


def test_arm_spec_carries_the_bandit_numbers():
    a = Arm(
        name="dense",
        template=Path("/knn.json.j2"),
        params={"field": "embedding"},
        min_size=3,
        max_size=30,
        needs_vector=True,
        cost=0.25,
        index="vectors",
    )
    assert a.spec() == ArmSpec("dense", 3, 30, 0.25, True)
    spec = arm("lexical").spec()
    assert (spec.name, spec.min_size, spec.max_size, spec.cost, spec.needs_vector) == (
        "lexical",
        0,
        10,
        1.0,
        False,
    )


def test_catalog_defaults():
    c = catalog(arm("lexical"))
    assert (c.deadline_ms, c.digest, c.rerank, c.memory, c.index_body, c.source) == (
        1000,
        "",
        None,
        None,
        None,
        None,
    )
    assert dict(c.feedback.events) == {"click": 1.0}
    assert arm("x").index is None
