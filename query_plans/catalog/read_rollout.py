"""Reads the ``rollout`` section: how the learner proves itself against a baseline plan."""

from __future__ import annotations

from collections.abc import Mapping

from yaml.nodes import Node

from ltrr.query_plans.catalog.model import FallbackArm, RolloutConfig
from ltrr.query_plans.catalog.read_arms import fixed_plan
from ltrr.query_plans.catalog.reader import (
    ArmEntry,
    SectionReader,
    is_null,
    join_key,
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
        return fixed_plan(self, node, "rollout.baseline", arms, vector_refusal=None)
