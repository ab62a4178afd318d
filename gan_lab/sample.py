"""Write generated images of a checkpoint: PNG files or one `.npz` of uint8 images. No data set, no logger.

    gan-lab sample ckpt=outputs/<date>/<time>/checkpoints/last.ckpt n=50000 out=samples/      # PNGs
    gan-lab sample ckpt=... n=50000 out=samples.npz batch_size=1000                          # one .npz
    gan-lab sample ckpt=... n=100 out=sevens/ labels=7          # class-conditional models: labels=<k>|all|[..]
    python -m gan_lab.sample ...                                                             # the same

The generator is rebuilt from the run config next to the checkpoint (<run dir>/.hydra/config.yaml: only
the model section is read) and the shapes saved in the checkpoint; its weights and trick state are loaded,
so the EMA generator samples when the run used EMA. Samples come from `task.generate_samples(n, ...)`,
the stream `gan-lab evaluate ckpt=` and the training run's evaluations score: `gan-lab evaluate images=`
of these files gives the checkpoint's own numbers (same n, seed and batch_size).

Output (never overwrites: an existing `out` is refused; files are written under a temporary name and
renamed when complete):
- a directory: 000000.png, 000001.png, ... (8-bit greyscale or RGB);
- `<file>.npz`: `arr_0` N x H x W x C uint8 (the layout of OpenAI's guided-diffusion evaluator and
  clean-fid), plus `arr_1` the class labels of a class-conditional model.
Images in [-1, 1] become round((x + 1) * 127.5), clipped to 0..255.

Keys: ckpt (required), n (default 50000), out (required), batch_size (500), seed (12345), labels,
truncation (only for generators that take it), device (auto|cpu|cuda), threads.
"""

from __future__ import annotations

import inspect
import os
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

from gan_lab.errors import ConfigError

KEYS = {
    "ckpt": "path of <run dir>/checkpoints/<name>.ckpt (required)",
    "n": "number of images (default 50000)",
    "out": "a new directory (PNGs) or a new .npz file (required)",
    "batch_size": "images per generator call (default 500)",
    "seed": "seed of the sampling stream (default 12345, as gan-lab evaluate)",
    "labels": "class-conditional models: a class k, all, or a list [k1,k2,...] of n classes",
    "truncation": "truncation of the latent, for generators that support it",
    "device": "auto, cpu or cuda (default auto)",
    "threads": "torch CPU threads (default: torch's)",
}
DEVICES = ("auto", "cpu", "cuda")


@dataclass
class Request:
    ckpt: Path
    n: int
    out: Path
    batch_size: int
    seed: int
    labels: object
    truncation: float | None
    device: str
    threads: int | None


def parse_args(argv: list[str], keys: dict = KEYS, paths: tuple = ("ckpt", "out")) -> dict:
    """key=value arguments; values parsed as YAML except paths; one line for anything else."""
    import yaml

    args: dict = {}
    for arg in argv:
        key, sep, value = arg.partition("=")
        if not sep or not key:
            raise ConfigError(f"argument {arg!r} is not key=value; allowed keys: {', '.join(keys)}")
        if key not in keys and not any(k.endswith(".") and key.startswith(k) for k in keys):
            raise ConfigError(f"unknown key {key!r}; allowed keys: {', '.join(keys)}")
        if key in args:
            raise ConfigError(f"{key} is given twice; give each key once")
        if key in paths or value == "":
            args[key] = value if key in paths else None
            continue
        try:
            args[key] = yaml.safe_load(value)
        except yaml.YAMLError:
            args[key] = value
    return args


def check_output(out_arg, key: str = "out") -> Path:
    """A new directory or .npz path: an existing one is refused (never overwritten)."""
    if not out_arg:
        raise ConfigError(f"{key}=<dir|file.npz> is required, e.g. {key}=samples/ or {key}=samples.npz")
    out = Path(str(out_arg)).expanduser()
    if out.exists():
        raise ConfigError(f"{key}={str(out_arg)!r} already exists; allowed a new directory or .npz path")
    if out.suffix and out.suffix != ".npz":
        raise ConfigError(f"{key}={str(out_arg)!r} has suffix {out.suffix!r}; allowed a directory or a .npz file")
    return out


