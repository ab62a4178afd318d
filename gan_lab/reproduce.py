"""Reproduce published tables: paper presets trained over seeds, paper vs measured in the paper's statistic.

    gan-lab reproduce pacgan_ring pacgan_grid              # 10 seeds per model, parallel jobs on every core
    gan-lab reproduce unrolled_stacked data.root=data/mnist # + Hydra overrides for every job
    gan-lab reproduce pacgan_ring --scale full             # the paper's own schedule (GPU / SLURM sized)
    gan-lab reproduce pacgan_ring --seeds 3 --steps-scale 0.1 --out outputs/reproduce/quick
    gan-lab reproduce pacgan_ring --out <out> --no-train --docs docs/reproduction.md   # re-tabulate finished jobs
    gan-lab reproduce unrolled_stacked --out <out> --from <other out>/unrolled_stacked/reproduction.json
    gan-lab reproduce --list

Each table is a file gan_lab/conf/reproduce/<name>.yaml: the paper's values with their ± (`statistic`: se or std,
over `paper_runs` trials), the models (an `experiment=` preset plus overrides), the paper's claims to test and
the `--scale` presets. Every (model, seed) job trains `experiment=<preset> <overrides> seed=<k>` in its own
directory <out>/<name>/<model>/seed<k> through the one job runner (gan_lab.jobs): finished jobs are reused, an
interrupted one resumes, one with other overrides is refused before anything trains.

Each table writes <out>/<name>/reproduction.md, .json and .png (paper vs measured with error bars): measured =
mean ± standard error over the completed seeds (std and 95% CI in the JSON); each cell says whether it lies
within 2 combined standard errors of the paper's value; each claim gets a one-sided Welch test and a verdict.
<out>/reproduction.md/.json collect every table of <out>; `--docs FILE` writes the tables into FILE between
the `<!-- reproduction:begin -->` and `<!-- reproduction:end -->` markers, with the machine, date and version,
and keeps each table's records (every run's metrics and overrides, data paths left out) and figure next to it
in `assets/reproduction_<name>.json` and `.png`.

`--from FILE` (repeatable) adds the finished runs recorded in an earlier reproduction.json (an --out's, or the
records kept next to the docs) to the table: the seeds run on another machine, a cluster or an earlier day are
counted, not trained again. A recorded run must have the overrides this command plans for its model and seed
(data paths aside); a seed that --out also holds is taken from --out.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import re
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from gan_lab import jobs as jobrunner
from gan_lab.atomic_io import atomic_write_bytes
from gan_lab.config import CONF_DIR
from gan_lab.errors import ConfigError, check_range
from gan_lab.stats import STATISTICS, combined_se_distance, summary, to_se, welch_from_stats, welch_one_sided

ENTRY_DIR = CONF_DIR / "reproduce"
SR_SETS = {"set5": "CSet5", "set14": "CSet14"}
WITHIN = 2.0  # a measured mean "reproduces" a paper value within this many combined standard errors
ALPHA = 0.05  # significance level of the claim tests
MACHINE_FILE = "machine.json"  # in a run's directory: the machine the reproduce command trained it on
MACHINE_KIND = ("gan_lab", "cpu", "cpu_isa", "cores", "gpu")  # what tells the machines of --from runs apart
RUN_MACHINE = (*MACHINE_KIND, "torch")  # what each run keeps of the machine that trained it
MIN_N = 3  # fewest completed seeds for a cell to be compared with the paper (2 seeds give a meaningless s.e.)
MARKERS = ("<!-- reproduction:begin -->", "<!-- reproduction:end -->")
_LOCATION = re.compile(r"(^|\.)(\w*root|\w*dir|\w*path|\w*file)$")


@dataclass(frozen=True)
class Metric:
    key: str  # metrics.json key of a run
    label: str
    scale: float = 1.0  # shown value = measured x scale (hq_fraction -> %); paper values are in shown units
    digits: int = 2


@dataclass(frozen=True)
class Model:
    label: str
    experiment: str | None  # conf/experiment/<name>.yaml; None: nothing to train (the bicubic baseline)
    overrides: tuple[str, ...] = ()
    paper: dict = field(default_factory=dict)  # metric key -> [value, ± or None]; absent: n/a
    default: bool = True  # trained unless --models names others
    note: str = ""

    @property
    def slug(self) -> str:
        return re.sub(r"[^a-z0-9]+", "_", self.label.lower()).strip("_")


@dataclass(frozen=True)
class Claim:
    claim: str
    metric: str
    better: str  # model label
    than: str


@dataclass(frozen=True)
class Entry:
    name: str
    title: str
    source: str
    setup: str
    statistic: str
    paper_runs: int
    seeds: int
    metrics: tuple[Metric, ...]
    models: tuple[Model, ...]
    claims: tuple[Claim, ...] = ()
    scales: dict = field(default_factory=dict)  # name -> {overrides: [...], note: str}
    evaluate: str | None = None  # "sr_benchmark": Set5/Set14 of the trained checkpoint
    seed_parallel: bool = False  # one seeds=N run per model (members in <model>/seed<k>/) instead of N runs

    @property
    def has_paper(self) -> bool:
        """False for a table of a paper's figures (no published values): no paper columns, p-values or marks."""
        return any(m.paper for m in self.models)


# ---------------------------------------------------------------------------------------------------
# the tables (conf/reproduce/*.yaml)


def entry_names() -> list[str]:
    return sorted(p.stem for p in ENTRY_DIR.glob("*.yaml"))


