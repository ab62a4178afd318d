"""Reproduce published numbers with the `experiment=` presets: several seeds, a paper-vs-measured table.

    python -m gan_lab.reproduce pacgan_ring                          # GAN vs PacGAN2 on the ring, 3 seeds
    python -m gan_lab.reproduce all --seeds 5 --steps-scale 0.5 --out outputs/reproduce/mine
    python -m gan_lab.reproduce stacked_digits --seeds 2 trainer.accelerator=gpu   # + Hydra overrides
    python -m gan_lab.reproduce sr_set5 --sr-ckpt outputs/<srresnet run>/checkpoints/last.ckpt
    gan-lab reproduce ...                                            # the same through the CLI

Every (model, seed) job trains `experiment=<preset> seed=<k>` with gan_lab.train.train in its own directory
<out>/<entry>/<preset>/seed<k> (with .hydra/overrides.yaml, so `gan-lab compare <out>/<entry>` works too).
A job directory that already holds a finished run with the same overrides is reused, never retrained or
overwritten; one with other overrides is refused before anything trains; an interrupted one resumes from its
last.ckpt. Each entry writes <out>/<entry>/reproduction.md and .json (paper value, measured mean ± std over
the completed seeds, 95% CI, seeds, steps, wall time); <out>/reproduction.md collects every entry of <out>.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import yaml

from gan_lab.config import CONF_DIR
from gan_lab.errors import ConfigError, check_range

ROOT = Path(__file__).resolve().parents[1]
SR_ROOT = ROOT.parent / "shared" / "data" / "sr"
# defaults of every reproduce job (a later user override of the same key wins): no W&B run, no progress bar
JOB_DEFAULTS = ("logger=csv", "callbacks.progress=null", "trainer.enable_progress_bar=false")


@dataclass(frozen=True)
class Metric:
    key: str  # metrics.json key of a run
    label: str
    scale: float = 1.0  # shown value = measured x scale (hq_fraction -> %)
    digits: int = 2


@dataclass(frozen=True)
class Model:
    label: str
    preset: str | None  # conf/experiment/<preset>.yaml; None: nothing to train (the bicubic baseline)
    paper: dict = field(default_factory=dict)  # metric key -> (value, ± as published or None); absent: n/a
    note: str = ""


@dataclass(frozen=True)
class Entry:
    name: str
    title: str
    source: str
    setup: str  # the paper's setup vs the presets' (one paragraph)
    metrics: tuple[Metric, ...]
    models: tuple[Model, ...]


_TOY = (
    "Paper: G 4 x 400 ReLU + batch norm, z ~ N(0, I_2); D 3 x 200 maxout; Adam lr 1e-4, beta1 0.8; batches of "
    "100 (PacGAN2: 100 packs of 2); 400,000 iterations; metrics on 2,500 samples; 10 runs. Presets (CPU-sized): "
    "G 3 x 128 + batch norm, D 2 x 128 LeakyReLU, lr 1e-3, {steps} iterations; z, batches, beta1 and the "
    "2,500 samples as in the paper."
)


def _toy_metrics(n_modes: int) -> tuple[Metric, ...]:
    return (
        Metric("modes_captured", f"modes (of {n_modes})", digits=1),
        Metric("hq_fraction", "high-quality samples %", 100.0, 1),
        Metric("reverse_kl", "reverse KL", digits=2),
    )


ENTRIES = {
    e.name: e
    for e in (
        Entry(
            "pacgan_ring",
            "PacGAN Table 1: 2-D ring of 8 Gaussians (radius 1, sigma 0.01)",
            "Lin et al. 2018, PacGAN: The power of two samples in generative adversarial networks, Table 1",
            _TOY,
            _toy_metrics(8),
            (
                Model(
                    "GAN",
                    "pacgan_ring_gan",
                    {"modes_captured": (6.3, 0.5), "hq_fraction": (98.2, 0.2), "reverse_kl": (0.45, 0.09)},
                ),
                Model(
                    "PacGAN2",
                    "pacgan_ring_pac2",
                    {"modes_captured": (7.9, 0.1), "hq_fraction": (95.6, 2.0), "reverse_kl": (0.07, 0.03)},
                ),
            ),
        ),
        Entry(
            "pacgan_grid",
            "PacGAN Table 1: 2-D grid of 25 Gaussians ({-4,-2,0,2,4}^2, sigma 0.05)",
            "Lin et al. 2018, PacGAN, Table 1",
            _TOY,
            _toy_metrics(25),
            (
                Model(
                    "GAN",
                    "pacgan_grid_gan",
                    {"modes_captured": (17.3, 0.8), "hq_fraction": (94.8, 0.7), "reverse_kl": (0.70, 0.07)},
                ),
                Model(
                    "PacGAN2",
                    "pacgan_grid_pac2",
                    {"modes_captured": (23.8, 0.7), "hq_fraction": (91.3, 0.8), "reverse_kl": (0.13, 0.04)},
                ),
            ),
        ),
        Entry(
            "stacked_digits",
            "PacGAN Table 2 (VEEGAN setup): Stacked MNIST, 1000 modes; measured on stacked scikit-learn digits",
            "Lin et al. 2018, PacGAN, Table 2 (DCGAN and PacDCGAN2 rows)",
            "Paper: Stacked MNIST (128,000 images of 3 x 28 x 28), DCGAN 64/64 filters, z 100, Adam 2e-4 / 0.5, "
            "batch 64 (PacDCGAN2: 64 packs of 2), two G updates per batch, 50 epochs (100,000 iterations), modes "
            "counted on 26,000 samples by an MNIST classifier; 10 runs. Presets: stacked scikit-learn digits "
            "(10,000 images of 3 x 32 x 32 from 1,797 digits), DCGAN 32/32 filters, the same optimizer, batches, "
            "G updates and 26,000 samples (counted with the shipped digits classifier, per channel), {steps} "
            "iterations (CPU).",
            (Metric("stacked_modes", "modes (of 1000)", digits=1), Metric("stacked_kl", "KL to uniform", digits=2)),
            (
                Model(
                    "DCGAN",
                    "stacked_digits_dcgan",
                    {"stacked_modes": (78.9, 6.46), "stacked_kl": (4.50, 0.127)},
                    "paper row: PacGAN's own DCGAN; VEEGAN's DCGAN in the same table: 99.0 modes, KL 3.40",
                ),
                Model(
                    "PacDCGAN2",
                    "stacked_digits_pacdcgan2",
                    {"stacked_modes": (1000.0, 0.0), "stacked_kl": (0.06, 0.01)},
                ),
            ),
        ),
        Entry(
            "sr_set5",
            "x4 super-resolution on Set5 / Set14 (PSNR / SSIM on Y, 4 border pixels cropped)",
            "Ledig et al. 2017, SRGAN, Table 2 (bicubic and SRResNet rows)",
            "Paper: SRResNet 16 blocks x 64 features, 350,000 ImageNet images, 10^6 updates. Preset "
            "experiment=srresnet_x4 (CPU-sized; see the preset), {steps} iterations, or a given --sr-ckpt.",
            (
                Metric("set5_psnr_y", "Set5 PSNR dB", digits=2),
                Metric("set5_ssim_y", "Set5 SSIM", digits=4),
                Metric("set14_psnr_y", "Set14 PSNR dB", digits=2),
                Metric("set14_ssim_y", "Set14 SSIM", digits=4),
            ),
            (
                Model(
                    "bicubic",
                    None,
                    {"set5_psnr_y": (28.43, None), "set14_psnr_y": (25.99, None)},
                    "deterministic: evaluated once; SSIM definitions differ between papers (n/a)",
                ),
                Model(
                    "SRResNet",
                    "srresnet_x4",
                    {
                        "set5_psnr_y": (32.05, None),
                        "set5_ssim_y": (0.9019, None),
                        "set14_psnr_y": (28.49, None),
                        "set14_ssim_y": (0.8184, None),
                    },
                ),
            ),
        ),
    )
}
SR_SETS = {"set5": "CSet5", "set14": "CSet14"}


# ---------------------------------------------------------------------------------------------------
# aggregation and tables (pure functions of run results)


def stats(values) -> dict:
    """mean, std (ddof 1), Student-t 95% CI half-width and n of the finite values (nan where undefined)."""
    from gan_lab.compare import ci95

    x = [float(v) for v in values if v is not None and math.isfinite(float(v))]
    mean, half = ci95(x)
    std = float(np.std(x, ddof=1)) if len(x) > 1 else math.nan
    return {"mean": mean, "std": std, "ci95": half, "n": len(x), "values": x}


def summarize_model(model: Model, runs: list[dict], metrics: tuple[Metric, ...]) -> dict:
    """One model's row: runs are metrics.json-like dicts with `status` (and seed, wall_time_s, steps)."""
    done = [r for r in runs if r.get("status") == "completed"]
    measured = {m.key: stats(r.get(m.key) for r in done) for m in metrics}
    return {
        "label": model.label,
        "preset": model.preset,
        "note": model.note,
        "paper": {m.key: list(model.paper[m.key]) if m.key in model.paper else None for m in metrics},
        "measured": measured,
        "seeds": [r.get("seed") for r in runs],
        "completed": len(done),
        "diverged": sum(r.get("status") == "diverged" for r in runs),
        "failed": sum(r.get("status") not in ("completed", "diverged") for r in runs),
        "steps": sorted({int(r["steps"]) for r in done if isinstance(r.get("steps"), (int, float))}),
        "wall_time_s": round(sum(float(r.get("wall_time_s") or 0.0) for r in runs), 1),
        "runs": runs,
    }


