"""Class-conditional GANs (model.conditional=concat|projection|acgan): labels through the one loop, the
nets' conditioning, per-class samples, label sampling and the class-conditional metrics."""

from __future__ import annotations

import pytest
import torch
from conftest import FAST, compose_cfg, train_run

from gan_lab.errors import ConfigError

MODES = ["concat", "projection", "acgan"]
SMALL_MLP = ["model.generator.hidden=[64,64]", "model.discriminator.hidden=[64,64]"]


def make(tmp_path, *overrides):
    from gan_lab.train import build_objects

    return build_objects(compose_cfg(*FAST, *overrides), tmp_path)


@pytest.mark.parametrize("model", ["dcgan", "gan_mlp"])
@pytest.mark.parametrize("mode", MODES)
def test_trains_from_the_config(mode, model, tmp_path):
    m = train_run(tmp_path, f"model={model}", "data=digits", f"model.conditional={mode}", "trainer.max_steps=2")
    assert m["status"] == "completed", m.get("error")
    assert ("d_aux" in m and "g_aux" in m) == (mode == "acgan")


@pytest.mark.parametrize("mode", MODES)
def test_generator_learns_the_classes_of_a_ring(mode, tmp_path):
    """After 300 steps on the 8-mode ring, G(z, y) lands nearest to mode y (chance: 1/8)."""
    dm, task, trainer = make(
        tmp_path, "model=gan_mlp", "data=toy2d_ring", f"model.conditional={mode}", "trainer.max_steps=300", *SMALL_MLP
    )
    trainer.fit(task, datamodule=dm)
    y = torch.arange(8).repeat(100)
    x = task.generate_samples(len(y), labels=y)
    consistency = (torch.cdist(x, dm.centers).argmin(1) == y).float().mean().item()
    assert consistency > 0.6, consistency


@pytest.mark.parametrize("mode", MODES)
def test_discriminator_sees_the_labels(mode, tmp_path):
    dm, task, _ = make(tmp_path, "model=dcgan", f"model.conditional={mode}")
    x, y = next(iter(dm.train_dataloader()))
    other = (y + 1) % 10
    logits, aux = task.d_outputs(x, y, 0)
    logits2, aux2 = task.d_outputs(x, other, 0)
    if mode == "acgan":  # the real/fake logit ignores y; the auxiliary head classifies
        assert torch.equal(logits, logits2) and aux.shape == (len(x), 10)
        loss = task.aux_loss(aux, y)
        assert torch.isclose(loss, torch.nn.functional.cross_entropy(aux, y))
    else:
        assert aux is None and not torch.allclose(logits, logits2)


def test_concat_generator_depends_on_the_label(tmp_path):
    _, task, _ = make(tmp_path, "model=dcgan", "model.conditional=concat")
    z = torch.randn(4, task.z_dim)
    task.generator.eval()
    a = task.generate(torch.zeros(4, dtype=torch.long), 4, z=z)
    b = task.generate(torch.ones(4, dtype=torch.long), 4, z=z)
    assert not torch.allclose(a, b)


def test_projection_generator_has_class_batch_norm(tmp_path):
    from gan_lab.nets.conditioning import ConditionalBatchNorm

    _, task, _ = make(tmp_path, "model=dcgan", "model.conditional=projection")
    cbn = [m for m in task.generator.modules() if isinstance(m, ConditionalBatchNorm)]
    assert cbn and all(m.gain.num_embeddings == 10 for m in cbn)
    with torch.no_grad():
        cbn[0].bias.weight[3] += 1.0  # class 3 only
    task.generator.eval()
    z = torch.randn(2, task.z_dim)
    y = torch.tensor([3, 4])
    out = task.generate(y, 2, z=z)
    with torch.no_grad():
        cbn[0].bias.weight[3] -= 1.0
    ref = task.generate(y, 2, z=z)
    assert not torch.allclose(out[0], ref[0]) and torch.allclose(out[1], ref[1])


def test_spectral_norm_bounds_the_projection_embedding(tmp_path):
    """trick=spectral_norm normalises the projection's class embedding too (SNEmbedID in Miyato & Koyama)."""
    from torch.nn.utils import parametrize

    _, task, _ = make(tmp_path, "model=dcgan", "model.conditional=projection", "trick=[spectral_norm]")
    embed = task.discriminator.cond.embed
    assert parametrize.is_parametrized(embed, "weight")
    with torch.no_grad():
        embed.parametrizations.weight.original.mul_(50.0)
        for _ in range(30):  # power iterations run in training mode
            w = embed.weight
    assert torch.linalg.matrix_norm(w, ord=2).item() == pytest.approx(1.0, abs=1e-3)


