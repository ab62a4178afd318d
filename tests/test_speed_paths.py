"""The default configuration's periodic work off the training thread and out of the batch: the wall-time
progress bar, sample pictures drawn on a worker thread, D's weight gradients skipped in G's step, W&B started
while the data and nets are built, and `model.compile=step` (docs/performance.md)."""

from __future__ import annotations

import sys
import threading

import pytest
import torch
from conftest import compose_cfg, train_run
from omegaconf import open_dict

MLP = ["model=gan_mlp", "data=toy2d_ring", "data.n_samples=3000", "model.generator.hidden=[32,32]",
       "model.discriminator.hidden=[32,32]", "seed=5"]  # fmt: skip


def fit(run_dir, *overrides, keep=(), steps: int = 6):
    """The real objects with only the configured callbacks named in `keep`; fitted; (task, trainer)."""
    from gan_lab.train import build_objects

    bar = "progress" in keep  # without a bar callback Lightning would add its own
    cfg = compose_cfg("logger=none", f"trainer.enable_progress_bar={bar}", *overrides, f"trainer.max_steps={steps}")
    with open_dict(cfg):
        for name in list(cfg.callbacks):
            if name not in keep:
                cfg.callbacks[name] = None
    dm, task, trainer = build_objects(cfg, run_dir)
    trainer.fit(task, datamodule=dm)
    return task, trainer


# ---- progress bar ----------------------------------------------------------------------------------------
def test_progress_bar_updates_on_wall_time_and_ends_at_the_last_step(tmp_path):
    from gan_lab.callbacks.progress import WallClockProgressBar

    one_epoch = [*MLP, "data.n_samples=20000"]  # 12 steps within the first epoch (its end updates the bar too)
    _, trainer = fit(tmp_path / "slow", *one_epoch, "callbacks.progress.update_every_s=3600", keep=("progress",),
                     steps=12)  # fmt: skip
    (bar,) = [cb for cb in trainer.callbacks if isinstance(cb, WallClockProgressBar)]
    assert bar.updates == 2  # the first batch and the last one, not the 10 in between
    assert bar.progress.tasks[bar.train_progress_bar_id].completed == 12  # the bar ends at the full count
    assert bar.progress.tasks[bar.train_progress_bar_id].description.strip() == "Epoch 0"  # not "Epoch 0/-2"
    _, trainer = fit(tmp_path / "every", *one_epoch, "callbacks.progress.update_every_s=0", keep=("progress",),
                     steps=12)  # fmt: skip
    (bar,) = [cb for cb in trainer.callbacks if isinstance(cb, WallClockProgressBar)]
    assert bar.updates == 12


def test_default_progress_bar_is_the_wall_time_one():
    cfg = compose_cfg()
    assert cfg.callbacks.progress._target_ == "gan_lab.callbacks.progress.WallClockProgressBar"
    assert cfg.callbacks.progress.update_every_s > 0


# ---- sample pictures on a worker thread ------------------------------------------------------------------
@pytest.mark.parametrize("background", [True, False])
def test_sample_pictures_drawn_off_the_training_thread(background, tmp_path, monkeypatch):
    import gan_lab.callbacks.samples as samples

    drawn_on, draw = [], samples.render_panel

    def record(*args, **kwargs):
        drawn_on.append(threading.current_thread() is threading.main_thread())
        return draw(*args, **kwargs)

    monkeypatch.setattr(samples, "render_panel", record)
    logged = []
    monkeypatch.setattr(samples, "log_images", lambda trainer, images, step: logged.append((step, sorted(images))))
    run = tmp_path / str(background)
    _, trainer = fit(run, *MLP, "callbacks.samples.every_n_steps=2", f"+callbacks.samples.background={background}",
                     keep=("samples",), steps=6)  # fmt: skip
    (cb,) = [c for c in trainer.callbacks if isinstance(c, samples.SampleCallback)]
    names = ["samples_000002.png", "samples_000004.png", "samples_000006.png", "samples_final.png"]
    assert [p.name for p in cb.saved] == names  # every picture written before training ended, in order
    assert all((run / "samples" / n).stat().st_size > 0 for n in names)
    assert not list((run / "samples").glob(".*"))  # no temporary file left behind
    assert drawn_on == [not background] * 4
    assert logged == [(2, ["samples"]), (4, ["samples"]), (6, ["samples"]), (6, ["samples"])]  # training thread
    assert cb._pool is None


