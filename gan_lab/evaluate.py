"""Score generated images: the metrics of a checkpoint, or of any folder / .npz of images, as JSON.

    gan-lab evaluate ckpt=outputs/2026-11-21/12-00-00/checkpoints/last.ckpt
    gan-lab evaluate ckpt=<run dir>/checkpoints/last.ckpt n_samples=10000 n_real=5000 features=digits
    gan-lab evaluate ckpt=... out=fid10k.json overwrite=true
    gan-lab evaluate images=samples/ data=image_folder data.root=~/celeba data.size=64 features=inception
    gan-lab evaluate images=samples.npz reference=real_images/ features=inception names=[fid,kid,is]
    gan-lab evaluate images=samples/ reference_stats=fid_stats_cifar10_train.npz features=inception
    gan-lab evaluate images=real_images/ reference=real_images/ features=inception save_stats=mine.npz
    python -m gan_lab.evaluate ...                                          # the same

A checkpoint: the run is rebuilt from the resolved config next to it (<run dir>/.hydra/config.yaml), the
checkpoint's weights and trick state (the EMA generator) are loaded, `task.generate_samples(n_samples)`
goes through `gan_lab.metrics.evaluate`, and tasks with held-out metrics (AE/VAE reconstruction, pix2pix /
SR / inpainting PSNR, SSIM, L1) add them as `val/<name>`. Defaults are the run's own protocol
(metrics.n_samples, metrics.n_real, metrics.names, metrics.fid.*).

Images from any framework (`images=`: a folder of image files, searched recursively and sorted, or an
`.npz` whose `arr_0` is N x H x W x C or N x C x H x W uint8) are scored by the same protocol against
- `data=<name>` with `data.<key>=<value>` overrides: the first n_real images of that data config's train
  split, as a training run's evaluations use;
- `reference=<folder|.npz>`: all of those images;
- `reference_stats=<file.npz>`: pytorch-fid statistics (`mu`, `sigma`): FID only (the protocol says so).
`save_stats=<file.npz>` writes the reference's statistics in pytorch-fid's format (a new file).

Output: with ckpt=, `<run dir>/eval/<ckpt stem>_n<n_samples>.json` (a free name `..._n<N>_2.json`, ...
when that exists); `out=<path>` writes there and refuses an existing file unless overwrite=true. With
images=, the JSON goes to stdout and to `out=` when given. It holds the metrics as in metrics.json and
`protocol` (feature net and weights hash, resize, sample counts, reference and its fingerprint, gan_lab
version; plus whether the reference statistics came from the disk cache: `reference_cache`). Bad input
exits with one line and code 2, before anything is computed or written.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gan_lab.atomic_io import atomic_write_bytes
from gan_lab.errors import ConfigError

KEYS = {
    "ckpt": "path of <run dir>/checkpoints/<name>.ckpt (this or images= is required)",
    "images": "a folder or .npz of generated images to score instead of a checkpoint",
    "data": "images=: the data config to compare with (train split), e.g. data=image_folder",
    "data.<key>": "images=: overrides of that data config, e.g. data.root=~/celeba data.size=64",
    "reference": "a folder or .npz of reference images (instead of the data's train split)",
    "reference_stats": "a pytorch-fid .npz (mu, sigma) as the reference: FID only",
    "save_stats": "write the reference's statistics to this new .npz (pytorch-fid format)",
    "n_samples": "generated samples (default: the run's metrics.n_samples)",
    "n_real": "reference images from the train split (default: the run's metrics.n_real, else up to 10000)",
    "features": "feature net: digits, mnist, inception or a TorchScript file (default: the run's / the data's)",
    "names": "metrics by name, e.g. [fid,kid,is,prdc] (default: the run's metrics.names, else all that apply)",
    "resize": "into the Inception: legacy_tf or clean (default: the run's metrics.fid.resize, else legacy_tf)",
    "verify_weights": "check the Inception weights' SHA-256 (default true)",
    "out": "JSON path (default: <run dir>/eval/<ckpt stem>_n<n_samples>.json; images=: stdout only)",
    "overwrite": "replace an existing out file (default false)",
    "device": "auto, cpu or cuda (default auto)",
    "threads": "torch CPU threads (default: torch's)",
}
PATH_KEYS = ("ckpt", "out", "images", "reference", "reference_stats", "save_stats")
DEVICES = ("auto", "cpu", "cuda")


@dataclass
class Request:
    ckpt: Path | None
    run_dir: Path | None
    config: Path | None
    n_samples: int | None
    n_real: int | None
    features: str | None
    out: Path | None
    overwrite: bool
    device: str
    threads: int | None
    images: Path | None = None
    data_overrides: list[str] = field(default_factory=list)  # images=: data=<name>, data.<key>=<value>
    reference: Path | None = None
    reference_stats: Path | None = None
    save_stats: Path | None = None
    names: tuple[str, ...] | None = None
    resize: str = "legacy_tf"
    verify_weights: bool = True

    def metric_options(self) -> dict:
        return {"names": self.names, "resize": self.resize, "verify_weights": self.verify_weights}


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
    """A value of key=value: paths and data overrides stay strings; numbers, booleans, lists and null are
    parsed as YAML."""
    if key in PATH_KEYS or key == "data" or key.startswith("data."):
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
        if key not in KEYS and not (key.startswith("data.") and len(key) > 5):
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


def _new_file(args: dict, key: str, suffix: str, overwrite: bool = False) -> Path | None:
    if not args.get(key):
        return None
    path = Path(str(args[key])).expanduser()
    if path.is_dir():
        raise ConfigError(f"{key}={args[key]!r} is a directory; allowed a {suffix} file path")
    if path.exists() and not overwrite:
        raise ConfigError(f"{key}={args[key]!r} already exists; choose another path or pass overwrite=true")
    if suffix == ".npz" and path.suffix != ".npz":
        raise ConfigError(f"{key}={args[key]!r} must end in .npz (pytorch-fid's statistics format)")
    return path


def _existing(args: dict, key: str, what: str) -> Path | None:
    if not args.get(key):
        return None
    path = Path(str(args[key])).expanduser()
    if not path.exists():
        raise ConfigError(f"{key}={args[key]!r} does not exist; allowed {what}")
    return path


def check_request(args: dict) -> Request:
    """Validate everything (files, ranges, output paths, the checkpoint's format, the feature net and its
    weights) before any work."""
    from omegaconf import OmegaConf

    from gan_lab.config import check_checkpoint, check_int
    from gan_lab.metrics.inception import RESIZES
    from gan_lab.metrics.registry import check_names

    images = _existing(args, "images", "a folder of images or an .npz of uint8 images")
    data = [f"{k}={v}" for k, v in args.items() if k == "data" or k.startswith("data.")]
    reference = _existing(args, "reference", "a folder of images or an .npz of uint8 images")
    reference_stats = _existing(args, "reference_stats", "a pytorch-fid .npz with mu and sigma")
    if sum(x is not None and x != [] for x in (data, reference, reference_stats)) > 1:
        raise ConfigError("give one reference: data=<name>, reference=<folder|.npz> or reference_stats=<file.npz>")
    if reference_stats is not None:
        from gan_lab.metrics.fid import load_stats

        load_stats(reference_stats)
    ckpt = run_dir = cfg_path = None
    run_metrics: dict = {}
    if images is not None:
        if args.get("ckpt"):
            raise ConfigError("give ckpt=<checkpoint> or images=<folder|.npz>, not both")
        if not (data or reference or reference_stats):
            raise ConfigError(
                "images= needs a reference: data=<name> [data.<key>=<value> ...], reference=<folder|.npz> "
                "or reference_stats=<file.npz>"
            )
        if data and "data" not in args:
            raise ConfigError(f"{data[0]} needs data=<name> (the data config it overrides)")
        if "n_samples" in args:
            raise ConfigError("n_samples= is for checkpoints; images= scores every image given")
    else:
        if not args.get("ckpt"):
            raise ConfigError(
                "ckpt=<path> is required, e.g. ckpt=outputs/<date>/<time>/checkpoints/last.ckpt (or images=<folder>)"
            )
        if data:
            raise ConfigError("data= is for images=; a checkpoint is compared with its run's own data")
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
            run_metrics = OmegaConf.to_container(OmegaConf.load(cfg_path).get("metrics") or {}, resolve=True)
        except Exception as e:
            first = next((ln.strip() for ln in str(e).splitlines() if ln.strip()), type(e).__name__)
            raise ConfigError(f"run config {cfg_path} is not readable YAML: {first}") from None
        run_dir = ckpt.parent.parent
    run_fid = run_metrics.get("fid") or {}

    n_samples = None
    if ckpt is not None:
        n_samples = args.get("n_samples", run_metrics.get("n_samples", 2000))
        check_int("evaluate", "n_samples", n_samples, 2)
    n_real = args.get("n_real", run_metrics.get("n_real"))
    if n_real is not None:
        check_int("evaluate", "n_real", n_real, 2, extra="null (up to 10000) or ")
    names = check_names(args.get("names", run_metrics.get("names")))
    resize = args.get("resize", run_fid.get("resize", "legacy_tf"))
    if resize not in RESIZES:
        raise ConfigError(f"evaluate: resize={resize!r} is not known; allowed {', '.join(RESIZES)}")
    verify = args.get("verify_weights", run_fid.get("verify_weights", True))
    if not isinstance(verify, bool):
        raise ConfigError(f"evaluate: verify_weights={verify!r} must be a boolean; allowed true, false")
    features = args.get("features", run_fid.get("features"))
    if features is not None:
        from gan_lab.metrics.features import ALLOWED, load_feature_net

        if features not in ALLOWED and not Path(str(features)).suffix:
            raise ConfigError(
                f"evaluate: features={features!r} is not a feature net; allowed {', '.join(ALLOWED)} "
                "or a TorchScript file"
            )
        load_feature_net(str(features), resize=resize, verify_weights=verify)  # a bad weights file: one line here
    elif images is not None and not data:
        raise ConfigError("images= with reference= or reference_stats= needs features=inception, digits, mnist "
                          "or a TorchScript file")  # fmt: skip
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
    save_stats = _new_file(args, "save_stats", ".npz")
    if save_stats is not None and reference_stats is not None:
        raise ConfigError("save_stats= writes the reference's statistics; with reference_stats= they exist already")
    out = _new_file(args, "out", ".json", overwrite)
    if out is None and ckpt is not None:
        out = run_dir / "eval" / f"{ckpt.stem}_n{n_samples}.json"
        if not overwrite:
            out = _free_path(out)
    import os

    for path, key in ((out, "out"), (save_stats, "save_stats")):  # before the evaluation, not after it
        parent = next((p for p in (path.parent, *path.parent.parents) if p.exists()), None) if path else None
        if parent is not None and not os.access(parent, os.W_OK | os.X_OK):
            raise ConfigError(
                f"{key}={str(path)!r} cannot be written ({parent} is not writable); allowed {key}=<a writable path>"
            )
    if ckpt is not None:
        check_checkpoint(ckpt, key="ckpt")
    return Request(
        ckpt, run_dir, cfg_path, n_samples, n_real, None if features is None else str(features), out, overwrite,
        device, threads, images, data, reference, reference_stats, save_stats, names, resize, verify,
    )  # fmt: skip


def load_run(ckpt: Path, device: str = "auto") -> LoadedRun:
    """The data module and task of the run that wrote `ckpt`, rebuilt from its resolved config, with the
    checkpoint's weights and trick state, moved to `device`. No trainer: the task interface takes the data
    module as an argument (`gan_lab.tasks.interface`)."""
    import torch
    from omegaconf import OmegaConf

    from gan_lab.build import build_data_and_task
    from gan_lab.checkpoints import load
    from gan_lab.train import _quiet_lightning

    _quiet_lightning()
    cfg = OmegaConf.load(config_path(ckpt))
    dm, task = build_data_and_task(cfg)

    state = load(ckpt)
    try:
        task.load_state_dict(state["state_dict"])
    except RuntimeError as e:
        first = str(e).strip().splitlines()[0]
        raise ConfigError(f"ckpt={str(ckpt)!r} does not match its run's config ({first})") from None
    task.on_load_checkpoint(state)  # trick state (EMA generator) of GANs
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    task = task.to(device).eval()
    return LoadedRun(cfg, dm, task, int(state.get("global_step", 0)))


def held_out_metrics(task, datamodule) -> dict[str, float]:
    """The task's held-out numbers as its end of training logs them (`val/<name>`); {} for tasks without."""
    return {f"val/{k}": float(v) for k, v in task.held_out_metrics(datamodule).items()}


