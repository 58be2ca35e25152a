"""lineup.expand and write_variant on a small catalog of our own, and on music.yml if the model
is present."""

from __future__ import annotations

import dataclasses
import os
import shutil
from pathlib import Path

import pytest
import yaml

import ltrr.templates
from ltrr.plugin.errors import LtrrError
from ltrr.plugin.ops.simulate.lineup import (
    DEFAULT_LINEUP,
    PolicySpec,
    expand,
    full_budget,
    variant_target,
    write_variant,
)
from ltrr.query_plans.catalog import Catalog, RerankConfig, load_catalog

REPO = Path(__file__).resolve().parents[4]
MUSIC = REPO / "query_plans" / "catalogs" / "music.yml"
BUILTIN = Path(ltrr.templates.__file__).resolve().parent

# Three arms: budget 40, max sizes 20 + 10 + 15 = 45 (the ``full`` budget).
CATALOG = """\
target: books
budget: 40
policy: {name: linucb, alpha: 2.0, min_probability: 0.1}
arms:
  - {name: lexical, template: my_match.json.j2, params: {fields: [title]},
     size: {min: 5, max: 20}, cost: 0.05}
  - {name: phrase, template: multi_match.json.j2, params: {fields: [title], type: phrase},
     size: {min: 0, max: 10}}
  - {name: fuzzy, template: multi_match.json.j2, params: {fields: [title], fuzziness: 1},
     size: {min: 0, max: 15}}
fusion: {method: rrf, k: 60}
rerank: {model: books_ltr}
fallback: [{arm: lexical, size: 5}]
"""


@pytest.fixture
def catalog(tmp_path: Path) -> Catalog:
    """A catalog in its own folder, with one template beside it (found only from there)."""
    folder = tmp_path / "catalog"
    folder.mkdir()
    shutil.copy(BUILTIN / "multi_match.json.j2", folder / "my_match.json.j2")
    (folder / "books.yml").write_text(CATALOG, encoding="utf-8")
    return load_catalog(folder / "books.yml")


def _names(specs: list[PolicySpec]) -> list[str]:
    return [s.name for s in specs]


def test_learners_learn_at_the_catalog_budget(catalog: Catalog) -> None:
    specs = expand(catalog, ["linucb", "thompson", "epsilon_greedy"])
    assert _names(specs) == ["linucb", "thompson", "epsilon_greedy"]
    assert all(s.learning and s.budget == 40 and s.include == () for s in specs)


def test_only_arm_is_that_arm_at_its_max_size(catalog: Catalog) -> None:
    (spec,) = expand(catalog, ["only:phrase"])
    assert spec == PolicySpec("only:phrase", "phrase alone, 10 candidates", False, 10, ("phrase",))
    assert spec.slug == "only-phrase"


def test_only_star_is_every_arm_in_catalog_order(catalog: Catalog) -> None:
    specs = expand(catalog, ["only:*"])
    assert _names(specs) == ["only:lexical", "only:phrase", "only:fuzzy"]
    assert [(s.budget, s.include) for s in specs] == [
        (20, ("lexical",)),
        (10, ("phrase",)),
        (15, ("fuzzy",)),
    ]


def test_static_full_and_oracle_budgets(catalog: Catalog) -> None:
    static, full, oracle = expand(catalog, ["static", "full", "oracle"])
    assert (static.budget, static.learning, static.include) == (40, False, ())
    # full: 20 + 10 + 15 = 45
    assert full_budget(catalog) == 45
    assert (full.budget, full.learning, full.include) == (45, False, ())
    assert (oracle.budget, oracle.learning, oracle.include) == (40, False, ())


def test_default_lineup_expands(catalog: Catalog) -> None:
    assert _names(expand(catalog, DEFAULT_LINEUP)) == [
        "safe_plans",
        "linucb",
        "thompson",
        "epsilon_greedy",
        "only:lexical",
        "only:phrase",
        "only:fuzzy",
        "static",
        "full",
        "hybrid:rrf",
        "hybrid:minmax",
        "oracle",
    ]