def load_entry(name: str) -> Entry:
    """conf/reproduce/<name>.yaml as an Entry; a malformed file gives one ConfigError naming it and the key."""
    path = ENTRY_DIR / f"{name}.yaml"
    if not path.is_file():
        raise ConfigError(f"reproduce: {name!r} is not a table; allowed {', '.join(entry_names())}, all")
    where = f"gan_lab/conf/reproduce/{name}.yaml"
    try:
        raw = yaml.safe_load(path.read_text()) or {}
        metrics = tuple(Metric(**m) for m in raw["metrics"])
        models = tuple(
            Model(
                m["label"],
                m.get("experiment"),
                tuple(str(o) for o in m.get("overrides") or ()),
                {k: list(v) for k, v in (m.get("paper") or {}).items()},
                bool(m.get("default", True)),
                m.get("note", ""),
            )
            for m in raw["models"]
        )
        claims = tuple(Claim(**c) for c in raw.get("claims") or ())
        entry = Entry(
            name,
            raw["title"],
            raw["source"],
            " ".join(str(raw.get("setup", "")).split()),
            raw.get("statistic", "se"),
            int(raw.get("paper_runs", 1)),
            int(raw.get("seeds", 10)),
            metrics,
            models,
            claims,
            dict(raw.get("scales") or {}),
            raw.get("evaluate"),
            bool(raw.get("seed_parallel", False)),
        )
    except (KeyError, TypeError, ValueError, yaml.YAMLError) as e:
        raise ConfigError(f"{where} is malformed: {type(e).__name__}: {e}") from None
    keys, labels = {m.key for m in metrics}, [m.label for m in models]
    if entry.statistic not in STATISTICS:
        raise ConfigError(f"{where}: statistic={entry.statistic!r}; allowed {', '.join(STATISTICS)}")
    for m in models:
        if set(m.paper) - keys:
            raise ConfigError(f"{where}: model {m.label!r} has paper values for unknown metrics {set(m.paper) - keys}")
    for c in claims:
        if c.metric not in keys or c.better not in labels or c.than not in labels:
            raise ConfigError(f"{where}: claim {c.claim!r} names an unknown metric or model")
    return entry


# ---------------------------------------------------------------------------------------------------
# aggregation (pure functions of run results)


def paper_value(entry: Entry, model: Model, metric: Metric) -> dict | None:
    """The published mean, its ± as published, and that ± as a standard error (shown units)."""
    if metric.key not in model.paper:
        return None
    mean, err = model.paper[metric.key]
    return {"mean": mean, "err": err, "se": to_se(err, entry.statistic, entry.paper_runs)}


def cell_check(measured: dict, paper: dict | None) -> dict:
    """Distance of the measured mean from the paper's in combined standard errors, and whether it is within
    WITHIN of them (None: not decidable: fewer than MIN_N seeds or no published ±)."""
    if paper is None or not measured["n"]:
        return {"distance": math.nan, "within": None}
    d = combined_se_distance(measured["mean"], measured["se"], paper["mean"], paper["se"])
    return {"distance": d, "within": None if math.isnan(d) or measured["n"] < MIN_N else bool(d <= WITHIN)}


def job_wall_time(r: dict):
    """A job's wall time over all its processes (`gan_lab.jobs.run_wall_time`). The members of a seed-parallel
    run share its time: member 0 carries it."""
    if (r.get("seed_parallel") or {}).get("member", 0) != 0:
        return 0.0
    return jobrunner.run_wall_time(r)


def summarize_model(entry: Entry, model: Model, runs: list[dict]) -> dict:
    """One model's row: runs are metrics.json-like dicts with `status` (and seed, wall_time_s, steps)."""
    done = [r for r in runs if r.get("status") == "completed"]
    measured, paper, check = {}, {}, {}
    for m in entry.metrics:
        measured[m.key] = summary(r.get(m.key) * m.scale for r in done if isinstance(r.get(m.key), (int, float)))
        paper[m.key] = paper_value(entry, model, m)
        check[m.key] = cell_check(measured[m.key], paper[m.key])
    return {
        "label": model.label,
        "experiment": model.experiment,
        "overrides": list(model.overrides),
        "note": model.note,
        "paper": paper,
        "measured": measured,
        "check": check,
        "seeds": [r.get("seed") for r in runs],
        "completed": len(done),
        "diverged": sum(r.get("status") == "diverged" for r in runs),
        "failed": sum(r.get("status") not in jobrunner.FINISHED for r in runs),
        "steps": sorted({int(r["steps"]) for r in done if isinstance(r.get("steps"), (int, float))}),
        "wall_time_s": round(sum(float(job_wall_time(r) or 0.0) for r in runs), 1),
        "runs": runs,
    }


def test_claims(entry: Entry, rows: dict[str, dict]) -> list[dict]:
    """A one-sided Welch test per claim on the measured seeds (and, for reference, on the paper's own means,
    standard errors and trial counts)."""
    from gan_lab.compare import direction

    out = []
    for c in entry.claims:
        lower = direction(c.metric)
        alternative = "less" if lower else "greater"
        a, b = rows[c.better]["measured"][c.metric], rows[c.than]["measured"][c.metric]
        test = welch_one_sided(a["values"], b["values"], alternative)
        if math.isnan(test["p"]):
            verdict = f"not testable (n = {a['n']} and {b['n']}; 2 seeds a side needed)"
        elif test["p"] < ALPHA:
            verdict = f"supported (p < {ALPHA:g})"
        else:
            verdict = f"not supported at {ALPHA:g}"
        pa, pb = rows[c.better]["paper"][c.metric], rows[c.than]["paper"][c.metric]
        paper_p = math.nan
        if pa and pb:
            n = entry.paper_runs
            paper_p = welch_from_stats(pa["mean"], pa["se"], n, pb["mean"], pb["se"], n, alternative)
        out.append(
            {
                "claim": c.claim,
                "metric": c.metric,
                "better": c.better,
                "than": c.than,
                "alternative": f"mean({c.better}) {'<' if lower else '>'} mean({c.than})",
                "n": [a["n"], b["n"]],
                "means": [a["mean"], b["mean"]],
                **test,
                "verdict": verdict,
                "paper_p": paper_p,
            }
        )
    return out


