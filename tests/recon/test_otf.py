"""OTF model and measured OTFs."""

from __future__ import annotations

import numpy as np
import pytest

from imcsr_live.errors import InputDataError
from imcsr_live.optics import frequency_grid
from imcsr_live.recon.otf import OtfModel
from imcsr_live.synth.forward import OpticsParams, PatternParams, SimForwardModel

NA, LAM, P = 1.49, 525.0, 0.0626


def test_model_equals_the_forward_models_transfer() -> None:
    fwd = SimForwardModel(OpticsParams(NA, LAM, P), PatternParams((0.0,), 0.2, 0.8), (64, 64))
    ky, kx = frequency_grid((64, 64), P)
    np.testing.assert_allclose(OtfModel.from_optics(NA, LAM, P)(ky, kx), fwd.camera_transfer((64, 64), P), atol=1e-12)


def test_radial_profile_reproduces_a_known_otf_and_its_cutoff() -> None:
    model = OtfModel.from_optics(NA, LAM, P)
    k = np.linspace(0, 8, 400)
    measured = OtfModel.from_radial_profile(k, 3.0 * model.radial(k), P)  # scale is normalised away
    # The profile ends where it drops below 1e-3 (the OTF approaches 0 as (1 - k / kc)^1.5).
    assert measured.cutoff_cycles_per_um == pytest.approx(model.cutoff_cycles_per_um, rel=0.02)
    np.testing.assert_allclose(measured.radial(k), model.radial(k), atol=2e-3)
    # A measured OTF already contains the pixel integration: no sinc on top.
    assert measured(np.array(0.0), np.array(3.0)) == pytest.approx(float(model.radial(3.0)), abs=2e-3)


def test_bead_image_gives_the_otf_it_was_made_with() -> None:
    model = OtfModel.from_optics(NA, LAM, P)
    n = 256
    ky, kx = frequency_grid((n, n), P)
    psf = np.real(np.fft.ifft2(model(ky, kx)))
    psf = np.fft.fftshift(psf) * 1e4 + 10.0  # a bright bead on a flat background
    measured = OtfModel.from_psf_image(psf, P, background=10.0)
    k = np.linspace(0.3, 0.8 * model.cutoff_cycles_per_um, 20)
    full = model(np.zeros_like(k), k)  # along x, with the pixel sinc
    np.testing.assert_allclose(measured.radial(k), full, atol=0.03)
    # A bead spectrum ends where it sinks into the noise (1 % of the peak): a few % inside the true cutoff.
    assert 0.92 * model.cutoff_cycles_per_um < measured.cutoff_cycles_per_um <= 1.01 * model.cutoff_cycles_per_um


@pytest.mark.parametrize(
    ("k", "v", "match"),
    [
        ([0, 1, 2], [1, 0.5, 0.1], ">= 4"),
        ([0, 1, 2, np.nan], [1, 0.5, 0.1, 0], "NaN"),
        ([0, 2, 1, 3], [1, 0.5, 0.1, 0], "ascend"),
        ([0, 1, 2, 3], [0, 0.5, 0.1, 0], "0 at k = 0"),
    ],
)
def test_unusable_profiles_are_rejected(k: list[float], v: list[float], match: str) -> None:
    with pytest.raises(InputDataError, match=match):
        OtfModel.from_radial_profile(np.array(k, dtype=float), np.array(v, dtype=float), P)


def test_load_otf_reads_csv_and_rejects_unknown_files(tmp_path) -> None:
    from imcsr_live.io.otf_file import load_otf

    model = OtfModel.from_optics(NA, LAM, P)
    k = np.linspace(0, 8, 200)
    path = tmp_path / "otf.csv"
    np.savetxt(path, np.stack([k, model.radial(k)], axis=1), delimiter=",", header="k_cycles_per_um,value")
    loaded = load_otf(path, P)
    assert loaded.measured is not None
    assert loaded.radial(2.0) == pytest.approx(float(model.radial(2.0)), abs=1e-3)
    with pytest.raises(InputDataError, match="unknown type"):
        (tmp_path / "otf.xyz").write_text("1")
        load_otf(tmp_path / "otf.xyz", P)
    with pytest.raises(InputDataError, match="not found"):
        load_otf(tmp_path / "missing.csv", P)
