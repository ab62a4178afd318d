import errno

import numpy as np
import pytest
import scipy.linalg
import torch
from conftest import fail_writes_to
from torchmetrics.image.kid import poly_mmd

from gan_lab.metrics import fid as fid_mod
from gan_lab.metrics.features import embed, heldout_data, load_feature_net
from gan_lab.metrics.fid import fid, gaussian, kid, real_stats
from gan_lab.metrics.pairwise import KidSpec, kid_prdc, kid_subsets


def _fid_numpy(a: np.ndarray, b: np.ndarray) -> float:
    """The reference formula: |mu1 - mu2|^2 + tr(S1 + S2 - 2 sqrtm(S1 S2))."""
    mu1, mu2 = a.mean(0), b.mean(0)
    s1, s2 = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    covmean = scipy.linalg.sqrtm(s1 @ s2).real
    return float(((mu1 - mu2) ** 2).sum() + np.trace(s1 + s2 - 2 * covmean))


def _correlated(n, d, seed, scale=1.0, shift=0.0, mix_seed=None):
    """n samples of a correlated Gaussian; the mixing matrix (the distribution) from mix_seed (default: seed)."""
    mix = torch.randn(d, d, generator=torch.Generator().manual_seed(seed if mix_seed is None else mix_seed))
    g = torch.Generator().manual_seed(seed + 1000)
    return (torch.randn(n, d, generator=g) @ mix / d**0.5) * scale + shift


@pytest.mark.parametrize("scale,shift", [(1.0, 0.0), (1.3, 0.2), (0.5, -1.0)])
def test_fid_matches_scipy(scale, shift):
    a, b = _correlated(800, 24, 0), _correlated(700, 24, 1, scale, shift)
    want = _fid_numpy(a.double().numpy(), b.double().numpy())
    assert fid(a, b) == pytest.approx(want, rel=1e-3)


def test_fid_properties():
    a = _correlated(1000, 16, 2)
    assert fid(a, a) == pytest.approx(0.0, abs=1e-6)
    # same covariance, mean shifted by c in every dimension: FID = D c^2 exactly
    assert fid(a, a + 0.5) == pytest.approx(16 * 0.25, rel=1e-6)
    with pytest.raises(ValueError, match="same D"):
        fid(a, a[:, :8])


def test_covariance_from_upper_tiles_equals_numpy():
    x = _correlated(300, 40, 8) + 3.0
    mu, sigma = gaussian(x, block=16)  # tiles of 16, 16 and 8 columns: the last one ragged
    want = np.cov(x.double().numpy(), rowvar=False)
    assert torch.allclose(sigma, torch.from_numpy(want), rtol=1e-12, atol=1e-12)
    assert torch.equal(sigma, sigma.T) and torch.allclose(mu, x.double().mean(0))


def test_kid_matches_torchmetrics_and_is_seeded():
    a, b = _correlated(300, 32, 3).relu(), _correlated(300, 32, 4, 1.2).relu()
    # one subset of the full size: the permutation does not matter, so it is torchmetrics' poly_mmd exactly
    mean, std = kid(a, b, subsets=1, subset_size=300)
    assert mean == pytest.approx(float(poly_mmd(a.double(), b.double())), rel=1e-4)
    assert std is None  # every subset is the whole of both sets: the spread is undefined, not 0
    # every subset's value (from Gram tiles smaller than the sets) is poly_mmd of that subset's features
    spec = KidSpec(subsets=7, size=100, seed=3, batch=3)
    values = kid_prdc(a, b[:250], kid=spec, tile=64)["kid"]
    ir, jf = kid_subsets(300, 250, spec)
    for i in range(7):
        want = float(poly_mmd(a[ir[i]].double(), b[:250][jf[i]].double()))
        assert float(values[i]) == pytest.approx(want, rel=1e-4)
    assert kid(a, b, 20, 100, seed=1) == kid(a, b, 20, 100, seed=1)
    assert kid(a, b, 20, 100, seed=1) != kid(a, b, 20, 100, seed=2)


def test_kid_near_zero_for_same_distribution():
    a, b = _correlated(2000, 16, 5, mix_seed=0).relu(), _correlated(2000, 16, 6, mix_seed=0).relu()
    c = _correlated(2000, 16, 7, scale=1.3, mix_seed=0).relu()
    same, std = kid(a, b, subsets=20, subset_size=500)
    different, _ = kid(a, c, subsets=20, subset_size=500)
    assert abs(same) < 3 * std and different > 20 * abs(same) and different > 5 * std