def _num(x: float, digits: int) -> str:
    return "n/a" if x is None or not math.isfinite(x) else f"{x:.{digits}f}"


def paper_cell(value, metric: Metric) -> str:
    if not value:
        return "n/a"
    mean, err = value
    return _num(mean, metric.digits) + ("" if err is None else f" ± {_num(err, metric.digits)}")


def measured_cell(s: dict, metric: Metric) -> str:
    """'mean ± std' of the completed seeds in the shown unit ('mean' alone for one seed; n/a for none)."""
    if not s["n"]:
        return "n/a"
    text = _num(s["mean"] * metric.scale, metric.digits)
    return text if s["n"] < 2 else f"{text} ± {_num(s['std'] * metric.scale, metric.digits)}"


def render_entry(summary: dict) -> str:
    """Markdown section of one entry's summary (see summarize_entry)."""
    entry = ENTRIES[summary["entry"]]
    head = ["model", "experiment", "seeds done", "steps"]
    for m in entry.metrics:
        head += [f"{m.label}: paper", f"{m.label}: measured"]
    head.append("wall time s")
    lines = [
        f"### `{entry.name}`: {entry.title}",
        "",
        f"Source: {entry.source}. {summary['setup']}",
        "",
    ]
    if summary.get("skipped"):
        return "\n".join(lines + [f"Skipped: {summary['skipped']}", ""])
    lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    notes = []
    for row in summary["models"]:
        total = len(row["seeds"])
        done = f"{row['completed']}/{total}"
        if row["diverged"] or row["failed"]:
            done += f" ({row['diverged']} diverged, {row['failed']} failed)"
        cells = [row["label"], f"`{row['preset']}`" if row["preset"] else "-", done]
        cells.append(", ".join(map(str, row["steps"])) or "-")
        for m in entry.metrics:
            cells += [paper_cell(row["paper"][m.key], m), measured_cell(row["measured"][m.key], m)]
        cells.append(f"{row['wall_time_s']:.0f}")
        lines.append("| " + " | ".join(cells) + " |")
        if row["note"]:
            notes.append(f"{row['label']}: {row['note']}")
    lines += [
        "",
        "Paper: the published value (± as published). Measured: mean ± std over the completed seeds "
        f"(seeds {summary['seeds']}; 95% CIs in reproduction.json); wall time: sum over the model's jobs "
        f"(threads={summary.get('threads')})"
        + (f"; the entry took {summary['elapsed_s']:.0f} s." if summary.get("elapsed_s") else "."),
    ]
    lines += [f"- {n}" for n in notes]
    return "\n".join(lines + [""])


