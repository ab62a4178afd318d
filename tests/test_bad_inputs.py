"""The bad-input catalogue. Every row is one bad input that must stop the run before training
with exit code 2 and ONE stderr line `error: ...` naming the bad key/value and what is allowed.

Two tables:
- CLI_CASES run the real entry point (`python -m gan_lab.train ...`) in a subprocess: Hydra composition
  errors only exist there, and a few config/data errors check the whole path. The subprocesses of the
  table start together (2 at a time) on first use, each row then checks its own result.
- CASES run the real config path in-process: compose the config with the overrides, then
  `gan_lab.train.train(cfg, run_dir)` (config.validate, resolve_ckpt, build_objects) with
  `Trainer.fit` replaced by a function that fails the test, so a row that is not rejected cannot train.
  The error line is what the CLI prints for a ConfigError: f"error: {e}".

Overrides and expected substrings may hold `{tmp}` (a per-row folder for files the row's setup writes)
and `{run}` (the run directory). Rows that need a change outside gan_lab/config.py and gan_lab/cli.py are
marked xfail(strict=True) with the change in the reason.
"""

from __future__ import annotations

import gzip
import math
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from conftest import CONF as CONF_DIR
from conftest import ROOT, compose_cfg, run_cli

from gan_lab.errors import ConfigError

# W&B without any credentials: no key variables, HOME and NETRC pointing at files that do not exist.
NO_CREDENTIALS = {
    "WANDB_API_KEY": None,
    "WANDB_IDENTITY_TOKEN_FILE": None,
    "WANDB_MODE": None,
    "WANDB_BASE_URL": None,
    "HOME": "{tmp}",
    "NETRC": "{tmp}/no.netrc",
}


# ---- files that rows read ------------------------------------------------------------------------------
def _idx(magic: int, dims: tuple[int, ...], n_bytes: int | None = None) -> bytes:
    header = magic.to_bytes(4, "big") + b"".join(d.to_bytes(4, "big") for d in dims)
    return header + bytes(math.prod(dims) if n_bytes is None else n_bytes)


def idx_wrong_magic(tmp: Path, run: Path) -> None:
    (tmp / "train-images-idx3-ubyte.gz").write_bytes(gzip.compress(_idx(2052, (10, 28, 28))))


def idx_truncated(tmp: Path, run: Path) -> None:
    (tmp / "train-images-idx3-ubyte.gz").write_bytes(gzip.compress(_idx(2051, (10, 28, 28), n_bytes=1000)))


def idx_not_gzip(tmp: Path, run: Path) -> None:
    (tmp / "train-images-idx3-ubyte.gz").write_bytes(_idx(2051, (10, 28, 28)))


def _png(path: Path, size: int = 128) -> bytes:
    from PIL import Image

    Image.new("RGB", (size, size), (200, 30, 30)).save(path)
    return path.read_bytes()


def empty_image_folder(tmp: Path, run: Path) -> None:
    (tmp / "images").mkdir()
    (tmp / "images" / "notes.txt").write_text("not an image")


