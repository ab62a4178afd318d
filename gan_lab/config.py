"""Validation of the composed config, before anything is built or trained.

Constructors validate their own parameters (gan_lab.build reports unknown ones); this module checks
what crosses objects or is plain data in the config: top-level keys, types and ranges of plain numbers
(seed, threads, trainer steps, batch size, metrics sizes), optimizer settings, logger modes and
credentials, and that a checkpoint to resume from is readable.
Every failure is a ConfigError with one line naming the key, the bad value and what is allowed, in the
style of `check_range`: "<owner>: <key>=<value> is out of range; allowed [a, b]".
"""

from __future__ import annotations

import math
import os
from functools import cache
from pathlib import Path

from omegaconf import DictConfig, ListConfig

from gan_lab.errors import ConfigError, check_range

CONF_DIR = Path(__file__).resolve().parent / "conf"
# Top-level keys of conf/train.yaml and its groups (the file is read too, so new keys there are allowed).
TOP_LEVEL = (
    "callbacks",
    "ckpt_path",
    "data",
    "hydra",
    "logger",
    "metrics",
    "model",
    "objective",
    "overwrite",
    "seed",
    "sweep_name",
    "threads",
    "trainer",
    "trick",
)
OPTIMIZER_KEYS = ("name", "lr", "betas", "eps", "weight_decay", "amsgrad", "fused")  # fused: Adam's one-kernel step
WANDB_MODES = ("online", "offline", "disabled")
ACCELERATORS = ("auto", "cpu", "gpu", "cuda", "mps")
SEED_MAX = 2**32 - 1  # numpy's limit, which pl.seed_everything enforces by falling back to a random seed
NET_INT_KEYS = ("z_dim", "ngf", "ndf", "n_layers", "n_blocks")  # integer sizes of the nets, where present
CHECKPOINT_INT_KEYS = ("every_n_train_steps", "every_n_epochs", "save_top_k")


def validate(cfg: DictConfig) -> None:
    _top_level(cfg)
    _model(cfg.get("model") or {})
    _data(cfg.get("data"))
    _trainer(cfg.get("trainer"))
    _callbacks(cfg.get("callbacks"))
    _tricks(cfg.get("trick"))
    _metrics(cfg.get("metrics"))
    _loggers(cfg.get("logger"))
    ckpt = cfg.get("ckpt_path")
    if ckpt not in (None, "", "last") and Path(str(ckpt)).expanduser().is_file():
        check_checkpoint(ckpt)  # a missing file is reported by gan_lab.train.resolve_ckpt


# ---- small checks -----------------------------------------------------------------------------------
def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def check_int(owner: str, name: str, value, low=None, high=None, extra: str = ""):
    """`value` must be an integer in [low, high]; `extra` names further allowed values ("-1 (no limit) or ")."""
    allowed = extra + ("(-inf" if low is None else f"[{low}") + ", " + ("inf)" if high is None else f"{high}]")
    if not _is_int(value):
        raise ConfigError(f"{owner}: {name}={value!r} must be an integer; allowed {allowed}")
    if (low is not None and value < low) or (high is not None and value > high):
        raise ConfigError(f"{owner}: {name}={value!r} is out of range; allowed {allowed}")
    return value


