"""The one job runner: train `gan_lab.train` jobs, each in its own directory, in-process or as parallel processes.

    python -m gan_lab.jobs <run dir> [--threads N]      # one job whose .hydra/overrides.yaml is already written

`gan_lab.reproduce` and scripts/compare_ae_vae_gan.py plan their jobs with `plan_job` (train, resume or reuse a
finished run; refuse a directory that holds something else) and run them with `run_jobs`: one at a time in this
process, or `parallel` at a time as `python -m gan_lab.jobs` child processes with cores / parallel torch threads
each (torch's threads collapse under contention, so parallel jobs never share cores). A child writes its output
to <run dir>/job.log; its result is the run's metrics.json either way.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import yaml

from gan_lab.config import CONF_DIR
from gan_lab.errors import ConfigError
from gan_lab.stop_signals import StopSignals

# defaults of every job (a later user override of the same key wins): no W&B run, no progress bar
JOB_DEFAULTS = ("logger=csv", "callbacks.progress=null", "trainer.enable_progress_bar=false")
FINISHED = ("completed", "diverged")  # a run with either status has ended and is not trained again


@dataclass
class Job:
    run_dir: Path
    overrides: list[str]
    action: str = "train"  # train | resume | reuse (see plan_job)
    tag: object = None  # the caller's bookkeeping (a model label, a seed...)


def compose(overrides: list[str]):
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir

    with initialize_config_dir(version_base="1.3", config_dir=str(CONF_DIR)):
        return hydra_compose("train", overrides=list(overrides))


def override_key(override: str) -> str:
    """The config key a Hydra override sets (`+a.b=1`, `~a.b`, `a.b=1` -> "a.b")."""
    return override.lstrip("+~").split("=", 1)[0].strip()


def with_defaults(base: list[str], user: list[str]) -> list[str]:
    """base + JOB_DEFAULTS (except keys the user sets) + the user's overrides, in that order."""
    keys = {override_key(o) for o in user}
    return list(base) + [o for o in JOB_DEFAULTS if o.split("=", 1)[0] not in keys] + list(user)


def read_overrides(run_dir: Path) -> list[str] | None:
    try:
        return [str(o) for o in yaml.safe_load((run_dir / ".hydra" / "overrides.yaml").read_text()) or []]
    except (OSError, yaml.YAMLError):
        return None


def plan_job(run_dir: Path, overrides: list[str], max_steps: int, strict: bool = True) -> str:
    """'train', 'resume' or 'reuse' for a job directory; ConfigError when it holds something else.

    A finished job (diverged, or completed with all `max_steps`) is reused; an unfinished one (no metrics.json,
    status failed, or fewer steps: Ctrl+C ends Lightning with sys.exit) resumes from its last.ckpt; a staged job
    that never started (its directory holds only what `_stage` wrote, as when parallel jobs are interrupted
    before their turn) trains. With strict=False (only tabulating) an unfinished job without a checkpoint (e.g.
    still running) is 'unfinished'."""
    if not run_dir.exists():
        return "train"
    recorded = read_overrides(run_dir)
    if recorded != overrides:
        raise ConfigError(
            f"job directory {run_dir} already holds a run with other overrides ({recorded}, now {overrides}); "
            "choose another --out (existing runs are never overwritten)"
        )
    if _only_staged(run_dir):
        return "train"
    done = read_metrics(run_dir, missing={})
    status, steps = done.get("status"), done.get("steps") or 0
    if status == "diverged" or (status == "completed" and steps >= max_steps):
        return "reuse"
    if (run_dir / "checkpoints" / "last.ckpt").exists():
        return "resume"
    if not strict:
        return "unfinished"
    raise ConfigError(
        f"job directory {run_dir} holds an unfinished run (status {status}, {steps} of {max_steps} steps) without "
        "checkpoints/last.ckpt to resume from; choose another --out (existing runs are never overwritten)"
    )


STAGED = {"overrides.yaml", "config.yaml"}  # what _stage writes into <run dir>/.hydra


def _only_staged(run_dir: Path) -> bool:
    """Whether `run_dir` holds nothing but a staged job's files (no log, lock, checkpoint or result of a start).
    Two directory listings, not a walk of a finished run's pictures and logs."""
    if {p.name for p in run_dir.iterdir()} - {".hydra"}:
        return False
    hydra = run_dir / ".hydra"
    return not hydra.is_dir() or {p.name for p in hydra.iterdir()} <= STAGED


def read_metrics(run_dir: Path, missing: dict | None = None) -> dict:
    try:
        return json.loads((run_dir / "metrics.json").read_text())
    except (OSError, ValueError):
        return {"status": "failed", "error": "no readable metrics.json"} if missing is None else missing


def run_wall_time(metrics: dict):
    """A run's wall time over all its processes from its metrics.json dict (files written before
    `total_wall_time_s` existed hold only their last process's `wall_time_s`); None when it has neither."""
    return metrics.get("total_wall_time_s", metrics.get("wall_time_s"))


def _stage(job: Job):
    """Write the job's overrides and resolved config before it trains; returns the composed config."""
    from omegaconf import OmegaConf

    cfg = compose(job.overrides + (["ckpt_path=last"] if job.action == "resume" else []))
    (job.run_dir / ".hydra").mkdir(parents=True, exist_ok=True)
    (job.run_dir / ".hydra" / "overrides.yaml").write_text(yaml.safe_dump(job.overrides))
    (job.run_dir / ".hydra" / "config.yaml").write_text(OmegaConf.to_yaml(cfg, resolve=True))
    return cfg


