"""pix2pix, super-resolution and inpainting on the one loop: fast_dev_run, real output checks, tricks."""

from __future__ import annotations

import pytest
import torch
from conftest import CONF, FAST, compose_cfg, train_run

CASES = {
    "pix2pix": ["model=pix2pix", "data=edges2digits"],
    "srresnet": ["model=srresnet", "data=sr_folder", "data.n_patches=48", "data.hr_patch=32", "data.batch_size=8"],
    "srgan": ["model=srgan", "data=sr_folder", "data.n_patches=48", "data.hr_patch=32", "data.batch_size=8"],
    "context_encoder": ["model=context_encoder", "data=digits"],
}


def make(tmp_path, *overrides):
    from gan_lab.train import build_objects

    return build_objects(compose_cfg(*FAST, *overrides), tmp_path)


@pytest.mark.parametrize("name", list(CASES))
def test_fast_dev_run_writes_panels_and_paired_metrics(name, tmp_path):
    m = train_run(tmp_path, *CASES[name], "+trainer.fast_dev_run=true")
    assert m["status"] == "completed"
    assert (tmp_path / "samples" / "panels_final.png").exists()
    keys = {
        "pix2pix": {"l1", "psnr", "ssim"},
        "srresnet": {"psnr_y", "ssim_y"},
        "srgan": {"psnr_y", "ssim_y"},
        "context_encoder": {"hole_l1", "hole_psnr", "psnr"},
    }[name]
    assert keys <= set(m), (keys, sorted(m))
    assert all(isinstance(m[k], float) for k in keys)


def test_pix2pix_shapes_and_d_sees_pairs(tmp_path):
    dm, task, _ = make(tmp_path, *CASES["pix2pix"])
    cond, target = next(iter(dm.train_dataloader()))
    fake = task.generate(cond, len(cond))
    assert fake.shape == target.shape and fake.min() >= -1 and fake.max() <= 1
    assert task.d_inputs(fake, cond).shape[1] == cond.shape[1] + target.shape[1]
    assert task.d_forward(fake, cond, 0).dim() == 4  # PatchGAN: a map of patch logits
    extra, logs = task.extra_g_loss(fake, target, cond)
    assert torch.allclose(extra, 100 * (fake - target).abs().mean())


def test_sr_output_size(tmp_path):
    dm, task, _ = make(tmp_path, *CASES["srresnet"])
    lr, hr = next(iter(dm.train_dataloader()))
    assert hr.shape[-1] == 4 * lr.shape[-1]
    out = task.generate(lr, len(lr))
    assert out.shape == hr.shape
    assert task.adv_weight == 0  # SRResNet is PSNR-oriented: no D step


def test_srgan_init_from_srresnet(tmp_path):
    m = train_run(tmp_path / "a", *CASES["srresnet"], "trainer.max_steps=2")
    assert m["status"] == "completed"
    ckpt = tmp_path / "a" / "checkpoints" / "last.ckpt"
    _, task, _ = make(tmp_path / "b", *CASES["srgan"], f"model.init_from={ckpt}")
    state = torch.load(ckpt, weights_only=True)["state_dict"]
    for k, v in task.generator.state_dict().items():
        assert torch.equal(v, state[f"generator.{k}"]), k
    assert task.adv_weight == pytest.approx(1e-3)


def test_inpainting_changes_only_the_hole(tmp_path):
    dm, task, _ = make(tmp_path, *CASES["context_encoder"])
    batch = next(iter(dm.train_dataloader()))
    real, cond = task.unpack(batch)
    masked, mask = cond
    assert mask.shape == (len(real), 1, 32, 32) and mask.sum() > 0
    out = task.generate(cond, len(real))
    outside = (1 - mask).bool().expand_as(real)
    assert torch.equal(out[outside], real[outside])  # everything outside the hole is the input
    inside = mask.bool().expand_as(real)
    assert not torch.allclose(out[inside], real[inside])


@pytest.mark.parametrize("model", ["pix2pix", "context_encoder", "srgan"])
@pytest.mark.parametrize(
    "trick",
    [
        "label_smoothing",
        "d_dropout",
        "spectral_norm",
        "instance_noise",
        "pacgan",
        "r1",
        "ema",
        "d_width",
        "minibatch_std",
        "feature_matching",
        "diffaugment",
    ],
)
def test_tricks_compose_with_image_tasks(model, trick, tmp_path):
    m = train_run(tmp_path, *CASES[model], f"trick=[{trick}]", "+trainer.fast_dev_run=true")
    assert m["status"] == "completed"


ALL_TRICKS = sorted(p.stem for p in (CONF / "trick").glob("*.yaml"))


@pytest.mark.parametrize("trick", ALL_TRICKS)
def test_every_trick_composes_with_pix2pix(trick, tmp_path):
    loss = ["model.loss=wasserstein"] if trick == "gradient_penalty" else []
    m = train_run(tmp_path, *CASES["pix2pix"], f"trick=[{trick}]", "+trainer.fast_dev_run=true", *loss)
    assert m["status"] == "completed"
