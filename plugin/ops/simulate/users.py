"""A seeded population of simulated users: who searches, from where, and when.

The policy's features see a caller context (``ext.ltrr.context``) and the clock, so a simulation
that always sent the same context at the same hour could never show a policy learning to tell
users apart. Each user here has a fixed ``segment`` and ``locale`` (so a user's context is stable
across sessions) and searches at a local time drawn from a daily cycle over a simulated week,
in the user's own time zone, with most searches in the evening.

Everything is a function of the seed: the members are drawn once from ``seed``, and session
``i`` from ``(seed, i)``, so a session's user and time do not depend on how many sessions ran
before it, and every policy in a line-up can be shown exactly the same stream.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from datetime import time as wall_time
from types import MappingProxyType
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import numpy as np
import numpy.typing as npt

from ltrr.plugin.errors import LtrrError
from ltrr.plugin.ops.simulate.clicks import ClickModel, with_eta

__all__ = [
    "DEFAULT_HOURLY_WEIGHTS",
    "PopulationError",
    "SimUser",
    "UserConfig",
    "UserPopulation",
]

# Relative search volume per local hour, 0h first: quiet nights, a morning and a lunch bump,
# the peak between 19h and 22h.
DEFAULT_HOURLY_WEIGHTS: tuple[float, ...] = (
    0.3, 0.2, 0.1, 0.1, 0.1, 0.2,  # 0h-5h
    0.5, 0.8, 1.0, 1.0, 1.0, 1.1,  # 6h-11h
    1.3, 1.1, 1.0, 1.0, 1.1, 1.3,  # 12h-17h
    1.7, 2.2, 2.5, 2.4, 1.8, 0.9,  # 18h-23h
)  # fmt: skip


def _frozen(mapping: Mapping[str, float] | Mapping[str, str]) -> Mapping[str, object]:
    return MappingProxyType(dict(mapping))


def _default_segments() -> Mapping[str, float]:
    return MappingProxyType({"casual": 0.6, "enthusiast": 0.25, "new": 0.15})


def _default_locales() -> Mapping[str, float]:
    return MappingProxyType({"en-US": 0.45, "de-DE": 0.2, "pt-BR": 0.2, "ja-JP": 0.15})


def _default_time_zones() -> Mapping[str, str]:
    return MappingProxyType(
        {
            "en-US": "America/New_York",
            "de-DE": "Europe/Berlin",
            "pt-BR": "America/Sao_Paulo",
            "ja-JP": "Asia/Tokyo",
        }
    )


def _default_segment_eta() -> Mapping[str, float]:
    # Enthusiasts scan deeper (a flatter 1/k**eta), new users barely past the top results.
    return MappingProxyType({"casual": 1.0, "enthusiast": 0.6, "new": 1.4})


class PopulationError(LtrrError, ValueError):
    """A bad population setting; ``key`` names it."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(f"{key}: {message}")
        self.key = key


def _is_number(value: object) -> bool:
    return not isinstance(value, bool) and isinstance(value, int | float) and math.isfinite(value)


def _probabilities(key: str, weights: Sequence[float]) -> npt.NDArray[np.float64]:
    if not weights:
        raise PopulationError(key, "must not be empty")
    for w in weights:
        if not _is_number(w) or w < 0.0:
            raise PopulationError(key, f"weights must be finite numbers >= 0, got {w!r}")
    p = np.asarray(weights, dtype=np.float64)
    total = float(p.sum())
    if total <= 0.0:
        raise PopulationError(key, "weights must not all be zero")
    return p / total


