"""gan_lab.reproduce, gan_lab.stats and gan_lab.jobs: the paper tables, statistics on hand-made runs, a tiny real
reproduction end to end (in-process and as parallel jobs), and fast_dev_run of every experiment preset."""

from __future__ import annotations

import json
import math
import os
import re

import numpy as np
import pytest
import torch
from conftest import CONF, SHARED_DATA, compose_cfg, needs_shared, run_cli, train_run
from omegaconf import OmegaConf
from scipy import stats as st

from gan_lab import reproduce as rp
from gan_lab import stats
from gan_lab.errors import ConfigError


def _run(seed, status="completed", **metrics):
    return {"seed": seed, "status": status, "steps": 100, "wall_time_s": 10.0, **metrics}


# ---- statistics --------------------------------------------------------------------------------------


def test_summary_standard_error_and_ci():
    s = stats.summary([1.0, 2.0, 3.0, None, float("nan")])
    assert (s["n"], s["mean"], s["std"]) == (3, 2.0, 1.0)
    assert s["se"] == pytest.approx(1 / math.sqrt(3))
    assert s["ci95"] == pytest.approx(st.t.ppf(0.975, 2) / math.sqrt(3))
    one = stats.summary([5.0])
    assert one["mean"] == 5.0 and math.isnan(one["se"]) and math.isnan(one["ci95"])


@pytest.mark.parametrize("alternative", ["greater", "less"])
def test_one_sided_welch_matches_scipy(alternative):
    a, b = [8.0, 7.0, 8.0, 8.0, 7.5], [6.0, 7.0, 5.0, 6.5]
    r = stats.welch_one_sided(a, b, alternative)
    ref = st.ttest_ind(a, b, equal_var=False, alternative=alternative)
    assert r["p"] == pytest.approx(ref.pvalue) and r["t"] == pytest.approx(ref.statistic)
    assert (r["p"] < 0.05) == (alternative == "greater")
    va, vb = st.tvar(a) / 5, st.tvar(b) / 4  # Welch-Satterthwaite degrees of freedom by hand
    assert r["df"] == pytest.approx((va + vb) ** 2 / (va**2 / 4 + vb**2 / 3))


def test_welch_edge_cases_and_paper_statistics():
    assert math.isnan(stats.welch_one_sided([1.0], [0.0, 1.0], "greater")["p"])
    assert stats.welch_one_sided([8.0, 8.0], [6.0, 6.0], "greater")["p"] == 0.0  # constant, in the claimed order
    assert stats.welch_one_sided([8.0, 8.0], [6.0, 6.0], "less")["p"] == 1.0
    assert stats.to_se(0.5, "se", 10) == 0.5 and stats.to_se(2.0, "std", 4) == 1.0
    assert math.isnan(stats.to_se(None, "se", 10))
    p = stats.welch_from_stats(7.9, 0.1, 10, 6.3, 0.5, 10, "greater")
    ref = st.ttest_ind_from_stats(7.9, 0.1 * math.sqrt(10), 10, 6.3, 0.5 * math.sqrt(10), 10, False, "greater")
    assert p == pytest.approx(ref.pvalue) and p < 0.01
    # 7.0 ± 0.2 against the paper's 6.3 ± 0.5: 0.7 / sqrt(0.04 + 0.25) = 1.30 combined standard errors
    assert stats.combined_se_distance(7.0, 0.2, 6.3, 0.5) == pytest.approx(0.7 / math.sqrt(0.29))
    assert stats.combined_se_distance(1000.0, 0.0, 1000.0, 0.0) == 0.0
    assert stats.combined_se_distance(999.0, 0.0, 1000.0, 0.0) == math.inf


# ---- the tables ------------------------------------------------------------------------------------------


