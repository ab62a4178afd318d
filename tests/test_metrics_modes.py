import math

import pytest
import torch

from gan_lab.data.digits import load_digits_images
from gan_lab.data.stacked import StackedDigitsDataModule, stack_channels
from gan_lab.data.toy2d import grid_centers, ring_centers, sample_mixture
from gan_lab.errors import ConfigError
from gan_lab.metrics.mode_collapse import (
    class_kl,
    class_modes,
    diversity,
    histogram_kl,
    hq_fraction,
    mean_nearest_mode_distance,
    mixture_metrics,
    modes_captured,
    ndb,
    reverse_kl,
    stacked_labels,
    stacked_modes,
    top_class,
)

SIGMA = 0.02


def test_all_samples_on_one_mode():
    centers = ring_centers(8)
    g = torch.Generator().manual_seed(0)
    x = centers[3] + SIGMA * torch.randn(500, 2, generator=g)
    assert modes_captured(x, centers, SIGMA) == 1
    assert hq_fraction(x, centers, SIGMA) > 0.95
    assert reverse_kl(x, centers, SIGMA) == pytest.approx(math.log(8), rel=1e-6)


def test_samples_evenly_on_all_modes():
    centers = grid_centers(5)
    x = centers.repeat(40, 1) + 0.5 * SIGMA  # 40 samples per mode, each 0.7 sigma from its centre
    assert modes_captured(x, centers, SIGMA) == 25
    assert hq_fraction(x, centers, SIGMA) == 1.0
    assert reverse_kl(x, centers, SIGMA) == pytest.approx(0.0, abs=1e-9)
    assert mean_nearest_mode_distance(x, centers) == pytest.approx(0.5 * SIGMA * math.sqrt(2), rel=1e-5)


def test_real_mixture_samples_score_like_the_data():
    centers = ring_centers(8)
    x, _ = sample_mixture(centers, SIGMA, 4000, seed=1)
    m = mixture_metrics(x, centers, SIGMA)
    assert m["modes_captured"] == 8
    assert m["hq_fraction"] > 0.98  # a 2-D Gaussian puts 98.9% within 3 sigma
    assert m["reverse_kl"] < 0.01
    assert m["mean_mode_dist"] == pytest.approx(SIGMA * math.sqrt(math.pi / 2), rel=0.05)  # Rayleigh mean
    assert m == {
        "modes_captured": modes_captured(x, centers, SIGMA),
        "hq_fraction": hq_fraction(x, centers, SIGMA),
        "reverse_kl": reverse_kl(x, centers, SIGMA),
        "mean_mode_dist": mean_nearest_mode_distance(x, centers),
    }


def test_three_sigma_boundary_and_no_high_quality_samples():
    centers = ring_centers(8)
    inside = centers[:2] + torch.tensor([[2.9 * SIGMA, 0.0]])  # modes 0 and 1, within 3 sigma
    outside = centers[2:4] + torch.tensor([[3.1 * SIGMA, 0.0]])  # near modes 2 and 3, but too far
    x = torch.cat([inside, outside])
    assert modes_captured(x, centers, SIGMA) == 2
    assert hq_fraction(x, centers, SIGMA) == 0.5
    far = torch.full((10, 2), 5.0)
    assert modes_captured(far, centers, SIGMA) == 0 and hq_fraction(far, centers, SIGMA) == 0.0
    assert reverse_kl(far, centers, SIGMA) == pytest.approx(math.log(8))  # defined as the worst value


def test_histogram_kl_values():
    assert histogram_kl(torch.tensor([0, 1, 2, 3]), 4) == pytest.approx(0.0, abs=1e-9)
    assert histogram_kl(torch.tensor([0, 0, 1, 1]), 4) == pytest.approx(math.log(2), rel=1e-6)  # 2 of 4 bins
    p = torch.tensor([0.5, 0.25, 0.25])
    labels = torch.tensor([0, 0, 1, 2])
    assert histogram_kl(labels, 3) == pytest.approx(float((p * (p * 3).log()).sum()), rel=1e-6)


def _one_hot_logits(labels, k=10):
    return torch.nn.functional.one_hot(labels, k).float() * 5


