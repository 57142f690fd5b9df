"""The result of ``imcsr-live evaluate``, shared by the evaluation (``evaluate.py``) and its files (``report.py``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

METRICS = ("nrmse", "ssim", "pcc")


@dataclass
class EvalReport:
    rows: list[dict[str, Any]] = field(default_factory=list)  # level, structure, method, metrics
    files: list[Path] = field(default_factory=list)

    def median(self, level: str, structure: str, method: str, metric: str) -> float:
        vals = [
            float(r[metric])
            for r in self.rows
            if r["level"] == level and r["structure"] == structure and r["method"] == method
        ]
        return float(np.nanmedian(vals)) if vals else float("nan")