def test_every_table_loads_with_existing_presets_and_the_published_values():
    names = rp.entry_names()
    assert {"pacgan_ring", "pacgan_grid", "unrolled_stacked", "stacked_digits", "sr_set5"} <= set(names)
    for name in names:
        e = rp.load_entry(name)
        for m in e.models:
            assert m.experiment is None or (CONF / "experiment" / f"{m.experiment}.yaml").is_file(), m
    ring = rp.load_entry("pacgan_ring")
    assert (ring.statistic, ring.paper_runs, ring.seeds) == ("se", 10, 10)
    assert [m.label for m in ring.models if m.default] == ["GAN", "PacGAN2"]
    assert ring.models[2].paper["hq_fraction"] == [97.7, 0.3]  # PacGAN3
    unrolled = rp.load_entry("unrolled_stacked")
    assert unrolled.paper_runs == 50
    by = {m.label: m for m in unrolled.models}
    assert by["unrolled 10, D 1/2"].paper == {"stacked_modes": [817.4, 37.91], "stacked_kl": [1.43, 0.12]}
    assert "trick.unrolled.steps=10" in by["unrolled 10, D 1/2"].overrides
    assert [m.label for m in unrolled.models if m.default] == [
        "DCGAN, D 1/4",
        "unrolled 5, D 1/4",
        "unrolled 10, D 1/4",
        "DCGAN, D 1/2",
        "unrolled 5, D 1/2",
        "unrolled 10, D 1/2",
    ]
    pac = {m.label: m for m in rp.load_entry("stacked_digits").models}
    assert pac["PacDCGAN2"].paper["stacked_kl"] == [0.06, 0.003]


def test_a_malformed_table_is_one_clear_error(tmp_path, monkeypatch):
    monkeypatch.setattr(rp, "ENTRY_DIR", tmp_path)
    (tmp_path / "bad.yaml").write_text("title: x\nsource: y\nmetrics: []\nmodels: [{experiment: a}]\n")
    with pytest.raises(ConfigError, match=r"reproduce/bad.yaml is malformed: KeyError: 'label'"):
        rp.load_entry("bad")
    (tmp_path / "bad.yaml").write_text(
        "title: x\nsource: y\nstatistic: sd\nmetrics: [{key: m, label: m}]\nmodels: [{label: A, experiment: a}]\n"
    )
    with pytest.raises(ConfigError, match="statistic='sd'; allowed se, std"):
        rp.load_entry("bad")


def test_summary_table_claims_from_hand_made_runs():
    entry = rp.load_entry("pacgan_ring")
    gan = [
        _run(s, modes_captured=m, hq_fraction=h, reverse_kl=k)
        for s, (m, h, k) in enumerate([(6.0, 0.97, 0.5), (7.0, 0.99, 0.4), (6.0, 0.98, 0.45)])
    ]
    gan.append({"seed": 3, "status": "diverged", "wall_time_s": 3.0, "modes_captured": 0.0})  # never averaged
    pac = [_run(s, modes_captured=m, hq_fraction=0.5, reverse_kl=float("nan")) for s, m in enumerate([8.0, 8.0, 7.0])]
    s = rp.summarize_entry(entry, {"GAN": gan, "PacGAN2": pac}, ["GAN", "PacGAN2"], seeds=[0, 1, 2, 3])
    g, p = s["models"][0], s["models"][1]
    m = g["measured"]["modes_captured"]
    assert (m["n"], m["mean"]) == (3, pytest.approx(19 / 3)) and m["se"] == pytest.approx(st.sem([6.0, 7.0, 6.0]))
    assert g["measured"]["hq_fraction"]["mean"] == pytest.approx(98.0)  # shown units: % (scale 100)
    assert (g["completed"], g["diverged"], g["failed"], g["wall_time_s"]) == (3, 1, 0, 33.0)
    # a resumed job counts all its processes; a seed-parallel run's members count its time once
    resumed = [{**_run(0), "total_wall_time_s": 25.0}, _run(1)]
    members = [{**_run(k), "seed_parallel": {"members": 3, "member": k}} for k in range(3)]
    t = rp.summarize_entry(entry, {"GAN": resumed, "PacGAN2": members}, ["GAN", "PacGAN2"], seeds=[0, 1, 2])
    assert [row["wall_time_s"] for row in t["models"][:2]] == [35.0, 10.0]
    assert g["paper"]["modes_captured"] == {"mean": 6.3, "err": 0.5, "se": 0.5}
    d = abs(19 / 3 - 6.3) / math.sqrt(st.sem([6.0, 7.0, 6.0]) ** 2 + 0.25)
    assert g["check"]["modes_captured"] == {"distance": pytest.approx(d), "within": True}
    assert p["check"]["hq_fraction"]["within"] is False  # 50% vs 95.6 ± 2.0
    assert p["measured"]["reverse_kl"]["n"] == 0 and p["check"]["reverse_kl"]["within"] is None

    modes_claim, kl_claim = s["claims"]
    ref = st.ttest_ind([8.0, 8.0, 7.0], [6.0, 7.0, 6.0], equal_var=False, alternative="greater")
    assert modes_claim["p"] == pytest.approx(ref.pvalue) and modes_claim["alternative"] == "mean(PacGAN2) > mean(GAN)"
    assert modes_claim["verdict"] == ("supported (p < 0.05)" if ref.pvalue < 0.05 else "not supported at 0.05")
    assert modes_claim["paper_p"] == pytest.approx(stats.welch_from_stats(7.9, 0.1, 10, 6.3, 0.5, 10, "greater"))
    assert kl_claim["verdict"].startswith("not testable")  # PacGAN2's KLs were not finite

    text = rp.render_entry(s)
    rows = {line.split(" | ")[0].strip("| "): line for line in text.splitlines() if line.startswith("| ")}
    cells = [c.strip() for c in rows["GAN"].strip("|").split("|")]
    assert cells[:4] == ["GAN", "`pacgan_ring_gan`", "3/4 (1 diverged, 0 failed)", "100"]
    se = st.sem([6.0, 7.0, 6.0])
    assert cells[4:6] == ["6.3 ± 0.5", f"{19 / 3:.1f} ± {se:.1f} ✓"]
    assert cells[6:8] == ["98.2 ± 0.2", f"98.0 ± {st.sem([97, 99, 98]):.1f} ✓"]
    assert "| PacGAN3 | `pacgan_ring_pac2 trick.pacgan.m=3 data.batch_size=300` | not run |" in text
    assert "| PacGAN2 captures more modes than GAN | mean(PacGAN2) > mean(GAN) | 3 vs 3 |" in text
    assert "mean ± standard error over 10 trials" in text and "gan_lab 0.1.0" in text