def run_job(job: Job) -> dict:
    """Train (or resume) one job in this process through gan_lab.train.train, or read a finished one."""
    from gan_lab import train as train_module

    if job.action != "reuse":
        cfg = _stage(job)
        try:
            train_module.train(cfg, job.run_dir)
        except ConfigError:
            raise
        except Exception as e:  # recorded in metrics.json by train(); the other jobs go on
            print(f"  job failed: {type(e).__name__}: {e}", file=sys.stderr)
    return read_metrics(job.run_dir)


class _Stop(StopSignals):
    """The runner's stop: SIGTERM and SIGINT (Ctrl+C) stop it starting jobs, the running jobs save their
    checkpoints and end as 'preempted' (gan_lab.train's signal handling), then the runner exits with
    128 + the signal. Parallel jobs: SIGTERM is passed on to the children (Ctrl+C reaches them from the
    terminal itself). In-process jobs: a signal that came while a job was finishing, after its last step,
    reaches this scope when the job's own closes (gan_lab.stop_signals). A second Ctrl+C stops at once."""

    def __init__(self):
        super().__init__(on_signal=self._pass_on)
        self.children: set[subprocess.Popen] = set()
        self._lock = threading.Lock()

    def _pass_on(self, signum: int) -> None:
        if signum == signal.SIGTERM:
            with self._lock:
                children = list(self.children)
            for child in children:
                child.send_signal(signum)

    def run_child(self, cmd: list[str], log, env: dict) -> None:
        with self._lock:
            if self.signum is not None:
                return
            child = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env)
            self.children.add(child)
        try:
            child.wait()
        finally:
            with self._lock:
                self.children.discard(child)


def _exit_stopped(signum: int, results: list[dict | None]) -> None:
    done = sum(1 for r in results if r is not None)
    print(
        f"jobs stopped by {signal.Signals(signum).name} ({done} of {len(results)} finished or saved); "
        "run the same command again to continue them",
        file=sys.stderr,
    )
    raise SystemExit(128 + signum)


def _run_child(job: Job, threads: int, stop: _Stop) -> dict | None:
    """One staged job (see run_jobs) as a `python -m gan_lab.jobs` child process; None when it was not started
    because the runner is stopping."""
    if job.action != "reuse":
        if stop.signum is not None:
            return None
        env = {**os.environ, "OMP_NUM_THREADS": str(threads), "PYTHONUNBUFFERED": "1"}
        cmd = [sys.executable, "-m", "gan_lab.jobs", str(job.run_dir), "--threads", str(threads)]
        if job.action == "resume":
            cmd.append("--resume")
        with open(job.run_dir / "job.log", "a") as log:
            stop.run_child(cmd, log, env)
    return read_metrics(job.run_dir)


def cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def run_jobs(jobs: list[Job], parallel: int = 1, threads: int | None = None, on_done=None) -> list[dict]:
    """Results (metrics.json dicts, with wall_time_s of the job) in the order of `jobs`. parallel=1: in this
    process; more: that many child processes at a time, each with `threads` (default cores // parallel)
    torch threads. on_done(job, result) is called as each job ends (from this thread). SIGTERM or Ctrl+C
    stops the runner once the running jobs have saved their checkpoints (in this process: gan_lab.train's
    handling; children: see `_Stop`), and it exits with 128 + the signal; no further job starts."""
    from gan_lab.train import set_threads

    parallel = max(1, min(parallel, len(jobs) or 1))
    threads = threads or max(1, cores() // parallel)
    results: list[dict | None] = [None] * len(jobs)

    def one(i: int, stop: _Stop | None) -> dict | None:
        t0 = time.time()
        r = run_job(jobs[i]) if parallel == 1 else _run_child(jobs[i], threads, stop)
        if r is not None and jobs[i].action != "reuse":
            r = {**r, "job_wall_time_s": round(time.time() - t0, 1)}
        return r

    if parallel == 1:
        set_threads(threads)
        with _Stop() as stop:
            for i, job in enumerate(jobs):
                results[i] = one(i, None)
                if on_done:
                    on_done(job, results[i])
                if stop.signum is not None:  # the job saved and stopped, or the signal came as it finished
                    break
        if stop.signum is not None:
            _exit_stopped(stop.signum, results)
        return results
    for job in jobs:  # Hydra's compose is not thread-safe: configs are written here, children read them
        if job.action != "reuse":
            _stage(job)
    with _Stop() as stop, ThreadPoolExecutor(parallel) as pool:
        futures = {pool.submit(one, i, stop): i for i in range(len(jobs))}
        for fut in futures:  # submission order; each waits for its own job
            i = futures[fut]
            results[i] = fut.result()
            if on_done and results[i] is not None:
                on_done(jobs[i], results[i])
    if stop.signum is not None:
        _exit_stopped(stop.signum, results)
    return results


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m gan_lab.jobs", description=__doc__.split("\n")[0])
    parser.add_argument("run_dir", help="job directory holding .hydra/overrides.yaml")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--resume", action="store_true", help="resume from the run's checkpoints/last.ckpt")
    args = parser.parse_args(argv)
    run_dir = Path(args.run_dir)
    overrides = read_overrides(run_dir)
    if overrides is None:
        print(f"python -m gan_lab.jobs: error: {run_dir}/.hydra/overrides.yaml is missing", file=sys.stderr)
        return 2
    from gan_lab.train import set_threads

    set_threads(args.threads)
    job = Job(run_dir, overrides, "resume" if args.resume else "train")
    cfg = compose(job.overrides + (["ckpt_path=last"] if args.resume else []))
    from gan_lab.train import train

    result = train(cfg, run_dir)
    return 0 if result.get("status") in FINISHED else 1


if __name__ == "__main__":
    sys.exit(main())
