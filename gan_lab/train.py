"""Train a model from the composed Hydra config.

    python -m gan_lab.train                                   # DCGAN on the embedded digits
    python -m gan_lab.train model=gan_mlp data=toy2d_ring trick=[label_smoothing]
    python -m gan_lab.train -m seed=0,1,2 data=toy2d_ring model=gan_mlp   # a sweep

Each run writes into its own directory (outputs/<date>/<time>): .hydra/config.yaml (resolved),
checkpoints/last.ckpt, samples/*.png, metrics.csv (history), metrics.json (final numbers + status)
and, with the default logger, an offline W&B run in wandb/.
"""

from __future__ import annotations

import json
import logging
import math
import os
import sys
import time
from pathlib import Path

import hydra
from omegaconf import DictConfig, OmegaConf

from gan_lab.atomic_io import atomic_write_bytes
from gan_lab.build import container as _container
from gan_lab.errors import ConfigError, StorageError

log = logging.getLogger("gan_lab")

_QUIET = (  # Lightning notices that do not apply to this framework's loop
    r".*val_dataloader.*validation_step.*",
    r".*Experiment logs directory .* exists and is not empty.*",
    r".*LeafSpec.*",
    r".*smaller than the logging interval.*",
    r".*ModelCheckpoint with manual optimization.*",
    r".*litlogger.*",
)


def _quiet_lightning() -> None:
    import warnings

    for pattern in _QUIET:
        warnings.filterwarnings("ignore", message=pattern)
    logging.getLogger("pytorch_lightning.utilities.rank_zero").setLevel(logging.WARNING)


DIVERGED_PENALTY = 1e6  # objective returned to sweepers for diverged/failed runs (finite, never NaN)


def _in_run_dir(path: str | None, run_dir: Path) -> str | None:
    if path is None:
        return None
    p = Path(os.path.expanduser(path))
    return str(p if p.is_absolute() else run_dir / p)


