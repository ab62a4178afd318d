import os
from pathlib import Path

import pytest
import torch
from conftest import SHARED_DATA

from gan_lab.data.base import resize_images
from gan_lab.errors import ConfigError
from gan_lab.metrics.features import (
    SHIPPED,
    WEIGHTS_DIR,
    SmallCNN,
    accuracy,
    embed,
    file_version,
    heldout_data,
    load_feature_net,
)

MNIST_ROOT = Path(os.environ.get("GAN_LAB_MNIST_ROOT", SHARED_DATA / "mnist"))
needs_mnist = pytest.mark.skipif(not (MNIST_ROOT / "t10k-images-idx3-ubyte.gz").exists(), reason="no MNIST t10k")


@pytest.mark.parametrize("name", ["digits", "mnist"])
def test_shipped_weights_are_small_plain_tensors_matching_the_record(name):
    path = WEIGHTS_DIR / f"{name}.pt"
    assert path.stat().st_size < 1024 * 1024
    state = torch.load(path, weights_only=True)
    assert all(isinstance(v, torch.Tensor) for v in state.values())
    SmallCNN().load_state_dict(state)  # strict: every key, every shape
    assert file_version(path) == SHIPPED[name]["sha256"]  # the recorded accuracy is of these very weights
    net = load_feature_net(name)
    assert net.name == name and net.version == SHIPPED[name]["sha256"]
    assert net.input_size == SHIPPED[name]["input_size"]


def test_feature_net_api_shapes_and_frozen():
    net = load_feature_net("digits")
    assert load_feature_net("digits") is net  # loaded once per process
    x = torch.rand(7, 1, 32, 32) * 2 - 1
    f, lg = net.features(x), net.logits(x)
    assert f.shape == (7, 128) and lg.shape == (7, 10)
    f2, lg2 = net.features_and_logits(x)
    assert torch.equal(f, f2) and torch.equal(lg, lg2)
    assert not any(p.requires_grad for p in net.parameters())
    net.train()
    assert not net.training  # stays in eval mode: BatchNorm statistics never move
    assert torch.equal(net.features(x), f)
    with pytest.raises(ValueError, match="N x 1 x H x W"):
        net.features(torch.zeros(2, 3, 32, 32))


def test_shipped_digits_net_accuracy_on_its_heldout_split():
    net = load_feature_net("digits")
    (x, _), (xh, yh) = heldout_data("digits")
    assert len(xh) == 359 and len(x) == 1438  # the fixed 20% split
    acc = accuracy(net, xh, yh)
    assert acc >= 0.97
    assert acc == pytest.approx(SHIPPED["digits"]["heldout_accuracy"], abs=0.003)
    # other input sizes are resized to the native 32 x 32 first
    assert accuracy(net, resize_images(xh, 16), yh) >= 0.95


@needs_mnist
def test_shipped_mnist_net_accuracy_and_32px_inputs(monkeypatch):
    monkeypatch.setenv("GAN_LAB_MNIST_ROOT", str(MNIST_ROOT))
    net = load_feature_net("mnist")
    _, (xh, yh) = heldout_data("mnist")
    assert xh.shape == (2000, 1, 28, 28) and xh.min() >= -1 and xh.max() <= 1
    acc = accuracy(net, xh, yh)
    assert acc >= 0.98
    assert acc == pytest.approx(SHIPPED["mnist"]["heldout_accuracy"], abs=0.003)
    x32 = resize_images(xh, 32)  # what an MNIST data module at size 32 produces
    assert accuracy(net, x32, yh) >= 0.975


def test_embed_per_channel_for_stacked_images():
    net = load_feature_net("digits")
    _, (xh, yh) = heldout_data("digits")
    a, b, c = xh[:40], xh[40:80], xh[80:120]
    f, lg = embed(net, torch.cat([a, b, c], 1), batch_size=16, logits=True)
    assert f.shape == (40, 384) and lg.shape == (40, 3, 10)
    assert torch.allclose(f[:, 128:256], embed(net, b), atol=1e-5)
    assert (lg.argmax(-1) == torch.stack([yh[:40], yh[40:80], yh[80:120]], 1)).float().mean() > 0.95


def test_unknown_feature_net_is_a_config_error():
    with pytest.raises(ConfigError, match="allowed digits, mnist, inception") as e:
        load_feature_net("cifar")
    assert "\n" not in str(e.value)


def test_inception_without_weights_file(tmp_path, monkeypatch):
    monkeypatch.setenv("GAN_LAB_INCEPTION_WEIGHTS", str(tmp_path / "missing.pth"))
    with pytest.raises(ConfigError) as e:
        load_feature_net("inception")
    msg = str(e.value)
    assert msg.startswith("metrics.fid.features=inception: no weights file at")
    assert "GAN_LAB_INCEPTION_WEIGHTS" in msg and str(tmp_path / "missing.pth") in msg
    assert "\n" not in msg
