"""Sweeps survive failures: a job that raises and a job that diverges do not stop the others."""

from __future__ import annotations

import json

from conftest import run_cli


def test_sweep_survives_failed_and_diverged_jobs(tmp_path):
    sweep = tmp_path / "s"
    r = run_cli(
        "gan_lab.train",
        "-m",
        "model=gan_mlp",
        "data=toy2d_ring",
        "model.d_optimizer.lr=-1,1e-3",  # -1: rejected by validation
        "+callbacks.nan._target_=gan_lab.callbacks.faults.NaNAtStep",
        "+callbacks.nan.step=50,100000",  # 50: diverges
        "trainer.max_steps=200",
        "trainer.log_every_n_steps=5",
        "logger=none",
        "callbacks.progress=null",
        "trainer.enable_progress_bar=false",
        "metrics.n_samples=200",
        f"hydra.sweep.dir={sweep}",
    )
    assert r.returncode == 0, r.stderr[-3000:]
    jobs = [json.loads((sweep / str(i) / "metrics.json").read_text()) for i in range(4)]
    assert [j["status"] for j in jobs] == ["failed", "failed", "diverged", "completed"], jobs
    assert "model.d_optimizer: lr=-1" in jobs[0]["error"]
    assert jobs[3]["steps"] == 200 and "modes_captured" in jobs[3]


def test_tiny_tricks_sweep_with_joblib_then_compare(tmp_path):
    """The tricks_toy2d preset, shrunk to 2 tricks x 2 seeds, in parallel jobs; compare writes its table."""
    sweep = tmp_path / "s"
    r = run_cli(
        "gan_lab.train",
        "+sweep=tricks_toy2d",
        "trainer.max_steps=30",
        "seed=0,1",
        "data=toy2d_ring",
        "trick=[],[label_smoothing]",
        "hydra/launcher=joblib",
        "hydra.launcher.n_jobs=2",
        "callbacks.progress=null",
        "trainer.enable_progress_bar=false",
        "metrics.n_samples=300",
        f"hydra.sweep.dir={sweep}",
    )
    assert r.returncode == 0, r.stderr[-3000:]
    c = run_cli("gan_lab.cli", "compare", str(sweep), "--metric", "modes_captured")  # the gan-lab entry point
    assert c.returncode == 0, c.stderr
    table = (sweep / "comparison.md").read_text()
    assert "trick=[label_smoothing]" in table and "trick=[]" in table and "seed=" not in table
    assert (sweep / "comparison.csv").exists() and (sweep / "comparison_modes_captured.png").exists()
