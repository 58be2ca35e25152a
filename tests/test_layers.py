"""The architecture, checked: layers import only downwards, serving never sees numpy or a
policy, and no function on the request path is too complex to read."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from radon.complexity import cc_visit

ROOT = Path(__file__).resolve().parents[1]

# Top to bottom; a module may import its own layer and any layer below, never one above.
LAYERS = (
    ("ltrr.plugin.ops", ROOT / "plugin" / "ops"),
    ("ltrr.plugin.serve", ROOT / "plugin" / "serve"),
    ("ltrr.plugin.learn", ROOT / "plugin" / "learn"),
    ("ltrr.plugin.runtime", ROOT / "plugin" / "runtime"),
    ("ltrr.query_plans", ROOT / "query_plans"),
    ("ltrr.bandit", ROOT / "bandit"),
)
# Shared by the four plugin layers; it imports only the root error in ltrr.bandit.errors.
SHARED = ("ltrr.plugin.errors", ROOT / "plugin" / "errors.py")
# What a search or a feedback event runs through, in the proxy process.
REQUEST_PATH = (
    ROOT / "plugin" / "serve",
    ROOT / "plugin" / "learn",
    ROOT / "plugin" / "runtime",
    ROOT / "query_plans" / "plan.py",
    ROOT / "query_plans" / "fusion",
    ROOT / "query_plans" / "rerank.py",
    ROOT / "query_plans" / "ltr" / "params.py",
    ROOT / "query_plans" / "templates.py",
    ROOT / "query_plans" / "memory.py",
    ROOT / "query_plans" / "embed.py",
    ROOT / "bandit" / "agent.py",
    ROOT / "bandit" / "decide.py",
    ROOT / "bandit" / "decision.py",
    ROOT / "bandit" / "features.py",
    ROOT / "bandit" / "rewards.py",
    ROOT / "bandit" / "policies",
)
MAX_COMPLEXITY = 15


def _files(path: Path) -> list[Path]:
    return [path] if path.is_file() else sorted(path.rglob("*.py"))


def _imports(path: Path) -> list[tuple[int, str]]:
    """Every module ``path`` imports, at any depth (a lazy import counts the same)."""
    out: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out.extend((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.append((node.lineno, node.module))
    return out


def _layer_of(module: str) -> int | None:
    for rank, (name, _) in enumerate(LAYERS):
        if module == name or module.startswith(name + "."):
            return rank
    return None


def _is_under(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


@pytest.mark.parametrize(("layer", "folder"), LAYERS, ids=[name for name, _ in LAYERS])
def test_no_import_runs_back_up(layer, folder):
    rank = _layer_of(layer)
    assert rank is not None
    upward = [
        f"{path.relative_to(ROOT)}:{line} imports {module}"
        for path in _files(folder)
        for line, module in _imports(path)
        if (other := _layer_of(module)) is not None and other < rank
    ]
    assert upward == []


def test_the_shared_errors_import_only_the_root():
    _, path = SHARED
    ltrr_imports = {m for _, m in _imports(path) if _is_under(m, "ltrr")}
    assert ltrr_imports == {"ltrr.bandit.errors"}


@pytest.mark.parametrize("folder", ["serve", "learn", "runtime"])
def test_the_proxy_never_touches_numpy_or_a_policy(folder):
    # ``ltrr.bandit.state`` is allowed: its documents are plain JSON the sync moves unread.
    banned = ("numpy", "ltrr.bandit.policies", "ltrr.bandit.draw")
    found = [
        f"{path.relative_to(ROOT)}:{line} imports {module}"
        for path in _files(ROOT / "plugin" / folder)
        for line, module in _imports(path)
        if any(_is_under(module, b) for b in banned)
    ]
    assert found == []


def test_no_request_path_function_is_too_complex():
    too_complex = [
        f"{path.relative_to(ROOT)}:{block.lineno} {block.fullname} = {block.complexity}"
        for folder in REQUEST_PATH
        for path in _files(folder)
        for block in cc_visit(path.read_text())
        if block.complexity > MAX_COMPLEXITY and not _is_class(block)
    ]
    assert too_complex == []


def _is_class(block: object) -> bool:
    return type(block).__name__ == "Class"


def test_the_checks_see_real_code():
    """A walk that found nothing would pass everything."""
    assert len(_files(ROOT / "plugin" / "serve")) >= 10
    assert any(
        m == "ltrr.plugin.learn.learner" for _, m in _imports(ROOT / "plugin/serve/search.py")
    )
    assert any(_is_under(m, "numpy") for _, m in _imports(ROOT / "bandit" / "agent.py"))
    blocks = cc_visit((ROOT / "plugin" / "serve" / "search.py").read_text())
    assert any(b.fullname == "SearchPath.run" and b.complexity > 1 for b in blocks)
