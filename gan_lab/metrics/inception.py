"""The FID Inception-v3 (the 2015-12-05 TensorFlow graph) from a verified local weights file.

    net = load_inception()                       # $GAN_LAB_INCEPTION_WEIGHTS or torch hub's cache
    f, logits = net.features_and_logits(images)  # N x 2048 pool3 features, N x 1008 unbiased logits

The network is the one pytorch-fid and torch-fidelity port from TensorFlow (torchvision's Inception3 with
TensorFlow's average pools that exclude padding and a max pool in the last block), in torch-fidelity's
state-dict layout, which is also pytorch-fid's. It is defined here because torch-fidelity's package cannot
be imported next to torchmetrics without torchvision; the tests check that this definition and its resize
give torch-fidelity's `FeatureExtractorInceptionV3` outputs on the same weights.

Weights: `weights-inception-2015-12-05-6726825d.pth` (torch-fidelity's v0.2.0 release) or
`pt_inception-2015-12-05-6726825d.pth` (pytorch-fid's `fid_weights` release), the same file. Both
projects publish only the first 8 hex digits of its SHA-256 (torch hub's file-name convention; neither
checks it when downloading). The full SHA-256 below, whose first 8 digits are that prefix, is the value
that independent public projects pinning the downloaded file record (95,628,359 bytes); it is checked in
full before the file is loaded (with `torch.load(..., weights_only=True)`), and the protocol records the
hash of the file that was loaded. `verify_weights=False` accepts any file of the right layout (a custom
network) and the protocol says so.

Inputs are images in [-1, 1] with 1 or 3 channels, quantised to 8 bits like saved images. Resize to
299 x 299 (`resize=`):
- "legacy_tf" (default): TensorFlow 1's bilinear resize without antialiasing, as the TensorFlow FID code,
  pytorch-fid and torch-fidelity do, so numbers are comparable with published ones;
- "clean": clean-fid's resize (PIL bicubic with antialiasing, per channel in float32), for new work
  (Parmar et al., "On Aliased Resizing and Surprising Subtleties in GAN Evaluation", CVPR 2022).
"""

from __future__ import annotations

import hashlib
import os
from functools import cache
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from gan_lab.checkpoints import load
from gan_lab.errors import ConfigError

FILE_NAMES = ("weights-inception-2015-12-05-6726825d.pth", "pt_inception-2015-12-05-6726825d.pth")
SHA256 = "6726825d0af5f729cebd5821db510b11b1cfad8faad88a03f1befd49fb9129b2"
URL = "https://github.com/toshas/torch-fidelity/releases/download/v0.2.0/" + FILE_NAMES[0]
RESIZES = ("legacy_tf", "clean")
SIZE = 299


# ---------------------------------------------------------------------------------------------------
# the network


class BasicConv2d(nn.Module):
    def __init__(self, cin: int, cout: int, **kw):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, bias=False, **kw)
        self.bn = nn.BatchNorm2d(cout, eps=0.001)

    def forward(self, x):
        return F.relu(self.bn(self.conv(x)))


def _tf_avg_pool(x):  # TensorFlow's 3x3 average pool ignores the zero padding
    return F.avg_pool2d(x, 3, stride=1, padding=1, count_include_pad=False)


class _Block(nn.Module):
    """An Inception block: named branches (lists of BasicConv2d names applied in order), outputs concatenated.
    A branch may end in a fork (two convs applied to the same input, concatenated)."""

    branches: tuple = ()

    def forward(self, x):
        outs = []
        for branch in self.branches:
            y = x
            for step in branch:
                if step == "avg":
                    y = _tf_avg_pool(y)
                elif step == "max3":
                    y = F.max_pool2d(y, 3, stride=1, padding=1)
                elif step == "max2":
                    y = F.max_pool2d(y, 3, stride=2)
                elif isinstance(step, tuple):
                    y = torch.cat([getattr(self, s)(y) for s in step], 1)
                else:
                    y = getattr(self, step)(y)
            outs.append(y)
        return torch.cat(outs, 1)

    def add(self, name, cin, cout, k, stride=1, padding=0):
        setattr(self, name, BasicConv2d(cin, cout, kernel_size=k, stride=stride, padding=padding))