def set_threads(threads: int | None, parallel_jobs: int | None = None) -> None:
    """torch intra-op threads: `threads`, else cores / parallel jobs (joblib sweeps), else torch's default.
    Parallel jobs each using every core slow small models down by an order of magnitude here."""
    import torch

    if threads is None and parallel_jobs:
        cores = os.cpu_count() or 1
        jobs = cores if parallel_jobs < 0 else parallel_jobs
        threads = max(1, cores // max(1, jobs))
    if threads is not None:
        if not isinstance(threads, int) or threads < 1:
            raise ConfigError(f"threads={threads!r} must be a positive integer; allowed null or [1, inf)")
        torch.set_num_threads(threads)


def build_objects(cfg: DictConfig, run_dir: Path, ckpt: str | None = None):
    """Data module, task, callbacks, loggers and trainer for a composed config (no training yet); `ckpt`:
    the checkpoint a resumed run starts from (its metrics.csv history up to that step is kept)."""

    from gan_lab.build import build, build_data_and_task
    from gan_lab.history import history_logger

    dm, task = build_data_and_task(cfg)
    if ckpt:
        check_ckpt_matches(task, ckpt)

    callbacks = []
    for name, spec in (_container(cfg.get("callbacks")) or {}).items():
        if spec is None:
            continue
        for key in ("dirpath", "out_dir"):
            if key in spec:
                spec[key] = _in_run_dir(spec[key], run_dir)
        callbacks.append(build(spec, f"callbacks.{name}"))
    from gan_lab.ensemble import member_callbacks

    callbacks = member_callbacks(callbacks, task, run_dir, cfg, ckpt)  # seeds=: samples and metrics per member
    from gan_lab._lightning_compat import drop_unset_wandb_anonymous

    loggers = [history_logger(run_dir, ckpt)]  # metrics.csv: always-on history
    for name, spec in (_container(cfg.get("logger")) or {}).items():
        if spec is None:
            continue
        if "save_dir" in spec:
            spec["save_dir"] = _in_run_dir(spec["save_dir"], run_dir)
        loggers.append(build(spec, f"logger.{name}"))
        drop_unset_wandb_anonymous(loggers[-1])
    from gan_lab.callbacks.checkpoint_io import AtomicCheckpointIO
    from gan_lab.callbacks.distributed import RankRandomStreams
    from gan_lab.callbacks.evaluation import HeldOutCallback
    from gan_lab.callbacks.signals import PreemptionCheckpoint
    from gan_lab.callbacks.stamp import CheckpointStamp

    callbacks += [CheckpointStamp(), RankRandomStreams(), PreemptionCheckpoint(_checkpoint_dir(callbacks, run_dir))]
    periodic = (cfg.get("callbacks") or {}).get("metrics")  # held-out metrics with the periodic evaluation
    callbacks.append(HeldOutCallback(periodic.every_n_steps if periodic else 0))
    trainer_spec = _container(cfg.trainer)
    trainer_spec.setdefault("plugins", [AtomicCheckpointIO()])
    if isinstance(trainer_spec.get("strategy"), dict):  # conf/trainer/ddp.yaml: a strategy object with its options
        trainer_spec["strategy"] = build(trainer_spec["strategy"], "trainer.strategy")
    trainer = build(trainer_spec, "trainer", default_root_dir=str(run_dir), callbacks=callbacks, logger=loggers)
    _sync_batchnorm_needs_gpu(trainer, task)
    return dm, task, trainer


def _checkpoint_dir(callbacks: list, run_dir: Path) -> Path:
    """Where last.ckpt lives: the ModelCheckpoint's directory, else <run dir>/checkpoints."""
    from pytorch_lightning.callbacks import ModelCheckpoint

    dirs = [cb.dirpath for cb in callbacks if isinstance(cb, ModelCheckpoint) and cb.dirpath]
    return Path(dirs[0]) if dirs else run_dir / "checkpoints"


def check_ckpt_matches(task, ckpt: str) -> None:
    """The checkpoint's weights fit the composed model (same names and shapes), checked before anything is
    written: a resume with other model overrides is refused in one line instead of failing inside fit."""
    from gan_lab.checkpoints import load

    saved = load(ckpt, mmap=True).get("state_dict", {})
    own = task.state_dict()
    missing = sorted(set(own) - set(saved))
    unexpected = sorted(set(saved) - set(own))
    shapes = [k for k in own if k in saved and tuple(own[k].shape) != tuple(saved[k].shape)]
    if not (missing or unexpected or shapes):
        return
    if shapes:
        k = shapes[0]
        why = f"{k} has shape {list(saved[k].shape)} there and {list(own[k].shape)} here"
    else:
        why = f"missing key {missing[0]!r}" if missing else f"unexpected key {unexpected[0]!r}"
    raise ConfigError(
        f"ckpt_path={ckpt!r} does not match the composed model ({len(missing) + len(unexpected) + len(shapes)} "
        f"difference(s), e.g. {why}); resume with the overrides of the run that wrote it"
    )


def _sync_batchnorm_needs_gpu(trainer, task) -> None:
    """torch's SyncBatchNorm runs on GPUs only (it raises on CPU and MPS at the first batch-norm layer): off
    elsewhere, with a warning, so that `trainer=ddp` also runs on CPU processes (e.g. to try a setup)."""
    from torch.nn.modules.batchnorm import _BatchNorm

    device = trainer.strategy.root_device.type
    from gan_lab._lightning_compat import drop_layer_sync, layer_sync

    if layer_sync(trainer.strategy) is None or device in ("cuda", "xpu", "hpu"):
        return
    drop_layer_sync(trainer.strategy)
    if any(isinstance(m, _BatchNorm) for m in task.modules()):
        log.warning(
            "trainer.sync_batchnorm=true is off on %s: torch's SyncBatchNorm needs GPUs; each process keeps "
            "its own batch-norm statistics",
            device,
        )


def is_global_zero() -> bool:
    """Whether this process is rank 0 of a distributed run (or the only process). Lightning sets the rank
    when the processes start; before that it comes from the environment (LOCAL_RANK of the processes it
    started, SLURM_PROCID, RANK; NODE_RANK of the first process of another node)."""
    from pytorch_lightning.utilities import rank_zero_only

    return getattr(rank_zero_only, "rank", 0) == 0 and os.environ.get("NODE_RANK", "0") == "0"


def resolve_ckpt(ckpt_path: str | None, run_dir: Path) -> str | None:
    if ckpt_path in (None, ""):
        return None
    if ckpt_path == "last":
        path = run_dir / "checkpoints" / "last.ckpt"
        if not path.exists():
            raise ConfigError(
                f"ckpt_path=last but {path} does not exist; resume with hydra.run.dir=<the run's "
                "directory> ckpt_path=last, or give ckpt_path=<path to a .ckpt file>"
            )
        from gan_lab.config import check_checkpoint

        check_checkpoint(path)
        return str(path)
    path = Path(ckpt_path).expanduser()
    if not path.is_file():
        raise ConfigError(f"ckpt_path={ckpt_path!r} does not exist; allowed: a .ckpt file path or 'last'")
    return str(path)


def read_status(run_dir: Path) -> str | None:
    """The status in <run_dir>/metrics.json ("unreadable" for a damaged file), or None when there is none."""
    try:
        return str(json.loads((run_dir / "metrics.json").read_text()).get("status"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError, AttributeError):
        return "unreadable"


def check_run_dir(cfg: DictConfig, run_dir: Path, ckpt: str | None) -> str | None:
    """Whether this run may use `run_dir`, without writing anything; returns the checkpoint to start from.

    A directory holding a finished run (completed, diverged, failed) is refused unless the run resumes it
    (ckpt_path=...) or overwrite=true. An unfinished one (pre-empted, or killed: checkpoints but no status)
    is continued from its last.ckpt by the same command, so a requeued job picks up where it stopped."""
    from gan_lab.config import check_checkpoint
    from gan_lab.runlock import DirLock

    if is_global_zero():  # DDP ranks 1.. start while rank 0 holds the lock of their shared run directory
        DirLock(run_dir, "run directory").check()
    _check_writable(run_dir)
    if ckpt is not None or cfg.get("overwrite", False):
        return ckpt
    status = read_status(run_dir)
    last = run_dir / "checkpoints" / "last.ckpt"
    if status in (None, "preempted") and last.is_file():
        check_checkpoint(last, key=f"{last} (the unfinished run in hydra.run.dir)")
        log.info("continuing the unfinished run in %s from %s (overwrite=true starts it over)", run_dir, last)
        return str(last)
    if status is not None:
        raise ConfigError(
            f"run directory {run_dir} already holds a finished run (status {status}); choose another hydra.run.dir, "
            "resume with ckpt_path=last, or pass overwrite=true"
        )
    return None


def _check_writable(run_dir: Path) -> None:
    existing = next((p for p in (run_dir, *run_dir.parents) if p.exists()), None)
    if existing is not None and not (existing.is_dir() and os.access(existing, os.W_OK | os.X_OK)):
        raise ConfigError(
            f"hydra.run.dir={str(run_dir)!r} cannot be written ({existing} is not a writable directory); "
            "allowed: a directory you can write to"
        )


def check_steps_left(cfg: DictConfig, ckpt: str | None) -> None:
    """A checkpoint already at trainer.max_steps has nothing left to train: refused instead of re-running the
    end of the run (which would rewrite its metrics)."""
    max_steps = (cfg.get("trainer") or {}).get("max_steps")
    if not ckpt or not isinstance(max_steps, int) or max_steps < 1:
        return
    from gan_lab.checkpoints import load

    step = int(load(ckpt, mmap=True).get("global_step", 0))
    if step >= max_steps:
        raise ConfigError(
            f"ckpt_path={ckpt!r} is at step {step} and trainer.max_steps={max_steps}: nothing left to train; "
            f"allowed trainer.max_steps > {step} to continue it"
        )


def write_metrics(run_dir: Path, metrics: dict) -> None:
    """metrics.json, written atomically (rank 0 only). A full disk or read-only directory is logged, not
    raised: the error that stopped the run is the one to report."""
    if not is_global_zero():  # DDP: every rank runs train(); rank 0 writes the run's files
        return
    data = json.dumps(metrics, indent=2, sort_keys=True, default=float).encode()
    try:
        atomic_write_bytes(run_dir / "metrics.json", data, "metrics")
    except StorageError as e:
        log.error("%s", e)


def write_hydra_files(run_dir: Path, cfg: DictConfig, hydra_files: dict[str, str] | None) -> None:
    """<run_dir>/.hydra: the resolved config and Hydra's own files, once the run is accepted (rank 0)."""
    if not is_global_zero():
        return
    hydra_dir = run_dir / ".hydra"
    hydra_dir.mkdir(parents=True, exist_ok=True)
    files = {**(hydra_files or {}), "config.yaml": OmegaConf.to_yaml(cfg, resolve=True)}
    for name, text in files.items():
        (hydra_dir / name).write_text(text)


def hydra_files() -> dict[str, str]:
    """hydra.yaml and overrides.yaml as Hydra would have written them (hydra.output_subdir is off)."""
    from hydra.core.hydra_config import HydraConfig

    hc = HydraConfig.get()
    return {
        "hydra.yaml": OmegaConf.to_yaml(OmegaConf.create({"hydra": hc})),
        "overrides.yaml": OmegaConf.to_yaml(hc.overrides.task),
    }


def earlier_wall_time(run_dir: Path, ckpt: str | None) -> float:
    """Seconds the earlier processes of this run spent (their metrics.json's total) when `ckpt` resumes it from
    its own directory; 0 for a new run or a checkpoint from elsewhere."""
    if ckpt is None or not Path(ckpt).resolve().is_relative_to(run_dir.resolve()):
        return 0.0
    from gan_lab.jobs import read_metrics, run_wall_time

    earlier = read_metrics(run_dir, missing={})
    value = run_wall_time(earlier) if isinstance(earlier, dict) else None
    return float(value) if isinstance(value, (int, float)) else 0.0


def final_metrics(task, trainer, status: str, error: str | None, t0: float, earlier_s: float = 0.0) -> dict:
    """`wall_time_s`: this process; `total_wall_time_s`: with the earlier processes of a resumed run."""
    wall = time.time() - t0
    out: dict = {
        "status": status,
        "steps": int(trainer.global_step) if trainer else 0,
        "wall_time_s": round(wall, 2),
        "total_wall_time_s": round(earlier_s + wall, 2),
    }
    if task is not None:
        out.update({k.split("/", 1)[-1]: v for k, v in task.last_logged.items()})
    for cb in trainer.callbacks if trainer else []:
        if hasattr(cb, "final"):
            out.update(cb.final())
    if error:
        out["error"] = error
    return out


def objective_value(cfg: DictConfig, metrics: dict) -> float:
    """The number returned to sweepers (Optuna): cfg.objective or a large finite penalty."""
    key = cfg.get("objective")
    if metrics.get("status") != "completed" or not key:
        return DIVERGED_PENALTY if metrics.get("status") != "completed" else 0.0
    v = metrics.get(key)
    return float(v) if isinstance(v, (int, float)) and math.isfinite(v) else DIVERGED_PENALTY


def start_wandb_early(cfg: DictConfig):
    """With the W&B logger: import W&B and start its service process on a background thread while the data and
    nets are built (the logger's `wandb.init`, before the first step, then finds both ready). Returns the thread
    (None: no W&B logger, not rank 0, or already started); a failure there is left to `wandb.init` to report."""
    import threading

    spec = (_container(cfg.get("logger")) or {}).get("wandb")
    # offline only (the default): W&B reads the mode once, here, and an online logger must not find it offline
    if not spec or not spec.get("offline") or not is_global_zero() or "wandb.sdk.launch.inputs.internal" in sys.modules:
        return None

    def start():
        try:
            import wandb
            import wandb.sdk.launch.inputs.internal  # noqa: F401 - imported by wandb.init (Launch job inputs)

            wandb.setup(wandb.Settings(mode="offline"))  # the service; W&B keeps this mode for the process
        except Exception as e:  # noqa: BLE001 - wandb.init retries and reports
            log.debug("starting W&B early failed: %s", e)

    thread = threading.Thread(target=start, name="gan_lab-wandb-start", daemon=True)
    thread.start()
    return thread


def train(cfg: DictConfig, run_dir: Path, hydra_files: dict[str, str] | None = None) -> dict:
    """Check everything, build everything, then (accepted) lock the run directory, write its .hydra files,
    fit and write metrics.json; returns the final metrics dict. A refused run raises ConfigError having
    written nothing; `hydra_files`: Hydra's hydra.yaml/overrides.yaml to write with the resolved config."""
    from gan_lab.callbacks.signals import Preempted
    from gan_lab.config import validate
    from gan_lab.runlock import DirLock
    from gan_lab.tasks.adversarial import GANDiverged

    t0 = time.time()
    validate(cfg)
    _quiet_lightning()
    ckpt = check_run_dir(cfg, run_dir, resolve_ckpt(cfg.get("ckpt_path"), run_dir))
    check_steps_left(cfg, ckpt)
    earlier_s = earlier_wall_time(run_dir, ckpt)
    start_wandb_early(cfg)
    dm, task, trainer = build_objects(cfg, run_dir, ckpt)
    from gan_lab.callbacks.distributed import check_resume_world_size, check_single_run

    check_single_run(trainer.num_devices * trainer.num_nodes)
    check_resume_world_size(ckpt, trainer.num_devices * trainer.num_nodes)
    lock = DirLock(run_dir, "run directory").acquire() if is_global_zero() else None
    status, error, extra = "completed", None, {}
    try:
        write_hydra_files(run_dir, cfg, hydra_files)
        trainer.fit(task, datamodule=dm, ckpt_path=ckpt)
        if trainer.interrupted:
            status, error = "failed", "interrupted"
        else:
            _final_checkpoint(trainer)
            _wait_for_all_ranks(trainer)
    except Preempted as e:
        status, extra = "preempted", {"signal": signal_name(e.signum), "exit_code": e.exit_code}
        log.warning("pre-empted by %s at step %d: %s written; continue with ckpt_path=last", *_pre(e))
    except GANDiverged as e:
        status, error = "diverged", str(e)
        log.warning("run diverged: %s (the last good checkpoint is kept)", e)
    except Exception as e:
        status, error = "failed", f"{type(e).__name__}: {e}"
        if ckpt and isinstance(e, RuntimeError) and "loading state_dict" in str(e):
            first = str(e).strip().splitlines()[0]
            raise ConfigError(
                f"ckpt_path={ckpt!r} does not match the composed model ({first}); resume with the overrides of "
                "the run that wrote it"
            ) from None
        raise
    except BaseException:  # Ctrl+C: Lightning shuts down gracefully, then calls sys.exit(1)
        status, error = "failed", "interrupted"
        raise
    finally:
        metrics = {**final_metrics(task, trainer, status, error, t0, earlier_s), **extra}
        from gan_lab.ensemble import write_members

        write_members(task, run_dir, metrics)  # seeds=: <run dir>/seed<k>/metrics.json
        write_metrics(run_dir, metrics)
        _finish_wandb()
        if lock is not None:
            lock.release()
    return metrics


def signal_name(signum: int) -> str:
    import signal

    return signal.Signals(signum).name


def _pre(e) -> tuple:
    return signal_name(e.signum), e.step, e.path


def _final_checkpoint(trainer) -> None:
    """last.ckpt at the end of the run. Runs bounded by trainer.max_steps got it at the end of their last
    batch (callbacks/signals.py: before the end-of-run evaluation, so extending max_steps continues exactly);
    runs bounded by epochs get it here."""
    from gan_lab.callbacks.signals import PreemptionCheckpoint

    for cb in trainer.callbacks:
        if isinstance(cb, PreemptionCheckpoint) and cb.final_saved_step != trainer.global_step:
            trainer.save_checkpoint(cb.path, weights_only=False)


def _wait_for_all_ranks(trainer) -> None:
    """Several processes: the run is completed once every rank has finished its end-of-run work (callbacks'
    on_train_end, teardown). Rank 0 waits for them here, so a rank failing there fails the run instead of
    being lost when rank 0 exits first."""
    if trainer.world_size > 1:
        trainer.strategy.barrier("gan_lab.train end of run")


def _finish_wandb():
    if "wandb" in sys.modules:
        import wandb

        if wandb.run is not None:
            wandb.finish()


_sweep_stop = None  # the stop scope of an in-process sweep (see _in_process_sweep_stop)


def _in_process_sweep_stop(hc):
    """Hydra's basic launcher runs a sweep's jobs one after another in this process: one stop scope
    (gan_lab.stop_signals) open across them ends the sweep at a signal that came between two jobs or during a
    job's end-of-run work, which the job itself no longer stops for. (A job stopped in training ends the sweep
    with its own exit code.) None for other launchers, whose jobs run in other processes."""
    global _sweep_stop
    import threading

    from gan_lab.stop_signals import StopSignals

    basic = str(hc.launcher.get("_target_", "")).endswith(".BasicLauncher")
    if _sweep_stop is None and basic and threading.current_thread() is threading.main_thread():
        _sweep_stop = StopSignals().open()
    return _sweep_stop


def _drop_hydra_dir(run_dir: Path, fresh: bool) -> None:
    """Remove the empty directory Hydra made for a job that does not run (refused, or its sweep stopped)."""
    if fresh and run_dir.is_dir() and not any(run_dir.iterdir()):
        run_dir.rmdir()


def _exit_sweep(signum: int, when: str) -> None:
    print(
        f"sweep stopped by {signal_name(signum)} {when}; the later jobs did not start (the same "
        "command again trains them; finished jobs are refused, not retrained)",
        file=sys.stderr,
    )
    sys.exit(128 + signum)


@hydra.main(version_base="1.3", config_path="conf", config_name="train")
def main(cfg: DictConfig) -> float:
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    hc = HydraConfig.get()
    run_dir = Path(hc.runtime.output_dir)
    multirun = hc.mode == RunMode.MULTIRUN
    fresh = not run_dir.exists() or not any(run_dir.iterdir())  # Hydra created it for this job
    stop = _in_process_sweep_stop(hc) if multirun else None
    if stop is not None and stop.signum is not None:  # the signal came between two jobs
        _drop_hydra_dir(run_dir, fresh)
        _exit_sweep(stop.signum, f"before job {hc.job.num}")
    try:
        set_threads(cfg.get("threads"), hc.launcher.get("n_jobs") if multirun else None)
        metrics = train(cfg, run_dir, hydra_files())
    except ConfigError as e:
        if multirun and not isinstance(e, StorageError):  # one bad job must not stop the sweep
            if fresh:  # a new job directory records why; an existing one (a finished job) is left as it was
                write_hydra_files(run_dir, cfg, hydra_files())
                write_metrics(run_dir, {"status": "failed", "error": str(e)})
                log.error("error: %s", e)
            else:  # not through logging: its file handler would append to the job's train.log
                print(f"error: job {hc.job.num}: {e}", file=sys.stderr)
            return DIVERGED_PENALTY
        _drop_hydra_dir(run_dir, fresh)
        print(f"error: {e}", file=sys.stderr)  # one line, before any training; SystemExit skips Hydra's report
        sys.exit(1 if isinstance(e, StorageError) else 2)
    except Exception:
        if multirun:
            log.exception("job failed; the sweep goes on")
            return DIVERGED_PENALTY
        raise
    if metrics.get("status") == "preempted" and is_global_zero():  # 128 + signal: the scheduler sees a job ended
        sys.exit(metrics["exit_code"])  # by that signal (DDP: rank 0's status is the job's; see callbacks/signals.py)
    if stop is not None and stop.signum is not None:  # the signal came as the job finished
        _exit_sweep(stop.signum, f"after job {hc.job.num} ({metrics.get('status')})")
    return objective_value(cfg, metrics)

if __name__ == "__main__":
    from gan_lab.cli import run_hydra_main

    run_hydra_main(main)
