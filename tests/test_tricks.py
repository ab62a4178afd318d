"""Each trick's effect (not just that it runs), composition rules, and fast_dev_run with every model."""

from __future__ import annotations

import pytest
import torch
from conftest import CONF, FAST, ROOT, compose_cfg, run_cli, train_run
from torch import nn

from gan_lab.errors import ConfigError

TRICKS = sorted(p.stem for p in (CONF / "trick").glob("*.yaml"))


def make(tmp_path, *overrides):
    from gan_lab.train import build_objects

    cfg = compose_cfg(*FAST, *overrides)
    return build_objects(cfg, tmp_path)


def ring(tmp_path, *tricks, extra=()):
    return make(tmp_path, "model=gan_mlp", "data=toy2d_ring", f"trick=[{','.join(tricks)}]", *extra)


def fit(dm, task, trainer):
    trainer.fit(task, datamodule=dm)
    return task


def d_targets(task, step=0):
    out = torch.zeros(4000, 1)
    return task.tricks.targets(torch.ones_like(out), torch.zeros_like(out), step)


def test_every_trick_has_a_config_and_docs():
    page = (ROOT / "docs" / "tricks.md").read_text()
    assert len(TRICKS) >= 18
    for t in TRICKS:
        assert f"`{t}`" in page, f"docs/tricks.md does not list trick {t}"
        assert (ROOT / "gan_lab" / "tricks" / f"{t}.py").is_file(), f"trick={t} has no gan_lab/tricks/{t}.py"


@pytest.mark.parametrize("model", ["gan_mlp", "dcgan"])
@pytest.mark.parametrize("trick", TRICKS)
def test_trick_composes_with_model(trick, model, tmp_path):
    data = "toy2d_ring" if model == "gan_mlp" and trick != "diffaugment" else "digits"
    loss = ["model.loss=wasserstein"] if trick == "gradient_penalty" else []
    m = train_run(tmp_path, f"model={model}", f"data={data}", f"trick=[{trick}]", "+trainer.fast_dev_run=true", *loss)
    assert m["status"] == "completed"


def test_label_smoothing_targets(tmp_path):
    _, task, _ = ring(tmp_path, "label_smoothing")
    real_t, fake_t = d_targets(task)
    assert torch.allclose(real_t, torch.full_like(real_t, 0.9)) and (fake_t == 0).all()


def test_label_noise_bands(tmp_path):
    _, task, _ = ring(tmp_path, "label_noise")
    real_t, fake_t = d_targets(task)
    assert real_t.min() >= 0.7 and real_t.max() <= 1.2 and real_t.std() > 0.1
    assert fake_t.min() >= 0.0 and fake_t.max() <= 0.3


def test_label_flip_rate(tmp_path):
    _, task, _ = ring(tmp_path, "label_flip", extra=["trick.label_flip.p=0.2"])
    real_t, fake_t = d_targets(task)
    assert abs((real_t == 0).float().mean().item() - 0.2) < 0.03
    assert abs((fake_t == 1).float().mean().item() - 0.2) < 0.03


def test_label_flip_after_smoothing(tmp_path):
    _, task, _ = ring(tmp_path, "label_flip", "label_smoothing", extra=["trick.label_flip.p=0.5"])
    real_t, _ = d_targets(task)
    assert sorted(round(v, 4) for v in real_t.unique().tolist()) == [0.0, 0.9]


def test_d_dropout_modules(tmp_path):
    _, task, _ = make(tmp_path, "trick=[d_dropout]", "trick.d_dropout.rate=0.4")
    drops = [m for m in task.discriminator.modules() if isinstance(m, nn.Dropout)]
    assert len(drops) >= 2 and all(d.p == 0.4 for d in drops)
    assert not any(isinstance(m, nn.Dropout) for m in task.generator.modules())


def test_d_lr_scales_optimizer(tmp_path):
    _, task, _ = make(tmp_path, "trick=[d_lr]", "trick.d_lr.factor=0.1")
    opt_g, opt_d = task.configure_optimizers()
    assert opt_d.param_groups[0]["lr"] == pytest.approx(2e-5) and opt_g.param_groups[0]["lr"] == pytest.approx(2e-4)


def test_ttur_rates(tmp_path):
    _, task, _ = make(tmp_path, "trick=[ttur]")
    opt_g, opt_d = task.configure_optimizers()
    assert opt_g.param_groups[0]["lr"] == pytest.approx(1e-4) and opt_d.param_groups[0]["lr"] == pytest.approx(4e-4)


