import pytest

from ltrr.bandit.policies.base import PolicyConfig
from ltrr.query_plans.catalog import (
    FusionConfig,
    InterceptRules,
    RerankConfig,
    load_catalog,
)
from tests.query_plans.catalog._minimal import catalog_text, errors_of, write


def policy(text: str) -> str:
    return catalog_text(("policy: {name: static}", text))


@pytest.mark.parametrize(
    ("written", "parsed"),
    [
        (
            "policy: {name: linucb, alpha: 2, ridge: 0.5, temperature: 1}",
            PolicyConfig("linucb", alpha=2.0, ridge=0.5, temperature=1.0),
        ),
        (
            "policy: {name: thompson, v: 0, min_probability: 0.5}",
            PolicyConfig("thompson", v=0.0, min_probability=0.5),
        ),
        (
            "policy: {name: static, include: [popular]}",
            PolicyConfig("static", include=("popular",)),
        ),
    ],
)
def test_policy_settings(tmp_path, written, parsed):
    assert load_catalog(write(tmp_path, policy(written))).policy == parsed


def test_fusion_rerank_and_intercept(tmp_path):
    text = catalog_text(
        append=(
            "fusion: {method: combmnz, weights: {lexical: 0}}\n"
            "rerank: {model: m, store: null, window: null}\n"
            "intercept: {q: false}\n"
        )
    )
    catalog = load_catalog(write(tmp_path, text))
    assert catalog.fusion == FusionConfig(
        method="combmnz", k=60, norm="minmax", weights={"lexical": 0.0}
    )
    assert type(catalog.fusion.weights["lexical"]) is float
    assert catalog.rerank == RerankConfig(model="m", store=None, window=None, params={})
    assert catalog.intercept == InterceptRules(match=True, multi_match=True, query_string_q=False)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param(
            policy("policy: {name: linucb, alpha: -1, ridge: 0}"),
            [
                (3, "policy.alpha", "must be >= 0.0, got -1.0"),
                (3, "policy.ridge", "must be >= 1e-09, got 0.0"),
            ],
            id="policy-every-bad-setting",
        ),
        pytest.param(
            policy("policy: {name: 5}"),
            [(3, "policy.name", "must be a string, got 5")],
            id="policy-name-number",
        ),
        pytest.param(
            policy("policy: {name: static, include: popular}"),
            [(3, "policy.include", "must be a list of arm names")],
            id="policy-include-not-list",
        ),
        pytest.param(
            catalog_text(append="fusion:\n  method: rrf\n  norm: minmax\n"),
            [(17, "fusion.norm", "norm applies to combsum and combmnz only")],
            id="fusion-norm-with-rrf",
        ),
        pytest.param(
            catalog_text(append="fusion: {weights: [1]}\n"),
            [(15, "fusion.weights", "must be a mapping, got a list")],
            id="fusion-weights-list",
        ),
        pytest.param(
            catalog_text(append="rerank:\n  store: feats\n"),
            [(16, "rerank.model", "required key is missing")],
            id="rerank-without-model",
        ),
        pytest.param(
            catalog_text(append="intercept: {querystring: true}\n"),
            [
                (
                    15,
                    "intercept.querystring",
                    "unknown key 'querystring' (expected one of: match, multi_match, q)",
                )
            ],
            id="intercept-unknown-key",
        ),
    ],
)
def test_ranking_errors(tmp_path, text, expected):
    assert errors_of(tmp_path, text) == expected


def test_policy_include_expands_environment_variables(tmp_path, monkeypatch):
    monkeypatch.delenv("LTRR_TEST_ARM", raising=False)
    text = policy('policy: {name: static, include: ["${LTRR_TEST_ARM:-popular}"]}')
    assert load_catalog(write(tmp_path, text)).policy.include == ("popular",)
