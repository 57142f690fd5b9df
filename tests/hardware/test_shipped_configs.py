"""The shipped rig files validate and point at .cfg files that exist, with the roles documented."""

from __future__ import annotations

import pytest

from imcsr_live.config import load_rig_config

from .conftest import REPO


@pytest.mark.parametrize("name", ["sim_demo.toml", "example_gisim.toml"])
def test_rig_files_validate_and_find_their_cfg(name) -> None:
    rig = load_rig_config(REPO / "hardware_configs" / name)
    assert rig.backend.kind == "pymmcore-plus"
    cfg = rig.resolved_mm_config()
    assert cfg is not None and cfg.is_file()
    text = cfg.read_text()
    assert "Property,Core,Shutter," in text and "ConfigGroup,Channel,488" in text
