"""metrics.csv, the always-on history of a run, kept across a resume.

Lightning's CSV writer deletes an existing metrics.csv when it starts; a run resumed with ckpt_path=...
would lose the history before the checkpoint. `history_logger` keeps the rows up to the checkpoint's
step (later ones are logged again by the resumed run) and lets the writer append after them.
"""

from __future__ import annotations

import csv
from pathlib import Path

from gan_lab._lightning_compat import restore_csv_columns


def _rows_until(path: Path, step: int) -> tuple[list[str], list[dict]]:
    with path.open(newline="") as f:
        reader = csv.DictReader(f)
        rows = [r for r in reader if r.get("step") not in (None, "") and float(r["step"]) <= step]
        return list(reader.fieldnames or []), rows


def history_logger(run_dir: Path, resume_ckpt: str | None = None):
    """The CSVLogger writing `<run_dir>/metrics.csv`, holding the earlier rows when resuming."""
    import torch
    from pytorch_lightning.loggers import CSVLogger

    from gan_lab.train import is_global_zero

    path = Path(run_dir) / "metrics.csv"
    header, rows = [], []
    if resume_ckpt and path.is_file() and is_global_zero():  # other DDP ranks write no history
        step = int(torch.load(resume_ckpt, map_location="cpu", weights_only=True, mmap=True).get("global_step", 0))
        header, rows = _rows_until(path, step)
    logger = CSVLogger(save_dir=str(run_dir), name="", version="")
    writer = logger.experiment  # created now: this is where Lightning deletes the old file
    if rows:
        with path.open("w", newline="") as f:
            out = csv.DictWriter(f, fieldnames=header)
            out.writeheader()
            out.writerows(rows)
        restore_csv_columns(writer, header)
    return logger
