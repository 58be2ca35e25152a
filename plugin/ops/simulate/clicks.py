"""Click models: how a simulated user turns a page of graded results into clicks.

Two classic models from the click-model literature (Chuklin, Markov and de Rijke, *Click
Models for Web Search*, 2015), both driven by the same attractiveness of a grade:

    alpha(g) = noise + (1 - noise) * (2**g - 1) / (2**g_max - 1)    for g > 0
    alpha(0) = noise

with ``g`` capped at ``g_max``. ``noise`` is the chance of clicking an irrelevant result, so a
policy is never rewarded with perfectly clean labels; ``g_max`` should be the dataset's top
grade, so that only the best documents are always attractive.

- ``PositionBasedModel`` (PBM): rank k is examined with a probability that depends only on k,
  independently of everything else; a click needs examination and attraction.
- ``CascadeModel``: the user scans from the top and stops. With ``continue_after_click = 0`` and
  ``abandon = 0`` it is the classic cascade model (one click at most, on the first attractive
  result). With ``continue_after_click > 0`` it is the *dependent click model* (DCM), where the
  user may go on after a click; ``abandon > 0`` lets a user give up without clicking.

Every model gives exact marginals (no sampling), which is what expected reward and regret are
measured on, and a sampler for the clicks actually sent back to the proxy.
"""

from __future__ import annotations

import dataclasses
import math
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from ltrr.plugin.errors import LtrrError

__all__ = [
    "MODEL_NAMES",
    "CascadeModel",
    "ClickModel",
    "ClickModelError",
    "PositionBasedModel",
    "attractiveness",
    "from_spec",
    "with_eta",
]


class ClickModelError(LtrrError, ValueError):
    """A bad click-model parameter or spec; ``key`` names the parameter at fault."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(f"{key}: {message}")
        self.key = key


def _check_probability(key: str, value: float) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0.0 <= value <= 1.0:
        raise ClickModelError(key, f"must be a probability between 0 and 1, got {value!r}")


def _check_g_max(g_max: int) -> None:
    if isinstance(g_max, bool) or not isinstance(g_max, int) or g_max < 1:
        raise ClickModelError("g_max", f"must be an integer >= 1, got {g_max!r}")


def attractiveness(grade: int, noise: float, g_max: int) -> float:
    """P(click | examined) for a grade: ``noise`` for unjudged, 1.0 for the top grade."""
    if isinstance(grade, bool) or not isinstance(grade, int) or grade < 0:
        raise ClickModelError("grades", f"must be integers >= 0, got {grade!r}")
    if grade == 0:
        return noise
    g = min(grade, g_max)
    return noise + (1.0 - noise) * (2.0**g - 1.0) / (2.0**g_max - 1.0)


class ClickModel(ABC):
    """A user's clicks on a page, as exact marginals and as samples.

    ``grades`` is the grade of each shown rank, rank 1 first (0 for unjudged documents).
    """

    name: ClassVar[str]
    noise: float
    g_max: int

    def alphas(self, grades: Sequence[int]) -> list[float]:
        """Attractiveness of each rank: the part of the click that the ranking controls."""
        return [attractiveness(g, self.noise, self.g_max) for g in grades]

    @abstractmethod
    def click_probabilities(self, grades: Sequence[int]) -> list[float]:
        """Exact marginal P(click at rank k), for each rank."""

    @abstractmethod
    def sample(self, grades: Sequence[int], rng: np.random.Generator) -> list[int]:
        """One user's clicks: the 1-based ranks clicked, in scan order."""

    @property
    @abstractmethod
    def spec(self) -> str:
        """The ``from_spec`` string that rebuilds this model, for reports and logs."""

    def expected_clicks(self, grades: Sequence[int]) -> float:
        """Expected number of clicks on the page: the sum of the marginals."""
        return math.fsum(self.click_probabilities(grades))


@dataclass(frozen=True, slots=True)
class PositionBasedModel(ClickModel):
    """Examination depends on the rank only: ``examination[k-1]``, else ``1 / k**eta``.

    An explicit ``examination`` tuple covers its own length; ranks beyond it are never
    examined (the user does not look further than the profile says).
    """

    name: ClassVar[str] = "pbm"
    examination: tuple[float, ...] | None = None
    eta: float = 1.0
    noise: float = 0.05
    g_max: int = 1

    def __post_init__(self) -> None:
        if self.examination is not None:
            if not isinstance(self.examination, tuple) or not self.examination:
                raise ClickModelError("examination", "must be a non-empty tuple of probabilities")
            for p in self.examination:
                _check_probability("examination", p)
        if (
            isinstance(self.eta, bool)
            or not isinstance(self.eta, int | float)
            or not math.isfinite(self.eta)
            or self.eta < 0.0
        ):
            raise ClickModelError("eta", f"must be a finite number >= 0, got {self.eta!r}")
        _check_probability("noise", self.noise)
        _check_g_max(self.g_max)

    def examination_probability(self, rank: int) -> float:
        """P(examine rank), 1-based."""
        if self.examination is not None:
            return self.examination[rank - 1] if rank <= len(self.examination) else 0.0
        return math.pow(rank, -self.eta)

    def click_probabilities(self, grades: Sequence[int]) -> list[float]:
        return [self.examination_probability(k) * a for k, a in enumerate(self.alphas(grades), 1)]

    def sample(self, grades: Sequence[int], rng: np.random.Generator) -> list[int]:
        p = self.click_probabilities(grades)
        draws = rng.random(len(p))
        return [k for k, (u, pk) in enumerate(zip(draws, p, strict=True), 1) if u < pk]

    @property
    def spec(self) -> str:
        depth = (
            f"eta={_fmt(self.eta)}"
            if self.examination is None
            else "exam=" + "/".join(_fmt(p) for p in self.examination)
        )
        return f"pbm:{depth},noise={_fmt(self.noise)},g_max={self.g_max}"