def test_hybrid_contenders_split_the_budget_evenly(catalog: Catalog) -> None:
    rrf, minmax = expand(catalog, ["hybrid:rrf", "hybrid:minmax"])
    # One pagination_depth for the three sub-queries: 40 // 3 = 13 each, 39 in all.
    assert rrf == PolicySpec(
        "hybrid:rrf",
        "OpenSearch hybrid query, RRF k=60, 3 x 13 = 39 candidates",
        False,
        39,
        ("lexical", "phrase", "fuzzy"),
        hybrid="rrf",
    )
    assert (minmax.hybrid, minmax.budget, minmax.include) == ("minmax", 39, rrf.include)
    assert minmax.description.startswith("OpenSearch hybrid query, min-max, arithmetic mean")
    assert (rrf.slug, minmax.slug) == ("hybrid-rrf", "hybrid-minmax")
    assert variant_target("music", minmax) == "music-sim-hybrid-minmax"


def test_hybrid_leaves_out_arms_on_another_index(tmp_path: Path) -> None:
    folder = tmp_path / "catalog"
    folder.mkdir()
    text = CATALOG.replace("my_match", "multi_match").replace(
        "fusion:",
        "  - {name: other, template: multi_match.json.j2, params: {fields: [title]},\n"
        "     index: elsewhere, size: {min: 0, max: 10}}\nfusion:",
    )
    (folder / "books.yml").write_text(text, encoding="utf-8")
    (spec,) = expand(load_catalog(folder / "books.yml"), ["hybrid:rrf"])
    assert (spec.include, spec.budget) == (("lexical", "phrase", "fuzzy"), 39)


def test_hybrid_refuses_more_sub_queries_than_opensearch_takes(tmp_path: Path) -> None:
    folder = tmp_path / "catalog"
    folder.mkdir()
    extra = "".join(
        f"  - {{name: more{i}, template: multi_match.json.j2, params: {{fields: [title]}},\n"
        "     size: {min: 0, max: 10}}\n"
        for i in range(3)
    )
    text = CATALOG.replace("my_match", "multi_match").replace("fusion:", extra + "fusion:")
    (folder / "books.yml").write_text(text, encoding="utf-8")
    with pytest.raises(LtrrError, match="6 arms, but a hybrid query takes at most 5"):
        expand(load_catalog(folder / "books.yml"), ["hybrid:minmax"])


def test_hybrid_contenders_have_no_catalog_variant(catalog: Catalog, tmp_path: Path) -> None:
    (spec,) = expand(catalog, ["hybrid:rrf"])
    with pytest.raises(LtrrError, match="searches OpenSearch directly"):
        write_variant(catalog, spec, tmp_path, target="t0")


@pytest.mark.parametrize(
    ("names", "message"),
    [
        (["ucb"], "unknown policy 'ucb'"),
        (["only:dense"], "no arm 'dense'; arms are lexical, phrase, fuzzy"),
        (["static", "static"], "'static' is listed twice"),
        # only:* already holds only:phrase
        (["only:*", "only:phrase"], "'only:phrase' is listed twice"),
    ],
)
def test_bad_names_raise(catalog: Catalog, names: list[str], message: str) -> None:
    with pytest.raises(LtrrError, match=message):
        expand(catalog, names)


def test_variant_target_names_the_copy() -> None:
    spec = PolicySpec("only:name_ngram", "", False, 1)
    assert variant_target("music", spec) == "music-sim-only-name-ngram"
    assert variant_target("music", spec, "artist") == "music-sim-only-name-ngram-artist"


def test_learner_variant_keeps_its_policy_settings(catalog: Catalog, tmp_path: Path) -> None:
    (spec,) = expand(catalog, ["thompson"])
    path = write_variant(catalog, spec, tmp_path / "out", target="t1")
    assert path == tmp_path / "out" / "t1.yml"
    loaded = load_catalog(path)
    assert loaded.targets == ("t1",)
    assert loaded.budget == 40
    assert loaded.policy.name == "thompson"
    assert (loaded.policy.alpha, loaded.policy.min_probability) == (2.0, 0.1)
    assert loaded.rerank is None  # only a +rerank contender keeps the rerank section


def test_static_variant_pins_templates_and_drops_rerank(catalog: Catalog, tmp_path: Path) -> None:
    (spec,) = expand(catalog, ["only:fuzzy"])
    path = write_variant(catalog, spec, tmp_path / "out", target="t2", include=spec.include)
    raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert raw["policy"] == {"name": "static", "include": ["fuzzy"]}
    assert "rerank" not in raw
    templates = [Path(arm["template"]) for arm in raw["arms"]]
    assert all(t.is_absolute() for t in templates)
    # my_match.json.j2 exists only beside the original catalog: a relative path would fail here.
    assert templates[0] == tmp_path / "catalog" / "my_match.json.j2"
    loaded = load_catalog(path)
    assert (loaded.targets, loaded.budget) == (("t2",), 15)
    assert loaded.policy.name == "static"
    assert loaded.policy.include == ("fuzzy",)
    assert loaded.rerank is None
    assert [a.template for a in loaded.arms] == [a.template for a in catalog.arms]