def summarize_entry(entry: Entry, results: dict[str, list[dict]], **info) -> dict:
    """Entry summary from {model label: [run dicts]}; info: seeds, steps_scale, overrides, threads, ..."""
    steps = sorted({s for runs in results.values() for r in runs for s in [r.get("steps")] if s})
    setup = entry.setup.replace("{steps}", "/".join(str(s) for s in steps) or "the preset's")
    return {
        "entry": entry.name,
        "title": entry.title,
        "source": entry.source,
        "setup": setup,
        **info,
        "models": [summarize_model(m, results.get(m.label, []), entry.metrics) for m in entry.models],
    }


def write_tables(out: Path, summary: dict) -> str:
    """<out>/<entry>/reproduction.md + .json, then <out>/reproduction.md + .json over all entries in out."""
    edir = out / summary["entry"]
    edir.mkdir(parents=True, exist_ok=True)
    text = render_entry(summary)
    (edir / "reproduction.md").write_text(text)
    (edir / "reproduction.json").write_text(json.dumps(summary, indent=2, default=_json_default))
    every = [json.loads(p.read_text()) for p in sorted(out.glob("*/reproduction.json"))]
    every = [s for s in every if s.get("entry") in ENTRIES]
    (out / "reproduction.md").write_text("# Reproduction\n\n" + "\n".join(render_entry(s) for s in every))
    (out / "reproduction.json").write_text(json.dumps(every, indent=2, default=_json_default))
    return text