def check_request(args: dict) -> Request:
    from gan_lab.config import check_checkpoint, check_int, check_number
    from gan_lab.evaluate import config_path

    if not args.get("ckpt"):
        raise ConfigError("ckpt=<path> is required, e.g. ckpt=outputs/<date>/<time>/checkpoints/last.ckpt")
    ckpt = Path(str(args["ckpt"])).expanduser()
    if not ckpt.is_file():
        raise ConfigError(f"ckpt={args['ckpt']!r} does not exist; allowed a .ckpt file of a run directory")
    if not config_path(ckpt).is_file():
        raise ConfigError(
            f"ckpt={args['ckpt']!r} has no run config at {config_path(ckpt)}; the checkpoint must lie in "
            "<run dir>/checkpoints/ next to <run dir>/.hydra/config.yaml (the run directory gan_lab.train wrote)"
        )
    n = check_int("sample", "n", args.get("n", 50_000), 1)
    batch_size = check_int("sample", "batch_size", args.get("batch_size", 500), 1)
    seed = check_int("sample", "seed", args.get("seed", 12345), 0)
    truncation = args.get("truncation")
    if truncation is not None:
        check_number("sample", "truncation", truncation, 0.0, None, low_open=True)
    device = args.get("device", "auto")
    if device not in DEVICES:
        raise ConfigError(f"sample: device={device!r} is not known; allowed {', '.join(DEVICES)}")
    if device == "cuda":
        import torch

        if not torch.cuda.is_available():
            raise ConfigError("sample: device=cuda but no CUDA device is available; allowed auto, cpu")
    threads = args.get("threads")
    if threads is not None:
        check_int("sample", "threads", threads, 1, extra="null or ")
    out = check_output(args.get("out"))
    check_checkpoint(ckpt, key="ckpt")
    return Request(ckpt, n, out, batch_size, seed, args.get("labels"), truncation, device, threads)


def load_task(ckpt: Path, device: str = "auto"):
    """The task of `ckpt` with its weights and trick state (EMA), in eval mode on `device`, built from the
    run config's model section and the shapes saved in the checkpoint: no data module, no trainer."""
    import torch
    from omegaconf import OmegaConf

    from gan_lab.build import build
    from gan_lab.checkpoints import hyperparameters, load_file
    from gan_lab.evaluate import config_path

    cfg = OmegaConf.load(config_path(ckpt))
    members = cfg.get("seeds")
    if members:  # a seed-parallel run's own checkpoint holds every member at once
        from gan_lab.ensemble import members_refusal

        raise members_refusal(members, f"ckpt={str(ckpt)!r}")
    state = load_file(ckpt, "ckpt", "a .ckpt written by gan_lab (<run dir>/checkpoints/*.ckpt)")
    hp = hyperparameters(state)
    extra = {k: hp[k] for k in ("data_shape", "condition_shape", "tricks", "class_counts") if k in hp}
    task = build(OmegaConf.to_container(cfg.model, resolve=True), "model", **extra)
    try:
        task.load_state_dict(state["state_dict"])
    except RuntimeError as e:
        first = str(e).strip().splitlines()[0]
        raise ConfigError(f"ckpt={str(ckpt)!r} does not match its run's config ({first})") from None
    task.on_load_checkpoint(state)
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    return task.to(device).eval(), int(state.get("global_step", 0))


