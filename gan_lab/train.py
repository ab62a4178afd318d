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

from gan_lab.build import container as _container
from gan_lab.errors import ConfigError

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

    callbacks = []
    for name, spec in (_container(cfg.get("callbacks")) or {}).items():
        if spec is None:
            continue
        for key in ("dirpath", "out_dir"):
            if key in spec:
                spec[key] = _in_run_dir(spec[key], run_dir)
        callbacks.append(build(spec, f"callbacks.{name}"))
    loggers = [history_logger(run_dir, ckpt)]  # metrics.csv: always-on history
    for name, spec in (_container(cfg.get("logger")) or {}).items():
        if spec is None:
            continue
        if "save_dir" in spec:
            spec["save_dir"] = _in_run_dir(spec["save_dir"], run_dir)
        loggers.append(build(spec, f"logger.{name}"))
    from gan_lab.callbacks.distributed import RankRandomStreams
    from gan_lab.callbacks.evaluation import HeldOutCallback
    from gan_lab.callbacks.stamp import CheckpointStamp

    callbacks += [CheckpointStamp(), RankRandomStreams()]
    periodic = (cfg.get("callbacks") or {}).get("metrics")  # held-out metrics with the periodic evaluation
    callbacks.append(HeldOutCallback(periodic.every_n_steps if periodic else 0))
    trainer_spec = _container(cfg.trainer)
    if isinstance(trainer_spec.get("strategy"), dict):  # conf/trainer/ddp.yaml: a strategy object with its options
        trainer_spec["strategy"] = build(trainer_spec["strategy"], "trainer.strategy")
    trainer = build(trainer_spec, "trainer", default_root_dir=str(run_dir), callbacks=callbacks, logger=loggers)
    _sync_batchnorm_needs_gpu(trainer, task)
    return dm, task, trainer


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


def write_metrics(run_dir: Path, metrics: dict) -> None:
    if not is_global_zero():  # DDP: every rank runs train(); rank 0 writes the run's files
        return
    tmp = run_dir / "metrics.json.tmp"
    tmp.write_text(json.dumps(metrics, indent=2, sort_keys=True, default=float))
    tmp.replace(run_dir / "metrics.json")


def final_metrics(task, trainer, status: str, error: str | None, t0: float) -> dict:
    out: dict = {
        "status": status,
        "steps": int(trainer.global_step) if trainer else 0,
        "wall_time_s": round(time.time() - t0, 2),
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


def train(cfg: DictConfig, run_dir: Path) -> dict:
    """Build everything, fit, write metrics.json; returns the final metrics dict."""
    from gan_lab.config import validate
    from gan_lab.tasks.adversarial import GANDiverged

    t0 = time.time()
    validate(cfg)
    _quiet_lightning()
    run_dir.mkdir(parents=True, exist_ok=True)
    ckpt = resolve_ckpt(cfg.get("ckpt_path"), run_dir)
    if ckpt is None and (run_dir / "metrics.json").exists() and not cfg.get("overwrite", False):
        raise ConfigError(
            f"run directory {run_dir} already holds a finished run; choose another hydra.run.dir, "
            "resume with ckpt_path=last, or pass overwrite=true"
        )
    hydra_dir = run_dir / ".hydra"
    if hydra_dir.is_dir() and is_global_zero():  # Hydra saved the unresolved config; keep the resolved one
        (hydra_dir / "config.yaml").write_text(OmegaConf.to_yaml(cfg, resolve=True))
    start_wandb_early(cfg)
    dm, task, trainer = build_objects(cfg, run_dir, ckpt)
    from gan_lab.callbacks.distributed import check_resume_world_size, check_single_run

    check_single_run(trainer.num_devices * trainer.num_nodes)
    check_resume_world_size(ckpt, trainer.num_devices * trainer.num_nodes)
    status, error = "completed", None
    try:
        trainer.fit(task, datamodule=dm, ckpt_path=ckpt)
        if trainer.interrupted:
            status, error = "failed", "interrupted"
        elif trainer.checkpoint_callback is not None and trainer.checkpoint_callback.dirpath:
            # Lightning skips the final last.ckpt when a periodic one was written earlier: always end with it
            trainer.save_checkpoint(Path(trainer.checkpoint_callback.dirpath) / "last.ckpt")
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
        metrics = final_metrics(task, trainer, status, error, t0)
        write_metrics(run_dir, metrics)
        _finish_wandb()
    return metrics


def _finish_wandb():
    if "wandb" in sys.modules:
        import wandb

        if wandb.run is not None:
            wandb.finish()


@hydra.main(version_base="1.3", config_path="conf", config_name="train")
def main(cfg: DictConfig) -> float:
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    hc = HydraConfig.get()
    run_dir = Path(hc.runtime.output_dir)
    multirun = hc.mode == RunMode.MULTIRUN
    try:
        set_threads(cfg.get("threads"), hc.launcher.get("n_jobs") if multirun else None)
        metrics = train(cfg, run_dir)
    except ConfigError as e:
        if multirun:  # one bad job must not stop the sweep
            write_metrics(run_dir, {"status": "failed", "error": str(e)})
            log.error("error: %s", e)
            return DIVERGED_PENALTY
        print(f"error: {e}", file=sys.stderr)  # one line, before any training; SystemExit skips Hydra's report
        sys.exit(2)
    except Exception:
        if multirun:
            log.exception("job failed; the sweep goes on")
            return DIVERGED_PENALTY
        raise
    return objective_value(cfg, metrics)


if __name__ == "__main__":
    from gan_lab.cli import run_hydra_main

    run_hydra_main(main)
