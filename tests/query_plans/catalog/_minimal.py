"""The minimal catalog the catalog tests vary one section of, and their small helpers.

Line numbers in the tests refer to ``MINIMAL``: keep it as it is (a section appended to it
starts at line 15).
"""

from __future__ import annotations

import textwrap
from pathlib import Path

from ltrr.query_plans.catalog import validate_catalog

MINIMAL = """\
target: music
budget: 20
policy: {name: static}
arms:
  - name: lexical
    template: multi_match.json.j2
    params: {fields: [name]}
    size: {min: 5, max: 10}
  - name: popular
    template: rank_feature.json.j2
    params: {field: popularity, text_fields: [name]}
    size: {max: 10}
fallback:
  - {arm: lexical, size: 5}
"""


def catalog_text(*replacements: tuple[str, str], append: str = "") -> str:
    """``MINIMAL`` with each (old, new) replaced once, then ``append`` added at the end."""
    text = MINIMAL
    for old, new in replacements:
        assert old in text
        text = text.replace(old, new, 1)
    return text + append


def write(folder: Path, text: str, name: str = "catalog.yml") -> Path:
    path = folder / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def errors_of(folder: Path, text: str) -> list[tuple[int | None, str, str]]:
    return [(e.line, e.key, e.message) for e in validate_catalog(write(folder, text))]


def model_folder(folder: Path) -> Path:
    """A folder with the two files an embedding model needs (empty: loading is not tested)."""
    model = folder / "model"
    model.mkdir()
    (model / "model.onnx").write_bytes(b"")
    (model / "tokenizer.json").write_text("{}")
    return model
