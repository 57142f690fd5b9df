"""``imcsr-live reconstruct`` end to end on a small synthetic time-lapse."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import tifffile
from typer.testing import CliRunner

from imcsr_live.cli import app
from imcsr_live.config import load_rig_config
from imcsr_live.io.tiff import read_tiff
from imcsr_live.synth.world import SyntheticMicroscope, WorldSettings
from tests.conftest import SIMULATED_TOML


@pytest.fixture(scope="module")
def raw_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    rig = load_rig_config(SIMULATED_TOML)
    world = SyntheticMicroscope(rig, WorldSettings(raw_shape=(128, 128), photons=1000.0, seed=1))
    raw = np.stack([world.next_timepoint().raw for _ in range(2)])
    path = tmp_path_factory.mktemp("raw") / "raw.tif"
    tifffile.imwrite(path, raw)
    return path


def test_reconstruct_writes_sr_stack_and_parameters(raw_file: Path, tmp_path: Path) -> None:
    out, params = tmp_path / "sr.tif", tmp_path / "p.json"
    res = CliRunner().invoke(
        app, ["reconstruct", str(raw_file), "-c", str(SIMULATED_TOML), "-o", str(out), "--params-out", str(params)]
    )
    assert res.exit_code == 0, res.output
    sr, meta = read_tiff(out)
    assert sr.shape == (2, 256, 256) and sr.dtype == np.float32
    assert meta.pixel_size_um == pytest.approx(0.0313)
    assert np.all(np.isfinite(sr)) and sr.mean() > 0
    data = json.loads(params.read_text())
    assert [t["timepoint"] for t in data["timepoints"]] == [0, 1]
    first = data["timepoints"][0]["params"]
    assert np.asarray(first["k0_cycles_per_um"]).shape == (3, 2)
    assert np.allclose(first["period_um"], 0.19575, rtol=0.01)


def test_single_stack_and_measured_otf(raw_file: Path, tmp_path: Path) -> None:
    one = tmp_path / "one.tif"
    tifffile.imwrite(one, tifffile.imread(raw_file)[0])
    from imcsr_live.recon.otf import OtfModel

    k = np.linspace(0, 8, 200)
    model = OtfModel.from_optics(1.49, 525, 0.0626)
    otf = tmp_path / "otf.csv"
    np.savetxt(otf, np.stack([k, model.radial(k)], 1), delimiter=",")
    out = tmp_path / "sr1.tif"
    res = CliRunner().invoke(
        app, ["reconstruct", str(one), "-c", str(SIMULATED_TOML), "-o", str(out), "--otf", str(otf)]
    )
    assert res.exit_code == 0, res.output
    assert read_tiff(out)[0].shape[-2:] == (256, 256)  # T = 1 is squeezed by the reader


def test_wrong_frame_count_is_one_clear_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.tif"
    tifffile.imwrite(bad, np.full((2, 8, 64, 64), 200, np.uint16))
    res = CliRunner().invoke(app, ["reconstruct", str(bad), "-c", str(SIMULATED_TOML), "-o", str(tmp_path / "o.tif")])
    assert res.exit_code != 0
    assert "(T, 9, Y, X)" in str(res.exception)