class InceptionA(_Block):
    branches = (("branch1x1",), ("branch5x5_1", "branch5x5_2"),
                ("branch3x3dbl_1", "branch3x3dbl_2", "branch3x3dbl_3"), ("avg", "branch_pool"))  # fmt: skip

    def __init__(self, cin, pool):
        super().__init__()
        self.add("branch1x1", cin, 64, 1)
        self.add("branch5x5_1", cin, 48, 1)
        self.add("branch5x5_2", 48, 64, 5, padding=2)
        self.add("branch3x3dbl_1", cin, 64, 1)
        self.add("branch3x3dbl_2", 64, 96, 3, padding=1)
        self.add("branch3x3dbl_3", 96, 96, 3, padding=1)
        self.add("branch_pool", cin, pool, 1)


class InceptionB(_Block):
    branches = (("branch3x3",), ("branch3x3dbl_1", "branch3x3dbl_2", "branch3x3dbl_3"), ("max2",))

    def __init__(self, cin):
        super().__init__()
        self.add("branch3x3", cin, 384, 3, stride=2)
        self.add("branch3x3dbl_1", cin, 64, 1)
        self.add("branch3x3dbl_2", 64, 96, 3, padding=1)
        self.add("branch3x3dbl_3", 96, 96, 3, stride=2)


class InceptionC(_Block):
    branches = (("branch1x1",), ("branch7x7_1", "branch7x7_2", "branch7x7_3"),
                tuple(f"branch7x7dbl_{i}" for i in range(1, 6)), ("avg", "branch_pool"))  # fmt: skip

    def __init__(self, cin, c7):
        super().__init__()
        row, col = dict(k=(1, 7), padding=(0, 3)), dict(k=(7, 1), padding=(3, 0))
        self.add("branch1x1", cin, 192, 1)
        self.add("branch7x7_1", cin, c7, 1)
        self.add("branch7x7_2", c7, c7, **row)
        self.add("branch7x7_3", c7, 192, **col)
        self.add("branch7x7dbl_1", cin, c7, 1)
        self.add("branch7x7dbl_2", c7, c7, **col)
        self.add("branch7x7dbl_3", c7, c7, **row)
        self.add("branch7x7dbl_4", c7, c7, **col)
        self.add("branch7x7dbl_5", c7, 192, **row)
        self.add("branch_pool", cin, 192, 1)


class InceptionD(_Block):
    branches = (("branch3x3_1", "branch3x3_2"), tuple(f"branch7x7x3_{i}" for i in range(1, 5)), ("max2",))

    def __init__(self, cin):
        super().__init__()
        self.add("branch3x3_1", cin, 192, 1)
        self.add("branch3x3_2", 192, 320, 3, stride=2)
        self.add("branch7x7x3_1", cin, 192, 1)
        self.add("branch7x7x3_2", 192, 192, (1, 7), padding=(0, 3))
        self.add("branch7x7x3_3", 192, 192, (7, 1), padding=(3, 0))
        self.add("branch7x7x3_4", 192, 192, 3, stride=2)


class InceptionE(_Block):
    """Mixed_7b pools with TensorFlow's average pool, Mixed_7c with a max pool (`pool="max3"`)."""

    def __init__(self, cin, pool):
        super().__init__()
        self.branches = (("branch1x1",), ("branch3x3_1", ("branch3x3_2a", "branch3x3_2b")),
                         ("branch3x3dbl_1", "branch3x3dbl_2", ("branch3x3dbl_3a", "branch3x3dbl_3b")),
                         (pool, "branch_pool"))  # fmt: skip
        self.add("branch1x1", cin, 320, 1)
        self.add("branch3x3_1", cin, 384, 1)
        self.add("branch3x3_2a", 384, 384, (1, 3), padding=(0, 1))
        self.add("branch3x3_2b", 384, 384, (3, 1), padding=(1, 0))
        self.add("branch3x3dbl_1", cin, 448, 1)
        self.add("branch3x3dbl_2", 448, 384, 3, padding=1)
        self.add("branch3x3dbl_3a", 384, 384, (1, 3), padding=(0, 1))
        self.add("branch3x3dbl_3b", 384, 384, (3, 1), padding=(1, 0))
        self.add("branch_pool", cin, 192, 1)


