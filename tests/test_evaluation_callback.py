import math

import pytest
import pytorch_lightning as pl
import torch
from pytorch_lightning.loggers import Logger

from gan_lab.callbacks.evaluation import EvaluationCallback
from gan_lab.data.digits import DigitsDataModule
from gan_lab.data.stacked import StackedDigitsDataModule
from gan_lab.data.toy2d import Toy2DDataModule, sample_mixture
from gan_lab.errors import ConfigError
from gan_lab.metrics import fid as fid_mod
from gan_lab.metrics.evaluate import compute_metrics
from gan_lab.metrics.features import load_feature_net
from gan_lab.tasks.interface import TaskDefaults

IMAGE_KEYS = {"fid", "kid", "kid_std", "class_modes", "class_kl", "precision", "recall", "density", "coverage",
              "ndb", "ndb_fraction", "diversity"}  # fmt: skip
FAST = {"kid_subsets": 5, "kid_subset_size": 200, "ndb_k": 10}


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("GAN_LAB_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(fid_mod, "_MEMO", type(fid_mod._MEMO)())


@pytest.fixture(scope="module")
def digits():
    return DigitsDataModule(size=32, batch_size=32, val_fraction=0.2)


def test_toy2d_metrics_real_vs_collapsed():
    dm = Toy2DDataModule(kind="ring", sigma=0.02, n_samples=2000, batch_size=50)
    real, _ = sample_mixture(dm.centers, dm.sigma, 1000, seed=7)
    m, protocol = compute_metrics(real, dm)
    assert set(m) == {"modes_captured", "hq_fraction", "reverse_kl", "mean_mode_dist"}
    assert m["modes_captured"] == 8 and m["hq_fraction"] > 0.97 and m["reverse_kl"] < 0.02
    assert protocol["metric_set"] == "toy2d" and protocol["n_generated"] == 1000 and protocol["n_modes"] == 8
    collapsed = dm.centers[2] + 0.01 * torch.randn(500, 2)
    m, _ = compute_metrics(collapsed, dm)
    assert m["modes_captured"] == 1 and m["reverse_kl"] == pytest.approx(math.log(8), rel=1e-6)


def test_digits_metrics_real_vs_noise(digits):
    held = digits.split_tensors("val")[0][:300]
    m_real, protocol = compute_metrics(held, digits, **FAST)
    assert set(m_real) == IMAGE_KEYS | {"fid/digits/300", "kid/digits/300"}  # the protocol travels with the number
    assert m_real["fid/digits/300"] == m_real["fid"] and m_real["kid/digits/300"] == m_real["kid"]
    net = load_feature_net("digits")
    assert protocol["feature_net"] == "digits" and protocol["feature_net_version"] == net.version
    assert protocol["n_generated"] == 300 and protocol["n_reference"] == len(digits.split_tensors("train")[0])
    assert protocol["reference_split"] == "train" and protocol["kid_subset_size"] == 200
    assert protocol["reference_cache"] == "computed" and protocol["n_classes"] == 10
    assert protocol["ndb_k"] == 10
    noise = torch.rand(300, 1, 32, 32, generator=torch.Generator().manual_seed(0)) * 2 - 1
    m_noise, _ = compute_metrics(noise, digits, **FAST)
    assert m_real["fid"] * 10 < m_noise["fid"]
    assert m_real["class_modes"] == 10 and m_real["class_kl"] < 0.05
    assert m_real["precision"] > 0.7 and m_real["recall"] > 0.7 and m_real["coverage"] > 0.45  # 300 vs 1438
    assert m_noise["precision"] < 0.1 and m_noise["coverage"] < 0.1
    assert m_real["ndb"] <= 3 and m_noise["ndb"] >= 5
    assert 0.8 < m_real["diversity"] < 1.2
    # one-class collapse: all samples a single image
    collapsed = held[:1].expand(300, -1, -1, -1) + 0.01 * torch.randn(300, 1, 32, 32)
    m_col, _ = compute_metrics(collapsed, digits, **FAST)
    assert m_col["class_modes"] <= 2 and m_col["class_kl"] > 1.5 and m_col["diversity"] < 0.2
    assert m_col["recall"] < 0.1


def test_real_features_are_reused(digits, monkeypatch):
    held = digits.split_tensors("val")[0][:100]
    compute_metrics(held, digits, **FAST)
    calls = []
    original = fid_mod.embed
    monkeypatch.setattr(fid_mod, "embed", lambda *a, **k: calls.append(1) or original(*a, **k))
    _, protocol = compute_metrics(held, digits, **FAST)
    assert calls == [] and protocol["reference_cache"] == "memory"
    _, protocol = compute_metrics(held, digits, n_real=500, **FAST)  # another reference size: another entry
    assert calls == [1] and protocol["n_reference"] == 500


def test_stacked_digits_metrics():
    dm = StackedDigitsDataModule(size=32, n_samples=1500, batch_size=32, val_fraction=0.2)
    held = dm.split_tensors("val")[0]
    m, protocol = compute_metrics(held, dm, **FAST)
    n = len(held)
    assert set(m) == {"fid", "kid", "kid_std", "stacked_modes", "stacked_kl", f"fid/digits/{n}", f"kid/digits/{n}"}
    assert protocol["metric_set"] == "stacked" and "384-d" in protocol["fid_features"]
    assert protocol["n_stacked_modes"] == 1000
    assert m["stacked_modes"] > 230  # 300 draws from 1000 modes cover ~259 in expectation
    one_digit = held[:1].expand(300, -1, -1, -1).clone()
    m1, p1 = compute_metrics(one_digit, dm, **FAST)
    assert m1["stacked_modes"] == 1 and m1["stacked_kl"] == pytest.approx(math.log(1000), rel=1e-6)
    assert protocol["stacked_top_digit"]["share"] < 0.3  # real stacks: ten digits in about equal shares
    top = p1["stacked_top_digit"]  # one stack repeated 300 times: the share counts its 3 channels, so k / 3
    assert round(top["share"] * 3, 3) in (1.0, 2.0, 3.0) and 0.1 < top["confidence"] <= 1.0
    assert m1["fid"] > 5 * m["fid"]


def test_unknown_domain_and_bad_samples_are_skipped(digits):
    class Folder:
        name, is_image, shape = "folder", True, (3, 32, 32)

    m, protocol = compute_metrics(torch.zeros(10, 3, 32, 32), Folder())
    assert m == {} and "no feature net" in protocol["skipped"]
    m, protocol = compute_metrics(torch.zeros(10, 3, 32, 32), digits)
    assert m == {} and "3-channel" in protocol["skipped"]
    bad = torch.zeros(10, 1, 32, 32)
    bad[0, 0, 0, 0] = float("nan")
    m, protocol = compute_metrics(bad, digits)
    assert m == {} and "non-finite" in protocol["skipped"]
    with pytest.raises(ConfigError, match="allowed digits, mnist, inception"):
        compute_metrics(torch.zeros(10, 1, 32, 32), digits, feature_net="vgg")


# ------------------------------------------------------------------------------------------------
# the callback in a real (tiny) training loop


class MemoryLogger(Logger):
    def __init__(self):
        super().__init__()
        self.logged = []

    @property
    def name(self):
        return "memory"

    @property
    def version(self):
        return 0

    def log_hyperparams(self, params, *args, **kwargs):
        pass

    def log_metrics(self, metrics, step=None):
        self.logged.append((step, dict(metrics)))


class StandIn(TaskDefaults, pl.LightningModule):
    """A 'generator' that moves towards the mixture: samples = centers + noise * scale (a task: the interface's
    defaults, no classes)."""

    data_kind = "points"

    def __init__(self, centers):
        super().__init__()
        self.centers = centers
        self.scale = torch.nn.Parameter(torch.tensor(1.0))
        self.calls = []

    def training_step(self, batch, batch_idx):
        return (self.scale - 0.01) ** 2

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)

    @torch.no_grad()
    def generate_samples(self, n, batch_size=500, labels=None, seed=12345, datamodule=None):
        self.calls.append((n, self.training))
        g = torch.Generator().manual_seed(len(self.calls))
        idx = torch.randint(len(self.centers), (n,), generator=g)
        return self.centers[idx] + float(self.scale) * torch.randn(n, 2, generator=g)


