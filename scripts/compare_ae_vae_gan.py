"""Autoencoder vs VAE vs DCGAN on the digits: what decoding z ~ N(0, I) gives, next to a GAN's samples.

    python scripts/compare_ae_vae_gan.py                          # trains model=ae, vae, dcgan (2000 steps each)
    python scripts/compare_ae_vae_gan.py --jobs 3                 # the three trainings as parallel jobs
    python scripts/compare_ae_vae_gan.py --steps 5000 --out outputs/ae_vae_gan trainer.accelerator=gpu
    python scripts/compare_ae_vae_gan.py --run ae=outputs/A --run vae=outputs/B --run dcgan=outputs/C   # finished runs

Each model's last checkpoint is evaluated by `gan_lab.evaluate` (samples `task.generate_samples(n)`:
decoded z ~ N(0, I) for AE and VAE, G(z) for DCGAN, through `compute_metrics`); the AE/VAE rows add
the held-out reconstruction numbers, recomputed from the checkpoint. Prints one markdown table and
writes it, the numbers (comparison.json) and a sample grid per model (<model>_samples.png) into --out.
Trailing key=value arguments are Hydra overrides for the runs this script trains (all three). The runs go
through gan_lab.jobs, the job runner `gan-lab reproduce` uses: a finished run in --out with the same overrides
is reused, an interrupted one resumes, one with other overrides is refused before anything trains.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from gan_lab.errors import ConfigError  # noqa: E402

MODELS = {"ae": "decoded z ~ N(0, I)", "vae": "decoded z ~ N(0, I)", "dcgan": "G(z), z ~ N(0, I)"}
COLUMNS = [
    "fid",
    "kid",
    "class_modes",
    "class_kl",
    "precision",
    "recall",
    "density",
    "coverage",
    "ndb_fraction",
    "diversity",
    "recon_mse",
    "recon_psnr",
]
LOWER_BETTER = {"fid", "kid", "class_kl", "ndb_fraction", "recon_mse"}


def train_models(runs: dict[str, Path], steps: int, seed: int, overrides: list[str], parallel: int) -> None:
    """Train (or reuse / resume) model=ae, vae, dcgan into their run dirs through the shared job runner."""
    from gan_lab import jobs
    from gan_lab.config import validate

    todo = []
    for model, run_dir in runs.items():
        ov = jobs.with_defaults(
            [f"model={model}", "data=digits", f"trainer.max_steps={steps}", f"seed={seed}"], overrides
        )
        validate(jobs.compose(ov))  # every config is checked before anything trains
        todo.append(jobs.Job(run_dir, ov, jobs.plan_job(run_dir, ov, steps), model))
    t0 = time.time()

    def done(job, result):
        print(f"{job.tag}: {result.get('status')} ({time.time() - t0:.0f} s), {job.run_dir}", file=sys.stderr)

    jobs.run_jobs(todo, parallel=parallel, on_done=done)


def evaluate(model: str, run_dir: Path, n_samples: int, seed: int, out: Path) -> dict:
    from PIL import Image

    from gan_lab.callbacks.samples import image_grid
    from gan_lab.evaluate import evaluate_task, load_run

    run = load_run(run_dir / "checkpoints" / "last.ckpt")
    torch.manual_seed(seed)
    metrics, protocol, samples = evaluate_task(run.task, run.datamodule, n_samples)
    Image.fromarray(image_grid(samples[:64])).save(out / f"{model}_samples.png")
    for k in ("recon_mse", "recon_psnr"):  # held-out reconstruction (AE/VAE), recomputed from the checkpoint
        if f"val/{k}" in metrics:
            metrics[k] = metrics.pop(f"val/{k}")
    run_metrics = json.loads((run_dir / "metrics.json").read_text()) if (run_dir / "metrics.json").exists() else {}
    return {
        "model": model,
        "samples": MODELS[model],
        "steps": run.step,
        "status": run_metrics.get("status", "?"),
        "run_dir": str(run_dir),
        "metrics": metrics,
        "protocol": protocol,
    }


def fmt(v) -> str:
    if v is None:
        return "–"
    return f"{v:.4g}" if isinstance(v, float) else str(v)


def markdown_table(rows: list[dict]) -> str:
    cols = [c for c in COLUMNS if any(c in r["metrics"] for r in rows)]
    head = ["model", "samples", "steps", "status"] + [f"{c} {'↓' if c in LOWER_BETTER else '↑'}" for c in cols]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        cells = [r["model"], r["samples"], fmt(r["steps"]), r["status"]] + [fmt(r["metrics"].get(c)) for c in cols]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=2000, help="trainer.max_steps of each run this script trains")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--n-samples", type=int, default=2000, help="samples per model for the metrics")
    p.add_argument("--out", type=Path, default=None, help="output folder (default outputs/ae_vae_gan/<time>)")
    p.add_argument("--run", action="append", default=[], metavar="MODEL=RUN_DIR", help="a finished run to use (repeat)")
    p.add_argument("--jobs", type=int, default=1, help="parallel training jobs (cores are shared between them)")
    p.add_argument("overrides", nargs="*", help="Hydra overrides for the runs trained here")
    args = p.parse_args(argv)

    runs = {}
    for item in args.run:
        model, _, path = item.partition("=")
        if model not in MODELS or not path:
            p.error(f"--run {item!r}: expected MODEL=RUN_DIR with MODEL one of {', '.join(MODELS)}")
        runs[model] = Path(path)
    out = args.out or ROOT / "outputs" / "ae_vae_gan" / time.strftime("%Y-%m-%d_%H-%M-%S")
    out.mkdir(parents=True, exist_ok=True)
    to_train = {model: out / model for model in MODELS if model not in runs}
    if to_train:
        try:
            train_models(to_train, args.steps, args.seed, args.overrides, max(1, args.jobs))
        except ConfigError as e:
            p.error(str(e))
    runs.update(to_train)

    rows = [evaluate(m, runs[m], args.n_samples, args.seed, out) for m in MODELS]
    table = markdown_table(rows)
    protocol = {k: v for k, v in rows[-1]["protocol"].items() if k != "n_generated"}
    note = f"\nsamples per model: {args.n_samples}; metrics protocol: {json.dumps(protocol, sort_keys=True)}"
    print(table + note)
    (out / "comparison.md").write_text(table + "\n" + note + "\n")
    (out / "comparison.json").write_text(json.dumps(rows, indent=2, default=float))
    return 0


if __name__ == "__main__":
    sys.exit(main())
