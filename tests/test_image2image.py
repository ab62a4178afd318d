"""pix2pix, super-resolution and inpainting on the one loop: fast_dev_run, real output checks, tricks."""

from __future__ import annotations

import pytest
import torch
from conftest import CONF, FAST, SHARED_DATA, compose_cfg, needs_shared, train_run

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
    assert task.discriminator_input(fake, cond).shape[1] == cond.shape[1] + target.shape[1]
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


def test_paired_metrics_are_logged_periodically(tmp_path):
    """The evaluation callback logs the held-out paired metrics every metrics.every_n_steps, not only at the end."""
    import csv

    over = ["logger=csv", "callbacks.progress=null", "callbacks.samples.every_n_steps=0"]
    m = train_run(tmp_path, *over, *CASES["srresnet"], "trainer.max_steps=4", "metrics.every_n_steps=2", fast=False)
    assert m["status"] == "completed" and m["psnr_y"] > 0
    rows = list(csv.DictReader((tmp_path / "metrics.csv").open()))
    steps = sorted({int(r["step"]) for r in rows if r.get("val/psnr_y")})
    assert steps == [2, 4], steps


@needs_shared
def test_sr_checkpoint_benchmarks_on_set5(tmp_path):
    """An SR run's checkpoint goes through the paper protocol on Set5 (full images, any size)."""
    from gan_lab.errors import ConfigError
    from gan_lab.metrics.sr_benchmark import benchmark_sr, load_sr_generator

    train_run(tmp_path, *CASES["srresnet"], "trainer.max_steps=2")
    g = load_sr_generator(tmp_path / "checkpoints" / "last.ckpt")
    r = benchmark_sr(g, SHARED_DATA / "sr" / "CSet5", 4)
    assert r["n_images"] == 5 and 0 < r["psnr_y"] < 60 and -1 < r["ssim_y"] <= 1
    with pytest.raises(ConfigError, match="does not exist"):
        load_sr_generator(tmp_path / "nope.ckpt")


def test_inpainting_changes_only_the_hole(tmp_path):
    dm, task, _ = make(tmp_path, *CASES["context_encoder"])
    batch = next(iter(dm.train_dataloader()))
    real, cond = task.unpack(batch)
    masked, mask = cond
    assert mask.shape == (len(real), 1, 32, 32) and mask.sum() > 0
    out = task.composite(task.generate(cond, len(real)), cond)  # the sample: G's output pasted into the hole
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


def _vgg19_file(path):
    """A VGG19 state dict in torchvision's format (random weights), as a user's vgg19-*.pth would be."""
    from gan_lab.nets.vgg import VGG19

    state, c, idx = {}, 3, 0
    for v in VGG19:
        if v == "M":
            idx += 1
            continue
        state[f"features.{idx}.weight"] = torch.randn(v, c, 3, 3) * 0.05
        state[f"features.{idx}.bias"] = torch.zeros(v)
        c, idx = v, idx + 2
    state["classifier.0.weight"] = torch.zeros(2, 2)
    torch.save(state, path)
    return path


def test_vgg_content_loss_from_a_users_weights_file(tmp_path):
    from gan_lab.nets.vgg import VGGFeatures, layer_names

    assert layer_names()["relu2_2"] == 8 and layer_names()["relu5_4"] == 35  # torchvision's indices
    weights = _vgg19_file(tmp_path / "vgg19.pth")
    net = VGGFeatures(weights, "relu2_2")
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    assert net(x).shape == (2, 128, 16, 16) and not any(p.requires_grad for p in net.parameters())
    dm, task, _ = make(tmp_path / "run", *CASES["srgan"], "model.content_loss=vgg", f"model.vgg_weights={weights}",
                       "model.vgg_layer=relu2_2")
    lr, hr = next(iter(dm.train_dataloader()))
    fake = task.generate(lr, len(lr))
    loss, logs = task.extra_g_loss(hr, hr, lr)
    assert float(loss) == 0.0  # identical images: no content loss
    loss, logs = task.extra_g_loss(fake, hr, lr)
    assert float(loss) > 0 and "content_vgg" in logs
    loss.backward()
    assert task.generator.tail.weight.grad is not None  # the loss trains G through the frozen VGG
    assert not any(k.startswith("_vgg") or "vgg" in k for k in task.state_dict())  # not saved in checkpoints
    m = train_run(tmp_path / "fit", *CASES["srgan"], "model.content_loss=vgg", f"model.vgg_weights={weights}",
                  "model.vgg_layer=relu2_2", "+trainer.fast_dev_run=true")
    assert m["status"] == "completed" and m["content_vgg"] > 0


@pytest.mark.parametrize(
    "over, match",
    [
        (["model.content_loss=vgg"], "vgg_weights=None is not a file"),
        (["model.content_loss=vgg", "model.vgg_weights=WEIGHTS", "model.vgg_layer=relu6_1"], "not a VGG19 layer"),
        (["model.content_loss=vgg", "model.vgg_weights=BAD"], "does not hold VGG19 conv weights"),
        (["model.content_loss=perceptual"], "allowed l1, mse, vgg, d_features"),
        (["model=srresnet", "model.content_loss=d_features"], "needs a trained D"),
    ],
)
def test_content_loss_bad_input(over, match, tmp_path):
    from gan_lab.errors import ConfigError

    weights = _vgg19_file(tmp_path / "vgg19.pth")
    torch.save({"features.0.weight": torch.zeros(1)}, tmp_path / "bad.pth")
    over = [o.replace("WEIGHTS", str(weights)).replace("BAD", str(tmp_path / "bad.pth")) for o in over]
    with pytest.raises(ConfigError, match=match):
        make(tmp_path / "run", *CASES["srgan"], *over)


def test_d_features_content_loss_trains(tmp_path):
    m = train_run(tmp_path, *CASES["srgan"], "model.content_loss=d_features", "+trainer.fast_dev_run=true")
    assert m["status"] == "completed" and m["content_d_features"] >= 0
