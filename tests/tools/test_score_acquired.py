"""tools/score_acquired.py: the shipped model and the copy baseline on the held-out position of a real dataset."""

from __future__ import annotations

from tests.tools.tool_loader import load_tool
from tests.train.test_acquired_data import acquire


def test_scores_the_held_out_position_against_the_copy_baseline(tmp_path, capsys) -> None:
    root = acquire(tmp_path / "data", 3, positions=2)
    out = tmp_path / "scores.md"
    assert load_tool("score_acquired").main(["--data", str(root), "--model", "shipped=imcsr_cpu_demo_tc",
                                             "--out", str(out)]) == 0  # fmt: skip
    lines = out.read_text().splitlines()
    assert lines[0] == "| method (median PCC, 1 held-out windows) | Microtubules | ER | Lysosomes |"
    rows = {line.split("|")[1].strip(): [float(v) for v in line.split("|")[2:5]] for line in lines[2:]}
    assert set(rows) == {"shipped", "copy baseline"}
    assert all(-1.0 <= v <= 1.0 for row in rows.values() for v in row)
    assert capsys.readouterr().out.strip() == out.read_text().strip()


def test_a_dataset_too_small_to_split_is_one_error_line(tmp_path, capsys) -> None:
    root = acquire(tmp_path / "data", 3)
    assert load_tool("score_acquired").main(["--data", str(root), "--model", "imcsr_cpu_demo_tc"]) == 3
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "too few to split" in err and len(err.strip().splitlines()) == 1
