from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import mrcfile
import numpy as np
import pytest
import tifffile

from imcsr_live.errors import InputDataError
from imcsr_live.train.biosr import import_biosr
from imcsr_live.train.data import folder_pool

REPO = Path(__file__).resolve().parents[2]


def _mrc(path: Path, data: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with mrcfile.new(path, overwrite=True) as m:
        m.set_data(data)


@pytest.fixture
def biosr(tmp_path: Path) -> Path:
    """A miniature BioSR tree: CCPs / Microtubules with SIM_gt.mrc, ER with GTSIM levels, raw level files."""
    rng = np.random.default_rng(0)
    root = tmp_path / "BioSR"
    for s in ("CCPs", "Microtubules"):
        for c in (1, 2):
            _mrc(root / s / f"Cell_{c:03d}" / "SIM_gt.mrc", rng.random((1, 40, 40), dtype=np.float32))
            _mrc(
                root / s / f"Cell_{c:03d}" / "RawSIMData_level_01.mrc",
                (rng.random((9, 20, 20)) * 500).astype(np.float32),
            )
    for lv in (1, 3):
        _mrc(root / "ER" / "Cell_001" / "GTSIM" / f"GTSIM_level_{lv:02d}.mrc", np.full((40, 40), lv, np.float32))
    return root


def test_import_writes_the_folder_layout(biosr: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    summary = import_biosr(biosr, out, raw_levels=[1])
    assert {k: len(v) for k, v in summary.written.items()} == {"CCPs": 2, "ER": 1, "Microtubules": 2}
    with mrcfile.open(biosr / "CCPs" / "Cell_002" / "SIM_gt.mrc") as m:
        np.testing.assert_array_equal(tifffile.imread(out / "CCPs" / "Cell_002.tif"), m.data[0])
    assert np.all(tifffile.imread(out / "ER" / "Cell_001.tif") == 3)  # the highest GTSIM level
    raw = tifffile.imread(tmp_path / "out_raw" / "level_01" / "Microtubules" / "Cell_001.tif")
    assert raw.shape == (9, 20, 20) and raw.dtype == np.uint16
    assert any("ER" in s and "RawSIMData_level_01" in s for s in summary.skipped)
    pool = folder_pool(out, ["CCPs", "ER", "Microtubules"])
    assert [im.shape[0] for im in pool.images] == [2, 1, 2]


def test_import_errors_name_the_file(biosr: Path, tmp_path: Path) -> None:
    (biosr / "CCPs" / "Cell_001" / "SIM_gt.mrc").write_bytes(b"garbage" * 10)
    with pytest.raises(InputDataError, match=r"Cell_001/SIM_gt\.mrc: cannot read MRC"):
        import_biosr(biosr, tmp_path / "o", structures=["CCPs"])
    with pytest.raises(InputDataError, match="F-actin: structure folder not found"):
        import_biosr(biosr, tmp_path / "o", structures=["F-actin"])


def test_tool_runs(biosr: Path, tmp_path: Path) -> None:
    res = subprocess.run(
        [
            sys.executable,
            str(REPO / "tools" / "import_biosr.py"),
            str(biosr),
            str(tmp_path / "o"),
            "--structures",
            "ER",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert res.returncode == 0, res.stderr
    assert "ER: 1 images" in res.stdout
