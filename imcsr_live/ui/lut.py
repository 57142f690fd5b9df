"""Per-channel display model (colour, visibility, levels, gamma) and its 256-entry colour tables.

No Qt here: the numpy form of what the overlay draws, so tests can compute the expected composite.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np

from imcsr_live.colours import is_hex_colour

# Colour-blind-safe sets for additive overlays (hue pairs that stay apart for deuteranopes/protanopes).
PALETTES: dict[str, tuple[str, ...]] = {
    "Okabe-Ito": ("#E69F00", "#56B4E9", "#009E73", "#F0E442", "#0072B2", "#D55E00", "#CC79A7"),
    "Magenta / Green / Cyan": ("#FF00FF", "#00FF00", "#00FFFF", "#FFFF00"),
    "Magenta / Yellow / Cyan": ("#FF00FF", "#FFFF00", "#00FFFF", "#FFFFFF"),
}


@dataclass
class ChannelDisplay:
    """How one channel is drawn. ``levels`` None = not set yet (auto on the first frame)."""

    name: str
    color: str  # "#RRGGBB"
    visible: bool = True
    levels: tuple[float, float] | None = None
    gamma: float = 0.8
    auto: bool = False  # continuous auto-contrast (percentiles of every new frame)

    def to_dict(self) -> dict[str, object]:
        data = asdict(self)
        data["levels"] = list(self.levels) if self.levels is not None else None
        return data

    @classmethod
    def from_dict(cls, data: dict[str, object], name: str, fallback_color: str, gamma: float) -> ChannelDisplay:
        """A display from saved settings; raises ``ValueError`` naming the first value that is not usable."""
        color = data.get("color", fallback_color)
        if not isinstance(color, str) or not is_hex_colour(color):
            raise ValueError(f"colour {color!r} is not #RRGGBB")
        saved_gamma = data.get("gamma", gamma)
        if not _is_number(saved_gamma) or not GAMMA_RANGE[0] <= float(saved_gamma) <= GAMMA_RANGE[1]:  # type: ignore[arg-type]
            raise ValueError(f"gamma {saved_gamma!r} is not a number in {GAMMA_RANGE}")
        levels = data.get("levels")
        if levels is not None and not (
            isinstance(levels, list) and len(levels) == 2 and all(_is_number(v) for v in levels)
            and float(levels[0]) < float(levels[1])
        ):  # fmt: skip
            raise ValueError(f"levels {levels!r} are not [min, max] with min < max")
        visible, auto = data.get("visible", True), data.get("auto", False)
        if not isinstance(visible, bool) or not isinstance(auto, bool):
            raise ValueError(f"visible/auto {visible!r}/{auto!r} are not true/false")
        return cls(
            name=name,
            color=color,
            visible=visible,
            levels=(float(levels[0]), float(levels[1])) if isinstance(levels, list) else None,
            gamma=float(saved_gamma),  # type: ignore[arg-type]
            auto=auto,
        )


GAMMA_RANGE = (0.1, 5.0)  # what the channel row's gamma box offers


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def hex_rgb(colour: str) -> tuple[int, int, int]:
    value = int(colour.lstrip("#"), 16)
    return (value >> 16) & 255, (value >> 8) & 255, value & 255


def colour_lut(colour: str, gamma: float) -> np.ndarray:
    """(256, 3) uint8: black -> ``colour`` with ``gamma`` baked in (entry i = colour * (i / 255) ** gamma)."""
    ramp = (np.arange(256, dtype=np.float64) / 255.0) ** float(gamma)
    return np.round(ramp[:, None] * np.array(hex_rgb(colour), dtype=np.float64)[None, :]).astype(np.uint8)


def lut_index(counts: np.ndarray, levels: tuple[float, float], n: int = 256) -> np.ndarray:
    """Which of ``n`` LUT entries each value maps to (pyqtgraph's rule: scale (x - lo) by n / (hi - lo), clip)."""
    low, high = levels
    scale = n / max(high - low, 1e-12)
    return np.clip(np.floor((counts.astype(np.float64) - low) * scale), 0, n - 1).astype(np.intp)


def composite_reference(
    counts: Sequence[np.ndarray], luts: Sequence[np.ndarray], levels: Sequence[tuple[float, float]],
    visible: Sequence[bool],
) -> np.ndarray:  # fmt: skip
    """(H, W, 3) uint8: the visible channels through their LUTs, added and clipped (CompositionMode_Plus)."""
    total = np.zeros((*counts[0].shape, 3), dtype=np.int32)
    for image, lut, level, show in zip(counts, luts, levels, visible, strict=True):
        if show:
            total += lut[lut_index(image, level)]
    return np.clip(total, 0, 255).astype(np.uint8)
