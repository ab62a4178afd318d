"""Seed-parallel training (`seeds=N`): members are their single-seed runs, write a normal run's outputs,
resume exactly, and a diverged member leaves the others alone."""

from __future__ import annotations

import json

import pytest
import torch
from conftest import train_run

from gan_lab.checkpoints import load
from gan_lab.errors import ConfigError

# small nets and batches: each run is a second or two on one thread
RING = [
    "model=gan_mlp",
    "data=toy2d_ring",
    "model.generator.hidden=[32,32]",
    "model.discriminator.hidden=[32,32]",
    "data.batch_size=64",
]
# with the end-of-run evaluation and samples (what users run), still light
OUTPUTS = [
    "logger=none",
    "callbacks.progress=null",
    "trainer.enable_progress_bar=false",
    "metrics.every_n_steps=0",
    "metrics.n_samples=200",
    "callbacks.samples.every_n_steps=0",
]
# batched matrix products (vmap over the members) sum in another order than one member's addmm: the members
# drift from their single runs by float rounding, which Adam's normalised steps (lr 1e-3) carry into the
# weights; over 4 steps that is ~1e-6 here, so 1e-5 bounds it while a wrong stream (noise, data order or
# initial weights of another seed) moves weights by ~1e-3 or more
ATOL = 1e-5


def weights(path) -> dict[str, torch.Tensor]:
    return load(path)["state_dict"]


def test_one_seed_is_bit_identical_to_a_normal_run(tmp_path):
    train_run(tmp_path / "par", *RING, "seed=3", "seeds=1", "trainer.max_steps=6")
    train_run(tmp_path / "one", *RING, "seed=3", "trainer.max_steps=6")
    member = weights(tmp_path / "par" / "seed3" / "checkpoints" / "last.ckpt")
    single = weights(tmp_path / "one" / "checkpoints" / "last.ckpt")
    assert member.keys() == single.keys()
    different = [k for k in single if not torch.equal(member[k], single[k])]
    assert not different, different


def test_members_match_their_single_seed_runs(tmp_path):
    train_run(tmp_path / "par", *RING, "seed=5", "seeds=3", "trainer.max_steps=4")
    members = [weights(tmp_path / "par" / f"seed{s}" / "checkpoints" / "last.ckpt") for s in (5, 6, 7)]
    for s, member in zip((5, 6, 7), members):
        train_run(tmp_path / f"one{s}", *RING, f"seed={s}", "trainer.max_steps=4")
        single = weights(tmp_path / f"one{s}" / "checkpoints" / "last.ckpt")
        assert member.keys() == single.keys()
        for k in single:
            torch.testing.assert_close(member[k], single[k], atol=ATOL, rtol=0, msg=f"seed {s}: {k}")
    w = "generator.net.0.weight"
    assert (members[0][w] - members[1][w]).abs().max() > 1e-2  # each member its own initialisation


def test_member_outputs_are_normal_runs(tmp_path):
    from gan_lab.evaluate import load_run

    run = tmp_path / "par"
    metrics = train_run(run, *OUTPUTS, *RING, "seeds=2", "trainer.max_steps=10", fast=False)
    assert metrics["status"] == "completed" and metrics["seeds"] == {"0": "completed", "1": "completed"}
    for s in (0, 1):
        m = json.loads((run / f"seed{s}" / "metrics.json").read_text())
        assert m["status"] == "completed" and m["seed"] == s and m["steps"] == 10
        assert 0 <= m["modes_captured"] <= 8 and "g_loss" in m and "d_loss" in m
        assert (run / f"seed{s}" / "samples" / "samples_final.png").is_file()
        assert (run / f"seed{s}" / "metrics.csv").is_file()
    assert metrics["modes_captured"] == pytest.approx(
        sum(json.loads((run / f"seed{s}" / "metrics.json").read_text())["modes_captured"] for s in (0, 1)) / 2
    )
    # a member's checkpoint is a normal run's: evaluate/sample rebuild it from its own config
    loaded = load_run(run / "seed1" / "checkpoints" / "last.ckpt", device="cpu")
    assert loaded.cfg.seed == 1 and loaded.cfg.seeds is None and loaded.step == 10
    assert loaded.task.generate_samples(7).shape == (7, 2)
    # ... and it continues as a normal run
    more = train_run(run / "seed1", *RING, "seed=1", "ckpt_path=last", "trainer.max_steps=14")
    assert more["status"] == "completed" and more["steps"] == 14
    # the run's own checkpoint holds all members: one line pointing at the members'
    whole = load_run(run / "checkpoints" / "last.ckpt", device="cpu")
    with pytest.raises(ConfigError, match=r"holds 2 seed-parallel members.*seed<k>/checkpoints/last.ckpt"):
        whole.task.generate_samples(7)
    from gan_lab.sample import load_task  # gan-lab sample: the same line, before building anything

    with pytest.raises(ConfigError, match=r"holds 2 seed-parallel members.*seed<k>/checkpoints/last.ckpt"):
        load_task(run / "checkpoints" / "last.ckpt", device="cpu")


