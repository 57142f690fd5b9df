"""Latest-wins hand-over from the pipeline to the display: the GUI polls or is signalled, never queues."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class DisplayBus(Generic[T]):
    """Holds only the newest published item; counts the ones the display never saw (replaced unread)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._item: T | None = None
        self._sequence = 0
        self._read_sequence = 0
        self.replaced_unread = 0
        self._listeners: list[Callable[[], None]] = []

    def subscribe(self, notify: Callable[[], None]) -> None:
        """``notify()`` is called (on the publishing thread) after every publish; keep it cheap (e.g. a Qt signal)."""
        self._listeners.append(notify)

    def publish(self, item: T) -> None:
        with self._lock:
            if self._sequence > self._read_sequence:
                self.replaced_unread += 1
            self._item = item
            self._sequence += 1
        for notify in self._listeners:
            notify()

    def latest(self) -> tuple[T | None, int]:
        """The newest item and its sequence number (0 = nothing yet); marks it as read."""
        with self._lock:
            self._read_sequence = self._sequence
            return self._item, self._sequence
