"""The npe2 manifest is valid and its contributions import (what ``npe2 validate --imports`` checks)."""

from __future__ import annotations

from npe2 import PluginManifest


def test_manifest_validates_and_its_commands_import() -> None:
    manifest = PluginManifest._from_package_or_name("imcsr-live")  # what `npe2 validate imcsr-live` runs
    manifest.validate_imports()
    assert manifest.display_name == "IMC-SR"
    assert [w.display_name for w in manifest.contributions.widgets or []] == ["IMC-SR separate"]
    assert [s.key for s in manifest.contributions.sample_data or []] == ["synthetic_cell"]
    readers = manifest.contributions.readers or []
    assert readers and "*.ome.zarr" in readers[0].filename_patterns and readers[0].accepts_directories