@dataclass(frozen=True)
class UserConfig:
    """Who the users are and when they search; validated and frozen on construction.

    - ``segments`` / ``locales``: category -> relative share of the population;
    - ``time_zones``: locale -> IANA zone, one for every locale;
    - ``hourly_weights``: 24 relative search volumes by local hour (0h first);
    - ``days``: the length of the simulated period (a week by default);
    - ``segment_eta``: the PBM ``eta`` of each segment (smaller scans deeper); a segment
      without one keeps the base click model's.
    """

    segments: Mapping[str, float] = field(default_factory=_default_segments)
    locales: Mapping[str, float] = field(default_factory=_default_locales)
    time_zones: Mapping[str, str] = field(default_factory=_default_time_zones)
    hourly_weights: tuple[float, ...] = DEFAULT_HOURLY_WEIGHTS
    days: int = 7
    segment_eta: Mapping[str, float] = field(default_factory=_default_segment_eta)

    def __post_init__(self) -> None:
        _probabilities("segments", list(self.segments.values()))
        _probabilities("locales", list(self.locales.values()))
        if len(self.hourly_weights) != 24:
            raise PopulationError(
                "hourly_weights", f"must have 24 values, got {len(self.hourly_weights)}"
            )
        _probabilities("hourly_weights", self.hourly_weights)
        if isinstance(self.days, bool) or not isinstance(self.days, int) or self.days < 1:
            raise PopulationError("days", f"must be an integer >= 1, got {self.days!r}")
        for locale in self.locales:
            zone = self.time_zones.get(locale)
            if zone is None:
                raise PopulationError("time_zones", f"no time zone for locale {locale!r}")
            try:
                ZoneInfo(zone)
            except (ZoneInfoNotFoundError, ValueError):
                raise PopulationError(
                    "time_zones", f"unknown time zone {zone!r} for locale {locale!r}"
                ) from None
        for segment, eta in self.segment_eta.items():
            if segment not in self.segments:
                raise PopulationError(
                    "segment_eta", f"{segment!r} is not one of the segments {list(self.segments)}"
                )
            if not _is_number(eta) or eta < 0.0:
                raise PopulationError(
                    "segment_eta", f"{segment!r} must be a finite number >= 0, got {eta!r}"
                )
        # Callers may pass plain dicts: freeze copies so that the config cannot change later.
        for name in ("segments", "locales", "time_zones", "segment_eta"):
            object.__setattr__(self, name, _frozen(getattr(self, name)))

    def click_model(self, base: ClickModel, segment: str) -> ClickModel:
        """The click model for a segment: ``base`` with the segment's ``eta`` where it has one."""
        eta = self.segment_eta.get(segment)
        return base if eta is None else with_eta(base, eta)


@dataclass(frozen=True, slots=True)
class SimUser:
    """One user at one search: who (``user_id``, ``segment``, ``locale``) and when (``time``).

    ``time`` is aware and local to the user's time zone, as the proxy's clock features expect.
    """

    user_id: int
    segment: str
    locale: str
    time: datetime

    def context(self) -> dict[str, str]:
        """The ``ext.ltrr.context`` the user's search sends: categorical fields only."""
        return {"segment": self.segment, "locale": self.locale}


class UserPopulation:
    """``size`` users drawn once from ``seed``; each draw is one of them at one search time.

    The simulated period starts on ``start``'s calendar date in each user's own zone and lasts
    ``config.days`` days.
    """

    def __init__(
        self, size: int, seed: int, start: datetime, config: UserConfig | None = None
    ) -> None:
        if isinstance(size, bool) or not isinstance(size, int) or size < 1:
            raise PopulationError("size", f"must be an integer >= 1, got {size!r}")
        if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
            raise PopulationError("seed", f"must be an integer >= 0, got {seed!r}")
        if start.tzinfo is None or start.utcoffset() is None:
            raise PopulationError("start", f"must be an aware datetime, got {start.isoformat()}")
        self.size = size
        self.seed = seed
        self.start = start
        self.config = config if config is not None else UserConfig()
        cfg = self.config
        self._hour_p = _probabilities("hourly_weights", cfg.hourly_weights)
        self._zones = {locale: ZoneInfo(cfg.time_zones[locale]) for locale in cfg.locales}
        rng = np.random.default_rng(seed)
        segment_names = list(cfg.segments)
        locale_names = list(cfg.locales)
        segments = rng.choice(
            len(segment_names), size=size, p=_probabilities("segments", list(cfg.segments.values()))
        )
        locales = rng.choice(
            len(locale_names), size=size, p=_probabilities("locales", list(cfg.locales.values()))
        )
        self._members: tuple[tuple[str, str], ...] = tuple(
            (segment_names[int(s)], locale_names[int(loc)])
            for s, loc in zip(segments, locales, strict=True)
        )

    def __len__(self) -> int:
        return self.size

    def member(self, user_id: int) -> tuple[str, str]:
        """A member's fixed (segment, locale)."""
        return self._members[user_id]

    def draw(self, rng: np.random.Generator) -> SimUser:
        """A uniformly chosen member, searching at a time drawn from the daily cycle."""
        user_id = int(rng.integers(self.size))
        segment, locale = self._members[user_id]
        zone = self._zones[locale]
        day = int(rng.integers(self.config.days))
        hour = int(rng.choice(24, p=self._hour_p))
        second = int(rng.integers(3600))
        first_day = self.start.astimezone(zone).date()
        local = datetime.combine(first_day + timedelta(days=day), wall_time(hour), tzinfo=zone)
        return SimUser(user_id, segment, locale, local + timedelta(seconds=second))

    def session(self, index: int) -> SimUser:
        """Session ``index``'s user and time: the same for a given seed whatever ran before."""
        if isinstance(index, bool) or not isinstance(index, int) or index < 0:
            raise PopulationError("index", f"must be an integer >= 0, got {index!r}")
        return self.draw(np.random.default_rng([self.seed, index]))
