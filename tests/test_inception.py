"""The FID Inception path without the real weights: a calibrated random Inception in torch-fidelity's format.

Checks: gan_lab's network and resize give torch-fidelity's outputs on the same weights; FID of a set against
itself is ~0 and against another set > 0; IS of identical images is 1; every metric runs on the 2048-d
features; the weights file is checked (hash, keys, shapes, weights_only) with one-line errors; a user's
TorchScript extractor runs every feature metric and its hash is in the protocol.
"""

from __future__ import annotations

import hashlib

import pytest
import torch
from inception_weights import (
    SKIP_REASON,
    calibration_images,
    random_inception_weights,
    torch_fidelity_function,
    torch_fidelity_inception,
)

from gan_lab.errors import ConfigError
from gan_lab.metrics import fid as fid_mod
from gan_lab.metrics import inception
from gan_lab.metrics.evaluate import Reference, score
from gan_lab.metrics.inception_score import inception_score

N = 10  # images per set (IS needs 10 splits): each 299 x 299 forward pass is ~1 s of one CPU core


@pytest.fixture(scope="session")
def weights():
    return random_inception_weights()


@pytest.fixture
def verified(weights, monkeypatch, tmp_path):
    """The random weights as $GAN_LAB_INCEPTION_WEIGHTS, with their hash standing in for the published one."""
    monkeypatch.setenv("GAN_LAB_INCEPTION_WEIGHTS", str(weights))
    monkeypatch.setattr(inception, "SHA256", inception.sha256_file(weights))
    monkeypatch.setenv("GAN_LAB_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(fid_mod, "_MEMO", type(fid_mod._MEMO)())
    return weights


def images(n: int, seed: int, size: int = 32) -> torch.Tensor:
    """n colour images in [-1, 1] (smooth random patterns)."""
    return calibration_images(n, size=size, seed=seed) / 127.5 - 1


def test_network_and_resize_match_torch_fidelity(weights):
    tf = torch_fidelity_inception()
    if tf is None:
        pytest.skip(SKIP_REASON)
    from torch_fidelity.interpolate_compat_tensorflow import interpolate_bilinear_2d_like_tensorflow1x

    for shape in ((2, 3, 32, 32), (1, 3, 64, 48), (1, 3, 310, 320)):  # up- and downsampling
        x = torch.rand(shape, generator=torch.Generator().manual_seed(sum(shape))) * 255
        want = interpolate_bilinear_2d_like_tensorflow1x(x, size=(299, 299), align_corners=False)
        assert torch.allclose(inception.resize_legacy_tf(x), want, atol=1e-4, rtol=0), shape

    ref = tf.FeatureExtractorInceptionV3("inception-v3-compat", ["2048", "logits_unbiased"],
                                         feature_extractor_weights_path=str(weights))  # fmt: skip
    net = inception.load_inception(verify=False, path=weights)
    x = images(3, seed=5)
    f, logits = net.features_and_logits(x)
    f_ref, logits_ref = ref(((x + 1) * 127.5).round().to(torch.uint8))
    assert f.shape == (3, 2048) and logits.shape == (3, 1008)
    assert torch.allclose(f, f_ref, rtol=1e-4, atol=1e-4 * f_ref.abs().max())
    assert torch.allclose(logits, logits_ref, rtol=1e-4, atol=1e-4 * logits_ref.abs().max())
    assert f.std(0).mean() > 0.05 * f.abs().mean()  # calibrated: images differ in feature space


def test_inception_score_matches_torch_fidelity():
    if torch_fidelity_inception() is None:
        pytest.skip(SKIP_REASON)
    isc_features_to_metric = torch_fidelity_function("metric_isc.py", "isc_features_to_metric")
    logits = torch.randn(257, 1008, generator=torch.Generator().manual_seed(0)) * 3
    mean, std = inception_score(logits)
    want = isc_features_to_metric(logits)
    assert mean == pytest.approx(want["inception_score_mean"], rel=1e-9)
    assert std == pytest.approx(want["inception_score_std"], rel=1e-9)


@pytest.mark.slow
def test_fid_kid_is_prdc_on_inception_features(verified):
    a, b = images(N, seed=1), images(N, seed=2, size=48)
    ref = Reference.of_images(a, "folder:a")
    same, protocol = score(a, ref, feature_net="inception")
    other, _ = score(b, ref, feature_net="inception")
    # 10 points in 2048-d: the covariances are rank 9, so tr sqrt(S S) carries round-off of the zero eigenvalues
    assert abs(same["fid"]) < 1e-3 * other["fid"] and other["fid"] > 0
    assert same["fid/inception/10"] == same["fid"] and "is/inception/10" in same
    assert {"kid", "precision", "recall", "density", "coverage", "ndb", "diversity", "is", "is_std"} <= set(same)
    assert same["precision"] == same["recall"] == same["coverage"] == 1.0
    assert "kid_std" not in same and protocol["kid_std"].startswith("undefined")  # 12 vs 12: one subset
    assert protocol["weights_sha256"] == inception.sha256_file(verified) and protocol["weights_verified"] is True
    assert protocol["resize"] == "legacy_tf to 299 x 299" and protocol["n_reference"] == N
    assert protocol["feature_net"] == "inception" and protocol["gan_lab_version"]
    assert protocol["reference_fingerprint"] and protocol["metrics"][:2] == ["fid", "kid"]
    assert fid_mod._MEMO and next(iter(fid_mod._MEMO.values())).features.shape == (N, 2048)

    one = images(1, seed=3).expand(N, -1, -1, -1)
    m, _ = score(one, ref, feature_net="inception", names=["is"])
    assert set(m) == {"is", "is_std", "is/inception/10"} and m["is"] == pytest.approx(1.0, abs=1e-9)


@pytest.mark.slow
def test_greyscale_clean_resize_and_unverified_weights(verified, monkeypatch):
    grey = images(N, seed=4)[:, :1]
    m_legacy, _ = score(grey, Reference.of_images(grey, "grey"), feature_net="inception", names=["fid"])
    m_clean, p = score(grey, Reference.of_images(images(N, seed=6)[:, :1], "grey2"), feature_net="inception",
                       names=["fid"], resize="clean")  # fmt: skip
    assert abs(m_legacy["fid"]) < 1e-3 * m_clean["fid"]
    assert p["resize"] == "clean to 299 x 299" and p["feature_net_version"].endswith("-clean")
    monkeypatch.setattr(inception, "SHA256", "0" * 64)
    _, p = score(grey, Reference.of_images(grey, "grey"), feature_net="inception", names=["fid"],
                 verify_weights=False)  # fmt: skip
    assert "not comparable with published numbers" in p["weights_verified"]


class Payload:
    """An arbitrary object: a file holding it must never be unpickled."""


def _one_line(fn, *args, **kw) -> str:
    with pytest.raises(ConfigError) as e:
        fn(*args, **kw)
    msg = str(e.value)
    assert "\n" not in msg
    return msg


def test_bad_weights_files_are_refused_in_one_line(weights, tmp_path, monkeypatch):
    missing = tmp_path / "none.pth"
    msg = _one_line(inception.load_inception, path=missing)
    assert f"no weights file at {missing}" in msg and inception.URL in msg and inception.SHA256 in msg

    msg = _one_line(inception.load_inception, path=weights)  # the random file is not the published one
    assert str(weights.resolve()) in msg and inception.sha256_file(weights) in msg and inception.SHA256 in msg
    assert "verify_weights=false" in msg

    state = torch.load(weights, weights_only=True)
    bad_shape = dict(state, **{"fc.weight": torch.zeros(10, 2048)})
    torch.save(bad_shape, tmp_path / "shape.pth")
    msg = _one_line(inception.load_inception, verify=False, path=tmp_path / "shape.pth")
    assert "key 'fc.weight': shape (10, 2048), expected shape (1008, 2048)" in msg
    no_key = {k: v for k, v in state.items() if k != "Mixed_7c.branch_pool.bn.running_var"}
    torch.save(no_key, tmp_path / "key.pth")
    msg = _one_line(inception.load_inception, verify=False, path=tmp_path / "key.pth")
    assert "key 'Mixed_7c.branch_pool.bn.running_var': missing" in msg

    torch.save({"net": Payload()}, tmp_path / "pickle.pth")  # an arbitrary pickle: never unpickled
    msg = _one_line(inception.load_inception, verify=False, path=tmp_path / "pickle.pth")
    assert "not a state dict loadable with weights_only=True" in msg
    msg = _one_line(inception.load_inception, resize="nearest", path=weights)
    assert "metrics.fid.resize='nearest' is not known; allowed legacy_tf, clean" in msg


def test_weights_found_in_torch_hub_cache_under_either_published_name(tmp_path, monkeypatch):
    monkeypatch.delenv("GAN_LAB_INCEPTION_WEIGHTS", raising=False)
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    assert inception.weights_path() == tmp_path / "checkpoints" / inception.FILE_NAMES[0]
    (tmp_path / "checkpoints").mkdir()
    (tmp_path / "checkpoints" / inception.FILE_NAMES[1]).write_bytes(b"x")  # pytorch-fid's name
    assert inception.weights_path() == tmp_path / "checkpoints" / inception.FILE_NAMES[1]
    assert all(n.endswith(f"-{inception.SHA256[:8]}.pth") for n in inception.FILE_NAMES)


class TinyExtractor(torch.nn.Module):
    """What a user exports: uint8 N x 3 x H x W -> N x 16 features."""

    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 16, 3, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.conv(x.float() / 127.5 - 1)).mean((2, 3))