def test_d_width_param_count(tmp_path):
    _, base, _ = make(tmp_path / "a")
    _, half, _ = make(tmp_path / "b", "trick=[d_width]", "trick.d_width.factor=0.5")
    n = lambda t: sum(p.numel() for p in t.discriminator.parameters())  # noqa: E731
    assert 0.2 < n(half) / n(base) < 0.3  # ~ 0.5^2


def test_instance_noise_decays(tmp_path):
    _, task, _ = ring(
        tmp_path, "instance_noise", extra=["trick.instance_noise.std=0.5", "trick.instance_noise.anneal_steps=100"]
    )
    trick = task.tricks.tricks[0]
    x = torch.zeros(20000, 2)
    stds = [trick.d_input(x, s).std().item() for s in (0, 50, 100)]
    assert stds[0] == pytest.approx(0.5, rel=0.05) and stds[1] == pytest.approx(0.25, rel=0.05) and stds[2] == 0


def test_d_freeze_keeps_d(tmp_path):
    dm, task, trainer = ring(tmp_path, "d_freeze", extra=["trick.d_freeze.k=10", "trainer.max_steps=10"])
    before = [p.detach().clone() for p in task.discriminator.parameters()]
    g_before = [p.detach().clone() for p in task.generator.parameters()]
    fit(dm, task, trainer)
    assert all(torch.equal(a, b) for a, b in zip(before, task.discriminator.parameters()))
    assert not all(torch.equal(a, b) for a, b in zip(g_before, task.generator.parameters()))


def test_g_steps_per_batch(tmp_path):
    dm, task, trainer = ring(tmp_path, "g_steps", extra=["trick.g_steps.k=3", "trainer.max_steps=5"])
    fit(dm, task, trainer)
    opt_g, opt_d = (o.optimizer for o in task.optimizers())
    g_state = opt_g.state[next(iter(task.generator.parameters()))]
    d_state = opt_d.state[next(iter(task.discriminator.parameters()))]
    assert int(g_state["step"]) == 15 and int(d_state["step"]) == 5 and trainer.global_step == 5


def test_gradient_penalty_n_critic(tmp_path):
    dm, task, trainer = ring(tmp_path, "gradient_penalty", extra=["model.loss=wasserstein", "trainer.max_steps=4"])
    fit(dm, task, trainer)
    opt_d = task.optimizers()[1].optimizer
    assert int(opt_d.state[next(iter(task.discriminator.parameters()))]["step"]) == 20


@pytest.mark.parametrize("trick", ["r1", "gradient_penalty"])
def test_penalty_nonzero_and_differentiable(trick, tmp_path):
    _, task, _ = ring(tmp_path, trick)
    real, fake = torch.randn(64, 2), torch.randn(64, 2)
    pen = task.tricks.d_penalty(task, real, fake, None, 0)
    assert pen.item() > 0
    pen.backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in task.discriminator.parameters())


def test_ema_tracks_g(tmp_path):
    dm, task, trainer = ring(tmp_path, "ema", extra=["trick.ema.decay=0.9", "trainer.max_steps=50"])
    ema = task.sampling_generator()
    assert ema is not task.generator
    init = [p.detach().clone() for p in ema.parameters()]
    fit(dm, task, trainer)
    g, e = (
        torch.cat([p.flatten() for p in task.generator.parameters()]),
        torch.cat([p.flatten() for p in ema.parameters()]),
    )
    i = torch.cat([p.flatten() for p in init])
    assert (e - g).norm() < 0.5 * (i - g).norm()  # moved towards G
    assert not torch.equal(e, g)  # but is an average, not a copy
    state = task.state_dict()
    assert any(k.startswith("tricks.") and "ema" in k for k in state)  # travels in checkpoints


def test_pacgan_packs_inputs(tmp_path):
    _, task, _ = make(tmp_path, "trick=[pacgan]", "trick.pacgan.m=2")
    x = torch.randn(8, 1, 32, 32)
    packed = task.tricks.d_input(x, 0)
    assert packed.shape == (4, 2, 32, 32) and torch.equal(packed[1, 1], x[3, 0])
    assert task.d_forward(x, None, 0).shape == (4, 1)


def test_spectral_norm_bounds_sigma(tmp_path):
    _, task, _ = ring(tmp_path, "spectral_norm")
    lin = [m for m in task.discriminator.modules() if isinstance(m, nn.Linear)]
    assert all(hasattr(m, "parametrizations") for m in lin)
    task.discriminator.train()
    for _ in range(30):
        task.discriminator(torch.randn(8, 2))
    sigma = torch.linalg.matrix_norm(lin[0].weight.detach(), ord=2).item()
    assert sigma == pytest.approx(1.0, rel=0.1)


