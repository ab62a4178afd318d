"""Recompute the metrics of a checkpoint and write them as JSON.

    python -m gan_lab.evaluate ckpt=outputs/2026-11-21/12-00-00/checkpoints/last.ckpt
    python -m gan_lab.evaluate ckpt=<run dir>/checkpoints/last.ckpt n_samples=10000 n_real=5000 features=digits
    gan-lab evaluate ckpt=... out=fid10k.json overwrite=true               # the same through the CLI

The run is rebuilt from the resolved config next to the checkpoint (<run dir>/.hydra/config.yaml), the
checkpoint's weights (and trick state: the EMA generator) are loaded, `task.generate_samples(n_samples)`
goes through `gan_lab.metrics.evaluate.compute_metrics`, and tasks with held-out metrics (AE/VAE
reconstruction, pix2pix / SR / inpainting PSNR, SSIM, L1) add them as `val/<name>`. Defaults are the
run's own protocol (metrics.n_samples, metrics.n_real, metrics.fid.features).

Output: `<run dir>/eval/<ckpt stem>_n<n_samples>.json` (a free name `..._n<N>_2.json`, ... when that
exists; `out=<path>` writes there and refuses an existing file unless overwrite=true). It holds the
metrics as in metrics.json, `steps`, `checkpoint`, and `protocol` (as in metrics.json, plus whether the
reference statistics came from the disk cache: `reference_cache`). Bad input exits with one line and code 2.
"""

from __future__ import annotations

import json
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gan_lab.errors import ConfigError

KEYS = {
    "ckpt": "path of <run dir>/checkpoints/<name>.ckpt (required)",
    "n_samples": "generated samples (default: the run's metrics.n_samples)",
    "n_real": "reference images from the train split (default: the run's metrics.n_real)",
    "features": "feature net: digits, mnist, inception (default: the run's metrics.fid.features)",
    "out": "JSON path (default: <run dir>/eval/<ckpt stem>_n<n_samples>.json)",
    "overwrite": "replace an existing out file (default false)",
    "device": "auto, cpu or cuda (default auto)",
    "threads": "torch CPU threads (default: torch's)",
}
DEVICES = ("auto", "cpu", "cuda")


@dataclass
class Request:
    ckpt: Path
    run_dir: Path
    config: Path
    n_samples: int
    n_real: int | None
    features: str | None
    out: Path
    overwrite: bool
    device: str
    threads: int | None


@dataclass
class LoadedRun:
    cfg: Any  # the run's resolved DictConfig
    datamodule: Any
    task: Any  # LightningModule with the checkpoint's weights, on `device`, attached to a bare Trainer
    step: int  # global_step of the checkpoint


def config_path(ckpt: Path) -> Path:
    """<run dir>/.hydra/config.yaml for <run dir>/checkpoints/<name>.ckpt."""
    return ckpt.parent.parent / ".hydra" / "config.yaml"


def _typed(key: str, text: str):
    """A value of key=value: paths stay strings; numbers, booleans and null are parsed as YAML."""
    if key in ("ckpt", "out"):
        return text
    import yaml

    try:
        return yaml.safe_load(text) if text != "" else None
    except yaml.YAMLError:
        return text


def parse_args(argv: list[str]) -> dict:
    args: dict = {}
    for arg in argv:
        key, sep, value = arg.partition("=")
        if not sep or not key:
            raise ConfigError(f"argument {arg!r} is not key=value; allowed keys: {', '.join(KEYS)}")
        if key not in KEYS:
            raise ConfigError(f"unknown key {key!r}; allowed keys: {', '.join(KEYS)}")
        if key in args:
            raise ConfigError(f"{key} is given twice; give each key once")
        args[key] = _typed(key, value)
    return args


def _free_path(path: Path) -> Path:
    """`path`, or the first of path_2, path_3, ... that does not exist."""
    i = 2
    candidate = path
    while candidate.exists():
        candidate = path.with_name(f"{path.stem}_{i}{path.suffix}")
        i += 1
    return candidate


def check_request(args: dict) -> Request:
    """Validate everything (files, ranges, output path, the checkpoint's format) before any work."""
    from omegaconf import OmegaConf

    from gan_lab.config import check_checkpoint, check_int

    if not args.get("ckpt"):
        raise ConfigError("ckpt=<path> is required, e.g. ckpt=outputs/<date>/<time>/checkpoints/last.ckpt")
    ckpt = Path(str(args["ckpt"])).expanduser()
    if not ckpt.is_file():
        raise ConfigError(f"ckpt={args['ckpt']!r} does not exist; allowed a .ckpt file of a run directory")
    cfg_path = config_path(ckpt)
    if not cfg_path.is_file():
        raise ConfigError(
            f"ckpt={args['ckpt']!r} has no run config at {cfg_path}; the checkpoint must lie in "
            "<run dir>/checkpoints/ next to <run dir>/.hydra/config.yaml (the run directory gan_lab.train wrote)"
        )
    try:
        run_metrics = OmegaConf.load(cfg_path).get("metrics") or {}
    except Exception as e:
        first = next((ln.strip() for ln in str(e).splitlines() if ln.strip()), type(e).__name__)
        raise ConfigError(f"run config {cfg_path} is not readable YAML: {first}") from None

    n_samples = args.get("n_samples", run_metrics.get("n_samples", 2000))
    check_int("evaluate", "n_samples", n_samples, 2)
    n_real = args.get("n_real", run_metrics.get("n_real"))
    if n_real is not None:
        check_int("evaluate", "n_real", n_real, 2, extra="null (up to 10000) or ")
    features = args.get("features", (run_metrics.get("fid") or {}).get("features"))
    if features is not None:
        from gan_lab.metrics.features import ALLOWED, load_feature_net

        if features not in ALLOWED:
            raise ConfigError(f"evaluate: features={features!r} is not a feature net; allowed {', '.join(ALLOWED)}")
        load_feature_net(features)  # inception without torch-fidelity or its weights: one line here
    overwrite = args.get("overwrite", False)
    if not isinstance(overwrite, bool):
        raise ConfigError(f"evaluate: overwrite={overwrite!r} must be a boolean; allowed true, false")
    device = args.get("device", "auto")
    if device not in DEVICES:
        raise ConfigError(f"evaluate: device={device!r} is not known; allowed {', '.join(DEVICES)}")
    threads = args.get("threads")
    if threads is not None:
        check_int("evaluate", "threads", threads, 1, extra="null or ")
    if device == "cuda":
        import torch

        if not torch.cuda.is_available():
            raise ConfigError("evaluate: device=cuda but no CUDA device is available; allowed auto, cpu")

    run_dir = ckpt.parent.parent
    if args.get("out"):
        out = Path(str(args["out"])).expanduser()
        if out.exists() and not overwrite:
            raise ConfigError(f"out={args['out']!r} already exists; choose another path or pass overwrite=true")
        if out.is_dir():
            raise ConfigError(f"out={args['out']!r} is a directory; allowed a .json file path")
    else:
        out = run_dir / "eval" / f"{ckpt.stem}_n{n_samples}.json"
        if not overwrite:
            out = _free_path(out)
    check_checkpoint(ckpt, key="ckpt")
    return Request(ckpt, run_dir, cfg_path, n_samples, n_real, features, out, overwrite, device, threads)