def test_user_torchscript_extractor(tmp_path, monkeypatch):
    monkeypatch.setenv("GAN_LAB_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(fid_mod, "_MEMO", type(fid_mod._MEMO)())
    torch.manual_seed(0)
    path = tmp_path / "tiny_dino.pt"
    torch.jit.save(torch.jit.script(TinyExtractor()), str(path))
    a, b = images(40, seed=1), images(40, seed=2, size=48)[:, :, :32, :32]
    ref = Reference.of_images(a, "folder:a")
    same, protocol = score(a, ref, feature_net=str(path))
    other, _ = score(b, ref, feature_net=str(path))
    assert same["fid"] == pytest.approx(0.0, abs=1e-6) and other["fid"] > 1e-3
    assert {"fid", "kid", "precision", "recall", "density", "coverage", "ndb", "diversity"} <= set(same)
    assert "is" not in same and "fid/tiny_dino/40" in same
    assert protocol["weights_sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert protocol["feature_net"] == "tiny_dino" and "inside the TorchScript module" in protocol["resize"]
    m, p = score(a, ref, feature_net=str(path), names=["fid", "is"])
    assert set(m) == {"fid", "fid/tiny_dino/40"} and "needs feature net inception" in p["not_computed"]["is"]

    (tmp_path / "junk.pt").write_bytes(b"not torchscript")
    msg = _one_line(score, a, ref, feature_net=str(tmp_path / "junk.pt"))
    assert "is not a TorchScript file" in msg and "N x 3 x H x W uint8" in msg
