"""Frame-slip detection: prove a burst's frames are the SIM patterns in the expected order, or say why not.

A slip happens when the camera and the SLM fall out of step (a missed or extra trigger, a dropped frame, an SLM
running order that did not restart). Evidence, best first: the pattern index the hardware reports per frame,
the camera's frame counter (gaps = dropped frames), and the spacing of frame timestamps (a missed trigger
shows as a gap of about one frame period).
"""

from __future__ import annotations

import itertools
import statistics
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

GAP_FACTOR = 1.5  # an interval this many times the median (plus GAP_MARGIN_MS) counts as a missed frame
GAP_MARGIN_MS = 2.0


@dataclass(frozen=True)
class BurstCheck:
    """Result of :func:`check_burst`.

    ``ok``: the frames can be used. ``order``: frame positions to take, in pattern order (identity unless the
    frames arrived permuted). ``reason``: why the burst was rejected (or re-ordered), for logs and errors.
    """

    ok: bool
    order: tuple[int, ...]
    reason: str = ""

    @property
    def reordered(self) -> bool:
        return self.ok and self.order != tuple(range(len(self.order)))


def check_burst(
    pattern_indices: Sequence[int | None],
    image_numbers: Sequence[int | None] = (),
    timestamps_ms: Sequence[float | None] = (),
    frame_period_ms: float | None = None,
) -> BurstCheck:
    """Check one burst of ``n`` frames that should show patterns ``0 .. n-1`` in that order.

    With a pattern index for every frame: in order -> ok; a permutation of ``0 .. n-1`` (e.g. the running
    order started at the wrong position) -> ok with a re-ordering; duplicates or missing patterns -> slip.
    Without pattern indices: camera frame numbers must be consecutive and no timestamp gap may exceed
    ``GAP_FACTOR`` x the median frame interval. Timestamps count only when the burst is exposure-limited
    (median interval <= 1.5 x ``frame_period_ms`` + 2 ms, if given): when software overhead sets the pace,
    its jitter is as large as a missed frame. Frames without evidence are accepted (nothing to check).
    """
    n = len(pattern_indices)
    identity = tuple(range(n))
    if n and all(p is not None for p in pattern_indices):
        got = [int(p) for p in pattern_indices]  # type: ignore[arg-type]
        if got == list(identity):
            return BurstCheck(True, identity)
        if sorted(got) == list(identity):
            order = tuple(sorted(identity, key=lambda i: got[i]))
            return BurstCheck(True, order, f"frames arrived as patterns {got}; re-ordered by pattern index")
        counts = Counter(got)
        dup = sorted(p for p, c in counts.items() if c > 1)
        missing = sorted(set(identity) - set(got))
        return BurstCheck(False, identity, f"pattern indices {got}: repeated {dup}, missing {missing}")
    numbers = [x for x in image_numbers if x is not None]
    if len(numbers) == n and n > 1:
        steps = [b - a for a, b in itertools.pairwise(numbers)]
        if any(s != 1 for s in steps):
            return BurstCheck(False, identity, f"camera frame numbers {numbers} are not consecutive (dropped frames)")
    times = [t for t in timestamps_ms if t is not None]
    if len(times) == n and n > 2:
        intervals = [b - a for a, b in itertools.pairwise(times)]
        median = statistics.median(intervals)
        if frame_period_ms is not None and median > 1.5 * frame_period_ms + GAP_MARGIN_MS:
            return BurstCheck(True, identity)  # processing-limited: timing is no evidence
        for i, dt in enumerate(intervals):
            if dt > GAP_FACTOR * median + GAP_MARGIN_MS:
                return BurstCheck(
                    False,
                    identity,
                    f"{dt:.1f} ms between frames {i} and {i + 1} (median {median:.1f} ms): a trigger was missed",
                )
    return BurstCheck(True, identity)