def check_number(owner: str, name: str, value, low=None, high=None, low_open=False, high_open=False):
    """check_range that also rejects NaN (every comparison with NaN is false, so check_range passes it)
    and names the allowed range when the value is not a number."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value):
        lo = "(-inf" if low is None else ("(" if low_open else "[") + f"{low}"
        hi = "inf)" if high is None else f"{high}" + (")" if high_open else "]")
        raise ConfigError(f"{owner}: {name}={value!r} must be a number; allowed {lo}, {hi}")
    return check_range(owner, name, value, low, high, low_open=low_open, high_open=high_open)


def _check_bool(owner: str, name: str, value) -> None:
    if not isinstance(value, bool):
        raise ConfigError(f"{owner}: {name}={value!r} must be a boolean; allowed true, false")


def _check_str(name: str, value) -> None:
    if value is not None and not isinstance(value, str):
        raise ConfigError(f"{name}={value!r} must be a string or null")


# ---- sections ---------------------------------------------------------------------------------------
@cache
def allowed_top_level() -> tuple[str, ...]:
    """TOP_LEVEL plus the keys of conf/train.yaml (and its defaults groups) and of the `@package _global_`
    presets (experiment, sweep), so a key added there later is allowed without editing this module."""
    keys = set(TOP_LEVEL)
    try:
        from omegaconf import OmegaConf

        train = OmegaConf.load(CONF_DIR / "train.yaml")
        keys |= {str(k) for k in train if k != "defaults"}
        for entry in train.get("defaults", []):
            if isinstance(entry, DictConfig):  # group names; `optional experiment` is a _global_ preset
                keys |= {str(k).split("@")[0] for k in entry if " " not in str(k)}
        for path in CONF_DIR.glob("*/*.yaml"):
            text = path.read_text()
            if text.lstrip().startswith("# @package _global_"):
                keys |= {str(k) for k in OmegaConf.create(text) if k != "defaults"}
    except Exception:  # an unreadable preset is Hydra's error to report, not this one's
        pass
    return tuple(sorted(keys))


def _top_level(cfg: DictConfig) -> None:
    allowed = allowed_top_level()
    unknown = sorted(str(k) for k in cfg if str(k) not in allowed)
    if unknown:
        raise ConfigError(f"unknown top-level key {unknown[0]!r}; allowed {', '.join(allowed)}")
    seed = cfg.get("seed")
    if not _is_int(seed):
        raise ConfigError(f"seed={seed!r} must be an integer; allowed [0, {SEED_MAX}]")
    if not 0 <= seed <= SEED_MAX:
        raise ConfigError(f"seed={seed} is out of range; allowed [0, {SEED_MAX}]")
    threads = cfg.get("threads")
    if threads is not None and (not _is_int(threads) or threads < 1):
        raise ConfigError(f"threads={threads!r} must be a positive integer or null; allowed null or [1, inf)")
    overwrite = cfg.get("overwrite", False)
    if not isinstance(overwrite, bool):
        raise ConfigError(f"overwrite={overwrite!r} must be a boolean; allowed true, false")
    for key in ("objective", "sweep_name", "ckpt_path"):
        _check_str(key, cfg.get(key))


def _model(model) -> None:
    for key in ("g_optimizer", "d_optimizer", "optimizer"):
        opt = model.get(key)
        if opt is None:
            continue
        owner = f"model.{key}"
        if not isinstance(opt, (dict, DictConfig)):
            raise ConfigError(f"{owner}={opt!r} must be a mapping like {{lr: 2.0e-4, betas: [0.5, 0.999]}}")
        unknown = sorted(str(k) for k in opt if k not in OPTIMIZER_KEYS)
        if unknown:
            raise ConfigError(f"{owner}: unknown parameter {unknown[0]!r}; allowed {', '.join(OPTIMIZER_KEYS)}")
        check_number(owner, "lr", opt.get("lr"), 0.0, 1.0, low_open=True)
        betas = opt.get("betas")
        if betas is not None:
            if not isinstance(betas, (list, tuple, ListConfig)) or len(betas) != 2:
                shown = list(betas) if isinstance(betas, ListConfig) else betas
                raise ConfigError(f"{owner}.betas={shown!r} must be two numbers in [0, 1)")
            for b in betas:
                check_number(owner, "betas", b, 0.0, 1.0, high_open=True)
        if opt.get("eps") is not None:
            check_number(owner, "eps", opt.get("eps"), 0.0, 1.0, low_open=True)
        if opt.get("weight_decay") is not None:
            check_number(owner, "weight_decay", opt.get("weight_decay"), 0.0, 1.0)
        if opt.get("amsgrad") is not None:
            _check_bool(owner, "amsgrad", opt.get("amsgrad"))
    clip = model.get("grad_clip")
    if clip is not None:
        check_number("model", "grad_clip", clip, 0.0)
    for net in ("generator", "discriminator"):
        spec = model.get(net)
        for key in NET_INT_KEYS if isinstance(spec, (dict, DictConfig)) else ():
            if spec.get(key) is not None:
                check_int(f"model.{net}", key, spec.get(key), 0 if key.startswith("n_") else 1)


def _data(data) -> None:
    if not data:
        return
    if "batch_size" in data:
        check_int("data", "batch_size", data.get("batch_size"), 1)
    if "val_fraction" in data:
        check_number("data", "val_fraction", data.get("val_fraction"), 0.0, 1.0, high_open=True)


def _trainer(trainer) -> None:
    if not trainer:
        return
    owner = "trainer"
    if trainer.get("max_steps") is not None:  # Lightning: -1 = no limit (then max_epochs bounds the run)
        steps = trainer.get("max_steps")
        if steps != -1 or not _is_int(steps):
            check_int(owner, "max_steps", steps, 1, extra="-1 (no limit) or ")
    if trainer.get("max_epochs") is not None:
        epochs = trainer.get("max_epochs")
        if epochs != -1 or not _is_int(epochs):
            check_int(owner, "max_epochs", epochs, 1, extra="-1 (no limit), null or ")
    if trainer.get("log_every_n_steps") is not None:
        check_int(owner, "log_every_n_steps", trainer.get("log_every_n_steps"), 0)
    devices = trainer.get("devices")
    if _is_int(devices) and devices != -1:
        check_int(owner, "devices", devices, 1, extra="'auto', -1 (all) or ")
    accelerator = trainer.get("accelerator")
    if isinstance(accelerator, str) and accelerator not in ACCELERATORS:
        raise ConfigError(f"{owner}: accelerator={accelerator!r} is not known; allowed {', '.join(ACCELERATORS)}")
    _accelerator_available(accelerator)
    processes = [v for v in (devices, trainer.get("num_nodes")) if _is_int(v)]
    strategy = trainer.get("strategy")
    if any(v > 1 for v in processes) and strategy in (None, "auto"):
        raise ConfigError(
            f"{owner}: devices={devices!r} num_nodes={trainer.get('num_nodes', 1)!r} start several processes, which "
            "needs trainer=ddp (gan_lab's data-parallel setup); allowed trainer.devices=1, or trainer=ddp "
            f"trainer.devices={devices!r}"
        )
    precision = trainer.get("precision")
    from gan_lab._lightning_compat import precision_names

    allowed = precision_names()
    if precision is not None and allowed and str(precision) not in allowed:
        raise ConfigError(f"{owner}: precision={precision!r} is not known; allowed {', '.join(allowed)}")


def _accelerator_available(accelerator) -> None:
    """accelerator=gpu/cuda/mps on a machine without one: one line instead of Lightning's traceback."""
    import torch

    if accelerator in ("gpu", "cuda") and not torch.cuda.is_available():
        have = "mps" if torch.backends.mps.is_available() else "cpu"
        raise ConfigError(
            f"trainer: accelerator={accelerator!r} but torch sees no CUDA GPU here (torch {torch.__version__}); "
            f"allowed auto, {have}"
        )
    if accelerator == "mps" and not torch.backends.mps.is_available():
        raise ConfigError("trainer: accelerator='mps' but MPS is not available here; allowed auto, cpu")


