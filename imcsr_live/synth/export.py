"""Write a synthetic time-lapse to disk: raw SIM stack, ground truth, and the true pattern parameters.

Files for ``OUT.tif``:
- ``OUT.tif``       OME-TIFF (T, A*P, Y, X) uint16, angle-major, camera pixel size, time increment.
- ``OUT.gt.tif``    OME-TIFF (T, C, 2Y, 2X) float32, per-structure SIM-resolution truth; channel names/colours.
- ``OUT.truth.json`` true phases, wave vectors, modulation and photon scale per timepoint (for validating the
  reconstruction's parameter estimation), rewritten after every timepoint.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from imcsr_live import __version__
from imcsr_live.io.tiff import StackMetadata, create_timelapse
from imcsr_live.synth.world import SyntheticMicroscope, SynthTimepoint


def companion_paths(output: Path) -> tuple[Path, Path]:
    """``OUT.tif`` -> (``OUT.gt.tif``, ``OUT.truth.json``)."""
    stem = output.name[: -len(output.suffix)] if output.suffix else output.name
    return output.with_name(f"{stem}.gt.tif"), output.with_name(f"{stem}.truth.json")


class SyntheticTimelapseWriter:
    """Writes simulated timepoints into ``OUT.tif`` + ``OUT.gt.tif`` + ``OUT.truth.json`` as they arrive."""

    def __init__(self, world: SyntheticMicroscope, output: Path, frames: int) -> None:
        rig, settings = world.rig, world.settings
        self.paths = [output, *companion_paths(output)]
        self.frames = frames
        ny, nx = settings.raw_shape
        provenance = {
            "generator": f"imcsr-live {__version__} synth",
            "seed": settings.seed,
            "photons": settings.photons,
            "photons_definition": "expected photoelectrons at the 99.9th percentile of the noiseless widefield frame",
        }
        raw_meta = StackMetadata(
            axes="TCYX",
            pixel_size_um=rig.optics.pixel_size_um,
            time_increment_s=rig.acquisition.interval_s,
            channel_names=tuple(f"a{a}p{p}" for a in range(rig.sim.angles) for p in range(rig.sim.phases)),
            extra=provenance | {"order": "angle-major"},
        )
        gt_meta = StackMetadata(
            axes="TCYX",
            pixel_size_um=world.sr_pixel_size_um,
            time_increment_s=rig.acquisition.interval_s,
            channel_names=tuple(rig.structure_names),
            channel_colors=tuple(s.color for s in rig.structures),
            extra=provenance | {"gt_kind": "SIM-resolution truth (band limit kc + k0), photoelectron units"},
        )
        self._raw = create_timelapse(output, (frames, rig.sim.frames_per_timepoint, ny, nx), np.uint16, raw_meta)
        self._gt = create_timelapse(self.paths[1], (frames, len(rig.structures), 2 * ny, 2 * nx), np.float32, gt_meta)
        self._truth: dict[str, Any] = provenance | {
            "structures": rig.structure_names,
            "rig_config": rig.model_dump(mode="json"),
            "photon_scale": None,
            "timepoints": [],
        }
        self.written = 0

    def put(self, point: SynthTimepoint) -> None:
        """Write one timepoint; it is on disk (and the files readable) when this returns."""
        if self.written >= self.frames:
            raise ValueError(f"the file was created for {self.frames} timepoints; no room for more")
        t = self.written
        self._raw[t] = point.raw
        self._gt[t] = point.ground_truth
        self._raw.flush()
        self._gt.flush()
        self._truth["photon_scale"] = point.photon_scale
        self._truth["timepoints"].append(
            {
                "index": point.index,
                "time_s": point.time_s,
                "phases_rad": np.asarray(point.phases_rad).tolist(),
                "k0_cycles_per_um": np.asarray(point.k0_cycles_per_um).tolist(),
                "modulation": point.modulation,
            }
        )
        # write-then-rename: a reader (or a kill) never sees half a JSON file
        partial = self.paths[2].with_suffix(".json.partial")
        partial.write_text(json.dumps(self._truth, indent=1))
        os.replace(partial, self.paths[2])
        self.written += 1

    def close(self) -> None:
        """Release the memory maps (the files are already complete up to ``written``)."""
        del self._raw, self._gt

    def __enter__(self) -> SyntheticTimelapseWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def write_synthetic_timelapse(
    world: SyntheticMicroscope,
    output: Path,
    frames: int,
    on_timepoint: Callable[[int, float], None] | None = None,
) -> list[Path]:
    """Simulate ``frames`` timepoints and write them as they are made; return the written paths."""
    with SyntheticTimelapseWriter(world, output, frames) as writer:
        for t in range(frames):
            start = time.perf_counter()
            writer.put(world.next_timepoint())
            if on_timepoint is not None:
                on_timepoint(t, time.perf_counter() - start)
    return writer.paths