def _fit(cb, max_steps):
    dm = Toy2DDataModule(kind="ring", sigma=0.02, n_samples=400, batch_size=20)
    model, logger = StandIn(dm.centers), MemoryLogger()
    trainer = pl.Trainer(max_steps=max_steps, callbacks=[cb], logger=[logger], accelerator="cpu",
                         enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False)  # fmt: skip
    trainer.fit(model, datamodule=dm)
    return model, logger


def test_callback_logs_every_n_steps_and_at_end():
    cb = EvaluationCallback(every_n_steps=2, n_samples=200)
    model, logger = _fit(cb, max_steps=5)
    steps = [s for s, _ in logger.logged if any(k.startswith("metrics/") for k in _)]
    assert steps == [2, 4, 5]  # periodic at 2 and 4, then the end of training
    assert [n for n, _ in model.calls] == [200, 200, 200]
    assert set(logger.logged[-1][1]) == {f"metrics/{k}" for k in cb.last_metrics}
    final = cb.final()
    assert final["protocol"]["metric_set"] == "toy2d" and final["protocol"]["n_generated"] == 200
    assert final["modes_captured"] == cb.last_metrics["modes_captured"]
    # the stand-in shrinks its noise while training: the last evaluation is the best one
    first, last = cb.history[0][1], cb.history[-1][1]
    assert last["hq_fraction"] > first["hq_fraction"]


def test_callback_no_duplicate_at_end_and_at_end_off():
    cb = EvaluationCallback(every_n_steps=3, n_samples=50)
    _, logger = _fit(cb, max_steps=6)
    assert [s for s, _ in logger.logged] == [3, 6]
    cb = EvaluationCallback(every_n_steps=0, n_samples=50, at_end=False)
    _, logger = _fit(cb, max_steps=3)
    assert logger.logged == [] and cb.final() == {"protocol": {}}


def test_callback_argument_checks():
    with pytest.raises(ConfigError, match="n_samples=1 is out of range"):
        EvaluationCallback(every_n_steps=10, n_samples=1)
    with pytest.raises(ConfigError, match="every_n_steps=-1"):
        EvaluationCallback(every_n_steps=-1, n_samples=100)


def test_few_samples_skip_only_the_knn_metrics(digits):
    m, protocol = compute_metrics(digits.split_tensors("val")[0][:3], digits, **FAST)
    assert "precision" not in m and "prdc_skipped" in protocol
    assert {"fid", "kid", "class_modes", "ndb", "diversity"} <= set(m)