def test_oracle_variant_takes_the_given_include(catalog: Catalog, tmp_path: Path) -> None:
    (spec,) = expand(catalog, ["oracle"])
    path = write_variant(
        catalog,
        spec,
        tmp_path / "out",
        target="t3",
        include=("lexical", "fuzzy"),
    )
    loaded = load_catalog(path)
    assert loaded.policy.name == "static"
    assert loaded.policy.include == ("lexical", "fuzzy")
    assert loaded.budget == 40
    assert loaded.rerank is None


def test_static_variant_without_include_uses_every_arm(catalog: Catalog, tmp_path: Path) -> None:
    (spec,) = expand(catalog, ["full"])
    path = write_variant(catalog, spec, tmp_path / "out", target="t4")
    loaded = load_catalog(path)
    assert loaded.policy.name == "static"
    assert loaded.policy.include == ()
    assert loaded.budget == 45
    assert loaded.rerank is None


def test_relative_embedding_model_is_pinned(tmp_path: Path) -> None:
    # The variant is written to another folder: "model" must still mean catalog/model.
    folder = tmp_path / "catalog"
    (folder / "model").mkdir(parents=True)
    for name in ("model.onnx", "tokenizer.json"):
        (folder / "model" / name).write_bytes(b"")  # loading checks only that they exist
    text = CATALOG.replace("my_match", "multi_match") + "embedding: {model: model}\n"
    text = text.replace(
        "fusion:",
        "  - {name: dense, template: knn.json.j2, params: {field: embedding},\n"
        "     size: {min: 0, max: 10}, needs_vector: true}\nfusion:",
    )
    (folder / "books.yml").write_text(text, encoding="utf-8")
    catalog = load_catalog(folder / "books.yml")
    (spec,) = expand(catalog, ["static"])
    path = write_variant(catalog, spec, tmp_path / "out", target="t5")
    loaded = load_catalog(path)
    assert loaded.embedding is not None
    assert loaded.embedding.model == folder.resolve() / "model"


def test_music_variant_loads(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    model = Path(
        os.environ.get("LTRR_MODEL_DIR") or REPO.parent / "shared/models/all-MiniLM-L6-v2-onnx"
    )
    if not (model / "model.onnx").is_file():
        pytest.skip(f"no embedding model at {model}")
    monkeypatch.setenv("LTRR_MODEL_DIR", str(model))
    music = load_catalog(MUSIC)
    (spec,) = expand(music, ["only:dense"])
    path = write_variant(music, spec, tmp_path, target="music-sim-only-dense", include=spec.include)
    loaded = load_catalog(path)
    assert loaded.targets == ("music-sim-only-dense",)
    assert loaded.budget == 100  # dense's max size
    assert loaded.policy.include == ("dense",)
    assert loaded.rerank is None
    assert [a.name for a in loaded.arms] == [a.name for a in music.arms]
    assert all(
        Path(arm["template"]).is_absolute() for arm in yaml.safe_load(path.read_text())["arms"]
    )


def test_rerank_names_keep_the_base_contender_and_add_the_rerank(catalog: Catalog) -> None:
    specs = expand(catalog, ["safe_plans+rerank", "static", "static+rerank", "only:lexical+rerank"])
    assert specs == [
        PolicySpec(
            "safe_plans+rerank",
            "safe_plans, learning online, reranked by books_ltr",
            True,
            40,
            rerank=True,
        ),
        PolicySpec("static", "all arms, fused, 40 candidates", False, 40),
        PolicySpec(
            "static+rerank",
            "all arms, fused, 40 candidates, reranked by books_ltr",
            False,
            40,
            rerank=True,
        ),
        PolicySpec(
            "only:lexical+rerank",
            "lexical alone, 20 candidates, reranked by books_ltr",
            False,
            20,
            ("lexical",),
            rerank=True,
        ),
    ]
    (full,) = expand(catalog, ["full+rerank"])
    assert (full.budget, full.rerank, full.learning) == (45, True, False)
    assert [s.slug for s in specs] == [
        "safe-plans-rerank",
        "static",
        "static-rerank",
        "only-lexical-rerank",
    ]
    assert variant_target("books", specs[0]) == "books-sim-safe-plans-rerank"


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("hybrid:rrf+rerank", "only a learner, static, full or one only:ARM can be reranked"),
        ("hybrid:minmax+rerank", "only a learner, static, full or one only:ARM can be reranked"),
        ("oracle+rerank", "only a learner, static, full or one only:ARM can be reranked"),
        ("only:*+rerank", "only a learner, static, full or one only:ARM can be reranked"),
        ("ucb+rerank", "unknown policy 'ucb'"),
    ],
)
def test_bad_rerank_names_raise(catalog: Catalog, name: str, message: str) -> None:
    with pytest.raises(LtrrError, match=message):
        expand(catalog, [name])


