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


def test_a_new_interval_starts_its_grid_at_the_next_slot() -> None:
    now = [100.0]
    scheduler = IntervalScheduler(1.0, clock=lambda: now[0])
    stop = threading.Event()
    assert scheduler.wait_for_next(stop) == 0
    now[0] = 100.9  # slot 0 took 0.9 s; switch to 0.25 s before slot 1
    scheduler.set_interval(0.25)
    assert scheduler.slot_time(1) == 100.9 and scheduler.slot_time(3) == 101.4
    assert scheduler.wait_for_next(stop) == 1
    now[0] = 101.15
    assert scheduler.wait_for_next(stop) == 2
    assert scheduler.skipped == 0


def test_a_shorter_interval_wakes_a_thread_waiting_on_the_old_one() -> None:
    scheduler = IntervalScheduler(3600.0)  # slot 1 is an hour away
    stop = threading.Event()
    assert scheduler.wait_for_next(stop) == 0
    got: list[int | None] = []
    waiter = threading.Thread(target=lambda: got.append(scheduler.wait_for_next(stop)), daemon=True)
    waiter.start()
    threading.Event().wait(0.3)
    scheduler.set_interval(0.01)  # from the GUI thread, while the acquisition thread sleeps
    waiter.join(10.0)
    stop.set()
    assert got == [1] and scheduler.skipped == 0  # slot 1 started now, not an hour later
