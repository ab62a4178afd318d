"""Sweeps survive failures: a job that raises and a job that diverges do not stop the others."""

from __future__ import annotations

import csv
import importlib.util
import json
import os
import subprocess
import sys

import pytest
import yaml
from conftest import ROOT, run_cli

# a small in-process (basic launcher) sweep of the 2-D MLP without logger or progress bar
SMALL = ("-m", "model=gan_mlp", "data=toy2d_ring", "logger=none", "callbacks.progress=null",
         "trainer.enable_progress_bar=false", "metrics.n_samples=200")  # fmt: skip


def test_sweep_survives_failed_and_diverged_jobs(tmp_path):
    sweep = tmp_path / "s"
    r = run_cli(
        "gan_lab.train",
        *SMALL,
        "model.d_optimizer.lr=-1,1e-3",  # -1: rejected by validation
        "+callbacks.nan._target_=gan_lab.callbacks.faults.NaNAtStep",
        "+callbacks.nan.step=50,100000",  # 50: diverges
        "trainer.max_steps=200",
        "trainer.log_every_n_steps=5",
        f"hydra.sweep.dir={sweep}",
    )
    assert r.returncode == 0, r.stderr[-3000:]
    jobs = [json.loads((sweep / str(i) / "metrics.json").read_text()) for i in range(4)]
    assert [j["status"] for j in jobs] == ["failed", "failed", "diverged", "completed"], jobs
    assert "model.d_optimizer: lr=-1" in jobs[0]["error"]
    assert jobs[3]["steps"] == 200 and "modes_captured" in jobs[3]


def test_a_signal_as_an_in_process_sweep_job_finishes_ends_the_sweep(tmp_path):
    """SIGTERM in job 0's end-of-run work (after its last step: nothing left to save for): job 0 completes, and
    the sweep ends there with 143 instead of starting job 1 (which a scheduler's SIGKILL would cut short)."""
    sweep = tmp_path / "s"
    r = run_cli(
        "gan_lab.train",
        *SMALL,
        "seed=0,1",
        "trainer.max_steps=5",
        "+callbacks.sig._target_=gan_lab.callbacks.faults.SignalAtStep",
        "+callbacks.sig.step=5",
        "+callbacks.sig.at_train_end=true",
        f"hydra.sweep.dir={sweep}",
    )
    assert r.returncode == 143, r.stderr[-3000:]
    assert "sweep stopped by SIGTERM after job 0 (completed); the later jobs did not start" in r.stderr
    assert json.loads((sweep / "0" / "metrics.json").read_text())["status"] == "completed"
    assert not (sweep / "1").exists()


