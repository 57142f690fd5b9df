"""The parts of :meth:`~imcsr_live.train.trainer.Trainer.run` that decide and record, kept out of the loop:
the learning-rate plateau policy, the wall-time budget, the iteration-rate meter and the metrics log."""

from __future__ import annotations

import csv
import logging
import math
import time
from collections.abc import Callable, Iterable, MutableMapping
from pathlib import Path
from typing import Any, TextIO

log = logging.getLogger("imcsr_live.train")

CSV_FIELDS = ["iteration", "loss", "lr", "it_per_s", "val_loss", "val_nrmse", "val_ssim", "val_pcc"]

# A validation NRMSE counts as better only when it beats the best one by more than this.
IMPROVEMENT_MARGIN = 1e-6


class PlateauPolicy:
    """Multiplies the learning rate by ``factor`` once ``patience`` iterations have passed without a better
    validation NRMSE; it never goes below ``min_lr`` (and a lr already below ``min_lr`` is never raised)."""

    def __init__(
        self, factor: float, patience: int, min_lr: float, best_nrmse: float = math.inf, last_improved: int = 0
    ) -> None:
        self.factor = factor
        self.patience = patience
        self.min_lr = min_lr
        self.best_nrmse = best_nrmse
        self.last_improved = last_improved

    def observe(self, nrmse: float, iteration: int, param_groups: Iterable[MutableMapping[str, Any]]) -> bool:
        """Record a validation NRMSE; lower the lr of ``param_groups`` on a plateau. True if it is a new best."""
        if nrmse < self.best_nrmse - IMPROVEMENT_MARGIN:
            self.best_nrmse, self.last_improved = nrmse, iteration
            return True
        if iteration - self.last_improved >= self.patience:
            groups = list(param_groups)
            for group in groups:
                group["lr"] = max(group["lr"] * self.factor, min(self.min_lr, group["lr"]))  # never raise it
            self.last_improved = iteration
            if groups:
                log.info("validation NRMSE plateau: lr -> %.3g", groups[0]["lr"])
        return False

    def state(self) -> dict[str, float | int]:
        """The resumable part, as stored in ``NAME_last.state.pt``."""
        return {"best_nrmse": self.best_nrmse, "last_improved": self.last_improved}


class TimeBudget:
    """At most ``max_minutes`` of wall time since construction (None: no limit), checked every ``log_every``
    iterations only; rank 0's decision is broadcast so that every rank stops at the same iteration."""

    def __init__(
        self,
        max_minutes: float | None,
        log_every: int,
        broadcast: Callable[[float], float] = float,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        self.max_minutes = max_minutes
        self.log_every = log_every
        self._broadcast = broadcast
        self._clock = clock
        self._started = clock()

    def exhausted(self, iteration: int) -> bool:
        """True when the run should stop after ``iteration`` (a log step with the budget spent)."""
        if self.max_minutes is None or iteration % self.log_every != 0:
            return False  # off a log step no rank broadcasts: the collective calls stay in step
        spent = self._clock() - self._started >= 60.0 * self.max_minutes
        return self._broadcast(float(spent)) > 0.5


class IterationRate:
    """Iterations per second between successive :meth:`lap` calls."""

    def __init__(self, iteration: int, clock: Callable[[], float] = time.perf_counter) -> None:
        self._clock = clock
        self._tick, self._tick_iteration = clock(), iteration

    def lap(self, iteration: int) -> float:
        now = self._clock()
        rate = (iteration - self._tick_iteration) / max(now - self._tick, 1e-9)
        self._tick, self._tick_iteration = now, iteration
        return rate


class MetricsLog:
    """The metrics CSV (appended to on resume) and TensorBoard scalars, plus the rows as ``history``.

    ``csv_path=None``: a log that records nothing (the ranks other than 0).
    """

    def __init__(self, csv_path: Path | None, append: bool = False, tensorboard: Any = None) -> None:
        self.history: list[dict[str, float]] = []
        self._tensorboard = tensorboard
        self._file: TextIO | None = None
        self._csv: csv.DictWriter | None = None
        if csv_path is not None:
            new_csv = not (append and csv_path.exists())
            self._file = open(csv_path, "w" if new_csv else "a", newline="")  # closed by close()
            self._csv = csv.DictWriter(self._file, fieldnames=CSV_FIELDS)
            if new_csv:
                self._csv.writeheader()

    def write(self, row: dict[str, float]) -> None:
        """One row (missing fields empty), flushed at once so that a killed run keeps it."""
        if self._csv is None or self._file is None:
            return
        self._csv.writerow({k: row.get(k, "") for k in CSV_FIELDS})
        self._file.flush()
        self.history.append(row)
        if self._tensorboard is not None:
            for key, value in row.items():
                if key != "iteration":
                    self._tensorboard.add_scalar(key, value, row["iteration"])

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
        if self._tensorboard is not None:
            self._tensorboard.close()