def test_discriminator_without_batch_norm_for_spectral_norm(tmp_path):
    """model.discriminator.batchnorm=false: SNGAN's projection D (spectral norm alone, no batch norm); trains."""
    _, task, _ = make(tmp_path, "model=dcgan", "model.conditional=projection", "trick=[spectral_norm]",
                      "model.discriminator.batchnorm=false")  # fmt: skip
    d = task.discriminator
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in d.modules())
    convs = [m for m in d.body.modules() if isinstance(m, torch.nn.Conv2d)]
    assert all(c.bias is not None for c in convs[1:])  # the convs that lost their batch norm get biases
    _, task, _ = make(tmp_path / "bn", "model=dcgan", "model.conditional=projection")
    assert any(isinstance(m, torch.nn.BatchNorm2d) for m in task.discriminator.modules())
    m = train_run(tmp_path / "run", "model=dcgan", "data=digits", "model.conditional=projection",
                  "trick=[spectral_norm]", "model.discriminator.batchnorm=false", "trainer.max_steps=2")  # fmt: skip
    assert m["status"] == "completed", m.get("error")


def test_projection_loads_the_earlier_embedding_layout(tmp_path):
    """Checkpoints of earlier versions stored the class embedding as classes x channels rows."""
    _, task, _ = make(tmp_path, "model=dcgan", "model.conditional=projection")
    x, y = torch.randn(4, 1, 32, 32), torch.tensor([0, 3, 7, 9])
    d = task.discriminator.eval()
    state = d.state_dict()
    rows = state["cond.embed.weight"].t().contiguous()  # what nn.Embedding held: row y = class y
    expected = d(x, y)
    with torch.no_grad():
        d.cond.embed.weight.zero_()
    d.load_state_dict({**state, "cond.embed.weight": rows})
    assert torch.allclose(d(x, y), expected)


@pytest.mark.parametrize("conditional", [None, "projection"])
def test_mlp_generator_loads_a_bias_before_its_batch_norm(conditional, tmp_path):
    """Checkpoints of earlier versions had a bias on each hidden Linear before a batch norm: loading folds it into
    the norm's running mean, so the generator gives the same points in evaluation and in training mode."""
    from gan_lab.nets.mlp import MLPGenerator

    g = MLPGenerator((2,), z_dim=2, hidden=(16, 16), batchnorm=True, conditional=conditional, num_classes=3)
    assert [m.bias is None for m in g.net if isinstance(m, torch.nn.Linear)] == [True, True, False]
    z, y = torch.randn(64, 2), torch.arange(64) % 3
    g.train()
    for _ in range(3):  # running statistics away from their initial values
        g(z, y if conditional else None)
    old = {k: v.clone() for k, v in g.state_dict().items()}
    for i in (0, 3):  # what the earlier nets stored: a bias, and a running mean that includes it
        bias = torch.randn(16)
        old[f"net.{i}.bias"] = bias
        mean = f"net.{i + 1}.{'bn.' if conditional else ''}running_mean"
        old[mean] = old[mean] + bias
    expected = {mode: g.train(mode)(z, y if conditional else None) for mode in (False, True)}
    fresh = MLPGenerator((2,), z_dim=2, hidden=(16, 16), batchnorm=True, conditional=conditional, num_classes=3)
    fresh.load_state_dict(old)
    for mode in (False, True):
        fresh.train(mode)
        torch.testing.assert_close(fresh(z, y if conditional else None), expected[mode], rtol=1e-5, atol=1e-6)


def test_unconditional_nets_keep_their_parameters(tmp_path):
    """conditional=null builds exactly the nets it built before (checkpoints stay loadable)."""
    _, plain, _ = make(tmp_path, "model=dcgan")
    _, concat, _ = make(tmp_path, "model=dcgan", "model.conditional=concat")
    assert plain.num_classes == 0 and plain.conditional is None
    assert not any("cond" in k or "embed" in k for k in plain.state_dict())
    assert set(plain.state_dict()) <= set(concat.state_dict())


def test_sample_panel_has_one_row_per_class(tmp_path):
    _, task, _ = make(tmp_path, "model=dcgan", "model.conditional=concat")
    images, per_row = task.sample_panels()["samples"]
    assert per_row == 8 and images.shape == (80, 1, 32, 32)
    with task.eval_generator() as g:
        row3 = task.generate(torch.full((8,), 3), 8, generator=g, z=task.fixed_z[:8])
    assert torch.allclose(images[24:32], row3, atol=1e-6)  # row 3: class 3, the same z per column


def test_labels_sampled_from_the_class_frequencies(tmp_path):
    dm, task, _ = make(tmp_path, "model=gan_mlp", "data=digits", "model.conditional=acgan")
    counts = torch.bincount(dm.split_tensors("train")[1], minlength=10).double()
    assert torch.allclose(task.class_freq, counts / counts.sum())
    y = task.sample_labels(20000)
    assert torch.allclose(torch.bincount(y, minlength=10) / 20000.0, task.class_freq.float(), atol=0.01)
    assert torch.equal(y, task.sample_labels(20000))  # its own seeded stream
    assert task.label_protocol()["labels"] == "train-split class frequencies"