def truncated_png(tmp: Path, run: Path) -> None:
    (tmp / "images").mkdir()
    data = _png(tmp / "images" / "bad.png")
    (tmp / "images" / "bad.png").write_bytes(data[: len(data) // 2])


def one_image(tmp: Path, run: Path) -> None:
    (tmp / "images").mkdir()
    _png(tmp / "images" / "a.png")


def garbage_png(tmp: Path, run: Path) -> None:
    (tmp / "images").mkdir()
    (tmp / "images" / "bad.png").write_bytes(os.urandom(300))


def zip_without_images(tmp: Path, run: Path) -> None:
    import zipfile

    with zipfile.ZipFile(tmp / "notes.zip", "w") as z:
        z.writestr("notes.txt", "no images here")


def cifar10_junk(tmp: Path, run: Path) -> None:
    folder = tmp / "cifar-10-batches-py"
    folder.mkdir()
    for name in ("batches.meta", "test_batch", *(f"data_batch_{k}" for k in range(1, 6))):
        (folder / name).write_bytes(b"not the published file")


def garbage_ckpt(tmp: Path, run: Path) -> None:
    (tmp / "garbage.ckpt").write_bytes(b"this is not a checkpoint" + os.urandom(1000))


def truncated_ckpt(tmp: Path, run: Path) -> None:
    import torch

    torch.save({"state_dict": {"w": torch.zeros(5000)}, "pytorch-lightning_version": "2"}, tmp / "cut.ckpt")
    data = (tmp / "cut.ckpt").read_bytes()
    (tmp / "cut.ckpt").write_bytes(data[: len(data) // 2])


def weights_only_ckpt(tmp: Path, run: Path) -> None:
    import torch

    torch.save({"w": torch.zeros(3)}, tmp / "weights.ckpt")


def corrupt_last_ckpt(tmp: Path, run: Path) -> None:
    (run / "checkpoints").mkdir(parents=True)
    (run / "checkpoints" / "last.ckpt").write_bytes(os.urandom(2000))


SR = ("~data", "+data._target_=gan_lab.data.sr.SRFolderDataModule")  # a folder data module without a conf file


def case(id, overrides, expected, setup=None, env=None, xfail=None, raises=AssertionError):
    """One row: `expected` substrings must all be in the error line."""
    marks = [pytest.mark.xfail(reason=f"needs {xfail}", strict=True, raises=raises)] if xfail else []
    return pytest.param(tuple(overrides), tuple(expected), setup, env, id=id, marks=marks)


# ---- through the real CLI ----------------------------------------------------------------------------
CLI_CASES = [
    case("unknown_group_option", ["model=dcgn"], ["model/dcgn", "available options in 'model'", "dcgan"]),
    case(
        "misspelled_key",
        ["trainer.max_stepz=5"],
        ["trainer.max_stepz", "not in struct", "allowed keys in 'trainer'", "max_steps"],
    ),
    case("unknown_trick", ["trick=[label_smothing]"], ["trick/label_smothing", "available options", "label_smoothing"]),
    case("override_syntax", ["model.g_optimizer.betas=[0.5"], ["model.g_optimizer.betas=[0.5", "override"]),
    case("wrong_type_max_steps", ["trainer.max_steps=abc"], ["max_steps='abc'", "must be an integer", "[1, inf)"]),
    case("threads_zero", ["threads=0"], ["threads=0", "allowed null or [1, inf)"]),
    case("d_batchnorm_not_bool", ["model.discriminator.batchnorm=2"], ["batchnorm=2 is not a boolean", "true, false"]),
    case("sr_preset_without_photos", ["experiment=srresnet_x4"], ["root=None is not set", "data.root=<dir>"]),
    case("missing_data_dir", ["data=mnist", "data.root={tmp}/nope"], ["data.root='{tmp}/nope'", "not a directory"]),
    case(
        "corrupt_checkpoint",
        ["ckpt_path={tmp}/garbage.ckpt"],
        ["ckpt_path='{tmp}/garbage.ckpt'", "is not a readable gan_lab checkpoint", "allowed"],
        setup=garbage_ckpt,
    ),
    case(
        "only_corrupt_images",
        ["data=sr_folder", "data.root={tmp}/images"],
        ["data.sr: none of the 1 images in '{tmp}/images' could be read", "bad.png"],
        setup=garbage_png,
    ),
    case(
        "wandb_online_without_credentials",
        ["logger=wandb", "logger.wandb.offline=false"],
        ["logger.wandb.offline=false needs W&B credentials", "WANDB_API_KEY", "wandb login", "wandb sync"],
        env=NO_CREDENTIALS,
    ),
]

# ---- in-process, through gan_lab.train.train ------------------------------------------------------------
CASES = [
    # keys and types
    case("unknown_trainer_param", ["+trainer.max_stepz=5"], ["trainer: unknown parameter 'max_stepz'", "max_steps"]),
    case("unknown_top_level_key", ["+seedd=1"], ["unknown top-level key 'seedd'", "allowed", "seed"]),
    case("seed_not_int", ["seed=abc"], ["seed='abc'", "must be an integer", "[0, 4294967295]"]),
    case("seed_negative", ["seed=-1"], ["seed=-1", "[0, 4294967295]"]),
    case("batch_size_word", ["data.batch_size=big"], ["data: batch_size='big'", "must be an integer", "[1, inf)"]),
    case("batch_size_float", ["data.batch_size=2.5"], ["data: batch_size=2.5", "must be an integer", "[1, inf)"]),
    case("overwrite_not_bool", ["overwrite=maybe"], ["overwrite='maybe'", "must be a boolean", "true, false"]),
    # optimizers
    case("lr_too_large", ["model.g_optimizer.lr=5"], ["model.g_optimizer: lr=5", "out of range", "(0.0, 1.0]"]),
    case("lr_zero", ["model.d_optimizer.lr=0"], ["model.d_optimizer: lr=0", "out of range", "(0.0, 1.0]"]),
    case("lr_negative", ["model.g_optimizer.lr=-1e-4"], ["model.g_optimizer: lr=-0.0001", "(0.0, 1.0]"]),
    case("lr_nan", ["model.g_optimizer.lr=nan"], ["model.g_optimizer: lr=nan", "must be a number", "(0.0, 1.0]"]),
    case("lr_word", ["model.g_optimizer.lr=fast"], ["model.g_optimizer: lr='fast'", "must be a number", "(0.0, 1.0]"]),
    case("ae_lr", ["model=ae", "model.optimizer.lr=2"], ["model.optimizer: lr=2", "(0.0, 1.0]"]),
    case("beta_one", ["model.g_optimizer.betas=[0.5,1.0]"], ["model.g_optimizer: betas=1.0", "[0.0, 1.0)"]),
    case("betas_length", ["model.d_optimizer.betas=[0.5]"], ["model.d_optimizer.betas=[0.5]", "two numbers in [0, 1)"]),
    case(
        "optimizer_unknown_param",
        ["+model.g_optimizer.momentum=0.9"],
        ["model.g_optimizer: unknown parameter 'momentum'", "allowed", "lr, betas"],
    ),
    case("weight_decay_negative", ["+model.d_optimizer.weight_decay=-1"], ["weight_decay=-1", "[0.0, 1.0]"]),
    case("grad_clip_negative", ["model.grad_clip=-1"], ["model: grad_clip=-1", "[0.0, inf)"]),
    case("unknown_loss", ["model.loss=foo"], ["model.loss='foo'", "allowed minimax, non_saturating"]),
    # tricks
    case(
        "dropout_one",
        ["trick=[d_dropout]", "trick.d_dropout.rate=1.0"],
        ["trick.d_dropout: rate=1.0", "out of range", "[0.0, 1.0)"],
    ),
    case("flip_prob", ["trick=[label_flip]", "trick.label_flip.p=1.5"], ["trick.label_flip: p=1.5", "[0.0, 1.0]"]),
    case(
        "flip_prob_nan",
        ["trick=[label_flip]", "trick.label_flip.p=nan"],
        ["trick.label_flip: p=nan", "[0.0, 1.0]"],
    ),
    case(
        "trick_param_typo",
        ["trick=[label_smoothing]", "+trick.label_smoothing.reel=0.8"],
        ["trick.label_smoothing: unknown parameter 'reel'", "allowed real"],
    ),
    case(
        "trick_param_not_selected",
        ["+trick.ema.decay=0.5"],
        ["trick.ema parameters are set", "ema is not a selected trick", "trick=[...]"],
    ),
    case(
        "conflicting_tricks",
        ["trick=[label_smoothing,label_noise]"],
        ["trick=label_smoothing and trick=label_noise cannot be combined", "label_values"],
    ),
    case(
        "label_trick_with_hinge",
        ["trick=[label_smoothing]", "model.loss=hinge"],
        ["trick=label_smoothing needs a loss with real/fake targets", "model.loss=hinge", "allowed"],
    ),
    case("trick_on_autoencoder", ["model=ae", "trick=[d_dropout]"], ["trick=d_dropout", "model=ae has no"]),
    # data
    case(
        "negative_sigma",
        ["model=gan_mlp", "data=toy2d_ring", "data.sigma=-0.1"],
        ["data.toy2d_ring: sigma=-0.1", "out of range", "(0.0, inf)"],
    ),
    case("val_fraction", ["data.val_fraction=1.5"], ["data: val_fraction=1.5", "[0.0, 1.0)"]),
    case(
        "batch_larger_than_data",
        ["data.batch_size=100000"],
        ["data.batch_size=100000", "larger than the training split", "allowed [1, 1617]"],
    ),
    case("image_size_too_small", ["data.size=4"], ["data.digits: size=4", "[8, 256]"]),
    case("mnist_unknown_split", ["data=mnist", "data.split=test"], ["data.split='test'", "allowed train, t10k"]),
    case(
        "idx_wrong_magic",
        ["data=mnist", "data.root={tmp}"],
        ["train-images-idx3-ubyte.gz is not an MNIST IDX file", "magic number 2052", "allowed 2049", "2051"],
        setup=idx_wrong_magic,
    ),
    case(
        "idx_truncated",
        ["data=mnist", "data.root={tmp}"],
        ["train-images-idx3-ubyte.gz is truncated or corrupt", "header says 7840"],
        setup=idx_truncated,
    ),
    case(
        "idx_not_gzip",
        ["data=mnist", "data.root={tmp}"],
        ["cannot read IDX file {tmp}/train-images-idx3-ubyte.gz", "gzip"],
        setup=idx_not_gzip,
    ),
    case(
        "empty_image_folder",
        [*SR, "+data.root={tmp}/images"],
        ["data.sr: folder '{tmp}/images' holds no images", "allowed suffixes", ".png"],
        setup=empty_image_folder,
    ),
    case(
        "missing_image_folder",
        [*SR, "+data.root={tmp}/nope"],
        ["data.sr: folder '{tmp}/nope' does not exist", "folder of images"],
    ),
    case(
        "truncated_image",
        [*SR, "+data.root={tmp}/images", "+data.on_corrupt=error"],
        ["data.sr: cannot read image '{tmp}/images/bad.png'", "on_corrupt=skip"],
        setup=truncated_png,
    ),
    case("sr_scale", [*SR, "+data.scale=5"], ["data.sr: scale=5 is not supported", "allowed 2, 3, 4"]),
    case(
        "paired_missing_root",
        ["~data", "+data._target_=gan_lab.data.paired.PairedFolderDataModule", "+data.root={tmp}/facades"],
        ["data.paired: root='{tmp}/facades' is not a directory", "train/"],
    ),
    # models vs data
    case(
        "ae_latent_too_big",
        ["model=ae", "model.latent_dim=5000"],
        ["model.latent_dim=5000", "out of range", "allowed [1, 1023]"],
    ),
    case(
        "dcgan_image_size",
        ["model=dcgan", "data.size=30"],
        ["model=dcgan: image size 30 is not supported", "allowed 4*2^k or 7*2^k"],
    ),
    case("dcgan_on_points", ["model=dcgan", "data=toy2d_ring"], ["model=dcgan needs square image data", "(2,)"]),
    case(
        "z_dim_zero",
        ["model.generator.z_dim=0"],
        ["model.generator: z_dim=0", "[1, inf)"],
    ),
    # metrics
    case("unknown_feature_net", ["metrics.fid.features=foo"], ["metrics.fid.features='foo'", "allowed digits, mnist"]),
    case("fid_samples_one", ["metrics.n_samples=1"], ["metrics: n_samples=1", "out of range", "[2, inf)"]),
    case("fid_real_one", ["metrics.n_real=1"], ["metrics: n_real=1", "[2, inf)"]),
    case("metrics_every_negative", ["metrics.every_n_steps=-1"], ["metrics: every_n_steps=-1", "[0, inf)"]),
    case(
        "unknown_metric_name",
        ["metrics.names=[fid,fidd]"],
        ["metrics.names: unknown metric 'fidd'", "registered:", "kid"],
    ),
    case(
        "inception_weights_missing",
        ["metrics.fid.features=inception"],
        ["metrics.fid.features=inception: no weights file at {tmp}/none.pth", "GAN_LAB_INCEPTION_WEIGHTS"],
        env={"GAN_LAB_INCEPTION_WEIGHTS": "{tmp}/none.pth"},
    ),
    case(
        "inception_resize_unknown",
        ["metrics.fid.features=inception", "metrics.fid.resize=nearest"],
        ["metrics.fid.resize='nearest' is not known", "allowed legacy_tf, clean"],
    ),
    case(
        "fid_resize_unknown_any_net",
        ["metrics.fid.resize=bilinear"],
        ["metrics.fid.resize='bilinear' is not known", "allowed legacy_tf, clean"],
    ),
    case(
        "torchscript_features_missing",
        ["metrics.fid.features={tmp}/dinov2.pt"],
        ["metrics.fid.features='{tmp}/dinov2.pt': no such TorchScript file"],
    ),
    # trainer and callbacks
    case("max_steps_negative", ["trainer.max_steps=-5"], ["trainer: max_steps=-5", "-1 (no limit) or [1, inf)"]),
    case("max_steps_zero", ["trainer.max_steps=0"], ["trainer: max_steps=0", "-1 (no limit) or [1, inf)"]),
    case("max_epochs_negative", ["trainer.max_epochs=-5"], ["trainer: max_epochs=-5", "-1 (no limit)"]),
    case("devices_zero", ["trainer.devices=0"], ["trainer: devices=0", "'auto', -1 (all) or [1, inf)"]),
    case("accelerator_unknown", ["trainer.accelerator=tpu2"], ["trainer: accelerator='tpu2'", "allowed auto, cpu"]),
    case("precision_unknown", ["trainer.precision=13"], ["trainer: precision=13", "allowed", "32-true", "bf16-mixed"]),
    case(
        "samples_every_negative",
        ["callbacks.samples.every_n_steps=-1"],
        ["callbacks.samples: every_n_steps=-1", "[0, inf)"],
    ),
    case(
        "checkpoint_every_negative",
        ["callbacks.checkpoint.every_n_train_steps=-1"],
        ["callbacks.checkpoint: every_n_train_steps=-1", "[0, inf)"],
    ),
    # loggers
    case(
        "wandb_mode_unknown",
        ["+logger.wandb.mode=foo"],
        ["logger.wandb: mode='foo' is not known", "allowed online, offline, disabled"],
    ),
    case("wandb_offline_not_bool", ["logger.wandb.offline=maybe"], ["offline='maybe'", "boolean", "true, false"]),
    case("wandb_mode_contradiction", ["+logger.wandb.mode=online"], ["mode=online contradicts offline=true"]),
    case("wandb_log_model_offline", ["logger.wandb.log_model=true"], ["log_model=True", "offline=false"]),
    case(
        "wandb_mode_online_without_credentials",
        ["logger.wandb.offline=false", "+logger.wandb.mode=online"],
        ["logger.wandb.mode=online needs W&B credentials", "WANDB_API_KEY"],
        env=NO_CREDENTIALS,
    ),
    # resuming
    case("ckpt_missing", ["ckpt_path={tmp}/nope.ckpt"], ["ckpt_path='{tmp}/nope.ckpt' does not exist", "'last'"]),
    case("ckpt_last_fresh_dir", ["ckpt_path=last"], ["ckpt_path=last but", "does not exist", "hydra.run.dir"]),
    case(
        "ckpt_truncated",
        ["ckpt_path={tmp}/cut.ckpt"],
        ["ckpt_path='{tmp}/cut.ckpt' is not a readable gan_lab checkpoint", "truncated or corrupt"],
        setup=truncated_ckpt,
    ),
    case(
        "ckpt_not_lightning",
        ["ckpt_path={tmp}/weights.ckpt"],
        ["ckpt_path='{tmp}/weights.ckpt' is not a readable gan_lab checkpoint", "no state_dict"],
        setup=weights_only_ckpt,
    ),
    case(
        "ckpt_last_corrupt",
        ["ckpt_path=last"],
        ["ckpt_path=", "last.ckpt", "is not a readable gan_lab checkpoint"],
        setup=corrupt_last_ckpt,
    ),
    # class-conditional GANs
    case("conditional_unknown", ["model.conditional=foo"], ["conditional='foo' is not known", "projection, acgan"]),
    case(
        "conditional_class_count",
        ["model.conditional=concat", "model.num_classes=5"],
        ["model.num_classes=5 does not match the data's 10 classes", "allowed null (from the data) or 10"],
    ),
    case(
        "conditional_unlabelled_data",
        ["model=gan_mlp", "model.conditional=concat", "data=image_folder", "data.root={tmp}/images",
         "data.batch_size=1"],
        ["model.conditional=concat needs data with class labels", "labelled data: digits, mnist"],
        setup=one_image,
    ),
    case(
        "conditional_net_without_conditioning",
        ["model.conditional=projection", "model.generator._target_=gan_lab.nets.unet.UNetGenerator"],
        ["model.conditional=projection needs class-conditional nets", "UNetGenerator has none"],
    ),
    case(
        "conditional_on_autoencoder",
        ["model=ae", "+model.conditional=acgan"],
        ["model.conditional=acgan is not an option of model=ae", "allowed with model=gan_mlp, model=dcgan"],
    ),
    case("aux_weight_negative", ["model.conditional=acgan", "model.aux_weight=-1"], ["aux_weight=-1", "[0.0, inf)"]),
    # image folders, zips, CIFAR, LMDB
    case(
        "image_folder_empty",
        ["data=image_folder", "data.root={tmp}/images"],
        ["data.root='{tmp}/images' holds no images", "allowed suffixes .png"],
        setup=empty_image_folder,
    ),
    case(
        "image_folder_root_is_a_file",
        ["data=image_folder", "data.root={tmp}/images/a.png"],
        ["data.root='{tmp}/images/a.png' is a file, not a folder", "allowed a folder of images or a .zip"],
        setup=one_image,
    ),
    case(
        "image_zip_without_images",
        ["data=image_folder", "data.root={tmp}/notes.zip"],
        ["data.root='{tmp}/notes.zip' is a zip with no images", "allowed suffixes"],
        setup=zip_without_images,
    ),
    case(
        "image_folder_labels_from_flat_folder",
        ["data=image_folder", "data.root={tmp}/images", "data.labels=folders"],
        ["data.image_folder.labels=folders needs class subfolders", "'a.png'", "allowed labels=none"],
        setup=one_image,
    ),
    case(
        "image_folder_unknown_resize",
        ["data=image_folder", "data.root={tmp}/images", "data.resize=nearest"],
        ["resize='nearest' is not known", "allowed lanczos, bicubic, bilinear, box, area"],
        setup=one_image,
    ),
    case(
        "image_folder_nothing_readable",
        ["data=image_folder", "data.root={tmp}/images", "data.cache_dir={tmp}/cache"],
        ["none of the 1 images could be read", "bad.png"],
        setup=garbage_png,
    ),
    case(
        "cifar10_md5_mismatch",
        ["data=cifar10", "data.root={tmp}"],
        ["cifar-10-batches-py/data_batch_1' has MD5", "the published file has c99cafc152244af753f735de768cd75f"],
        setup=cifar10_junk,
    ),
    case("cifar10_missing", ["data=cifar10", "data.root={tmp}"], ["holds neither cifar-10-batches-py/ nor"]),
    case("lmdb_not_a_database", ["data=lmdb", "data.root={tmp}"], ["data.root='{tmp}' is not an LMDB folder"]),
]


# ---- run directories, checkpoints and Lightning settings (reliability) -----------------------------------
class _Payload:
    def __reduce__(self):
        return (os.system, ("touch PAYLOAD_RAN",))


def pickled_ckpt(tmp: Path, run: Path) -> None:
    import torch

    torch.save({"state_dict": {}, "hyper_parameters": _Payload()}, tmp / "pickled.ckpt")


def finished_ckpt(tmp: Path, run: Path) -> None:
    import torch

    import gan_lab

    state = {"state_dict": {}, "global_step": 50, "gan_lab_format": gan_lab.CHECKPOINT_FORMAT}
    torch.save(state, tmp / "done.ckpt")


def run_dir_in_use(tmp: Path, run: Path) -> None:
    import json
    import socket

    run.mkdir(parents=True)
    (run / ".gan_lab.lock").write_text(json.dumps({"host": socket.gethostname(), "pid": os.getppid(), "since": 0}))


def finished_run_dir(tmp: Path, run: Path) -> None:
    run.mkdir(parents=True)
    (run / "metrics.json").write_text('{"status": "completed"}')


def _no_cuda(p):
    import torch

    skip = pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a CUDA GPU")
    return pytest.param(*p.values, id=p.id, marks=[*p.marks, skip])


CASES += [
    case(
        "devices_without_ddp",
        ["trainer.devices=3", "trainer.accelerator=cpu"],
        ["trainer: devices=3", "needs trainer=ddp", "allowed trainer.devices=1"],
    ),
    _no_cuda(
        case(
            "accelerator_gpu_without_gpu",
            ["trainer.accelerator=gpu"],
            ["trainer: accelerator='gpu'", "no CUDA GPU", "allowed auto, cpu"],
        )
    ),
    case(
        "checkpoint_every_word",
        ["callbacks.checkpoint.every_n_train_steps=abc"],
        ["callbacks.checkpoint: every_n_train_steps='abc'", "must be an integer", "[0, inf)"],
    ),
    case("z_dim_float", ["model.generator.z_dim=1.5"], ["model.generator: z_dim=1.5", "must be an integer"]),
    case("g_steps_float", ["trick=[g_steps]", "trick.g_steps.k=2.5"], ["trick.g_steps: k=2.5", "must be an integer"]),
    case(
        "ckpt_pickled_objects",
        ["ckpt_path={tmp}/pickled.ckpt"],
        ["ckpt_path='{tmp}/pickled.ckpt' is not a readable gan_lab checkpoint", "never unpickles", "system"],
        setup=pickled_ckpt,
    ),
    case(
        "ckpt_nothing_left",
        ["ckpt_path={tmp}/done.ckpt", "trainer.max_steps=50"],
        ["is at step 50 and trainer.max_steps=50", "allowed trainer.max_steps > 50"],
        setup=finished_ckpt,
    ),
    case(
        "run_dir_in_use",
        [],
        ["run directory '{run}' is in use by process", "hydra.run.dir"],
        setup=run_dir_in_use,
    ),
    case(
        "run_dir_finished",
        [],
        ["run directory {run} already holds a finished run (status completed)", "overwrite=true"],
        setup=finished_run_dir,
    ),
]

CLI_CASES += [
    case("callbacks_null", ["callbacks=null"], ["callbacks=null cannot remove a config group", "~callbacks"]),
    case(
        "non_ascii_unquoted",
        ["sweep_name=lauf_ü"],
        ["sweep_name=lauf_ü", "must be quoted", "'sweep_name=\"lauf_ü\"'"],
    ),
    case(
        "ddp_job_in_local_sweep",
        ["hydra.mode=MULTIRUN", "trainer=ddp", "trainer.devices=2", "hydra.sweep.dir={tmp}/s"],
        ["trainer.devices=2", "cannot run inside a -m sweep", "hydra/launcher=slurm"],
    ),
]



# ---- CycleGAN: unpaired data ------------------------------------------------------------------------------
def one_domain(tmp: Path, run: Path) -> None:
    (tmp / "horses" / "trainA").mkdir(parents=True)
    _png(tmp / "horses" / "trainA" / "a.png", size=32)


def empty_domain(tmp: Path, run: Path) -> None:
    one_domain(tmp, run)
    (tmp / "horses" / "trainB").mkdir()
    (tmp / "horses" / "trainB" / "notes.txt").write_text("not an image")


def two_domains(tmp: Path, run: Path) -> None:
    for folder in ("trainA", "trainB", "testA", "testB"):
        (tmp / "horses" / folder).mkdir(parents=True)
        _png(tmp / "horses" / folder / "x.png", size=32)


UNPAIRED = ("model=cyclegan", "data=unpaired_folder", "data.root={tmp}/horses")
CASES += [
    case("cyclegan_one_domain_data", ["model=cyclegan"], ["model=cyclegan needs unpaired data with two domains"]),
    case(
        "cyclegan_one_folder",
        [*UNPAIRED],
        ["data.unpaired_folder: root='{tmp}/horses' has no trainB/ folder", "trainA/ trainB/"],
        setup=one_domain,
    ),
    case(
        "cyclegan_empty_domain",
        [*UNPAIRED],
        ["data.unpaired_folder: folder='{tmp}/horses/trainB' holds no images", "allowed suffixes"],
        setup=empty_domain,
    ),
    case(
        "cyclegan_size_not_mirrored",
        [*UNPAIRED, "data.size=30"],
        ["model.generator: image size 30 is not divisible by 2^n_down = 4"],
        setup=two_domains,
    ),
    case(
        "cyclegan_load_size_below_crop",
        [*UNPAIRED, "data.size=32", "data.load_size=20"],
        ["data.unpaired_folder: load_size=20 is not allowed with size=32", "[32, 4096]"],
        setup=two_domains,
    ),
    case(
        "cyclegan_flip_not_boolean",
        [*UNPAIRED, "data.size=32", "data.flip=maybe"],
        ["data.unpaired_folder: flip='maybe' must be a boolean; allowed true, false"],
        setup=two_domains,
    ),
]

# ---- paper presets: PacGAN's maxout D, N(0, 0.02) init, trick=unrolled -------------------------------
RING = ("model=gan_mlp", "data=toy2d_ring")
CASES += [
    case("maxout_one_piece", [*RING, "+model.discriminator.maxout=1"], ["maxout=1 is out of range; allowed [2, 64]"]),
    case(
        "unknown_init",
        [*RING, "+model.generator.init=xavier"],
        ["model.generator.init='xavier' is not known; allowed default, normal"],
    ),
    case(
        "unrolled_no_steps",
        [*RING, "trick=[unrolled]", "trick.unrolled.steps=0"],
        ["trick.unrolled: steps=0 is out of range; allowed [1, 100]"],
    ),
    case(
        "unrolled_second_order_not_bool",
        [*RING, "trick=[unrolled]", "trick.unrolled.second_order=sometimes"],
        ["trick.unrolled.second_order='sometimes' must be a boolean; allowed true, false"],
    ),
]

# ---- seed-parallel training (seeds=N): what it cannot batch -------------------------------------------------
CASES += [
    case("seeds_zero", [*RING, "seeds=0"], ["seeds=0 is not a number of seeds; allowed null (one run) or an integer"]),
    case("seeds_not_int", [*RING, "seeds=many"], ["seeds='many' is not a number of seeds; allowed null"]),
    case("seeds_not_a_gan", ["model=vae", "seeds=2"], ["seeds=2 trains GAN models only; model=vae is not one"]),
    case(
        "seeds_grad_clip",
        [*RING, "seeds=2", "model.grad_clip=1.0"],
        ["seeds=2 with model.grad_clip=1.0", "allowed model.grad_clip=null with seeds"],
    ),
    case(
        "seeds_feature_matching",
        [*RING, "seeds=2", "trick=[feature_matching]"],
        ["trick=feature_matching is not supported with seeds=2"],
    ),
    case("seeds_spectral_norm", [*RING, "seeds=2", "trick=[spectral_norm]"], ["trick=spectral_norm is not supported"]),
    case("seeds_unrolled", [*RING, "seeds=2", "trick=[unrolled]"], ["trick=unrolled is not supported with seeds=2"]),
    case(
        "seeds_pacgan_splits_a_member",
        [*RING, "seeds=2", "trick=[pacgan]", "trick.pacgan.m=3", "data.batch_size=100"],
        ["trick.pacgan: data.batch_size=100 is not divisible by m=3"],
    ),
    case("seeds_compile", [*RING, "seeds=2", "model.compile=true"], ["model.compile=True is not supported with seeds"]),
    case(
        "seeds_channels_last",
        ["model=dcgan", "seeds=2", "model.channels_last=true"],
        ["model.channels_last=true is not supported with seeds=2", "allowed model.channels_last=false or auto"],
    ),
]



def mnist_test_split_only(tmp: Path, run: Path) -> None:
    (tmp / "t10k-images-idx3-ubyte.gz").write_bytes(gzip.compress(_idx(2051, (10, 28, 28))))
    (tmp / "t10k-labels-idx1-ubyte.gz").write_bytes(gzip.compress(_idx(2049, (10,))))


CASES += [
    case(
        "gan_on_image_pairs",  # the GAN's D was built for the 64 px targets and got the 16 px inputs
        ["data=sr_folder", "model=dcgan", "data.hr_patch=64"],
        ["model=dcgan generates images from noise", "image pairs", "[3, 16, 16] -> target [3, 64, 64]", "model=srgan"],
    ),
    case(
        "mnist_test_split_only",
        ["data=mnist", "data.root={tmp}"],
        ["data.root='{tmp}' holds MNIST's t10k split only", "allowed data.split=t10k"],
        setup=mnist_test_split_only,
    ),
]
CLI_CASES += [
    case(
        "non_ascii_path_unquoted",
        ["data=image_folder", "data.root={tmp}/bilder_ä"],
        ["data.root={tmp}/bilder_ä", "must be quoted", "'data.root=\"{tmp}/bilder_ä\"'"],
    ),
]


# ---- helpers ------------------------------------------------------------------------------------------
def _fmt(items, tmp: Path, run: Path):
    return [s.format(tmp=tmp, run=run) for s in items]


def _files(run: Path) -> set[str]:
    return {str(p.relative_to(run)) for p in run.rglob("*") if p.is_file()} if run.is_dir() else set()


def check_error(line_or_stderr: str, expected, before: set[str], run: Path) -> None:
    """One line starting with `error:` holding every expected substring, and no training outputs."""
    lines = line_or_stderr.strip("\n").split("\n")
    assert len(lines) == 1, f"expected one line, got {len(lines)}:\n{line_or_stderr[-3000:]}"
    line = lines[0]
    assert line.startswith("error: "), line
    missing = [s for s in expected if s not in line]
    assert not missing, f"{missing} not in: {line}"
    new = _files(run) - before
    assert not any(f.startswith("checkpoints") or f.startswith("samples") for f in new), new
    assert "metrics.json" not in new and "metrics.csv" not in new, new
    assert all(f.startswith(".hydra") or f.endswith(".log") for f in new), f"run wrote {sorted(new)}"


def _env(env, tmp: Path) -> dict:
    out = dict(os.environ)
    for key, value in (env or {}).items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = value.format(tmp=tmp)
    return out


def _cli(args, env, tmp: Path) -> subprocess.CompletedProcess:
    if env is None:
        return run_cli("gan_lab.train", *args, timeout=300)
    full = {**_env(env, tmp), "PYTHONUNBUFFERED": "1", "WANDB_SILENT": "true"}
    return subprocess.run(
        [sys.executable, "-m", "gan_lab.train", *args],
        cwd=ROOT,
        env=full,
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.fixture(scope="module", autouse=True)
def cli_results(request, tmp_path_factory):
    """Start the selected CLI rows in the background when the module starts (two processes at a time), so
    they overlap the in-process rows; each CLI test (they run last) waits for its own result."""
    selected = {item.callspec.id for item in request.session.items if item.name.startswith("test_bad_input_cli[")}
    pool = ThreadPoolExecutor(max_workers=max(1, min(2, os.cpu_count() or 1)))
    futures = {}
    for p in CLI_CASES:
        if p.id not in selected:
            continue
        overrides, expected, setup, env = p.values
        tmp = tmp_path_factory.mktemp(p.id)
        run = tmp / "run"
        if setup:
            setup(tmp, run)
        before = _files(run)
        args = [*_fmt(overrides, tmp, run), f"hydra.run.dir={run}"]
        if not any(a.startswith(("logger=", "logger.", "+logger.")) for a in args):
            args.insert(0, "logger=none")
        futures[p.id] = (pool.submit(_cli, args, env, tmp), tmp, run, before)
    yield futures
    pool.shutdown(wait=True, cancel_futures=True)


# ---- the catalogue ------------------------------------------------------------------------------------
@pytest.mark.parametrize("overrides,expected,setup,env", CASES)
def test_bad_input(overrides, expected, setup, env, tmp_path, monkeypatch):
    import pytorch_lightning as pl

    from gan_lab.train import train

    def no_fit(*args, **kwargs):
        raise AssertionError("training started: Trainer.fit was called")

    monkeypatch.setattr(pl.Trainer, "fit", no_fit)
    tmp, run = tmp_path / "files", tmp_path / "run"
    tmp.mkdir()
    for key, value in (env or {}).items():
        if value is None:
            monkeypatch.delenv(key, raising=False)
        else:
            monkeypatch.setenv(key, value.format(tmp=tmp))
    if setup:
        setup(tmp, run)
    before = _files(run)
    overrides = _fmt(overrides, tmp, run)
    if not any(o.startswith(("logger=", "logger.", "+logger.")) for o in overrides):
        overrides.insert(0, "logger=none")
    cfg = compose_cfg(*overrides)
    with pytest.raises(ConfigError) as e:
        train(cfg, run)
    check_error(f"error: {e.value}", _fmt(expected, tmp, run), before, run)


def test_catalogue_size():
    assert len(CLI_CASES) + len(CASES) >= 25
    ids = [p.id for p in CLI_CASES + CASES]
    assert len(ids) == len(set(ids))


# ---- what must still pass validation ----------------------------------------------------------------------
def _presets():
    conf = CONF_DIR
    out = [("model=" + p.stem,) for p in sorted((conf / "model").glob("*.yaml"))]
    out += [("model=gan_mlp", "data=" + p.stem) for p in sorted((conf / "data").glob("*.yaml"))]
    out += [("experiment=" + p.stem,) for p in sorted((conf / "experiment").glob("*.yaml"))]
    out += [("+sweep=" + p.stem,) for p in sorted((conf / "sweep").glob("*.yaml"))]
    out += [("logger=" + p.stem,) for p in sorted((conf / "logger").glob("*.yaml"))]
    return out


@pytest.mark.parametrize("overrides", _presets(), ids=lambda o: " ".join(o))
def test_shipped_configs_pass_validate(overrides):
    from gan_lab.config import validate

    validate(compose_cfg(*overrides))


@pytest.mark.parametrize(
    "overrides",
    [
        ("trainer.max_steps=-1", "trainer.max_epochs=3"),
        ("threads=1", "seed=4294967295", "overwrite=true"),
        ("model.grad_clip=1.0", "+model.g_optimizer.weight_decay=0.01", "+model.g_optimizer.eps=1e-8"),
        ("trainer.devices=auto", "trainer.precision=bf16-mixed", "trainer.log_every_n_steps=0"),
        ("+logger.wandb.mode=disabled",),
        ("logger.wandb.offline=false", "+logger.wandb.mode=offline"),
    ],
    ids=lambda o: " ".join(o),
)
def test_valid_edges_pass_validate(overrides, monkeypatch, tmp_path):
    from gan_lab.config import validate

    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("NETRC", str(tmp_path / "no.netrc"))
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    validate(compose_cfg(*overrides))


@pytest.mark.parametrize("how", ["api_key", "netrc", "env_mode_offline"])
def test_wandb_online_with_credentials_passes(how, monkeypatch, tmp_path):
    from gan_lab.config import validate

    for key in ("WANDB_API_KEY", "WANDB_IDENTITY_TOKEN_FILE", "WANDB_MODE", "WANDB_BASE_URL"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("NETRC", str(tmp_path / "netrc"))
    cfg = compose_cfg("logger.wandb.offline=false")
    with pytest.raises(ConfigError, match="needs W&B credentials"):
        validate(cfg)
    if how == "api_key":
        monkeypatch.setenv("WANDB_API_KEY", "x" * 40)
    elif how == "netrc":
        (tmp_path / "netrc").write_text("machine api.wandb.ai\n  login user\n  password " + "k" * 40 + "\n")
    else:
        monkeypatch.setenv("WANDB_MODE", "offline")
    validate(cfg)


def test_readable_checkpoint_passes(tmp_path):
    import torch

    import gan_lab
    from gan_lab.config import check_checkpoint
    from gan_lab.errors import ConfigError

    state = {"state_dict": {"w": torch.zeros(2)}, "pytorch-lightning_version": "2.6"}
    torch.save({**state, "gan_lab_format": gan_lab.CHECKPOINT_FORMAT}, tmp_path / "ok.ckpt")
    check_checkpoint(tmp_path / "ok.ckpt")
    torch.save(state, tmp_path / "old.ckpt")  # no format stamp: an older gan_lab wrote it
    with pytest.raises(ConfigError, match=r"was written by gan_lab before 0.1.0 .* start a new run"):
        check_checkpoint(tmp_path / "old.ckpt")


# ---- the CLI rows last: their processes ran in the background meanwhile ----------------------------------
@pytest.mark.parametrize("overrides,expected,setup,env", CLI_CASES)
def test_bad_input_cli(overrides, expected, setup, env, cli_results, request):
    future, tmp, run, before = cli_results[request.node.callspec.id]
    r = future.result()
    assert r.returncode == 2, f"exit {r.returncode}\n{r.stderr[-3000:]}"
    check_error(r.stderr, _fmt(expected, tmp, run), before, run)