def test_tiny_tricks_sweep_with_joblib_then_compare(tmp_path):
    """The tricks_toy2d preset, shrunk to 2 tricks x 2 seeds (one seed-parallel job per trick), in parallel jobs;
    compare counts each job's members as the seeds of its group and writes its table."""
    sweep = tmp_path / "s"
    r = run_cli(
        "gan_lab.train",
        "+sweep=tricks_toy2d",
        "trainer.max_steps=30",
        "seeds=2",
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
    assert sorted(p.relative_to(sweep).as_posix() for p in sweep.glob("*/seed*/metrics.json")) == [
        "0/seed0/metrics.json", "0/seed1/metrics.json", "1/seed0/metrics.json", "1/seed1/metrics.json"
    ]  # fmt: skip
    rows = list(csv.DictReader((sweep / "comparison.csv").open()))
    assert {r["group"]: r["n"] for r in rows if r["metric"] == "modes_captured"} == {
        "trick=[]": "2", "trick=[label_smoothing]": "2"
    }  # fmt: skip
    assert (sweep / "comparison.csv").exists() and (sweep / "comparison_modes_captured.png").exists()


def test_objective_is_finite_for_diverged_and_failed_runs():
    """What sweepers (Optuna) get back: the metric, or the finite penalty 1e6 (a NaN would end the study)."""
    from omegaconf import OmegaConf

    from gan_lab.train import DIVERGED_PENALTY, objective_value

    cfg = OmegaConf.create({"objective": "fid"})
    assert objective_value(cfg, {"status": "completed", "fid": 3.5}) == 3.5
    assert objective_value(cfg, {"status": "completed", "fid": float("nan")}) == DIVERGED_PENALTY == 1e6
    assert objective_value(cfg, {"status": "diverged", "fid": 3.5}) == DIVERGED_PENALTY
    assert objective_value(cfg, {"status": "failed"}) == DIVERGED_PENALTY


_needs_optuna = pytest.mark.skipif(
    importlib.util.find_spec("hydra_plugins.hydra_optuna_sweeper") is None,
    reason="hydra-optuna-sweeper is not installed (pip install -c constraints.txt -e '.[optuna]')",
)
_needs_submitit = pytest.mark.skipif(
    importlib.util.find_spec("hydra_plugins.hydra_submitit_launcher") is None,
    reason="hydra-submitit-launcher is not installed (pip install -c constraints.txt -e '.[slurm]')",
)


@_needs_optuna
def test_optuna_preset_runs_two_trials_and_keeps_the_study(tmp_path):
    """conf/sweep/optuna_fid.yaml, shrunk to 2 tiny trials, with the study in SQLite: the best value is the
    lowest FID of the trials, and the stored study holds both trials with parameters inside the search space."""
    import optuna

    sweep, db = tmp_path / "s", f"sqlite:///{tmp_path / 'study.db'}"
    r = run_cli(
        "gan_lab.train",
        "+sweep=optuna_fid",
        "hydra.sweeper.n_trials=2",
        f"hydra.sweeper.storage={db}",
        "trainer.max_steps=5",
        "metrics.n_samples=200",
        "metrics.n_real=300",
        "callbacks.progress=null",
        "trainer.enable_progress_bar=false",
        "threads=1",
        f"hydra.sweep.dir={sweep}",
    )
    assert r.returncode == 0, r.stderr[-3000:]
    fids = [json.loads((sweep / str(i) / "metrics.json").read_text())["fid"] for i in range(2)]
    best = yaml.safe_load((sweep / "optimization_results.yaml").read_text())
    assert best["best_value"] == pytest.approx(min(fids))
    assert 0.1 <= best["best_params"]["trick.d_lr.factor"] <= 4.0
    assert 0.0 <= best["best_params"]["trick.d_dropout.rate"] <= 0.5
    study = optuna.load_study(study_name="optuna_fid", storage=db)
    assert sorted(t.value for t in study.trials) == pytest.approx(sorted(fids))


@_needs_submitit
def test_slurm_preset_writes_the_sbatch_array(tmp_path):
    """hydra/launcher=slurm through the real plugin and submitit, with stub srun/sbatch on PATH (no cluster):
    the sbatch script submitit writes is one array task per job, one SLURM task and GPU per trainer device."""
    bin_dir, captured = tmp_path / "bin", tmp_path / "job.sbatch"
    bin_dir.mkdir()
    (bin_dir / "srun").write_text("#!/bin/sh\nexit 1\n")
    stub = '#!/bin/sh\ncp "$1" "$SBATCH_CAPTURE"\necho "sbatch: stub, no cluster" >&2\nexit 1\n'
    (bin_dir / "sbatch").write_text(stub)
    for f in bin_dir.iterdir():
        f.chmod(0o755)
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "SBATCH_CAPTURE": str(captured)}
    cmd = [sys.executable, "-m", "gan_lab.train", "-m", "model=gan_mlp", "data=toy2d_ring", "seed=0,1,2"]
    cmd += ["hydra/launcher=slurm", "hydra.launcher.partition=debug", "hydra.launcher.array_parallelism=2"]
    cmd += ["trainer=ddp", "trainer.devices=4", "trainer.num_nodes=2", f"hydra.sweep.dir={tmp_path / 's'}"]
    r = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode != 0 and "sbatch: stub, no cluster" in r.stderr  # submission reached sbatch
    script = captured.read_text()
    for flag in (
        "--array=0-2%2",  # 3 jobs, at most 2 at a time
        "--partition=debug",
        "--nodes=2",  # trainer.num_nodes
        "--ntasks-per-node=4",  # trainer.devices: one rank per device
        "--gpus-per-node=4",
        "--time=240",
        "--cpus-per-task=8",
    ):
        assert f"#SBATCH {flag}\n" in script, (flag, script)
    assert "srun" in script and "submitit.core._submit" in script
