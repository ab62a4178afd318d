"""Feature networks for FID/KID, precision/recall and class-mode metrics.

The embedded data sets have small CNN classifiers shipped as weights in `gan_lab/metrics/weights/`
(trained by `python scripts/train_feature_net.py --name digits|mnist`). Their features are the
global-average-pooled activations of the last convolution (the penultimate layer, like Inception's
pool3); their `version` is the short sha256 of the weights file, so a metric carries the exact
network it was computed with.

    net = load_feature_net("digits")       # frozen, eval mode
    f = net.features(images)               # N x 128, images N x 1 x H x W in [-1, 1], any H x W
    p = net.logits(images).softmax(1)      # N x 10

Other feature nets: `load_feature_net("inception")` (the FID Inception-v3 from a verified local weights
file, gan_lab/metrics/inception.py) and `load_feature_net("<file>.pt")` (a user's TorchScript extractor).
Every net has `name`, `version` and `describe()` (its part of the metrics protocol).
"""

from __future__ import annotations

import hashlib
import os
from functools import cache
from pathlib import Path

import torch
from torch import nn

from gan_lab.checkpoints import load_file
from gan_lab.data.base import resize_images, split_train_val
from gan_lab.errors import ConfigError

WEIGHTS_DIR = Path(__file__).parent / "weights"
FEATURE_DIM = 128

# What `scripts/train_feature_net.py` measured for the shipped weights (held-out split of `heldout_data`).
# `sha256` is the version the weights file must hash to; tests check the two agree.
SHIPPED = {
    "digits": {"input_size": 32, "heldout_accuracy": 0.9916, "n_train": 1438, "n_heldout": 359,
               "sha256": "2c2f997dadae"},
    "mnist": {"input_size": 28, "heldout_accuracy": 0.9915, "n_train": 8000, "n_heldout": 2000,
              "sha256": "d23bc767d7aa"},
}  # fmt: skip
ALLOWED = (*SHIPPED, "inception")