def test_resume_is_bit_identical(tmp_path):
    args = [*RING, "seeds=2", "trainer.log_every_n_steps=4", "callbacks.checkpoint.every_n_train_steps=4"]
    train_run(tmp_path / "straight", *args, "trainer.max_steps=16")
    train_run(tmp_path / "split", *args, "trainer.max_steps=8")
    train_run(tmp_path / "split", *args, "trainer.max_steps=16", "ckpt_path=last")
    for rel in ("checkpoints/last.ckpt", "seed0/checkpoints/last.ckpt", "seed1/checkpoints/last.ckpt"):
        a, b = weights(tmp_path / "straight" / rel), weights(tmp_path / "split" / rel)
        assert [k for k in a if not torch.equal(a[k], b[k])] == [], rel


def test_a_diverged_member_leaves_the_others_alone(tmp_path, monkeypatch):
    from gan_lab import ensemble

    stack = ensemble.SeedParallelGAN.stack

    def poisoned(self, tasks, streams):  # member 1's D starts with a NaN weight
        stack(self, tasks, streams)
        with torch.no_grad():
            self.discriminator.inner.body[1].weight[1, 0, 0] = float("nan")

    train_run(tmp_path / "healthy", *RING, "seeds=3", "trainer.max_steps=6")
    monkeypatch.setattr(ensemble.SeedParallelGAN, "stack", poisoned)
    metrics = train_run(tmp_path / "sick", *RING, "seeds=3", "trainer.max_steps=6")
    assert metrics["status"] == "completed"
    assert metrics["seeds"] == {"0": "completed", "1": "diverged", "2": "completed"}
    sick = json.loads((tmp_path / "sick" / "seed1" / "metrics.json").read_text())
    assert sick["status"] == "diverged" and sick["steps"] == 0 and "non-finite" in sick["error"]
    assert not (tmp_path / "sick" / "seed1" / "checkpoints" / "last.ckpt").exists()
    for s in (0, 2):  # the same weights as without the sick member
        a = weights(tmp_path / "healthy" / f"seed{s}" / "checkpoints" / "last.ckpt")
        b = weights(tmp_path / "sick" / f"seed{s}" / "checkpoints" / "last.ckpt")
        assert [k for k in a if not torch.equal(a[k], b[k])] == []


@pytest.mark.parametrize("mode", ["concat", "acgan", "projection"])
def test_class_conditional_members_match_their_single_runs(mode, tmp_path):
    cond = [f"model.conditional={mode}"]
    train_run(tmp_path / "par", *RING, *cond, "seeds=2", "trainer.max_steps=3")
    for s in (0, 1):
        train_run(tmp_path / f"one{s}", *RING, *cond, f"seed={s}", "trainer.max_steps=3")
        single = weights(tmp_path / f"one{s}" / "checkpoints" / "last.ckpt")
        member = weights(tmp_path / "par" / f"seed{s}" / "checkpoints" / "last.ckpt")
        assert member.keys() == single.keys()
        for k in single:
            torch.testing.assert_close(member[k], single[k], atol=ATOL, rtol=0, msg=f"{mode} seed {s}: {k}")


