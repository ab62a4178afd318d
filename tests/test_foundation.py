"""Foundation: every config composes and builds, every model x data pair trains one batch, outputs exist."""

from __future__ import annotations

import json

import pytest
import torch
from conftest import CONF, SHARED_DATA, compose_cfg, needs_shared, run_cli, train_run

MODELS = ["gan_mlp", "dcgan"]
DATA = ["digits", "toy2d_ring", "toy2d_grid"]
PAIRS = [(m, d) for m in MODELS for d in DATA if not (m == "dcgan" and d.startswith("toy2d"))]


MNIST = [f"data.root={SHARED_DATA / 'mnist'}", "data.split=t10k"]  # the MNIST IDX files of ../shared/data
# the data a model needs, and the model a data set goes with, for the compose-everything test
PARTNER = {
    "pix2pix": ["data=edges2digits"],
    "srresnet": ["data=sr_folder", "data.n_patches=40"],
    "srgan": ["data=sr_folder", "data.n_patches=40"],
    "toy2d_ring": ["model=gan_mlp"],
    "toy2d_grid": ["model=gan_mlp"],
    "edges2digits": ["model=pix2pix"],
    "colorize": ["model=pix2pix", "data.n_patches=40"],
    "sr_folder": ["model=srresnet", "data.n_patches=40"],
    "inpainting": ["model=context_encoder"],
    "mnist": MNIST,
    "stacked_mnist": MNIST,
    "digits2mnist": ["model=cyclegan", *MNIST],
    "cyclegan": ["data=digits2mnist", *MNIST],
    # experiment presets: the data they name, made small
    "srresnet_x4": ["data.root=skimage", "data.n_patches=40"],
    "unrolled_stacked_d2": [*MNIST, "data.n_samples=256"],
    "unrolled_stacked_d4": [*MNIST, "data.n_samples=256"],
}
# Data that only exists as the user's files: tests/test_data_real.py and tests/test_cyclegan.py build them.
USER_DATA = ("paired_folder", "image_folder", "cifar10", "cifar100", "lmdb", "unpaired_folder", "dcgan64_folder")


def group_options(group: str) -> list[str]:
    return sorted(p.stem for p in (CONF / group).glob("*.yaml"))


@pytest.mark.parametrize("group", ["model", "data", "trainer", "logger", "callbacks", "experiment"])
def test_every_conf_file_composes_and_builds(group, tmp_path):
    """Each option of each group composes with the defaults and its objects instantiate."""
    from gan_lab.train import build_objects

    for option in group_options(group):
        partner = PARTNER.get(option, []) if group in ("model", "data", "experiment") else []
        if any(str(SHARED_DATA) in o for o in partner) and not SHARED_DATA.is_dir():
            continue  # needs ../shared/data
        if option in USER_DATA:
            continue  # needs the user's files (see USER_DATA)
        cfg = compose_cfg(f"{group}={option}", *partner)
        assert group == "experiment" or group in cfg, f"{group}={option} composed to nothing"
        dm, task, trainer = build_objects(cfg, tmp_path / group / option)
        batch = next(iter(dm.train_dataloader()))
        real, cond = task.unpack(batch) if hasattr(task, "unpack") else (batch[0], None)
        assert task.generate(cond, len(real)).shape == real.shape


def test_hydra_run_dirs_are_unique():
    import re

    cfg = compose_cfg(hydra=True)
    assert re.fullmatch(r"outputs/\d{4}-\d\d-\d\d/\d\d-\d\d-\d\d-\d{6}", cfg.hydra.run.dir)  # microseconds


@pytest.mark.parametrize("model,data", PAIRS)
def test_build_objects(model, data, tmp_path):
    from gan_lab.train import build_objects

    cfg = compose_cfg(f"model={model}", f"data={data}", "logger=csv")
    dm, task, trainer = build_objects(cfg, tmp_path)
    real, _ = task.unpack(next(iter(dm.train_dataloader())))
    fake = task.generate(None, 4)
    assert fake.shape[1:] == real.shape[1:] == tuple(dm.shape)
    assert task.discriminator(fake).shape == (4, 1)


@pytest.mark.parametrize("model,data", PAIRS)
def test_fast_dev_run(model, data, tmp_path):
    m = train_run(tmp_path, f"model={model}", f"data={data}", "+trainer.fast_dev_run=true")
    assert m["status"] == "completed"
    assert {"d_loss", "g_loss"} <= set(m)
    assert (tmp_path / "samples" / "samples_final.png").exists()


