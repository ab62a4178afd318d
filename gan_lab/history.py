"""metrics.csv, the always-on history of a run, kept across a resume.

Lightning's CSV writer deletes an existing metrics.csv when it starts; a run resumed with ckpt_path=...
would lose the history before the checkpoint. `history_logger` keeps the rows up to the checkpoint's
step (later ones are logged again by the resumed run) and lets the writer append after them.
Nothing is touched while the run is only being built: the file is read and rewritten when the writer is
first used (training has started), so a run refused after building leaves metrics.csv as it was.
"""

from __future__ import annotations

import csv
from pathlib import Path

from pytorch_lightning.loggers import CSVLogger

from gan_lab._lightning_compat import restore_csv_columns


def _rows_until(path: Path, step: int) -> tuple[list[str], list[dict]]:
    with path.open(newline="") as f:
        reader = csv.DictReader(f)
        rows = [r for r in reader if r.get("step") not in (None, "") and float(r["step"]) <= step]
        return list(reader.fieldnames or []), rows


class HistoryLogger(CSVLogger):
    """CSVLogger writing `<run_dir>/metrics.csv` that keeps the rows up to `resume_step` of an earlier run."""

    def __init__(self, run_dir: Path, resume_ckpt: str | None = None):
        super().__init__(save_dir=str(run_dir), name="", version="")
        self._resume_ckpt = resume_ckpt
        self._started = False

    @property
    def experiment(self):
        if self._started:
            return super().experiment
        self._started = True
        from gan_lab.train import is_global_zero

        path = Path(self.log_dir) / "metrics.csv"
        header, rows = [], []
        if self._resume_ckpt and path.is_file() and is_global_zero():  # other DDP ranks write no history
            from gan_lab.checkpoints import load

            step = int(load(self._resume_ckpt, mmap=True).get("global_step", 0))
            header, rows = _rows_until(path, step)
        writer = super().experiment  # created now: this is where Lightning deletes the old file
        if rows:
            with path.open("w", newline="") as f:
                out = csv.DictWriter(f, fieldnames=header)
                out.writeheader()
                out.writerows(rows)
            restore_csv_columns(writer, header)
        return writer


def history_logger(run_dir: Path, resume_ckpt: str | None = None) -> HistoryLogger:
    """The CSVLogger writing `<run_dir>/metrics.csv`, holding the earlier rows when resuming."""
    return HistoryLogger(Path(run_dir), resume_ckpt)
