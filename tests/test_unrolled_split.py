"""scripts/unrolled_split.py: a `trick.unrolled.log_every` run's gradient split and D's lead, phase by phase."""

from __future__ import annotations

import csv
import json
import subprocess
import sys

from conftest import ROOT, train_run

SCRIPT = ROOT / "scripts" / "unrolled_split.py"
KEYS = ["step", "train/d_acc_fake", "train/d_acc_real", "train/unrolled_share", "train/unrolled_cos"]


def _script(*args):
    return subprocess.run([sys.executable, str(SCRIPT), *map(str, args)], capture_output=True, text=True, timeout=300)


def _write(run, rows):
    run.mkdir()
    with (run / "metrics.csv").open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=[*KEYS, "metrics/stacked_modes"])
        w.writeheader()
        for r in rows:
            w.writerow(r)


def test_phases_leads_and_evaluations(tmp_path):
    run = tmp_path / "run"
    # log interval 10: the row at step 9 holds the split of iteration 0, the row at 19 that of iteration 10, ...
    split = {9: (0.1, 0.99), 19: (2.0, -0.5), 29: (0.5, 0.2), 39: (3.0, -0.9)}
    acc = {9: (0.5, 0.6), 19: (1.0, 0.99), 29: (0.99, 0.96), 39: (0.9, 1.0)}
    rows = [
        {"step": s, "train/d_acc_fake": acc[s][0], "train/d_acc_real": acc[s][1],
         "train/unrolled_share": split[s][0], "train/unrolled_cos": split[s][1]}
        for s in split
    ]
    rows.append({"step": 40, "metrics/stacked_modes": 7.0})  # an evaluation row: no training keys
    _write(run, rows)
    out = _script(run, "--phases", "0,10,40")
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    assert result["log_interval"] == 10
    assert result["phases"] == [
        {"iterations": [0, 9], "windows": 1, "share": [0.1, 0.1], "cos_min": 0.99, "cos_below_0": 0},
        {"iterations": [10, 39], "windows": 3, "share": [0.5, 3.0], "cos_min": -0.9, "cos_below_0": 2},
    ]
    # D leads where both accuracies are >= 0.95: the windows of iterations 10-19 and 20-29, one stretch
    assert result["d_leads"] == {"windows": 2, "of": 4, "stretches": [[10, 29]]}
    assert result["evaluations"] == {"40": {"stacked_modes": 7.0}}
    stricter = json.loads(_script(run, "--phases", "0,40", "--lead", "0.98").stdout)
    assert stricter["d_leads"] == {"windows": 1, "of": 4, "stretches": [[10, 19]]}


def test_a_real_run_with_log_every(tmp_path):
    run = tmp_path / "run"
    train_run(
        run, "model=gan_mlp", "data=toy2d_ring", "trick=[unrolled]", "trick.unrolled.steps=1",
        "trick.unrolled.log_every=2", "trainer.max_steps=8", "trainer.log_every_n_steps=2", "logger=csv",
    )
    result = json.loads(_script(run, "--phases", "0,8").stdout)
    assert result["log_interval"] == 2
    (phase,) = result["phases"]
    assert phase["iterations"] == [0, 7] and phase["windows"] == 4  # one split per logged window of 2 G updates
    assert 0 <= phase["share"][0] <= phase["share"][1] and -1 <= phase["cos_min"] <= 1
    assert result["d_leads"]["of"] == 4


def test_bad_input_is_one_line(tmp_path):
    out = _script(tmp_path)
    assert out.returncode == 1 and "metrics.csv does not exist; give a run directory" in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1
    bad = _script(tmp_path, "--phases", "10,5")
    assert bad.returncode == 2 and "--phases 10,5: allowed increasing iteration bounds >= 0" in bad.stderr
    lead = _script(tmp_path, "--lead", "0.3")
    assert lead.returncode == 2 and "--lead 0.3: allowed an accuracy in (0.5, 1]" in lead.stderr
