"""gan_lab.reproduce: aggregation and tables on hand-made runs, a tiny real reproduction end to end, and
fast_dev_run of every experiment preset (lightning-hydra-template style)."""

from __future__ import annotations

import json
import math
import re

import pytest
from conftest import CONF, SHARED_DATA, compose_cfg, needs_shared, run_cli, train_run
from scipy import stats as st

from gan_lab import reproduce as rp
from gan_lab.errors import ConfigError


def _run(seed, status="completed", **metrics):
    return {"seed": seed, "status": status, "steps": 100, "wall_time_s": 10.0, **metrics}


def test_summary_and_table_from_hand_made_runs():
    entry = rp.ENTRIES["pacgan_ring"]
    runs = {
        "GAN": [
            _run(0, modes_captured=6.0, hq_fraction=0.5, reverse_kl=0.4),
            _run(1, modes_captured=8.0, hq_fraction=0.7, reverse_kl=0.2),
            {"seed": 2, "status": "diverged", "wall_time_s": 3.0, "modes_captured": 0.0},  # not averaged
        ],
        "PacGAN2": [_run(0, modes_captured=7.0, hq_fraction=0.25, reverse_kl=float("nan"))],
    }
    s = rp.summarize_entry(entry, runs, seeds=[0, 1, 2], threads=1, steps_scale=1.0, overrides=[])
    gan, pac = s["models"]
    m = gan["measured"]["modes_captured"]
    assert m["n"] == 2 and m["mean"] == 7.0 and m["std"] == pytest.approx(math.sqrt(2))
    assert m["ci95"] == pytest.approx(st.t.ppf(0.975, 1) * math.sqrt(2) / math.sqrt(2))
    assert (gan["completed"], gan["diverged"], gan["failed"]) == (2, 1, 0)
    assert gan["wall_time_s"] == 23.0 and gan["steps"] == [100]
    assert gan["paper"]["modes_captured"] == [6.3, 0.5]
    assert pac["measured"]["reverse_kl"]["n"] == 0  # a non-finite value is not a measurement

    text = rp.render_entry(s)
    rows = {line.split(" | ")[0].strip("| "): line for line in text.splitlines() if line.startswith("| ")}
    cells = [c.strip() for c in rows["GAN"].strip("|").split("|")]
    # model, preset, seeds done, steps, then paper/measured per metric, then wall time
    assert cells[:4] == ["GAN", "`pacgan_ring_gan`", "2/3 (1 diverged, 0 failed)", "100"]
    assert cells[4:10] == ["6.3 ± 0.5", "7.0 ± 1.4", "98.2 ± 0.2", "60.0 ± 14.1", "0.45 ± 0.09", "0.30 ± 0.14"]
    assert cells[10] == "23"
    pac_cells = [c.strip() for c in rows["PacGAN2"].strip("|").split("|")]
    assert pac_cells[4:10] == ["7.9 ± 0.1", "7.0", "95.6 ± 2.0", "25.0", "0.07 ± 0.03", "n/a"]


def test_missing_paper_values_are_na_and_models_without_runs_show_na():
    entry = rp.ENTRIES["sr_set5"]
    s = rp.summarize_entry(entry, {"bicubic": [_run(None, set5_psnr_y=28.4291, set5_ssim_y=0.81)]}, seeds=[0])
    text = rp.render_entry({**s, "threads": 1})
    bicubic = next(line for line in text.splitlines() if line.startswith("| bicubic"))
    cells = [c.strip() for c in bicubic.strip("|").split("|")]
    assert cells[4:8] == ["28.43", "28.43", "n/a", "0.8100"]  # Set5 PSNR paper/measured, SSIM paper n/a/measured
    srresnet = next(line for line in text.splitlines() if line.startswith("| SRResNet"))
    assert "0/0" in srresnet and srresnet.count("n/a") == 4  # measured cells only


