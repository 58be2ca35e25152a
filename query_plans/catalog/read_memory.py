"""Reads the ``memory`` section: the query-to-entity scores learned from user actions."""

from __future__ import annotations

from yaml.nodes import Node, SequenceNode

from ltrr.query_plans.catalog.model import MemoryConfig
from ltrr.query_plans.catalog.reader import SectionReader, join_key, line_of
from ltrr.query_plans.catalog.schema import (
    MAX_FLUSH_SECONDS,
    MAX_MEMORY_KEYS,
    MEMORY_KEYS,
    MIN_FLUSH_SECONDS,
)


class MemorySection(SectionReader):
    def memory(self, node: Node) -> MemoryConfig | None:
        key = "memory"
        fields = self.mapping(node, key, MEMORY_KEYS)
        if fields is None:
            return None
        d = MemoryConfig()
        learned = self.optional(fields, "field", key, self.text, d.field)
        predicted = self.optional(fields, "predicted_field", key, self.text, d.predicted_field)
        names = self.optional(
            fields,
            "name_fields",
            key,
            lambda n, k: self.field_names(n, k, allow_empty=False),
            d.name_fields,
        )
        phrases = self.optional(
            fields,
            "phrase_fields",
            key,
            lambda n, k: self.field_names(n, k, allow_empty=True),
            d.phrase_fields,
        )
        half_life = self.optional(
            fields,
            "half_life_days",
            key,
            lambda n, k: self.number(n, k, 0.0, strict=True),
            d.half_life_days,
        )
        smoothing = self.optional(
            fields, "smoothing", key, lambda n, k: self.number(n, k, 0.0), d.smoothing
        )
        weight = self.optional(
            fields,
            "predicted_weight",
            key,
            lambda n, k: self.number(n, k, 0.0),
            d.predicted_weight,
        )
        flush = self.optional(
            fields,
            "flush_seconds",
            key,
            lambda n, k: self.number(n, k, MIN_FLUSH_SECONDS, MAX_FLUSH_SECONDS),
            d.flush_seconds,
        )
        max_keys = self.optional(
            fields,
            "max_keys",
            key,
            lambda n, k: self.integer(n, k, 1, MAX_MEMORY_KEYS),
            d.max_keys,
        )
        ok = True
        if learned is not None and learned == predicted:
            # One field would mix the two scores, and the learning loop would overwrite the
            # index-time predictions. Reported where the clash was written.
            clash = "predicted_field" if "predicted_field" in fields else "field"
            other = "field" if clash == "predicted_field" else "predicted_field"
            self.fail(
                fields[clash].value,
                join_key(key, clash),
                f"is {learned!r}, the same as memory.{other}; learned and predicted scores"
                " need a field each",
            )
            ok = False
        if (
            not ok
            or learned is None
            or predicted is None
            or names is None
            or phrases is None
            or half_life is None
            or smoothing is None
            or weight is None
            or flush is None
            or max_keys is None
        ):
            return None
        return MemoryConfig(
            field=learned,
            predicted_field=predicted,
            name_fields=names,
            phrase_fields=phrases,
            half_life_days=half_life,
            smoothing=smoothing,
            predicted_weight=weight,
            flush_seconds=flush,
            max_keys=max_keys,
        )

    def field_names(self, node: Node, key: str, *, allow_empty: bool) -> tuple[str, ...] | None:
        if allow_empty and isinstance(node, SequenceNode) and not node.value:
            return ()
        items = self.sequence(node, key, what="field names")
        if items is None:
            return None
        out: list[str] = []
        seen: dict[str, Node] = {}
        for i, item in enumerate(items):
            path = f"{key}[{i}]"
            name = self.text(item, path)
            if name is None:
                continue
            if name in seen:
                self.fail(item, path, f"{name!r} is already at line {line_of(seen[name])}")
                continue
            seen[name] = item
            out.append(name)
        return tuple(out) if len(out) == len(items) else None