class FIDInceptionV3(nn.Module):
    """(pool3 features N x 2048, unbiased logits N x 1008) of N x 3 x 299 x 299 images with values in [0, 255]."""

    def __init__(self):
        super().__init__()
        self.Conv2d_1a_3x3 = BasicConv2d(3, 32, kernel_size=3, stride=2)
        self.Conv2d_2a_3x3 = BasicConv2d(32, 32, kernel_size=3)
        self.Conv2d_2b_3x3 = BasicConv2d(32, 64, kernel_size=3, padding=1)
        self.Conv2d_3b_1x1 = BasicConv2d(64, 80, kernel_size=1)
        self.Conv2d_4a_3x3 = BasicConv2d(80, 192, kernel_size=3)
        self.Mixed_5b, self.Mixed_5c, self.Mixed_5d = InceptionA(192, 32), InceptionA(256, 64), InceptionA(288, 64)
        self.Mixed_6a = InceptionB(288)
        self.Mixed_6b, self.Mixed_6c = InceptionC(768, 128), InceptionC(768, 160)
        self.Mixed_6d, self.Mixed_6e = InceptionC(768, 160), InceptionC(768, 192)
        self.Mixed_7a = InceptionD(768)
        self.Mixed_7b, self.Mixed_7c = InceptionE(1280, "avg"), InceptionE(2048, "max3")
        self.fc = nn.Linear(2048, 1008)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = (x - 128) / 128
        x = self.Conv2d_2b_3x3(self.Conv2d_2a_3x3(self.Conv2d_1a_3x3(x)))
        x = self.Conv2d_4a_3x3(self.Conv2d_3b_1x1(F.max_pool2d(x, 3, stride=2)))
        x = F.max_pool2d(x, 3, stride=2)
        for name in ("5b", "5c", "5d", "6a", "6b", "6c", "6d", "6e", "7a", "7b", "7c"):
            x = getattr(self, f"Mixed_{name}")(x)
        f = x.mean((2, 3))
        return f, f @ self.fc.weight.T  # "logits_unbiased": the Inception Score's logits (no bias)


# ---------------------------------------------------------------------------------------------------
# resizing to 299 x 299


def resize_legacy_tf(x: torch.Tensor, size: int = SIZE) -> torch.Tensor:
    """TensorFlow 1's `resize_bilinear(align_corners=False)`: source coordinate dst * in / out, no
    half-pixel offset, no antialiasing (what the TensorFlow FID graph, pytorch-fid and torch-fidelity do)."""

    def axis(t: torch.Tensor, dim: int) -> torch.Tensor:
        n = t.shape[dim]
        if n == size:
            return t
        src = torch.arange(size, dtype=torch.float32) * torch.tensor(n / size, dtype=torch.float32)  # as TF: float32
        i0 = src.long().clamp_max(n - 1)
        i1 = (i0 + 1).clamp_max(n - 1)
        w = (src - i0.float()).to(t.dtype)
        shape = [1] * t.dim()
        shape[dim] = size
        a, b = t.index_select(dim, i0.to(t.device)), t.index_select(dim, i1.to(t.device))
        return a + (b - a) * w.to(t.device).view(shape)

    return axis(axis(x, 3), 2)  # along x, then along y (as TensorFlow's kernel)


def resize_clean(x: torch.Tensor, size: int = SIZE) -> torch.Tensor:
    """clean-fid's resize: PIL bicubic (antialiased) of each channel as a float32 image, clipped to [0, 255]."""
    from PIL import Image

    if x.shape[-2:] == (size, size):
        return x
    arr = x.detach().cpu().float().numpy()
    out = np.empty((*arr.shape[:2], size, size), dtype=np.float32)
    for i in range(arr.shape[0]):
        for c in range(arr.shape[1]):
            img = Image.fromarray(arr[i, c], mode="F").resize((size, size), resample=Image.BICUBIC)
            out[i, c] = np.asarray(img).clip(0, 255)
    return torch.from_numpy(out).to(x.device)


# ---------------------------------------------------------------------------------------------------
# the feature net gan_lab's metrics use


def to_uint8_values(x: torch.Tensor) -> torch.Tensor:
    """Images in [-1, 1] to the float values 0..255 of their 8-bit quantisation (as saved PNGs hold)."""
    return ((x.float().clamp(-1, 1) + 1) * 127.5).round()


