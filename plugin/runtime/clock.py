"""The simulator's clock: the proxy's time is the simulated session's, never the wall's.

A simulation must give the same decisions and rewards on any machine under any load, so with
``ltrr serve --simulated-clock`` every request may carry its session's time (the
``X-Ltrr-Sim-Time`` header, epoch seconds). The feature clock (hour, weekday), the feedback
windows and the memory's decay read it, and the background loops (window sweep, memory flush)
run per target when the simulator moves that target's clock (``POST /_ltrr/_sim/clock``)
instead of every few wall-clock seconds. Each request's time lives in a context variable, so
contenders simulated side by side, each on its own target, never see each other's time.
"""

from __future__ import annotations

from contextvars import ContextVar, Token
from datetime import UTC, datetime

SIM_TIME_HEADER = "X-Ltrr-Sim-Time"

_REQUEST_TIME: ContextVar[float | None] = ContextVar("ltrr_sim_time", default=None)


class SimulatedClock:
    """The current request's simulated time, else the last one set."""

    __slots__ = ("last",)

    def __init__(self, now: float = 0.0) -> None:
        self.last = now

    def enter(self, now: float) -> Token[float | None]:
        """This request (and the tasks it starts) is at ``now``; ``leave`` with the token."""
        self.last = now
        return _REQUEST_TIME.set(now)

    @staticmethod
    def leave(token: Token[float | None]) -> None:
        _REQUEST_TIME.reset(token)

    def time(self) -> float:
        now = _REQUEST_TIME.get()
        return self.last if now is None else now

    def datetime(self) -> datetime:
        return datetime.fromtimestamp(self.time(), UTC)