def test_sample_pictures_same_with_and_without_the_worker(tmp_path):
    from PIL import Image

    for background in (True, False):
        fit(tmp_path / str(background), *MLP, "callbacks.samples.every_n_steps=3",
            f"+callbacks.samples.background={background}", keep=("samples",), steps=3)  # fmt: skip
    for name in ("samples_000003.png", "samples_final.png"):
        a, b = (Image.open(tmp_path / str(bg) / "samples" / name) for bg in (True, False))
        assert a.size == b.size and a.tobytes() == b.tobytes(), name


# ---- D's weight gradients in G's step ----------------------------------------------------------------------
@pytest.mark.parametrize("tricks", ["[]", "[feature_matching,ema]", "[r1,g_steps]"])
def test_g_step_skips_d_weight_gradients_with_the_same_results(tricks, tmp_path, monkeypatch):
    """G's backward no longer computes D's weight gradients (nothing reads them): the same weights, optimizer
    states and logs as with them, D's gradients at its own step unchanged, D trainable again after the step."""
    from gan_lab.tasks.adversarial import AdversarialTask

    grads_at_g_step = []
    original = AdversarialTask._step

    def step(self, opt, counted):
        if opt.optimizer is self.trainer.optimizers[0]:  # G's step: what D's parameters hold now
            grads_at_g_step.append([p.grad is None or p.requires_grad for p in self.discriminator.parameters()])
        return original(self, opt, counted)

    monkeypatch.setattr(AdversarialTask, "_step", step)
    fast, _ = fit(tmp_path / "a", *MLP, f"trick={tricks}", keep=(), steps=5)
    assert all(p.requires_grad for p in fast.discriminator.parameters())
    assert grads_at_g_step and all(all(g) for g in grads_at_g_step)
    monkeypatch.setattr(AdversarialTask, "_freeze_d", lambda self: [])
    full, _ = fit(tmp_path / "b", *MLP, f"trick={tricks}", keep=(), steps=5)
    for (k, a), b in zip(fast.state_dict().items(), full.state_dict().values()):
        assert torch.equal(a, b), k
    for oa, ob in zip(fast.trainer.optimizers, full.trainer.optimizers):
        for pa, pb in zip(oa.state.values(), ob.state.values()):
            assert all(torch.equal(pa[n], pb[n]) for n in pa)
    assert fast.last_logged == full.last_logged


# ---- W&B started while the data and nets are built -----------------------------------------------------------
def test_wandb_starts_early_only_for_the_offline_logger(tmp_path, monkeypatch):
    from gan_lab.train import start_wandb_early

    monkeypatch.delitem(sys.modules, "wandb.sdk.launch.inputs.internal", raising=False)
    assert start_wandb_early(compose_cfg("logger=none")) is None
    assert start_wandb_early(compose_cfg("logger=csv")) is None
    assert start_wandb_early(compose_cfg("logger.wandb.offline=false")) is None  # W&B reads the mode once
    thread = start_wandb_early(compose_cfg())
    assert thread is not None
    thread.join(120)
    assert "wandb.sdk.launch.inputs.internal" in sys.modules
    assert start_wandb_early(compose_cfg()) is None  # once per process
    from pytorch_lightning.loggers import WandbLogger

    from gan_lab.train import build_objects

    (wb,) = [lg for lg in build_objects(compose_cfg(*MLP), tmp_path / "b")[2].loggers if isinstance(lg, WandbLogger)]
    assert "anonymous" not in wb._wandb_init  # W&B warns at every run when Lightning passes anonymous=None
    monkeypatch.setenv("WANDB_SILENT", "true")
    m = train_run(tmp_path, *MLP, "logger=wandb", "trainer.max_steps=2")  # the logger's run on that service
    assert m["status"] == "completed", m
    assert list((tmp_path / "wandb").glob("offline-run-*"))