class InceptionFeatures(nn.Module):
    """Frozen FID Inception: `features(x)` N x 2048 and `features_and_logits(x)` (+ N x 1008) of N x C x H x W
    images in [-1, 1], C in {1, 3} (greyscale is repeated to RGB)."""

    num_features = 2048
    per_channel = False
    batch_size = 50  # images per forward pass (299 x 299 inputs)

    def __init__(self, net: FIDInceptionV3, sha256: str, resize: str, verified: bool, path: Path):
        super().__init__()
        self.net = net.eval().requires_grad_(False)
        self.name, self.resize, self.verified = "inception", resize, verified
        self.sha256, self.path = sha256, path
        self.version = f"{sha256[:12]}-{resize}"  # the resize changes the features: part of the cache key

    def train(self, mode: bool = True) -> InceptionFeatures:
        return super().train(False)

    def describe(self) -> dict:
        return {
            "feature_net": "inception",
            "feature_net_version": self.version,
            "weights_sha256": self.sha256,
            "weights_verified": self.verified
            or "no: metrics.fid.verify_weights=false (a custom network, not comparable with published numbers)",
            "resize": f"{self.resize} to {SIZE} x {SIZE}",
            "quantization": "8-bit, as saved images",
        }

    @torch.no_grad()
    def features_and_logits(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if x.dim() != 4 or x.shape[1] not in (1, 3):
            raise ValueError(f"the Inception network expects N x 1|3 x H x W images, got {tuple(x.shape)}")
        dev = next(self.net.parameters()).device
        x = to_uint8_values(x.to(dev)).expand(-1, 3, -1, -1)
        x = resize_legacy_tf(x) if self.resize == "legacy_tf" else resize_clean(x)
        f, logits = self.net(x.contiguous())
        return f.float().cpu(), logits.float().cpu()

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.features_and_logits(x)[0]

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        return self.features_and_logits(x)[1]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)


def weights_path() -> Path:
    """$GAN_LAB_INCEPTION_WEIGHTS, else the first published file name present in torch hub's cache
    (<torch hub dir>/checkpoints/), else where torch-fidelity would put it."""
    env = os.environ.get("GAN_LAB_INCEPTION_WEIGHTS")
    if env:
        return Path(env).expanduser()
    hub = Path(torch.hub.get_dir()) / "checkpoints"
    return next((hub / n for n in FILE_NAMES if (hub / n).is_file()), hub / FILE_NAMES[0])


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def load_inception(resize: str = "legacy_tf", verify: bool = True, path: Path | None = None) -> InceptionFeatures:
    """The frozen FID Inception from `path` (default `weights_path()`), SHA-256 checked unless verify=False.
    Any problem with the file is one ConfigError line naming the path, what was found and what to do."""
    if resize not in RESIZES:
        raise ConfigError(f"metrics.fid.resize={resize!r} is not known; allowed {', '.join(RESIZES)}")
    path = Path(path) if path is not None else weights_path()
    if not path.is_file():
        raise ConfigError(
            f"metrics.fid.features=inception: no weights file at {path}; download {URL} "
            f"(SHA-256 {SHA256}) to that path or set GAN_LAB_INCEPTION_WEIGHTS to the file"
        )
    st = path.stat()
    return _load(str(path.resolve()), st.st_size, st.st_mtime_ns, resize, SHA256 if verify else None)


@cache
def _load(path: str, size: int, mtime: int, resize: str, expected: str | None) -> InceptionFeatures:
    """(cached per file version, resize and expected hash; `expected` None: not verified)"""
    verify = expected is not None
    digest = sha256_file(Path(path))
    if verify and digest != expected:
        raise ConfigError(
            f"metrics.fid.features=inception: {path} has SHA-256 {digest}, not the published FID Inception "
            f"weights' {expected}; download {URL}, or set metrics.fid.verify_weights=false to use a custom network"
        )
    try:
        state = load(path)  # gan_lab.checkpoints: weights only
    except Exception as e:
        first = next((ln.strip() for ln in str(e).splitlines() if ln.strip()), type(e).__name__)
        raise ConfigError(
            f"metrics.fid.features=inception: {path} is not a state dict loadable with weights_only=True ({first}); "
            f"allowed torch-fidelity's or pytorch-fid's {FILE_NAMES[0]}"
        ) from None
    net = FIDInceptionV3()
    want = {k: v.shape for k, v in net.state_dict().items() if not k.endswith("num_batches_tracked")}
    got = state if isinstance(state, dict) else {}
    for k, shape in want.items():
        v = got.get(k)
        if not isinstance(v, torch.Tensor) or v.shape != shape:
            found = "missing" if v is None else f"shape {tuple(v.shape)}" if isinstance(v, torch.Tensor) else type(v)
            raise ConfigError(
                f"metrics.fid.features=inception: {path} does not hold the FID Inception's state dict (key {k!r}: "
                f"{found}, expected shape {tuple(shape)}); allowed torch-fidelity's or pytorch-fid's {FILE_NAMES[0]}"
            )
    extra = sorted(k for k in got if k not in want and not k.endswith("num_batches_tracked"))
    if extra:
        raise ConfigError(
            f"metrics.fid.features=inception: {path} has a key the FID Inception does not ({extra[0]!r}); "
            f"allowed torch-fidelity's or pytorch-fid's {FILE_NAMES[0]}"
        )
    net.load_state_dict({k: got[k] for k in want}, strict=False)
    return InceptionFeatures(net, digest, resize, verify, Path(path))
