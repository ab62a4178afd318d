"""GPU options checked on the CPU (docs/performance.md): `trainer.precision=bf16-mixed`, `model.channels_last`,
`model.compile`; and the loop's direct backward/step path, which must train exactly as Lightning's."""

from __future__ import annotations

import pytest
import pytorch_lightning as pl
import torch
from conftest import FAST, compose_cfg, train_run
from omegaconf import open_dict

from gan_lab.errors import ConfigError

MLP = ["model=gan_mlp", "data=toy2d_ring", "data.n_samples=3000", "model.generator.hidden=[32,32]",
       "model.discriminator.hidden=[32,32]"]  # fmt: skip
DCGAN = ["model=dcgan", "data=digits", "data.size=16", "data.batch_size=32", "model.generator.ngf=8",
         "model.discriminator.ndf=8"]  # fmt: skip


def fit(tmp_path, *overrides, callbacks=(), steps: int = 3):
    """Build the real objects without any configured callback (plus `callbacks`), fit, return the task."""
    from gan_lab.train import build_objects

    cfg = compose_cfg(*FAST, *overrides, f"trainer.max_steps={steps}")
    with open_dict(cfg):
        for name in list(cfg.callbacks):
            cfg.callbacks[name] = None
    dm, task, trainer = build_objects(cfg, tmp_path)
    trainer.callbacks.extend(callbacks)
    trainer.fit(task, datamodule=dm)
    return task, trainer


def build_task(run_dir, *overrides):
    """(data module, task) of a composed config, seeded as gan_lab.train seeds them (nothing trained)."""
    from gan_lab.train import build_objects

    return build_objects(compose_cfg(*FAST, *overrides), run_dir)[:2]


class Listener(pl.Callback):
    """Listens to the backward and optimizer-step hooks: counts the calls and records what it was given."""

    def __init__(self):
        self.calls, self.seen = 0, []

    def on_before_backward(self, trainer, pl_module, loss):
        self.calls += 1
        self.seen.append(("before_backward", pl_module._current_fx_name, loss.item(), loss.requires_grad))

    def on_after_backward(self, trainer, pl_module):
        self.seen.append(("after_backward", pl_module._current_fx_name))

    def on_before_optimizer_step(self, trainer, pl_module, optimizer):
        self.calls += 1
        which = trainer.optimizers.index(optimizer)  # the raw torch optimizer, as Lightning passes it
        grads = [p.grad.sum().item() for p in optimizer.param_groups[0]["params"] if p.grad is not None]
        self.seen.append(("before_step", pl_module._current_fx_name, which, grads, torch.is_grad_enabled()))


class Record(pl.Callback):
    """At train start, hooks `fn(output or inputs)` on the discriminator (forward hook, or pre-hook)."""

    def __init__(self, fn, pre: bool = False):
        self.fn, self.pre = fn, pre

    def on_train_start(self, trainer, pl_module):
        d = pl_module.discriminator
        if self.pre:
            d.register_forward_pre_hook(lambda m, args: self.fn(args[0]))
        else:
            d.register_forward_hook(lambda m, args, out: self.fn(out))


# ---- the direct backward / optimizer-step path ----------------------------------------------------------
@pytest.mark.parametrize("tricks", ["[]", "[label_flip,instance_noise,ema,d_dropout]", "[r1,g_steps,label_smoothing]"])
def test_direct_path_trains_exactly_as_lightnings(tricks, tmp_path, monkeypatch):
    """The same run three ways: direct (no listener), direct calling a listening callback, and Lightning's own
    dispatch (forced): identical weights, optimizer states and logs; the listener sees every call."""
    import gan_lab.tasks.adversarial as adv

    args = (*MLP, "seed=3", f"trick={tricks}")
    direct, _ = fit(tmp_path / "a", *args, steps=12)
    heard = Listener()
    called, _ = fit(tmp_path / "b", *args, callbacks=[heard], steps=12)
    monkeypatch.setattr(adv, "direct_paths", lambda trainer, module: (None, None))
    heard_pl = Listener()
    lightning, _ = fit(tmp_path / "c", *args, callbacks=[heard_pl], steps=12)
    assert direct._direct_backward == [] and direct._direct_step == []
    assert called._direct_backward == [heard] and called._direct_step == [heard]
    assert lightning._direct_backward is None and lightning._direct_step is None
    g_steps = 5 if "g_steps" in tricks else 1  # trick g_steps: k=5 generator updates per batch (its default)
    assert heard.calls == heard_pl.calls == 12 * 2 * (1 + g_steps)  # every backward and every optimizer step
    assert heard.seen == heard_pl.seen  # same hook names, optimizers and losses, in the same order
    for task in (called, lightning):
        assert task.global_step == direct.global_step == 12
        for (k, a), b in zip(direct.state_dict().items(), task.state_dict().values()):
            assert torch.equal(a, b), k
        for oa, ob in zip(direct.trainer.optimizers, task.trainer.optimizers):
            for pa, pb in zip(oa.state.values(), ob.state.values()):
                assert all(torch.equal(pa[n], pb[n]) for n in pa)
        assert task.last_logged == direct.last_logged


