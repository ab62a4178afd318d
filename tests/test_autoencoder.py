"""Autoencoder / VAE task (model=ae, model=vae): nets, KL, validation, logging, held-out numbers, pictures."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from conftest import SHARED_DATA, compose_cfg, needs_shared, train_run

from gan_lab.errors import ConfigError
from gan_lab.metrics.image_quality import psnr
from gan_lab.tasks.autoencoder import AutoencoderTask, kl_to_standard_normal


@pytest.fixture(autouse=True)
def one_thread():
    """Other jobs share the 2 cores: two intra-op threads on small nets run ~15x slower than one."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.mark.parametrize("arch", ["conv", "mlp"])
@pytest.mark.parametrize("variational", [False, True])
@pytest.mark.parametrize("shape", [(1, 32, 32), (1, 28, 28)])
def test_shapes(arch, variational, shape):
    task = AutoencoderTask(arch=arch, latent_dim=8, variational=variational, data_shape=list(shape))
    x = torch.rand(5, *shape) * 2 - 1
    mu, logvar = task.encode(x)
    assert mu.shape == (5, 8)
    assert (logvar is not None) == variational and (logvar is None or logvar.shape == (5, 8))
    rec = task.reconstruct(x)
    assert rec.shape == x.shape and rec.abs().max() <= 1
    losses = task.losses(x)
    assert set(losses) == ({"recon_loss", "loss", "kl"} if variational else {"recon_loss", "loss"})
    assert all(v.dim() == 0 and torch.isfinite(v) for v in losses.values())
    task.train()
    s = task.generate_samples(7, batch_size=3)
    assert s.shape == (7, *shape) and s.device.type == "cpu" and not s.requires_grad
    assert task.training, "generate_samples must restore the training flag"


def test_kl_closed_form():
    mu, logvar = torch.ones(3, 4), torch.zeros(3, 4)
    assert torch.allclose(kl_to_standard_normal(mu, logvar), torch.full((3,), 0.5 * 4))
    mu, logvar = torch.zeros(2, 5), torch.full((2, 5), math.log(2.0))
    assert torch.allclose(kl_to_standard_normal(mu, logvar), torch.full((2,), 5 * 0.5 * (2 - 1 - math.log(2.0))))
    mu, logvar = torch.randn(6, 3), torch.randn(6, 3)
    q = torch.distributions.Normal(mu, (0.5 * logvar).exp())
    ref = torch.distributions.kl_divergence(q, torch.distributions.Normal(0.0, 1.0)).sum(1)
    assert torch.allclose(kl_to_standard_normal(mu, logvar), ref, atol=1e-5)


def test_kl_weight_warmup_and_recon_terms():
    task = AutoencoderTask(latent_dim=4, variational=True, beta=2.0, kl_warmup_steps=10, data_shape=[1, 8, 8])
    assert [task.kl_weight(s) for s in (0, 4, 9, 100)] == pytest.approx([0.2, 1.0, 2.0, 2.0])
    assert AutoencoderTask(latent_dim=4, variational=True, beta=0.5, data_shape=[1, 8, 8]).kl_weight(0) == 0.5
    x = torch.rand(2, 1, 8, 8) * 2 - 1
    logits = torch.randn(2, 1, 8, 8)
    bce = AutoencoderTask(latent_dim=4, recon_loss="bce", data_shape=[1, 8, 8])
    expected = torch.nn.functional.binary_cross_entropy(torch.sigmoid(logits), (x + 1) / 2, reduction="sum") / 2
    assert bce.recon_term(logits, x).mean() == pytest.approx(expected.item(), rel=1e-5)
    assert torch.allclose(bce.to_data(logits), 2 * torch.sigmoid(logits) - 1)
    mse = AutoencoderTask(latent_dim=4, recon_loss="mse", data_shape=[1, 8, 8])
    assert mse.recon_term(torch.atanh(x.clamp(-0.99, 0.99)), x.clamp(-0.99, 0.99)).abs().max() < 1e-4


def test_psnr():
    x = torch.zeros(2, 1, 4, 4)
    assert psnr(x + 0.1, x, (0.0, 1.0), "none").tolist() == pytest.approx([20.0, 20.0], abs=1e-4)


def _config_error(*overrides: str) -> str:
    from gan_lab.train import build_objects

    with pytest.raises(ConfigError) as e:
        build_objects(compose_cfg(*overrides, "logger=none"), Path("unused"))  # fails before writing anything
    msg = str(e.value)
    assert "\n" not in msg
    return msg