def test_tiny_reproduction_end_to_end_then_reuse_then_refuse(tmp_path, monkeypatch, capsys):
    out = tmp_path / "rep"
    args = dict(seeds=1, steps_scale=0.005, out=out, overrides=["metrics.n_samples=300"], threads=1)
    (summary,) = rp.reproduce("pacgan_ring", **args)
    for preset, label in (("pacgan_ring_gan", "GAN"), ("pacgan_ring_pac2", "PacGAN2")):
        run = json.loads((out / "pacgan_ring" / preset / "seed0" / "metrics.json").read_text())
        assert run["status"] == "completed" and run["steps"] == 15  # 3000 x 0.005
        row = next(r for r in summary["models"] if r["label"] == label)
        assert row["measured"]["modes_captured"]["values"] == [run["modes_captured"]]
        assert row["runs"][0]["dir"] == str(out / "pacgan_ring" / preset / "seed0")
    table = (out / "pacgan_ring" / "reproduction.md").read_text()
    assert "6.3 ± 0.5" in table and "7.9 ± 0.1" in table and "`pacgan_ring_pac2`" in table
    assert json.loads((out / "reproduction.json").read_text())[0]["entry"] == "pacgan_ring"
    assert "pacgan_ring" in (out / "reproduction.md").read_text()
    assert "| GAN |" in capsys.readouterr().out

    # the run directories work with gan-lab compare: two groups (GAN, PacGAN2), seeds pooled
    from gan_lab.compare import compare

    rows = compare(out / "pacgan_ring", "modes_captured")
    assert {r.group for r in rows} == {"experiment=pacgan_ring_gan", "experiment=pacgan_ring_pac2"}

    import gan_lab.train

    calls, train = [], gan_lab.train.train

    def counting(cfg, run_dir):
        calls.append((run_dir, cfg.ckpt_path))
        return train(cfg, run_dir)

    monkeypatch.setattr(gan_lab.train, "train", counting)
    (again,) = rp.reproduce("pacgan_ring", **args)  # same overrides: reused, not trained, same numbers
    assert calls == [] and again["models"][0]["measured"] == summary["models"][0]["measured"]

    # a job interrupted after its last checkpoint (no metrics.json) resumes from it; the finished one is reused
    interrupted = out / "pacgan_ring" / "pacgan_ring_pac2" / "seed0"
    (interrupted / "metrics.json").unlink()
    rp.reproduce("pacgan_ring", **args)
    assert calls == [(interrupted, "last")]
    with pytest.raises(ConfigError, match="other overrides.*never overwritten"):  # before any training
        rp.reproduce("pacgan_ring", **{**args, "steps_scale": 0.01})
    assert len(calls) == 1
    assert json.loads((interrupted / "metrics.json").read_text())["steps"] == 15


@pytest.mark.parametrize(
    "metrics,ckpt,expected",
    [
        (None, False, "train"),  # no directory yet
        ({"status": "completed", "steps": 100}, False, "reuse"),
        ({"status": "diverged", "steps": 40}, False, "reuse"),  # a finished outcome too
        ({"status": "completed", "steps": 60}, True, "resume"),  # Ctrl+C: Lightning exits, steps fall short
        ({"status": "failed", "steps": 60}, True, "resume"),
        ({}, True, "resume"),  # killed: no metrics.json
        ({"status": "failed", "steps": 0}, False, "holds an unfinished run (status failed, 0 of 100 steps)"),
    ],
)
def test_plan_job(metrics, ckpt, expected, tmp_path):
    import yaml

    run, ov = tmp_path / "job", ["experiment=pacgan_ring_gan", "seed=0"]
    if metrics is not None:
        (run / ".hydra").mkdir(parents=True)
        (run / ".hydra" / "overrides.yaml").write_text(yaml.safe_dump(ov))
        if metrics:
            (run / "metrics.json").write_text(json.dumps(metrics))
        if ckpt:
            (run / "checkpoints").mkdir()
            (run / "checkpoints" / "last.ckpt").write_bytes(b"")
    if expected in ("train", "reuse", "resume"):
        assert rp.plan_job(run, ov, 100) == expected
    else:
        with pytest.raises(ConfigError, match=re.escape(expected)):
            rp.plan_job(run, ov, 100)
    if metrics is not None:
        with pytest.raises(ConfigError, match="other overrides"):
            rp.plan_job(run, ["experiment=pacgan_ring_gan", "seed=1"], 100)


