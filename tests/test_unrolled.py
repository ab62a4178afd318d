"""trick=unrolled (Metz 2017): the unrolled D is k real optimizer steps, G's gradient flows through them
(second order) or only through the last D (first order), and the trick runs inside the one loop."""

from __future__ import annotations

import copy

import pytest
import torch
from conftest import FAST, compose_cfg, train_run
from torch import nn
from torch.func import functional_call

from gan_lab.errors import ConfigError
from gan_lab.tricks.unrolled import Unrolled, unroll

OPTIMIZERS = [
    (torch.optim.Adam, {"lr": 1e-2, "betas": (0.5, 0.999)}),
    (torch.optim.Adam, {"lr": 1e-2, "weight_decay": 0.1}),
    (torch.optim.SGD, {"lr": 0.1}),
    (torch.optim.SGD, {"lr": 0.1, "momentum": 0.9}),
    (torch.optim.SGD, {"lr": 0.1, "momentum": 0.9, "nesterov": True, "weight_decay": 0.01}),
]


def _d():
    return nn.Sequential(nn.Linear(3, 8), nn.LeakyReLU(0.3), nn.Linear(8, 1))


def _bce(out_real, out_fake):
    f = nn.functional.binary_cross_entropy_with_logits
    return f(out_real, torch.ones_like(out_real)) + f(out_fake, torch.zeros_like(out_fake))