def evaluate_task(
    task, datamodule, n_samples: int, n_real: int | None = None, feature_net: str | None = None, **metric_kw
):
    """(metrics, protocol, samples): compute_metrics of `task.generate_samples(n_samples)` plus the task's
    held-out metrics (`val/...`); `metric_kw`: names, resize, verify_weights, reference (a
    `gan_lab.metrics.evaluate.Reference` instead of the data's train split)."""
    import torch

    from gan_lab.metrics.evaluate import compute_metrics

    with torch.no_grad():
        samples = task.generate_samples(n_samples, datamodule=datamodule)
    metrics, protocol = compute_metrics(samples, datamodule, n_real=n_real, feature_net=feature_net, **metric_kw)
    held = held_out_metrics(task, datamodule)
    if held:
        protocol = {**protocol, "held_out_split": "val"}
    return {**metrics, **held}, protocol, samples


def load_image_set(path: Path, key: str = "images"):
    """N x C x H x W images in [-1, 1] of a folder of image files (recursive, sorted; 1 channel when the
    first file is greyscale, else RGB) or of an .npz of uint8 images (`arr_0`, NHWC or NCHW)."""
    import numpy as np
    import torch

    from gan_lab.data import images as im

    if path.is_dir():
        files = im.list_images(path, owner=key)
        try:
            grey = im.open_image(files[0]).mode in ("1", "L", "LA", "I", "I;16", "I;16B", "I;16L", "F")
            arrs = [im.load_image(f, channels=1 if grey else 3) for f in files]
        except im.ImageError as e:
            raise ConfigError(f"{key}={str(path)!r}: {e}") from None
        odd = next((f for f, a in zip(files, arrs, strict=True) if a.shape != arrs[0].shape), None)
        if odd is not None:
            raise ConfigError(
                f"{key}={str(path)!r}: {odd.name} is {arrs[files.index(odd)].shape[:2]} but {files[0].name} is "
                f"{arrs[0].shape[:2]}; allowed images of one size"
            )
        arr = np.stack(arrs)
    else:
        try:
            with np.load(path, allow_pickle=False) as f:
                name = "arr_0" if "arr_0" in f.files else (f.files[0] if len(f.files) == 1 else None)
                if name is None:
                    raise ValueError(f"it holds {', '.join(f.files) or 'nothing'}; expected arr_0")
                arr = f[name]
        except Exception as e:
            first = next((ln.strip() for ln in str(e).splitlines() if ln.strip()), type(e).__name__)
            raise ConfigError(f"{key}={str(path)!r} is not an .npz of images ({first})") from None
        if arr.dtype != np.uint8 or arr.ndim != 4 or (arr.shape[-1] not in (1, 3) and arr.shape[1] not in (1, 3)):
            raise ConfigError(
                f"{key}={str(path)!r} holds {arr.dtype} {arr.shape}; "
                "allowed uint8 N x H x W x C or N x C x H x W with C 1 or 3"
            )
    x = torch.from_numpy(np.ascontiguousarray(arr))
    if x.shape[-1] in (1, 3):  # N x H x W x C (folders, gan-lab sample, guided-diffusion); else N x C x H x W
        x = x.permute(0, 3, 1, 2)
    if len(x) < 2:
        raise ConfigError(f"{key}={str(path)!r} holds {len(x)} image; allowed at least 2")
    return x.float() / 127.5 - 1


