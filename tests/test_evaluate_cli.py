"""`python -m gan_lab.evaluate ckpt=...`: the metrics of a checkpoint, recomputed; reference-statistics cache."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import FAST, compose_cfg, run_cli

from gan_lab import evaluate as ev
from gan_lab.metrics import fid as fid_mod

# metrics only at the end, on few samples: the training run's own numbers to compare with
END_METRICS = [o for o in FAST if not o.startswith("callbacks.metrics")] + [
    "metrics.every_n_steps=0", "metrics.n_samples=200", "metrics.n_real=300", "callbacks.samples=null", "threads=1",
]  # fmt: skip


def finished_run(run_dir: Path, *overrides: str) -> dict:
    """A finished run as `python -m gan_lab.train` leaves it: resolved .hydra/config.yaml, checkpoints/last.ckpt."""
    from omegaconf import OmegaConf

    from gan_lab.train import train

    cfg = compose_cfg(*END_METRICS, *overrides)
    (run_dir / ".hydra").mkdir(parents=True)
    OmegaConf.save(cfg, run_dir / ".hydra" / "config.yaml", resolve=True)
    metrics = train(cfg, run_dir)
    assert metrics["status"] == "completed"
    return metrics


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("GAN_LAB_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(fid_mod, "_MEMO", type(fid_mod._MEMO)())


@pytest.fixture(scope="module")
def gan_digits(tmp_path_factory):
    run = tmp_path_factory.mktemp("gan_digits")
    return run, finished_run(run, "model=gan_mlp", "data=digits", "trainer.max_steps=5")


def _main(capsys, *args: str) -> tuple[int, str, str]:
    rc = ev.main(list(args))
    out, err = capsys.readouterr()
    return rc, out, err


def test_recomputes_the_runs_metrics_and_caches_the_reference(gan_digits, capsys, monkeypatch, tmp_path):
    run, trained = gan_digits
    ckpt = run / "checkpoints" / "last.ckpt"
    calls = []
    embed = fid_mod.embed
    monkeypatch.setattr(fid_mod, "embed", lambda *a, **k: calls.append(len(a[1])) or embed(*a, **k))

    rc, out, err = _main(capsys, f"ckpt={ckpt}")  # the run's protocol: 200 samples, 300 reference images
    assert rc == 0, err
    first = run / "eval" / "last_n200.json"
    result = json.loads(first.read_text())
    assert json.loads(out)["fid"] == result["fid"] and f"wrote {first}" in err
    # the same generator, sample stream and reference as the training run's final evaluation: same numbers
    for key in ("fid", "kid", "class_modes", "precision", "diversity", "fid/digits/200", "kid/digits/200"):
        assert result[key] == pytest.approx(trained[key], rel=1e-9, abs=1e-12), key
    assert result["steps"] == 5 and result["fid/digits/200"] == result["fid"]
    p = result["protocol"]
    assert p["feature_net"] == "digits" and p["n_generated"] == 200 and p["n_reference"] == 300
    assert p["step"] == 5 and p["checkpoint"] == str(ckpt) and p["reference_cache"] == "computed"
    assert trained["protocol"]["feature_net_version"] == p["feature_net_version"]
    header = (run / "metrics.csv").read_text().splitlines()[0].split(",")
    assert {"metrics/fid", "metrics/fid/digits/200", "metrics/kid/digits/200"} <= set(header)  # the run's loggers
    assert calls == [300]

    fid_mod._MEMO.clear()  # a new process: only the disk cache is left
    rc, _, _ = _main(capsys, f"ckpt={ckpt}", "threads=1")
    second = json.loads((run / "eval" / "last_n200_2.json").read_text())  # a new name, the first file is kept
    assert rc == 0 and json.loads(first.read_text()) == result
    assert second["protocol"]["reference_cache"] == "disk" and calls == [300]
    assert second["fid"] == result["fid"]

    rc, _, _ = _main(capsys, f"ckpt={ckpt}", "n_real=400", "n_samples=100", "features=digits")
    third = json.loads((run / "eval" / "last_n100.json").read_text())
    assert rc == 0 and third["protocol"]["reference_cache"] == "computed" and calls == [300, 400]
    assert third["protocol"]["n_reference"] == 400 and "fid/digits/100" in third
    assert len(list((tmp_path / "cache" / "real_stats").glob("*.pt"))) == 2  # $GAN_LAB_CACHE/real_stats


def test_out_path_is_never_overwritten_silently(gan_digits, capsys, tmp_path):
    run, _ = gan_digits
    out = tmp_path / "mine.json"
    out.write_text("{}")
    rc, _, err = _main(capsys, f"ckpt={run / 'checkpoints' / 'last.ckpt'}", f"out={out}", "n_samples=20")
    assert rc == 2 and err.count("\n") == 1 and "already exists" in err and "overwrite=true" in err
    assert out.read_text() == "{}"
    rc, _, err = _main(capsys, f"ckpt={run / 'checkpoints' / 'last.ckpt'}", f"out={out}", "n_samples=20",
                       "overwrite=true")  # fmt: skip
    assert rc == 0, err
    assert json.loads(out.read_text())["protocol"]["n_generated"] == 20


@pytest.mark.parametrize(
    "args,message",
    [
        ([], "ckpt=<path> is required"),
        (["ckpt={ckpt}", "n_samples=1"], "n_samples=1 is out of range; allowed [2, inf)"),
        (["ckpt={ckpt}", "n_samples=many"], "n_samples='many' must be an integer"),
        (["ckpt={ckpt}", "n_real=1"], "n_real=1 is out of range"),
        (["ckpt={ckpt}", "steps=3"], "unknown key 'steps'; allowed keys: ckpt, images, data, data.<key>, reference"),
        (["ckpt={ckpt}", "features=vgg"], "features='vgg' is not a feature net; allowed digits, mnist, inception"),
        (["ckpt={ckpt}", "device=tpu"], "device='tpu' is not known; allowed auto, cpu, cuda"),
        (["ckpt={ckpt}", "overwrite=maybe"], "overwrite='maybe' must be a boolean"),
        (["ckpt={ckpt}", "n_samples"], "argument 'n_samples' is not key=value"),
        (["ckpt={ckpt}", "ckpt={ckpt}"], "ckpt is given twice"),
        (["ckpt={missing}"], "does not exist; allowed a .ckpt file"),
        (["ckpt={loose}"], "has no run config at"),
        (["ckpt={garbage}"], "is not a readable gan_lab checkpoint"),
    ],
)
def test_bad_input_one_line_exit_2_before_any_work(args, message, gan_digits, tmp_path, capsys, monkeypatch):
    run, _ = gan_digits
    loose = tmp_path / "elsewhere" / "last.ckpt"
    loose.parent.mkdir()
    loose.write_bytes((run / "checkpoints" / "last.ckpt").read_bytes())
    garbage = run / "checkpoints" / "garbage.ckpt"
    garbage.write_bytes(b"not a checkpoint")
    paths = {"ckpt": run / "checkpoints" / "last.ckpt", "missing": run / "nope.ckpt", "loose": loose,
             "garbage": garbage}  # fmt: skip
    monkeypatch.setattr(ev, "load_run", lambda *a, **k: pytest.fail("work started despite bad input"))
    rc, out, err = _main(capsys, *(a.format(**paths) for a in args))
    assert rc == 2 and out == ""
    assert err.startswith("error: ") and err.count("\n") == 1 and message in err, err


def test_toy2d_autoencoder_and_paired_tasks(tmp_path, capsys):
    """Every task kind: 2-D mode metrics; AE held-out reconstruction; pix2pix paired metrics as `val/...`,
    equal to what the training run wrote (metrics.json drops the `val/` prefix)."""
    cases = {
        "toy": (["model=gan_mlp", "data=toy2d_ring", "data.n_samples=2000", "trainer.max_steps=3"], "modes_captured"),
        "ae": (["model=ae", "model.arch=mlp", "trainer.max_steps=3"], "val/recon_mse"),
        "pix2pix": (["model=pix2pix", "data=edges2digits", "trainer.max_steps=2"], "val/psnr"),
    }
    for name, (overrides, key) in cases.items():
        run = tmp_path / name
        trained = finished_run(run, *overrides)
        rc, _, err = _main(capsys, f"ckpt={run / 'checkpoints' / 'last.ckpt'}", "n_samples=50")
        assert rc == 0, (name, err)
        result = json.loads((run / "eval" / "last_n50.json").read_text())
        assert key in result, (name, sorted(result))
        if key.startswith("val/"):
            assert result[key] == pytest.approx(trained[key.removeprefix("val/")], rel=1e-5), name
            assert result["protocol"]["held_out_split"] == "val"
    assert result["val/l1"] >= 0 and "val/ssim" in result  # pix2pix
    toy = json.loads((tmp_path / "toy" / "eval" / "last_n50.json").read_text())
    assert toy["protocol"]["metric_set"] == "toy2d" and "fid" not in toy and "hq_fraction" in toy


def test_cli_entry_points_bad_input():
    """`gan-lab evaluate` and `python -m gan_lab.evaluate`: one line, exit code 2, before torch is imported."""
    for args in (("gan_lab.cli", "evaluate"), ("gan_lab.evaluate",)):
        c = run_cli(*args, "ckpt=/nonexistent/last.ckpt")
        assert c.returncode == 2 and c.stderr.strip().splitlines() == [
            "error: ckpt='/nonexistent/last.ckpt' does not exist; allowed a .ckpt file of a run directory"
        ]
