"""Rig config: the shipped TOML loads, every schema violation gives one clear line naming the key."""

from __future__ import annotations

import copy
import tomllib
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from imcsr_live.config import RigConfig, load_rig_config, parse_rig_config
from imcsr_live.errors import ConfigError

REPO = Path(__file__).resolve().parents[1]
SIMULATED = REPO / "hardware_configs" / "simulated.toml"
BASE: dict[str, Any] = tomllib.loads(SIMULATED.read_text())
REQUIRED = {
    ("optics",),
    ("sim",),
    ("optics", "na"),
    ("optics", "emission_wavelength_nm"),
    ("optics", "pixel_size_um"),
    ("sim", "angles_deg"),
    ("sim", "period_um"),
}


def test_simulated_config_matches_the_issue() -> None:
    rig = load_rig_config(SIMULATED)
    assert rig.optics.na == pytest.approx(1.49)
    assert rig.optics.emission_wavelength_nm == 525
    assert rig.optics.pixel_size_um == pytest.approx(0.0626)
    assert (rig.sim.angles, rig.sim.phases) == (3, 3)
    assert rig.k0_fraction_of_cutoff == pytest.approx(0.90, abs=0.005)
    assert rig.structure_names == ["Microtubules", "ER", "Lysosomes"]
    assert rig.source_text == SIMULATED.read_text()


def test_optional_tables_take_defaults() -> None:
    rig = parse_rig_config({"optics": BASE["optics"], "sim": BASE["sim"]})
    assert rig.backend.kind == "simulated"
    assert rig.recon.wiener == 0.05
    assert rig.acquisition.interval_s == 2.0
    assert rig.display.gamma == 0.8
    assert rig.recording.format == "ome-zarr"
    assert len(rig.structures) == 3


@pytest.mark.parametrize("path", sorted(REQUIRED))
def test_each_required_key_missing_is_named(path: tuple[str, ...]) -> None:
    data = copy.deepcopy(BASE)
    parent = data
    for key in path[:-1]:
        parent = parent[key]
    del parent[path[-1]]
    with pytest.raises(ConfigError) as info:
        parse_rig_config(data, "rig.toml")
    message = str(info.value)
    assert "\n" not in message
    assert path[-1] in message and "missing" in message


@pytest.mark.parametrize(
    ("table", "key", "value", "expected"),
    [
        ("optics", "na", "high", "[optics] na"),
        ("optics", "na", 2.5, "[optics] na"),
        ("optics", "pixel_size_um", -1.0, "[optics] pixel_size_um"),
        ("sim", "angles_deg", [0.0, 60.0], "angles_deg has 2 values"),
        ("sim", "order", "random", "[sim] order"),
        ("sim", "period_um", 0.1, "OTF cutoff"),
        ("recon", "update", "sometimes", "[recon] update"),
        ("engine", "kind", "cuda", "[engine] kind"),
        ("engine", "precision", "int8", "[engine] precision"),
        ("display", "autocontrast_percentiles", [99.0, 1.0], "[display] autocontrast_percentiles"),
        ("recording", "format", "png", "[recording] format"),
        ("backend", "kind", "nikon", "[backend] kind"),
        ("acquisition", "interval_s", 0, "[acquisition] interval_s"),
    ],
)
def test_bad_values_are_named(table: str, key: str, value: object, expected: str) -> None:
    data = copy.deepcopy(BASE)
    data[table][key] = value
    with pytest.raises(ConfigError, match=None) as info:
        parse_rig_config(data)
    assert expected in str(info.value)


def test_unknown_key_lists_allowed_keys() -> None:
    data = copy.deepcopy(BASE)
    data["recon"]["wienr"] = 0.1
    with pytest.raises(ConfigError) as info:
        parse_rig_config(data)
    assert "[recon] wienr: unknown key" in str(info.value)
    assert "wiener" in str(info.value)


def test_bad_structure_colour_names_the_structure() -> None:
    data = copy.deepcopy(BASE)
    data["structures"][1]["color"] = "pink"
    with pytest.raises(ConfigError) as info:
        parse_rig_config(data)
    assert "[[structures]] #2 color" in str(info.value)


def test_missing_file_and_bad_toml(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        load_rig_config(tmp_path / "nope.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("[optics\nna = 1.4\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_rig_config(bad)


def test_mm_config_resolves_beside_the_toml(tmp_path: Path) -> None:
    (tmp_path / "scope.cfg").write_text("# empty\n")
    toml = tmp_path / "rig.toml"
    toml.write_text(
        SIMULATED.read_text().replace('kind = "simulated"', 'kind = "pymmcore-plus"\nmm_config = "scope.cfg"')
    )
    rig = load_rig_config(toml)
    assert rig.resolved_mm_config() == tmp_path / "scope.cfg"


# --- property-based: random damage to a valid config never passes silently and never crashes oddly ---

_LEAVES = [(t, k) for t, table in BASE.items() if isinstance(table, dict) for k in table]
_WRONG_VALUES = st.one_of(
    st.text(max_size=5),
    st.lists(st.integers(), max_size=2),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(leaf=st.sampled_from(_LEAVES), value=_WRONG_VALUES)
def test_random_wrong_type_is_rejected_with_its_key(leaf: tuple[str, str], value: object) -> None:
    table, key = leaf
    data = copy.deepcopy(BASE)
    data[table][key] = value
    try:
        rig = parse_rig_config(data)
    except ConfigError as exc:
        assert key in str(exc) or table in str(exc)
        assert "\n" not in str(exc)
    else:  # a few fields legitimately accept text (e.g. channel_preset = "abc")
        assert isinstance(rig, RigConfig)
        assert isinstance(getattr(getattr(rig, table), key), str)


@settings(max_examples=60, deadline=None)
@given(
    table=st.sampled_from(sorted(k for k, v in BASE.items() if isinstance(v, dict))),
    key=st.from_regex(r"[a-z_]{1,12}", fullmatch=True),
)
def test_random_unknown_key_is_rejected(table: str, key: str) -> None:
    data = copy.deepcopy(BASE)
    if key in data[table]:
        return
    data[table][key] = 1
    with pytest.raises(ConfigError) as info:
        parse_rig_config(data)
    assert f"[{table}] {key}: unknown key" in str(info.value)


@settings(max_examples=80, deadline=None)
@given(text=st.text(max_size=200))
def test_random_text_is_a_config_error_not_a_crash(text: str, tmp_path_factory: pytest.TempPathFactory) -> None:
    path = tmp_path_factory.mktemp("toml") / "random.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError):
        load_rig_config(path)