def data_module(overrides: list[str]):
    """The data module of `data=<name> data.<key>=<value> ...` (the packaged configs), set up for fit."""
    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf

    from gan_lab.build import build
    from gan_lab.cli import one_line
    from gan_lab.config import CONF_DIR

    try:
        with initialize_config_dir(version_base="1.3", config_dir=str(CONF_DIR)):
            cfg = compose("train", overrides=overrides)
    except Exception as e:
        if not type(e).__module__.startswith(("hydra", "omegaconf")):
            raise
        raise ConfigError(one_line(e)) from None
    dm = build(OmegaConf.to_container(cfg.data, resolve=True), "data")
    dm.setup("fit")
    return dm


def _reference(req: Request):
    """The Reference of reference= / reference_stats= (None: the data's train split)."""
    from gan_lab.metrics.evaluate import Reference

    if req.reference_stats is not None:
        return Reference.of_stats_file(req.reference_stats)
    if req.reference is not None:
        return Reference.of_images(load_image_set(req.reference, "reference"), f"folder:{req.reference.name}")
    return None


def _save_stats(req: Request, protocol: dict) -> None:
    """pytorch-fid statistics of the reference the metrics used (from the feature cache: no recomputation)."""
    from gan_lab.metrics import fid as fid_mod

    key = (protocol.get("feature_net_version"), protocol.get("dataset"), protocol.get("reference_split"),
           protocol.get("n_reference"), protocol.get("reference_fingerprint"))  # fmt: skip
    stats = fid_mod._MEMO.get(key)
    if stats is None:
        raise ConfigError("save_stats= needs image metrics with a feature net; these samples had none")
    if req.save_stats.exists():
        raise ConfigError(f"save_stats={str(req.save_stats)!r} appeared while evaluating; nothing was replaced")
    fid_mod.save_stats(req.save_stats, stats.mu, stats.sigma)
    protocol["saved_stats"] = req.save_stats.name


