"""The record panel's path choice never lands on an earlier recording, side files included."""

from __future__ import annotations

from pathlib import Path

from imcsr_live.ui.record_panel import free_name


def test_free_name_skips_names_whose_side_files_exist(tmp_path: Path) -> None:
    assert free_name(tmp_path / "run.ome.tif") == tmp_path / "run.ome.tif"  # nothing there
    (tmp_path / "run.raw.ome.tif").write_bytes(b"")  # the raw stream of an earlier OME-TIFF recording
    assert free_name(tmp_path / "run.ome.tif") == tmp_path / "run-2.ome.tif"
    (tmp_path / "run-2.timepoints.jsonl").write_text("")
    assert free_name(tmp_path / "run.ome.tif") == tmp_path / "run-3.ome.tif"
    (tmp_path / "live.ome.zarr").mkdir()
    assert free_name(tmp_path / "live.ome.zarr") == tmp_path / "live-2.ome.zarr"
    (tmp_path / "[x]").mkdir()  # glob characters in a name are taken literally
    assert free_name(tmp_path / "[x]" / "a.ome.zarr") == tmp_path / "[x]" / "a.ome.zarr"