def machine() -> dict:
    """Where and when the numbers were measured (no paths, no host names)."""
    from gan_lab import __version__

    cpu = platform.processor() or platform.machine()
    try:
        cpu = next(ln.split(":", 1)[1].strip() for ln in open("/proc/cpuinfo") if ln.startswith("model name"))
    except (OSError, StopIteration):
        pass
    try:
        import torch

        gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
        torch_version = torch.__version__
        # the CPU kernels torch dispatches to (AVX2, AVX512, ...): runs on one CPU model name with different
        # instruction sets need not give the same numbers
        isa = torch.backends.cpu.get_cpu_capability()
    except Exception:  # noqa: BLE001 - informational only
        gpu, torch_version, isa = None, "?", None
    return {
        "cpu": cpu,
        "cpu_isa": isa,
        "cores": jobrunner.cores(),
        "gpu": gpu,
        "load_average": [round(x, 2) for x in os.getloadavg()] if hasattr(os, "getloadavg") else None,
        "python": platform.python_version(),
        "torch": torch_version,
        "gan_lab": __version__,
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
    }


def summarize_entry(entry: Entry, results: dict[str, list[dict]], models=None, **info) -> dict:
    """Entry summary from {model label: [run dicts]}; info: seeds, scale, steps_scale, overrides, jobs, ..."""
    models = [m for m in entry.models if models is None or m.label in models]
    steps = sorted({s for runs in results.values() for r in runs for s in [r.get("steps")] if s})
    rows = {m.label: summarize_model(entry, m, results.get(m.label, [])) for m in entry.models}
    return {
        "entry": entry.name,
        "title": entry.title,
        "source": entry.source,
        "setup": entry.setup.replace("{steps}", "/".join(str(s) for s in steps) or "the preset's"),
        "statistic": entry.statistic,
        "paper_runs": entry.paper_runs,
        "machine": machine(),
        **info,
        "trained": [m.label for m in models],
        "models": [rows[m.label] for m in entry.models],
        "claims": test_claims(entry, rows),
    }


# ---------------------------------------------------------------------------------------------------
# tables and figures


def _num(x, digits: int) -> str:
    return "n/a" if x is None or not math.isfinite(x) else f"{x:.{digits}f}"


def _p(p) -> str:
    """A p-value to 4 decimals; one that would round to 0 reads "< 0.0001"."""
    return "< 0.0001" if p is not None and 0 <= p < 5e-5 else _num(p, 4)


def paper_cell(p: dict | None, metric: Metric) -> str:
    if not p:
        return "n/a"
    return _num(p["mean"], metric.digits) + ("" if p["err"] is None else f" ± {_num(p['err'], metric.digits)}")


def measured_cell(s: dict, check: dict, metric: Metric) -> str:
    """'mean ± se' of the completed seeds ('mean' alone for one seed; n/a for none), then ✓ when within 2
    combined standard errors of the paper, ✗ when not."""
    if not s["n"]:
        return "n/a"
    text = _num(s["mean"], metric.digits)
    text = text if s["n"] < 2 else f"{text} ± {_num(s['se'], metric.digits)}"
    mark = {True: " ✓", False: " ✗", None: ""}[check["within"]]
    return text + mark


