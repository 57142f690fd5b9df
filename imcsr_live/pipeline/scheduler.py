"""Fixed-grid timing for live acquisition: timepoint k starts at t0 + k * interval.

A timepoint that overruns its slot makes the following slot(s) be skipped and counted, never silently shifted,
so the recorded time axis stays truthful (time = slot * interval).
"""

from __future__ import annotations

import math
import threading
import time


class IntervalScheduler:
    """Hands out grid slots; ``interval_s <= 0`` means free-running (start as soon as the last one ended)."""

    def __init__(self, interval_s: float, clock: object = time.monotonic) -> None:
        self.interval_s = interval_s
        self._clock = clock
        self.start_s = clock()  # type: ignore[operator]
        self.next_slot = 0
        self.skipped = 0

    def set_interval(self, interval_s: float) -> None:
        """New interval from the next slot on: the grid is re-based so that slot starts now (no skips counted)."""
        self.interval_s = interval_s
        self.start_s = self._clock() - self.next_slot * max(interval_s, 0.0)  # type: ignore[operator]

    def slot_time(self, slot: int) -> float:
        return self.start_s + slot * max(self.interval_s, 0.0)

    def wait_for_next(self, stop: threading.Event) -> int | None:
        """Block until the next slot starts; return its index, or None if ``stop`` was set while waiting."""
        if self.interval_s > 0:
            now = self._clock()  # type: ignore[operator]
            # the first slot whose start is still ahead (a slot that began a moment ago still counts as on time)
            late_tolerance_s = min(0.05, 0.1 * self.interval_s)
            due = math.ceil((now - self.start_s - late_tolerance_s) / self.interval_s)
            if due > self.next_slot:  # we are late: skip the slots that already passed
                self.skipped += due - self.next_slot
                self.next_slot = due
            if stop.wait(max(0.0, self.slot_time(self.next_slot) - self._clock())):  # type: ignore[operator]
                return None
        elif stop.is_set():
            return None
        slot = self.next_slot
        self.next_slot += 1
        return slot
