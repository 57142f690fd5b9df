"""Write a synthetic time-lapse to disk: raw SIM stack, ground truth, and the true pattern parameters.

Files for ``OUT.tif``:
- ``OUT.tif``       OME-TIFF (T, A*P, Y, X) uint16, angle-major, camera pixel size, time increment.
- ``OUT.gt.tif``    OME-TIFF (T, C, 2Y, 2X) float32, per-structure SIM-resolution truth; channel names/colours.
- ``OUT.truth.json`` true phases, wave vectors, modulation and photon scale per timepoint (for validating the
  reconstruction's parameter estimation), rewritten after every timepoint.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from imcsr_live import __version__
from imcsr_live.io.tiff import StackMetadata, create_timelapse
from imcsr_live.synth.world import SyntheticMicroscope


def companion_paths(output: Path) -> tuple[Path, Path]:
    """``OUT.tif`` -> (``OUT.gt.tif``, ``OUT.truth.json``)."""
    stem = output.name[: -len(output.suffix)] if output.suffix else output.name
    return output.with_name(f"{stem}.gt.tif"), output.with_name(f"{stem}.truth.json")


def write_synthetic_timelapse(
    world: SyntheticMicroscope,
    output: Path,
    frames: int,
    on_timepoint: Callable[[int, float], None] | None = None,
) -> list[Path]:
    """Simulate ``frames`` timepoints and write them as they are made; return the written paths."""
    rig, settings = world.rig, world.settings
    gt_path, truth_path = companion_paths(output)
    ny, nx = settings.raw_shape
    n_raw = rig.sim.frames_per_timepoint
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
    raw_file = create_timelapse(output, (frames, n_raw, ny, nx), np.uint16, raw_meta)
    gt_file = create_timelapse(gt_path, (frames, len(rig.structures), 2 * ny, 2 * nx), np.float32, gt_meta)
    truth: dict[str, object] = provenance | {
        "structures": rig.structure_names, "timepoints": [], "rig_config": rig.model_dump(mode="json"),
    }
    try:
        for t in range(frames):
            start = time.perf_counter()
            point = world.next_timepoint()
            raw_file[t] = point.raw
            gt_file[t] = point.ground_truth
            raw_file.flush()
            gt_file.flush()
            truth["photon_scale"] = point.photon_scale
            truth["timepoints"].append(  # type: ignore[union-attr]
                {
                    "index": point.index,
                    "time_s": point.time_s,
                    "phases_rad": np.asarray(point.phases_rad).tolist(),
                    "k0_cycles_per_um": np.asarray(point.k0_cycles_per_um).tolist(),
                    "modulation": point.modulation,
                }
            )
            truth_path.write_text(json.dumps(truth, indent=1))
            if on_timepoint is not None:
                on_timepoint(t, time.perf_counter() - start)
    finally:
        del raw_file, gt_file  # closes the memory maps
    return [output, gt_path, truth_path]
