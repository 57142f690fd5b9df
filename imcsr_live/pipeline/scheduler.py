"""Fixed-grid timing for live acquisition: timepoint k starts at t0 + k * interval.

A timepoint that overruns its slot makes the following slot(s) be skipped and counted, never silently shifted,
so the recorded time axis stays truthful (time = slot * interval).
"""

from __future__ import annotations

import math
import threading
import time

# A waiting acquisition thread re-reads the grid this often, so an interval changed by the GUI thread takes
# effect within this time instead of after the rest of the old (possibly minutes long) interval.
_RECHECK_S = 0.25


class IntervalScheduler:
    """Hands out grid slots; ``interval_s <= 0`` means free-running (start as soon as the last one ended).

    :meth:`wait_for_next` runs on the acquisition thread, :meth:`set_interval` on the GUI thread: the grid
    (interval, origin, next slot) changes under a lock so neither sees half of a change.
    """

    def __init__(self, interval_s: float, clock: object = time.monotonic) -> None:
        self.interval_s = interval_s
        self._clock = clock
        self._lock = threading.Lock()
        self.start_s = clock()  # type: ignore[operator]
        self.next_slot = 0
        self.skipped = 0

    def set_interval(self, interval_s: float) -> None:
        """New interval from the next slot on: the grid is re-based so that slot starts now (no skips counted)."""
        with self._lock:
            self.interval_s = interval_s
            self.start_s = self._clock() - self.next_slot * max(interval_s, 0.0)  # type: ignore[operator]

    def slot_time(self, slot: int) -> float:
        return self.start_s + slot * max(self.interval_s, 0.0)

    def wait_for_next(self, stop: threading.Event) -> int | None:
        """Block until the next slot starts; return its index, or None if ``stop`` was set while waiting."""
        with self._lock:
            if self.interval_s > 0:
                now = self._clock()  # type: ignore[operator]
                # the first slot whose start is still ahead (a slot that began a moment ago still counts as on time)
                late_tolerance_s = min(0.05, 0.1 * self.interval_s)
                due = math.ceil((now - self.start_s - late_tolerance_s) / self.interval_s)
                if due > self.next_slot:  # we are late: skip the slots that already passed
                    self.skipped += due - self.next_slot
                    self.next_slot = due
        while True:
            with self._lock:
                remaining = self.slot_time(self.next_slot) - self._clock()  # type: ignore[operator]
            if remaining <= 0:
                break
            if stop.wait(min(remaining, _RECHECK_S)):
                return None
        if stop.is_set():
            return None
        with self._lock:
            slot = self.next_slot
            self.next_slot += 1
        return slot


class Pausable:
    """``pause()`` / ``resume()`` for a run on the interval grid: the GUI thread flips it, the acquisition thread
    asks :meth:`_skip_paused_slot` at every slot. Users set ``self._paused = threading.Event()`` in ``__init__``."""

    _paused: threading.Event

    def pause(self) -> None:
        """Stop acquiring at the next grid slot (frames in flight still finish); the grid keeps running."""
        self._paused.set()

    def resume(self) -> None:
        """Acquire again from the next grid slot."""
        self._paused.clear()

    @property
    def paused(self) -> bool:
        return self._paused.is_set()

    def _skip_paused_slot(self, interval_s: float, stop: threading.Event) -> bool:
        """True if this slot is to be skipped because of a pause (free-running: after a short nap, not a spin)."""
        if not self._paused.is_set():
            return False
        if interval_s <= 0:
            stop.wait(0.05)
        return True
