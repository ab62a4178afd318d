"""The job runner (gan_lab.jobs, behind `gan-lab reproduce`) stops on SIGTERM / Ctrl+C: the running jobs save
their checkpoints, no further job starts, it exits with 128 + the signal, and the same jobs run again continue."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from conftest import ROOT

from gan_lab.jobs import plan_job

JOB = [
    "model=gan_mlp",
    "data=toy2d_ring",
    "data.n_samples=2000",
    "metrics.every_n_steps=0",
    "metrics.n_samples=200",
    "callbacks.checkpoint.every_n_train_steps=1000",  # no periodic checkpoint: only the signal's
    "logger=csv",
    "callbacks.progress=null",
    "trainer.enable_progress_bar=false",
]


def runner(tmp_path: Path, jobs: list[list[str]], parallel: int) -> subprocess.Popen:
    """A process running `run_jobs` over `jobs` (overrides each) in tmp_path/job<k>, as reproduce does."""
    script = tmp_path / "run_jobs.py"
    script.write_text(
        textwrap.dedent(
            f"""
            from pathlib import Path
            from gan_lab.jobs import Job, run_jobs
            jobs = [Job(Path({str(tmp_path)!r}) / f"job{{k}}", ov) for k, ov in enumerate({jobs!r})]
            run_jobs(jobs, parallel={parallel}, threads=1)
            """
        )
    )
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "WANDB_SILENT": "true", "OMP_NUM_THREADS": "1"}
    return subprocess.Popen(  # its own process group: a Ctrl+C in its terminal reaches it and its children
        [sys.executable, str(script)],
        cwd=ROOT,
        env=env,
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
        start_new_session=True,
    )


def metrics(run: Path) -> dict:
    return json.loads((run / "metrics.json").read_text())


def test_a_signal_to_in_process_jobs_stops_them_all(tmp_path):
    signalled = [*JOB, "trainer.max_steps=50", "+callbacks.sig._target_=gan_lab.callbacks.faults.SignalAtStep"]
    p = runner(tmp_path, [[*signalled, "+callbacks.sig.step=3"], [*JOB, "trainer.max_steps=5"]], parallel=1)
    _, err = p.communicate(timeout=300)
    assert p.returncode == 143, err[-3000:]
    assert "jobs stopped by SIGTERM (1 of 2 finished or saved); run the same command again to continue them" in err
    assert metrics(tmp_path / "job0")["status"] == "preempted" and metrics(tmp_path / "job0")["steps"] == 3
    assert not (tmp_path / "job1").exists()  # never started


def test_a_signal_as_an_in_process_job_finishes_stops_the_runner(tmp_path):
    """SIGTERM in the end-of-run work, after the job's last step: the job completes (nothing is left to save
    for), and the runner stops before the next job instead of absorbing the signal."""
    finishing = [
        *JOB,
        "trainer.max_steps=5",
        "+callbacks.sig._target_=gan_lab.callbacks.faults.SignalAtStep",
        "+callbacks.sig.step=5",
        "+callbacks.sig.at_train_end=true",
    ]
    p = runner(tmp_path, [finishing, [*JOB, "trainer.max_steps=5"]], parallel=1)
    _, err = p.communicate(timeout=300)
    assert p.returncode == 143, err[-3000:]
    assert "jobs stopped by SIGTERM (1 of 2 finished or saved)" in err
    assert metrics(tmp_path / "job0")["status"] == "completed" and metrics(tmp_path / "job0")["steps"] == 5
    assert not (tmp_path / "job1").exists()


@pytest.mark.slow  # three training processes
@pytest.mark.parametrize("sig,to", [("SIGTERM", "parent"), ("SIGINT", "group")], ids=["kill_parent", "ctrl_c"])
def test_a_signal_stops_parallel_jobs(sig, to, tmp_path):
    """`kill <pid>` of the parent alone (it passes SIGTERM on to its children), or Ctrl+C in the terminal (the
    whole process group): the running jobs save and stop, the third never starts (staged only), and the same
    jobs planned again resume the two and train the third."""
    forever = [*JOB, "trainer.max_steps=100000"]
    jobs = [[*forever, f"seed={k}"] for k in range(3)]
    p = runner(tmp_path, jobs, parallel=2)
    deadline = time.time() + 300
    started = [tmp_path / f"job{k}" / "metrics.csv" for k in (0, 1)]
    while not all(f.exists() for f in started) and time.time() < deadline and p.poll() is None:
        time.sleep(0.2)
    time.sleep(1.0)
    signum = getattr(signal, sig)
    p.send_signal(signum) if to == "parent" else os.killpg(p.pid, signum)
    _, err = p.communicate(timeout=300)
    assert p.returncode == 128 + signum, err[-3000:]
    assert f"jobs stopped by {sig} (2 of 3 finished or saved)" in err
    for k in (0, 1):
        m = metrics(tmp_path / f"job{k}")
        assert m["status"] == "preempted" and m["signal"] == sig and m["steps"] > 0
        assert plan_job(tmp_path / f"job{k}", jobs[k], 100000) == "resume"
    staged = tmp_path / "job2"
    assert sorted(q.relative_to(staged).as_posix() for q in staged.rglob("*")) == [
        ".hydra",
        ".hydra/config.yaml",
        ".hydra/overrides.yaml",
    ]
    assert plan_job(staged, jobs[2], 100000) == "train"
