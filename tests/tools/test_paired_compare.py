"""tools/paired_compare.py: image-by-image comparison of two methods in a metrics.csv."""

from __future__ import annotations

import pytest

from tests.tools.tool_loader import load_tool


def _tool():
    return load_tool("paired_compare")


def _rows(a: list[float], b: list[float], metric: str = "nrmse") -> list[dict[str, str]]:
    rows = []
    for i, (x, y) in enumerate(zip(a, b, strict=True)):
        for method, v in (("A", x), ("B", y)):
            rows.append({"level": "300 photons", "image": str(i), "structure": "ER", "method": method,
                         "nrmse": "0", "ssim": "0", "pcc": "0", metric: str(v)})  # fmt: skip
    return rows


def test_counts_wins_on_the_same_image_not_by_medians() -> None:
    """A has the lower median, yet B is better on 3 of 5 images: the pairing must show that."""
    a = [0.10, 0.20, 0.30, 0.01, 0.02]  # median 0.10
    b = [0.09, 0.19, 0.29, 0.50, 0.60]  # median 0.29
    line = _tool().paired_table(_rows(a, b), "A", "B").splitlines()[2]
    cells = [c.strip() for c in line.strip("|").split("|")]
    assert cells[:5] == ["300 photons", "ER", "5", "0.1000", "0.2900"]
    assert cells[5] == "2 / 5"  # NRMSE: lower is better
    assert cells[6] == "+0.0100"  # median of (0.01, 0.01, 0.01, -0.49, -0.58)


def test_higher_is_better_for_pcc() -> None:
    line = _tool().paired_table(_rows([0.9, 0.8, 0.7], [0.8, 0.9, 0.6], "pcc"), "A", "B", "pcc").splitlines()[2]
    assert "| 2 / 3 |" in line


def test_unknown_method_names_the_ones_there() -> None:
    with pytest.raises(SystemExit, match="has: A, B"):
        _tool().paired_table(_rows([0.1], [0.2]), "A", "Single")
