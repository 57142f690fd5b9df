"""One reconstructor per structure: per-colour SIM stacks, each reconstructed with its own estimated parameters.

Each colour has its own emission wavelength, pattern contrast and (on a real rig) its own small pattern shifts, so
the stacks of one structure are never reconstructed with another's parameters. Used by live validation
(:mod:`imcsr_live.pipeline.validation`) and training-data acquisition (:mod:`imcsr_live.pipeline.training_data`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import numpy as np

from imcsr_live.hardware.base import RawStack
from imcsr_live.recon.reconstructor import Reconstructor, SRFrame


@dataclass
class StructureReconstructors:
    """A :class:`Reconstructor` per structure name, made by ``make()`` on the structure's first stack."""

    make: Callable[[], Reconstructor]
    _by_name: dict[str, Reconstructor] = field(default_factory=dict)

    def reconstruct(self, stacks: Mapping[str, RawStack], index: int) -> dict[str, SRFrame]:
        """Each structure's stack through its own reconstructor, in the order of ``stacks``."""
        frames = {}
        for name, stack in stacks.items():
            if name not in self._by_name:
                self._by_name[name] = self.make()
            frames[name] = self._by_name[name].reconstruct(stack.frames, index)
        return frames

    def images(self, stacks: Mapping[str, RawStack], index: int) -> np.ndarray:
        """The SR images ``(C, 2H, 2W)`` float32 of :meth:`reconstruct`, in the order of ``stacks``."""
        frames = self.reconstruct(stacks, index)
        return np.stack([np.asarray(f.sr, dtype=np.float32) for f in frames.values()])