def test_a_rerank_name_needs_a_rerank_section(tmp_path: Path) -> None:
    folder = tmp_path / "catalog"
    folder.mkdir()
    text = CATALOG.replace("my_match", "multi_match").replace("rerank: {model: books_ltr}\n", "")
    (folder / "books.yml").write_text(text, encoding="utf-8")
    plain = load_catalog(folder / "books.yml")
    assert plain.rerank is None
    assert _names(expand(plain, ["static"])) == ["static"]
    with pytest.raises(LtrrError, match=r"'static\+rerank': the catalog has no rerank section"):
        expand(plain, ["static+rerank"])


def test_rerank_listed_twice_raises(catalog: Catalog) -> None:
    with pytest.raises(LtrrError, match=r"'static\+rerank' is listed twice"):
        expand(catalog, ["static+rerank", "static+rerank"])


def test_learner_rerank_variant_keeps_the_rerank_and_the_learner(
    catalog: Catalog, tmp_path: Path
) -> None:
    (spec,) = expand(catalog, ["thompson+rerank"])
    path = write_variant(catalog, spec, tmp_path / "out", target="t6")
    raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert raw["rerank"] == {"model": "books_ltr"}
    loaded = load_catalog(path)
    # the policy is the learner's own name, with the catalog's settings
    assert loaded.policy.name == "thompson"
    assert (loaded.policy.alpha, loaded.policy.min_probability) == (2.0, 0.1)
    assert loaded.rerank is not None
    assert loaded.rerank.model == "books_ltr"
    assert loaded.budget == 40


def test_the_rerank_section_comes_from_the_catalog_object(catalog: Catalog, tmp_path: Path) -> None:
    """A simulation names its model by replacing the catalog's rerank (``--rerank-model``);
    the variant writes that one, whatever the file says."""
    named = dataclasses.replace(
        catalog, rerank=RerankConfig(model="books_ltr_v2", window=50, params={"lang": "en"})
    )
    (spec,) = expand(named, ["only:fuzzy+rerank"])
    path = write_variant(named, spec, tmp_path / "out", target="t7", include=spec.include)
    loaded = load_catalog(path)
    assert loaded.policy.name == "static"
    assert loaded.policy.include == ("fuzzy",)
    assert loaded.budget == 15
    assert loaded.rerank == RerankConfig(model="books_ltr_v2", window=50, params={"lang": "en"})


def test_a_file_without_a_rerank_section_gets_the_named_one(
    catalog: Catalog, tmp_path: Path
) -> None:
    raw = yaml.safe_load(catalog.path.read_text(encoding="utf-8"))
    raw.pop("rerank")
    bare = catalog.path.parent / "bare.yml"
    bare.write_text(yaml.safe_dump(raw), encoding="utf-8")
    plain = load_catalog(bare)
    assert plain.rerank is None
    with pytest.raises(LtrrError, match="--rerank-model"):
        expand(plain, ["static+rerank"])
    named = dataclasses.replace(plain, rerank=RerankConfig(model="m_v1"))
    (spec,) = expand(named, ["static+rerank"])
    path = write_variant(named, spec, tmp_path / "out", target="t8")
    assert yaml.safe_load(path.read_text(encoding="utf-8"))["rerank"] == {"model": "m_v1"}
    (fused,) = expand(named, ["static"])
    path = write_variant(named, fused, tmp_path / "out", target="t9")
    assert "rerank" not in yaml.safe_load(path.read_text(encoding="utf-8"))


def test_one_rerank_suffix_is_enough(catalog: Catalog) -> None:
    with pytest.raises(LtrrError, match="one \\+rerank is enough"):
        expand(catalog, ["static+rerank+rerank"])