def test_minibatch_std_feature(tmp_path):
    from gan_lab.nets.common import MinibatchStd

    _, task, _ = make(tmp_path, "trick=[minibatch_std]")
    assert any(isinstance(m, MinibatchStd) for m in task.discriminator.modules())
    x = torch.randn(8, 5, 4, 4)
    assert MinibatchStd()(x).shape == (8, 6, 4, 4)


def test_diffaugment_changes_inputs_differentiably(tmp_path):
    _, task, _ = make(tmp_path, "trick=[diffaugment]")
    x = torch.rand(16, 1, 32, 32, requires_grad=True)
    y = task.tricks.d_input(x, 0)
    assert y.shape == x.shape and not torch.allclose(x, y)
    y.sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    with pytest.raises(ConfigError, match="diffaugment needs image data"):
        ring(tmp_path / "r", "diffaugment")


def test_feature_matching_grad_reaches_g(tmp_path):
    _, task, _ = ring(tmp_path, "feature_matching")
    fake = task.generate(None, 64)
    loss = task.tricks.g_loss(task, fake, torch.randn(64, 2), None, 0)
    assert loss.item() > 0
    loss.backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in task.generator.parameters())


@pytest.mark.parametrize(
    "overrides,match",
    [
        (
            ["trick=[d_dropout]", "trick.d_dropout.rate=1.0"],
            r"trick.d_dropout: rate=1.0 is out of range; allowed \[0.0, 1.0\)",
        ),
        (["trick=[label_flip]", "trick.label_flip.p=1.5"], r"trick.label_flip: p=1.5 .* \[0.0, 1.0\]"),
        (["trick=[instance_noise]", "trick.instance_noise.std=-0.1"], r"trick.instance_noise: std=-0.1"),
        (["trick=[d_lr]", "trick.d_lr.factor=-1"], r"trick.d_lr: factor=-1"),
        (["trick=[label_smoothing,label_noise]"], r"trick=label_smoothing and trick=label_noise cannot be combined"),
        (["trick=[d_lr,ttur]"], r"trick=d_lr and trick=ttur cannot be combined"),
        (["trick=[label_smoothing]", "model.loss=hinge"], r"trick=label_smoothing needs a loss with real/fake targets"),
        (["trick=[label_smoothing]", "+trick.label_smoothing.reel=0.8"], r"unknown parameter 'reel'; allowed real"),
    ],
)
def test_bad_trick_values_fail_before_training(overrides, match, tmp_path):
    with pytest.raises(ConfigError, match=match):
        make(tmp_path, "model=gan_mlp", "data=toy2d_ring", *overrides)


def test_unknown_trick_cli_one_line(tmp_path):
    r = run_cli("gan_lab.train", "trick=[label_smothing]", "logger=none", f"hydra.run.dir={tmp_path}")
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "label_smothing" in lines[0] and "label_smoothing" in lines[0], r.stderr


def test_sweep_over_trick_lists(tmp_path):
    sweep = tmp_path / "s"
    r = run_cli(
        "gan_lab.train",
        "-m",
        "trick=[],[label_smoothing],[label_flip],[d_dropout],[instance_noise]",
        "data=toy2d_ring",
        "model=gan_mlp",
        "trainer.max_steps=20",
        "logger=none",
        "callbacks.progress=null",
        "trainer.enable_progress_bar=false",
        f"hydra.sweep.dir={sweep}",
    )
    assert r.returncode == 0, r.stderr[-3000:]
    assert sorted(p.name for p in sweep.iterdir() if p.is_dir()) == ["0", "1", "2", "3", "4"]
    assert all((sweep / str(i) / "metrics.json").exists() for i in range(5))