def _json_default(x):
    return float(x) if isinstance(x, (np.floating, np.integer)) else str(x)


# ---------------------------------------------------------------------------------------------------
# jobs


def job_overrides(preset: str, seed: int, steps_scale: float, user: list[str]) -> list[str]:
    """The overrides a job is trained (and recorded) with: preset, seed, scaled max_steps, defaults, user's."""
    base = [f"experiment={preset}", f"seed={seed}"]
    if steps_scale != 1.0 and not any(o.lstrip("+").startswith("trainer.max_steps=") for o in user):
        steps = compose(base + list(JOB_DEFAULTS) + user).trainer.max_steps
        base.append(f"trainer.max_steps={max(1, round(steps * steps_scale))}")
    keys = {o.lstrip("+~").split("=", 1)[0] for o in user}
    return base + [o for o in JOB_DEFAULTS if o.split("=", 1)[0] not in keys] + list(user)


def compose(overrides: list[str]):
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir

    with initialize_config_dir(version_base="1.3", config_dir=str(CONF_DIR)):
        return hydra_compose("train", overrides=list(overrides))


def _read_overrides(run_dir: Path) -> list[str] | None:
    try:
        return [str(o) for o in yaml.safe_load((run_dir / ".hydra" / "overrides.yaml").read_text()) or []]
    except (OSError, yaml.YAMLError):
        return None


def plan_job(run_dir: Path, overrides: list[str], max_steps: int) -> str:
    """'train', 'resume' or 'reuse' for a job directory; ConfigError when it holds something else.

    A finished job (diverged, or completed with all `max_steps`) is reused; an unfinished one (no metrics.json,
    status failed, or fewer steps: Ctrl+C ends Lightning with sys.exit) resumes from its last.ckpt."""
    if not run_dir.exists():
        return "train"
    recorded = _read_overrides(run_dir)
    if recorded != overrides:
        raise ConfigError(
            f"job directory {run_dir} already holds a run with other overrides ({recorded}, now {overrides}); "
            "choose another --out (existing runs are never overwritten)"
        )
    try:
        done = json.loads((run_dir / "metrics.json").read_text())
    except (OSError, ValueError):
        done = {}
    status, steps = done.get("status"), done.get("steps") or 0
    if status == "diverged" or (status == "completed" and steps >= max_steps):
        return "reuse"
    if (run_dir / "checkpoints" / "last.ckpt").exists():
        return "resume"
    raise ConfigError(
        f"job directory {run_dir} holds an unfinished run (status {status}, {steps} of {max_steps} steps) without "
        "checkpoints/last.ckpt to resume from; choose another --out (existing runs are never overwritten)"
    )