def test_a_table_of_figures_has_no_paper_columns(tmp_path):
    """A paper that shows an experiment as figures only (Unrolled GAN's ring): the measured seeds and the claims,
    without empty paper columns, paper p-values or a "paper vs" figure."""
    entry = rp.load_entry("unrolled_ring")
    assert not entry.has_paper and rp.load_entry("pacgan_ring").has_paper and len(entry.claims) == 3
    runs = {
        "GAN": [_run(s, modes_captured=m, hq_fraction=0.1, reverse_kl=2.0) for s, m in enumerate([1.0, 1.0, 2.0])],
        "unrolled 5": [_run(s, modes_captured=8.0, hq_fraction=0.8, reverse_kl=0.02) for s in range(3)],
    }
    s = rp.summarize_entry(entry, runs, ["GAN", "unrolled 5"], seeds=[0, 1, 2])
    text = rp.render_entry(s)
    assert "| model | experiment | seeds done | steps | modes (of 8) | high-quality samples % | reverse KL |" in text
    assert ": paper" not in text and "paper's own p" not in text and "trials as published" not in text
    assert "| GAN | `unrolled_ring` | 3/3 | 100 | 1.3 ± 0.3 | 10.0 ± 0.0 | 2.00 ± 0.00 | 30 |" in text
    assert "| unrolled 5, first order |" in text and "not run" in text
    modes = next(c for c in s["claims"] if c["better"] == "unrolled 5" and c["metric"] == "modes_captured")
    assert modes["verdict"].startswith("supported")
    modes["p"] = 3e-7  # a p that rounds to 0 at 4 decimals reads "< 0.0001", not "0.0000"
    claim_row = next(line for line in rp.render_entry(s).splitlines() if line.startswith(f"| {modes['claim']} |"))
    assert "| < 0.0001 | supported" in claim_row
    assert "The source publishes no values for this experiment" in text
    assert rp.plot_entry(s, tmp_path / "r.png").is_file()


