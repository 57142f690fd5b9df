"""Rolling three-frame buffer for temporal continuity (TC): separate frame t from [t-1, t, t+1].

Frame t can only be separated once t+1 exists, so in TC mode the separated view lags one interval behind
acquisition (the UI says so). Edges replicate: the first frame uses [0, 0, 1]; at the end, :meth:`flush`
separates the last frame with [T-2, T-1, T-1]. With a single-frame model the window is just [t], no lag.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Generic, TypeVar

import numpy as np

T = TypeVar("T")


@dataclass(frozen=True)
class Window(Generic[T]):
    """Frames to separate, stacked (N, H, W), and the item (e.g. the SR frame record) they are centred on."""

    frames: np.ndarray
    centre: T


class TemporalBuffer(Generic[T]):
    """Collects SR frames and emits separation windows. ``in_frames`` is 1 (no TC) or 3 (TC)."""

    def __init__(self, in_frames: int = 3) -> None:
        if in_frames not in (1, 3):
            raise ValueError(f"in_frames must be 1 or 3, got {in_frames}")
        self.in_frames = in_frames
        self._items: deque[tuple[np.ndarray, T]] = deque(maxlen=3)
        self._emitted_last = False

    @property
    def lag_frames(self) -> int:
        """How many timepoints the separated output trails acquisition."""
        return 1 if self.in_frames == 3 else 0

    def push(self, image: np.ndarray, item: T) -> Window[T] | None:
        """Add the newest frame; return the window that became complete, if any."""
        if self._items and image.shape != self._items[-1][0].shape:
            raise ValueError(f"frame shape changed from {self._items[-1][0].shape} to {image.shape}")
        self._items.append((image, item))
        self._emitted_last = False
        if self.in_frames == 1:
            return Window(image[None], item)
        if len(self._items) == 2:  # first frame, left edge replicated: [0, 0, 1]
            (a, item_a), (b, _) = self._items
            return Window(np.stack([a, a, b]), item_a)
        if len(self._items) == 3:
            (a, _), (b, item_b), (c, _) = self._items
            return Window(np.stack([a, b, c]), item_b)
        return None

    def flush(self) -> Window[T] | None:
        """At the end of a run: the window of the last frame (right edge replicated), once."""
        if self.in_frames == 1 or not self._items or self._emitted_last:
            return None
        self._emitted_last = True
        if len(self._items) == 1:
            (a, item_a) = self._items[0]
            return Window(np.stack([a, a, a]), item_a)
        (b, _), (c, item_c) = list(self._items)[-2:]
        return Window(np.stack([b, c, c]), item_c)

    def clear(self) -> None:
        self._items.clear()
        self._emitted_last = False
