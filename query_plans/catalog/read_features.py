"""Reads the ``embedding`` and ``features`` sections: what the policy and the vector arms see."""

from __future__ import annotations

from pathlib import Path

from yaml.nodes import Node

from ltrr.query_plans.catalog.model import ContextField, EmbeddingConfig, FeatureConfig
from ltrr.query_plans.catalog.reader import SectionReader, is_null, join_key
from ltrr.query_plans.catalog.schema import CONTEXT_KINDS, FEATURE_KEYS


class FeaturesSection(SectionReader):
    def embedding(self, node: Node) -> EmbeddingConfig | None:
        key = "embedding"
        fields = self.mapping(node, key, ("model", "max_length", "cache_size"), ("model",))
        if fields is None or "model" not in fields:
            return None
        self.model_node = fields["model"].value
        model = self.text(self.model_node, "embedding.model")
        defaults = EmbeddingConfig(Path())
        max_length = self.optional(
            fields, "max_length", key, lambda n, k: self.integer(n, k, 2), defaults.max_length
        )
        cache_size = self.optional(
            fields, "cache_size", key, lambda n, k: self.integer(n, k, 0), defaults.cache_size
        )
        if model is None or max_length is None or cache_size is None:
            return None
        folder = Path(model).expanduser()
        folder = folder if folder.is_absolute() else self.base / folder
        return EmbeddingConfig(folder, max_length=max_length, cache_size=cache_size)

    def features(self, node: Node) -> FeatureConfig | None:
        key = "features"
        fields = self.mapping(node, key, FEATURE_KEYS)
        if fields is None:
            return None
        d = FeatureConfig()
        entity_field: str | None = None
        ok = True
        if "entity_field" in fields and not is_null(fields["entity_field"].value):
            entity_field = self.text(fields["entity_field"].value, "features.entity_field")
            ok = entity_field is not None
        refresh = self.optional(
            fields,
            "entity_refresh_seconds",
            key,
            lambda n, k: self.number(n, k, 0.0, strict=True),
            d.entity_refresh_seconds,
        )
        entity_max = self.optional(
            fields, "entity_max", key, lambda n, k: self.integer(n, k, 1), d.entity_max
        )
        buckets = self.optional(
            fields, "hash_buckets", key, lambda n, k: self.integer(n, k, 1, 1024), d.hash_buckets
        )
        context = self.optional(fields, "context", key, self.context, d.context)
        if not ok or refresh is None or entity_max is None or buckets is None or context is None:
            return None
        return FeatureConfig(
            entity_field=entity_field,
            entity_refresh_seconds=refresh,
            entity_max=entity_max,
            context=context,
            hash_buckets=buckets,
        )

    def context(self, node: Node, key: str) -> tuple[ContextField, ...] | None:
        fields = self.mapping(node, key, None)
        if fields is None:
            return None
        out: list[ContextField] = []
        for name, f in fields.items():
            kind = self.choice(f.value, join_key(key, name), CONTEXT_KINDS)
            if kind is not None:
                out.append(ContextField(name, kind))
        return tuple(out) if len(out) == len(fields) else None