def load_run(ckpt: Path, device: str = "auto") -> LoadedRun:
    """The data module and task of the run that wrote `ckpt`, rebuilt from its resolved config, with the
    checkpoint's weights and trick state, moved to `device`. The task is attached to a bare one-process
    Trainer (no loggers, no callbacks) whose `datamodule` is set, so task code that reads
    `self.trainer.datamodule` works."""
    import torch
    from omegaconf import OmegaConf

    from gan_lab.train import _quiet_lightning, build_objects

    _quiet_lightning()
    cfg = OmegaConf.load(config_path(ckpt))
    cfg.logger, cfg.callbacks = None, None
    # one process, no accelerator settings of the run (DDP on 8 GPUs, precision): nothing is fitted here
    cfg.trainer = {"_target_": "pytorch_lightning.Trainer", "accelerator": "cpu", "devices": 1,
                   "enable_progress_bar": False, "enable_model_summary": False}  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        dm, task, trainer = build_objects(cfg, Path(tmp))
    trainer.loggers = []  # build_objects' always-on CSV logger pointed into the temporary directory
    state = torch.load(ckpt, map_location="cpu", weights_only=True)
    try:
        task.load_state_dict(state["state_dict"])
    except RuntimeError as e:
        first = str(e).strip().splitlines()[0]
        raise ConfigError(f"ckpt={str(ckpt)!r} does not match its run's config ({first})") from None
    task.on_load_checkpoint(state)  # trick state (EMA generator) of GANs
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    task = task.to(device).eval()
    trainer.datamodule = dm
    task.trainer = trainer
    return LoadedRun(cfg, dm, task, int(state.get("global_step", 0)))


def held_out_metrics(task, datamodule) -> dict[str, float]:
    """The task's held-out numbers as its end of training logs them (`val/<name>`); {} for tasks without."""
    fn = getattr(task, "held_out_metrics", None)
    return {} if fn is None else {f"val/{k}": float(v) for k, v in fn(datamodule).items()}


def evaluate_task(task, datamodule, n_samples: int, n_real: int | None = None, feature_net: str | None = None):
    """(metrics, protocol, samples): compute_metrics of `task.generate_samples(n_samples)` plus the task's
    held-out metrics (`val/...`)."""
    import torch

    from gan_lab.metrics.evaluate import compute_metrics

    with torch.no_grad():
        samples = task.generate_samples(n_samples)
    metrics, protocol = compute_metrics(samples, datamodule, n_real=n_real, feature_net=feature_net)
    held = held_out_metrics(task, datamodule)
    if held:
        protocol = {**protocol, "held_out_split": "val"}
    return {**metrics, **held}, protocol, samples


def evaluate(req: Request) -> dict:
    """Load, evaluate, write req.out; returns what was written."""
    from gan_lab.train import set_threads

    set_threads(req.threads)
    run = load_run(req.ckpt, req.device)
    metrics, protocol, _ = evaluate_task(run.task, run.datamodule, req.n_samples, req.n_real, req.features)
    result = {
        **metrics,
        "steps": run.step,
        "checkpoint": str(req.ckpt),
        "protocol": {**protocol, "step": run.step, "checkpoint": str(req.ckpt), "n_requested": req.n_samples},
    }
    req.out.parent.mkdir(parents=True, exist_ok=True)
    if req.out.exists() and not req.overwrite:  # appeared while evaluating: still never overwrite
        req.out = _free_path(req.out)
    tmp = req.out.with_name(req.out.name + ".tmp")
    tmp.write_text(json.dumps(result, indent=2, sort_keys=True, default=float))
    tmp.replace(req.out)
    return result


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in ("-h", "--help"):
        print(__doc__.strip() + "\n\nkeys:\n" + "\n".join(f"  {k:<10} {v}" for k, v in KEYS.items()))
        return 0
    try:
        req = check_request(parse_args(argv))
        result = evaluate(req)
    except ConfigError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    shown = {k: v for k, v in result.items() if k != "protocol"}
    print(json.dumps(shown, indent=2, sort_keys=True, default=float))
    print(f"wrote {req.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