def render_entry(summary: dict) -> str:
    """Markdown section of one entry's summary (see summarize_entry)."""
    entry = load_entry(summary["entry"])
    head = ["model", "experiment", "seeds done", "steps"]
    has_paper = entry.has_paper
    for m in entry.metrics:
        head += [f"{m.label}: paper", f"{m.label}: measured"] if has_paper else [m.label]
    head.append("wall time s")
    lines = [f"### `{entry.name}`: {entry.title}", "", f"Source: {entry.source}. {summary['setup']}", ""]
    if summary.get("skipped"):
        return "\n".join(lines + [f"Skipped: {summary['skipped']}", ""])
    lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    notes = []
    for row in summary["models"]:
        if row["label"] not in summary.get("trained", [row["label"]]) and not row["runs"]:
            done = "not run"
        else:
            planned = len(summary.get("seeds") or []) if row["experiment"] else len(row["seeds"])
            done = f"{row['completed']}/{max(planned, len(row['seeds']))}"
            if row["diverged"] or row["failed"]:
                done += f" ({row['diverged']} diverged, {row['failed']} failed)"
        exp = row["experiment"]
        cells = [row["label"], f"`{' '.join([exp, *row['overrides']])}`" if exp else "-", done]
        cells.append(", ".join(map(str, row["steps"])) or "-")
        for m in entry.metrics:
            measured = measured_cell(row["measured"][m.key], row["check"][m.key], m)
            cells += [paper_cell(row["paper"][m.key], m), measured] if has_paper else [measured]
        cells.append(f"{row['wall_time_s']:.0f}")
        lines.append("| " + " | ".join(cells) + " |")
        if row["note"]:
            notes.append(f"{row['label']}: {row['note']}")
    stat = {"se": "standard error", "std": "standard deviation"}[summary["statistic"]]
    mach = summary["machine"]
    lines += [
        "",
        (
            f"Paper: mean ± {stat} over {summary['paper_runs']} trials as published. Measured: mean ± standard "
            f"error over the completed seeds (std and 95% CI in reproduction.json); ✓ / ✗: within / not within "
            f"{WITHIN:g} combined standard errors of the paper's value (no mark: fewer than {MIN_N} seeds or no "
            "published ±). "
            if has_paper
            else "The source publishes no values for this experiment: mean ± standard error over the completed "
            "seeds (std and 95% CI in reproduction.json), and its claims tested below. "
        )
        + "Wall time: sum over the model's jobs, a resumed job's earlier processes included (where its "
        "metrics.json records them), a seed-parallel run once. "
        f"{'Tabulated from the finished jobs' if summary.get('tabulated_only') else 'Measured'} "
        f"{mach['date']} with gan_lab {mach['gan_lab']}, torch "
        f"{mach['torch']} on {_hardware(mach, '; load average ' + str(mach.get('load_average')) + ' at the end')}"
        + (f", {summary['jobs']} parallel job(s)" if summary.get("jobs") else "")
        + (f", scale {summary['scale']}" if summary.get("scale") else "")
        + (f", steps x {summary['steps_scale']:g}" if summary.get("steps_scale", 1.0) != 1.0 else "")
        + (f"; the table took {summary['elapsed_s']:.0f} s." if (summary.get("elapsed_s") or 0) >= 1 else "."),
    ]
    lines += [f"- {n}" for n in notes]
    for m in summary.get("merged") or []:
        ended, first = m.get("ended"), m.get("machine") or {}  # "machine": a summary written before "machines"
        when = f"recorded {m.get('date') or first.get('date') or '?'}"  # runs without their end times: file's date
        if ended:
            when = f"ended {ended[0]}" if ended[0] == ended[1] else f"ended {ended[0]} to {ended[1]}"
        on = "; ".join(f"gan_lab {w.get('gan_lab') or '?'} on {_hardware(w)}" for w in m.get("machines") or [first])
        lines.append(f"- {m['runs']} of these runs from `{m['from']}` (--from): {when}, trained with {on}.")
    if summary.get("records"):
        kept = summary.get("records_path", summary["records"])
        lines.append(
            f"- Records of every run: [`{summary['records']}`]({summary['records']}); the same table again: "
            f"`gan-lab reproduce {summary['entry']} --no-train --from {kept} --out <out>` "
            "with the options and overrides of the runs (in the records)."
        )
    if summary["claims"]:
        cols = ["claim", "one-sided alternative", "seeds", "t", "df", "p", "verdict"] + ["paper's own p"] * has_paper
        lines += ["", "| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
        for c in summary["claims"]:
            lines.append(
                f"| {c['claim']} | {c['alternative']} | {c['n'][0]} vs {c['n'][1]} | {_num(c['t'], 2)} | "
                f"{_num(c['df'], 1)} | {_p(c['p'])} | {c['verdict']} |"
                + (f" {_p(c['paper_p'])} |" if has_paper else "")
            )
        lines += [
            "",
            f"Welch's t-test on the measured seeds at alpha = {ALPHA:g}"
            + ("; the paper's own p from its means, ± (as standard errors) and trial counts." if has_paper else "."),
        ]
    return "\n".join(lines + [""])


def plot_entry(summary: dict, path: Path) -> Path | None:
    """reproduction.png: per metric, paper (± as a standard error) and measured (± standard error) per model."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if summary.get("skipped"):
        return None
    entry = load_entry(summary["entry"])
    rows = summary["models"]
    fig, axes = plt.subplots(1, len(entry.metrics), figsize=(4.5 * len(entry.metrics), 1.2 + 0.45 * len(rows)))
    axes = [axes] if len(entry.metrics) == 1 else list(axes)
    for ax, m in zip(axes, entry.metrics, strict=True):
        for i, row in enumerate(rows):
            p, s = row["paper"][m.key], row["measured"][m.key]
            if p:
                ax.errorbar(
                    p["mean"],
                    i + 0.15,
                    xerr=0 if math.isnan(p["se"]) else p["se"],
                    fmt="s",
                    color="gray",
                    capsize=3,
                    label="paper" if i == 0 else None,
                )
            if s["n"]:
                ax.errorbar(
                    s["mean"],
                    i - 0.15,
                    xerr=0 if math.isnan(s["se"]) else s["se"],
                    fmt="o",
                    color="C0",
                    capsize=3,
                    label="measured" if "measured" not in ax.get_legend_handles_labels()[1] else None,
                )
        ns = [row["measured"][m.key]["n"] for row in rows]  # seeds per row: rows may have different counts
        ax.set_yticks(range(len(rows)), [r["label"] + (f" (n={n})" if n else "") for r, n in zip(rows, ns)], fontsize=8)
        ax.set_xlabel(f"{m.label}, mean ± s.e.", fontsize=8)
        ax.invert_yaxis()
    axes[0].legend(fontsize=7, loc="best")
    fig.suptitle(f"{entry.name}: {'paper vs measured' if entry.has_paper else 'measured'}", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def _json_default(x):
    try:
        return float(x)
    except (TypeError, ValueError):
        return str(x)


def _dump(obj) -> str:
    """JSON with nan/inf as null (strict JSON readers)."""

    def clean(v):
        if isinstance(v, float) and not math.isfinite(v):
            return None
        if isinstance(v, dict):
            return {k: clean(x) for k, x in v.items()}
        if isinstance(v, (list, tuple)):
            return [clean(x) for x in v]
        return v

    return json.dumps(clean(json.loads(json.dumps(obj, default=_json_default))), indent=2)


def _load_summary(path: Path) -> dict:
    """A reproduction.json entry with nulls back to nan (the inverse of _dump for numbers)."""
    return _load_summary_text(path.read_text())


def _load_summary_text(text: str) -> dict:
    """The text of a reproduction.json entry, loaded as `_load_summary` does."""

    def back(v, key=None):
        if v is None and key in ("mean", "std", "se", "ci95", "distance", "t", "df", "p", "paper_p"):
            return math.nan
        if isinstance(v, dict):
            return {k: back(x, k) for k, x in v.items()}
        if isinstance(v, list):
            return [math.nan if x is None and key in ("means",) else back(x) for x in v]
        return v

    return back(json.loads(text))


def write_tables(out: Path, summary: dict) -> str:
    """<out>/<entry>/reproduction.md, .json, .png, then <out>/reproduction.md + .json over all entries in out."""
    edir = out / summary["entry"]
    edir.mkdir(parents=True, exist_ok=True)
    text = render_entry(summary)
    (edir / "reproduction.md").write_text(text)
    (edir / "reproduction.json").write_text(_dump(summary))
    plot_entry(summary, edir / "reproduction.png")
    every = [_load_summary(p) for p in sorted(out.glob("*/reproduction.json"))]
    every = [s for s in every if s.get("entry") in entry_names()]
    (out / "reproduction.md").write_text("# Reproduction\n\n" + "\n".join(render_entry(s) for s in every))
    (out / "reproduction.json").write_text(_dump(every))
    return text


_SECTION = re.compile(r"^### `([^`]+)`", re.M)


def write_docs(path: Path, summaries: list[dict]) -> None:
    """Write the rendered tables between the reproduction markers of `path` (regenerated from reproduction.json
    by the command itself, never copied by hand). A table's section (from its "### `<table>`" heading to the
    next) is replaced; the sections of tables not in `summaries` (tabulated from another --out) are kept;
    sections are in table-name order; text before the first heading is replaced."""
    path = Path(path)
    text = path.read_text() if path.exists() else ""
    begin, end = MARKERS
    if begin not in text or end not in text:
        raise ConfigError(f"--docs {path}: the file has no '{begin}' ... '{end}' markers to write the tables between")
    head, rest = text.split(begin, 1)
    block, tail = rest.split(end, 1)
    starts = [m.start() for m in _SECTION.finditer(block)] + [len(block)]
    sections = {_SECTION.match(block, a).group(1): block[a:b].strip() for a, b in zip(starts, starts[1:])}
    assets = path.parent / "assets"
    assets.mkdir(exist_ok=True)
    for s in summaries:  # each table's records and figure next to the docs, so the table can be tabulated again
        link = f"assets/reproduction_{s['entry']}.json"
        where = path.parent / link
        try:
            shown = where.resolve().relative_to(Path.cwd().resolve()).as_posix()
        except ValueError:  # the docs lie outside the working directory
            shown = link
        text = _dump({**_records(s), "records": link, "records_path": shown})
        where.write_text(text)
        kept = _load_summary_text(text)  # as --from will read it back
        plot_entry(kept, assets / f"reproduction_{s['entry']}.png")
        sections[s["entry"]] = render_entry(kept).strip()
    body = "\n\n".join(sections[name] for name in sorted(sections))
    path.write_text(f"{head}{begin}\n\n{body}\n\n{end}{tail}")


def portable(overrides: list[str]) -> list[str]:
    """Overrides without where things lie on one machine: the value of a location key (`data.root`, `*_dir`,
    `*path`, `*file`) or an absolute path becomes `<key>`. Runs are compared, and records kept, in this form."""
    out = []
    for o in overrides:
        key, eq, value = o.partition("=")
        bare = jobrunner.override_key(o)
        if eq and (_LOCATION.search(bare) or value.startswith(("/", "~")) or re.match(r"^[A-Za-z]:[\\/]", value)):
            o = f"{key}=<{bare}>"
        out.append(o)
    return out


def _records(summary: dict) -> dict:
    """A summary as kept next to the docs: location-free overrides, run directories relative to --out."""
    kept = json.loads(_dump(summary))
    kept["overrides"] = portable(kept.get("overrides") or [])
    for row in kept["models"]:
        for r in row["runs"]:
            if "overrides" in r:
                r["overrides"] = portable(r["overrides"])
            if isinstance(r.get("dir"), str) and Path(r["dir"]).is_absolute():
                r.pop("dir")
    return kept


def load_sources(paths, names: list[str]) -> dict[str, list[tuple[str, dict, dict]]]:
    """--from: {table: [(source, its machine, run record)]} of the finished runs recorded in each file (a
    table's reproduction.json, or a list of them as <out>/reproduction.json writes). One clear line when a file
    cannot be read or holds none of the tables named."""
    found: dict[str, list[tuple[str, dict, dict]]] = {n: [] for n in names}
    for path in paths or []:
        path = Path(path)
        shown = str(path) if not path.is_absolute() else path.name
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError) as e:
            why = "no such file" if isinstance(e, FileNotFoundError) else f"not a reproduction.json ({e})"
            raise ConfigError(f"--from {shown}: {why}; allowed a reproduction.json written by gan-lab reproduce") from e
        tables = data if isinstance(data, list) else [data]
        if not all(isinstance(t, dict) and "entry" in t and "models" in t for t in tables):
            raise ConfigError(f"--from {shown}: not a reproduction.json; allowed one written by gan-lab reproduce")
        held = [t["entry"] for t in tables]
        if not set(held) & set(names):
            raise ConfigError(f"--from {shown} holds the tables {', '.join(held)}; none of {', '.join(names)}")
        for t in tables:
            if t["entry"] not in found:
                continue
            for row in t["models"]:
                for r in row.get("runs", []):
                    if r.get("status") in jobrunner.FINISHED and isinstance(r.get("seed"), int):
                        found[t["entry"]].append((shown, t.get("machine") or {}, {**r, "label": row["label"]}))
    return found


# ---------------------------------------------------------------------------------------------------
# jobs


def _settings(overrides: list[str]) -> dict[str, str]:
    """What a list of overrides sets, key by key (the last one wins, as in Hydra), locations left out."""
    return {jobrunner.override_key(o): o for o in portable(overrides)}


def _take_recorded(records, model: Model, wanted: list[int], overrides: list[str], in_out: bool) -> list:
    """The --from runs that stand for a job (model, seeds `wanted`, `overrides`): all of its seeds, first source
    first, or none when --out holds the job (--out's run counts) or some of a seed-parallel job's seeds are
    missing (the job trains them all). A recorded run with other settings is one clear error."""
    plan, mine = _settings(overrides), {}
    for source, mach, r in records:
        if r["label"] != model.label or r["seed"] not in wanted:
            continue
        got = _settings(r.get("overrides") or [])
        if got != plan:
            diff = sorted(k for k in plan.keys() | got.keys() if plan.get(k) != got.get(k))
            shown = "; ".join(f"{got.get(k, k + ' unset')} (here {plan.get(k, k + ' unset')})" for k in diff[:3])
            raise ConfigError(
                f"--from {source}: {model.label} seed {r['seed']} was run with other settings: {shown}; allowed "
                "records of the same table options and overrides as this command (data paths aside)"
            )
        mine.setdefault(r["seed"], (source, mach, r))
    if in_out and mine:
        print(f"{model.label} seeds {sorted(mine)}: in --out and in --from; --out's runs count", flush=True)
    return [mine[k] for k in wanted] if not in_out and len(mine) == len(wanted) else []


def _recorded_machines(path: Path) -> dict[str, dict]:
    """{run dir: the machine it was trained on} from an earlier reproduction.json of the same --out ({} if none)."""
    try:
        rows = _load_summary(path)["models"]
        return {r["dir"]: r["machine"] for row in rows for r in row["runs"] if r.get("machine") and r.get("dir")}
    except (OSError, ValueError, KeyError, TypeError):
        return {}


def _hardware(where: dict, more: str = "") -> str:
    """A machine record's hardware, `more` inside its parentheses: "AMD EPYC (2 cores, AVX2[, GPU]<more>)"."""
    return (
        f"{where.get('cpu') or '?'} ({where.get('cores') or '?'} cores"
        + (f", {where['cpu_isa']}" if where.get("cpu_isa") else "")
        + (f", {where['gpu']}" if where.get("gpu") else "")
        + f"{more})"
    )


def _merged_info(taken) -> list[dict]:
    """Per --from file: how many of its runs a table counts, and where and when they were measured."""
    out: dict[str, dict] = {}
    for source, mach, r in taken:
        info = out.setdefault(source, {"from": source, "runs": 0, "machines": [], "ended": []})
        info["runs"] += 1
        where = r.get("machine") or mach or {}  # a run's own record of its machine, else its file's
        kind = {k: where.get(k) for k in MACHINE_KIND}
        info["machines"] += [kind] if kind not in info["machines"] else []
        info["date"] = info.get("date") or where.get("date")
        info["ended"] += [r["ended"]] if r.get("ended") else []
    for info in out.values():  # when its runs ended, first and last ("YYYY-MM-DD HH:MM UTC" sorts as it reads)
        info["ended"] = [min(info["ended"]), max(info["ended"])] if info["ended"] else None
    return list(out.values())


def job_overrides(model: Model, seed: int, steps_scale: float, scale: list[str], user: list[str]) -> list[str]:
    """The overrides a job is trained (and recorded) with: preset, the model's and the scale's overrides, seed,
    scaled max_steps, the job defaults and the user's."""
    base = [f"experiment={model.experiment}", *model.overrides, *scale, f"seed={seed}"]
    if steps_scale != 1.0 and not any(o.lstrip("+").startswith("trainer.max_steps=") for o in user):
        steps = jobrunner.compose(jobrunner.with_defaults(base, user)).trainer.max_steps
        base.append(f"trainer.max_steps={max(1, round(steps * steps_scale))}")
    return jobrunner.with_defaults(base, user)


def _sr_metrics(generator, sr_root: Path) -> dict:
    from gan_lab.metrics.sr_benchmark import benchmark_sr

    out = {}
    for short, folder in SR_SETS.items():
        r = benchmark_sr(generator, sr_root / folder, 4)
        out[f"{short}_psnr_y"], out[f"{short}_ssim_y"] = r["psnr_y"], r["ssim_y"]
    return out


def _sr_after_training(run_dir: Path, result: dict, sr_root: Path) -> dict:
    """The benchmark numbers of a trained SR job (cached in <run>/sr_benchmark.json)."""
    from gan_lab.metrics.sr_benchmark import load_sr_generator

    cache = run_dir / "sr_benchmark.json"
    if result.get("status") != "completed":
        return result
    if not cache.exists():
        cache.write_text(json.dumps(_sr_metrics(load_sr_generator(run_dir / "checkpoints" / "last.ckpt"), sr_root)))
    return {**result, **json.loads(cache.read_text())}


def _selected(entry: Entry, models: list[str] | None) -> list[Model]:
    if not models:
        return [m for m in entry.models if m.default]
    if models == ["all"]:
        return list(entry.models)
    labels = {m.label.lower(): m for m in entry.models}
    labels.update({m.slug: m for m in entry.models})
    unknown = [x for x in models if x.lower() not in labels]
    if unknown:
        raise ConfigError(
            f"--models {unknown[0]!r} is not a model of {entry.name}; "
            f"allowed {', '.join(m.slug for m in entry.models)}, all (or the labels of --list)"
        )
    return [labels[x.lower()] for x in models]


def reproduce(
    names,
    seeds: int | None = None,
    steps_scale: float = 1.0,
    out: Path | str | None = None,
    overrides: list[str] | None = None,
    threads: int | None = None,
    jobs: int | None = None,
    scale: str | None = None,
    models: list[str] | None = None,
    sr_ckpt: str | None = None,
    sr_root: Path | str | None = None,
    train: bool = True,
    docs: Path | str | None = None,
    seed_parallel: bool | None = None,
    sources: list[Path | str] | None = None,
) -> list[dict]:
    """Run the tables (a name, a list of names, or 'all'), write them; returns their summaries. Every job is
    planned and its config validated before anything trains. `sources` (--from): reproduction.json files whose
    finished runs count in the tables; their seeds are not trained again."""
    from gan_lab.config import validate

    names = [names] if isinstance(names, str) else list(names)
    known = entry_names()
    names = known if names == ["all"] else names
    if not names:
        raise ConfigError(f"reproduce: name a table; allowed {', '.join(known)}, all")
    entries = [load_entry(n) for n in names]
    if seeds is not None:
        check_range("reproduce", "--seeds", seeds, 1, 1000)
    check_range("reproduce", "--steps-scale", steps_scale, 0.0, 100.0, low_open=True)
    if jobs is not None:
        check_range("reproduce", "--jobs", jobs, 1, 1024)
    if threads is not None:
        check_range("reproduce", "--threads", threads, 1, 1024)
    overrides = list(overrides or [])
    if any(jobrunner.override_key(o) == "seeds" for o in overrides):
        raise ConfigError(
            "reproduce: seeds= is not a job override here; allowed --seeds N (how many seeds) and --seed-parallel "
            "(each model's seeds as one batched run)"
        )
    if docs is not None and not Path(docs).is_file():
        raise ConfigError(f"--docs {docs}: no such file (it must hold the reproduction markers)")
    if not out:  # like Hydra's run dirs: relative to the working directory, unique to the microsecond
        from datetime import datetime

        out = Path("outputs") / "reproduce" / datetime.now().strftime("%Y-%m-%d/%H-%M-%S-%f")
    out = Path(out)
    if sr_ckpt is not None and not Path(sr_ckpt).is_file():
        raise ConfigError(f"--sr-ckpt={sr_ckpt!r} does not exist; give an SR run's checkpoints/last.ckpt")
    recorded = load_sources(sources, [e.name for e in entries])

    plans: dict[str, list] = {}
    skipped: dict[str, str] = {}
    chosen: dict[str, list[Model]] = {}
    merged: dict[str, list[tuple[str, dict, dict]]] = {}  # table -> the --from runs it counts
    for entry in entries:
        if scale is not None and scale not in entry.scales:
            raise ConfigError(
                f"--scale {scale!r} is not defined for {entry.name}; allowed {', '.join(entry.scales) or 'none'}"
            )
        scale_ov = [str(o) for o in (entry.scales[scale]["overrides"] if scale else [])]
        chosen[entry.name] = _selected(entry, models)
        if entry.evaluate == "sr_benchmark":
            root = Path(sr_root) if sr_root is not None else None
            missing = [f for f in SR_SETS.values() if root is None or not (root / f).is_dir()]
            if missing:
                why = "needs --sr-root <folder holding CSet5/ and CSet14/>"
                if root is not None:
                    why = f"--sr-root={str(root)!r} has no {missing[0]}/; allowed a folder holding CSet5/ and CSet14/"
                if names != known:  # named on the command line: refuse; `all`: run the other tables
                    raise ConfigError(f"reproduce {entry.name} {why}")
                skipped[entry.name] = why
                continue
            sr_root = Path(sr_root)
        todo = []
        n_seeds = seeds or entry.seeds
        batched = entry.seed_parallel if seed_parallel is None else seed_parallel
        batched = batched and entry.evaluate is None
        merged[entry.name] = []
        for seed in range(1 if batched else n_seeds):
            for model in chosen[entry.name]:
                if model.experiment is None or (entry.evaluate == "sr_benchmark" and sr_ckpt):
                    if seed == 0:
                        todo.append((model, None, None))
                    continue
                if not (CONF_DIR / "experiment" / f"{model.experiment}.yaml").is_file():
                    raise ConfigError(
                        f"reproduce {entry.name}: experiment preset {model.experiment!r} "
                        "is not in gan_lab/conf/experiment"
                    )
                ov = job_overrides(model, seed, steps_scale, scale_ov, overrides)
                ov += [f"seeds={n_seeds}"] if batched else []  # members seed0..seed<N-1> in <model>/seed<k>/
                cfg = jobrunner.compose(ov)
                validate(cfg)
                if batched:
                    from gan_lab.ensemble import check_seeds

                    check_seeds(cfg)
                run_dir = out / entry.name / model.slug / ("" if batched else f"seed{seed}")
                wanted = list(range(n_seeds)) if batched else [seed]
                taken = _take_recorded(recorded[entry.name], model, wanted, ov, run_dir.exists())
                merged[entry.name] += taken
                if len(taken) == len(wanted):  # every seed of this job was run elsewhere: not trained again
                    continue
                action = jobrunner.plan_job(run_dir, ov, int(cfg.trainer.max_steps), strict=train)
                tag = (model.label, wanted if batched else seed)
                todo.append((model, seed, jobrunner.Job(run_dir, ov, action, tag)))
        plans[entry.name] = todo

    summaries = []
    for entry in entries:
        n_seeds = seeds or entry.seeds
        info = {
            "seeds": list(range(n_seeds)),
            "steps_scale": steps_scale,
            "scale": scale,
            "overrides": overrides,
        }
        if entry.name in skipped:
            print(f"{entry.name}: skipped: {skipped[entry.name]}")
            summary = summarize_entry(
                entry, {}, [m.label for m in chosen[entry.name]], skipped=skipped[entry.name], **info
            )
            print(write_tables(out, summary))
            summaries.append(summary)
            continue
        t0, results = time.time(), {}
        here = {k: v for k, v in machine().items() if k in RUN_MACHINE}
        trained_on = _recorded_machines(out / entry.name / "reproduction.json")  # of the jobs reused below
        # else as a --from file recorded the same run (same directory, same end): a copy of --out's records,
        # when a narrower tabulation of --out has left the run out of its reproduction.json since
        same_run = {(r.get("dir"), r.get("ended")): r.get("machine") or m for _, m, r in recorded[entry.name]}
        for source, _, r in merged[entry.name]:
            results.setdefault(r["label"], []).append({k: v for k, v in r.items() if k != "label"})
            print(f"[{entry.name}] {r['label']} seed {r['seed']}: from {source}: {r.get('status')}", flush=True)
        info["merged"] = _merged_info(merged[entry.name])
        for model, _seed, job in plans[entry.name]:
            if job is None:  # bicubic, or a given SR checkpoint: evaluated once
                t1 = time.time()
                if model.experiment is None:
                    gen, where = None, "bicubic"
                else:
                    from gan_lab.metrics.sr_benchmark import load_sr_generator

                    gen, where = load_sr_generator(sr_ckpt), sr_ckpt
                print(f"[{entry.name}] {model.label}: evaluating {where}", flush=True)
                r = {"status": "completed", "seed": None, "dir": where, **_sr_metrics(gen, sr_root)}
                results.setdefault(model.label, []).append({**r, "wall_time_s": round(time.time() - t1, 1)})
        todo = [job for _, _, job in plans[entry.name] if job is not None]
        if not train:
            todo = [j for j in todo if j.action == "reuse"]  # tabulate only the finished jobs
        parallel = jobs or max(1, min(jobrunner.cores(), len([j for j in todo if j.action != "reuse"]) or 1))
        info["jobs"] = parallel if train else None
        info["tabulated_only"] = not train

        def done(job, r, entry=entry, results=results, here=here, trained_on=trained_on, same_run=same_run):
            label, seed = job.tag
            if entry.evaluate == "sr_benchmark":
                r = _sr_after_training(job.run_dir, r, sr_root)
            members = [(seed, r, job.run_dir)]
            if isinstance(seed, list):  # a seed-parallel run: its members' own metrics
                members = [(k, jobrunner.read_metrics(job.run_dir / f"seed{k}"), job.run_dir / f"seed{k}")
                           for k in seed]  # fmt: skip
            for seed, r, where in members:
                shown = ", ".join(f"{m.key}={r[m.key]:.4g}" for m in entry.metrics if isinstance(r.get(m.key), float))
                verb = "reused" if job.action == "reuse" else "done"
                print(
                    f"[{entry.name}] {label} seed {seed}: {verb}: {r.get('status')} ({r.get('steps', '?')} steps, "
                    f"{jobrunner.run_wall_time(r) or '?'} s) {shown}",
                    flush=True,
                )
                try:  # when the run ended: its metrics.json's time
                    ended = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime((where / "metrics.json").stat().st_mtime))
                except OSError:
                    ended = None
                record = {**r, "seed": seed, "overrides": list(job.overrides), "ended": ended}
                record["dir"] = (where.relative_to(out) if where.is_relative_to(out) else where).as_posix()
                kept = where / MACHINE_FILE  # kept in the run's own directory: outlives any table's JSON
                if job.action != "reuse":  # trained by this command: on this machine
                    record["machine"] = {**here, "date": ended}
                    if where.is_dir():  # atomically, as train writes metrics.json: never a torn file to read
                        atomic_write_bytes(kept, (json.dumps(record["machine"], indent=1) + "\n").encode(), "machine")
                elif kept.is_file():  # written when the run ended: dates it even where a copy reset the file times
                    record["machine"] = json.loads(kept.read_text())
                    record["ended"] = record["machine"].get("date") or ended
                elif record["dir"] in trained_on:  # as recorded when it was trained (runs before MACHINE_FILE)
                    record["machine"] = trained_on[record["dir"]]
                elif same := same_run.get((record["dir"], ended)):
                    record["machine"] = same
                results.setdefault(label, []).append(record)

        for job in todo:
            if job.action != "reuse":
                print(
                    f"[{entry.name}] {job.tag[0]} seed {job.tag[1]}: {job.action} {' '.join(job.overrides)}", flush=True
                )
        jobrunner.run_jobs(todo, parallel=parallel, threads=threads, on_done=done)
        for runs in results.values():
            runs.sort(key=lambda r: (r.get("seed") is None, r.get("seed") or 0))
        summary = summarize_entry(
            entry, results, [m.label for m in chosen[entry.name]], elapsed_s=round(time.time() - t0, 1), **info
        )
        print(write_tables(out, summary), flush=True)
        summaries.append(summary)
    if docs is not None:
        write_docs(Path(docs), [_load_summary(p) for p in sorted(out.glob("*/reproduction.json"))])
        print(f"tables written into {docs}")
    print(f"tables: {out / 'reproduction.md'} and {out}/<table>/reproduction.md (+ .json, .png)")
    return summaries


def main(argv=None) -> int:
    from gan_lab.cli import run_command

    parser = argparse.ArgumentParser(prog="gan-lab reproduce", description=__doc__.split("\n")[0])
    parser.add_argument(
        "args", nargs="*", help=f"tables ({', '.join(entry_names())} or all), then Hydra overrides for every job"
    )
    parser.add_argument("--list", action="store_true", help="list the tables and their models, then exit")
    parser.add_argument("--seeds", type=int, help="seeds 0..N-1 per model (default: the table's, 10 for the papers')")
    parser.add_argument(
        "--seed-parallel",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="train each model's seeds as one batched run, seeds=N (default: the table's seed_parallel)",
    )
    parser.add_argument(
        "--models",
        help="comma-separated models to train, by the names in [] of --list or labels without commas "
        "(default: the table's defaults; all)",
    )
    parser.add_argument("--scale", help="a schedule preset of the table, e.g. full (the paper's own schedule)")
    parser.add_argument(
        "--steps-scale", type=float, default=1.0, help="multiply each preset's trainer.max_steps (unless overridden)"
    )
    parser.add_argument("--out", help="output dir (default outputs/reproduce/<date>/<time>); finished jobs are reused")
    parser.add_argument("--jobs", type=int, help="parallel jobs (default: one per core); 1 trains in this process")
    parser.add_argument("--threads", type=int, help="torch CPU threads per job (default: cores / jobs)")
    parser.add_argument("--no-train", action="store_true", help="only tabulate the finished jobs of --out")
    parser.add_argument(
        "--from",
        dest="sources",
        action="append",
        metavar="FILE",
        help="count the finished runs recorded in this reproduction.json too (repeatable): seeds run elsewhere "
        "are not trained again",
    )
    parser.add_argument("--docs", help="also write the tables into this Markdown file, between the markers")
    parser.add_argument("--sr-ckpt", help="sr_set5: evaluate this SR checkpoint instead of training srresnet_x4")
    parser.add_argument("--sr-root", help="sr_set5: the folder holding CSet5/ and CSet14/ (required for it)")
    args = parser.parse_intermixed_args(argv)
    return run_command(lambda _: _reproduce(args), [], prefix="gan-lab reproduce: error")


def _reproduce(args) -> int:
    if args.list:
        for n in entry_names():
            e = load_entry(n)
            labels = [f"{m.label} [{m.slug}]" + ("" if m.default else " (--models)") for m in e.models]
            print(f"{n}: {e.title}\n  models: {'; '.join(labels)}\n  scales: {', '.join(e.scales) or '-'}")
        return 0
    names = [a for a in args.args if "=" not in a]
    overrides = [a for a in args.args if "=" in a]
    models = [m.strip() for m in args.models.split(",") if m.strip()] if args.models else None
    reproduce(
        names,
        args.seeds,
        args.steps_scale,
        args.out,
        overrides,
        args.threads,
        args.jobs,
        args.scale,
        models,
        args.sr_ckpt,
        args.sr_root,
        not args.no_train,
        args.docs,
        args.seed_parallel,
        args.sources,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
