"""Tests of gan_lab.compare on fake Hydra multirun directories built in tmp_path."""

import csv
import json
import math

import pytest
import yaml
from scipy import stats

from gan_lab.compare import ci95, compare, find_jobs, group_jobs, main, rank, summarize, welch


def make_job(root, num, overrides, metrics=None, curve=None, data=None):
    """One fake job dir: .hydra/overrides.yaml, metrics.json (unless None), metrics.csv (if curve given);
    data=(choice, config dict): the .hydra/config.yaml and hydra.yaml a Hydra multirun job has."""
    d = root / str(num)
    (d / ".hydra").mkdir(parents=True)
    (d / ".hydra" / "overrides.yaml").write_text(yaml.safe_dump(overrides))
    if data is not None:
        choice, cfg = data
        model = {"_target_": "gan_lab.tasks.gan.GANTask", "name": "gan_mlp"}
        (d / ".hydra" / "config.yaml").write_text(yaml.safe_dump({"data": cfg, "model": model, "seed": 0}))
        choices = {"data": choice, "model": "gan_mlp"}
        (d / ".hydra" / "hydra.yaml").write_text(yaml.safe_dump({"hydra": {"runtime": {"choices": choices}}}))
    if metrics is not None:
        (d / "metrics.json").write_text(json.dumps(metrics))
    if curve is not None:  # sparse CSVLogger rows: loss every row, fid every other row
        with open(d / "metrics.csv", "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["epoch", "step", "train/d_loss", "metrics/fid"])
            for step, v in enumerate(curve):
                w.writerow([0, step * 10, 0.7, v if step % 2 == 0 else ""])
    return d


@pytest.fixture
def sweep(tmp_path):
    """base: fid 10/11/12 (3 seeds); r1: fid 10.6/11.6/12.6 + 1 crashed; label_smoothing on the ring (another
    setup): fid 20/21 + 1 diverged; grid (nested one level deeper, a third setup): 1 failed job only."""

    def fid(v):  # epoch, the nested protocol dict and the bool must not become metrics
        extra = {"epoch": 3, "protocol": {"n_samples": 1000, "name": "x"}, "flag": True}
        return {"status": "completed", "fid": v, "d_loss": 0.6, "modes_captured": 8.0 - v / 10, **extra}

    n = 0
    for seed, v in enumerate([10.0, 11.0, 12.0]):
        make_job(tmp_path, n, [f"seed={seed}", "hydra.job.chdir=true"], fid(v), curve=[v + 5, v + 2, v])
        n += 1
    for seed, v in enumerate([20.0, 21.0]):
        make_job(tmp_path, n, [f"seed={seed}", "trick=[label_smoothing]", "data=toy2d_ring"], fid(v))
        n += 1
    make_job(tmp_path, n, ["seed=2", "data=toy2d_ring", "trick=[label_smoothing]"], {"status": "diverged"})
    n += 1
    for seed, v in enumerate([10.6, 11.6, 12.6]):
        make_job(
            tmp_path, n, [f"seed={seed}", "trick=[r1]", "+sweep=tricks", "logger=csv"], fid(v), curve=[v + 1, v, v]
        )
        n += 1
    make_job(tmp_path, n, ["seed=3", "trick=[r1]"], None)  # crashed hard: no metrics.json
    make_job(tmp_path / "nested", 0, ["seed=0", "data=toy2d_grid"], {"status": "failed", "fid": 1.0})
    (tmp_path / "multirun.yaml").write_text("hydra: {}\n")
    return tmp_path


def test_grouping_ignores_seed_and_keeps_other_overrides(sweep):
    jobs = find_jobs(sweep)
    assert len(jobs) == 11
    groups = group_jobs(jobs)
    ring = "data=toy2d_ring trick=[label_smoothing]"  # overrides sorted, so their order does not matter
    assert list(groups) == ["(base)", ring, "trick=[r1]", "data=toy2d_grid"]
    assert [len(g) for g in groups.values()] == [3, 3, 4, 1]
    assert sorted(j.seed for j in groups["trick=[r1]"]) == [0, 1, 2, 3]
    statuses = [j.status for j in groups["trick=[r1]"]]
    assert statuses == ["completed", "completed", "completed", "failed"]
    assert {j.setup for j in groups["(base)"] + groups["trick=[r1]"]} == {"data=(sweep default)"}
    assert groups[ring][0].setup == "data=toy2d_ring" and groups["data=toy2d_grid"][0].setup == "data=toy2d_grid"
    base = groups["(base)"][0]
    assert base.metrics == {"fid": 10.0, "d_loss": 0.6, "modes_captured": 7.0}  # nested/bool/epoch dropped


def test_a_seed_held_twice_by_a_group_counts_once(tmp_path, capsys):
    """Overlapping seed-parallel members (e.g. `seed=0,1` over a preset's `seeds: 3`): seeds 1 and 2 twice."""
    for num, (seed, v) in enumerate([(0, 1.0), (1, 2.0), (2, 3.0), (1, 9.0), (2, 9.0), (3, 4.0)]):
        make_job(tmp_path, num, [f"seed={seed}", "trick=[ema]"], {"status": "completed", "fid": v})
    (group,) = group_jobs(find_jobs(tmp_path)).values()
    assert [(j.seed, j.metrics["fid"]) for j in group] == [(0, 1.0), (1, 2.0), (2, 3.0), (3, 4.0)]
    err = capsys.readouterr().err
    assert err.count("counted once") == 2 and f"{tmp_path / '3'} repeats seed 1 of {tmp_path / '1'}" in err


def test_ci95_hand_computed():
    mean, half = ci95([1.0, 2.0, 3.0])
    assert mean == 2.0
    assert half == pytest.approx(4.302652729911275 * 1.0 / math.sqrt(3))  # t(0.975, 2) * std / sqrt(n)
    assert half == pytest.approx(2.4841, abs=1e-4)
    m1, h1 = ci95([5.0])
    assert m1 == 5.0 and math.isnan(h1)
    assert all(math.isnan(x) for x in ci95([]))


def test_welch_matches_scipy():
    a, b = [10.0, 11.0, 12.0, 10.5], [20.0, 21.0, 19.0]
    assert welch(a, b) == pytest.approx(stats.ttest_ind(a, b, equal_var=False).pvalue)
    assert welch(a, b) < 0.001
    assert math.isnan(welch([1.0], b))


def test_summarize_and_ranking_direction(sweep):
    groups = group_jobs(find_jobs(sweep))
    rows = summarize(groups, ["fid", "modes_captured"])
    row = {(r.group, r.metric): r for r in rows}
    r1 = row["trick=[r1]", "fid"]
    assert (r1.mean, r1.n, r1.completed, r1.diverged, r1.failed) == (pytest.approx(11.6), 3, 3, 0, 1)
    ls = row["data=toy2d_ring trick=[label_smoothing]", "fid"]
    assert (ls.n, ls.completed, ls.diverged, ls.failed) == (2, 2, 1, 0)
    grid = row["data=toy2d_grid", "fid"]
    assert grid.n == 0 and math.isnan(grid.mean)  # a failed job's numbers never count
    low = [r.group for r in rank(rows, "fid", lower_better=True)]
    assert low == ["(base)", "trick=[r1]", "data=toy2d_ring trick=[label_smoothing]", "data=toy2d_grid"]
    high = [r.group for r in rank(rows, "modes_captured", lower_better=False)]
    assert high == low  # modes_captured = 8 - fid/10: same order, opposite direction
    assert [r.group for r in rank(rows, "fid", lower_better=False)][:2] == [low[2], low[1]]


def test_main_writes_files_and_counts_failures(sweep, capsys):
    assert main([str(sweep), "--metrics", "modes_captured,d_loss"]) == 0
    out = capsys.readouterr().out
    assert "(base)" in out and "trick=[r1]" in out and "≈ best" in out
    for name in [
        "comparison.csv",
        "comparison.md",
        "comparison_fid.png",
        "comparison_modes_captured.png",
        "comparison_d_loss.png",
        "curves_fid.png",
    ]:
        assert (sweep / name).stat().st_size > 0, name
    assert not (sweep / "curves_modes_captured.png").exists()  # no such column in any metrics.csv

    with open(sweep / "comparison.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 4 * 3  # groups x (fid, modes_captured, d_loss)
    fid = {r["group"]: r for r in rows if r["metric"] == "fid"}
    assert fid["(base)"]["rank"] == "1" and fid["(base)"]["vs_best"] == "best"
    assert float(fid["(base)"]["mean"]) == pytest.approx(11.0)
    assert float(fid["(base)"]["ci95"]) == pytest.approx(2.4841, abs=1e-4)
    r1 = fid["trick=[r1]"]
    assert (r1["rank"], r1["completed"], r1["failed"]) == ("2", "3", "1") and r1["vs_best"].startswith("≈ best")
    assert float(r1["p_vs_best"]) == pytest.approx(welch([10.6, 11.6, 12.6], [10.0, 11.0, 12.0]))
    # the ring and the grid are other setups: never ranked against the default data, and too few seeds to rank
    ring = fid["data=toy2d_ring trick=[label_smoothing]"]
    assert (ring["setup"], ring["rank"], ring["diverged"]) == ("data=toy2d_ring", "–", "1")
    assert ring["vs_best"] == "n=2: too few seeds to rank (< 3)"
    grid = fid["data=toy2d_grid"]
    assert (grid["failed"], grid["n"], grid["rank"]) == ("1", "0", "–")

    md = (sweep / "comparison.md").read_text()
    table = [line for line in md.splitlines() if line.startswith("| ")]
    assert len(table) == 1 + 4  # header + every group, the all-failed one included
    assert table[1].startswith("| data=(sweep default) | 1 | (base) | 3 | 0 | 0 | 0 | 11 ± 2.484")
    assert "| 2 | trick=[r1] | 3 | 0 | 0 | 1 |" in table[2] and "≈ best" in table[2]
    assert "| – | data=toy2d_ring trick=[label_smoothing] | 2 | 0 | 1 | 0 |" in table[3]
    assert "| 0 | 0 | 0 | 1 |" in table[4] and "n/a" in table[4]
    assert "Welch t-test" in md and "alpha=0.05" in md and "(lower is better)" in md
    assert md.count("n too small to rank") == 2  # the ring's and the grid's setups


def test_unlike_setups_are_never_ranked_together(tmp_path):
    """A new user's sweep over data=toy2d_ring,toy2d_grid: 25 grid modes are not 'better' than 8 ring modes;
    each setup is ranked on its own, and only with enough seeds."""
    ring = {"_target_": "gan_lab.data.toy2d.Toy2DDataModule", "kind": "ring", "n_modes": 8, "batch_size": 256}
    grid = {"_target_": "gan_lab.data.toy2d.Toy2DDataModule", "kind": "grid", "side": 5, "batch_size": 256}
    n = 0
    for data, cfg, modes in (("toy2d_ring", ring, [7.0, 8.0, 8.0]), ("toy2d_grid", grid, [20.0, 22.0, 23.0])):
        for trick, shift in (("[]", 0.0), ("[pacgan]", 0.5)):
            for seed, m in enumerate(modes):
                ov = [f"data={data}", f"trick={trick}", f"seed={seed}"]
                make_job(tmp_path, n, ov, {"status": "completed", "modes_captured": m + shift}, data=(data, cfg))
                n += 1
    rows = compare(tmp_path, "modes_captured", console=None)
    ring_setup, grid_setup = (
        "data=toy2d_ring [kind=ring,n_modes=8], task=GAN",
        "data=toy2d_grid [kind=grid,side=5], task=GAN",
    )
    assert {r.setup for r in rows} == {ring_setup, grid_setup}
    with open(tmp_path / "comparison.csv") as f:
        table = [r for r in csv.DictReader(f) if r["metric"] == "modes_captured"]
    best = {r["setup"]: r["group"] for r in table if r["rank"] == "1"}
    assert best == {ring_setup: "data=toy2d_ring trick=[pacgan]", grid_setup: "data=toy2d_grid trick=[pacgan]"}
    assert sorted(r["rank"] for r in table) == ["1", "1", "2", "2"]
    # the same sweep with 2 seeds a group: intervals shown, nothing ranked
    for d in list(tmp_path.iterdir()):
        if d.is_dir() and yaml.safe_load((d / ".hydra" / "overrides.yaml").read_text())[-1] == "seed=2":
            (d / "metrics.json").write_text(json.dumps({"status": "failed"}))
    compare(tmp_path, "modes_captured", console=None)
    md = (tmp_path / "comparison.md").read_text()
    assert md.count("n too small to rank") == 2 and "], task=GAN | 1 |" not in md
    assert "n=2: too few seeds to rank (< 3)" in md


def test_preempted_jobs_are_resumable_not_failed_and_a_damaged_metrics_json_is_named(tmp_path, capsys):
    """A job stopped by a signal (status "preempted", checkpoint kept) is counted on its own and named as
    resumable; a truncated metrics.json (a job killed while writing it) is counted as failed, by its path."""
    for seed, fid in enumerate([10.0, 11.0, 12.0]):
        make_job(tmp_path, seed, [f"seed={seed}"], {"status": "completed", "fid": fid})
    stopped = make_job(tmp_path, 3, ["seed=3"], {"status": "preempted", "fid": 99.0, "signal": "SIGTERM"})
    damaged = make_job(tmp_path, 4, ["seed=4"], None)
    (damaged / "metrics.json").write_text('{"status": "compl')  # truncated
    listed = make_job(tmp_path, 5, ["seed=5"], ["not", "an", "object"])
    assert main([str(tmp_path)]) == 0
    err = capsys.readouterr().err
    assert f"{damaged / 'metrics.json'} is unreadable" in err and "counted as failed" in err
    assert f"{listed / 'metrics.json'} holds no metrics object" in err
    (row,) = summarize(group_jobs(find_jobs(tmp_path)), ["fid"])
    assert (row.completed, row.preempted, row.diverged, row.failed) == (3, 1, 0, 2)
    assert row.mean == pytest.approx(11.0)  # the pre-empted job's numbers (mid-run) never count
    md = (tmp_path / "comparison.md").read_text()
    assert "| completed | preempted | diverged | failed |" in md and "| 3 | 1 | 0 | 2 |" in md
    assert "1 pre-empted job(s)" in md and "resumable" in md and str(stopped) in md
    with open(tmp_path / "comparison.csv") as f:
        (fid,) = list(csv.DictReader(f))
    assert (fid["completed"], fid["preempted"], fid["failed"]) == ("3", "1", "2")


def test_higher_better_metric_and_explicit_direction(sweep):
    assert main([str(sweep), "--metric", "modes_captured"]) == 0
    md = (sweep / "comparison.md").read_text()
    assert "(higher is better)" in md and "| 1 | (base) |" in md
    assert (sweep / "comparison_modes_captured.png").exists()
    assert main([str(sweep), "--metric", "d_loss", "--higher-better", "--alpha", "0.01"]) == 0
    assert "alpha=0.01" in (sweep / "comparison.md").read_text()


@pytest.mark.parametrize(
    "argv_of",
    [
        lambda p: [str(p / "missing")],  # no such directory
        lambda p: [str(p)],  # exists, but holds no job
        lambda p: [str(p), "--metric", "d_loss"],  # unknown direction without a flag
    ],
)
def test_bad_input_exits_2_with_one_line(tmp_path, capsys, argv_of):
    if argv_of(tmp_path)[1:]:
        make_job(tmp_path, 0, ["seed=0"], {"status": "completed", "d_loss": 0.5})
    with pytest.raises(SystemExit) as exc:
        main(argv_of(tmp_path))
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("gan-lab compare: error:")


def test_direction_of_protocol_keys():
    from gan_lab.compare import direction
    from gan_lab.errors import ConfigError

    assert direction("fid/digits/2000") is True and direction("metrics/kid/mnist/500") is True
    assert direction("metrics/precision") is False
    with pytest.raises(ConfigError, match="unknown"):
        direction("metrics/something/2000")
