"""Start-up time of the default job: from process start to its first training step, and the slowest imports.

    python scripts/bench_startup.py                  # 3 repeats of the default job, and of it with logger=csv
    python scripts/bench_startup.py --repeats 5 -- model=gan_mlp data=toy2d_ring   # other overrides

Each repeat starts `python -m gan_lab.train trainer.max_steps=1 hydra.run.dir=<tmp>` (plus the given
overrides) with one extra callback, `FirstStep`, that writes the wall-clock time when the first training
batch starts; the start-up time is that minus the time just before the process was spawned (interpreter
start, imports, config composition and validation, data, nets, loggers (W&B offline), trainer set-up).
The same job with `logger=csv` runs alternately with it: the difference is what the default W&B logger
(its import and `wandb.init`, which Lightning calls before the first step) costs; gan_lab imports W&B and
starts its service on a background thread while the data and nets are built (`gan_lab.train.start_wandb_early`).
The CPU time of the process by the first step (every thread) is printed too: a shared machine's load moves
it less than the wall clock.
Then the default command once under `python -X importtime`: the slowest imports (cumulative) and the
modules with the most time of their own, and the floor: a bare `import torch` and `import pytorch_lightning`
in fresh interpreters (what any Lightning program pays before its own code). The target: under 8 s.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytorch_lightning as pl

ROOT = Path(__file__).resolve().parents[1]
TARGET_S = 8.0
# what every run imports before any gan_lab code runs: the floor under the start-up
FLOOR = {
    "torch": "the interpreter and torch",
    "pytorch_lightning": "plus Lightning, which imports torchmetrics (and through it scipy.signal) and torch._dynamo",
}


class FirstStep(pl.Callback):
    """Writes time.time() and the process's CPU time (all its threads) to `path` when the first training batch
    starts (used in the child process)."""

    def __init__(self, path: str):
        self.path = path

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        if not os.path.exists(self.path):
            Path(self.path).write_text(f"{time.time()!r} {time.process_time()!r}")


def run_once(overrides: list[str], tmp: Path, i: int, python_flags: tuple[str, ...] = ()) -> tuple[float, float, str]:
    """(seconds to the first step, CPU seconds of the process by then, stderr) of one `python -m gan_lab.train`
    process."""
    stamp = tmp / f"first_step_{i}"
    cmd = [
        sys.executable,
        *python_flags,
        "-m",
        "gan_lab.train",
        "trainer.max_steps=1",
        f"hydra.run.dir={tmp / f'run{i}'}",
        "+callbacks.first_step._target_=bench_startup.FirstStep",
        f"+callbacks.first_step.path={stamp}",
        *overrides,
    ]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "scripts"), os.environ.get("PYTHONPATH", "")])}
    env.setdefault("WANDB_SILENT", "true")
    t0 = time.time()
    r = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
    if r.returncode != 0 or not stamp.exists():
        raise SystemExit(f"error: the job failed (exit {r.returncode}): {r.stderr.strip().splitlines()[-1:]}")
    wall, cpu = (float(v) for v in stamp.read_text().split())
    return wall - t0, cpu, r.stderr


def floor_once(module: str) -> tuple[float, float]:
    """(wall s, CPU s) of a bare `python -c "import <module>"`: the part of the start-up that is the libraries'."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-c", f"import {module}"], cwd=ROOT, check=True)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def import_times(stderr: str) -> list[tuple[int, int, str]]:
    """(self us, cumulative us, module) of every `-X importtime` line."""
    rows = []
    for line in stderr.splitlines():
        if line.startswith("import time:") and "|" in line and "[us]" not in line:
            self_us, cum_us, name = line[len("import time:") :].split("|")
            rows.append((int(self_us), int(cum_us), name.rstrip()))
    return rows


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--top", type=int, default=15, help="slowest imports listed")
    p.add_argument("overrides", nargs="*", help="Hydra overrides of the job (after --)")
    args = p.parse_args(argv)
    variants = {"": args.overrides, "logger=csv": [*args.overrides, "logger=csv"]}
    times: dict[str, list[float]] = {k: [] for k in variants}
    cpus: dict[str, list[float]] = {k: [] for k in variants}
    floors: dict[str, list[tuple[float, float]]] = {m: [] for m in FLOOR}
    load = " ".join(f"{v:.1f}" for v in os.getloadavg())
    print(f"load average before: {load}")
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(args.repeats):
            for j, (name, overrides) in enumerate(variants.items()):
                wall, cpu, _ = run_once(overrides, Path(tmp), 2 * i + j)
                times[name].append(wall)
                cpus[name].append(cpu)
                print(f"  repeat {i} {name or 'as given':10s}: {wall:.2f} s to the first training step "
                      f"(CPU time of the process by then {cpu:.2f} s)")  # fmt: skip
            for module in FLOOR:
                floors[module].append(floor_once(module))
        _, _, err = run_once(args.overrides, Path(tmp), 2 * args.repeats, ("-X", "importtime"))
    rows = import_times(err)
    top_level = [r for r in rows if not r[2].startswith("  ")]  # imported directly, not by another import
    print(f"slowest top-level imports (cumulative, one run under -X importtime; {len(rows)} modules in all):")
    for _, cum_us, name in sorted(top_level, key=lambda r: -r[1])[: args.top]:
        print(f"  {cum_us / 1e6:6.2f} s  {name.strip()}")
    print("slowest modules by their own time:")
    for self_us, _, name in sorted(rows, key=lambda r: -r[0])[: args.top // 2]:
        print(f"  {self_us / 1e6:6.2f} s  {name.strip()}")
    job = " ".join(args.overrides) or "default job"
    median = statistics.median(times[""])
    ok = median < TARGET_S
    csv = statistics.median(times["logger=csv"])
    print(f"with logger=csv instead: median {csv:.2f} s (the W&B logger's share: {median - csv:.2f} s)")
    print(
        f"CPU time to the first step: median {statistics.median(cpus['']):.2f} s, with logger=csv "
        f"{statistics.median(cpus['logger=csv']):.2f} s (moves less with other jobs' load than the wall clock)"
    )
    for module, runs in floors.items():
        print(
            f"floor: python -c 'import {module}': median {statistics.median(w for w, _ in runs):.2f} s wall, "
            f"{statistics.median(c for _, c in runs):.2f} s CPU ({FLOOR[module]})"
        )
    print(
        f"start-up to the first training step ({job}): median {median:.2f} s, best {min(times['']):.2f} s of "
        f"{args.repeats} (target < {TARGET_S:.0f} s) {'OK' if ok else 'ABOVE TARGET'}"
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