def run_job(run_dir: Path, overrides: list[str], action: str) -> dict:
    """Train (or resume) one job through gan_lab.train.train, or read a finished one; returns metrics.json."""
    from omegaconf import OmegaConf

    from gan_lab.train import train

    if action != "reuse":
        (run_dir / ".hydra").mkdir(parents=True, exist_ok=True)
        (run_dir / ".hydra" / "overrides.yaml").write_text(yaml.safe_dump(overrides))
        cfg = compose(overrides + (["ckpt_path=last"] if action == "resume" else []))
        (run_dir / ".hydra" / "config.yaml").write_text(OmegaConf.to_yaml(cfg))
        try:
            train(cfg, run_dir)
        except ConfigError:
            raise
        except Exception as e:  # recorded in metrics.json by train(); the other jobs go on
            print(f"  job failed: {type(e).__name__}: {e}", file=sys.stderr)
    try:
        return json.loads((run_dir / "metrics.json").read_text())
    except (OSError, ValueError):
        return {"status": "failed", "error": "no readable metrics.json"}


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


def reproduce(
    name: str,
    seeds: int = 3,
    steps_scale: float = 1.0,
    out: Path | str | None = None,
    overrides: list[str] | None = None,
    threads: int | None = 1,
    sr_ckpt: str | None = None,
    sr_root: Path | str = SR_ROOT,
) -> list[dict]:
    """Run the entries (`name` or all), write their tables; returns their summaries."""
    from gan_lab.config import validate
    from gan_lab.train import set_threads

    if name != "all" and name not in ENTRIES:
        raise ConfigError(f"reproduce: {name!r} is not an entry; allowed {', '.join(ENTRIES)}, all")
    check_range("reproduce", "--seeds", seeds, 1, 1000)
    check_range("reproduce", "--steps-scale", steps_scale, 0.0, 100.0, low_open=True)
    if threads is not None:
        set_threads(threads)
    overrides = list(overrides or [])
    if not out:  # like Hydra's run dirs: relative to the working directory, unique to the microsecond
        from datetime import datetime

        out = Path("outputs") / "reproduce" / datetime.now().strftime("%Y-%m-%d/%H-%M-%S-%f")
    out = Path(out)
    sr_root = Path(sr_root)
    if sr_ckpt is not None and not Path(sr_ckpt).is_file():
        raise ConfigError(f"--sr-ckpt={sr_ckpt!r} does not exist; give an SR run's checkpoints/last.ckpt")
    names = list(ENTRIES) if name == "all" else [name]

    # plan every job and validate its config before anything trains
    plans: dict[str, list] = {}
    skipped: dict[str, str] = {}
    for n in names:
        entry = ENTRIES[n]
        if n == "sr_set5":
            missing = [f for f in SR_SETS.values() if not (sr_root / f).is_dir()]
            if missing:
                skipped[n] = f"no benchmark folder {sr_root / missing[0]} (the shared data is absent)"
                continue
        jobs = []
        for model in entry.models:
            if model.preset is None or (n == "sr_set5" and sr_ckpt):
                jobs.append((model, None, None, None, None))
                continue
            if not (CONF_DIR / "experiment" / f"{model.preset}.yaml").is_file():
                raise ConfigError(
                    f"reproduce {n}: experiment preset {model.preset!r} is not in gan_lab/conf/experiment"
                    + ("; pass --sr-ckpt <an SR run's last.ckpt> instead" if n == "sr_set5" else "")
                )
            for seed in range(seeds):
                ov = job_overrides(model.preset, seed, steps_scale, overrides)
                cfg = compose(ov)
                validate(cfg)
                run_dir = out / n / model.preset / f"seed{seed}"
                jobs.append((model, seed, run_dir, ov, plan_job(run_dir, ov, int(cfg.trainer.max_steps))))
        plans[n] = jobs

    summaries = []
    info = {"steps_scale": steps_scale, "overrides": overrides, "threads": threads}
    for n in names:
        entry = ENTRIES[n]
        if n in skipped:
            print(f"{n}: skipped: {skipped[n]}")
            summary = summarize_entry(entry, {}, seeds=list(range(seeds)), skipped=skipped[n], **info)
            print(write_tables(out, summary))
            summaries.append(summary)
            continue
        t0, results = time.time(), {}
        for model, seed, run_dir, ov, action in plans[n]:
            if run_dir is None:  # bicubic, or a given SR checkpoint: evaluated once
                t1 = time.time()
                if model.preset is None:
                    gen, where = None, "bicubic"
                else:
                    from gan_lab.metrics.sr_benchmark import load_sr_generator

                    gen, where = load_sr_generator(sr_ckpt), sr_ckpt
                print(f"[{n}] {model.label}: evaluating {where}", flush=True)
                r = {"status": "completed", "seed": None, "dir": where, **_sr_metrics(gen, sr_root)}
                results.setdefault(model.label, []).append({**r, "wall_time_s": round(time.time() - t1, 1)})
                continue
            verb = {"train": "training", "resume": "resuming", "reuse": "reusing"}[action]
            print(f"[{n}] {model.label} seed {seed}: {verb} {' '.join(ov)} -> {run_dir}", flush=True)
            r = run_job(run_dir, ov, action)
            if n == "sr_set5":
                r = _sr_after_training(run_dir, r, sr_root)
            shown = ", ".join(f"{m.key}={r[m.key]:.4g}" for m in entry.metrics if isinstance(r.get(m.key), float))
            print(f"  {r.get('status')} ({r.get('steps', '?')} steps, {r.get('wall_time_s', '?')} s) {shown}")
            results.setdefault(model.label, []).append({**r, "seed": seed, "dir": str(run_dir)})
        summary = summarize_entry(
            entry, results, seeds=list(range(seeds)), elapsed_s=round(time.time() - t0, 1), **info
        )
        print(write_tables(out, summary), flush=True)
        summaries.append(summary)
    print(f"tables: {out / 'reproduction.md'} and {out}/<entry>/reproduction.md (+ .json)")
    return summaries


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="gan-lab reproduce", description=__doc__.split("\n")[0])
    parser.add_argument("name", help=f"entry to reproduce: {', '.join(ENTRIES)} or all")
    parser.add_argument("overrides", nargs="*", help="Hydra overrides for every job, e.g. trainer.accelerator=gpu")
    parser.add_argument("--seeds", type=int, default=3, help="seeds 0..N-1 per model (default 3)")
    parser.add_argument(
        "--steps-scale", type=float, default=1.0, help="multiply each preset's trainer.max_steps (unless overridden)"
    )
    parser.add_argument("--out", help="output dir (default outputs/reproduce/<date>/<time>); finished jobs are reused")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")
    parser.add_argument("--sr-ckpt", help="sr_set5: evaluate this SR checkpoint instead of training srresnet_x4")
    parser.add_argument("--sr-root", default=str(SR_ROOT), help="folder holding CSet5/ and CSet14/")
    args = parser.parse_args(argv)
    try:
        if args.threads is not None and args.threads < 1:
            raise ConfigError(f"--threads={args.threads} must be a positive integer; allowed [1, inf)")
        reproduce(
            args.name, args.seeds, args.steps_scale, args.out, args.overrides, args.threads, args.sr_ckpt, args.sr_root
        )
    except ConfigError as e:
        print(f"gan-lab reproduce: error: {e}", file=sys.stderr)
        return 2
    except Exception as e:
        from gan_lab.cli import _user_error, one_line

        if not _user_error(e):
            raise
        print(f"gan-lab reproduce: error: {one_line(e)}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
