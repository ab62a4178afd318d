"""Training monitor: alarm logic on synthetic numbers, gradient norms in a real loop, alarms in real runs."""

from __future__ import annotations

import csv
import logging
from pathlib import Path

import pytest
import pytorch_lightning as pl
import torch
from conftest import FAST, compose_cfg, train_run

from gan_lab.callbacks.evaluation import EvaluationCallback
from gan_lab.callbacks.monitor import Alarms, MonitorCallback, grad_norm
from gan_lab.errors import ConfigError

TOY = ["model=gan_mlp", "data=toy2d_ring", "data.n_samples=5000", "callbacks.samples=null"]


def _csv(path: Path) -> list[dict]:
    with open(path / "metrics.csv", newline="") as f:
        return list(csv.DictReader(f))


# ---- alarm logic on synthetic windows and evaluations -----------------------------------------------
def test_d_wins_needs_accuracy_vanishing_gradient_and_patience():
    a = Alarms(patience=2)
    assert a.window(10, {"g": 1.0, "d": 1.0}, 0.7, 0.6) == []
    assert a.window(20, {"g": 1.2, "d": 0.05}, 1.0, 1.0) == []  # first window of D winning: patience 2
    (alarm,) = a.window(30, {"g": 1.5, "d": 0.04}, 1.0, 0.995)
    assert alarm["name"] == "d_wins" and alarm["step"] == 30
    assert "D's gradient vanished" in alarm["message"] and "G's" not in alarm["message"]
    assert a.window(40, {"g": 1.5, "d": 0.03}, 1.0, 1.0) == []  # fires once per episode
    assert a.window(50, {"g": 1.5, "d": 0.03}, 0.98, 1.0) == []  # accuracy below 0.99: re-armed
    a.window(60, {"g": 1.5, "d": 0.03}, 1.0, 1.0)
    assert [x["step"] for x in a.window(70, {"g": 1.5, "d": 0.03}, 1.0, 1.0)] == [70]
    assert [x["step"] for x in a.fired] == [30, 70]


def test_d_wins_minimax_style_vanishing_generator_gradient():
    a = Alarms(patience=1)
    a.window(10, {"g": 0.4, "d": 0.5}, 0.9, 0.9)
    (alarm,) = a.window(20, {"g": 0.03, "d": 0.5}, 1.0, 1.0)
    assert "G's gradient vanished (0.03, peak 0.4)" in alarm["message"]


def test_no_d_wins_without_vanishing_gradient_or_discriminator():
    a = Alarms(patience=1)
    for step in range(10, 60, 10):  # perfect accuracy with healthy gradients: D ahead, not saturated
        assert a.window(step, {"g": 2.0, "d": 1.0 + step / 100}, 1.0, 1.0) == []
    b = Alarms(patience=1)
    b.window(10, {"g": 1.0}, None, None)  # an autoencoder: one optimizer, no D accuracy
    assert b.window(20, {"g": 0.01}, None, None) == [] and b.fired == []
    c = Alarms(patience=1)
    c.window(10, {"g": 1.0, "d": 1.0}, 1.0, 1.0)
    assert c.window(20, {"g": 0.01}, 1.0, 1.0) == []  # D frozen in this window (no D step): not judged


