"""KID and precision/recall/density/coverage share one set of Gram passes; the reference's part is reused."""

from __future__ import annotations

import pytest
import torch

from gan_lab.data.digits import DigitsDataModule
from gan_lab.metrics import evaluate
from gan_lab.metrics import pairwise as pw
from gan_lab.metrics.fid import kid
from gan_lab.metrics.prdc import prdc


def _features(n, d, seed, scale=1.0):
    g = torch.Generator().manual_seed(seed)
    mix = torch.randn(d, d, generator=torch.Generator().manual_seed(99)) / d**0.5
    return (scale * torch.randn(n, d, generator=g) @ mix).relu()


def test_shared_passes_give_the_separate_numbers_and_reuse_the_reference(monkeypatch):
    real, fake = _features(260, 24, 0), _features(230, 24, 1, 1.2)
    spec = pw.KidSpec(subsets=12, size=100, seed=5)
    passes = []
    real_pass = pw._pass
    monkeypatch.setattr(pw, "_pass", lambda a, b, *args, **kw: passes.append(b is None) or real_pass(a, b, *args, **kw))
    memo: dict = {}
    both = pw.kid_prdc(real, fake, spec, pw.PrdcSpec(3, 5), tile=64, cache=memo)
    assert passes == [True, True, False]  # real-real, fake-fake (symmetric), fake-real
    kid_alone = pw.kid_prdc(real, fake, spec, tile=100)["kid"]
    assert torch.allclose(both["kid"], kid_alone, rtol=1e-5, atol=0)
    assert both["kid"].mean().item() == pytest.approx(kid(real, fake, 12, 100, seed=5)[0], rel=1e-5)
    assert {k: both[k] for k in ("precision", "recall", "density", "coverage")} == prdc(real, fake, 3, 5, chunk=50)
    passes.clear()
    other = _features(230, 24, 2, 0.9)
    again = pw.kid_prdc(real, other, spec, pw.PrdcSpec(3, 5), tile=64, cache=memo)
    assert passes == [True, False]  # the reference's radii and KID sums come from the memo: no real-real pass
    fresh = pw.kid_prdc(real, other, spec, pw.PrdcSpec(3, 5), tile=64)
    assert torch.equal(again["kid"], fresh["kid"]) and again["precision"] == fresh["precision"]


def test_matmul_precision_is_full_float32_during_the_passes_and_restored_after():
    real, fake = _features(120, 16, 3), _features(110, 16, 4)
    want = pw.kid_prdc(real, fake, pw.KidSpec(5, 50), pw.PrdcSpec(3, 5))
    seen = []
    old = torch.get_float32_matmul_precision()
    torch.set_float32_matmul_precision("medium")
    try:
        with pw.highest_precision():
            seen.append(torch.get_float32_matmul_precision())
        got = pw.kid_prdc(real, fake, pw.KidSpec(5, 50), pw.PrdcSpec(3, 5))
        assert torch.get_float32_matmul_precision() == "medium"
    finally:
        torch.set_float32_matmul_precision(old)
    assert seen == ["highest"] and torch.equal(got["kid"], want["kid"]) and got["coverage"] == want["coverage"]


def test_compute_metrics_runs_the_shared_passes_once(monkeypatch, tmp_path):
    monkeypatch.setenv("GAN_LAB_CACHE", str(tmp_path))
    dm = DigitsDataModule(size=32, batch_size=8)
    calls = []
    real_fn = evaluate.kid_prdc
    monkeypatch.setattr(evaluate, "kid_prdc", lambda *a, **k: calls.append(k.get("cache")) or real_fn(*a, **k))
    fake = dm.split_tensors("val")[0][:150]
    opts = dict(n_real=200, names=["kid", "prdc"], kid_subsets=10, kid_subset_size=100)
    m, protocol = evaluate.compute_metrics(fake, dm, **opts)
    assert len(calls) == 1 and {"kid", "kid_std", "precision", "recall", "density", "coverage"} <= set(m)
    m2, _ = evaluate.compute_metrics(fake, dm, **opts)  # the same reference, from memory: same numbers
    assert len(calls) == 2 and calls[1] is calls[0] and m2 == m