def test_docs_are_written_between_the_markers(tmp_path):
    entry = rp.load_entry("pacgan_ring")
    s = rp.summarize_entry(entry, {"GAN": [_run(0, modes_captured=6.0, hq_fraction=0.9, reverse_kl=0.4)]}, seeds=[0])
    doc = tmp_path / "reproduction.md"
    doc.write_text(f"# Reproduction\n\nintro\n\n{rp.MARKERS[0]}\nold table\n{rp.MARKERS[1]}\n\nafter\n")
    rp.write_docs(doc, [s])
    text = doc.read_text()
    assert text.startswith("# Reproduction\n\nintro\n\n") and text.endswith(f"{rp.MARKERS[1]}\n\nafter\n")
    assert "old table" not in text and "| GAN | `pacgan_ring_gan` | 1/1 | 100 | 6.3 ± 0.5 | 6.0 |" in text
    grid = rp.summarize_entry(
        rp.load_entry("pacgan_grid"), {"GAN": [_run(0, modes_captured=20.0, hq_fraction=0.5, reverse_kl=0.3)]}, [0]
    )
    rp.write_docs(doc, [grid])  # another table, tabulated from another --out: the ring's section stays
    text = doc.read_text()
    assert text.index("### `pacgan_grid`") < text.index("### `pacgan_ring`") and text.count("### `") == 2
    assert "| GAN | `pacgan_ring_gan` | 1/1 | 100 | 6.3 ± 0.5 | 6.0 |" in text
    assert "| GAN | `pacgan_grid_gan` | 1/1 | 100 | 17.3 ± 0.8 | 20.0 |" in text
    s2 = rp.summarize_entry(entry, {"GAN": [_run(0, modes_captured=7.0, hq_fraction=0.9, reverse_kl=0.4)]}, [0])
    rp.write_docs(doc, [s2])  # the ring again: replaced, not added
    text = doc.read_text()
    assert text.count("### `pacgan_ring`") == 1 and "| 6.3 ± 0.5 | 7.0 |" in text and "| 6.3 ± 0.5 | 6.0 |" not in text
    assert text.endswith(f"{rp.MARKERS[1]}\n\nafter\n") and "### `pacgan_grid`" in text
    doc.write_text("no markers")
    with pytest.raises(ConfigError, match="no '<!-- reproduction:begin -->'"):
        rp.write_docs(doc, [s])


# ---- end to end ------------------------------------------------------------------------------------------


def test_tiny_reproduction_end_to_end_then_reuse_resume_refuse(tmp_path, monkeypatch, capsys):
    out = tmp_path / "rep"
    args = dict(seeds=1, steps_scale=0.002, out=out, overrides=["metrics.n_samples=300"], threads=1, jobs=1)
    (summary,) = rp.reproduce("pacgan_ring", **args)
    for slug, label in (("gan", "GAN"), ("pacgan2", "PacGAN2")):
        run = json.loads((out / "pacgan_ring" / slug / "seed0" / "metrics.json").read_text())
        assert run["status"] == "completed" and run["steps"] == 12  # 6000 x 0.002
        row = next(r for r in summary["models"] if r["label"] == label)
        assert row["measured"]["modes_captured"]["values"] == [run["modes_captured"]]
        assert row["runs"][0]["dir"] == f"pacgan_ring/{slug}/seed0"  # relative to --out: no machine's paths
        recorded = row["runs"][0]["overrides"]  # the job's overrides, to check runs merged with --from
        assert recorded[0] == "experiment=" + row["experiment"] and "seed=0" in recorded
    assert (out / "pacgan_ring" / "reproduction.png").stat().st_size > 0
    table = (out / "pacgan_ring" / "reproduction.md").read_text()
    assert "6.3 ± 0.5" in table and "7.9 ± 0.1" in table and "`pacgan_ring_pac2`" in table
    saved = json.loads((out / "reproduction.json").read_text())[0]
    assert saved["entry"] == "pacgan_ring" and saved["machine"]["cores"] >= 1 and saved["jobs"] == 1
    assert "| GAN |" in capsys.readouterr().out

    from gan_lab.compare import compare  # the job directories work with gan-lab compare too

    rows = compare(out / "pacgan_ring", "modes_captured")
    assert {r.group for r in rows} == {"experiment=pacgan_ring_gan", "experiment=pacgan_ring_pac2"}

    # a job killed at step 4 of 12 (its last.ckpt, no metrics.json) resumes; the finished one is reused
    import shutil

    import yaml

    interrupted = out / "pacgan_ring" / "pacgan2" / "seed0"
    recorded = yaml.safe_load((interrupted / ".hydra" / "overrides.yaml").read_text())
    shutil.rmtree(interrupted)
    shorter = [o for o in recorded if not o.startswith("trainer.max_steps=")] + ["trainer.max_steps=4"]
    train_run(interrupted, *shorter, fast=False)
    (interrupted / ".hydra").mkdir(exist_ok=True)
    (interrupted / ".hydra" / "overrides.yaml").write_text(yaml.safe_dump(recorded))
    (interrupted / "metrics.json").unlink()

    import gan_lab.train

    calls, train = [], gan_lab.train.train

    def counting(cfg, run_dir):
        calls.append((run_dir, cfg.ckpt_path))
        return train(cfg, run_dir)

    monkeypatch.setattr(gan_lab.train, "train", counting)
    (tabulated,) = rp.reproduce("pacgan_ring", **args, train=False)  # --no-train: only finished jobs count
    assert calls == [] and tabulated["models"][0]["measured"] == summary["models"][0]["measured"]
    assert tabulated["models"][1]["completed"] == 0
    rp.reproduce("pacgan_ring", **args)  # GAN: same overrides, reused; PacGAN2 resumes from step 4
    assert calls == [(interrupted, "last")]
    assert json.loads((interrupted / "metrics.json").read_text())["steps"] == 12
    with pytest.raises(ConfigError, match="other overrides.*never overwritten"):  # before any training
        rp.reproduce("pacgan_ring", **{**args, "steps_scale": 0.005})
    assert len(calls) == 1