def test_coverage_collapse_fraction_drop_and_diversity():
    a = Alarms()  # eval_patience 2
    toy = {"n_modes": 8}
    assert a.evaluation(500, {"modes_captured": 8.0}, toy) == []
    (alarm,) = a.evaluation(1000, {"modes_captured": 3.0}, toy)  # a fall from 8: at once
    assert alarm["name"] == "coverage_collapse" and alarm["step"] == 1000 and "down from 8" in alarm["message"]
    assert a.evaluation(1500, {"modes_captured": 2.0}, toy) == []  # still collapsed: no repeat
    assert a.evaluation(2000, {"modes_captured": 8.0}, toy) == []  # recovered: re-armed
    assert [x["step"] for x in a.evaluation(2500, {"modes_captured": 4.0}, toy)] == [2500]  # 50% down
    b = Alarms()  # low from the start (untrained, or collapsed early): only after 2 evaluations in a row
    assert b.evaluation(500, {"modes_captured": 1.0}, toy) == []
    (alarm,) = b.evaluation(1000, {"modes_captured": 0.0}, toy)
    assert alarm["message"] == "coverage collapse: modes_captured 0 of 8 (< 0.5 of the data's modes)"  # no "fall"
    c = Alarms()
    assert c.evaluation(500, {"modes_captured": 1.0}, toy) == []
    assert c.evaluation(1000, {"modes_captured": 5.0}, toy) == []  # more than half the modes: streak reset
    assert c.evaluation(1500, {"modes_captured": 3.0}, toy) == []  # low once; a 40% fall only
    assert "3 of 8" in c.evaluation(2000, {"modes_captured": 3.0}, toy)[0]["message"]
    digits = {"n_classes": 10}
    e = Alarms(eval_patience=1)
    (alarm,) = e.evaluation(500, {"class_modes": 10.0, "diversity": 0.1}, digits)
    assert alarm["message"] == "coverage collapse: diversity 0.1 (< 0.3)"
    d = Alarms(eval_patience=1)
    d.evaluation(500, {"stacked_modes": 900.0}, {"n_stacked_modes": 1000})
    assert "stacked_modes 400, down from 900" in d.evaluation(1000, {"stacked_modes": 400.0}, {})[0]["message"]
    one = Alarms(eval_patience=1)  # most channels in one digit: the message says which, and what it may mean
    top = {"n_stacked_modes": 1000, "stacked_top_digit": {"digit": 8, "share": 0.998, "confidence": 0.99}}
    (alarm,) = one.evaluation(500, {"stacked_modes": 1.0}, top)
    assert "stacked_modes 1 of 1000" in alarm["message"]
    assert "100% of the generated channels read as the digit 8, mean confidence 0.99" in alarm["message"]
    spread = {"n_stacked_modes": 1000, "stacked_top_digit": {"digit": 8, "share": 0.4, "confidence": 0.99}}
    (alarm,) = Alarms(eval_patience=1).evaluation(500, {"stacked_modes": 1.0}, spread)
    assert "read as the digit" not in alarm["message"]
    assert Alarms(eval_patience=1).evaluation(500, {"fid": 3.0}, {}) == []  # nothing to judge


def test_state_survives_a_checkpoint(tmp_path):
    """A resumed run keeps its alarms, peaks and streaks (the callback state is saved in the checkpoint)."""
    a = MonitorCallback(patience=2)
    a.alarms.window(10, {"g": 1.0, "d": 1.0}, 0.5, 0.5)
    a.alarms.window(20, {"g": 1.0, "d": 0.01}, 1.0, 1.0)  # streak 1
    a.alarms.evaluation(20, {"modes_captured": 8.0}, {"n_modes": 8})
    a.alarms.evaluation(30, {"modes_captured": 1.0}, {"n_modes": 8})  # fires
    torch.save({"callbacks": {"monitor": a.state_dict()}}, tmp_path / "x.ckpt")
    b = MonitorCallback(patience=2)
    b.load_state_dict(torch.load(tmp_path / "x.ckpt", weights_only=True)["callbacks"]["monitor"])
    assert b.alarms.fired == a.alarms.fired and b.alarms.peak == {"g": 1.0, "d": 1.0}
    assert [x["name"] for x in b.alarms.window(40, {"g": 1.0, "d": 0.01}, 1.0, 1.0)] == ["d_wins"]  # streak 2
    assert b.alarms.evaluation(40, {"modes_captured": 1.0}, {"n_modes": 8}) == []  # still the same episode