@pytest.mark.parametrize("loss", ["minimax", "non_saturating", "least_squares", "hinge", "wasserstein"])
def test_losses_train(loss, tmp_path):
    m = train_run(tmp_path, "model=gan_mlp", "data=toy2d_ring", f"model.loss={loss}", "trainer.max_steps=20")
    assert m["status"] == "completed" and m["steps"] == 20


def test_run_outputs_and_resume(tmp_path):
    m = train_run(tmp_path, "model=gan_mlp", "data=digits", "trainer.max_steps=30", "trainer.log_every_n_steps=10")
    assert m["status"] == "completed" and m["steps"] == 30
    ckpt = tmp_path / "checkpoints" / "last.ckpt"
    assert ckpt.exists()
    state = torch.load(ckpt, weights_only=True)  # plain containers only
    assert state["global_step"] == 30
    assert (tmp_path / "metrics.csv").read_text().startswith(("step", "epoch"))
    # a finished run directory is never reused silently
    from gan_lab.errors import ConfigError

    with pytest.raises(ConfigError, match="already holds a finished run"):
        train_run(tmp_path, "model=gan_mlp", "data=digits", "trainer.max_steps=40")
    m1 = json.loads((tmp_path / "metrics.json").read_text())
    assert m1["total_wall_time_s"] == m1["wall_time_s"] > 0  # a new run: this process only
    m2 = train_run(tmp_path, "model=gan_mlp", "data=digits", "trainer.max_steps=40", "ckpt_path=last")
    assert m2["steps"] == 40
    # resumed: wall_time_s is this process's, total_wall_time_s adds the earlier process's
    assert m2["total_wall_time_s"] == pytest.approx(m1["total_wall_time_s"] + m2["wall_time_s"], abs=0.02)


def test_same_seed_same_result(tmp_path):
    a = train_run(tmp_path / "a", "model=gan_mlp", "data=toy2d_ring", "trainer.max_steps=40", "seed=3")
    b = train_run(tmp_path / "b", "model=gan_mlp", "data=toy2d_ring", "trainer.max_steps=40", "seed=3")
    c = train_run(tmp_path / "c", "model=gan_mlp", "data=toy2d_ring", "trainer.max_steps=40", "seed=4")
    assert a["d_loss"] == b["d_loss"] and a["g_loss"] == b["g_loss"]
    assert a["d_loss"] != c["d_loss"]


@pytest.mark.slow  # ~1.5 min of training: the separate slow CI step
def test_gan_mlp_learns_ring(tmp_path):
    """Generated points move from ~1 away from the modes to within 0.1 of them."""
    from gan_lab.train import build_objects

    cfg = compose_cfg(
        "model=gan_mlp",
        "data=toy2d_ring",
        "trainer.max_steps=3000",
        "logger=csv",
        "callbacks.progress=null",
        "callbacks.samples.every_n_steps=0",
        "trainer.enable_progress_bar=false",
    )
    dm, task, trainer = build_objects(cfg, tmp_path)
    centers = dm.centers

    def mean_dist():
        x = task.generate_samples(2000)
        return torch.cdist(x, centers).min(1).values.mean().item()

    before = mean_dist()
    trainer.fit(task, datamodule=dm)
    after = mean_dist()
    assert before > 0.5, before
    assert after < 0.1, (before, after)


@needs_shared
def test_mnist_idx(tmp_path):
    root = SHARED_DATA / "mnist"
    m = train_run(
        tmp_path, "model=dcgan", "data=mnist", f"data.root={root}", "data.split=t10k", "+trainer.fast_dev_run=true"
    )
    assert m["status"] == "completed"
    from gan_lab.data.mnist import load_mnist

    x, y = load_mnist(root, "t10k")
    assert x.shape == (10000, 1, 28, 28) and y.max() == 9


def test_mnist_missing_file_one_line(tmp_path):
    r = run_cli("gan_lab.train", "data=mnist", f"data.root={tmp_path}", f"hydra.run.dir={tmp_path / 'run'}")
    assert r.returncode == 2
    err = r.stderr.strip().splitlines()
    assert len(err) == 1 and "train-images-idx3-ubyte.gz" in err[0], r.stderr


def test_multirun_two_seeds(tmp_path):
    sweep = tmp_path / "sweep"
    r = run_cli(
        "gan_lab.train",
        "-m",
        "seed=0,1",
        "data=toy2d_ring",
        "model=gan_mlp",
        "trainer.max_steps=60",
        "logger=none",
        "callbacks.progress=null",
        f"hydra.sweep.dir={sweep}",
    )
    assert r.returncode == 0, r.stderr[-2000:]
    metrics = [json.loads((sweep / str(i) / "metrics.json").read_text()) for i in (0, 1)]
    assert all(m["status"] == "completed" for m in metrics)
    assert metrics[0]["d_loss"] != metrics[1]["d_loss"]


