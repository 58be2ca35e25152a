"""Reads the ``rollout`` section: how the learner proves itself against a baseline plan."""

from __future__ import annotations

from collections.abc import Mapping

from yaml.nodes import Node

from ltrr.query_plans.catalog.model import FallbackArm, RolloutConfig
from ltrr.query_plans.catalog.reader import (
    ArmEntry,
    SectionReader,
    bounds,
    is_null,
    join_key,
    line_of,
    suggest,
)
from ltrr.query_plans.catalog.schema import ROLLOUT_KEYS, ROLLOUT_MODES


class RolloutSection(SectionReader):
    def rollout(self, node: Node, arms: Mapping[str, ArmEntry] | None) -> RolloutConfig | None:
        key = "rollout"
        fields = self.mapping(node, key, ROLLOUT_KEYS, ("mode",))
        if fields is None or "mode" not in fields:
            return None
        mode = self.choice(fields["mode"].value, "rollout.mode", ROLLOUT_MODES)
        ok = mode is not None
        share: float | None = None
        unit: str | None = None
        if mode == "split":
            for name in ("share", "unit"):
                if name not in fields:
                    self.fail(node, join_key(key, name), "required key is missing for mode split")
                    ok = False
            if "share" in fields:
                share = self.number(fields["share"].value, "rollout.share", 0.0, 1.0)
                ok = ok and share is not None
            if "unit" in fields:
                unit = self.text(fields["unit"].value, "rollout.unit")
                ok = ok and unit is not None
        elif mode == "interleave":
            for name in ("share", "unit"):
                if name in fields:
                    self.fail(
                        fields[name].key,
                        join_key(key, name),
                        "applies to mode split only: interleave shows both pages in every search",
                    )
                    ok = False
        salt = self.optional(fields, "salt", key, self.text, "")
        baseline: tuple[FallbackArm, ...] | None = None
        if "baseline" in fields and not is_null(fields["baseline"].value):
            baseline = self.baseline(fields["baseline"].value, arms)
            ok = ok and baseline is not None
        if not ok or mode is None or salt is None:
            return None
        return RolloutConfig(mode=mode, share=share, unit=unit, baseline=baseline, salt=salt)

    def baseline(
        self, node: Node, arms: Mapping[str, ArmEntry] | None
    ) -> tuple[FallbackArm, ...] | None:
        """A named plan, ``[{arm, size}, ...]``; unlike the fallback it may use vector arms
        (when the embedder fails, the static plan stands in for both sides)."""
        key = "rollout.baseline"
        items = self.sequence(node, key, what="{arm, size} entries")
        if items is None:
            return None
        out: list[FallbackArm] = []
        seen: dict[str, Node] = {}
        for i, item in enumerate(items):
            where = f"{key}[{i}]"
            fields = self.mapping(item, where, ("arm", "size"), ("arm", "size"))
            if fields is None or "arm" not in fields or "size" not in fields:
                continue
            arm_node = fields["arm"].value
            name = self.text(arm_node, f"{where}.arm")
            size = self.integer(fields["size"].value, f"{where}.size", 1)
            if name is None or size is None:
                continue
            if name in seen:
                self.fail(
                    arm_node, f"{where}.arm", f"{name!r} is already at line {line_of(seen[name])}"
                )
                continue
            seen[name] = arm_node
            entry = arms.get(name) if arms is not None else None
            if arms is not None and entry is None:
                self.fail(
                    arm_node, f"{where}.arm", f"unknown arm {name!r}{suggest(name, list(arms))}"
                )
                continue
            arm = entry.arm if entry is not None else None
            if arm is not None and not max(arm.min_size, 1) <= size <= arm.max_size:
                self.fail(
                    fields["size"].value,
                    f"{where}.size",
                    f"must be within arm {name!r}'s sizes "
                    f"({bounds(max(arm.min_size, 1), arm.max_size)}), got {size}",
                )
                continue
            out.append(FallbackArm(name, size))
        return tuple(out) if len(out) == len(items) else None