def evaluate(req: Request) -> dict:
    """Load, evaluate, write req.out (and req.save_stats); returns the result."""
    from gan_lab.train import set_threads

    set_threads(req.threads)
    reference = _reference(req)
    if req.images is not None:
        result = _evaluate_images(req, reference)
    else:
        run = load_run(req.ckpt, req.device)
        kw = req.metric_options()
        if reference is not None:
            kw["reference"] = reference
        metrics, protocol, _ = evaluate_task(run.task, run.datamodule, req.n_samples, req.n_real, req.features, **kw)
        result = {
            **metrics,
            "steps": run.step,
            "checkpoint": str(req.ckpt),
            "protocol": {**protocol, "step": run.step, "checkpoint": str(req.ckpt), "n_requested": req.n_samples},
        }
    if req.save_stats is not None:
        _save_stats(req, result["protocol"])
    if req.out is not None:
        if req.out.exists() and not req.overwrite:  # appeared while evaluating: still never overwrite
            req.out = _free_path(req.out)
        data = json.dumps(result, indent=2, sort_keys=True, default=float).encode()
        atomic_write_bytes(req.out, data, "evaluation")
    return result


def _evaluate_images(req: Request, reference) -> dict:
    from gan_lab.metrics.evaluate import compute_metrics, score

    samples = load_image_set(req.images, "images")
    if reference is None:
        dm = data_module(req.data_overrides)
        metrics, protocol = compute_metrics(samples, dm, n_real=req.n_real, feature_net=req.features,
                                            **req.metric_options())  # fmt: skip
    else:
        metrics, protocol = score(samples, reference, feature_net=req.features, **req.metric_options())
    return {**metrics, "protocol": {**protocol, "images": str(req.images)}}


def main(argv: list[str] | None = None) -> int:
    from gan_lab.cli import run_command

    keys = "\n".join(f"  {k:<16} {v}" for k, v in KEYS.items())
    return run_command(_main, argv, f"{__doc__.strip()}\n\nkeys:\n{keys}")


def _main(argv: list[str]) -> int:
    req = check_request(parse_args(argv))
    result = evaluate(req)
    shown = result if req.images is not None else {k: v for k, v in result.items() if k != "protocol"}
    print(json.dumps(shown, indent=2, sort_keys=True, default=float))
    if req.out is not None:
        print(f"wrote {req.out}", file=sys.stderr)
    if req.save_stats is not None:
        print(f"wrote {req.save_stats}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