def test_divergence_is_recorded_not_crashed(tmp_path):
    m = train_run(
        tmp_path,
        "model=gan_mlp",
        "data=toy2d_ring",
        "trainer.max_steps=100",
        "trainer.log_every_n_steps=5",
        "callbacks.checkpoint.every_n_train_steps=10",
        "+callbacks.nan._target_=gan_lab.callbacks.faults.NaNAtStep",
        "+callbacks.nan.step=33",
    )
    assert m["status"] == "diverged", m
    assert "non-finite" in m["error"] or "not finite" in m["error"]
    state = torch.load(tmp_path / "checkpoints" / "last.ckpt", weights_only=True)
    assert state["global_step"] == 30  # the last good checkpoint, not the diverged state
    assert all(torch.isfinite(v).all() for v in state["state_dict"].values() if v.is_floating_point())


def test_ctrl_c_is_recorded_as_interrupted_not_completed(tmp_path):
    """Lightning answers Ctrl+C with a graceful shutdown and sys.exit(1): the run must not read 'completed'."""
    import json
    import signal

    handler = signal.getsignal(signal.SIGINT)
    try:
        with pytest.raises(SystemExit):
            train_run(
                tmp_path,
                "model=gan_mlp",
                "data=toy2d_ring",
                "trainer.max_steps=50",
                "+callbacks.stop._target_=gan_lab.callbacks.faults.InterruptAtStep",
                "+callbacks.stop.step=7",
            )
    finally:
        signal.signal(signal.SIGINT, handler)  # Lightning ignores SIGINT after the first one
    m = json.loads((tmp_path / "metrics.json").read_text())
    assert m["status"] == "failed" and m["error"] == "interrupted" and m["steps"] == 7, m


def test_metrics_written_for_images_and_points(tmp_path):
    """The evaluation callback fills metrics.json (image metrics on digits, mode metrics on the ring)."""
    m = train_run(
        tmp_path / "img",
        "model=dcgan",
        "data=digits",
        "trainer.max_steps=3",
        "callbacks.metrics.n_samples=500",
        "model.generator.ngf=8",
        "model.discriminator.ndf=8",
        fast=False,
    )
    for key in ("fid", "kid", "class_modes", "class_kl", "precision", "recall", "density", "coverage"):
        assert key in m and isinstance(m[key], float), key
    assert m["protocol"]["feature_net"] == "digits" and m["protocol"]["n_generated"] == 500
    p = train_run(
        tmp_path / "pts", "model=gan_mlp", "data=toy2d_ring", "trainer.max_steps=3", "logger=none", fast=False
    )
    assert {"modes_captured", "hq_fraction", "reverse_kl"} <= set(p)


def test_inception_without_weights_fails_early(tmp_path):
    env = {"GAN_LAB_INCEPTION_WEIGHTS": str(tmp_path / "missing.pth"), "TORCH_HOME": str(tmp_path / "hub")}
    r = run_cli("gan_lab.train", "metrics.fid.features=inception", "logger=none", f"hydra.run.dir={tmp_path}", env=env)
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "inception" in lines[0] and "GAN_LAB_INCEPTION_WEIGHTS" in lines[0], r.stderr
    assert not (tmp_path / "checkpoints").exists()


def test_pacgan_grid_preset_shares_the_ring_nets_with_its_own_schedule():
    """The PacGAN Table 1 presets: one set of paper nets (written in the ring's preset), each table its own data
    and CPU schedule (the values docs/reproduction.md states)."""
    ring, grid = compose_cfg("experiment=pacgan_ring_gan"), compose_cfg("experiment=pacgan_grid_gan")
    for key in ("generator", "discriminator", "loss"):
        assert grid.model[key] == ring.model[key]
    assert list(grid.model.generator.hidden) == [400] * 4 and grid.model.discriminator.maxout == 5
    for cfg in (ring, grid):
        assert (cfg.data.batch_size, cfg.metrics.n_samples) == (100, 2500)
    assert (grid.data.kind, ring.data.kind) == ("grid", "ring")
    assert (grid.model.g_optimizer.lr, grid.model.d_optimizer.lr, grid.model.lr_decay_from) == (4e-3, 4e-3, 0.0)
    assert (ring.model.g_optimizer.lr, ring.model.d_optimizer.lr, ring.model.lr_decay_from) == (1e-3, 5e-4, 0.15)
    assert (grid.trainer.max_steps, ring.trainer.max_steps) == (4000, 6000)
    pac2 = compose_cfg("experiment=pacgan_grid_pac2")
    assert pac2.data.batch_size == 200 and pac2.trick.pacgan.m == 2 and pac2.model.g_optimizer.lr == 4e-3
