"""Rig files shipped as package data (imcsr_live/rigs/) and a non-editable install that uses them."""

from __future__ import annotations

import fnmatch
import os
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

from imcsr_live.config import load_rig_config
from imcsr_live.rigs import RIG_NAMES, default_rig

REPO = Path(__file__).resolve().parents[1]
PACKAGE = REPO / "imcsr_live"
SHIPPED = sorted(p for p in (PACKAGE / "rigs").iterdir() if p.suffix in (".toml", ".cfg"))


def test_shipped_rigs_are_identical_to_hardware_configs() -> None:
    assert {p.name for p in SHIPPED} >= {"simulated.toml", "sim_demo.toml", "sim_demo.cfg"}
    for p in SHIPPED:
        assert p.read_bytes() == (REPO / "hardware_configs" / p.name).read_bytes(), (
            f"imcsr_live/rigs/{p.name} differs from hardware_configs/{p.name}; copy the edited one over the other"
        )


def test_default_rig_names_the_shipped_files() -> None:
    assert default_rig() == default_rig("simulated") == PACKAGE / "rigs" / "simulated.toml"
    for name in RIG_NAMES:
        assert load_rig_config(default_rig(name)).source_path == default_rig(name).resolve()
    with pytest.raises(ValueError, match="no shipped rig 'nope'"):
        default_rig("nope")


def test_relative_mm_config_resolves_beside_the_toml(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # not the folder of the TOML
    rig = load_rig_config(default_rig("sim_demo"))
    assert rig.resolved_mm_config() == PACKAGE / "rigs" / "sim_demo.cfg"


def test_package_data_covers_rigs_and_weights() -> None:
    patterns = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]["imcsr_live"]
    data = [*SHIPPED, *(PACKAGE / "weights").iterdir()]
    for p in data:
        rel = p.relative_to(PACKAGE).as_posix()
        assert any(fnmatch.fnmatch(rel, pat) for pat in patterns), f"{rel} is not package data in pyproject.toml"


def _run(args: list[str], cwd: Path, site: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update(
        PYTHONPATH=str(site),
        QT_QPA_PLATFORM="offscreen",
        IMCSR_LIVE_CONFIG_DIR=str(cwd / "config"),
        IMCSR_LIVE_CACHE_DIR=str(cwd / "cache"),
    )
    return subprocess.run(
        [sys.executable, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300, check=False
    )


@pytest.mark.slow
def test_wheel_install_runs_synth_demo_and_process_from_another_folder(tmp_path: Path) -> None:
    """Build a wheel of a copy of the sources, unzip it, and run the package from there (no repo on the path)."""
    src = tmp_path / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(REPO / name, src / name)
    shutil.copytree(PACKAGE, src / "imcsr_live", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    dist = tmp_path / "dist"
    build = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index", "-q", "-w",
         str(dist), str(src)],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert build.returncode == 0, build.stdout + build.stderr
    (wheel,) = dist.glob("imcsr_live-*.whl")
    site = tmp_path / "site"
    with zipfile.ZipFile(wheel) as z:
        names = set(z.namelist())
        for p in [*SHIPPED, *(PACKAGE / "weights").iterdir(), PACKAGE / "py.typed"]:
            assert f"imcsr_live/{p.relative_to(PACKAGE).as_posix()}" in names
        z.extractall(site)
    cwd = tmp_path / "elsewhere"
    cwd.mkdir()

    where = _run(["-c", "import imcsr_live, imcsr_live.rigs as r; print(imcsr_live.__file__); print(r.default_rig())"],
                 cwd, site)  # fmt: skip
    assert where.returncode == 0, where.stderr
    package_file, rig = (Path(line) for line in where.stdout.split())
    assert package_file == site / "imcsr_live" / "__init__.py"
    assert rig == site / "imcsr_live" / "rigs" / "simulated.toml"

    synth_args = ["synth", "-c", str(rig), "-o", "x.tif", "--frames", "1", "--size", "64"]
    synth = _run(["-m", "imcsr_live", *synth_args], cwd, site)
    assert synth.returncode == 0, synth.stdout + synth.stderr
    assert (cwd / "x.tif").is_file()

    demo = _run(["-m", "imcsr_live", "demo", "--headless", "--frames", "2", "--size", "64"], cwd, site)
    assert demo.returncode == 0, demo.stdout + demo.stderr
    assert "2 timepoints separated" in demo.stdout + demo.stderr

    # offline processing of the synth output with the shipped model, found by the rig's structures
    process = _run(["-m", "imcsr_live", "process", "x.tif", "-c", str(rig), "-o", "x.ome.zarr"], cwd, site)
    assert process.returncode == 0, process.stdout + process.stderr
    assert "imcsr_cpu_demo_tc" in process.stdout + process.stderr
    from imcsr_live.io.zarr import read_ome_zarr

    assert read_ome_zarr(cwd / "x.ome.zarr")[0].shape == (1, 3, 128, 128)  # T, the rig's 3 structures, 2x the raw