def generation_kwargs(task, n: int, labels_spec=None, truncation=None, batch_size: int = 500, seed: int = 12345):
    """Keyword arguments of `task.generate_samples` for `gan-lab sample`/`evaluate`: labels for a class-
    conditional task (one line when given to an unconditional one), truncation when the generator has it."""
    kw = {"batch_size": batch_size, "seed": seed}
    params = inspect.signature(task.generate_samples).parameters
    if labels_spec is not None:
        from gan_lab.tasks.gan import labels_for

        labels = labels_for(labels_spec, task.num_classes, n)
        if len(labels) != n:
            raise ConfigError(f"labels= gives {len(labels)} classes for n={n}; allowed one class, all, or n classes")
        kw["labels"] = labels
    if truncation is not None:
        if "truncation" not in params:
            raise ConfigError(
                f"truncation={truncation} is not supported by this model's generator ({type(task).__name__}); "
                "allowed only for generators whose generate_samples takes truncation"
            )
        kw["truncation"] = truncation
    return kw


def to_uint8(images):
    """N x C x H x W in [-1, 1] to N x H x W x C uint8 (numpy): round((x + 1) * 127.5)."""
    import torch

    from gan_lab.metrics.inception import to_uint8_values

    return to_uint8_values(images).to(torch.uint8).permute(0, 2, 3, 1).numpy()


def write_images(images, out: Path, labels=None, progress: bool = True) -> None:
    """PNGs into the new directory `out`, or one .npz; written under a temporary name, then renamed."""
    import numpy as np
    from PIL import Image

    arr = to_uint8(images)
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    out.parent.mkdir(parents=True, exist_ok=True)
    try:
        if out.suffix == ".npz":
            with open(tmp, "wb") as f:
                np.savez(f, arr_0=arr, **({} if labels is None else {"arr_1": labels.cpu().numpy()}))
        else:
            tmp.mkdir()
            digits = max(6, len(str(len(arr) - 1)))
            for i in _progress(range(len(arr)), "writing PNGs", progress):
                a = arr[i]
                Image.fromarray(a[..., 0] if a.shape[-1] == 1 else a).save(tmp / f"{i:0{digits}d}.png")
        if out.exists():
            raise ConfigError(f"out={str(out)!r} appeared while sampling; nothing was replaced")
        os.replace(tmp, out)
    finally:
        if tmp.is_dir():
            shutil.rmtree(tmp, ignore_errors=True)
        elif tmp.exists():
            tmp.unlink()


def _progress(it, description: str, enabled: bool):
    if not enabled:
        return it
    from rich.progress import track

    return track(it, description=description, console=_stderr_console(), transient=True)


def _stderr_console():
    from rich.console import Console

    return Console(stderr=True)


def sample(req: Request, progress: bool = True) -> dict:
    """Generate and write; returns a summary."""
    from gan_lab.train import set_threads

    set_threads(req.threads)
    task, step = load_task(req.ckpt, req.device)
    kind = task.data_kind  # the task interface (gan_lab.tasks.interface)
    if kind != "image":
        raise ConfigError(f"sample writes generated images; this checkpoint's task makes {kind} samples")
    kw = generation_kwargs(task, req.n, req.labels, req.truncation, req.batch_size, req.seed)
    console = _stderr_console()
    with console.status(f"generating {req.n} samples", spinner="dots") if progress else _null():
        images = task.generate_samples(req.n, **kw)
    if images.dim() != 4 or images.shape[1] not in (1, 3):
        raise ConfigError(
            f"sample writes 1- or 3-channel images; this model generates {tuple(images.shape[1:])} samples"
        )
    write_images(images, req.out, kw.get("labels"), progress)
    return {"out": str(req.out), "n": req.n, "shape": list(images.shape[1:]), "step": step, "seed": req.seed}


class _null:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def main(argv: list[str] | None = None) -> int:
    from gan_lab.cli import run_command

    keys = "\n".join(f"  {k:<11} {v}" for k, v in KEYS.items())
    return run_command(_main, argv, f"{__doc__.strip()}\n\nkeys:\n{keys}")


def _main(argv: list[str]) -> int:
    req = check_request(parse_args(argv))
    result = sample(req, progress=sys.stderr.isatty())
    print(f"wrote {result['n']} images {result['shape']} of step {result['step']} to {result['out']}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
