"""SimulatedClock: each request's time in a context variable, else the last one set."""

from __future__ import annotations

import asyncio
import contextvars
from datetime import UTC, datetime

from ltrr.plugin.runtime.clock import SIM_TIME_HEADER, SimulatedClock

T0 = 1_800_000_000.0  # 2027-01-15T08:00:00Z


def test_the_header_name_is_the_one_the_simulator_sends():
    assert SIM_TIME_HEADER == "X-Ltrr-Sim-Time"


def test_a_new_clock_is_at_the_time_it_was_made_with():
    assert SimulatedClock().time() == 0.0
    assert SimulatedClock(T0).time() == T0


def test_enter_sets_the_time_and_leave_restores_the_one_before():
    def scenario():
        clock = SimulatedClock(1.0)
        outer = clock.enter(T0)
        assert clock.time() == T0
        inner = clock.enter(T0 + 60)
        assert clock.time() == T0 + 60
        clock.leave(inner)
        assert clock.time() == T0  # the outer request's time again, not the last one set
        clock.leave(outer)
        return clock

    clock = contextvars.copy_context().run(scenario)
    # No request in progress: the last time set, not the one the clock was made with.
    assert clock.last == T0 + 60
    assert clock.time() == T0 + 60


def test_outside_a_request_the_time_is_the_last_one_entered():
    clock = SimulatedClock(5.0)
    contextvars.copy_context().run(clock.enter, T0)
    # enter ran in another context: here no request time is set, so the last one is read.
    assert clock.time() == T0
    contextvars.copy_context().run(clock.enter, T0 + 3.5)
    assert clock.time() == T0 + 3.5


def test_datetime_is_the_time_in_utc():
    clock = SimulatedClock(T0)
    now = clock.datetime()
    assert now.tzinfo is UTC
    assert now == datetime(2027, 1, 15, 8, 0, tzinfo=UTC)
    assert (now.hour, now.weekday()) == (8, 4)  # read in UTC whatever the machine's zone

    def entered():
        clock.enter(T0 + 3600 * 13 + 1800)
        return clock.datetime()

    assert contextvars.copy_context().run(entered) == datetime(2027, 1, 15, 21, 30, tzinfo=UTC)


def test_two_tasks_each_see_their_own_time_concurrently():
    clock = SimulatedClock()
    seen: dict[str, list[float]] = {"a": [], "b": []}
    a_entered, b_entered = asyncio.Event(), asyncio.Event()

    async def session(name, now, mine, other):
        token = clock.enter(now)
        try:
            mine.set()
            await other.wait()  # the other task has entered its own time meanwhile
            for _ in range(3):
                seen[name].append(clock.time())
                await asyncio.sleep(0)
            seen[name].append(clock.datetime().timestamp())
        finally:
            clock.leave(token)

    async def main():
        await asyncio.gather(
            session("a", T0, a_entered, b_entered),
            session("b", T0 + 86_400, b_entered, a_entered),
        )

    asyncio.run(main())
    assert seen == {"a": [T0] * 4, "b": [T0 + 86_400] * 4}
    assert clock.time() in (T0, T0 + 86_400)  # after both: the last one set


def test_a_task_started_inside_a_request_inherits_its_time():
    clock = SimulatedClock(1.0)

    async def main():
        token = clock.enter(T0)

        async def read():
            await asyncio.sleep(0)
            return clock.time()

        task = asyncio.create_task(read())
        clock.leave(token)
        token = clock.enter(T0 + 99)  # the request moves on; the task keeps its copy
        try:
            return await task
        finally:
            clock.leave(token)

    assert asyncio.run(main()) == T0
