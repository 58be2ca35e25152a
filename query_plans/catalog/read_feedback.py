"""Reads the ``feedback`` section: which events reward the arms, and how much."""

from __future__ import annotations

import math
from collections.abc import Mapping
from types import MappingProxyType

from yaml.nodes import Node

from ltrr.query_plans.catalog.model import DebiasConfig, FeedbackConfig
from ltrr.query_plans.catalog.reader import SectionReader, is_null, join_key
from ltrr.query_plans.catalog.schema import (
    CREDIT_RULES,
    DEBIAS_KEYS,
    EVENT_TYPE,
    FEEDBACK_KEYS,
    MAX_FEEDBACK_EVENTS,
    MAX_FEEDBACK_WINDOW_SECONDS,
    MIN_FEEDBACK_WINDOW_SECONDS,
)


class FeedbackSection(SectionReader):
    def feedback(self, node: Node) -> FeedbackConfig | None:
        key = "feedback"
        fields = self.mapping(node, key, FEEDBACK_KEYS)
        if fields is None:
            return None
        d = FeedbackConfig()
        events = self.optional(fields, "events", key, self.events, d.events)
        window = self.optional(
            fields,
            "window_seconds",
            key,
            lambda n, k: self.number(
                n, k, MIN_FEEDBACK_WINDOW_SECONDS, MAX_FEEDBACK_WINDOW_SECONDS
            ),
            d.window_seconds,
        )
        max_events = self.optional(
            fields,
            "max_events",
            key,
            lambda n, k: self.integer(n, k, 1, MAX_FEEDBACK_EVENTS),
            d.max_events,
        )
        credit = self.optional(
            fields, "credit", key, lambda n, k: self.choice(n, k, CREDIT_RULES), d.credit
        )
        debias: DebiasConfig | None = None
        ok = credit is not None
        if "debias" in fields and not is_null(fields["debias"].value):
            debias = self.debias(fields["debias"].value)
            ok = ok and debias is not None
        if not ok or events is None or window is None or max_events is None or credit is None:
            return None
        return FeedbackConfig(
            events=events,
            window_seconds=window,
            debias=debias,
            max_events=max_events,
            credit=credit,
        )

    def events(self, node: Node, key: str) -> Mapping[str, float] | None:
        """Event type -> reward weight; a weight may be negative (a skip is a bad sign)."""
        fields = self.mapping(node, key, None)
        if fields is None:
            return None
        if not node.value:  # not ``fields``: a non-string key already has its own error
            self.fail(node, key, "must map at least one event type to its reward weight")
            return None
        out: dict[str, float] = {}
        for name, f in fields.items():
            path = join_key(key, name)
            if not EVENT_TYPE.fullmatch(name):
                self.fail(
                    f.key,
                    path,
                    f"{name!r}: event types are 1 to 64 characters of A-Z, a-z, 0-9, _, ., : and -",
                )
                continue
            weight = self.number(f.value, path, -math.inf)
            if weight is not None:
                out[name] = weight
        return MappingProxyType(out) if len(out) == len(fields) else None

    def debias(self, node: Node) -> DebiasConfig | None:
        key = "feedback.debias"
        fields = self.mapping(node, key, DEBIAS_KEYS)
        if fields is None:
            return None
        d = DebiasConfig()
        eta = self.optional(fields, "eta", key, lambda n, k: self.number(n, k, 0.0), d.eta)
        max_factor = self.optional(
            fields, "max_factor", key, lambda n, k: self.number(n, k, 1.0), d.max_factor
        )
        if eta is None or max_factor is None:
            return None
        return DebiasConfig(eta=eta, max_factor=max_factor)