def test_direct_path_only_on_one_device_without_scaling(tmp_path):
    from pytorch_lightning.plugins.precision import MixedPrecision

    from gan_lab.tasks.adversarial import direct_paths

    task, trainer = fit(tmp_path, *MLP, steps=1)
    assert direct_paths(trainer, task) == ([], [])
    trainer.strategy.precision_plugin = MixedPrecision("bf16-mixed", "cpu")
    assert direct_paths(trainer, task) == ([], [])
    trainer.strategy.precision_plugin.scaler = object()  # as with 16-mixed: the loss must be scaled
    assert direct_paths(trainer, task) == (None, None)


def test_task_overriding_a_hook_goes_through_lightning(tmp_path, monkeypatch):
    from gan_lab.tasks.adversarial import direct_paths
    from gan_lab.tasks.gan import GANTask

    task, trainer = fit(tmp_path, *MLP, steps=1)
    monkeypatch.setattr(GANTask, "on_before_optimizer_step", lambda self, optimizer: None, raising=False)
    assert direct_paths(trainer, task) == ([], None)
    monkeypatch.setattr(GANTask, "on_after_backward", lambda self: None, raising=False)
    assert direct_paths(trainer, task) == (None, None)


# ---- bf16-mixed ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("net", ["mlp", "dcgan"])
def test_bf16_mixed_trains_under_autocast(net, tmp_path):
    """Lightning's CPU bf16 autocast wraps the manual-optimization step: D runs in bfloat16, the weights
    stay float32, losses are finite and logged as float32 window means."""
    seen = []
    overrides = MLP if net == "mlp" else DCGAN
    task, trainer = fit(tmp_path, *overrides, "trainer.precision=bf16-mixed", "trainer.log_every_n_steps=2",
                        callbacks=[Record(lambda out: seen.append(out.dtype))], steps=4)  # fmt: skip
    assert type(trainer.precision_plugin).__name__ == "MixedPrecision"
    assert seen and set(seen) == {torch.bfloat16}
    assert task._direct_backward is not None and task._direct_step is not None  # bf16 needs no loss scaling
    assert all(p.dtype == torch.float32 for p in task.parameters())
    logged = task.last_logged
    assert {"train/d_loss", "train/g_loss", "train/d_acc_real", "train/d_acc_fake"} <= set(logged)
    assert all(torch.isfinite(torch.tensor(v)) for v in logged.values())
    assert all(torch.isfinite(p).all() for p in task.parameters())


def test_bf16_mixed_default_job_completes(tmp_path):
    """Through gan_lab.train with the default callbacks (monitor, samples, metrics at the end)."""
    quiet = ["logger=none", "callbacks.progress=null", "trainer.enable_progress_bar=false"]
    m = train_run(tmp_path, *quiet, *DCGAN, "trainer.precision=bf16-mixed", "trainer.max_steps=3",
                  "metrics.every_n_steps=0", "metrics.n_samples=100", fast=False)  # fmt: skip
    assert m["status"] == "completed", m
    assert all(torch.isfinite(torch.tensor(m[k])) for k in ("d_loss", "g_loss", "fid"))