def test_tricks_stay_within_each_member(tmp_path):
    """Deterministic tricks (per-member statistics, packing, penalties, EMA, schedules, learning rates): members
    still match their single runs."""
    tricks = ["trick=[ema,minibatch_std,pacgan,r1,label_smoothing,ttur,g_steps]", "trick.ema.decay=0.9"]
    train_run(tmp_path / "par", *RING, *tricks, "seeds=2", "trainer.max_steps=3")
    for s in (0, 1):
        train_run(tmp_path / f"one{s}", *RING, *tricks, f"seed={s}", "trainer.max_steps=3")
        single = weights(tmp_path / f"one{s}" / "checkpoints" / "last.ckpt")
        member = weights(tmp_path / "par" / f"seed{s}" / "checkpoints" / "last.ckpt")
        assert member.keys() == single.keys() and any(".ema." in k for k in single)
        for k in single:
            torch.testing.assert_close(member[k], single[k], atol=ATOL, rtol=0, msg=f"seed {s}: {k}")


def test_one_seed_with_random_tricks_is_bit_identical(tmp_path):
    """Member 0 draws from the process's own stream: with one member, random tricks draw what the single run
    draws."""
    tricks = ["trick=[instance_noise,d_dropout,gradient_penalty]", "model.loss=wasserstein"]
    train_run(tmp_path / "par", *RING, *tricks, "seeds=1", "trainer.max_steps=3")
    train_run(tmp_path / "one", *RING, *tricks, "trainer.max_steps=3")
    a = weights(tmp_path / "par" / "seed0" / "checkpoints" / "last.ckpt")
    b = weights(tmp_path / "one" / "checkpoints" / "last.ckpt")
    assert [k for k in a if not torch.equal(a[k], b[k])] == []


def test_dcgan_members_match_their_single_runs(tmp_path):
    """Batch norm (running statistics per member) and convolutions under vmap."""
    dcgan = ["model=dcgan", "data=digits", "model.generator.ngf=8", "model.discriminator.ndf=8", "data.batch_size=16"]
    train_run(tmp_path / "par", *dcgan, "seeds=2", "trainer.max_steps=3")
    for s in (0, 1):
        train_run(tmp_path / f"one{s}", *dcgan, f"seed={s}", "trainer.max_steps=3")
        single = weights(tmp_path / f"one{s}" / "checkpoints" / "last.ckpt")
        member = weights(tmp_path / "par" / f"seed{s}" / "checkpoints" / "last.ckpt")
        assert any("running_mean" in k for k in single)
        for k in single:
            torch.testing.assert_close(member[k].float(), single[k].float(), atol=ATOL, rtol=0, msg=f"seed {s}: {k}")


def test_members_of_fresh_stacks_draw_their_single_runs_batches(tmp_path):
    """data.fresh=true: each member draws the new stacks its own single-seed run draws."""
    args = ["model=dcgan", "data=stacked_digits", "data.fresh=true", "data.n_samples=200", "data.batch_size=16"]
    args += ["model.generator.ngf=8", "model.discriminator.ndf=8", "metrics.n_samples=64", "metrics.n_real=64"]
    train_run(tmp_path / "par", *args, "seeds=2", "trainer.max_steps=3")
    for s in (0, 1):
        train_run(tmp_path / f"one{s}", *args, f"seed={s}", "trainer.max_steps=3")
        single = weights(tmp_path / f"one{s}" / "checkpoints" / "last.ckpt")
        member = weights(tmp_path / "par" / f"seed{s}" / "checkpoints" / "last.ckpt")
        for k in single:
            torch.testing.assert_close(member[k].float(), single[k].float(), atol=ATOL, rtol=0, msg=f"seed {s}: {k}")