@cache
def _trick_defaults(name: str) -> dict:
    from omegaconf import OmegaConf

    path = CONF_DIR / "trick" / f"{name}.yaml"
    try:
        node = OmegaConf.to_container(OmegaConf.load(path)) if path.is_file() else {}
    except Exception:  # an unreadable file is Hydra's error to report
        return {}
    node = node.get(name, node) if isinstance(node, dict) else {}  # the file nests its parameters under its name
    return node if isinstance(node, dict) else {}


def _tricks(tricks) -> None:
    """Integer trick parameters (their shipped default is an integer: k, n_critic, m, anneal_steps ...) refuse
    non-integers, as data.batch_size does, instead of truncating 2.5 to 2."""
    if not isinstance(tricks, (dict, DictConfig)):
        return
    for name, spec in tricks.items():
        if not isinstance(spec, (dict, DictConfig)):
            continue
        for key, default in _trick_defaults(str(name)).items():
            value = spec.get(key)
            if _is_int(default) and value is not None and not _is_int(value):
                raise ConfigError(
                    f"trick.{name}: {key}={value!r} must be an integer; allowed integers (default {default})"
                )


def _callbacks(callbacks) -> None:
    ckpt = callbacks.get("checkpoint") if isinstance(callbacks, (dict, DictConfig)) else None
    for key in CHECKPOINT_INT_KEYS if isinstance(ckpt, (dict, DictConfig)) else ():
        if ckpt.get(key) is not None:
            low = -1 if key == "save_top_k" else 0
            check_int("callbacks.checkpoint", key, ckpt.get(key), low, extra="-1 (all) or " if low < 0 else "")


def _metrics(metrics) -> None:
    if not metrics:
        return
    if metrics.get("every_n_steps") is not None:
        check_int("metrics", "every_n_steps", metrics.get("every_n_steps"), 0)
    if metrics.get("n_samples") is not None:
        check_int("metrics", "n_samples", metrics.get("n_samples"), 2)
    if metrics.get("n_real") is not None:
        check_int("metrics", "n_real", metrics.get("n_real"), 2)