def test_labels_argument(tmp_path):
    from gan_lab.tasks.gan import labels_for

    _, task, _ = make(tmp_path, "model=gan_mlp", "data=digits", "model.conditional=concat")
    assert labels_for(3, 10, 4).tolist() == [3, 3, 3, 3]
    assert labels_for("3", 10, 2).tolist() == [3, 3]
    assert labels_for("all", 10, 20).tolist() == [c for c in range(10) for _ in range(2)]
    assert labels_for("all", 10).tolist() == list(range(10))
    for bad in (10, -1, "12", "seven"):
        with pytest.raises(ConfigError, match=r"labels=.*allowed 0..9 or all"):
            labels_for(bad, 10, 4)
    with pytest.raises(ConfigError, match="labels=12 is out of range; allowed 0..9"):
        task.generate_samples(2, labels=torch.tensor([1, 12]))
    assert task.generate_samples(6, labels=labels_for(7, 10, 6)).shape == (6, 1, 32, 32)
    _, plain, _ = make(tmp_path, "model=gan_mlp", "data=digits")
    with pytest.raises(ConfigError, match="needs a class-conditional model"):
        plain.generate_samples(2, labels=torch.tensor([1, 2]))
    with pytest.raises(ConfigError, match="needs a class-conditional model"):
        labels_for(3, 0, 2)


def test_checkpoint_restores_the_conditional_task(tmp_path):
    from gan_lab.tasks.gan import GANTask

    train_run(tmp_path, "model=gan_mlp", "data=digits", "model.conditional=projection", "trainer.max_steps=2")
    task = GANTask.load_from_checkpoint(tmp_path / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    assert task.conditional == "projection" and task.num_classes == 10
    assert task.generate_samples(4, labels=torch.tensor([0, 1, 2, 3])).shape == (4, 1, 32, 32)


# ---- metrics -------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def digits_feats():
    from gan_lab.data.digits import load_digits_images
    from gan_lab.metrics.features import embed, load_feature_net

    x, y = load_digits_images(32)
    net = load_feature_net("digits")
    feats, logits = embed(net, x, logits=True)
    return feats, logits, y


def test_class_consistency_of_real_digits(digits_feats):
    from gan_lab.metrics.class_conditional import class_consistency

    _, logits, y = digits_feats
    assert class_consistency(logits, y) > 0.9  # the right labels
    assert class_consistency(logits, (y + 1) % 10) < 0.1  # every label wrong


def test_class_consistency_of_stacked_labels():
    from gan_lab.metrics.class_conditional import class_consistency

    logits = torch.zeros(2, 3, 10)
    logits[0, 0, 1] = logits[0, 1, 2] = logits[0, 2, 3] = 1  # digits 1, 2, 3 -> class 123
    logits[1, 0, 0] = logits[1, 1, 0] = logits[1, 2, 9] = 1  # -> class 9
    assert class_consistency(logits, torch.tensor([123, 9])) == 1.0
    assert class_consistency(logits, torch.tensor([123, 90])) == 0.5


def test_intra_fid_sees_mislabelled_samples(digits_feats):
    from gan_lab.metrics.class_conditional import intra_fid

    feats, _, y = digits_feats
    half = len(y) // 2
    right, used, left_out = intra_fid(feats[:half], y[:half], feats[half:], y[half:])
    wrong, _, _ = intra_fid(feats[:half], y[:half], feats[half:], (y[half:] + 1) % 10)
    assert used == 10 and left_out == 0
    assert right < wrong / 3, (right, wrong)
    none, used, left_out = intra_fid(feats[:5], y[:5], feats[5:10], y[5:10])
    assert none is None and used == 0 and left_out > 0


def test_evaluation_records_conditional_metrics_and_labels(tmp_path):
    m = train_run(
        tmp_path,
        "model=gan_mlp",
        "data=digits",
        "model.conditional=acgan",
        "trainer.max_steps=2",
        *[o for o in FAST if not o.startswith("callbacks.metrics")],
        "metrics.every_n_steps=0",
        "metrics.n_samples=300",
        fast=False,
    )
    assert 0.0 <= m["class_consistency"] <= 1.0 and m["intra_fid"] > 0 and m["fid"] > 0
    p = m["protocol"]
    assert p["conditional"] == "acgan" and p["labels"] == "train-split class frequencies"
    assert sum(p["label_counts"]) == 300 and p["intra_fid_classes"] == 10


def test_ring_samples_coloured_by_class(tmp_path):
    import numpy as np
    from PIL import Image

    m = train_run(tmp_path, "model=gan_mlp", "data=toy2d_ring", "model.conditional=concat", "trainer.max_steps=2")
    assert m["status"] == "completed"
    img = np.asarray(Image.open(tmp_path / "samples" / "samples_final.png").convert("RGB")).reshape(-1, 3)
    colours = {tuple(int(v) // 32 for v in px) for px in img if int(px.max()) - int(px.min()) > 60}
    assert len(colours) >= 6, colours  # one colour per class, not the unconditional blue
