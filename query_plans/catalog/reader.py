"""A line-tracking reader of YAML nodes: each value is checked where it was written, so that
an error says "arms[1].size.max at line 14", and every problem is collected, not only the first."""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any, NamedTuple, TypeVar

from yaml.constructor import ConstructorError, SafeConstructor
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from ltrr.bandit.errors import LtrrError
from ltrr.query_plans.catalog.model import Arm
from ltrr.query_plans.catalog.schema import (
    ENV_REF,
    MAX_DEPTH,
    MAX_NODES,
    MERGE_TAG,
    NULL_TAG,
    STR_TAG,
)
from ltrr.query_plans.templates import TemplateRenderer


class CatalogError(LtrrError, ValueError):
    """A catalog that cannot be used, located to the file, line and key."""

    def __init__(self, path: str, line: int | None, key: str, message: str) -> None:
        where = f"{path}:{line}" if line is not None else path
        super().__init__(f"{where}: {key}: {message}" if key else f"{where}: {message}")
        self.path = path
        self.line = line
        self.key = key
        self.message = message


T = TypeVar("T")


class Bad:
    """Marks a value that already has its error recorded, so callers add no second one."""


BAD = Bad()
EMPTY: Mapping[str, Any] = MappingProxyType({})


class Field(NamedTuple):
    key: Node
    value: Node


@dataclass(slots=True)
class ArmEntry:
    """One ``arms`` item as far as it parsed: its name still resolves references to it."""

    name: str | None
    name_node: Node | None
    arm: Arm | None
    needs_vector_node: Node | None


def line_of(node: Node) -> int:
    return int(node.start_mark.line) + 1


def join_key(parent: str, key: str) -> str:
    return f"{parent}.{key}" if parent else key


def suggest(word: str, choices: Sequence[str]) -> str:
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    if close:
        return f"; did you mean {close[0]!r}?"
    return f" (expected one of: {', '.join(choices)})" if choices else ""


def show_node(node: Node) -> str:
    if isinstance(node, MappingNode):
        return "a mapping"
    if isinstance(node, SequenceNode):
        return "a list"
    if node.tag == NULL_TAG:
        return "null"
    text = str(node.value)
    text = text if len(text) <= 40 else text[:37] + "..."
    return repr(text) if node.tag == STR_TAG else text


def is_null(node: Node) -> bool:
    return isinstance(node, ScalarNode) and node.tag == NULL_TAG


def bounds(low: float, high: float | None) -> str:
    return f"between {low} and {high}" if high is not None else f">= {low}"


