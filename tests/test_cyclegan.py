"""CycleGAN on the one loop: nets, history buffer, unpaired batches, LR decay, cycle/identity terms, the
CycleGAN-layout folders and digits <-> MNIST with class preservation and FID both ways."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import torch
from conftest import FAST, ROOT, SHARED_DATA, compose_cfg, needs_shared, train_run
from PIL import Image

from gan_lab.errors import ConfigError

# A tiny CycleGAN: 16 px images, 4-channel generators with 2 residual blocks.
TINY = [
    "model=cyclegan",
    "data=unpaired_folder",
    "data.size=16",
    "data.batch_size=4",
    "model.generator.ngf=4",
    "model.generator.n_blocks=2",
    "model.discriminator.ndf=8",
    "model.n_eval=8",
]
MNIST = [f"data.root={SHARED_DATA / 'mnist'}", "data.split=t10k"]


def write_domains(root, n_a=12, n_b=9, test=True):
    """trainA/ (RGB squares of many sizes, some RGBA), trainB/ (greyscale and 16-bit), testA/, testB/."""
    rng = np.random.default_rng(0)
    for split, (na, nb) in (("train", (n_a, n_b)), ("test", (5, 4))):
        if split == "test" and not test:
            continue
        for d, n in (("A", na), ("B", nb)):
            (root / f"{split}{d}").mkdir(parents=True)
            for i in range(n):
                h, w = int(rng.integers(20, 60)), int(rng.integers(20, 60))
                if d == "A":
                    mode, c = ("RGBA", 4) if i % 3 == 0 else ("RGB", 3)
                    im = Image.fromarray(rng.integers(0, 255, (h, w, c), dtype=np.uint8), mode)
                else:
                    a = rng.integers(0, 65535, (h, w), dtype=np.uint16) if i % 2 else rng.integers(0, 255, (h, w))
                    im = Image.fromarray(a.astype(np.uint16 if i % 2 else np.uint8))
                im.save(root / f"{split}{d}" / f"{i}.png")
    return root


def build(tmp_path, *overrides):
    from gan_lab.train import build_objects

    return build_objects(compose_cfg(*FAST, *overrides), tmp_path / "run")


# ---- nets ---------------------------------------------------------------------------------------------
def test_resnet9_has_the_papers_parameter_count():
    from gan_lab.nets.resnet_generator import ResnetGenerator

    g = ResnetGenerator(3, 3, 256, ngf=64, n_blocks=9)
    assert sum(p.numel() for p in g.parameters()) == 11_378_179  # the official code's resnet_9blocks G
    y = g(torch.randn(1, 3, 64, 64))
    assert y.shape == (1, 3, 64, 64) and y.abs().max() <= 1


def test_resnet_generator_rejects_sizes_it_cannot_mirror():
    from gan_lab.nets.resnet_generator import ResnetGenerator

    with pytest.raises(ConfigError, match="size 30 is not divisible by 2\\^n_down = 4"):
        ResnetGenerator(1, 1, 30)


def test_discriminator_pair_judges_each_half_with_its_own_net():
    from gan_lab.tasks.cyclegan import DiscriminatorPair

    d = DiscriminatorPair(in_channels=1, ndf=8, n_layers=2, norm="instance").eval()
    x = torch.randn(8, 1, 16, 16)
    y = x.clone()
    y[4:] = torch.randn(4, 1, 16, 16)  # change only domain B's half
    out_x, out_y = d(x), d(y)
    assert torch.equal(out_x[:4], out_y[:4]) and not torch.equal(out_x[4:], out_y[4:])
    assert torch.allclose(out_x[:4], d.a(x[:4])) and torch.allclose(out_x[4:], d.b(x[4:]))


# ---- history buffer ------------------------------------------------------------------------------------
def test_history_pool_fills_then_swaps_half_on_average():
    from gan_lab.tasks.cyclegan import HistoryPool

    torch.manual_seed(0)
    pool = HistoryPool(50, (1, 2, 2))
    first = torch.arange(48.0).view(48, 1, 1, 1).expand(-1, 1, 2, 2).contiguous()
    assert torch.equal(pool.query(first), first) and int(pool.count) == 48  # not full: returned as they are
    new = (1000 + torch.arange(400.0)).view(400, 1, 1, 1).expand(-1, 1, 2, 2).contiguous()
    out = pool.query(new)
    assert torch.equal(out[:2], new[:2]) and int(pool.count) == 50  # the last two free places fill first
    swapped = out[2:, 0, 0, 0] != new[2:, 0, 0, 0]  # a stored (older) fake returned instead of the new one
    assert 0.4 < swapped.float().mean() < 0.6  # with probability 1/2
    returned = set(out[2:][swapped][:, 0, 0, 0].tolist())
    assert returned <= set(range(48)) | set(new[:, 0, 0, 0].tolist())  # only fakes that were stored before
    assert (pool.images[:, 0, 0, 0] >= 1000).float().mean() > 0.9  # the pool now holds mostly the newer fakes


def test_pool_size_zero_shows_d_the_current_fakes():
    from gan_lab.tasks.cyclegan import HistoryPool

    x = torch.randn(5, 1, 4, 4)
    assert HistoryPool(0, (1, 4, 4)).query(x) is x


# ---- data ----------------------------------------------------------------------------------------------
def test_unpaired_batches_are_independent_and_resume_in_place():
    from gan_lab.data.unpaired_folder import UnpairedBatches

    a, b = torch.arange(10), torch.arange(100, 125)
    batches = UnpairedBatches(a, b, 4, seed=3)
    assert len(batches) == 6  # max(10, 25) // 4: an epoch covers the larger domain
    epoch = list(batches)
    seen_b = torch.cat([y for _, y in epoch])
    assert len(set(seen_b.tolist())) == 24  # B: one permutation, no repeats
    seen_a = torch.cat([x for x, _ in epoch])
    assert set(seen_a.tolist()) == set(range(10))  # A cycles through fresh permutations
    pairs = {(int(x[0]), int(y[0])) for x, y in epoch}
    assert len(pairs) == 6
    batches.position = lambda: (0, 4)  # a run resumed after 4 batches continues with the same batches
    assert all(torch.equal(p[0], q[0]) and torch.equal(p[1], q[1]) for p, q in zip(list(batches), epoch[4:]))
    batches.position = lambda: (1, 0)
    assert not torch.equal(next(iter(batches))[1], epoch[0][1])  # a new epoch, a new order


def _grid_images(n: int, side: int = 12) -> torch.Tensor:
    """n x 1 x side x side uint8 images whose pixel (r, c) holds side * c + r: a crop tells where it came from."""
    r, c = torch.meshgrid(torch.arange(side), torch.arange(side), indexing="ij")
    return (side * c + r).to(torch.uint8).expand(n, 1, side, side).contiguous()


def _windows(batch: torch.Tensor, side: int = 12):
    """(top, left, mirrored) of each image of a jittered batch of _grid_images."""
    u = torch.round((batch + 1) * 127.5).long()[:, 0]
    rows, cols = u[:, :, 0] % side, u[:, 0, :] // side
    assert (rows.diff(dim=1) == 1).all()  # a window of whole rows, top to bottom
    step = cols.diff(dim=1)
    assert ((step == 1).all(1) | (step == -1).all(1)).all()  # whole columns, left to right or mirrored
    return [(int(r[0]), int(min(c[0], c[-1])), bool(c[0] > c[-1])) for r, c in zip(rows, cols)]


@pytest.mark.parametrize("flip", [False, True])
def test_jitter_crops_and_flips_per_image_and_epoch(flip):
    from gan_lab.data.unpaired_folder import UnpairedBatches

    batches = UnpairedBatches(_grid_images(10), _grid_images(30), 5, seed=1, crop=8, flip=flip)
    epochs = []
    for epoch in (0, 1):
        batches.position = lambda e=epoch: (e, 0)
        epochs.append([(_windows(a), _windows(b)) for a, b in batches])
        for a, b in batches:
            assert a.shape == b.shape == (5, 1, 8, 8) and a.dtype == torch.float32 and -1 <= a.min() <= a.max() <= 1
    windows = [w for e in epochs for batch in e for side in batch for w in side]
    assert len({(t, left) for t, left, _ in windows}) > 10  # offsets 0..4 both ways, drawn per image
    assert {m for *_, m in windows} == ({False, True} if flip else {False})  # flip=false: never mirrored
    assert epochs[0] != epochs[1]  # a new epoch, new crops
    batches.position = lambda: (1, 3)  # a run resumed after 3 batches of epoch 1 gets the same crops and flips
    assert [(_windows(a), _windows(b)) for a, b in batches] == epochs[1][3:]


def test_unpaired_folder_jitter_source_and_reference(tmp_path):
    from gan_lab.data.unpaired_folder import UnpairedFolderDataModule

    root = write_domains(tmp_path / "d")
    dm = UnpairedFolderDataModule(str(root), size=16, load_size=20, channels=3, batch_size=4)
    a, b = dm.domain_tensors("train")
    assert a.shape == (12, 3, 16, 16) and a.dtype == torch.float32  # the reference: resized straight to size
    src_a, src_b = dm.jitter_source
    assert src_a.shape == (12, 3, 20, 20) and src_b.shape == (9, 3, 20, 20) and src_a.dtype == torch.uint8
    x, y = next(iter(dm.train_dataloader()))
    assert x.shape == y.shape == (4, 3, 16, 16) and x.min() >= -1 and x.max() <= 1
    windows = [w.float() / 127.5 - 1 for w in src_a.unfold(2, 16, 1).unfold(3, 16, 1).permute(0, 2, 3, 1, 4, 5)
               .reshape(12, -1, 3, 16, 16)]  # fmt: skip
    for img in x:  # every training image is a 16 x 16 window of a stored 20 x 20 image, or its mirror
        assert any(torch.equal(img, w) or torch.equal(img.flip(-1), w) for ws in windows for w in ws)
    plain = UnpairedFolderDataModule(str(root), size=16, load_size=16, flip=False, batch_size=4)
    assert plain.domain_tensors("train")[0].shape == (12, 3, 16, 16) and plain.jitter_source is None
    assert dm.load_size == 20 and UnpairedFolderDataModule(str(root), size=256).load_size == 286


def test_unpaired_folder_decodes_any_mode_and_size(tmp_path):
    from gan_lab.data.unpaired_folder import UnpairedFolderDataModule

    root = write_domains(tmp_path / "d")
    dm = UnpairedFolderDataModule(str(root), size=16, channels=3, batch_size=4)
    a, b = dm.domain_tensors("train")
    va, vb = dm.domain_tensors("val")
    assert a.shape == (12, 3, 16, 16) and b.shape == (9, 3, 16, 16) and len(va) == 5 and len(vb) == 4
    assert a.min() >= -1 and a.max() <= 1 and (b[:, 0] == b[:, 1]).all()  # grey B repeated to RGB
    x, y = next(iter(dm.train_dataloader()))
    assert x.shape == y.shape == (4, 3, 16, 16)


def test_unpaired_folder_without_test_folders_holds_out_part_of_train(tmp_path):
    from gan_lab.data.unpaired_folder import UnpairedFolderDataModule

    root = write_domains(tmp_path / "d", 20, 10, test=False)
    dm = UnpairedFolderDataModule(str(root), size=8, val_fraction=0.2, batch_size=4)
    (a, b), (va, vb) = dm.domain_tensors("train"), dm.domain_tensors("val")
    assert torch.equal(dm.split_tensors("train")[0], b)  # the target domain first for generic consumers
    assert (len(a), len(va), len(b), len(vb)) == (16, 4, 8, 2)


# ---- the task on the loop ------------------------------------------------------------------------------
def test_cycle_and_identity_terms_reach_both_generators(tmp_path):
    import torch.nn.functional as F

    root = write_domains(tmp_path / "d")
    dm, task, _ = build(tmp_path, *TINY, f"data.root={root}")
    a, b = next(iter(dm.train_dataloader()))
    real, cond = task.unpack((a, b))
    fake = task.generate(cond, len(real))
    g = task.generator
    assert torch.allclose(fake, torch.cat([g.ba(b), g.ab(a)]))
    loss, logs = task.extra_g_loss(fake, real, cond)
    cycle = (F.l1_loss(g.ba(g.ab(a)), a) + F.l1_loss(g.ab(g.ba(b)), b)) / 2
    identity = (F.l1_loss(g.ba(a), a) + F.l1_loss(g.ab(b), b)) / 2
    assert torch.allclose(logs["cycle_l1"], cycle) and torch.allclose(logs["identity_l1"], identity)
    assert torch.allclose(loss, 10 * cycle + 5 * identity)
    loss.backward()
    for net in (g.ab, g.ba):
        assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in net.parameters())


def test_fast_dev_run_writes_both_panels_and_held_out_metrics(tmp_path):
    root = write_domains(tmp_path / "d")
    run = tmp_path / "run"
    m = train_run(run, *TINY, f"data.root={root}", "+trainer.fast_dev_run=true")
    assert m["status"] == "completed"
    for key in ("a2b_cycle_l1", "b2a_cycle_l1", "cycle_l1", "identity_l1", "d_loss"):
        assert np.isfinite(m[key]), key
    assert "a2b_class_preservation" not in m  # unlabelled folders: no classifier to score with
    for name, rows in (("a2b", 5), ("b2a", 4)):  # one row per held-out image (5 in testA, 4 in testB)
        im = np.asarray(Image.open(run / "samples" / f"{name}_final.png"))
        assert im.shape[:2] == (rows * 18 + 2, 3 * 18 + 2)  # input | translated | reconstructed, 2 px gaps


@pytest.mark.slow  # ~70 s on the shared 2-core machine: three short trainings
def test_resumed_run_with_jitter_is_bit_identical(tmp_path):
    """Stopped after 2 batches and continued to 5 (across an epoch end: 3 batches per epoch) = 5 in one go."""
    root = write_domains(tmp_path / "d")
    over = [*TINY, f"data.root={root}", "data.load_size=20", "model.lr_decay_from=null", "model.n_eval=4"]
    straight = train_run(tmp_path / "straight", *over, "trainer.max_steps=5")
    train_run(tmp_path / "resumed", *over, "trainer.max_steps=2")
    resumed = train_run(tmp_path / "resumed", *over, "trainer.max_steps=5", "ckpt_path=last")
    assert straight["steps"] == resumed["steps"] == 5
    a, b = (torch.load(tmp_path / r / "checkpoints" / "last.ckpt", weights_only=True)["state_dict"]
            for r in ("straight", "resumed"))  # fmt: skip
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_linear_lr_decay_in_the_second_half(tmp_path):
    root = write_domains(tmp_path / "d")
    dm, task, trainer = build(tmp_path, *TINY, f"data.root={root}", "trainer.max_steps=8", "model.n_eval=2")
    lrs = []
    from pytorch_lightning import Callback

    class LR(Callback):
        def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
            lrs.append([o.param_groups[0]["lr"] for o in trainer.optimizers])

    trainer.callbacks.append(LR())
    trainer.fit(task, datamodule=dm)
    # constant for the first half (4 batches), then 1 - (s - 4) / 5: Zhu 2017's rule in batches
    want = [2e-4 * (1 - max(0, s - 4) / 5) for s in range(8)]
    assert np.allclose([g for g, _ in lrs], want) and np.allclose([d for _, d in lrs], want)


def test_lr_decay_off_keeps_the_rate(tmp_path):
    root = write_domains(tmp_path / "d")
    dm, task, trainer = build(tmp_path, *TINY, f"data.root={root}", "trainer.max_steps=3", "model.lr_decay_from=null")
    trainer.fit(task, datamodule=dm)
    assert [o.param_groups[0]["lr"] for o in trainer.optimizers] == [2e-4, 2e-4]


def test_d_sees_the_history_buffer(tmp_path):
    """With the buffer, D's fakes in a later batch include earlier batches' fakes (not the current ones)."""
    root = write_domains(tmp_path / "d")
    dm, task, trainer = build(tmp_path, *TINY, f"data.root={root}", "trainer.max_steps=6", "model.pool_size=4")
    seen = []
    query = task.pool_b.query

    def spy(x):
        out = query(x)
        seen.append((x.clone(), out.clone()))
        return out

    task.pool_b.query = spy
    trainer.fit(task, datamodule=dm)
    assert torch.equal(seen[0][0], seen[0][1])  # the pool fills with the first batch's 4 fakes
    later = torch.stack([~torch.isclose(x, o).flatten(1).all(1) for x, o in seen[1:]])
    assert later.any()  # some fakes replaced by older ones
    assert int(task.pool_b.count) == 4


def test_unet_generators(tmp_path):
    root = write_domains(tmp_path / "d")
    over = ["model.generator.net=unet", "~model.generator.n_blocks", "~model.generator.norm"]
    dm, task, _ = build(tmp_path, *TINY, f"data.root={root}", *over)
    assert type(task.generator.ab).__name__ == type(task.generator.ba).__name__ == "UNetGenerator"
    assert task.generate((torch.zeros(2, 3, 16, 16), torch.zeros(2, 3, 16, 16)), 2).shape == (4, 3, 16, 16)


@pytest.mark.parametrize(
    "overrides, match",
    [
        (["model.generator.net=vgg"], "model.generator: net='vgg' is not known; allowed resnet, unet"),
        (["model.cycle_weight=-1"], "model: cycle_weight=-1"),
        (["model.lr_decay_from=1.5"], "model: lr_decay_from=1.5"),
        (["model.discriminator.norm=layer"], "norm='layer' is not known; allowed instance, batch, none"),
    ],
)
def test_bad_cyclegan_settings_are_one_line(overrides, match, tmp_path):
    root = write_domains(tmp_path / "d")
    with pytest.raises(ConfigError, match=match):
        build(tmp_path, *TINY, f"data.root={root}", *overrides)


# ---- digits <-> MNIST ----------------------------------------------------------------------------------
@needs_shared
def test_digits2mnist_domains_and_labels():
    from gan_lab.data.digits2mnist import Digits2MNISTDataModule

    dm = Digits2MNISTDataModule(root=str(SHARED_DATA / "mnist"), split="t10k", limit=2000)
    a, b, ya, yb = dm.domain_tensors("train")
    va, vb, vya, vyb = dm.domain_tensors("val")
    assert (len(a), len(va), len(b), len(vb)) == (1438, 359, 1600, 400)
    assert a.shape[1:] == b.shape[1:] == (1, 32, 32) and dm.domains == ("digits", "mnist")
    assert set(ya.tolist()) == set(yb.tolist()) == set(range(10))


@needs_shared
def test_translation_scores_tell_right_labels_from_wrong():
    """The class-preservation metric can fail: MNIST scored as MNIST with its labels is ~99%, with shuffled
    labels ~10%; FID of MNIST to MNIST is far below FID of digits to MNIST."""
    from gan_lab.data.digits2mnist import Digits2MNISTDataModule
    from gan_lab.tasks.cyclegan import translation_scores

    dm = Digits2MNISTDataModule(root=str(SHARED_DATA / "mnist"), split="t10k", limit=3000)
    va, vb, vya, vyb = dm.domain_tensors("val")
    right = translation_scores(dm, vb, vyb, "a2b")
    wrong = translation_scores(dm, vb, vyb[torch.randperm(len(vyb), generator=torch.Generator().manual_seed(0))], "a2b")
    digits = translation_scores(dm, va, vya, "a2b")
    assert right["a2b_class_preservation"] > 0.95 and wrong["a2b_class_preservation"] < 0.2
    assert right["a2b_fid"] < digits["a2b_fid"] / 3
    from gan_lab.metrics.evaluate import compute_metrics  # generic metrics: G_AB's samples against domain B

    assert compute_metrics(vb, dm)[0]["fid"] < compute_metrics(va, dm)[0]["fid"] / 3


@needs_shared
def test_digits2mnist_trains_and_scores_both_ways(tmp_path):
    run = tmp_path / "run"
    over = ["model.generator.n_blocks=2", "model.generator.ngf=4", "data.limit=1000", "model.n_eval=64"]
    m = train_run(run, "model=cyclegan", "data=digits2mnist", *MNIST, *over, "trainer.max_steps=2")
    assert m["status"] == "completed" and m["steps"] == 2
    for d in ("a2b", "b2a"):
        for k in (f"{d}_class_preservation", f"identity_{d}_class_preservation"):
            assert 0 <= m[k] <= 1, k
        assert m[f"{d}_fid"] > 0 and m[f"identity_{d}_fid"] > 0
    assert (run / "samples" / "a2b_final.png").is_file() and (run / "samples" / "b2a_final.png").is_file()


def test_one_domain_data_is_refused(tmp_path):
    with pytest.raises(ConfigError, match="model=cyclegan needs unpaired data with two domains"):
        build(tmp_path, "model=cyclegan", "data=digits")


def test_digits2mnist_without_mnist_is_one_line(tmp_path):
    with pytest.raises(ConfigError, match="data.root=.*nope.* is not a directory"):
        build(tmp_path, "model=cyclegan", "data=digits2mnist", f"data.root={tmp_path / 'nope'}")


def test_cyclegan_table_script_prints_the_evaluations(tmp_path):
    """scripts/cyclegan_table.py: the identity baseline, then one row per evaluation step, the last in bold."""
    keys = ["a2b_class_preservation", "a2b_fid", "b2a_class_preservation", "b2a_fid", "a2b_cycle_l1", "b2a_cycle_l1"]
    cols = ["step", "train/d_loss", *(f"val/{k}" for k in keys), *(f"val/identity_{k}" for k in keys[:4])]
    rows = [[250, "", 0.5, 7.1, 0.25, 5.5, 0.1, 0.12, 0.131, 58.0, 0.457, 14.3], [260, 0.4] + [""] * 10]
    rows.append([500, "", 0.822, 4.58, 0.549, 3.75, 0.088, 0.085, 0.131, 58.0, 0.457, 14.3])
    (tmp_path / "metrics.csv").write_text("\n".join(",".join(map(str, r)) for r in [cols, *rows]) + "\n")
    script = ROOT / "scripts" / "cyclegan_table.py"
    out = subprocess.run([sys.executable, str(script), str(tmp_path)], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[2] == "| identity mapping (baseline) | 13.1% | 58.00 | 45.7% | 14.30 | — |"
    assert lines[3] == "| 250 | 50.0% | 7.10 | 25.0% | 5.50 | 0.100 / 0.120 |"
    assert lines[4] == "| **500** | **82.2%** | **4.58** | **54.9%** | **3.75** | 0.088 / 0.085 |" and len(lines) == 5