# ---- channels_last ------------------------------------------------------------------------------------
def channels_last(t: torch.Tensor) -> bool:
    return t.dim() == 4 and t.is_contiguous(memory_format=torch.channels_last)


def nhwc_only(t: torch.Tensor) -> bool:
    """channels_last and not also NCHW-contiguous (a tensor with one channel is both)."""
    return channels_last(t) and not t.is_contiguous()


def test_channels_last_nets_batches_and_optimizer_state(tmp_path):
    inputs = []
    record = Record(inputs.append, pre=True)
    stacked = ["data=stacked_digits", "data.n_samples=300"]  # 3-channel images: NHWC differs from NCHW
    task, trainer = fit(tmp_path, *DCGAN, *stacked, "model.channels_last=true", "trick=[ema]", callbacks=[record],
                        steps=2)  # fmt: skip
    conv = {n: p for n, p in task.named_parameters() if p.dim() == 4 and p.shape[-1] > 1}
    assert any(n.startswith("tricks.") for n in conv)  # the EMA copy of G too
    assert all(channels_last(p) for p in conv.values()), [n for n, p in conv.items() if not channels_last(p)]
    assert all(nhwc_only(p) for n, p in conv.items() if n.startswith("discriminator.head"))
    assert len(inputs) == 6 and all(nhwc_only(x) for x in inputs)  # real batches and G's outputs
    for opt in trainer.optimizers:
        for p, st in opt.state.items():
            if p.dim() == 4 and p.shape[-1] > 1:
                assert channels_last(st["exp_avg"]) and channels_last(st["exp_avg_sq"])


@pytest.mark.parametrize("model", ["dcgan", "pix2pix"])
def test_channels_last_matches_default(model, tmp_path):
    from gan_lab.tasks.adversarial import to_channels_last

    """Same weights, NHWC vs NCHW memory order: the same outputs and gradients up to float error. (Random
    masks such as pix2pix's dropout are drawn in memory order, so they differ: dropout is off here.)"""
    overrides = DCGAN if model == "dcgan" else ["model=pix2pix", "data=edges2digits", "data.size=16",
                                                "model.generator.ngf=8", "model.discriminator.ndf=8",
                                                "model.generator.dropout=0.0"]  # fmt: skip
    dm, ref = build_task(tmp_path / "a", *overrides, "model.channels_last=false")
    _, cl = build_task(tmp_path / "b", *overrides, "model.channels_last=true")
    cl.configure_model()
    for (k, a), b in zip(ref.state_dict().items(), cl.state_dict().values()):
        assert torch.equal(a, b), k  # same values, different layout
    assert any(nhwc_only(p) for p in cl.parameters())
    batch = next(iter(dm.train_dataloader()))
    real, cond = ref.unpack(batch)
    real_cl, cond_cl = cl.unpack(to_channels_last(batch))
    assert channels_last(real_cl) and (cond is None or channels_last(cond_cl))
    torch.manual_seed(0)
    fake = ref.generate(cond, len(real))
    torch.manual_seed(0)
    fake_cl = cl.generate(cond_cl, len(real))
    torch.testing.assert_close(fake_cl, fake, atol=1e-5, rtol=1e-4)
    loss = ref.d_forward(real, cond, 0).mean() - ref.d_forward(fake, cond, 0).mean()
    loss_cl = cl.d_forward(real_cl, cond_cl, 0).mean() - cl.d_forward(fake_cl, cond_cl, 0).mean()
    torch.testing.assert_close(loss_cl, loss, atol=1e-5, rtol=1e-4)
    loss.backward()
    loss_cl.backward()
    for (k, a), b in zip(ref.named_parameters(), cl.parameters()):
        if a.grad is not None:
            torch.testing.assert_close(b.grad, a.grad, atol=1e-5, rtol=1e-3, msg=k)


