"""Read a measured OTF for the SIM reconstruction: a radial profile table or a bead PSF image."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from imcsr_live.errors import InputDataError
from imcsr_live.recon.otf import OtfModel


def load_otf(path: str | Path, pixel_size_um: float) -> OtfModel:
    """Measured OTF from ``path``.

    * ``.csv`` / ``.txt`` / ``.npy``: two columns ``k_cycles_per_um, value`` (radial profile, k ascending).
    * ``.tif`` / ``.tiff``: a 2D image of a sub-resolution bead (PSF) at the camera pixel size; a 3D stack
      is averaged along its first axis.
    """
    p = Path(path)
    if not p.is_file():
        raise InputDataError(f"OTF file {p} not found; pass --otf with an existing .csv/.npy profile or .tif PSF")
    suffix = p.suffix.lower()
    try:
        if suffix in (".tif", ".tiff"):
            from imcsr_live.io.tiff import read_tiff

            img = np.asarray(read_tiff(p)[0], dtype=np.float64)
            if img.ndim == 3:
                img = img.mean(axis=0)
            return OtfModel.from_psf_image(img, pixel_size_um)
        if suffix == ".npy":
            table = np.load(p, allow_pickle=False)
        elif suffix in (".csv", ".txt"):
            table = np.loadtxt(p, delimiter="," if suffix == ".csv" else None, comments="#", ndmin=2)
        else:
            raise InputDataError(f"OTF file {p}: unknown type {suffix!r}; use .csv, .txt, .npy or .tif")
    except (OSError, ValueError) as exc:
        raise InputDataError(f"OTF file {p} could not be read ({exc})") from None
    table = np.asarray(table, dtype=np.float64)
    if table.ndim != 2 or 2 not in table.shape:
        raise InputDataError(f"OTF file {p}: expected two columns (k in cycles/um, value), got shape {table.shape}")
    if table.shape[1] != 2:
        table = table.T
    return OtfModel.from_radial_profile(table[:, 0], table[:, 1], pixel_size_um)