@pytest.mark.parametrize(
    "kw,match",
    [({"acc": 1.5}, "acc=1.5 is out of range"), ({"patience": 0}, "patience=0 is out of range"),
     ({"patience": 1.5}, "patience=1.5 must be an integer"), ({"vanish": -0.1}, "vanish=-0.1"),
     ({"eval_patience": 0}, "eval_patience=0"), ({"min_diversity": "low"}, "min_diversity='low' is not a number")],
)  # fmt: skip
def test_bad_thresholds_one_line(kw, match):
    with pytest.raises(ConfigError, match=match):
        MonitorCallback(**kw)


def test_grad_norm_is_the_norm_of_all_gradients():
    w1, w2 = torch.nn.Parameter(torch.zeros(3)), torch.nn.Parameter(torch.zeros(2))
    opt = torch.optim.SGD([w1, w2], lr=0.1)
    assert grad_norm(opt) is None
    w1.grad, w2.grad = torch.tensor([3.0, 0.0, 0.0]), torch.tensor([0.0, 4.0])
    assert float(grad_norm(opt)) == pytest.approx(5.0)
    shapes = [(256, 32), (256,), (256, 256), (256,), (1, 256), (1,)]  # the MLP GAN's D: the same as torch's total
    ps = [torch.nn.Parameter(torch.zeros(s)) for s in shapes]
    for p in ps:
        p.grad = torch.randn(p.shape, generator=torch.Generator().manual_seed(p.numel()))
    assert torch.equal(grad_norm(torch.optim.Adam(ps)), torch.nn.utils.get_total_norm([p.grad for p in ps]))


# ---- real loops -----------------------------------------------------------------------------------
class CountSteps(pl.Callback):
    def __init__(self):
        self.calls = {"g": 0, "d": 0}

    def on_before_optimizer_step(self, trainer, pl_module, optimizer):
        self.calls["g" if optimizer is trainer.optimizers[0] else "d"] += 1


def test_hook_fires_for_both_step_paths_and_norms_are_logged(tmp_path):
    """3 G steps per batch (2 through trainer.strategy.optimizer_step, the last through opt.step()) and
    one D step: the hook sees all of them; metrics.csv gets the window means next to D's accuracies."""
    from gan_lab.train import build_objects, train

    overrides = [*FAST, *TOY, "trick=[g_steps]", "trick.g_steps.k=3", "trainer.max_steps=20",
                 "trainer.log_every_n_steps=5"]  # fmt: skip
    dm, task, trainer = build_objects(compose_cfg(*overrides), tmp_path / "count")
    counter = CountSteps()
    trainer.callbacks.append(counter)
    trainer.fit(task, datamodule=dm)
    assert counter.calls == {"g": 60, "d": 20}

    m = train(compose_cfg(*overrides), tmp_path / "run")
    assert m["status"] == "completed" and m["alarms"] == []
    rows = _csv(tmp_path / "run")
    norms = [r for r in rows if r.get("train/grad_norm_g")]
    assert [int(r["step"]) for r in norms] == [5, 10, 15, 20]
    assert all(float(r["train/grad_norm_g"]) > 0 and float(r["train/grad_norm_d"]) > 0 for r in norms)
    assert any(r.get("train/d_acc_real") for r in rows) and any(r.get("train/d_acc_fake") for r in rows)
    assert m["grad_norm_g"] == pytest.approx(float(norms[-1]["train/grad_norm_g"]))


def test_autoencoder_has_no_discriminator_numbers(tmp_path):
    m = train_run(tmp_path, "model=ae", "callbacks.samples=null", "trainer.max_steps=6", "trainer.log_every_n_steps=3")
    assert m["status"] == "completed" and m["alarms"] == [] and m["grad_norm_g"] > 0
    cols = set(_csv(tmp_path)[0])
    assert "train/grad_norm_g" in cols and "train/grad_norm_d" not in cols