def test_parallel_jobs_run_as_child_processes(tmp_path):
    out = tmp_path / "par"
    (s,) = rp.reproduce(
        "pacgan_grid", seeds=2, steps_scale=0.002, out=out, overrides=["metrics.n_samples=200"], jobs=2, models=["GAN"]
    )
    gan = s["models"][0]
    assert gan["completed"] == 2 and s["jobs"] == 2 and s["trained"] == ["GAN"]
    for seed in (0, 1):
        job = out / "pacgan_grid" / "gan" / f"seed{seed}"
        assert (job / "job.log").is_file()  # written by the child process (in-process jobs have none)
        assert json.loads((job / "metrics.json").read_text())["steps"] == 8
    assert not (out / "pacgan_grid" / "pacgan2").exists()
    # interrupted before seed 1's turn: parallel jobs are staged first, so its directory holds only .hydra/
    staged = out / "pacgan_grid" / "gan" / "seed1"
    for p in sorted(staged.rglob("*"), reverse=True):
        if p.relative_to(staged).as_posix() not in (".hydra", ".hydra/overrides.yaml", ".hydra/config.yaml"):
            p.unlink() if p.is_file() else p.rmdir()
    first = (out / "pacgan_grid" / "gan" / "seed0" / "metrics.json").read_text()
    (again,) = rp.reproduce(
        "pacgan_grid", seeds=2, steps_scale=0.002, out=out, overrides=["metrics.n_samples=200"], jobs=2, models=["GAN"]
    )
    assert again["models"][0]["completed"] == 2 and json.loads((staged / "metrics.json").read_text())["steps"] == 8
    assert (out / "pacgan_grid" / "gan" / "seed0" / "metrics.json").read_text() == first  # reused, untouched


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
        ({}, False, "train"),  # staged (.hydra only) by an interrupted parallel run before its turn
    ],
)
def test_plan_job(metrics, ckpt, expected, tmp_path):
    import yaml

    from gan_lab.jobs import plan_job

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
        assert plan_job(run, ov, 100) == expected
        if metrics == {} and not ckpt:  # anything a started job leaves makes it a run to keep
            for left in ("job.log", ".gan_lab.lock", ".hydra/hydra.yaml"):
                (run / left).write_text("")
                with pytest.raises(ConfigError, match="holds an unfinished run"):
                    plan_job(run, ov, 100)
                (run / left).unlink()
    else:
        with pytest.raises(ConfigError, match=re.escape(expected)):
            plan_job(run, ov, 100)
    if metrics is not None:
        with pytest.raises(ConfigError, match="other overrides"):
            plan_job(run, ["experiment=pacgan_ring_gan", "seed=1"], 100)