def test_autoencoder_channels_last(tmp_path):
    task, _ = fit(tmp_path, "model=ae", "data=digits", "data.size=16", "model.hidden=[8,16]",
                  "model.channels_last=true", steps=2)  # fmt: skip
    conv = [p for p in task.parameters() if p.dim() == 4 and p.shape[-1] > 1]
    assert conv and all(channels_last(p) for p in conv) and any(nhwc_only(p) for p in conv)
    _, ref = build_task(tmp_path / "ref", "model=ae", "data=digits", "data.size=16", "model.hidden=[8,16]")
    ref.load_state_dict(task.state_dict())
    x = torch.rand(4, 1, 16, 16) * 2 - 1
    with torch.no_grad():
        torch.testing.assert_close(task.reconstruct(x.contiguous(memory_format=torch.channels_last)),
                                   ref.reconstruct(x), atol=1e-5, rtol=1e-4)  # fmt: skip


@pytest.mark.parametrize("model", ["gan_mlp", "dcgan", "pix2pix", "srresnet", "context_encoder", "ae", "vae"])
def test_gpu_option_keys_need_no_plus(model):
    cfg = compose_cfg(f"model={model}", "model.channels_last=true", "model.compile=true")
    assert cfg.model.channels_last is True and cfg.model.compile is True
    assert compose_cfg(f"model={model}").model.compile is False
    assert compose_cfg(f"model={model}", "model.compile=step").model.compile == "step"


def test_channels_last_auto_is_on_for_images_without_a_gpu(tmp_path, monkeypatch):
    """model.channels_last=auto (DCGAN's default): NHWC for image data when no GPU is present (oneDNN's CPU
    convolutions), NCHW with a GPU and for 2-D points."""
    from gan_lab.gpu_options import gpu_options_check

    assert compose_cfg("model=dcgan").model.channels_last == "auto"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert gpu_options_check("dcgan", "auto", False, (1, 32, 32)) == (True, False)
    assert gpu_options_check("gan_mlp", "auto", False, (2,)) == (False, False)
    _, task = build_task(tmp_path / "cpu", *DCGAN)
    assert task.channels_last is True
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert gpu_options_check("dcgan", "auto", False, (1, 32, 32)) == (False, False)


def test_bad_gpu_options_one_line(tmp_path):
    with pytest.raises(ConfigError, match=r"model.channels_last=true needs image data .*shape \(2,\)"):
        train_run(tmp_path / "a", *MLP, "model.channels_last=true")
    with pytest.raises(ConfigError, match=r"model.compile='yes' is not allowed; allowed false, true .*, step "):
        train_run(tmp_path / "b", *DCGAN, "model.compile=yes")
    with pytest.raises(ConfigError, match=r"model.channels_last=1 is not allowed; allowed true, false, auto"):
        train_run(tmp_path / "c", "model=ae", "data=digits", "model.channels_last=1")
    assert not (tmp_path / "a" / "metrics.json").exists()


# ---- torch.compile --------------------------------------------------------------------------------------
def test_compile_without_a_cxx_compiler_fails_before_training(tmp_path, monkeypatch):
    import shutil

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(shutil, "which", lambda name, *a, **k: None)
    monkeypatch.setenv("CXX", "no-such-cxx")
    with pytest.raises(ConfigError, match=r"model.compile=true needs a C\+\+ compiler .*'no-such-cxx'"):
        train_run(tmp_path, *DCGAN, "model.compile=true")
    assert not (tmp_path / "metrics.json").exists()


@pytest.mark.slow  # inductor compiles G and D (forward + backward) with the C++ compiler: a minute on one core
def test_compile_trains_and_matches_eager(tmp_path):
    from torch._dynamo.utils import counters

    counters.clear()
    task, _ = fit(tmp_path, *MLP, "model.compile=true", steps=3)
    assert task.generator._gan_lab_compiled and task.discriminator._gan_lab_compiled
    assert counters["frames"]["ok"] >= 2  # G and D went through dynamo
    assert all(torch.isfinite(p).all() for p in task.parameters())
    assert not any("_orig_mod" in k for k in task.state_dict())  # checkpoints stay interchangeable
    _, ref = build_task(tmp_path / "ref", *MLP)
    ref.load_state_dict(task.state_dict())
    z = torch.randn(256, task.z_dim)
    with torch.no_grad():
        torch.testing.assert_close(task.generator(z), ref.generator(z), atol=1e-5, rtol=1e-4)
