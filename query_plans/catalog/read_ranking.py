"""Reads the ``policy``, ``fusion``, ``rerank`` and ``intercept`` sections: how a search is
decided and ordered."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from types import MappingProxyType

from yaml.nodes import Node

from ltrr.bandit.policies.base import PolicyConfig, PolicyConfigError, parse_policy_config
from ltrr.query_plans.catalog.model import FusionConfig, InterceptRules, RerankConfig
from ltrr.query_plans.catalog.reader import BAD, EMPTY, ArmEntry, SectionReader, is_null, suggest
from ltrr.query_plans.catalog.schema import FUSION_METHODS, NORMS


class RankingSection(SectionReader):
    def policy(self, node: Node, arms: Mapping[str, ArmEntry] | None) -> PolicyConfig | None:
        """Each setting is checked on its own by ``parse_policy_config``, so that every bad
        one is reported at its own line, not just the first."""
        fields = self.mapping(node, "policy", None, ("name",))
        if fields is None or "name" not in fields:
            return None
        name_node = fields["name"].value
        name = self.text(name_node, "policy.name")
        if name is None:
            return None
        try:
            parse_policy_config(name, {})
        except PolicyConfigError as exc:
            self.fail(name_node, f"policy.{exc.key}", exc.message)
            return None
        known = [f.name for f in dataclasses.fields(PolicyConfig) if f.name != "name"]
        settings: dict[str, object] = {}
        ok = True
        for key, f in fields.items():
            if key == "name":
                continue
            value = self.plain(f.value, f"policy.{key}")
            if value is BAD:
                ok = False
                continue
            try:
                parse_policy_config(name, {key: value})
            except PolicyConfigError as exc:
                ok = False
                if key in known:
                    self.fail(f.value, f"policy.{exc.key}", exc.message)
                else:
                    self.fail(f.key, f"policy.{key}", f"{exc.message}{suggest(key, known)}")
                continue
            settings[key] = value
        include = fields.get("include")
        if include is not None and "include" in settings and arms is not None:
            # The expanded names (``${VAR}`` already replaced), each at its own line.
            value = settings["include"]
            expanded = list(value) if isinstance(value, list) else []
            for i, (item, arm) in enumerate(zip(include.value.value, expanded, strict=False)):
                if arm not in arms:
                    ok = False
                    self.fail(
                        item,
                        f"policy.include[{i}]",
                        f"unknown arm {arm!r}{suggest(str(arm), list(arms))}",
                    )
        if not ok:
            return None
        try:
            return parse_policy_config(name, settings)
        except PolicyConfigError as exc:
            where = fields[exc.key].value if exc.key in fields else node
            self.fail(where, f"policy.{exc.key}", exc.message)
            return None

    def fusion(self, node: Node, arms: Mapping[str, ArmEntry] | None) -> FusionConfig | None:
        key = "fusion"
        fields = self.mapping(node, key, ("method", "k", "norm", "weights", "by_policy"))
        if fields is None:
            return None
        d = FusionConfig()
        by_policy = self.optional(fields, "by_policy", key, self.boolean, d.by_policy)
        method = self.optional(
            fields, "method", key, lambda n, k: self.choice(n, k, FUSION_METHODS), d.method
        )
        k = self.optional(fields, "k", key, lambda n, k: self.integer(n, k, 1), d.k)
        norm = self.optional(fields, "norm", key, lambda n, k: self.choice(n, k, NORMS), d.norm)
        ok = True
        if method is not None and method != "rrf" and "k" in fields:
            self.fail(fields["k"].key, "fusion.k", f"k applies to rrf only, not {method}")
            ok = False
        if method == "rrf" and "norm" in fields:
            self.fail(fields["norm"].key, "fusion.norm", "norm applies to combsum and combmnz only")
            ok = False
        weights: dict[str, float] = {}
        if "weights" in fields:
            entries = self.mapping(fields["weights"].value, "fusion.weights", None)
            if entries is None:
                ok = False
            for arm, f in (entries or {}).items():
                path = f"fusion.weights.{arm}"
                if arms is not None and arm not in arms:
                    self.fail(f.key, path, f"unknown arm {arm!r}{suggest(arm, list(arms))}")
                    ok = False
                    continue
                weight = self.number(f.value, path, 0.0)
                if weight is None:
                    ok = False
                else:
                    weights[arm] = weight
        if not ok or method is None or k is None or norm is None or by_policy is None:
            return None
        return FusionConfig(
            method=method,
            k=k,
            norm=norm,
            weights=MappingProxyType(weights),
            by_policy=by_policy,
        )

    def rerank(self, node: Node) -> RerankConfig | None:
        key = "rerank"
        fields = self.mapping(node, key, ("model", "store", "window", "params"), ("model",))
        if fields is None or "model" not in fields:
            return None
        model = self.text(fields["model"].value, "rerank.model")
        ok = True
        store: str | None = None
        if "store" in fields and not is_null(fields["store"].value):
            store = self.text(fields["store"].value, "rerank.store")
            ok = store is not None
        window: int | None = None
        if "window" in fields and not is_null(fields["window"].value):
            window = self.integer(fields["window"].value, "rerank.window", 1)
            ok = ok and window is not None
        params = self.optional(fields, "params", key, self.plain_mapping, EMPTY)
        if not ok or model is None or params is None:
            return None
        return RerankConfig(model=model, store=store, window=window, params=params)

    def intercept(self, node: Node) -> InterceptRules | None:
        key = "intercept"
        fields = self.mapping(node, key, ("match", "multi_match", "q"))
        if fields is None:
            return None
        d = InterceptRules()
        match = self.optional(fields, "match", key, self.boolean, d.match)
        multi = self.optional(fields, "multi_match", key, self.boolean, d.multi_match)
        q = self.optional(fields, "q", key, self.boolean, d.query_string_q)
        if match is None or multi is None or q is None:
            return None
        return InterceptRules(match=match, multi_match=multi, query_string_q=q)