def test_class_modes_and_kl():
    one = _one_hot_logits(torch.full((100,), 7))
    assert class_modes(one) == 1 and class_kl(one) == pytest.approx(math.log(10), rel=1e-6)
    even = _one_hot_logits(torch.arange(10).repeat(30))
    assert class_modes(even) == 10 and class_kl(even) == pytest.approx(0.0, abs=1e-9)


def test_stacked_modes():
    d = torch.tensor([[1, 2, 3], [9, 0, 4]])
    logits = _one_hot_logits(d)  # N x 3 x 10
    assert stacked_labels(logits).tolist() == [123, 904]
    every = torch.stack(torch.meshgrid(*[torch.arange(10)] * 3, indexing="ij"), -1).reshape(-1, 3)
    modes, kl = stacked_modes(_one_hot_logits(every))
    assert modes == 1000 and kl == pytest.approx(0.0, abs=1e-9)
    modes, kl = stacked_modes(_one_hot_logits(torch.tensor([[4, 4, 4]] * 50)))
    assert modes == 1 and kl == pytest.approx(math.log(1000), rel=1e-6)


def test_top_class_share_and_confidence():
    """The most frequent class over all channels, its share and the classifier's mean top probability on it."""
    p4 = math.exp(5) / (math.exp(5) + 9)  # the one-hot logits of 5
    assert top_class(_one_hot_logits(torch.tensor([[4, 4, 4]] * 50))) == (4, 1.0, pytest.approx(p4))
    logits = torch.zeros(4, 3, 10)
    logits[:, :, 8] = math.log(9.0)  # every channel: p(8) = 9 / 18 = 0.5
    logits[0, 0] = 0.0  # one channel of 12 ties every class: the argmax takes class 0
    k, share, conf = top_class(logits)
    assert (k, share, conf) == (8, pytest.approx(11 / 12), pytest.approx(0.5))


def _clusters(n, seed, centers):
    g = torch.Generator().manual_seed(seed)
    idx = torch.randint(len(centers), (n,), generator=g)
    return centers[idx] + 0.3 * torch.randn(n, centers.shape[1], generator=g)


def test_ndb_same_distribution_vs_collapsed():
    centers = 4 * torch.randn(10, 8, generator=torch.Generator().manual_seed(0))
    real, fake = _clusters(3000, 1, centers), _clusters(3000, 2, centers)
    count, frac = ndb(real, fake, k=20)
    assert count <= 3 and frac == count / 20  # alpha = 0.05: about 1 false positive in 20 bins
    collapsed = _clusters(3000, 3, centers[:2])
    count_c, frac_c = ndb(real, collapsed, k=20)
    assert count_c >= 16 and frac_c >= 0.8  # every bin off the two kept clusters is empty
    with pytest.raises(ValueError, match="k=1"):
        ndb(real, fake, k=1)


def test_diversity():
    centers = 4 * torch.randn(10, 8, generator=torch.Generator().manual_seed(0))
    real = _clusters(1500, 1, centers)
    assert diversity(real, real) == pytest.approx(1.0)
    assert diversity(real, _clusters(1500, 2, centers)) == pytest.approx(1.0, abs=0.05)
    assert diversity(real, _clusters(1500, 3, centers[:1])) < 0.15
    assert diversity(real, 3 * real) == pytest.approx(3.0, rel=1e-4)


