"""Reads the ``target``, ``arms`` and ``fallback`` sections: what to search, with which
templates."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from yaml.nodes import Node, SequenceNode

from ltrr.query_plans.catalog.model import DEFAULT_ARM_COST, Arm, FallbackArm
from ltrr.query_plans.catalog.reader import (
    EMPTY,
    ArmEntry,
    SectionReader,
    bounds,
    is_null,
    line_of,
    suggest,
)
from ltrr.query_plans.catalog.schema import ARM_KEYS, ARM_NAME, BUILTIN_TEMPLATES, MAX_ARM_SIZE
from ltrr.query_plans.templates import TemplateError


class ArmsSection(SectionReader):
    def targets(self, node: Node) -> tuple[str, ...] | None:
        if isinstance(node, SequenceNode):
            items = self.sequence(node, "target", what="indices, aliases or patterns")
            if items is None:
                return None
            pairs = [(n, f"target[{i}]") for i, n in enumerate(items)]
        else:
            pairs = [(node, "target")]
        out: list[str] = []
        for item, key in pairs:
            name = self.text(item, key)
            if name is None:
                continue
            if any(c.isspace() or c == "," for c in name):
                self.fail(
                    item, key, f"{name!r} is not one index, alias or pattern; list several instead"
                )
                continue
            out.append(name)
        return tuple(out) if len(out) == len(pairs) else None

    def arms(self, node: Node) -> list[ArmEntry] | None:
        items = self.sequence(node, "arms", what="arms")
        if items is None:
            return None
        return [self.arm(item, f"arms[{i}]") for i, item in enumerate(items)]

    def arm_index(self, entries: list[ArmEntry]) -> dict[str, ArmEntry]:
        index: dict[str, ArmEntry] = {}
        for i, entry in enumerate(entries):
            if entry.name is None:
                continue
            first = index.get(entry.name)
            if first is not None and first.name_node is not None:
                self.fail(
                    entry.name_node,
                    f"arms[{i}].name",
                    f"duplicate arm name {entry.name!r} (first at line {line_of(first.name_node)})",
                )
                entry.arm = None
                continue
            index[entry.name] = entry
        return index

    def arm(self, node: Node, key: str) -> ArmEntry:
        fields = self.mapping(node, key, ARM_KEYS, ("name", "template", "size"))
        if fields is None:
            return ArmEntry(None, None, None, None)
        name: str | None = None
        name_node = fields["name"].value if "name" in fields else None
        valid = True
        if name_node is not None:
            name = self.text(name_node, f"{key}.name")
            if name is not None and not ARM_NAME.fullmatch(name):
                self.fail(name_node, f"{key}.name", f"{name!r}: arm names use only a-z, 0-9 and _")
                valid = False
        template = None
        if "template" in fields:
            template = self.template(fields["template"].value, f"{key}.template")
        sizes = self.size(fields["size"].value, f"{key}.size") if "size" in fields else None
        params = self.optional(fields, "params", key, self.plain_mapping, EMPTY)
        cost = self.optional(
            fields, "cost", key, lambda n, k: self.number(n, k, 0.0), DEFAULT_ARM_COST
        )
        needs_vector = self.optional(fields, "needs_vector", key, self.boolean, False)
        index: str | None = None
        if "index" in fields and not is_null(fields["index"].value):
            index = self.text(fields["index"].value, f"{key}.index")
            valid = valid and index is not None
        vector_node = (
            fields["needs_vector"].value if needs_vector and "needs_vector" in fields else None
        )
        if (
            not valid
            or name is None
            or template is None
            or sizes is None
            or params is None
            or cost is None
            or needs_vector is None
        ):
            return ArmEntry(name, name_node, None, vector_node)
        arm = Arm(
            name=name,
            template=template,
            params=params,
            min_size=sizes[0],
            max_size=sizes[1],
            needs_vector=needs_vector,
            cost=cost,
            index=index,
        )
        return ArmEntry(name, name_node, arm, vector_node)

    def template(self, node: Node, key: str) -> Path | None:
        """The catalog's folder first, then the built-in templates shipped with the package."""
        name = self.text(node, key)
        if name is None:
            return None
        given = Path(name).expanduser()
        candidates = (
            [given] if given.is_absolute() else [self.base / given, BUILTIN_TEMPLATES / given]
        )
        found = next((c for c in candidates if c.is_file()), None)
        if found is None:
            tried = " and ".join(str(c) for c in candidates)
            self.fail(node, key, f"template {name!r} not found (looked for {tried})")
            return None
        found = found.resolve()
        try:
            self.renderer.check(found)
        except TemplateError as exc:
            self.fail(node, key, str(exc))
            return None
        return found

    def size(self, node: Node, key: str) -> tuple[int, int] | None:
        fields = self.mapping(node, key, ("min", "max"), ("max",))
        if fields is None or "max" not in fields:
            return None
        low = self.optional(fields, "min", key, lambda n, k: self.integer(n, k, 0, MAX_ARM_SIZE), 0)
        high = self.integer(fields["max"].value, f"{key}.max", 1, MAX_ARM_SIZE)
        if low is None or high is None:
            return None
        if low > high:
            self.fail(fields["max"].value, f"{key}.max", f"is {high}, less than min ({low})")
            return None
        return low, high

    def fallback(
        self, node: Node, arms: Mapping[str, ArmEntry] | None
    ) -> tuple[FallbackArm, ...] | None:
        return fixed_plan(
            self,
            node,
            "fallback",
            arms,
            vector_refusal="the fallback also runs when the embedder fails, so it may only use "
            "arms that need none",
        )


def fixed_plan(
    reader: SectionReader,
    node: Node,
    key: str,
    arms: Mapping[str, ArmEntry] | None,
    *,
    vector_refusal: str | None,
) -> tuple[FallbackArm, ...] | None:
    """A plan written out as ``[{arm, size}, ...]`` (the fallback, a rollout's baseline): each
    arm known, once, within its sizes; ``vector_refusal`` says why vector arms may not be."""
    items = reader.sequence(node, key, what="{arm, size} entries")
    if items is None:
        return None
    out: list[FallbackArm] = []
    seen: dict[str, Node] = {}
    for i, item in enumerate(items):
        where = f"{key}[{i}]"
        fields = reader.mapping(item, where, ("arm", "size"), ("arm", "size"))
        if fields is None or "arm" not in fields or "size" not in fields:
            continue
        arm_node = fields["arm"].value
        name = reader.text(arm_node, f"{where}.arm")
        size = reader.integer(fields["size"].value, f"{where}.size", 1)
        if name is None or size is None:
            continue
        if name in seen:
            reader.fail(
                arm_node, f"{where}.arm", f"{name!r} is already at line {line_of(seen[name])}"
            )
            continue
        seen[name] = arm_node
        entry = arms.get(name) if arms is not None else None
        if arms is not None and entry is None:
            reader.fail(
                arm_node, f"{where}.arm", f"unknown arm {name!r}{suggest(name, list(arms))}"
            )
            continue
        arm = entry.arm if entry is not None else None
        if arm is not None and vector_refusal is not None and arm.needs_vector:
            reader.fail(
                arm_node, f"{where}.arm", f"arm {name!r} needs a query vector; {vector_refusal}"
            )
            continue
        if arm is not None and not max(arm.min_size, 1) <= size <= arm.max_size:
            reader.fail(
                fields["size"].value,
                f"{where}.size",
                f"must be within arm {name!r}'s sizes "
                f"({bounds(max(arm.min_size, 1), arm.max_size)}), got {size}",
            )
            continue
        out.append(FallbackArm(name, size))
    return tuple(out) if len(out) == len(items) else None