@pytest.mark.parametrize("warm", [False, True])  # fresh optimizer state, or after one real step
@pytest.mark.parametrize("opt_cls,kw", OPTIMIZERS)
def test_unrolled_d_equals_k_manual_optimizer_steps(opt_cls, kw, warm):
    torch.manual_seed(0)
    d, real, fake = _d(), torch.randn(16, 3), torch.randn(16, 3)
    opt = opt_cls(d.parameters(), **kw)
    if warm:
        _bce(d(real), d(fake)).backward()
        opt.step()
        opt.zero_grad()
    before = copy.deepcopy(d.state_dict())
    state_before = copy.deepcopy(opt.state_dict())
    params = unroll(d, opt, lambda p: _bce(functional_call(d, p, (real,)), functional_call(d, p, (fake,))), 3)
    # the real D and its optimizer are untouched
    assert all(torch.equal(v, d.state_dict()[k]) for k, v in before.items())
    assert str(opt.state_dict()) == str(state_before)

    manual = copy.deepcopy(d)
    opt2 = opt_cls(manual.parameters(), **kw)
    opt2.load_state_dict(copy.deepcopy(opt.state_dict()))
    for _ in range(3):
        opt2.zero_grad()
        _bce(manual(real), manual(fake)).backward()
        opt2.step()
    for name, p in manual.named_parameters():
        torch.testing.assert_close(params[name], p, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("real_term", [False, True])
@pytest.mark.parametrize("opt_cls,kw", [OPTIMIZERS[0], OPTIMIZERS[3]])
def test_second_order_gradient_reaches_g_through_the_unrolled_steps(opt_cls, kw, real_term):
    """d loss / d theta_G through k unrolled updates equals finite differences of the whole unrolled loss
    (with or without the value function's real term at D_k), and differs from the first-order gradient (which
    ignores how D's updates depend on G)."""
    torch.manual_seed(1)
    g = nn.Linear(2, 3).double()
    d = _d().double()
    opt = opt_cls(d.parameters(), **kw)
    z, real = torch.randn(16, 2, dtype=torch.float64), torch.randn(16, 3, dtype=torch.float64)

    def g_loss(second_order: bool):
        fake = g(z)
        inner = fake if second_order else fake.detach()
        params = unroll(
            d, opt, lambda p: _bce(functional_call(d, p, (real,)), functional_call(d, p, (inner,))), 3, second_order
        )
        out = functional_call(d, params, (fake,))
        loss = nn.functional.binary_cross_entropy_with_logits(out, torch.ones_like(out))
        if real_term and second_order:
            out_real = functional_call(d, params, (real,))
            loss = loss - nn.functional.binary_cross_entropy_with_logits(out_real, torch.ones_like(out_real))
        return loss

    w = g.weight
    second = torch.autograd.grad(g_loss(True), w)[0]
    first = torch.autograd.grad(g_loss(False), w)[0]
    eps, numeric, w0 = 1e-6, torch.zeros_like(w), w.detach().clone()
    for idx in [(0, 0), (1, 1), (2, 0)]:
        values = []
        for sign in (1, -1):
            with torch.no_grad():
                w.copy_(w0)
                w[idx] += sign * eps
            values.append(g_loss(True).item())  # the unroll itself needs autograd
        numeric[idx] = (values[0] - values[1]) / (2 * eps)
    with torch.no_grad():
        w.copy_(w0)
    for idx in [(0, 0), (1, 1), (2, 0)]:
        assert second[idx].item() == pytest.approx(numeric[idx].item(), rel=1e-4, abs=1e-8)
    assert second.abs().sum() > 0 and first.abs().sum() > 0
    assert not torch.allclose(second, first, rtol=1e-3)  # the path through the unrolled updates matters


def test_each_d_loss_is_its_real_term_plus_a_term_of_the_fakes_alone():
    from gan_lab.losses import LOSSES

    torch.manual_seed(3)
    real_a, real_b, fake = torch.randn(16, 1), torch.randn(16, 1), torch.randn(16, 1)
    real_t, fake_t = torch.full_like(real_a, 0.9), torch.zeros_like(fake)
    for name, cls in LOSSES.items():
        loss = cls()
        rest_a = loss.d(real_a, fake, real_t, fake_t) - loss.d_real(real_a, real_t)
        rest_b = loss.d(real_b, fake, real_t, fake_t) - loss.d_real(real_b, real_t)
        torch.testing.assert_close(rest_a, rest_b, msg=name)  # what is left depends on the fakes only
        assert loss.d_real(real_a, real_t) != loss.d_real(real_b, real_t), name


def test_first_order_returns_plain_tensors_of_the_last_d():
    torch.manual_seed(2)
    d, real, fake = _d(), torch.randn(8, 3), torch.randn(8, 3, requires_grad=True)
    opt = torch.optim.Adam(d.parameters(), lr=1e-2)
    params = unroll(d, opt, lambda p: _bce(functional_call(d, p, (real,)), functional_call(d, p, (fake,))), 2, False)
    assert all(p.grad_fn is None for p in params.values())  # no graph through the unrolled steps
    params2 = unroll(d, opt, lambda p: _bce(functional_call(d, p, (real,)), functional_call(d, p, (fake,))), 2, True)
    assert all(p.grad_fn is not None for p in params2.values())


def _task(tmp_path, *overrides):
    from gan_lab.train import build_objects

    cfg = compose_cfg(*FAST, "model=gan_mlp", "data=toy2d_ring", *overrides)
    return build_objects(cfg, tmp_path)


@pytest.mark.parametrize("extra", [[], ["trick.unrolled.real_term=false"], ["trick.unrolled.second_order=false"]])
def test_the_loop_takes_gs_loss_against_the_unrolled_d(extra, tmp_path, monkeypatch):
    """One batch with trick=[unrolled]: the loop asks the trick for D's outputs once per G update, G's logged
    loss is the non-saturating loss of those outputs (not of the current D's), D is left as it was, and G's
    total adds the value function's real term at the unrolled D, -BCE(D_k(real), 1), only with second order
    and real_term."""
    dm, task, trainer = _task(tmp_path, "trick=[unrolled]", "trick.unrolled.steps=2", "trainer.max_steps=1", *extra)
    seen, original = [], Unrolled.g_critic

    def spy(self, task, fake, real, cond, step):
        before = {n: p.detach().clone() for n, p in task.discriminator.named_parameters()}
        out = original(self, task, fake, real, cond, step)
        with torch.no_grad():
            current = task.d_outputs(fake, cond, step)[0]
        after = dict(task.discriminator.named_parameters())
        term = None if out[2] is None else out[2].item()
        seen.append((out[0].detach().clone(), current, all(torch.equal(before[n], after[n]) for n in before), term))
        return out

    monkeypatch.setattr(Unrolled, "g_critic", spy)
    trainer.fit(task, datamodule=dm)
    assert len(seen) == 1
    unrolled_out, current_out, d_untouched, term = seen[0]
    assert d_untouched and not torch.allclose(unrolled_out, current_out)
    expected = nn.functional.softplus(-unrolled_out).mean().item()  # non-saturating G loss
    assert task.last_logged["train/g_loss"] == pytest.approx(expected, rel=1e-5)
    if extra:
        assert term is None and task.last_logged["train/g_total"] == pytest.approx(expected, rel=1e-5)
    else:
        assert term is not None and term < 0  # -BCE: minus a positive loss
        assert task.last_logged["train/g_total"] == pytest.approx(expected + term, rel=1e-5)


def test_gs_total_adds_the_real_term_and_other_tricks_g_losses(tmp_path, monkeypatch):
    """With trick=[unrolled,feature_matching], G's total is the loss against the unrolled D, plus the real term
    the unrolled D's pass returned, plus feature matching's term (on the current D): each once, for each of 2
    G updates, and the trick keeps no loss between calls."""
    from gan_lab.tricks.feature_matching import FeatureMatching

    dm, task, trainer = _task(
        tmp_path, "trick=[unrolled,feature_matching]", "trick.unrolled.steps=2", "trainer.max_steps=2"
    )
    seen, critic, matching = [], Unrolled.g_critic, FeatureMatching.g_loss

    def spy_critic(self, task, fake, real, cond, step):
        out = critic(self, task, fake, real, cond, step)
        seen.append({"g": nn.functional.softplus(-out[0]).mean().item(), "term": out[2].item()})
        return out

    def spy_matching(self, task, fake, real, cond, step):
        loss = matching(self, task, fake, real, cond, step)
        seen[-1]["fm"] = loss.item()
        return loss

    monkeypatch.setattr(Unrolled, "g_critic", spy_critic)
    monkeypatch.setattr(FeatureMatching, "g_loss", spy_matching)
    trainer.fit(task, datamodule=dm)
    assert len(seen) == 2 and all(s["fm"] > 0 and s["term"] < 0 for s in seen)
    totals = [s["g"] + s["term"] + s["fm"] for s in seen]  # logged: the mean over the 2 steps
    assert task.last_logged["train/g_total"] == pytest.approx(sum(totals) / 2, rel=1e-5)
    unrolled = next(t for t in task.tricks.tricks if t.name == "unrolled")
    assert not any(isinstance(v, torch.Tensor) for v in vars(unrolled).values())


def _flat_grad(loss, params):
    grads = torch.autograd.grad(loss, params, retain_graph=True, allow_unused=True)
    return torch.cat([torch.zeros_like(p).flatten() if g is None else g.flatten() for p, g in zip(params, grads)])


@pytest.mark.parametrize("second_order", [True, False])
def test_log_every_splits_the_gradient_g_applied(second_order, tmp_path, monkeypatch):
    """trick.unrolled.log_every: the logged share and cosine compare the gradient G's update applied with the
    other order's gradient on the same batch, recomputed here (second order: G's loss with the real term)."""
    dm, task, trainer = _task(
        tmp_path,
        "trick=[unrolled]",
        "trick.unrolled.steps=3",
        "trick.unrolled.log_every=1",
        f"trick.unrolled.second_order={str(second_order).lower()}",
        "trainer.max_steps=1",
    )
    other, original = [], Unrolled.g_critic

    def spy(self, task, fake, real, cond, step):
        saved = self.second_order, self.log_every
        self.second_order, self.log_every = not second_order, 0
        out = original(self, task, fake, real, cond, step)
        loss = task.adv_loss.g(out[0])
        if out[2] is not None:
            loss = loss + out[2]
        other.append(_flat_grad(loss, list(task.generator.parameters())))
        self.second_order, self.log_every = saved
        return original(self, task, fake, real, cond, step)

    monkeypatch.setattr(Unrolled, "g_critic", spy)
    trainer.fit(task, datamodule=dm)
    applied = torch.cat([p.grad.flatten() for p in task.generator.parameters()])
    g_full, g_first = (applied, other[0]) if second_order else (other[0], applied)
    share = ((g_full - g_first).norm() / g_first.norm()).item()
    assert 0.01 < share  # the unrolled path changes G's gradient on this batch
    assert task.last_logged["train/unrolled_share"] == pytest.approx(share, rel=1e-4)
    cos = nn.functional.cosine_similarity(g_full, g_first, dim=0).item()
    assert task.last_logged["train/unrolled_cos"] == pytest.approx(cos, rel=1e-4, abs=1e-6)


@pytest.mark.parametrize("second_order", [True, False])
@pytest.mark.parametrize("tricks", ["trick=[unrolled]", "trick=[unrolled,instance_noise,label_noise]"])
def test_log_every_leaves_training_unchanged(second_order, tricks, tmp_path):
    """The gradient split reads gradients without accumulating them and replays the random draws of the passes
    it mirrors without taking any from training: G and D after 3 steps are the same with and without it, also
    with tricks that draw noise in every D pass."""
    order = f"trick.unrolled.second_order={str(second_order).lower()}"
    nets = []
    for log_every in (0, 1):
        dm, task, trainer = _task(
            tmp_path / str(log_every), tricks, order, f"trick.unrolled.log_every={log_every}", "trainer.max_steps=3"
        )
        trainer.fit(task, datamodule=dm)
        nets.append([p.detach().clone() for p in [*task.generator.parameters(), *task.discriminator.parameters()]])
    assert "train/unrolled_share" in task.last_logged
    assert all(torch.equal(a, b) for a, b in zip(*nets))


@pytest.mark.parametrize("second_order", [True, False])
def test_trick_trains_and_composes_with_other_tricks(second_order, tmp_path):
    m = train_run(
        tmp_path,
        "model=gan_mlp",
        "data=toy2d_ring",
        "trick=[unrolled,pacgan,label_smoothing,spectral_norm,ema,instance_noise]",
        "trick.unrolled.steps=2",
        f"trick.unrolled.second_order={str(second_order).lower()}",
        "trick.unrolled.log_every=2",
        "trainer.max_steps=3",
    )
    assert m["status"] == "completed" and m["steps"] == 3


@pytest.mark.parametrize(
    "overrides,match",
    [
        (["trick.unrolled.steps=0"], r"trick.unrolled: steps=0 is out of range; allowed \[1, 100\]"),
        (["trick.unrolled.second_order=maybe"], r"trick.unrolled.second_order='maybe' must be a boolean"),
        (["trick.unrolled.real_term=2"], r"trick.unrolled.real_term=2 must be a boolean; allowed true, false"),
        (["trick.unrolled.log_every=-1"], r"trick.unrolled.log_every=-1 must be an integer >= 0; allowed 0 \(off\)"),
    ],
)
def test_bad_unrolled_values_fail_before_training(overrides, match, tmp_path):
    with pytest.raises(ConfigError, match=match):
        _task(tmp_path, "trick=[unrolled]", *overrides)


@pytest.mark.parametrize("preset,filters", [("unrolled_stacked_d4", [2, 4, 8]), ("unrolled_stacked_d2", [4, 8, 16])])
def test_stacked_presets_build_the_nets_of_the_authors_code(preset, filters):
    """The Table 3 code of the PacGAN authors (unrolled_GAN_experiment/D=0.25G, D=0.5G): 28 x 28 stacks; G
    4 -> 7 -> 14 -> 28 with 3 x 3 transposed convs; D 3 x 3 stride-2 convs, each with batch norm; Adam betas
    (0.5, 0.99)."""
    from hydra.utils import instantiate

    cfg = compose_cfg(f"experiment={preset}")
    assert cfg.data.size == 28 and cfg.data.batch_size == 128 and cfg.model.generator.z_dim == 256
    assert list(cfg.model.g_optimizer.betas) == [0.5, 0.99] == list(cfg.model.d_optimizer.betas)
    shape = (3, 28, 28)
    g, d = instantiate(cfg.model.generator, shape=shape), instantiate(cfg.model.discriminator, shape=shape)
    sizes, x = [], g.fc(torch.randn(2, 256)).view(-1, 64, 4, 4)
    for layer in g.net:
        x = layer(x)
        if isinstance(layer, nn.ConvTranspose2d):
            assert layer.kernel_size == (3, 3) and layer.stride == (2, 2)
            sizes.append(x.shape[-1])
    assert sizes == [7, 14, 28] and x.shape == (2, 3, 28, 28)
    convs = [m for m in d.body if isinstance(m, nn.Conv2d)]
    norms = [m for m in d.body if isinstance(m, nn.BatchNorm2d)]
    assert [c.out_channels for c in convs] == filters == [n.num_features for n in norms]
    assert all(c.kernel_size == (3, 3) and c.stride == (2, 2) and c.bias is None for c in convs)
    assert d(torch.randn(2, *shape)).shape == (2, 1) and d.head[1].in_features == filters[-1] * 4 * 4


def test_unrolled_dcgan_nets_keep_the_32px_form_and_refuse_other_sizes():
    from gan_lab.nets.unrolled_dcgan import UnrolledDCGANDiscriminator, UnrolledDCGANGenerator

    g = UnrolledDCGANGenerator((3, 32, 32))  # the arguments' defaults: 5 x 5 transposed convs, no batch norm in D
    assert g(torch.randn(2, 256)).shape == (2, 3, 32, 32)
    assert [m.kernel_size for m in g.net if isinstance(m, nn.ConvTranspose2d)] == [(5, 5)] * 3
    assert not any(isinstance(m, nn.BatchNorm2d) for m in UnrolledDCGANDiscriminator((3, 32, 32)).body)
    with pytest.raises(ConfigError, match=r"makes square images of 25 to 32 px \(data.size\); got sample shape"):
        UnrolledDCGANGenerator((3, 40, 40))
    with pytest.raises(ConfigError, match=r"model.generator.kernel=4: allowed 3, 5"):
        UnrolledDCGANGenerator((3, 28, 28), kernel=4)


def test_unrolled_trains_the_stacked_preset_whose_d_has_batch_norm(tmp_path):
    """D's batch-norm statistics are updated on copies in the unrolled steps; the run's own D keeps its own."""
    m = train_run(
        tmp_path,
        "experiment=unrolled_stacked_d4",
        "data=stacked_digits",
        "data.size=28",
        "data.n_samples=256",
        "data.batch_size=32",
        "trick=[unrolled]",
        "trick.unrolled.steps=2",
        "trainer.max_steps=2",
        "metrics.n_samples=64",
        "metrics.n_real=64",
    )
    assert m["status"] == "completed" and m["steps"] == 2
    ckpt = torch.load(tmp_path / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)
    tracked = [v for k, v in ckpt["state_dict"].items() if k.startswith("discriminator.") and "num_batches" in k]
    assert tracked and all(int(v) == 2 * 2 for v in tracked)  # 2 D steps x (real + fake), none from unrolling