# ---- loggers ----------------------------------------------------------------------------------------
def _loggers(loggers) -> None:
    if not loggers:
        return
    wb = loggers.get("wandb")
    if wb is None:
        return
    owner = "logger.wandb"
    offline = wb.get("offline", False)
    _check_bool(owner, "offline", offline)
    mode = wb.get("mode")
    if mode is not None and mode not in WANDB_MODES:
        raise ConfigError(f"{owner}: mode={mode!r} is not known; allowed {', '.join(WANDB_MODES)}")
    if offline and mode == "online":
        raise ConfigError(
            f"{owner}: mode=online contradicts offline=true; allowed mode=offline or disabled with offline=true, "
            "or set logger.wandb.offline=false"
        )
    if offline and wb.get("log_model"):
        raise ConfigError(
            f"{owner}: log_model={wb.get('log_model')!r} needs offline=false (checkpoints cannot be uploaded "
            "offline); allowed log_model=false with offline=true"
        )
    env_mode = os.environ.get("WANDB_MODE", "").lower()
    online = mode == "online" or (not offline and mode is None and env_mode not in ("offline", "dryrun", "disabled"))
    if online and not wandb_credentials():
        key = "logger.wandb.mode=online" if mode == "online" else "logger.wandb.offline=false"
        raise ConfigError(
            f"{key} needs W&B credentials (WANDB_API_KEY or `wandb login`); use the default offline mode "
            "and `wandb sync` later"
        )


def wandb_credentials() -> bool:
    """Whether W&B can authenticate without a prompt: WANDB_API_KEY / WANDB_IDENTITY_TOKEN_FILE, or a
    netrc entry (NETRC, ~/.netrc, ~/_netrc) for the host of WANDB_BASE_URL (default api.wandb.ai)."""
    if os.environ.get("WANDB_API_KEY") or os.environ.get("WANDB_IDENTITY_TOKEN_FILE"):
        return True
    from urllib.parse import urlparse

    host = urlparse(os.environ.get("WANDB_BASE_URL") or "https://api.wandb.ai").hostname or "api.wandb.ai"
    if os.environ.get("NETRC"):  # as wandb: the variable replaces the default locations
        paths = [Path(os.environ["NETRC"]).expanduser()]
    else:
        paths = [Path("~/.netrc").expanduser(), Path("~/_netrc").expanduser()]
    for path in paths:
        if not path.is_file():
            continue
        try:
            import netrc

            entry = netrc.netrc(str(path)).authenticators(host)
            if entry and entry[2]:
                return True
        except Exception:  # unparsable netrc: fall back to looking for the host
            try:
                if host in path.read_text(errors="replace"):
                    return True
            except OSError:
                pass
    return False


# ---- checkpoints ------------------------------------------------------------------------------------
def check_checkpoint(path, key: str = "ckpt_path") -> None:
    """ConfigError unless `path` is a checkpoint that loads with torch.load(weights_only=True) and holds
    a Lightning `state_dict` (call it for ckpt_path=last too: gan_lab.train.resolve_ckpt)."""
    import zipfile

    from gan_lab.checkpoints import load, refusal_reason

    shown = str(path)

    def bad(why: str):
        return ConfigError(f"{key}={shown!r} is not a readable gan_lab checkpoint: {why}")

    p = Path(str(path)).expanduser()
    try:
        if not zipfile.is_zipfile(p):
            raise bad("not a torch.save archive (truncated or corrupt file?); allowed a .ckpt written by gan_lab")
        ckpt = load(p, mmap=True)
    except ConfigError:
        raise
    except Exception as e:
        raise bad(refusal_reason(e)) from None
    if not isinstance(ckpt, dict) or "state_dict" not in ckpt:
        raise bad("no state_dict in it; allowed a .ckpt written by gan_lab (<run dir>/checkpoints/*.ckpt)")
    import gan_lab

    if ckpt.get("gan_lab_format") != gan_lab.CHECKPOINT_FORMAT:
        raise ConfigError(
            f"{key}={shown!r} was written by gan_lab {ckpt.get('gan_lab_version', 'before 0.1.0')} (checkpoint "
            f"format {ckpt.get('gan_lab_format')}); gan_lab {gan_lab.__version__} reads format "
            f"{gan_lab.CHECKPOINT_FORMAT}: resume it with the gan_lab version that wrote it, or start a new run"
        )