def test_portable_overrides_leave_out_where_things_lie():
    ov = ["experiment=x", "data.root=/data/mnist", "ckpt_path=runs/a/last.ckpt", "hydra.run.dir=out/b", "seed=3",
          "data.split=t10k", "+model.init_from=C:\\w\\g.ckpt", "trainer.max_steps=10"]  # fmt: skip
    assert rp.portable(ov) == [
        "experiment=x", "data.root=<data.root>", "ckpt_path=<ckpt_path>", "hydra.run.dir=<hydra.run.dir>", "seed=3",
        "data.split=t10k", "+model.init_from=<model.init_from>", "trainer.max_steps=10",
    ]  # fmt: skip


def test_runs_recorded_elsewhere_count_with_from(tmp_path, monkeypatch, capsys):
    """Seeds 0-1 run on "another machine" (out a), kept next to the docs; seeds 0-2 here (out b) with --from those
    records: only seed 2 trains, the table counts 3 seeds; other settings are refused before anything is written."""
    args = dict(steps_scale=0.002, overrides=["metrics.n_samples=200"], jobs=1, threads=1, models=["GAN"])
    (first,) = rp.reproduce("pacgan_grid", seeds=2, out=tmp_path / "a", **args)
    doc = tmp_path / "docs" / "reproduction.md"
    doc.parent.mkdir()
    doc.write_text(f"intro\n{rp.MARKERS[0]}\n{rp.MARKERS[1]}\n")
    rp.reproduce("pacgan_grid", seeds=2, out=tmp_path / "a", train=False, docs=doc, **args)
    kept = doc.parent / "assets" / "reproduction_pacgan_grid.json"
    assert (doc.parent / "assets" / "reproduction_pacgan_grid.png").stat().st_size > 0
    assert str(tmp_path) not in kept.read_text()  # no machine's paths in what is kept with the docs
    trained = json.loads(kept.read_text())["models"][0]["runs"][0]  # re-tabulated: where it was trained stays
    assert trained["machine"]["cores"] >= 1 and trained["machine"]["date"] == trained["ended"]
    isa = torch.backends.cpu.get_cpu_capability()  # the instruction set torch's CPU kernels use, kept per run
    assert trained["machine"]["cpu_isa"] == isa
    assert "Records of every run: [`assets/reproduction_pacgan_grid.json`]" in doc.read_text()

    import gan_lab.train

    calls, train = [], gan_lab.train.train
    monkeypatch.setattr(gan_lab.train, "train", lambda cfg, d: calls.append(d) or train(cfg, d))
    capsys.readouterr()
    (s,) = rp.reproduce("pacgan_grid", seeds=3, out=tmp_path / "b", sources=[kept], **args)
    assert calls == [tmp_path / "b" / "pacgan_grid" / "gan" / "seed2"]
    gan, before = s["models"][0], first["models"][0]["measured"]["modes_captured"]["values"]
    assert gan["completed"] == 3 and gan["measured"]["modes_captured"]["values"][:2] == before
    assert (s["merged"][0]["from"], s["merged"][0]["runs"]) == (kept.name, 2)  # an absolute path: its name only
    assert "2 of these runs from" in rp.render_entry(s) and "from " in capsys.readouterr().out
    ends = sorted(r["ended"] for r in json.loads(kept.read_text())["models"][0]["runs"])
    assert s["merged"][0]["ended"] == [ends[0], ends[-1]]  # when those runs ended, not when a file was written
    assert len(s["merged"][0]["machines"]) == 1 and s["merged"][0]["machines"][0]["cpu_isa"] == isa
    assert f" cores, {isa})" in rp.render_entry(s).split("(--from)")[1]  # the borrowed runs' line names it too
    when = f"ended {ends[0]}" + (f" to {ends[-1]}" if ends[-1] != ends[0] else "") + ", trained with gan_lab "
    assert when in rp.render_entry(s)
    later = dict(s, merged=[{**s["merged"][0], "ended": ["2026-01-01 00:00 UTC", "2026-01-02 09:30 UTC"]}])
    assert "(--from): ended 2026-01-01 00:00 UTC to 2026-01-02 09:30 UTC, trained with" in rp.render_entry(later)
    older = dict(s, merged=[{"from": "r.json", "runs": 2, "machine": {"date": "2026-01-03 10:00 UTC", "cores": 4}}])
    assert "(--from): recorded 2026-01-03 10:00 UTC, trained with gan_lab ? on ? (4 cores)." in rp.render_entry(older)

    # the same seeds in --out and --from: --out's count, once
    (again,) = rp.reproduce("pacgan_grid", seeds=2, out=tmp_path / "a", sources=[kept], train=False, **args)
    assert again["models"][0]["completed"] == 2 and len(calls) == 1 and not again["merged"]
    assert "--out's runs count" in capsys.readouterr().out
    # a narrower tabulation of out a leaves GAN's runs out of its JSON; each run's directory keeps its machine
    runs = sorted((tmp_path / "a" / "pacgan_grid" / "gan").glob(f"seed*/{rp.MACHINE_FILE}"))
    assert len(runs) == 2 and json.loads(runs[0].read_text())["cores"] >= 1
    rp.reproduce("pacgan_grid", seeds=2, out=tmp_path / "a", train=False, **{**args, "models": ["PacGAN2"]})
    times = {path: (path.parent / "metrics.json").stat() for path in runs}
    for path in runs:  # as `cp -r` leaves a copied run: its files dated by the copy, not by the run's end
        os.utime(path.parent / "metrics.json", (4102444800, 4102444800))  # 2100-01-01
    (kept_in_dirs,) = rp.reproduce("pacgan_grid", seeds=2, out=tmp_path / "a", train=False, **args)
    got = kept_in_dirs["models"][0]["runs"]
    assert [r["machine"]["date"] for r in got] == [r["ended"] for r in got] and "2100" not in got[0]["ended"]
    for path, was in times.items():
        os.utime(path.parent / "metrics.json", ns=(was.st_atime_ns, was.st_mtime_ns))
    # runs trained before the machine was kept in their directories: the kept records (the same runs: same
    # directory, same end) give those machines back
    for path in runs:
        path.unlink()
    rp.reproduce("pacgan_grid", seeds=2, out=tmp_path / "a", train=False, **{**args, "models": ["PacGAN2"]})
    (lost,) = rp.reproduce("pacgan_grid", seeds=2, out=tmp_path / "a", train=False, **args)
    assert [r.get("machine") for r in lost["models"][0]["runs"]] == [None, None]
    (back,) = rp.reproduce("pacgan_grid", seeds=2, out=tmp_path / "a", sources=[kept], train=False, **args)
    assert [r["machine"]["date"] for r in back["models"][0]["runs"]] == [r["ended"] for r in back["models"][0]["runs"]]

    with pytest.raises(ConfigError, match=r"GAN seed 0 was run with other settings: trainer.max_steps=8 \(here"):
        rp.reproduce("pacgan_grid", seeds=3, out=tmp_path / "c", sources=[kept], **{**args, "steps_scale": 0.0025})
    assert not (tmp_path / "c").exists() and len(calls) == 1
    with pytest.raises(ConfigError, match="--from .*nothing.json: no such file"):
        rp.reproduce("pacgan_grid", out=tmp_path / "c", sources=[tmp_path / "nothing.json"], **args)
    with pytest.raises(ConfigError, match="holds the tables pacgan_grid; none of pacgan_ring"):
        rp.reproduce("pacgan_ring", out=tmp_path / "c", sources=[kept], **args)
    assert not (tmp_path / "c").exists()


