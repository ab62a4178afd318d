"""Compare the jobs of a Hydra multirun sweep: mean ± 95% CI per configuration, ranking, Welch tests, plots.

    python -m gan_lab.compare multirun/2024-05-01/12-00-00      # rank by fid / modes_captured / psnr / ...
    python -m gan_lab.compare <sweep dir> --metric d_loss --lower-better --metrics fid,ssim --alpha 0.01
    gan-lab compare <sweep dir> ...                               # the same through the CLI

Jobs are the directories holding `.hydra/overrides.yaml` (at any depth). Jobs that differ only by `seed=` (and
by the keys in IGNORED_KEYS) form one group. Groups are ranked only against groups of the same setup (the data
and the task: 25 modes of a grid are not comparable with 8 of a ring), and only when every group of the setup
has at least MIN_RANK_N completed seeds; otherwise the intervals are shown and the setup is marked "n too small
to rank". Only completed jobs contribute numbers; pre-empted jobs (stopped by a signal with a checkpoint:
resumable, `gan_lab.train` continues them), diverged and failed jobs (a job without metrics.json, or with an
unreadable one, failed; the unreadable file is named) are counted and always shown. Writes comparison.csv,
comparison.md, comparison_<metric>.png and curves_<metric>.png into the sweep dir.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import re
import sys
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import yaml
from scipy import stats

from gan_lab.errors import ConfigError
from gan_lab.jobs import override_key

# override keys that do not change the experiment (a key matches itself and its dotted children)
IGNORED_KEYS = ("seed", "hydra", "logger", "sweep")
# fewest completed seeds per group for a ranking (with 2, a t-interval is 12.7 standard deviations wide)
MIN_RANK_N = 3
# data settings that define what a metric measures (the rest, e.g. batch_size, do not change the task)
SETUP_DATA_KEYS = ("kind", "n_modes", "side", "radius", "spacing", "sigma", "root", "split", "size", "channels")
# numeric entries of metrics.json that are bookkeeping, not results
NON_METRIC_KEYS = ("epoch", "step", "global_step", "seed")
LOWER_BETTER = ("fid", "kid", "intra_fid", "reverse_kl", "class_kl", "stacked_kl", "l1", "l2", "ndb")
HIGHER_BETTER = (
    "modes_captured",
    "hq_fraction",
    "class_modes",
    "stacked_modes",
    "precision",
    "recall",
    "density",
    "coverage",
    "psnr",
    "ssim",
    "is",  # Inception Score
    "class_consistency",
)
DEFAULT_METRICS = (
    "fid",
    "modes_captured",
    "psnr",
    "kid",
    "hq_fraction",
    "ssim",
    "reverse_kl",
    "class_kl",
    "class_modes",
    "precision",
    "recall",
    "density",
    "coverage",
    "ndb",
    "l1",
    "l2",
)
STATUSES = ("completed", "preempted", "diverged", "failed")


@dataclass
class Job:
    path: Path
    overrides: list[str]
    group: str
    seed: int | None
    status: str
    metrics: dict[str, float] = field(default_factory=dict)
    setup: str = "(unknown setup)"


@dataclass
class Row:
    group: str
    metric: str
    mean: float
    ci95: float
    n: int
    values: list[float]
    completed: int
    preempted: int
    diverged: int
    failed: int
    setup: str = ""


def _ignored(override: str) -> bool:
    key = override_key(override)
    return any(key == k or key.startswith(k + ".") for k in IGNORED_KEYS)


def _yaml(path: Path):
    try:
        return yaml.safe_load(path.read_text()) or {}
    except (OSError, yaml.YAMLError):
        return {}


def job_setup(path: Path, overrides: list[str]) -> str:
    """What a job's metrics are comparable within: its data (Hydra's `data=` choice, or the data class and the
    settings in SETUP_DATA_KEYS) and its task class (GAN, autoencoder, pix2pix...)."""
    cfg = _yaml(path / ".hydra" / "config.yaml")
    choices = ((_yaml(path / ".hydra" / "hydra.yaml").get("hydra") or {}).get("runtime") or {}).get("choices") or {}
    data = cfg.get("data") if isinstance(cfg.get("data"), dict) else {}
    model = cfg.get("model") if isinstance(cfg.get("model"), dict) else {}
    name = str(data.get("_target_", "")).rsplit(".", 1)[-1].removesuffix("DataModule")
    name = choices.get("data") or name or next((o.split("=", 1)[1] for o in overrides if override_key(o) == "data"), "")
    detail = ",".join(f"{k}={data[k]}" for k in SETUP_DATA_KEYS if k in data)
    task = str(model.get("_target_", "")).rsplit(".", 1)[-1].removesuffix("Task")
    label = f"data={name or '(sweep default)'}" + (f" ({detail})" if detail and not choices.get("data") else "")
    if choices.get("data") and detail:  # the same data choice with other settings is another setup
        label += f" [{detail}]"
    return label + (f", task={task}" if task else "")


def _natural(path: Path):
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", path.as_posix())]


def find_jobs(sweep_dir) -> list[Job]:
    """Every directory under sweep_dir holding .hydra/overrides.yaml, with group, seed, status and metrics."""
    sweep_dir = Path(sweep_dir)
    if not sweep_dir.is_dir():
        raise ConfigError(f"sweep dir {str(sweep_dir)!r} does not exist or is not a directory")
    jobs = []
    for ov_file in sorted(sweep_dir.rglob(".hydra/overrides.yaml"), key=_natural):
        path = ov_file.parent.parent
        if _yaml(path / ".hydra" / "config.yaml").get("seeds") is not None:
            continue  # a seed-parallel run (seeds=N): its members in seed<k>/ are the jobs
        overrides = [str(o) for o in (yaml.safe_load(ov_file.read_text()) or [])]
        kept = sorted(o for o in overrides if not _ignored(o))
        seeds = [o.split("=", 1)[1] for o in overrides if override_key(o) == "seed" and "=" in o]
        seed = int(seeds[0]) if seeds and seeds[0].lstrip("-").isdigit() else None
        try:
            raw = json.loads((path / "metrics.json").read_text())
        except FileNotFoundError:  # a job that never started training (or was killed before its end)
            raw = {"status": "failed"}
        except (OSError, ValueError) as e:  # truncated or damaged: counted as failed, and named
            print(f"warning: {path / 'metrics.json'} is unreadable ({type(e).__name__}: {e}); counted as failed",
                  file=sys.stderr)  # fmt: skip
            raw = {"status": "failed"}
        if not isinstance(raw, dict):  # valid JSON, but not gan_lab's object (e.g. a bare list): named too
            print(f"warning: {path / 'metrics.json'} holds no metrics object; counted as failed", file=sys.stderr)
            raw = {"status": "failed"}
        status = raw.get("status", "completed")
        status = status if status in STATUSES else "failed"
        metrics = {
            k: float(v)
            for k, v in raw.items()
            if isinstance(v, (int, float)) and not isinstance(v, bool) and k not in NON_METRIC_KEYS
        }
        group = " ".join(kept) or "(base)"
        jobs.append(Job(path, overrides, group, seed, status, metrics, job_setup(path, overrides)))
    # overrides every job shares (e.g. trainer.max_steps=3000 given to the whole sweep) do not tell groups apart
    kept_sets = [set(j.group.split(" ")) - {"(base)"} for j in jobs]
    common = set.intersection(*kept_sets) if len(jobs) > 1 else set()
    if common:
        for j, kept in zip(jobs, kept_sets):
            j.group = " ".join(sorted(kept - common)) or "(base)"
    return jobs


def group_jobs(jobs: list[Job]) -> dict[str, list[Job]]:
    """Group label -> jobs, in order of first appearance. A seed that a group holds twice (e.g. `seed=0,1` over
    a preset's `seeds: 5`, whose members overlap) is one trial, not two: the first job is kept, the other named."""
    groups: dict[str, list[Job]] = {}
    for job in jobs:
        same = [j for j in groups.get(job.group, []) if job.seed is not None and j.seed == job.seed]
        if same:
            print(f"warning: {job.path} repeats seed {job.seed} of {same[0].path} in group {job.group!r}; "
                  "counted once", file=sys.stderr)  # fmt: skip
            continue
        groups.setdefault(job.group, []).append(job)
    return groups


def ci95(values) -> tuple[float, float]:
    """(mean, half-width of the Student-t 95% confidence interval); half-width is nan for n < 2."""
    x = np.asarray(values, dtype=float)
    if len(x) == 0:
        return math.nan, math.nan
    if len(x) == 1:
        return float(x[0]), math.nan
    return float(x.mean()), float(stats.t.ppf(0.975, len(x) - 1) * x.std(ddof=1) / math.sqrt(len(x)))


def welch(a, b) -> float:
    """Two-sided p-value of Welch's t-test (unequal variances); nan when a side has fewer than 2 values."""
    if len(a) < 2 or len(b) < 2:
        return math.nan
    with warnings.catch_warnings():  # constant samples: scipy warns and returns nan
        warnings.simplefilter("ignore", RuntimeWarning)
        return float(stats.ttest_ind(a, b, equal_var=False).pvalue)


def summarize(groups: dict[str, list[Job]], metrics=None) -> list[Row]:
    """One Row per group x metric (metrics=None: every numeric metric of the completed jobs)."""
    if metrics is None:
        done = [j for jobs in groups.values() for j in jobs if j.status == "completed"]
        metrics = sorted({m for j in done for m in j.metrics})
    rows = []
    for label, jobs in groups.items():
        counts = [sum(j.status == s for j in jobs) for s in STATUSES]
        for m in metrics:
            values = [
                j.metrics[m] for j in jobs if j.status == "completed" and m in j.metrics and math.isfinite(j.metrics[m])
            ]
            mean, half = ci95(values)
            rows.append(Row(label, m, mean, half, len(values), values, *counts, jobs[0].setup))
    return rows


def direction(metric: str, lower_better: bool | None = None) -> bool:
    """True if lower is better; known metrics need no flag (a 'metrics/fid'-style prefix and protocol
    suffixes as in 'fid/digits/2000' are ignored)."""
    if lower_better is not None:
        return lower_better
    known = [part for part in metric.split("/") if part in LOWER_BETTER or part in HIGHER_BETTER]
    if known:  # 'metrics/fid', and protocol keys such as 'fid/digits/2000'
        return known[-1] in LOWER_BETTER
    raise ConfigError(f"direction of metric {metric!r} is unknown; pass --lower-better or --higher-better")


def rank(rows: list[Row], metric: str, lower_better: bool) -> list[Row]:
    """Rows of `metric`, best first; groups without a value go last."""
    rows = [r for r in rows if r.metric == metric]
    return sorted(rows, key=lambda r: (math.isnan(r.mean), r.mean if lower_better else -r.mean))


def verdicts(ranked: list[Row], alpha: float) -> list[tuple[float, str]]:
    """(p-value vs the best group, verdict) for each ranked row."""
    best, out = ranked[0], []
    for r in ranked:
        p = welch(r.values, best.values)
        if r is best:
            out.append((math.nan, "best"))
        elif r.n < 2 or best.n < 2:
            out.append((p, "too few seeds"))
        elif p < alpha:
            out.append((p, f"significantly worse (p < {alpha:g})"))
        else:  # includes p = nan from two identical constant samples
            out.append((p, f"≈ best (not significant at {alpha:g})"))
    return out


def setup_verdicts(ranked: list[Row], alpha: float) -> list[tuple[float, str]]:
    """verdicts() within one setup, or none when a group has fewer than MIN_RANK_N completed seeds."""
    if any(r.n < MIN_RANK_N for r in ranked):
        return [
            (
                math.nan,
                f"n={r.n}: too few seeds to rank (< {MIN_RANK_N})"
                if r.n < MIN_RANK_N
                else "not ranked: another group of this setup has too few seeds",
            )
            for r in ranked
        ]
    return verdicts(ranked, alpha)


def _fmt(x: float) -> str:
    return "n/a" if math.isnan(x) else f"{x:.4g}"


def _cell(r: Row) -> str:
    s = f"{_fmt(r.mean)} ± {_fmt(r.ci95)}" if r.n else "n/a"
    return s if r.n == r.completed else f"{s} (n={r.n})"


def _curves(job: Job, metric: str) -> dict[float, float]:
    """step -> value of `metric` from the job's CSVLogger file (column `metric` or `<prefix>/<metric>`)."""
    try:
        with open(job.path / "metrics.csv", newline="") as f:
            reader = csv.DictReader(f)
            cols = [c for c in reader.fieldnames or [] if c == metric or c.endswith("/" + metric)]
            if not cols or "step" not in reader.fieldnames:
                return {}
            pts: dict[float, list[float]] = {}
            for row in reader:
                if row.get("step") and row.get(cols[0]):
                    pts.setdefault(float(row["step"]), []).append(float(row[cols[0]]))
    except (OSError, ValueError):
        return {}
    return {s: float(np.mean(v)) for s, v in pts.items()}


def plot(out_dir: Path, groups, rows: list[Row], metric: str, lower_better: bool | None) -> list[Path]:
    """comparison_<metric>.png (mean ± CI per group, best on top; lower_better=None: direction unknown,
    sorted ascending) and curves_<metric>.png when some job's metrics.csv has that column."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    name, written = re.sub(r"[^\w.-]+", "_", metric), []
    ranked = [r for r in rank(rows, metric, lower_better is not False) if r.n][::-1]
    if ranked:
        fig, ax = plt.subplots(figsize=(8, 1.5 + 0.4 * len(ranked)))
        xerr = [np.nan_to_num(r.ci95) for r in ranked]
        ax.errorbar([r.mean for r in ranked], range(len(ranked)), xerr=xerr, fmt="o", capsize=4)
        ax.set_yticks(range(len(ranked)), [f"{r.group} (n={r.n})" for r in ranked], fontsize=8)
        better = {True: " (lower is better)", False: " (higher is better)", None: ""}[lower_better]
        ax.set_xlabel(f"{metric}{better}, mean ± 95% CI")
        fig.tight_layout()
        written.append(out_dir / f"comparison_{name}.png")
        fig.savefig(written[-1], dpi=100)
        plt.close(fig)
    fig, ax = plt.subplots(figsize=(8, 5))
    for label, jobs in groups.items():
        pts: dict[float, list[float]] = {}
        for job in jobs:
            if job.status == "completed":
                for s, v in _curves(job, metric).items():
                    pts.setdefault(s, []).append(v)
        if pts:
            steps = sorted(pts)
            ax.plot(steps, [np.mean(pts[s]) for s in steps], label=label)
    if ax.lines:
        ax.set_xlabel("step")
        ax.set_ylabel(f"{metric} (mean over seeds)")
        ax.legend(fontsize=7)
        fig.tight_layout()
        written.append(out_dir / f"curves_{name}.png")
        fig.savefig(written[-1], dpi=100)
    plt.close(fig)
    return written


def compare(sweep_dir, metric=None, lower_better=None, metrics=None, alpha=0.05, console=None) -> list[Row]:
    """Everything main() does: table to the console, comparison.csv/.md and plots into sweep_dir."""
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    sweep_dir = Path(sweep_dir)
    jobs = find_jobs(sweep_dir)
    if not jobs:
        raise ConfigError(f"no jobs (directories with .hydra/overrides.yaml) found in {str(sweep_dir)!r}")
    groups = group_jobs(jobs)
    available = sorted({m for j in jobs if j.status == "completed" for m in j.metrics})
    if metric is None:
        metric = next((m for m in DEFAULT_METRICS if m in available), None)
        if metric is None:
            raise ConfigError(
                f"no known ranking metric among {available or 'the completed jobs (none)'}; pass --metric NAME"
            )
    elif metric not in available:
        raise ConfigError(f"metric {metric!r} not found in any completed job; available: {available}")
    lower_better = direction(metric, lower_better)
    table_metrics = [metric] + [m for m in (metrics or available) if m != metric]
    rows = summarize(groups, table_metrics)
    by_key = {(r.group, r.metric): r for r in rows}
    better = "lower" if lower_better else "higher"
    setups = list(dict.fromkeys(r.setup for r in rows))
    ranked, checks, places, sentences = [], [], [], []
    for setup in setups:  # rank only within a setup (same data, same task)
        mine = rank([r for r in rows if r.setup == setup], metric, lower_better)
        verdict = setup_verdicts(mine, alpha)
        ranked += mine
        checks += verdict
        ranked_ok = not verdict[0][1].startswith(("n=", "not ranked"))
        places += [str(i + 1) if ranked_ok else "–" for i in range(len(mine))]
        if not ranked_ok:
            sentences.append(
                f"`{setup}`: not ranked: n too small to rank (every group needs at least {MIN_RANK_N} completed "
                "seeds; the intervals are shown as measured)."
            )
            continue
        best = mine[0]
        n_same = sum(v.startswith("≈") for _, v in verdict)
        n_worse = sum(v.startswith("significantly") for _, v in verdict)
        sentences.append(
            f"`{setup}`: best `{best.group}` ({_cell(best)}); Welch t-test against the best at alpha={alpha:g}: "
            f"{n_same} group(s) not significantly different, {n_worse} significantly worse."
        )
    sentence = (
        f"Ranked by `{metric}` ({better} is better) within each setup (data and task); mean ± 95% CI over seeds. "
        + " ".join(sentences)
        + f" Only completed jobs contribute numbers; {len(jobs)} job(s) in total."
    )
    preempted = [j for j in jobs if j.status == "preempted"]
    if preempted:  # stopped by a signal after a checkpoint: not failures, they continue where they stopped
        sentence += (
            f" {len(preempted)} pre-empted job(s) (stopped by a signal, checkpoint kept) are resumable: train each "
            f"again with its overrides and hydra.run.dir=<its directory> (e.g. {preempted[0].path})."
        )

    header = ["setup", "#", "group", *STATUSES]
    header += [f"{m} (mean ± ci95)" for m in table_metrics] + [f"p vs best ({metric})", "vs best"]
    lines = [
        [r.setup, place, r.group, *(str(getattr(r, s)) for s in STATUSES)]
        + [_cell(by_key[r.group, m]) for m in table_metrics]
        + [_fmt(p), v]
        for r, place, (p, v) in zip(ranked, places, checks, strict=True)
    ]

    title = f"{sweep_dir}  —  {len(jobs)} jobs, {len(groups)} groups"
    table = Table(title=escape(title), caption=escape(sentence))
    for h in header:
        table.add_column(escape(h), overflow="fold")
    for line in lines:  # escape: "trick=[r1]" is not rich markup
        table.add_row(*map(escape, line))
    # not a terminal (log file, pipe): do not fold the table into rich's default 80 columns
    (console or Console(width=None if sys.stdout.isatty() else 240)).print(table)

    with open(sweep_dir / "comparison.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["setup", "rank", "group", "metric", "mean", "ci95", "n", *STATUSES, "p_vs_best", "vs_best"])
        for r, place, (p, v) in zip(ranked, places, checks, strict=True):
            for m in table_metrics:
                x, extra = by_key[r.group, m], ([p, v] if m == metric else ["", ""])
                counts = [getattr(x, s) for s in STATUSES]
                w.writerow([r.setup, place, r.group, m, x.mean, x.ci95, x.n, *counts] + extra)
    md = [f"# Sweep comparison: `{sweep_dir}`", "", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    md += ["| " + " | ".join(c.replace("|", "\\|") for c in line) + " |" for line in lines]
    (sweep_dir / "comparison.md").write_text("\n".join(md + ["", sentence, ""]))

    for m in dict.fromkeys([metric] + list(metrics or [])):
        known = m.rsplit("/", 1)[-1] in LOWER_BETTER + HIGHER_BETTER
        plot(sweep_dir, groups, rows, m, lower_better if m == metric else direction(m) if known else None)
    return rows


def main(argv=None) -> int:
    from gan_lab.cli import run_command

    parser = argparse.ArgumentParser(prog="gan-lab compare", description=__doc__.split("\n")[0])
    parser.add_argument("sweep_dir", help="Hydra multirun directory (holding <job>/.hydra/overrides.yaml)")
    parser.add_argument("--metric", help="ranking metric (default: first of fid, modes_captured, psnr, ...)")
    way = parser.add_mutually_exclusive_group()
    way.add_argument("--lower-better", dest="lower_better", action="store_true", default=None)
    way.add_argument("--higher-better", dest="lower_better", action="store_false")
    parser.add_argument("--metrics", help="comma-separated metrics to tabulate and plot (default: table all)")
    parser.add_argument("--alpha", type=float, default=0.05, help="significance level of the Welch t-test")
    args = parser.parse_args(argv)
    metrics = [m.strip() for m in args.metrics.split(",") if m.strip()] if args.metrics else None

    def body(_) -> int:
        if not 0 < args.alpha < 1:
            raise ConfigError(f"--alpha={args.alpha} is out of range; allowed (0, 1)")
        compare(args.sweep_dir, args.metric, args.lower_better, metrics, args.alpha)
        return 0

    code = run_command(body, [], prefix="gan-lab compare: error")
    if code:
        raise SystemExit(code)
    return 0


if __name__ == "__main__":
    sys.exit(main())