class Reader:
    """Typed reads from YAML nodes; every failure is recorded with its line and dotted key."""

    def __init__(self, display: str, environ: Mapping[str, str]) -> None:
        self.display = display
        self.environ = environ
        self.errors: list[CatalogError] = []
        self._constructor = SafeConstructor()
        self._nodes = 0
        self._too_deep = False
        self._merged: dict[Node, int] = {}

    def fail(self, node: Node | None, key: str, message: str) -> None:
        line = line_of(node) if node is not None else None
        self.errors.append(CatalogError(self.display, line, key, message))

    def mapping(
        self,
        node: Node,
        key: str,
        known: Sequence[str] | None,
        required: Sequence[str] = (),
    ) -> dict[str, Field] | None:
        """The keys of a mapping (``known`` None accepts any); merge keys (``<<``) apply."""
        if not isinstance(node, MappingNode):
            self.fail(node, key, f"must be a mapping, got {show_node(node)}")
            return None
        merged_count = self._merged.get(node)
        if merged_count is None:  # an aliased mapping is flattened once, however often it is read
            own = sum(1 for k, _ in node.value if k.tag != MERGE_TAG)
            try:
                self._constructor.flatten_mapping(node)
            except ConstructorError as exc:
                self.fail(node, key, f"bad merge (<<): {exc.problem}")
                return None
            merged_count = self._merged[node] = len(node.value) - own  # merged keys come first
        fields: dict[str, Field] = {}
        positions: dict[str, int] = {}
        suggested: set[str] = set()
        for position, (key_node, value_node) in enumerate(node.value):
            if not isinstance(key_node, ScalarNode) or key_node.tag != STR_TAG:
                self.fail(key_node, key, f"keys must be strings, got {show_node(key_node)}")
                continue
            name = str(key_node.value)
            path = join_key(key, name)
            if known is not None and name not in known:
                close = difflib.get_close_matches(name, list(known), n=1, cutoff=0.6)
                suggested.update(close)
                self.fail(key_node, path, f"unknown key {name!r}{suggest(name, known)}")
                continue
            # A mapping's own keys override those it merges in; only a repeat of its own is wrong.
            if positions.get(name, -1) >= merged_count:
                first = fields[name].key
                self.fail(key_node, path, f"duplicate key (first at line {line_of(first)})")
                continue
            fields[name] = Field(key_node, value_node)
            positions[name] = position
        for name in required:
            if name not in fields and name not in suggested:
                self.fail(node, join_key(key, name), "required key is missing")
        return fields

    def sequence(self, node: Node, key: str, *, what: str) -> list[Node] | None:
        if not isinstance(node, SequenceNode):
            self.fail(node, key, f"must be a list of {what}, got {show_node(node)}")
            return None
        if not node.value:
            self.fail(node, key, f"must list at least one of {what}")
            return None
        return list(node.value)

    def scalar(self, node: Node, key: str) -> Any:
        """The scalar's value (strings with ``${VAR}`` expanded), or ``BAD``."""
        if not isinstance(node, ScalarNode):
            self.fail(node, key, f"must be a single value, got {show_node(node)}")
            return BAD
        try:
            value = self._constructor.construct_object(node, deep=True)
        except ConstructorError as exc:
            self.fail(node, key, str(exc.problem or exc))
            return BAD
        if isinstance(value, str):
            return self.expand(value, node, key)
        return value

    def expand(self, value: str, node: Node, key: str) -> Any:
        """``${VAR}`` and ``${VAR:-default}``, shell style: set-but-empty counts as unset."""
        if "${" not in value:
            return value
        missing: list[str] = []

        def substitute(match: re.Match[str]) -> str:
            name, default = match.group(1), match.group(2)
            found = self.environ.get(name)
            if found:
                return found
            if default is not None:
                return default
            missing.append(name)
            return ""

        expanded = ENV_REF.sub(substitute, value)
        if missing:
            names = ", ".join(dict.fromkeys(missing))
            self.fail(
                node,
                key,
                f"environment variable {names} is not set (or is empty), so {value!r} expands"
                f" to {expanded!r}; set it, or write ${{{missing[0]}:-default}}",
            )
            return BAD
        return expanded

    def _over_budget(self, node: Node, key: str, depth: int) -> bool:
        """Too many nodes in the file (an alias bomb stops the reading), or this value nested
        too deep (one error per value, however many of its paths run too deep)."""
        self._nodes += 1
        if depth == 0:
            self._too_deep = False
        if self._nodes > MAX_NODES:
            if self._nodes == MAX_NODES + 1:
                self.fail(node, key, "too large (a recursive YAML alias?)")
            return True
        if depth > MAX_DEPTH:
            if not self._too_deep:
                self.fail(node, key, "too deeply nested (a recursive YAML alias?)")
            self._too_deep = True
            return True
        return False

    def plain(self, node: Node, key: str, depth: int = 0) -> Any:
        """Free-form JSON-like data (params, index settings), or ``BAD``."""
        if self._over_budget(node, key, depth):
            return BAD
        if isinstance(node, MappingNode):
            fields = self.mapping(node, key, None)
            if fields is None:
                return BAD
            out: dict[str, Any] = {}
            for name, f in fields.items():
                out[name] = self.plain(f.value, join_key(key, name), depth + 1)
            return BAD if any(v is BAD for v in out.values()) else out
        if isinstance(node, SequenceNode):
            items = [self.plain(n, f"{key}[{i}]", depth + 1) for i, n in enumerate(node.value)]
            return BAD if any(v is BAD for v in items) else items
        value = self.scalar(node, key)
        if value is BAD or value is None or isinstance(value, str | bool | int):
            return value
        if isinstance(value, float):
            if math.isfinite(value):
                return value
            self.fail(node, key, f"must be a finite number, got {show_node(node)}")
            return BAD
        self.fail(
            node,
            key,
            f"must be a string, number, boolean or null, got {show_node(node)} "
            f"(a {type(value).__name__}); quote it to keep it as text",
        )
        return BAD

    def plain_mapping(self, node: Node, key: str) -> Mapping[str, Any] | None:
        if not isinstance(node, MappingNode):
            self.fail(node, key, f"must be a mapping, got {show_node(node)}")
            return None
        value = self.plain(node, key)
        return None if value is BAD else MappingProxyType(value)

    def text(self, node: Node, key: str) -> str | None:
        value = self.scalar(node, key)
        if value is BAD:
            return None
        if not isinstance(value, str):
            self.fail(node, key, f"must be a string, got {show_node(node)}")
            return None
        if not value.strip():
            self.fail(node, key, "must not be empty")
            return None
        return value

    def choice(self, node: Node, key: str, choices: Sequence[str]) -> str | None:
        value = self.text(node, key)
        if value is not None and value not in choices:
            self.fail(node, key, f"unknown value {value!r}{suggest(value, choices)}")
            return None
        return value

    def integer(self, node: Node, key: str, low: int, high: int | None = None) -> int | None:
        value = self.scalar(node, key)
        if value is BAD:
            return None
        if isinstance(value, bool) or not isinstance(value, int):
            self.fail(node, key, f"must be an integer, got {show_node(node)}")
            return None
        if value < low or (high is not None and value > high):
            self.fail(node, key, f"must be {bounds(low, high)}, got {value}")
            return None
        return value

    def number(
        self, node: Node, key: str, low: float, high: float | None = None, *, strict: bool = False
    ) -> float | None:
        """A float; ``strict`` excludes ``low`` itself."""
        value = self.scalar(node, key)
        if value is BAD:
            return None
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not math.isfinite(value)
        ):
            self.fail(node, key, f"must be a number, got {show_node(node)}")
            return None
        too_low = value <= low if strict else value < low
        if too_low or (high is not None and value > high):
            bound = f"> {low}" if strict and high is None else bounds(low, high)
            self.fail(node, key, f"must be {bound}, got {value}")
            return None
        return float(value)

    def boolean(self, node: Node, key: str) -> bool | None:
        value = self.scalar(node, key)
        if value is BAD:
            return None
        if not isinstance(value, bool):
            self.fail(node, key, f"must be true or false, got {show_node(node)}")
            return None
        return value

    def optional(
        self,
        fields: Mapping[str, Field],
        name: str,
        key: str,
        read: Callable[[Node, str], T | None],
        default: T,
    ) -> T | None:
        """``default`` when the key is absent; None (already reported) when it is invalid."""
        f = fields.get(name)
        return default if f is None else read(f.value, join_key(key, name))


class SectionReader(Reader):
    """A reader that knows the catalog file: where its templates and its model live."""

    def __init__(self, path: Path, display: str, environ: Mapping[str, str]) -> None:
        super().__init__(display, environ)
        self.base = path.resolve().parent
        self.renderer = TemplateRenderer()
        self.model_node: Node | None = None