# ---- CycleGAN: the generator pair and the discriminator pair take every trick ----------------------------
def unpaired_folder(root):
    """trainA/ trainB/ testA/ testB/ with 8 (4) random 16 px PNGs each."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    for folder, n in (("trainA", 8), ("trainB", 8), ("testA", 4), ("testB", 4)):
        (root / folder).mkdir(parents=True)
        for i in range(n):
            Image.fromarray(rng.integers(0, 255, (16, 16, 3), dtype=np.uint8)).save(root / folder / f"{i}.png")
    return root


CYCLEGAN = ["model=cyclegan", "data=unpaired_folder", "data.size=16", "data.batch_size=4", "model.n_eval=4",
            "model.generator.ngf=4", "model.generator.n_blocks=1", "model.discriminator.ndf=4"]  # fmt: skip


@pytest.mark.parametrize("trick", TRICKS)
def test_trick_composes_with_cyclegan(trick, tmp_path):
    root = unpaired_folder(tmp_path / "data")
    m = train_run(tmp_path / "run", *CYCLEGAN, f"data.root={root}", f"trick=[{trick}]", "+trainer.fast_dev_run=true")
    assert m["status"] == "completed" and m["a2b_cycle_l1"] > 0


def test_pacgan_packs_each_domain_for_its_own_discriminator(tmp_path):
    """D_A judges packed A samples, D_B packed B samples: packing never mixes the two domains' halves."""
    root = unpaired_folder(tmp_path / "data")
    _, task, _ = make(tmp_path, *CYCLEGAN, f"data.root={root}", "trick=[pacgan]", "trick.pacgan.m=2")
    task.eval()
    a, b = torch.rand(4, 3, 16, 16), torch.rand(4, 3, 16, 16)
    out = task.d_forward(torch.cat([a, b]), (a, b), 0)
    d = task.discriminator
    assert d.a.body[0].in_channels == 6  # 2 packed RGB samples
    assert torch.allclose(out, torch.cat([d.a(a.reshape(2, 6, 16, 16)), d.b(b.reshape(2, 6, 16, 16))]))


def test_ema_averages_both_generators(tmp_path):
    root = unpaired_folder(tmp_path / "data")
    dm, task, trainer = make(tmp_path, *CYCLEGAN, f"data.root={root}", "trick=[ema]", "trainer.max_steps=3")
    fit(dm, task, trainer)
    ema = task.sampling_generator()
    assert ema is not task.generator and {n for n, _ in ema.named_children()} == {"ab", "ba"}
    for net in ("ab", "ba"):
        p_ema, p = next(getattr(ema, net).parameters()), next(getattr(task.generator, net).parameters())
        assert not torch.equal(p_ema, p)  # an average, not a copy of the trained weights


# ---- class-conditional models (model.conditional): every trick, and the tricks that touch (x, y) pairs --
@pytest.mark.parametrize("mode", ["concat", "projection", "acgan"])
@pytest.mark.parametrize("trick", TRICKS)
def test_trick_composes_with_conditional_model(trick, mode, tmp_path):
    loss = ["model.loss=wasserstein"] if trick == "gradient_penalty" else []
    m = train_run(
        tmp_path, "model=dcgan", f"model.conditional={mode}", f"trick=[{trick}]", "+trainer.fast_dev_run=true", *loss
    )
    assert m["status"] == "completed", m.get("error")


@pytest.mark.parametrize("mode", ["concat", "projection", "acgan"])
def test_pacgan_packs_labels_with_their_samples(mode, tmp_path):
    """Packing regroups (x, y) pairs the same way: slot s of packed input j holds sample j*m+s and its label."""
    _, task, _ = make(tmp_path, f"model.conditional={mode}", "trick=[pacgan]", "trick.pacgan.m=2")
    x = torch.arange(8.0).view(8, 1, 1, 1).expand(8, 1, 32, 32).contiguous()
    y = torch.tensor([3, 1, 4, 1, 5, 9, 2, 6])
    px, py = task.tricks.d_input(x, 0), task.tricks.d_labels(y, 0)
    assert py.shape == (4, 2)
    assert all(y[int(px[j, s, 0, 0])] == py[j, s] for j in range(4) for s in range(2))
    logits, aux = task.d_outputs(x, y, 0)
    assert logits.shape == (4, 1)
    if mode == "acgan":  # one class prediction per packed sample, scored against its own label
        assert aux.shape == (4, 20) and task.aux_loss(aux, y).isfinite()
    else:  # D's verdict depends on which label goes with which sample
        swapped = y.view(4, 2).flip(1).reshape(-1)
        assert not torch.allclose(logits, task.d_forward(x, swapped, 0))


@pytest.mark.parametrize("trick", ["r1", "feature_matching"])
def test_d_hooks_see_the_labels(trick, tmp_path):
    """R1 and feature matching go through D(x, y): with other labels, other values."""
    _, task, _ = make(tmp_path, "model.conditional=concat", f"trick=[{trick}]")
    x, y = torch.rand(8, 1, 32, 32) * 2 - 1, torch.arange(8)
    if trick == "r1":
        a, b = (task.tricks.d_penalty(task, x, x, labels, 0) for labels in (y, (y + 3) % 10))
    else:
        fake = task.generate(y, 8)
        a, b = (task.tricks.g_loss(task, fake, x, labels, 0) for labels in (y, (y + 3) % 10))
    assert a.item() > 0 and not torch.isclose(a, b)