def test_d_wins_alarm_in_a_real_run(tmp_path, caplog):
    """A generator that cannot learn (lr 1e-8) against a normal D: D separates real from fake perfectly
    and saturates; the alarm lands in the log, metrics.csv and metrics.json."""
    with caplog.at_level(logging.WARNING, logger="gan_lab"):
        m = train_run(tmp_path, *TOY, "model.g_optimizer.lr=1e-8", "trainer.max_steps=150",
                      "trainer.log_every_n_steps=10", "callbacks.monitor.patience=2")  # fmt: skip
    (alarm,) = m["alarms"]
    assert alarm["name"] == "d_wins" and 0 < alarm["step"] <= 150 and "vanished" in alarm["message"]
    assert m["d_acc_real"] >= 0.99 and m["d_acc_fake"] >= 0.99
    assert [r.message for r in caplog.records if "alarm d_wins" in r.message] != []
    flagged = [int(r["step"]) for r in _csv(tmp_path) if r.get("alarms/d_wins")]
    assert flagged == [alarm["step"]]


class Collapsing(pl.LightningModule):
    """A stand-in generator on the ring: samples on all 8 modes, from step 4 on all near the first one; with
    what the callbacks ask of a task (gan_lab/tasks/interface.py)."""

    data_kind, num_classes, optimizer_names = "points", 0, ("g",)

    def __init__(self, centers):
        super().__init__()
        self.centers = centers
        self.w = torch.nn.Parameter(torch.zeros(()))
        self.last_logged: dict[str, float] = {}

    def sample_labels(self, n, seed=12345):
        return None

    def label_protocol(self):
        return {}

    def held_out_metrics(self, datamodule):
        return {}

    def training_step(self, batch, batch_idx):
        return (self.w - 1) ** 2

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)

    def generate_samples(self, n, batch_size=500, labels=None, seed=12345, datamodule=None):
        g = torch.Generator().manual_seed(0)
        idx = torch.randint(len(self.centers), (n,), generator=g) if self.global_step < 4 else torch.zeros(n).long()
        return self.centers[idx] + 0.01 * torch.randn(n, 2, generator=g)


def test_coverage_collapse_alarm_after_an_evaluation(tmp_path):
    from pytorch_lightning.loggers import CSVLogger

    from gan_lab.data.toy2d import Toy2DDataModule

    dm = Toy2DDataModule(kind="ring", sigma=0.02, n_samples=400, batch_size=20)
    evaluation, monitor = EvaluationCallback(every_n_steps=2, n_samples=200), MonitorCallback()
    trainer = pl.Trainer(max_steps=7, callbacks=[evaluation, monitor], logger=CSVLogger(tmp_path, name="", version=""),
                         accelerator="cpu", log_every_n_steps=2, enable_checkpointing=False,
                         enable_progress_bar=False, enable_model_summary=False)  # fmt: skip
    trainer.fit(Collapsing(dm.centers), datamodule=dm)
    assert [m["modes_captured"] for _, m in evaluation.history] == [8, 1, 1, 1]  # steps 2, 4, 6 and the end (7)
    (alarm,) = monitor.final()["alarms"]
    assert alarm["name"] == "coverage_collapse" and alarm["step"] == 4
    assert "modes_captured 1, down from 8" in alarm["message"]
    assert [int(r["step"]) for r in _csv(tmp_path) if r.get("alarms/coverage_collapse")] == [4]
    assert "grad_norm_g" in monitor.final()  # a one-optimizer module: G only


def test_coverage_collapse_alarm_in_a_real_run(tmp_path):
    """experiment=mode_collapse, shortened: D frozen from batch 5 on while G takes 5 steps per batch."""
    fast_with_metrics = [o for o in FAST if not o.startswith("callbacks.metrics")]
    m = train_run(tmp_path, *fast_with_metrics, "experiment=mode_collapse", "callbacks.samples=null",
                  "metrics.every_n_steps=10", "metrics.n_samples=500", "data.n_samples=5000", "trainer.max_steps=30",
                  "trick.d_freeze.start=5", "trick.d_freeze.k=100", "trick.d_freeze.period=0", fast=False)  # fmt: skip
    assert m["modes_captured"] < 4
    (alarm,) = [a for a in m["alarms"] if a["name"] == "coverage_collapse"]
    assert alarm["step"] in (20, 30) and "of 8" in alarm["message"]
