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
        "model.loss=wasserstein",
        "model.d_optimizer.lr=-1,1e30,1e-3",  # rejected by validation / diverges / fine
        "model.g_optimizer.lr=${model.d_optimizer.lr}",
        "trainer.max_steps=200",
        "trainer.log_every_n_steps=5",
        "logger=none",
        "callbacks.progress=null",
        "trainer.enable_progress_bar=false",
        "metrics.n_samples=200",
        f"hydra.sweep.dir={sweep}",
    )
    assert r.returncode == 0, r.stderr[-3000:]
    status = [json.loads((sweep / str(i) / "metrics.json").read_text())["status"] for i in range(3)]
    assert status[0] == "failed" and status[1] == "diverged", status
    third = json.loads((sweep / "2" / "metrics.json").read_text())
    assert third["steps"] == 200 and third["status"] == "completed"