def test_sr_entry_is_skipped_without_benchmark_data(tmp_path):
    (s,) = rp.reproduce("sr_set5", out=tmp_path, sr_root=tmp_path / "nowhere")
    assert "no benchmark folder" in s["skipped"]
    assert "Skipped: no benchmark folder" in (tmp_path / "sr_set5" / "reproduction.md").read_text()


@needs_shared
def test_sr_entry_with_a_checkpoint(tmp_path):
    """Bicubic on the real Set5/Set14 gives the published PSNR; a (barely trained) SRResNet checkpoint is scored."""
    run = tmp_path / "sr"
    train_run(run, "model=srresnet", "data=sr_folder", "data.root=skimage", "data.n_patches=32", "trainer.max_steps=2")
    (s,) = rp.reproduce(
        "sr_set5", out=tmp_path / "rep", sr_ckpt=str(run / "checkpoints" / "last.ckpt"), sr_root=SHARED_DATA / "sr"
    )
    bicubic, srresnet = s["models"]
    assert bicubic["measured"]["set5_psnr_y"]["mean"] == pytest.approx(28.43, abs=0.01)
    assert bicubic["measured"]["set14_psnr_y"]["mean"] == pytest.approx(25.99, abs=0.01)
    assert srresnet["completed"] == 1 and math.isfinite(srresnet["measured"]["set14_ssim_y"]["mean"])


@pytest.mark.parametrize(
    "argv,expected",
    [
        (["nope"], "'nope' is not an entry; allowed pacgan_ring, pacgan_grid, stacked_digits, sr_set5, all"),
        (["pacgan_ring", "--seeds", "0"], "--seeds=0 is out of range; allowed [1, 1000]"),
        (["pacgan_ring", "--steps-scale", "0"], "--steps-scale=0.0 is out of range; allowed (0.0, 100.0]"),
        (["pacgan_ring", "--threads", "0"], "--threads=0 must be a positive integer"),
        (["sr_set5", "--sr-ckpt", "missing.ckpt"], "--sr-ckpt='missing.ckpt' does not exist"),
        (["pacgan_ring", "model.nope=1"], "model.nope"),
    ],
)
def test_bad_arguments_give_one_line(argv, expected, tmp_path, capsys):
    assert rp.main([*argv, "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("gan-lab reproduce: error: ") and expected in err and "\n" not in err
    assert not (tmp_path / "o").exists()  # nothing was trained or written


def test_cli_subcommand():
    r = run_cli("gan_lab.cli", "reproduce", "nope")
    assert r.returncode == 2 and "'nope' is not an entry" in r.stderr


def _experiments():
    return sorted(p.stem for p in (CONF / "experiment").glob("*.yaml"))


@pytest.mark.parametrize("name", _experiments())
def test_every_experiment_preset_runs_fast_dev_run(name, tmp_path):
    data = compose_cfg(f"experiment={name}").data
    root = data.get("root")
    if root not in (None, "skimage") and not (CONF.parent / str(root)).exists():
        pytest.skip(f"experiment={name} reads data.root={root}, which is absent here")
    # one batch is trained: make only a few hundred examples (SR crops, stacked digits, 2-D points)
    smaller = [f"data.{k}={v}" for k, v in (("n_patches", 32), ("n_samples", 512)) if k in data]
    m = train_run(tmp_path, f"experiment={name}", "+trainer.fast_dev_run=true", *smaller)
    assert m["status"] == "completed" and "g_loss" in m