@pytest.mark.slow
def test_reproduce_and_compare_take_the_members_as_seeds(tmp_path):
    from gan_lab import reproduce as rp
    from gan_lab.compare import compare

    out = tmp_path / "rep"
    args = dict(steps_scale=0.002, out=out, overrides=["metrics.n_samples=300"], threads=1, jobs=1, models=["GAN"])
    (summary,) = rp.reproduce("pacgan_ring", seeds=3, seed_parallel=True, **args)
    gan = summary["models"][0]
    assert gan["completed"] == 3 and [r["seed"] for r in gan["runs"]] == [0, 1, 2]
    job = out / "pacgan_ring" / "gan"
    assert json.loads((job / "metrics.json").read_text())["seeds"] == {
        "0": "completed",
        "1": "completed",
        "2": "completed",
    }
    for k in range(3):
        m = json.loads((job / f"seed{k}" / "metrics.json").read_text())
        assert m["steps"] == 12 and gan["runs"][k]["modes_captured"] == m["modes_captured"]
    rows = compare(out / "pacgan_ring", "modes_captured")  # the members, not the batched run, are the jobs
    assert {r.group for r in rows} == {"(base)"}
    assert next(r for r in rows if r.metric == "modes_captured").n == 3
    with pytest.raises(ConfigError, match="seeds= is not a job override here"):
        rp.reproduce("pacgan_ring", seeds=3, **{**args, "overrides": ["seeds=3"]})


@pytest.mark.slow
def test_members_end_like_separate_runs(tmp_path):
    """Over a short full training (400 steps, 5 seeds) the members' final mode metrics are distributed like
    those of five separate runs (Welch's t-test does not tell them apart at alpha = 0.01)."""
    from scipy import stats

    args = [*OUTPUTS, *RING, "trainer.max_steps=400", "metrics.n_samples=1000"]
    train_run(tmp_path / "par", *args, "seeds=5", fast=False)
    par = [json.loads((tmp_path / "par" / f"seed{s}" / "metrics.json").read_text()) for s in range(5)]
    one = [train_run(tmp_path / f"one{s}", *args, f"seed={s}", fast=False) for s in range(5)]
    for key in ("hq_fraction", "mean_mode_dist", "d_loss", "g_loss"):
        a, b = [m[key] for m in par], [m[key] for m in one]
        same = all(abs(x - y) < 1e-9 for x, y in zip(a, b))
        assert same or stats.ttest_ind(a, b, equal_var=False).pvalue > 0.01, (key, a, b)


def test_each_member_has_its_own_monitor(tmp_path):
    """The training monitor per member: its gradient norms and D accuracies are its single run's, its alarms
    come from its own evaluations, and its state travels in its checkpoint (a member resumes as a normal run)."""
    monitor = [*OUTPUTS, "trainer.log_every_n_steps=2", "metrics.every_n_steps=3"]
    monitor += ["callbacks.monitor.min_mode_fraction=1.0", "callbacks.monitor.eval_patience=1"]  # untrained: fires
    run = tmp_path / "par"
    metrics = train_run(run, *RING, *monitor, "seeds=2", "trainer.max_steps=6", fast=False)
    for s in (0, 1):
        single = train_run(tmp_path / f"one{s}", *RING, *monitor, f"seed={s}", "trainer.max_steps=6", fast=False)
        member = json.loads((run / f"seed{s}" / "metrics.json").read_text())
        for key in ("grad_norm_g", "grad_norm_d", "d_acc_real", "d_acc_fake"):
            assert member[key] == pytest.approx(single[key], rel=1e-3, abs=1e-6), (s, key)
        assert [(a["name"], a["step"]) for a in member["alarms"]] == [(a["name"], a["step"]) for a in single["alarms"]]
        assert member["alarms"] and member["alarms"][0]["name"] == "coverage_collapse"
        ckpts = [d / "checkpoints" / "last.ckpt" for d in (run / f"seed{s}", tmp_path / f"one{s}")]
        states = [load(c)["callbacks"]["MonitorCallback"] for c in ckpts]
        assert states[0]["fired"] == states[1]["fired"]
    fired = sorted((a["seed"], a["name"]) for a in metrics["alarms"])
    assert fired == [(0, "coverage_collapse"), (1, "coverage_collapse")]