@dataclass(frozen=True, slots=True)
class CascadeModel(ClickModel):
    """Top-down scan: click with alpha(g); go on after a click with ``continue_after_click``,
    after a skip with ``1 - abandon``.

    The marginals follow from P(examine rank 1) = 1 and
    ``E[k+1] = E[k] * (alpha_k * continue_after_click + (1 - alpha_k) * (1 - abandon))``.
    """

    name: ClassVar[str] = "cascade"
    continue_after_click: float = 0.0
    abandon: float = 0.0
    noise: float = 0.05
    g_max: int = 1

    def __post_init__(self) -> None:
        _check_probability("continue_after_click", self.continue_after_click)
        _check_probability("abandon", self.abandon)
        _check_probability("noise", self.noise)
        _check_g_max(self.g_max)

    def click_probabilities(self, grades: Sequence[int]) -> list[float]:
        out: list[float] = []
        examined = 1.0
        for a in self.alphas(grades):
            out.append(examined * a)
            examined *= a * self.continue_after_click + (1.0 - a) * (1.0 - self.abandon)
        return out

    def sample(self, grades: Sequence[int], rng: np.random.Generator) -> list[int]:
        clicks: list[int] = []
        for k, a in enumerate(self.alphas(grades), 1):
            if rng.random() < a:
                clicks.append(k)
                if rng.random() >= self.continue_after_click:
                    break
            elif rng.random() < self.abandon:
                break
        return clicks

    @property
    def spec(self) -> str:
        return (
            f"cascade:continue={_fmt(self.continue_after_click)},abandon={_fmt(self.abandon)},"
            f"noise={_fmt(self.noise)},g_max={self.g_max}"
        )


def _fmt(value: float) -> str:
    """Shortest text that parses back to the same float, so a spec round-trips exactly."""
    return repr(float(value))


def _number(key: str, raw: str) -> float:
    try:
        value = float(raw)
    except ValueError:
        raise ClickModelError(key, f"must be a number, got {raw!r}") from None
    if not math.isfinite(value):
        raise ClickModelError(key, f"must be a finite number, got {raw!r}")
    return value


def _integer(key: str, raw: str) -> int:
    try:
        return int(raw)
    except ValueError:
        raise ClickModelError(key, f"must be an integer, got {raw!r}") from None


def _profile(key: str, raw: str) -> tuple[float, ...]:
    return tuple(_number(key, p) for p in raw.split("/"))


# Spec key -> (constructor argument, parser), per model.
_Parser = Callable[[str, str], object]
_KEYS: Mapping[str, Mapping[str, tuple[str, _Parser]]] = {
    "pbm": {
        "eta": ("eta", _number),
        "exam": ("examination", _profile),
        "noise": ("noise", _number),
        "g_max": ("g_max", _integer),
    },
    "cascade": {
        "continue": ("continue_after_click", _number),
        "abandon": ("abandon", _number),
        "noise": ("noise", _number),
        "g_max": ("g_max", _integer),
    },
}
_MODELS: Mapping[str, type[PositionBasedModel] | type[CascadeModel]] = {
    "pbm": PositionBasedModel,
    "cascade": CascadeModel,
}
MODEL_NAMES = tuple(_MODELS)


def from_spec(spec: str, *, g_max: int = 1) -> ClickModel:
    """Build a model from a CLI string: ``pbm``, ``pbm:eta=0.8``, ``cascade:continue=0.3``.

    ``g_max`` is the caller's default (the dataset's top grade); a ``g_max=`` in the spec wins.
    PBM also takes ``exam=1/0.6/0.3`` for an explicit examination profile.
    """
    name, _, params = spec.strip().partition(":")
    name = name.strip().lower()
    if name not in _MODELS:
        raise ClickModelError(
            "model", f"unknown click model {name!r} in {spec!r}; one of {', '.join(MODEL_NAMES)}"
        )
    keys = _KEYS[name]
    kwargs: dict[str, object] = {"g_max": g_max}
    seen: set[str] = set()
    for pair in params.split(","):
        if not pair.strip():
            continue
        key, eq, raw = pair.partition("=")
        key = key.strip()
        if not eq or not key:
            raise ClickModelError("spec", f"expected key=value, got {pair.strip()!r} in {spec!r}")
        if key not in keys:
            raise ClickModelError(key, f"unknown parameter for {name!r}; one of {', '.join(keys)}")
        if key in seen:
            raise ClickModelError(key, f"given twice in {spec!r}")
        seen.add(key)
        argument, parse = keys[key]
        kwargs[argument] = parse(key, raw.strip())
    if "eta" in seen and "exam" in seen:
        raise ClickModelError("exam", "give either eta or exam, not both")
    model: ClickModel = _MODELS[name](**kwargs)  # type: ignore[arg-type]
    return model


def with_eta(model: ClickModel, eta: float) -> ClickModel:
    """The same model scanning deeper or shallower; only a PBM on ``1/k**eta`` has an eta.

    Models with an explicit examination profile, and cascades, are returned unchanged: their
    depth was set on purpose.
    """
    if isinstance(model, PositionBasedModel) and model.examination is None:
        return dataclasses.replace(model, eta=eta)
    return model
