"""The digits <-> MNIST table of docs/cyclegan.md, printed as Markdown from a CycleGAN run's metrics.csv.

    python scripts/cyclegan_table.py <run dir>

One row per evaluation step (the run's `val/...` held-out metrics, every `metrics.every_n_steps`), after the
identity-mapping baseline; the last step in bold.
"""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

COLUMNS = [
    ("digits → MNIST class preservation", "a2b_class_preservation", "{:.1%}"),
    ("digits → MNIST FID (MNIST net)", "a2b_fid", "{:.2f}"),
    ("MNIST → digits class preservation", "b2a_class_preservation", "{:.1%}"),
    ("MNIST → digits FID (digits net)", "b2a_fid", "{:.2f}"),
]


def table(run_dir: Path) -> str:
    path = run_dir / "metrics.csv"
    if not path.is_file():
        raise SystemExit(f"cyclegan_table: {path} does not exist; give a CycleGAN run directory")
    evals = {}
    for row in csv.DictReader(path.open()):
        values = {k.removeprefix("val/"): float(v) for k, v in row.items() if k.startswith("val/") and v}
        if "a2b_fid" in values:
            evals[int(row["step"])] = values
    if not evals:
        raise SystemExit(f"cyclegan_table: {path} holds no val/a2b_fid; a digits2mnist run with metrics is needed")
    header = ["step", *(name for name, _, _ in COLUMNS), "cycle L1 A / B"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---:|" * len(header)]
    first = evals[min(evals)]
    base = [fmt.format(first[f"identity_{key}"]) for _, key, fmt in COLUMNS]
    lines.append("| identity mapping (baseline) | " + " | ".join(base) + " | — |")
    for step in sorted(evals):
        v = evals[step]
        cells = [str(step), *(fmt.format(v[key]) for _, key, fmt in COLUMNS)]
        if step == max(evals):
            cells = [f"**{c}**" for c in cells]
        lines.append("| " + " | ".join(cells) + f" | {v['a2b_cycle_l1']:.3f} / {v['b2a_cycle_l1']:.3f} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("run_dir", type=Path)
    print(table(parser.parse_args(argv).run_dir))
    return 0


if __name__ == "__main__":
    sys.exit(main())