class SmallCNN(nn.Module):
    """Cheap CNN (~3.6 MMAC per 32 x 32 image): 5x5 stride-2 conv 16 | conv 32, pool | conv 64, pool |
    conv 128, global average pool (the 128-d features) | dropout, linear head. Convs have BatchNorm + ReLU."""

    def __init__(self, n_classes: int = 10):
        super().__init__()

        def block(cin, cout, k=3, stride=1):
            return [
                nn.Conv2d(cin, cout, k, stride, padding=k // 2, bias=False),
                nn.BatchNorm2d(cout),
                nn.ReLU(inplace=True),
            ]

        self.body = nn.Sequential(
            *block(1, 16, k=5, stride=2), *block(16, 32), nn.MaxPool2d(2), *block(32, 64), nn.MaxPool2d(2),
            *block(64, FEATURE_DIM), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
        )  # fmt: skip
        self.head = nn.Sequential(nn.Dropout(0.2), nn.Linear(FEATURE_DIM, n_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x))


def fuse_batchnorm(seq: nn.Sequential) -> nn.Sequential:
    """Fold each eval-mode BatchNorm into the convolution before it (same outputs, ~25% faster)."""
    from torch.nn.utils.fusion import fuse_conv_bn_eval

    mods, out = list(seq), []
    while mods:
        m = mods.pop(0)
        if isinstance(m, nn.Conv2d) and mods and isinstance(mods[0], nn.BatchNorm2d):
            m = fuse_conv_bn_eval(m, mods.pop(0))
        out.append(m)
    return nn.Sequential(*out)


class FeatureNet(nn.Module):
    """A frozen classifier: `features(x)` (N x D penultimate) and `logits(x)` (N x 10) of N x 1 x H x W images
    in [-1, 1]; inputs are resized (bilinear, antialiased) to `input_size` first."""

    def __init__(self, name: str, net: SmallCNN, input_size: int, version: str):
        super().__init__()
        net = net.eval()
        self.body = fuse_batchnorm(net.body).to(memory_format=torch.channels_last)  # ~2x faster on CPU
        self.head = net.head
        self.name, self.input_size, self.version = name, int(input_size), version
        self.num_features = FEATURE_DIM
        self.per_channel = True  # multi-channel images (stacked digits) are embedded channel by channel
        self.eval().requires_grad_(False)

    def describe(self) -> dict:
        return {"feature_net": self.name, "feature_net_version": self.version,
                "resize": f"bilinear (antialiased) to {self.input_size} x {self.input_size}"}  # fmt: skip

    def train(self, mode: bool = True) -> FeatureNet:  # always frozen in eval mode
        return super().train(False)

    def _prep(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 4 or x.shape[1] != 1:
            raise ValueError(f"feature net {self.name!r} expects N x 1 x H x W images, got {tuple(x.shape)}")
        return resize_images(x.float(), self.input_size).contiguous(memory_format=torch.channels_last)

    @torch.no_grad()
    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(self._prep(x))

    @torch.no_grad()
    def logits(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))

    @torch.no_grad()
    def features_and_logits(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        f = self.features(x)
        return f, self.head(f)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)


def file_version(path: str | Path) -> str:
    """Short (12 hex digits) sha256 of a file: the version of a feature net."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()[:12]


def load_feature_net(name: str, resize: str = "legacy_tf", verify_weights: bool = True) -> nn.Module:
    """The frozen feature net `name`: digits, mnist, inception (`resize`, `verify_weights`: see
    gan_lab.metrics.inception) or the path of a TorchScript feature extractor (cached per process)."""
    if name == "inception":
        from gan_lab.metrics.inception import load_inception

        return load_inception(resize=resize, verify=verify_weights)
    if name not in ALLOWED:
        path = Path(str(name)).expanduser()
        if path.suffix in (".pt", ".pth", ".ts", ".jit") or path.is_file():
            if not path.is_file():
                raise ConfigError(f"metrics.fid.features={name!r}: no such TorchScript file")
            return _load_scripted_cached(str(path.resolve()), path.stat().st_mtime_ns)
        raise ConfigError(
            f"metrics.fid.features={name!r} is not a feature net; "
            f"allowed {', '.join(ALLOWED)} or a TorchScript file path"
        )
    return _load(name)


@cache
def _load_scripted_cached(path: str, mtime: int) -> ScriptedFeatures:
    return _load_scripted(Path(path))


@cache
def _load(name: str) -> nn.Module:
    path = WEIGHTS_DIR / f"{name}.pt"
    if not path.exists():
        raise ConfigError(
            f"feature net weights {path} are missing; train them with python scripts/train_feature_net.py --name {name}"
        )
    net = SmallCNN()
    allowed = f"the file scripts/train_feature_net.py --name {name} writes"
    net.load_state_dict(load_file(path, "feature net weights", allowed))
    return FeatureNet(name, net, SHIPPED[name]["input_size"], file_version(path))


# ---------------------------------------------------------------------------------------------------
# A user's TorchScript feature extractor (DINOv2, SwAV, CLIP, ... exported on the user's machine).


class ScriptedFeatures(nn.Module):
    """A TorchScript module mapping N x 3 x H x W uint8 images (the data's own size: the module does its
    own resizing and normalisation) to N x D features. Greyscale images are repeated to RGB."""

    per_channel = False

    def __init__(self, module: torch.jit.ScriptModule, path: Path, sha256: str):
        super().__init__()
        self.module = module.eval()
        self.name, self.path, self.sha256 = path.stem, path, sha256
        self.version = sha256[:12]
        self.num_features = None  # known after the first batch

    def train(self, mode: bool = True) -> ScriptedFeatures:
        return super().train(False)

    def describe(self) -> dict:
        return {
            "feature_net": self.name,
            "feature_net_version": self.version,
            "feature_net_file": self.path.name,
            "weights_sha256": self.sha256,
            "resize": "inside the TorchScript module (it receives uint8 images at the data's size)",
            "quantization": "8-bit, as saved images",
        }

    @torch.no_grad()
    def features(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 4 or x.shape[1] not in (1, 3):
            raise ValueError(f"feature net {self.name!r} expects N x 1|3 x H x W images, got {tuple(x.shape)}")
        u8 = ((x.float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).expand(-1, 3, -1, -1).contiguous()
        f = self.module(u8)
        if not isinstance(f, torch.Tensor) or f.dim() != 2 or len(f) != len(x):
            got = tuple(f.shape) if isinstance(f, torch.Tensor) else type(f).__name__
            raise ConfigError(
                f"metrics.fid.features={str(self.path)!r} returned {got} for {len(x)} images; allowed an N x D tensor"
            )
        self.num_features = f.shape[1]
        return f.float()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)


def _load_scripted(path: Path) -> ScriptedFeatures:
    from gan_lab.metrics.inception import sha256_file

    try:
        module = torch.jit.load(str(path), map_location="cpu")
    except Exception as e:
        first = next((ln.strip() for ln in str(e).splitlines() if ln.strip()), type(e).__name__)
        raise ConfigError(
            f"metrics.fid.features={str(path)!r} is not a TorchScript file ({first}); allowed a module saved "
            "with torch.jit.save that maps N x 3 x H x W uint8 images to N x D features"
        ) from None
    return ScriptedFeatures(module, path, sha256_file(path))


# ---------------------------------------------------------------------------------------------------
# Helpers shared by metrics, the training script and tests.


@torch.no_grad()
def embed(net: nn.Module, images: torch.Tensor, batch_size: int = 1000, logits: bool = False):
    """Features (and with `logits=True` also logits) of N x C x H x W images, in batches.

    Multi-channel images with a 1-channel net (stacked digits) are embedded channel by channel: the
    features are the per-channel features concatenated (N x C*D), the logits N x C x 10.
    """
    images = images.detach().cpu().float()
    batch_size = min(batch_size, getattr(net, "batch_size", batch_size))  # Inception: 299 x 299 inputs
    per_channel = images.shape[1] > 1 and getattr(net, "per_channel", False)
    feats, outs = [], []
    for i in range(0, len(images), batch_size):
        x = images[i : i + batch_size]
        pairs = [
            net.features_and_logits(c) if logits else (net.features(c), None)
            for c in (x.split(1, dim=1) if per_channel else (x,))
        ]
        feats.append(torch.cat([f for f, _ in pairs], 1))
        if logits:
            lg = torch.stack([lg for _, lg in pairs], 1)
            outs.append(lg if per_channel else lg[:, 0])
    return (torch.cat(feats), torch.cat(outs)) if logits else torch.cat(feats)


def heldout_data(name: str) -> tuple[tuple[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]:
    """((train x, y), (held-out x, y)) of a feature net, images in [-1, 1] at the net's native size.

    digits: sklearn digits at 32 x 32, a fixed 20% held out (split seed 0). mnist: the first 8000
    images of MNIST t10k for training, the last 2000 held out (the IDX files in $GAN_LAB_MNIST_ROOT).
    """
    if name == "digits":
        from gan_lab.data.digits import load_digits_images

        x, y = load_digits_images(32)
        return split_train_val((x, y), 0.2, seed=0)
    if name == "mnist":
        from gan_lab.data.mnist import load_mnist

        root = os.environ.get("GAN_LAB_MNIST_ROOT")
        if not root:
            raise ConfigError(
                "feature net mnist: its data is MNIST t10k; set GAN_LAB_MNIST_ROOT to the folder holding "
                "t10k-images-idx3-ubyte.gz and t10k-labels-idx1-ubyte.gz"
            )
        x, y = load_mnist(root, "t10k")
        x = x * 2 - 1
        return (x[:8000], y[:8000]), (x[8000:], y[8000:])
    raise ConfigError(f"feature net {name!r} has no training data; allowed {', '.join(SHIPPED)}")


@torch.no_grad()
def accuracy(net: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int = 1000) -> float:
    pred = torch.cat([net.logits(x[i : i + batch_size]).argmax(1) for i in range(0, len(x), batch_size)])
    return (pred == y).float().mean().item()
