"""Temporal buffer windows (edges replicate, lag of one in TC mode) and the latest-wins display bus."""

from __future__ import annotations

import numpy as np
import pytest

from imcsr_live.pipeline.buffer import TemporalBuffer
from imcsr_live.pipeline.display_bus import DisplayBus


def frame(value: int) -> np.ndarray:
    return np.full((4, 5), value, dtype=np.float32)


def centres_and_windows(buffer: TemporalBuffer[int], n: int) -> list[tuple[int, list[int]]]:
    out = []
    for t in range(n):
        window = buffer.push(frame(t), t)
        if window is not None:
            out.append((window.centre, [int(f[0, 0]) for f in window.frames]))
    last = buffer.flush()
    if last is not None:
        out.append((last.centre, [int(f[0, 0]) for f in last.frames]))
    return out


def test_tc_windows_cover_every_frame_once_with_replicated_edges() -> None:
    assert centres_and_windows(TemporalBuffer(3), 5) == [
        (0, [0, 0, 1]), (1, [0, 1, 2]), (2, [1, 2, 3]), (3, [2, 3, 4]), (4, [3, 4, 4]),
    ]  # fmt: skip
    assert TemporalBuffer(3).lag_frames == 1


def test_single_frame_windows_have_no_lag() -> None:
    buffer: TemporalBuffer[int] = TemporalBuffer(1)
    assert centres_and_windows(buffer, 3) == [(0, [0]), (1, [1]), (2, [2])]
    assert buffer.lag_frames == 0


def test_one_frame_run_and_double_flush() -> None:
    buffer: TemporalBuffer[int] = TemporalBuffer(3)
    assert buffer.push(frame(7), 7) is None
    window = buffer.flush()
    assert window is not None and window.centre == 7 and window.frames.shape == (3, 4, 5)
    assert buffer.flush() is None


def test_shape_change_is_refused() -> None:
    buffer: TemporalBuffer[int] = TemporalBuffer(3)
    buffer.push(frame(0), 0)
    with pytest.raises(ValueError, match="shape changed"):
        buffer.push(np.zeros((8, 8), np.float32), 1)


def test_display_bus_keeps_only_the_newest_and_counts_unread() -> None:
    bus: DisplayBus[str] = DisplayBus()
    calls: list[int] = []
    bus.subscribe(lambda: calls.append(1))
    assert bus.latest() == (None, 0)
    bus.publish("a")
    bus.publish("b")  # "a" replaced before anyone read it
    assert bus.latest() == ("b", 2)
    bus.publish("c")
    assert bus.latest() == ("c", 3)
    assert bus.replaced_unread == 1
    assert len(calls) == 3
