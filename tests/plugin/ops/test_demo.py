"""The demo's closing notes need the learner's run: without it they are empty, and nothing
is asked of a cluster. The whole demo runs against a real node through `make demo`."""

from __future__ import annotations

from pathlib import Path

from ltrr.plugin.ops.demo import DemoConfig, _notes_for_ope, _notes_for_reference
from ltrr.plugin.ops.simulate.results import PolicyRun
from ltrr.plugin.ops.simulate.run import Simulation

CONFIG = DemoConfig(catalog=Path("music.yml"), source=Path("lastfm"), opensearch="http://nowhere:1")


def test_without_a_linucb_run_there_is_no_reference_check():
    said = []
    sim = Simulation(runs=[PolicyRun("static", "", False)], targets={"static": ["m-static"]})
    assert _notes_for_reference(sim, CONFIG, said.append) == ""
    assert said == []


def test_without_a_static_run_there_is_no_off_policy_estimate():
    said = []
    sim = Simulation(runs=[PolicyRun("linucb", "", True)], targets={"linucb": ["m-linucb"]})
    assert _notes_for_ope(sim, CONFIG, said.append) == ""
    assert said == []


def test_the_defaults_are_the_readme_s_demo():
    assert (CONFIG.sessions, CONFIG.seed, CONFIG.listen, CONFIG.serve) == (
        3000,
        7,
        "127.0.0.1:9250",
        False,
    )
    assert CONFIG.out == Path("build/demo")


def test_without_a_safe_plans_run_there_is_no_rerank_pass():
    import asyncio

    from ltrr.plugin.ops.demo import _rerank_pass
    from ltrr.plugin.ops.simulate.run import SimulationConfig

    said: list[str] = []
    sim = Simulation(runs=[PolicyRun("static", "", False)], targets={"static": ["m-static"]})
    config = SimulationConfig(catalog=Path("music.yml"), dataset=Path("d"), sessions=10)
    assert asyncio.run(_rerank_pass(sim, config, CONFIG, said.append)) == []
    assert said == []
