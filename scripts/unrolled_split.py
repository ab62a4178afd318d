"""How G's gradient splits in a `trick.unrolled.log_every` run, read from its metrics.csv, phase by phase.

    python scripts/unrolled_split.py <run dir> [<run dir> ...] [--phases 0,200,1000,2500,5000,10000] [--lead 0.95]

For each run one JSON line:
- `phases`: per phase (iterations [a, b)), the logged windows whose split falls in it, the range of
  `train/unrolled_share` (|g_full - g_first| / |g_first|), the smallest `train/unrolled_cos` and in how many
  windows it is below 0 (the unrolled path reverses G's direction). With `log_every` equal to the log interval
  N (`trainer.log_every_n_steps`; read here as the step difference of consecutive rows) each logged row holds
  the split of its window's first G update, so a row at step s is placed at iteration s + 1 - N.
- `d_leads`: the logged windows in which D classifies at least `--lead` of the real and of the fake samples
  correctly (`train/d_acc_real`, `train/d_acc_fake`), of how many, and their stretches [first, last iteration].
- `evaluations`: the metrics evaluated during the run by step (`metrics/stacked_modes`, `metrics/stacked_kl`,
  `metrics/fid`, ... as logged).
A run without the split (no `log_every`, or a run without unrolling) reports `phases` empty and the rest.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from pathlib import Path


def split(run_dir: Path, phases: list[int], lead: float = 0.95) -> dict:
    path = run_dir / "metrics.csv"
    if not path.is_file():
        raise SystemExit(f"unrolled_split: {path} does not exist; give a run directory of a finished or running run")
    with path.open(newline="") as f:
        rows = list(csv.DictReader(f))
    train = [r for r in rows if r.get("train/d_acc_fake") and r.get("train/d_acc_real")]
    steps = sorted({int(r["step"]) for r in train})
    every = min((b - a for a, b in zip(steps, steps[1:])), default=1)

    def window(r: dict) -> int:  # the first iteration of the window a row logs
        return int(r["step"]) + 1 - every

    logged = [
        (window(r), float(r["train/unrolled_share"]), float(r["train/unrolled_cos"]))
        for r in rows
        if r.get("train/unrolled_share") and r.get("train/unrolled_cos")
    ]
    out = []
    for a, b in zip(phases, phases[1:]):
        w = [t for t in logged if a <= t[0] < b]
        if w:
            out.append(
                {
                    "iterations": [a, b - 1],
                    "windows": len(w),
                    "share": [round(min(t[1] for t in w), 2), round(max(t[1] for t in w), 2)],
                    "cos_min": round(min(t[2] for t in w), 2),
                    "cos_below_0": sum(t[2] < 0 for t in w),
                }
            )
    leads = [
        window(r)
        for r in train
        if float(r["train/d_acc_fake"]) >= lead and float(r["train/d_acc_real"]) >= lead
    ]
    stretches: list[list[int]] = []
    for s in leads:
        if stretches and s - stretches[-1][1] <= every:
            stretches[-1][1] = s
        else:
            stretches.append([s, s])
    evaluations: dict[int, dict] = {}
    for r in rows:
        values = {k.split("/", 1)[1]: float(v) for k, v in r.items() if k.startswith("metrics/") and v}
        if values:
            evaluations.setdefault(int(r["step"]), {}).update(values)
    return {
        "run": str(run_dir),
        "log_interval": every,
        "phases": out,
        "d_leads": {
            "windows": len(leads),
            "of": len(train),
            "stretches": [[a, b + every - 1] for a, b in stretches],
        },
        "evaluations": {str(k): v for k, v in sorted(evaluations.items())},
    }


def _phases(text: str) -> list[int]:
    try:
        bounds = [int(x) for x in text.split(",")]
    except ValueError:
        bounds = []
    if len(bounds) < 2 or any(b <= a for a, b in zip(bounds, bounds[1:])) or bounds[0] < 0:
        raise argparse.ArgumentTypeError(f"--phases {text}: allowed increasing iteration bounds >= 0, e.g. 0,200,2500")
    return bounds


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", type=Path)
    parser.add_argument("--phases", type=_phases, default=[0, 200, 1000, 2500, 5000, 10000], help="phase bounds")
    parser.add_argument("--lead", type=float, default=0.95, help="D's accuracy on both at which it leads")
    args = parser.parse_args(argv)
    if not 0.5 < args.lead <= 1.0:
        parser.error(f"--lead {args.lead}: allowed an accuracy in (0.5, 1]")
    for run in args.runs:
        print(json.dumps(split(run, args.phases, args.lead)))


if __name__ == "__main__":
    main(sys.argv[1:])