def test_latent_dim_must_compress():
    msg = _config_error("model=ae", "model.latent_dim=1024")  # digits: d = 1 * 32 * 32 = 1024
    assert msg.startswith("model.latent_dim=1024 is out of range; allowed [1, 1023]"), msg
    assert "model.latent_dim=0" in _config_error("model=vae", "model.latent_dim=0")
    assert "allowed [1, 255]" in _config_error("model=ae", "model.latent_dim=4096", "data.size=16")


def test_bad_fields_one_line():
    assert "allowed mse, bce" in _config_error("model=ae", "model.recon_loss=l1")
    assert "allowed mlp, conv" in _config_error("model=ae", "model.arch=resnet")
    assert "beta=-1" in _config_error("model=vae", "model.beta=-1")
    assert "unknown parameter 'latent'" in _config_error("model=ae", "+model.latent=3")


def test_tricks_rejected():
    msg = _config_error("model=vae", "trick=[label_smoothing,ema]")
    assert msg == "trick=label_smoothing,ema applies to adversarial tasks; model=vae has no discriminator", msg


@pytest.mark.parametrize("model", ["ae", "vae"])
def test_fast_dev_run(model, tmp_path):
    m = train_run(tmp_path, f"model={model}", "+trainer.fast_dev_run=true")
    assert m["status"] == "completed"
    assert {"recon_loss", "loss", "recon_mse", "recon_psnr"} <= set(m)
    assert ("kl" in m) == (model == "vae")
    for panel in ("samples", "reconstructions", "interpolation"):
        assert (tmp_path / "samples" / f"{panel}_final.png").exists(), panel


@needs_shared
def test_mnist_28px(tmp_path):
    """MNIST through the same data module; at 28 px the conv nets use two stride-2 stages."""
    root = SHARED_DATA / "mnist"
    m = train_run(
        tmp_path,
        "model=vae",
        "data=mnist",
        f"data.root={root}",
        "data.split=t10k",
        "data.size=28",
        "data.limit=500",
        "+trainer.fast_dev_run=true",
    )
    assert m["status"] == "completed" and m["recon_mse"] > 0


def test_sample_panels(tmp_path):
    from gan_lab.train import build_objects

    cfg = compose_cfg("model=vae", "logger=none", "callbacks.progress=null", "+trainer.fast_dev_run=true")
    dm, task, trainer = build_objects(cfg, tmp_path)
    trainer.fit(task, datamodule=dm)
    panels = task.sample_panels(dm)  # the data module passed in (the task interface)
    assert {k: tuple(v.shape) for k, v in panels.items()} == {
        "samples": (64, 1, 32, 32),
        "reconstructions": (64, 1, 32, 32),
        "interpolation": (64, 1, 32, 32),
    }
    val = dm.split_tensors("val")[0]
    assert torch.equal(panels["reconstructions"][0::2], val[:32])  # inputs interleaved with reconstructions
    task.eval()
    with torch.no_grad():
        assert torch.allclose(panels["interpolation"][0], task.reconstruct(val[:1])[0], atol=1e-5)  # starts at a code
    assert all(v.abs().max() <= 1 for v in panels.values())
    assert torch.equal(task.sample_panels(dm)["samples"], panels["samples"])  # fixed z


def test_ae_beats_mean_image(tmp_path):
    """A few hundred steps of a small MLP autoencoder reconstruct held-out digits far better than their mean."""
    from gan_lab.data.digits import DigitsDataModule

    dm = DigitsDataModule()
    train_x, val_x = dm.split_tensors("train")[0], dm.split_tensors("val")[0]
    baseline = (((val_x + 1) / 2 - (train_x.mean(0) + 1) / 2) ** 2).mean().item()  # [0, 1] scale, like recon_mse
    m = train_run(
        tmp_path,
        "model=ae",
        "model.arch=mlp",
        "model.hidden=[128]",
        "model.latent_dim=8",
        "model.optimizer.lr=3e-3",
        "trainer.max_steps=300",
        "trainer.log_every_n_steps=100",
        "callbacks.checkpoint=null",
    )
    assert m["status"] == "completed" and m["steps"] == 300
    assert m["recon_mse"] < 0.4 * baseline, (m["recon_mse"], baseline)
    assert m["recon_psnr"] > 10 * math.log10(1 / baseline) + 3
    assert m["recon_loss"] < 1024 * baseline  # train/recon_loss is the squared error summed over the 1024 values
    import csv

    rows = list(csv.DictReader((tmp_path / "metrics.csv").open()))
    logged = [int(r["step"]) for r in rows if r.get("train/recon_loss")]
    assert logged == [99, 199, 299], logged  # one window per log_every_n_steps reaches the loggers
    assert any(r.get("val/recon_psnr") for r in rows)