def test_stacked_digits_datamodule():
    dm = StackedDigitsDataModule(size=16, n_samples=500, batch_size=32, val_fraction=0.2, split_seed=0)
    assert dm.shape == (3, 16, 16)
    x, y = dm.split_tensors("train")
    xv, _ = dm.split_tensors("val")
    assert x.shape == (400, 3, 16, 16) and xv.shape == (100, 3, 16, 16)
    assert x.min() >= -1 and x.max() <= 1 and 0 <= y.min() and y.max() < 1000
    # every channel is an image of the digit its label says
    pool, labels = load_digits_images(16)
    flat = pool.flatten(1)
    for i in range(20):
        for c, digit in enumerate((y[i] // 100, y[i] // 10 % 10, y[i] % 10)):
            match = (flat == x[i, c].flatten()).all(1).nonzero().flatten()
            assert len(match) >= 1 and (labels[match] == digit).any()
    # seeded: same config -> same data; another split seed -> other compositions
    again = StackedDigitsDataModule(size=16, n_samples=500, batch_size=32, val_fraction=0.2, split_seed=0)
    assert torch.equal(again.split_tensors("train")[1], y)
    other = StackedDigitsDataModule(size=16, n_samples=500, batch_size=32, val_fraction=0.2, split_seed=1)
    assert not torch.equal(other.split_tensors("train")[1], y)
    with pytest.raises(ConfigError, match="n_samples"):
        StackedDigitsDataModule(n_samples=1)


def _channels_match_labels(x, y, pool, labels):
    flat = pool.flatten(1)
    for i in range(len(y)):
        for c, digit in enumerate((y[i] // 100, y[i] // 10 % 10, y[i] % 10)):
            match = (flat == x[i, c].flatten()).all(1).nonzero().flatten()
            assert len(match) >= 1 and (labels[match] == digit).any()


def test_fresh_stacks_are_new_each_batch_and_a_function_of_seed_and_position():
    """data.fresh=true: every training batch is new stacks of real digits, labelled by their digits; the order is
    a pure function of (seed, epoch, batch), so a resumed run gets the uninterrupted run's batches; DDP ranks
    get disjoint stacks; a seed-parallel member (reseeded) its own."""
    kw = dict(size=16, n_samples=400, batch_size=32, val_fraction=0.2, split_seed=0)
    dm = StackedDigitsDataModule(fresh=True, **kw)
    dm.setup()
    batches = dm.train_batches(0, 1)
    assert len(batches) == 320 // 32 == len(StackedDigitsDataModule(**kw).train_batches(0, 1))
    epoch0 = list(batches)
    pool_x, pool_y = dm.split_tensors("train")
    pool, labels = load_digits_images(16)
    x, y = epoch0[0]
    assert x.shape == (32, 3, 16, 16) and y.shape == (32,) and 0 <= y.min() and y.max() < 1000
    _channels_match_labels(x[:10], y[:10], pool, labels)
    seen = torch.cat([b[0] for b in epoch0]).flatten(1)
    in_pool = sum(bool((pool_x.flatten(1) == row).all(1).any()) for row in seen[:50])
    assert in_pool == 0  # new stacks, not the pool's: 320 of 1,797^3 possible stacks
    again = StackedDigitsDataModule(fresh=True, **kw)
    again.setup()
    resumed = again.train_batches(0, 1)
    resumed.position = lambda: (0, 3)  # resumed after 3 batches of epoch 0
    assert all(torch.equal(a[0], b[0]) and torch.equal(a[1], b[1]) for a, b in zip(epoch0[3:], resumed, strict=True))
    batches.position = lambda: (1, 0)
    assert not torch.equal(next(iter(batches))[1], epoch0[0][1])  # another epoch, other stacks
    r0, r1 = dm.train_batches(0, 2), dm.train_batches(1, 2)
    assert len(r0) == len(r1) == 320 // 64
    assert not torch.equal(next(iter(r0))[0], next(iter(r1))[0])
    assert torch.equal(next(iter(r0))[0], epoch0[0][0])  # rank 0 takes the first slice of each block
    member = dm.train_batches(0, 1).reseeded(dm._order_seed + 1)
    assert isinstance(member, type(batches)) and not torch.equal(next(iter(member))[1], epoch0[0][1])
    with pytest.raises(ConfigError, match=r"data.stacked_digits: fresh='yes' must be a boolean; allowed true, false"):
        StackedDigitsDataModule(fresh="yes", **kw)


def test_stack_channels_covers_the_1000_modes():
    pool, labels = load_digits_images(8)
    _, y = stack_channels(pool, labels, 20_000, seed=0)
    counts = torch.bincount(y, minlength=1000)
    assert len(counts) == 1000 and (counts > 0).sum() >= 995  # ~20 per mode expected
    assert histogram_kl(y, 1000) < 0.05