def test_sr_entry_needs_its_benchmark_folders(tmp_path):
    with pytest.raises(ConfigError, match="--sr-root='.*nowhere' has no CSet5/; allowed a folder holding CSet5/"):
        rp.reproduce("sr_set5", out=tmp_path / "o", sr_root=tmp_path / "nowhere")
    assert not (tmp_path / "o").exists()


@pytest.mark.slow  # trains an SRResNet, then scores Set5/Set14
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
        (
            ["nope"],
            "'nope' is not a table; allowed pacgan_grid, pacgan_ring, sr_set5, stacked_digits, unrolled_ring, "
            "unrolled_stacked",
        ),
        ([], "name a table"),
        (["pacgan_ring", "--seeds", "0"], "--seeds=0 is out of range; allowed [1, 1000]"),
        (["pacgan_ring", "--steps-scale", "0"], "--steps-scale=0.0 is out of range; allowed (0.0, 100.0]"),
        (["pacgan_ring", "--threads", "0"], "--threads=0 is out of range"),
        (["pacgan_ring", "--jobs", "0"], "--jobs=0 is out of range"),
        (["pacgan_ring", "--scale", "huge"], "--scale 'huge' is not defined for pacgan_ring; allowed full"),
        (
            ["pacgan_ring", "--models", "WGAN"],
            "--models 'WGAN' is not a model of pacgan_ring; allowed gan, pacgan2, pacgan3, pacgan4, all",
        ),
        (["pacgan_ring", "--docs", "nowhere.md"], "--docs nowhere.md: no such file"),
        (["sr_set5", "--sr-ckpt", "missing.ckpt"], "--sr-ckpt='missing.ckpt' does not exist"),
        (["pacgan_ring", "model.nope=1"], "model.nope"),
    ],
)
def test_bad_arguments_give_one_line(argv, expected, tmp_path, capsys):
    assert rp.main([*argv, "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("gan-lab reproduce: error: ") and expected in err and "\n" not in err
    assert not (tmp_path / "o").exists()  # nothing was trained or written


def test_models_by_name_for_labels_with_commas():
    """Labels such as "DCGAN, D 1/4" cannot go through the comma-separated --models; their --list names can."""
    entry = rp.load_entry("unrolled_stacked")
    picked = rp._selected(entry, ["dcgan_d_1_4", "unrolled_5_d_1_2"])
    assert [m.label for m in picked] == ["DCGAN, D 1/4", "unrolled 5, D 1/2"]
    assert [m.label for m in rp._selected(rp.load_entry("pacgan_ring"), ["PacGAN2"])] == ["PacGAN2"]


def test_cli_subcommand_and_list():
    r = run_cli("gan_lab.cli", "reproduce", "nope")
    assert r.returncode == 2 and "'nope' is not a table" in r.stderr
    r = run_cli("gan_lab.cli", "reproduce", "--list")
    assert r.returncode == 0 and "unrolled_stacked:" in r.stdout
    assert "unrolled 1, D 1/4 [unrolled_1_d_1_4] (--models)" in r.stdout


def _experiments():
    return sorted(p.stem for p in (CONF / "experiment").glob("*.yaml"))


@pytest.mark.parametrize("name", _experiments())
def test_every_experiment_preset_runs_fast_dev_run(name, tmp_path):
    data = compose_cfg(f"experiment={name}").data
    extra = []
    if data.get("_target_", "").endswith("StackedMNISTDataModule"):
        if not (SHARED_DATA / "mnist").is_dir():
            pytest.skip(f"experiment={name} reads MNIST IDX files; none at {SHARED_DATA / 'mnist'}")
        extra = [f"data.root={SHARED_DATA / 'mnist'}", "data.split=t10k", "metrics.n_samples=512"]
    elif OmegaConf.is_missing(data, "root") or ("root" in data and data.root is None):  # the user's own photos
        from PIL import Image

        rng = np.random.default_rng(0)
        for i in range(8):
            Image.fromarray(rng.integers(0, 256, (80, 72, 3), dtype=np.uint8)).save(tmp_path / f"img{i}.png")
        extra = [f"data.root={tmp_path}", "data.batch_size=8"]
    elif data.get("root") not in (None, "skimage") and not (CONF.parent / str(data.root)).exists():
        pytest.skip(f"experiment={name} reads data.root={data.root}, which is absent here")
    # one batch is trained: make only a few hundred examples (SR crops, stacked digits, 2-D points)
    n = max(512, 2 * int(data.get("batch_size") or 0))  # a training split holding at least one batch
    smaller = [f"data.{k}={v}" for k, v in (("n_patches", 32), ("n_samples", n)) if k in data]
    m = train_run(tmp_path, f"experiment={name}", "+trainer.fast_dev_run=true", *smaller, *extra)
    assert m["status"] == "completed" and "g_loss" in m
