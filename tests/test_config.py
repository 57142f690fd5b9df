"""Rig config: the shipped TOML loads, every schema violation gives one clear line naming the key."""

from __future__ import annotations

import copy
import re
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


def test_simulated_config_is_the_reference_rig() -> None:
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
    with pytest.raises(ConfigError, match="missing") as info:
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
    with pytest.raises(ConfigError, match=r"\[recon\] wienr: unknown key") as info:
        parse_rig_config(data)
    assert "[recon] wienr: unknown key" in str(info.value)
    assert "wiener" in str(info.value)


def test_bad_structure_colour_names_the_structure() -> None:
    data = copy.deepcopy(BASE)
    data["structures"][1]["color"] = "pink"
    with pytest.raises(ConfigError, match=r"\[\[structures\]\] #2 color") as info:
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
    with pytest.raises(ConfigError, match=re.escape(f"[{table}] {key}: unknown key")) as info:
        parse_rig_config(data)
    assert f"[{table}] {key}: unknown key" in str(info.value)


@settings(max_examples=80, deadline=None)
@given(text=st.text(max_size=200))
def test_random_text_is_a_config_error_not_a_crash(text: str, tmp_path_factory: pytest.TempPathFactory) -> None:
    path = tmp_path_factory.mktemp("toml") / "random.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError, match="random\\.toml"):  # the one line names the file
        load_rig_config(path)


# --- physical bounds: out-of-range and non-finite numbers are rejected before anything is allocated or waited on ---

_NUMERIC_LEAVES = [
    (t, k) for t, k in _LEAVES if isinstance(BASE[t][k], int | float) and not isinstance(BASE[t][k], bool)
]
_ZERO_IS_FINE = {("recon", "attenuation"), ("recon", "camera_offset_adu")}  # lower bound 0 is physical here


@pytest.mark.parametrize(
    ("table", "key", "value"),
    [
        ("optics", "pixel_size_um", 1e-9),  # OOM at 23.7 GB
        ("acquisition", "interval_s", 1e300),  # hang
        ("recon", "wiener", 1e-320),
        ("recon", "wiener", 9.2e18),
        ("backend", "timeout_s", 1e-320),
        ("acquisition", "exposure_ms", 1e5),
        ("acquisition", "timepoints", 10**12),
        ("display", "gamma", float("inf")),
        ("sim", "modulation", float("nan")),
    ],
)
def test_values_that_exhaust_memory_hang_or_overflow_are_rejected(table: str, key: str, value: float) -> None:
    data = copy.deepcopy(BASE)
    data[table][key] = value
    with pytest.raises(ConfigError, match=re.escape(f"[{table}] {key}")) as info:
        parse_rig_config(data)
    assert f"[{table}] {key}" in str(info.value) and "\n" not in str(info.value)


@pytest.mark.parametrize("value", [float("nan"), float("inf"), -float("inf"), 1e6])
def test_non_finite_or_huge_pattern_angles_are_rejected(value: float) -> None:
    data = copy.deepcopy(BASE)
    data["sim"]["angles_deg"] = [value, 72.0, 132.0]
    with pytest.raises(ConfigError, match=r"\[sim\] angles_deg"):
        parse_rig_config(data)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    leaf=st.sampled_from(_NUMERIC_LEAVES),
    value=st.one_of(
        st.sampled_from([float("nan"), float("inf"), -float("inf")]),
        st.floats(min_value=1e7, max_value=1e308),
        st.floats(min_value=-1e308, max_value=-1e-300),
        st.integers(min_value=10**7, max_value=10**30),
    ),
)
def test_random_non_finite_or_out_of_range_number_is_rejected_with_its_key(leaf: tuple[str, str], value: float) -> None:
    table, key = leaf
    data = copy.deepcopy(BASE)
    data[table][key] = value
    with pytest.raises(ConfigError, match=re.escape(f"[{table}] {key}")) as info:
        parse_rig_config(data)
    assert f"[{table}] {key}" in str(info.value) and "\n" not in str(info.value)


@settings(max_examples=60, deadline=None)
@given(leaf=st.sampled_from(_NUMERIC_LEAVES), value=st.floats(min_value=0.0, max_value=1e-300))
def test_random_vanishing_number_is_rejected_unless_zero_is_physical(leaf: tuple[str, str], value: float) -> None:
    table, key = leaf
    data = copy.deepcopy(BASE)
    data[table][key] = value
    if leaf in _ZERO_IS_FINE:
        assert getattr(getattr(parse_rig_config(data), table), key) == value
        return
    with pytest.raises(ConfigError, match=re.escape(f"[{table}] {key}") + r"|\[sim\] period_um") as info:
        parse_rig_config(data)
    assert f"[{table}] {key}" in str(info.value) or "[sim] period_um" in str(info.value)
