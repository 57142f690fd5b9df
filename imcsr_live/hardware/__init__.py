"""Microscope backends behind one protocol: Micro-Manager (pymmcore-plus, pycromanager) and simulated.

``create_backend(rig)`` picks the backend named by ``[backend] kind``; see ``base.MicroscopeBackend``.
"""

from __future__ import annotations

from typing import Any

from imcsr_live.config import RigConfig
from imcsr_live.hardware.base import FrameMeta, MicroscopeBackend, RawStack, SupportsPresets

__all__ = ["FrameMeta", "MicroscopeBackend", "RawStack", "SupportsPresets", "create_backend"]


def create_backend(rig: RigConfig, **options: Any) -> MicroscopeBackend:
    """A (not yet opened) backend for ``rig.backend.kind``; ``options`` go to its constructor."""
    kind = rig.backend.kind
    if kind == "simulated":
        from imcsr_live.hardware.simulated import SimulatedBackend

        return SimulatedBackend(rig, **options)
    if kind == "pymmcore-plus":
        from imcsr_live.hardware.mmcore_backends import PymmcorePlusBackend

        return PymmcorePlusBackend(rig, **options)
    from imcsr_live.hardware.mmcore_backends import PycromanagerBackend

    return PycromanagerBackend(rig, **options)
