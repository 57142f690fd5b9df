"""`imcsr-live train` and `imcsr-live evaluate` end to end (subprocess, as a user runs them)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import tifffile

REPO = Path(__file__).resolve().parents[2]
TINY = REPO / "hardware_configs" / "train_tiny.toml"


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    env = {"OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin", "QT_QPA_PLATFORM": "offscreen"}
    return subprocess.run(
        [sys.executable, "-m", "imcsr_live", *args], capture_output=True, text=True, timeout=300, env=env, check=False
    )


def test_train_then_evaluate_writes_checkpoint_and_report(tmp_path: Path) -> None:
    cfg = tmp_path / "train.toml"
    text = TINY.read_text().replace('output_dir = "../runs/tiny"', f'output_dir = "{tmp_path / "run"}"')
    cfg.write_text(text.replace("iterations = 60", "iterations = 8").replace("val_every = 20", "val_every = 8"))
    res = run_cli("train", "-c", str(cfg))
    assert res.returncode == 0, res.stderr
    assert "it/s" in res.stderr and "loss" in res.stderr  # the progress bar
    assert (tmp_path / "run" / "imcsr_tiny.safetensors").is_file()
    # a time limit stops early (at the first log step, iteration 10 of 60) and says how to go on
    limited = tmp_path / "limited.toml"
    limited.write_text(TINY.read_text().replace('output_dir = "../runs/tiny"', f'output_dir = "{tmp_path / "run2"}"'))
    res = run_cli("train", "-c", str(limited), "--max-minutes", "0")
    assert res.returncode == 0, res.stderr
    assert "limit after 10 of 60 iterations" in res.stdout and f"-c {limited} --resume" in res.stdout
    report = tmp_path / "report"
    res = run_cli(
        "evaluate",
        "--model",
        str(tmp_path / "run" / "imcsr_tiny"),
        "--data",
        "synthetic",
        "--report",
        str(report),
        "--images",
        "2",
        "--size",
        "96",
        "--photons",
        "300",
    )
    assert res.returncode == 0, res.stderr
    assert "| 300 photons | Microtubules |" in res.stdout
    for name in ("metrics.csv", "metrics.md", "boxplots.png", "montage.png"):
        assert (report / name).stat().st_size > 100
    rows = (report / "metrics.csv").read_text().splitlines()
    assert rows[0] == "level,image,structure,method,nrmse,ssim,pcc" and len(rows) > 4

    # A folder with one subfolder per SNR level gives one table block per level.
    rng = np.random.default_rng(0)
    for level in ("level_01", "level_05"):
        for s in ("Microtubules", "ER", "Lysosomes"):
            (tmp_path / "data" / level / s).mkdir(parents=True)
            tifffile.imwrite(tmp_path / "data" / level / s / "cell1.tif", rng.random((48, 48), dtype=np.float32))
    res = run_cli(
        "evaluate",
        "--model",
        str(tmp_path / "run" / "imcsr_tiny"),
        "--data",
        str(tmp_path / "data"),
        "--report",
        str(tmp_path / "rep"),
        "--images",
        "1",
    )
    assert res.returncode == 0, res.stderr
    assert "| level_01 | ER |" in res.stdout and "| level_05 | Lysosomes |" in res.stdout


def _main(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    """Run the console entry point in-process (fast); return (exit status, stderr)."""
    from imcsr_live.cli import main

    monkeypatch.setattr(sys, "argv", ["imcsr-live", *args])
    with pytest.raises(SystemExit) as exit_info:
        main()
    return int(exit_info.value.code or 0), capsys.readouterr().err


@pytest.mark.parametrize(
    ("args", "status", "message"),
    [
        (["train", "-c", "{tmp}/nope.toml"], 2, "nope.toml' not found"),
        (["evaluate", "--model", "{tmp}/missing", "--data", "synthetic"], 3, "missing.json not found"),
        (["train", "-c", "{tmp}/f.toml"], 3, "no folder for structure 'Microtubules'"),
        (["evaluate", "--model", "{tmp}/m", "--data", "{tmp}/none"], 3, "m.json not found"),
    ],
)
def test_bad_inputs_are_one_clear_line(
    args: list[str],
    status: int,
    message: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    (tmp_path / "d" / "ER").mkdir(parents=True)
    (tmp_path / "f.toml").write_text(f'[data]\nkind = "folder"\npath = "{tmp_path / "d"}"\n')
    code, err = _main(monkeypatch, capsys, *(a.format(tmp=tmp_path) for a in args))
    assert code == status and message in " ".join(err.split()), err
    assert "Traceback" not in err
