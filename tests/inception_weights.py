"""Test stand-ins for the FID Inception weights (the real file is never needed or committed).

`random_inception_weights()`: a randomly initialised FID Inception in torch-fidelity's state-dict layout
whose BatchNorm statistics are calibrated on random smooth images (with raw random init every image
gives nearly the same features), built once and cached under $GAN_LAB_CACHE/test_inception/.
`torch_fidelity_inception()`: torch-fidelity's own Inception module from the test-only install
(scripts/test_deps.sh puts it in .cache/test-deps), imported behind a stub package so its package
__init__ (which needs torchvision) never runs; None when it is not installed.
"""

from __future__ import annotations

import importlib
import os
import sys
import types
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
TEST_DEPS = ROOT / ".cache" / "test-deps"
CALIBRATION_IMAGES = 24
SKIP_REASON = "torch-fidelity is not installed for tests; run scripts/test_deps.sh"
# fixed when the tests start (tests that point GAN_LAB_CACHE at a temporary folder do not rebuild the weights)
CACHE = Path(os.environ.get("GAN_LAB_CACHE", ROOT / ".cache" / "tests")) / "test_inception"


def calibration_images(n: int, size: int = 299, seed: int = 0) -> torch.Tensor:
    """n smooth random colour images with values in [0, 255] (upsampled 8 x 8 noise plus fine noise)."""
    g = torch.Generator().manual_seed(seed)
    coarse = torch.nn.functional.interpolate(torch.rand(n, 3, 8, 8, generator=g), size=size, mode="bicubic")
    return ((coarse + 0.1 * torch.randn(n, 3, size, size, generator=g)).clamp(0, 1) * 255).round()


def random_inception_weights() -> Path:
    """Path of the calibrated random Inception state dict (built on first use, ~10 s on one thread)."""
    from gan_lab.metrics.inception import FIDInceptionV3

    path = CACHE / "random-v1.pth"
    if path.is_file():
        return path
    torch.manual_seed(0)
    net = FIDInceptionV3()
    for m in net.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.momentum = None  # cumulative average over the calibration batches
    net.train()
    with torch.no_grad():
        for chunk in calibration_images(CALIBRATION_IMAGES).split(8):
            net(chunk)
    state = {k: v for k, v in net.state_dict().items() if not k.endswith("num_batches_tracked")}
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)
    return path


def torch_fidelity_inception():
    """torch-fidelity's feature_extractor_inceptionv3 module, or None when the test deps are absent."""
    pkg_dir = TEST_DEPS / "torch_fidelity"
    if not (pkg_dir / "feature_extractor_inceptionv3.py").is_file():
        return None
    if "torch_fidelity" not in sys.modules:
        stub = types.ModuleType("torch_fidelity")
        stub.__path__ = [str(pkg_dir)]
        sys.modules["torch_fidelity"] = stub
    return importlib.import_module("torch_fidelity.feature_extractor_inceptionv3")


def torch_fidelity_function(module_file: str, name: str):
    """One top-level function of a torch-fidelity module whose imports need torchvision (metric_isc.py):
    its source, compiled alone with numpy and torch, plus the module's KEY_* constants."""
    import ast

    import numpy as np

    source = (TEST_DEPS / "torch_fidelity" / module_file).read_text()
    tree = ast.parse(source)
    keep = [n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == name]
    keep += [n for n in tree.body if isinstance(n, ast.Assign) and all(
        isinstance(t, ast.Name) and t.id.startswith("KEY_") for t in n.targets)]  # fmt: skip
    namespace = {"np": np, "torch": torch}
    exec(compile(ast.Module(body=keep, type_ignores=[]), module_file, "exec"), namespace)
    return namespace[name]