def test_fid_separates_real_digits_from_noise():
    net = load_feature_net("digits")
    (x, _), (xh, _) = heldout_data("digits")
    g = torch.Generator().manual_seed(0)
    noise = torch.rand(len(xh), 1, 32, 32, generator=g) * 2 - 1
    f_train, f_held, f_noise = embed(net, x), embed(net, xh), embed(net, noise)
    real_vs_real = fid(f_train, f_held)
    real_vs_noise = fid(f_train, f_noise)
    assert real_vs_real * 20 < real_vs_noise, (real_vs_real, real_vs_noise)
    assert kid(f_train, f_held, 10, 300)[0] * 20 < kid(f_train, f_noise, 10, 300)[0]


def test_real_stats_cached_in_memory_and_on_disk(tmp_path, monkeypatch):
    monkeypatch.setenv("GAN_LAB_CACHE", str(tmp_path))
    monkeypatch.setattr(fid_mod, "_MEMO", type(fid_mod._MEMO)())
    net = load_feature_net("digits")
    (x, _), _ = heldout_data("digits")
    s1 = real_stats(net, "digits", "train", x[:400])
    assert s1.features.shape == (400, 128) and s1.source == "computed"
    assert torch.allclose(s1.mu, s1.features.double().mean(0))
    assert torch.allclose(s1.sigma, torch.from_numpy(np.cov(s1.features.double().numpy(), rowvar=False)))
    files = list((tmp_path / "real_stats").glob("*.pt"))
    assert len(files) == 1 and net.version in files[0].name
    assert real_stats(net, "digits", "train", x[:400]) is s1 and s1.source == "memory"  # in-process memo

    def no_embedding(*a, **k):
        raise AssertionError("features recomputed despite the disk cache")

    monkeypatch.setattr(fid_mod, "embed", no_embedding)
    fid_mod._MEMO.clear()
    s2 = real_stats(net, "digits", "train", x[:400])  # from disk
    assert s2 is not s1 and torch.equal(s2.features, s1.features) and s2.source == "disk"
    # other images (same n, other content) or another n are other keys and need embedding
    with pytest.raises(AssertionError, match="recomputed"):
        real_stats(net, "digits", "train", x[400:800])
    with pytest.raises(AssertionError, match="recomputed"):
        real_stats(net, "digits", "train", x[:300])
    assert s2.derived("k", lambda: 41) == 41 and s2.derived("k", lambda: 0) == 41


def test_corrupt_cache_file_is_recomputed(tmp_path, monkeypatch):
    monkeypatch.setenv("GAN_LAB_CACHE", str(tmp_path))
    monkeypatch.setattr(fid_mod, "_MEMO", type(fid_mod._MEMO)())
    net = load_feature_net("digits")
    (x, _), _ = heldout_data("digits")
    real_stats(net, "digits", "train", x[:100])
    (path,) = (tmp_path / "real_stats").glob("*.pt")
    path.write_bytes(b"not a torch file")
    fid_mod._MEMO.clear()
    assert real_stats(net, "digits", "train", x[:100]).features.shape == (100, 128)


def test_a_full_cache_disk_keeps_the_statistics_in_memory_and_leaves_no_partial_file(tmp_path, monkeypatch):
    monkeypatch.setenv("GAN_LAB_CACHE", str(tmp_path))
    monkeypatch.setattr(fid_mod, "_MEMO", type(fid_mod._MEMO)())
    net = load_feature_net("digits")
    (x, _), _ = heldout_data("digits")
    fail_writes_to(monkeypatch, ".tmp-", errno.ENOSPC, after_bytes=100)  # the atomic writer's temporary file
    s = real_stats(net, "digits", "train", x[:100])
    monkeypatch.undo()
    assert s.source == "computed" and s.features.shape == (100, 128)
    assert list((tmp_path / "real_stats").iterdir()) == []  # neither a truncated cache file nor a temporary one


def test_save_stats_on_a_full_disk_is_one_line_and_keeps_the_previous_file(tmp_path, monkeypatch):
    from gan_lab.errors import StorageError
    from gan_lab.metrics.fid import load_stats, save_stats

    path = tmp_path / "stats.npz"
    save_stats(path, torch.zeros(4), torch.eye(4))
    fail_writes_to(monkeypatch, ".tmp-", errno.ENOSPC, after_bytes=100)  # the atomic writer's temporary file
    with pytest.raises(StorageError) as e:
        save_stats(path, torch.ones(4), 2 * torch.eye(4))
    monkeypatch.undo()
    assert "\n" not in str(e.value) and str(path) in str(e.value) and "no space left" in str(e.value)
    assert "ckpt_path" not in str(e.value)  # no checkpoint advice for a statistics file
    mu, sigma = load_stats(path)
    assert torch.equal(mu, torch.zeros(4, dtype=mu.dtype)) and torch.equal(sigma, torch.eye(4, dtype=sigma.dtype))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["stats.npz"]
