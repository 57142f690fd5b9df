"""Import the BioSR dataset (Qiao et al. 2021, figshare 10.6084/m9.figshare.13264793, CC BY 4.0) into the
per-structure folder layout that training and evaluation read (``OUT/<Structure>/<Cell>.tif``).

BioSR layout (docs/method.md#real-data): ``<Structure>/Cell_NNN/SIM_gt.mrc`` (the ~1004x1004 SR ground truth) and
``RawSIMData_level_NN.mrc`` (9 raw frames per SNR level); ER differs: ``ER/Cell_NNN/GTSIM/GTSIM_level_NN.mrc``
(one SR image per level; the highest level is the cleanest and is used as ground truth). Raw levels can be
exported too (``OUT_raw/level_NN/<Structure>/<Cell>.tif``, uint16 (9, Y, X)) for reconstruction with
``imcsr-live reconstruct`` at that SNR.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from imcsr_live.errors import InputDataError

BIOSR_STRUCTURES = ("CCPs", "ER", "Microtubules", "F-actin")


@dataclass
class ImportSummary:
    written: dict[str, list[Path]] = field(default_factory=dict)
    raw_written: list[Path] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)


def read_mrc(path: Path) -> np.ndarray:
    """An MRC file as float32 (Z, Y, X) or (Y, X); clear error naming the file if it cannot be read."""
    import mrcfile

    try:
        with mrcfile.open(path, permissive=True) as mrc:
            if mrc.data is None:
                raise ValueError("no image data")
            data = np.array(mrc.data, dtype=np.float32)
    except Exception as exc:  # mrcfile raises several types for a bad file
        raise InputDataError(f"{path}: cannot read MRC file ({exc})") from None
    return np.squeeze(data)


def _level(path: Path) -> int:
    m = re.search(r"level_(\d+)", path.stem)
    return int(m.group(1)) if m else -1


def ground_truth_file(cell: Path) -> Path | None:
    """The SR ground-truth file of one BioSR cell folder (``SIM_gt.mrc``, or ER's highest ``GTSIM`` level)."""
    gt = cell / "SIM_gt.mrc"
    if gt.is_file():
        return gt
    levels = sorted((cell / "GTSIM").glob("GTSIM_level_*.mrc"), key=_level)
    return levels[-1] if levels else None


def import_biosr(
    root: str | Path,
    out: str | Path,
    *,
    structures: list[str] | None = None,
    raw_levels: list[int] | None = None,
    on_file: Callable[[Path], None] | None = None,
) -> ImportSummary:
    """Convert BioSR MRC files to ``out/<Structure>/<Cell>.tif`` (float32 SR ground truth).

    ``raw_levels`` also exports those raw SNR levels to ``out_raw/level_NN/<Structure>/<Cell>.tif``.
    """
    import tifffile

    root, out = Path(root), Path(out)
    if not root.is_dir():
        raise InputDataError(f"BioSR folder {root} not found; pass the folder that holds CCPs/, ER/, Microtubules/")
    wanted = structures or [s for s in BIOSR_STRUCTURES if (root / s).is_dir()]
    if not wanted:
        raise InputDataError(f"{root}: no BioSR structure folders ({', '.join(BIOSR_STRUCTURES)}) found")
    summary = ImportSummary()
    for name in wanted:
        folder = root / name
        if not folder.is_dir():
            raise InputDataError(f"{folder}: structure folder not found")
        cells = sorted(p for p in folder.iterdir() if p.is_dir() and p.name.lower().startswith("cell"))
        if not cells:
            raise InputDataError(f"{folder}: no Cell_NNN folders inside; is this the BioSR layout?")
        paths = []
        for cell in cells:
            gt = ground_truth_file(cell)
            if gt is None:
                summary.skipped.append(f"{cell}: no SIM_gt.mrc or GTSIM/GTSIM_level_*.mrc")
                continue
            img = read_mrc(gt)
            if img.ndim != 2:
                raise InputDataError(f"{gt}: SR ground truth has shape {img.shape}; expected one 2D image")
            dest = out / name / f"{cell.name}.tif"
            dest.parent.mkdir(parents=True, exist_ok=True)
            tifffile.imwrite(dest, img, metadata={"source": str(gt)})
            paths.append(dest)
            if on_file is not None:
                on_file(dest)
            for level in raw_levels or []:
                raw = cell / f"RawSIMData_level_{level:02d}.mrc"
                if not raw.is_file():
                    summary.skipped.append(f"{raw}: missing")
                    continue
                stack = read_mrc(raw)
                if stack.ndim != 3 or stack.shape[0] != 9:
                    raise InputDataError(f"{raw}: raw SIM data has shape {stack.shape}; expected (9, Y, X)")
                rdest = out.with_name(out.name + "_raw") / f"level_{level:02d}" / name / f"{cell.name}.tif"
                rdest.parent.mkdir(parents=True, exist_ok=True)
                tifffile.imwrite(rdest, np.clip(np.rint(stack), 0, 65535).astype(np.uint16))
                summary.raw_written.append(rdest)
        summary.written[name] = paths
    return summary
