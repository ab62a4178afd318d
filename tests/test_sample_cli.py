"""`gan-lab sample`: PNGs or an .npz from a checkpoint alone; `gan-lab evaluate images=` scores them with the
checkpoint's own numbers; statistics files round-trip; refusals are one line and write nothing."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from conftest import run_cli
from PIL import Image
from test_evaluate_cli import finished_run

from gan_lab import evaluate as ev
from gan_lab import sample as sm
from gan_lab.data.digits import load_digits_images
from gan_lab.metrics import fid as fid_mod
from gan_lab.metrics.features import load_feature_net

KEYS = ("fid", "kid", "kid_std", "class_modes", "class_kl", "precision", "recall", "density", "coverage", "ndb",
        "diversity", "fid/digits/200", "kid/digits/200")  # fmt: skip


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("GAN_LAB_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(fid_mod, "_MEMO", type(fid_mod._MEMO)())


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    run = tmp_path_factory.mktemp("gan_digits")
    finished_run(run, "model=gan_mlp", "data=digits", "trainer.max_steps=5")
    return run


def _call(main, capsys, *args: str) -> tuple[int, str, str]:
    rc = main(list(args))
    out, err = capsys.readouterr()
    return rc, out, err


def test_sample_then_evaluate_images_reproduces_the_checkpoint(run, tmp_path, capsys):
    ckpt = run / "checkpoints" / "last.ckpt"
    rc, _, err = _call(sm.main, capsys, f"ckpt={ckpt}", "n=200", f"out={tmp_path / 'png'}")
    assert rc == 0, err
    rc, _, err = _call(sm.main, capsys, f"ckpt={ckpt}", "n=200", f"out={tmp_path / 's.npz'}")
    assert rc == 0, err
    files = sorted((tmp_path / "png").iterdir())
    with np.load(tmp_path / "s.npz") as f:
        arr = f["arr_0"]
    assert [p.name for p in files[:2]] == ["000000.png", "000001.png"] and len(files) == 200
    assert arr.shape == (200, 32, 32, 1) and arr.dtype == np.uint8
    assert np.array_equal(np.asarray(Image.open(files[7])), arr[7, ..., 0])  # the same images either way

    rc, _, err = _call(ev.main, capsys, f"ckpt={ckpt}", f"out={tmp_path / 'ckpt.json'}")
    assert rc == 0, err
    want = json.loads((tmp_path / "ckpt.json").read_text())
    for images in (tmp_path / "png", tmp_path / "s.npz"):
        rc, out, err = _call(ev.main, capsys, f"images={images}", "data=digits", "n_real=300")
        assert rc == 0, err
        got = json.loads(out)
        for key in KEYS:
            assert got[key] == want[key], (images.name, key)  # exactly: same images, same protocol
        p = got["protocol"]
        assert p["n_generated"] == 200 and p["n_reference"] == 300 and p["images"] == str(images)
        assert p["reference_fingerprint"] == want["protocol"]["reference_fingerprint"]


def test_statistics_files_round_trip(run, tmp_path, capsys):
    ckpt = run / "checkpoints" / "last.ckpt"
    _call(sm.main, capsys, f"ckpt={ckpt}", "n=100", f"out={tmp_path / 'gen.npz'}")
    real = ev.load_image_set(tmp_path / "gen.npz")
    x = torch.from_numpy(np.load(tmp_path / "gen.npz")["arr_0"]).permute(0, 3, 1, 2).float() / 127.5 - 1
    assert torch.equal(real, x)
    ref = tmp_path / "ref"
    ref.mkdir()
    digits = load_digits_images(32)[0][:60]
    for i, x in enumerate(digits):  # a reference folder: digits as PNG files
        Image.fromarray(((x[0] + 1) * 127.5).round().to(torch.uint8).numpy()).save(ref / f"r{i:03d}.png")
    stats = tmp_path / "ref_stats.npz"
    args = (f"images={tmp_path / 'gen.npz'}", "features=digits")
    rc, out, err = _call(ev.main, capsys, *args, f"reference={ref}", f"save_stats={stats}")
    assert rc == 0, err
    direct = json.loads(out)
    with np.load(stats) as f:
        assert sorted(f.files) == ["mu", "sigma"] and f["mu"].shape == (128,) and f["sigma"].dtype == np.float64
        mu, sigma = f["mu"], f["sigma"]
    f_ref = fid_mod.embed(load_feature_net("digits"), ev.load_image_set(ref)).double()
    assert np.array_equal(mu, f_ref.mean(0).numpy())  # the reference's own statistics, float64
    assert np.allclose(sigma, np.cov(f_ref.numpy(), rowvar=False), rtol=1e-10, atol=1e-12)

    rc, out, err = _call(ev.main, capsys, *args, f"reference_stats={stats}")
    assert rc == 0, err
    from_stats = json.loads(out)
    assert from_stats["fid"] == direct["fid"]  # the same mu and sigma: the same FID exactly
    # of the reference-based metrics only FID (class_modes needs the generated images alone), as the protocol says
    assert set(from_stats) == {"fid", "fid/digits/100", "class_modes", "class_kl", "protocol"}
    p = from_stats["protocol"]
    assert "FID is computed" in p["reference_note"] and p["reference_file"] == "ref_stats.npz"
    assert set(p["not_computed"]) >= {"kid", "prdc", "ndb", "diversity"}

    rc, _, err = _call(ev.main, capsys, *args, f"reference={ref}", f"save_stats={stats}")
    assert rc == 2 and "already exists" in err and err.count("\n") == 1  # never overwritten
    np.savez(tmp_path / "bad.npz", mean=mu)
    rc, _, err = _call(ev.main, capsys, *args, f"reference_stats={tmp_path / 'bad.npz'}")
    assert rc == 2 and "is not a pytorch-fid statistics file (it holds mean, not mu and sigma)" in err


@pytest.mark.parametrize(
    "args,message",
    [
        (["n=0"], "sample: n=0 is out of range; allowed [1, inf)"),
        (["n=10", "out={tmp}/x.png"], "has suffix '.png'; allowed a directory or a .npz file"),
        (["n=10", "out={existing}"], "already exists; allowed a new directory or .npz path"),
        (["n=10", "labels=3"], "labels=3 needs a class-conditional model"),
        (["n=10", "truncation=0.7"], "truncation=0.7 is not supported by this model's generator"),
        (["n=10", "truncation=-1"], "sample: truncation=-1 is out of range"),
        (["n=10", "device=tpu"], "sample: device='tpu' is not known; allowed auto, cpu, cuda"),
        (["n=10", "count=3"], "unknown key 'count'; allowed keys: ckpt, n, out"),
    ],
)
def test_sample_bad_input_one_line_nothing_written(args, message, run, tmp_path, capsys):
    existing = tmp_path / "old"
    existing.mkdir()
    (existing / "keep.png").write_bytes(b"mine")
    default_out = [] if any(a.startswith("out=") for a in args) else [f"out={tmp_path / 'new'}"]
    argv = [f"ckpt={run / 'checkpoints' / 'last.ckpt'}", *default_out,
            *(a.format(tmp=tmp_path, existing=existing) for a in args)]  # fmt: skip
    rc, out, err = _call(sm.main, capsys, *argv)
    assert rc == 2 and out == "" and err.count("\n") == 1 and message in err, err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cache", "old"] or not (tmp_path / "new").exists()
    assert [p.name for p in existing.iterdir()] == ["keep.png"] and (existing / "keep.png").read_bytes() == b"mine"


@pytest.mark.parametrize(
    "args,message",
    [
        (["images={gen}"], "images= needs a reference: data=<name>"),
        (["images={gen}", "reference={gen}"], "needs features=inception, digits, mnist or a TorchScript file"),
        (["images={gen}", "data=digits", "reference={gen}"], "give one reference"),
        (["images={gen}", "data.size=28"], "data.size=28 needs data=<name>"),
        (["images={tmp}/none"], "images='{tmp}/none' does not exist"),
        (["images={bad}", "data=digits"], "is not an .npz of images"),
        (["images={gen}", "data=digits", "names=[fid,fidd]"], "metrics.names: unknown metric 'fidd'; registered:"),
        (["images={gen}", "data=nope"], "Could not find 'data/nope'"),
        (["images={gen}", "data=digits", "resize=nearest"], "resize='nearest' is not known; allowed legacy_tf, clean"),
        (["images={gen}", "data=digits", "n_samples=10"], "n_samples= is for checkpoints"),
    ],
)
def test_evaluate_images_bad_input(args, message, tmp_path, capsys):
    gen = tmp_path / "gen.npz"
    np.savez(gen, arr_0=np.zeros((4, 8, 8, 3), np.uint8))
    (tmp_path / "bad.npz").write_bytes(b"junk")
    rc, out, err = _call(ev.main, capsys, *(a.format(gen=gen, tmp=tmp_path, bad=tmp_path / "bad.npz") for a in args))
    assert rc == 2 and out == "" and err.count("\n") == 1 and message.format(tmp=tmp_path) in err, err


def test_cli_sample_entry_points():
    for args in (("gan_lab.cli", "sample"), ("gan_lab.sample",)):
        c = run_cli(*args, "ckpt=/nonexistent/last.ckpt", "out=x.npz")
        assert c.returncode == 2 and c.stderr.strip().splitlines() == [
            "error: ckpt='/nonexistent/last.ckpt' does not exist; allowed a .ckpt file of a run directory"
        ]


def test_class_conditional_sampling_takes_labels(tmp_path, capsys):
    run = tmp_path / "cond"
    run.mkdir()
    finished_run(run, "model=gan_mlp", "data=digits", "model.conditional=concat", "trainer.max_steps=3",
                 "metrics.n_samples=20", "metrics.n_real=50")  # fmt: skip
    ckpt = run / "checkpoints" / "last.ckpt"
    rc, _, err = _call(sm.main, capsys, f"ckpt={ckpt}", "n=20", "labels=all", f"out={tmp_path / 'all.npz'}")
    assert rc == 0, err
    with np.load(tmp_path / "all.npz") as f:
        assert f["arr_0"].shape == (20, 32, 32, 1) and f["arr_1"].tolist() == [i // 2 for i in range(20)]
    rc, _, err = _call(sm.main, capsys, f"ckpt={ckpt}", "n=20", "labels=7", f"out={tmp_path / 'sevens.npz'}")
    assert rc == 0 and np.load(tmp_path / "sevens.npz")["arr_1"].tolist() == [7] * 20
    task, _ = sm.load_task(ckpt, "cpu")
    want = task.generate_samples(20, labels=torch.full((20,), 7), seed=12345)
    assert np.array_equal(np.load(tmp_path / "sevens.npz")["arr_0"], sm.to_uint8(want))  # the labels reached G
    rc, _, err = _call(sm.main, capsys, f"ckpt={ckpt}", "n=20", "labels=12", f"out={tmp_path / 'bad.npz'}")
    assert rc == 2 and err.count("\n") == 1 and "labels=12" in err and not (tmp_path / "bad.npz").exists()


def test_checkpoints_of_earlier_versions_map_renamed_task_arguments():
    from gan_lab.checkpoints import hyperparameters

    old = {"hyper_parameters": {"cond_shape": [1, 32, 32], "data_shape": [1, 32, 32]}}
    assert hyperparameters(old) == {"condition_shape": [1, 32, 32], "data_shape": [1, 32, 32]}
    assert hyperparameters({}) == {}
