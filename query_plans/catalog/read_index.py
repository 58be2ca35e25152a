"""Reads the ``index`` and ``source`` sections, and why a memory needs the whole ``_source``."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from yaml.nodes import MappingNode, Node

from ltrr.query_plans.catalog.reader import BAD, SectionReader
from ltrr.query_plans.catalog.schema import INDEX_KEYS
from ltrr.query_plans.memory import source_loss


class IndexSection(SectionReader):
    def index_body(self, node: Node) -> Mapping[str, Any] | None:
        fields = self.mapping(node, "index", INDEX_KEYS)
        if fields is None:
            return None
        body: dict[str, Any] = {}
        ok = True
        for name, f in fields.items():  # every bad block is reported, not only the first
            value = self.plain_mapping(f.value, f"index.{name}")
            if value is None:
                ok = False
                continue
            body[name] = dict(value)
        return MappingProxyType(body) if ok else None

    def source(self, node: Node) -> Any:
        """An OpenSearch ``_source`` value: a boolean, a field pattern or a list of them, or a
        mapping of ``includes`` and ``excludes``."""
        key = "source"
        value = self.plain(node, key)
        if value is BAD:
            return BAD

        def patterns(v: Any) -> bool:
            return isinstance(v, str) or (
                isinstance(v, list) and all(isinstance(p, str) for p in v)
            )

        if isinstance(value, bool) or patterns(value):
            return value
        if (
            isinstance(value, dict)
            and value
            and set(value) <= {"includes", "excludes"}
            and all(patterns(v) for v in value.values())
        ):
            return value
        self.fail(
            node,
            key,
            "must be a _source value: true/false, field patterns, or"
            " {includes: [...], excludes: [...]}",
        )
        return BAD

    def check_source_whole(self, index_body: Mapping[str, Any], node: Node) -> None:
        """The memory writes partial updates, which OpenSearch rebuilds from ``_source``."""
        mappings = index_body.get("mappings")
        lost = source_loss(mappings) if isinstance(mappings, Mapping) else None
        if lost is None:
            return
        where = node
        for name in ("mappings", "_source"):
            if not isinstance(where, MappingNode):
                break
            where = next((v for k, v in where.value if k.value == name), where)
        self.fail(
            where,
            "index.mappings._source",
            f"keeps {lost} out of _source, so the memory's partial updates would drop it from"
            " every document they touch; keep _source whole and filter at query time with"
            " the catalog's `source:` (e.g. source: {excludes: [embedding]})",
        )
