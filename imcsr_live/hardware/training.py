"""Training-data mode: one SIM stack per excitation preset (real colour) per timepoint.

A lab labels each structure in its own colour and records, per timepoint, one stack per colour: each is a
per-structure ground truth, and their sum is what the one-colour IMC-SR acquisition would see. This works on
any backend that can switch presets (Micro-Manager config-group presets, or the simulated backend's
structure presets).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from imcsr_live.errors import DeviceMissingError
from imcsr_live.hardware.base import MicroscopeBackend, RawStack, SupportsPresets


@dataclass
class TrainingTimepoint:
    """The stacks of one timepoint, by preset, in acquisition order."""

    index: int
    stacks: dict[str, RawStack]


def acquire_training_timepoint(
    backend: MicroscopeBackend, presets: Sequence[str], index: int = 0, timeout_s: float | None = None
) -> TrainingTimepoint:
    """Acquire one stack per preset, restoring the backend's previous preset afterwards if it had one."""
    if not isinstance(backend, SupportsPresets):
        raise DeviceMissingError(f"{type(backend).__name__} cannot switch excitation presets (no training-data mode)")
    available = backend.channel_presets()
    missing = [p for p in presets if p not in available]
    if missing:
        raise DeviceMissingError(
            f"excitation preset(s) {missing} not defined; available: {', '.join(available) or 'none'}"
        )
    previous = getattr(backend, "preset", None)
    stacks: dict[str, RawStack] = {}
    try:
        for preset in presets:
            backend.set_channel_preset(preset)
            stack = backend.acquire_sim_stack(timeout_s)
            stack.info["preset"] = preset
            stacks[preset] = stack
    finally:
        if previous:
            backend.set_channel_preset(previous)
    return TrainingTimepoint(index=index, stacks=stacks)
