"""scripts/stacked_modes_check.py: a Stacked-MNIST run's mode count as is and with the background set to -1."""

from __future__ import annotations

import json
import subprocess
import sys

from conftest import ROOT, SHARED_DATA, needs_shared, train_run

SCRIPT = ROOT / "scripts" / "stacked_modes_check.py"


def _script(*args):
    return subprocess.run([sys.executable, str(SCRIPT), *map(str, args)], capture_output=True, text=True, timeout=300)


@needs_shared
def test_prints_both_counts_for_a_run(tmp_path):
    run = tmp_path / "run"
    data = [f"data.root={SHARED_DATA / 'mnist'}", "data.split=t10k", "data.n_samples=512", "data.batch_size=32"]
    train_run(run, "experiment=unrolled_stacked_d4", "trainer.max_steps=2", *data)
    out = _script(run, "--n", 64, "--seed", 1)
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert (result["run"], result["step"], result["n"]) == (str(run), 2, 64)
    assert -1.0 <= result["background"] <= 1.0
    for name in ("as_is", "below_0_to_-1"):
        counts = result[name]
        assert [sum(h) for h in counts["classes_per_channel"]] == [64, 64, 64]
        # modes are distinct (d0, d1, d2) triples: at least as many as the classes of any one channel, at most n
        assert max(sum(1 for c in h if c) for h in counts["classes_per_channel"]) <= counts["modes"] <= 64
        assert 0.1 <= counts["mean_top_probability"] <= 1.0 and counts["kl"] >= 0
    again = json.loads(_script(run, "--n", 64, "--seed", 1).stdout.strip().splitlines()[-1])
    assert again == result and result["bn"] == "eval (running statistics)"  # fixed noise: the same numbers again
    batch = json.loads(_script(run, "--n", 64, "--seed", 1, "--batch-stats", 16).stdout.strip().splitlines()[-1])
    assert batch["bn"] == "batch statistics, batches of 16" and batch["n"] == 64
    assert [sum(h) for h in batch["as_is"]["classes_per_channel"]] == [64, 64, 64]
    # after 2 steps the running statistics are far from a batch's own: the samples differ
    assert batch["background"] != result["background"]


@needs_shared
def test_controls_real_stacks_and_noise():
    out = _script("--controls", SHARED_DATA / "mnist", "--n", 64)
    assert out.returncode == 0, out.stderr
    real, noise = (json.loads(line) for line in out.stdout.strip().splitlines()[-2:])
    assert (real["control"], noise["control"]) == ("real stacks", "smoothed noise")
    assert real["background"] == -1.0 and real["as_is"]["modes"] >= 55  # 64 stacks of 1000 kinds, read as digits
    assert noise["as_is"]["modes"] <= 3 and noise["as_is"]["kl"] > 6.5  # blobs: one class, near log 1000


def test_a_directory_without_a_checkpoint_is_one_line(tmp_path):
    out = _script(tmp_path)
    assert out.returncode == 1 and "does not exist; give a Stacked-MNIST run directory" in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1
    nothing = _script()
    assert nothing.returncode == 2 and "give run directories or --controls <MNIST IDX dir>" in nothing.stderr
    one = _script(tmp_path, "--batch-stats", 1)
    assert one.returncode == 2 and "--batch-stats 1: a batch of at least 2 samples" in one.stderr