# ---- model.compile=step -------------------------------------------------------------------------------------
@pytest.mark.slow  # inductor compiles G's and D's passes (C++): minutes on a loaded core
def test_compiled_step_matches_eager(tmp_path):
    import torch._dynamo
    from torch._dynamo.utils import counters

    torch._dynamo.reset()  # a forward compiled by an earlier test in this process would be a cache hit, not a frame
    counters.clear()
    compiled, _ = fit(tmp_path / "c", *MLP, "model.compile=step", keep=(), steps=4)
    eager, _ = fit(tmp_path / "e", *MLP, keep=(), steps=4)
    assert counters["frames"]["ok"] >= 2  # G and D went through dynamo
    assert all(g["fused"] for opt in compiled.trainer.optimizers for g in opt.param_groups)
    assert compiled.compile_nets == "step"
    for (k, a), b in zip(eager.state_dict().items(), compiled.state_dict().values()):
        torch.testing.assert_close(b, a, atol=1e-5, rtol=1e-4, msg=k)
    for k, v in eager.last_logged.items():
        assert compiled.last_logged[k] == pytest.approx(v, rel=1e-4, abs=1e-5), k


def test_fused_adam_is_a_model_option(tmp_path):
    """`+model.g_optimizer.fused=true`: Adam's one-kernel step (the fastest measured on the CPU); model.compile=step
    uses it for both nets."""
    from gan_lab.train import build_objects

    for overrides, fused in ((["+model.g_optimizer.fused=true"], (True, None)), (["model.compile=step"], (True, True))):
        _, task, _ = build_objects(compose_cfg("logger=none", *MLP, *overrides), tmp_path)
        opt_g, opt_d = task.configure_optimizers()
        assert (opt_g.defaults["fused"], opt_d.defaults["fused"]) == fused


# ---- transposed convolutions on the CPU as matrix products ------------------------------------------------
@pytest.mark.parametrize(
    "cin, cout, kernel, stride, padding, output_padding, size, bias, matmul",
    [
        (100, 128, 4, 1, 0, 0, 1, False, True),  # a generator's first layer: z -> C x 4 x 4
        (10, 4, 4, 1, 0, 0, 1, True, True),
        (32, 1, 4, 2, 1, 0, 16, False, True),  # a grayscale image layer
        (7, 1, 3, 2, 1, 0, 5, True, True),
        (8, 1, 5, 3, 2, 0, 6, False, True),
        (16, 3, 4, 2, 1, 0, 8, True, False),  # three channels: the library's kernel
        (16, 1, 3, 2, 1, 1, 8, False, False),  # output padding: the library's kernel
    ],
)
@pytest.mark.parametrize("channels_last", [False, True])
def test_conv_transpose_matches_the_library_layer(cin, cout, kernel, stride, padding, output_padding, size, bias,
                                                  matmul, channels_last, monkeypatch):  # fmt: skip
    from torch import nn

    from gan_lab.nets.common import ConvTranspose2d

    torch.manual_seed(0)
    ours = ConvTranspose2d(cin, cout, kernel, stride, padding, output_padding, bias=bias)
    ref = nn.ConvTranspose2d(cin, cout, kernel, stride, padding, output_padding, bias=bias)
    ref.load_state_dict(ours.state_dict())  # the same parameters and state dict
    x = torch.randn(5, cin, size, size)
    if channels_last:
        ours, ref, x = (t.to(memory_format=torch.channels_last) for t in (ours, ref, x))
    xa, xb = x.clone().requires_grad_(True), x.clone().requires_grad_(True)
    yb = ref(xb)
    calls, library = [], torch.nn.functional.conv_transpose2d
    monkeypatch.setattr(torch.nn.functional, "conv_transpose2d", lambda *a, **k: calls.append(1) or library(*a, **k))
    ya = ours(xa)
    assert bool(calls) is not matmul  # which path ran
    grad = torch.randn_like(yb)
    (ya * grad).sum().backward()
    (yb * grad).sum().backward()
    assert ya.shape == yb.shape
    torch.testing.assert_close(ya, yb, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(xa.grad, xb.grad, rtol=1e-5, atol=1e-5)
    for a, b in zip(ours.parameters(), ref.parameters()):
        torch.testing.assert_close(a.grad, b.grad, rtol=1e-4, atol=1e-4)
