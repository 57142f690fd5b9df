"""Interval scheduler: slots on a fixed grid, overruns skip (and count) slots instead of shifting them."""

from __future__ import annotations

import threading

from imcsr_live.pipeline.scheduler import IntervalScheduler


class FakeClock:
    """A controllable monotonic clock (the scheduler's only time source), advanced by waits and work."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class ClockEvent(threading.Event):
    """An Event whose wait() advances the fake clock instead of sleeping."""

    def __init__(self, clock: FakeClock) -> None:
        super().__init__()
        self.clock = clock

    def wait(self, timeout: float | None = None) -> bool:
        self.clock.now += timeout or 0.0
        return self.is_set()


def test_slots_follow_the_grid_and_overruns_are_skipped() -> None:
    clock = FakeClock()
    scheduler = IntervalScheduler(2.0, clock=clock)
    stop = ClockEvent(clock)
    starts = []
    for work_s in (0.5, 0.5, 4.5, 0.5):  # the third timepoint overruns by 2.5 s
        slot = scheduler.wait_for_next(stop)
        assert slot is not None
        starts.append((slot, clock.now - 100.0))
        clock.now += work_s
    assert starts == [(0, 0.0), (1, 2.0), (2, 4.0), (5, 10.0)]  # slots 3 and 4 skipped, 5 on the grid
    assert scheduler.skipped == 2


def test_a_slot_that_started_a_moment_ago_is_still_on_time() -> None:
    clock = FakeClock()
    scheduler = IntervalScheduler(2.0, clock=clock)
    clock.now += 0.01  # the acquisition thread starts a little after the scheduler was made
    assert scheduler.wait_for_next(ClockEvent(clock)) == 0
    assert scheduler.skipped == 0


def test_free_running_and_stop() -> None:
    clock = FakeClock()
    scheduler = IntervalScheduler(0.0, clock=clock)
    stop = ClockEvent(clock)
    assert [scheduler.wait_for_next(stop) for _ in range(3)] == [0, 1, 2]
    assert clock.now == 100.0  # never waited
    stop.set()
    assert scheduler.wait_for_next(stop) is None
