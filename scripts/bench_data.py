"""Benchmarks of the real-image data path (numbers, not tests).

    python scripts/bench_data.py prepare --src <folder of images> --files 5000 --workers 1,2
    python scripts/bench_data.py reads --batches 300
    python scripts/bench_data.py rss --images 200000 --steps 200

prepare: images/s of `gan_lab.prepare` on a folder of `--files` links to the images of `--src` (repeated),
         decoded to 64 x 64, once per worker count (a fresh cache each time).
reads:   batches/s of training reads (EpochBatches over the uint8 store, converted to [-1, 1]) from a
         memory-mapped cache vs the same cache copied to RAM; 64 x 64 x 3, batch 64. Ratio memmap / RAM.
rss:     peak RSS (VmHWM; RssAnon and RssFile sampled from /proc, Linux) of a real `python -m gan_lab.train`
         DCGAN run on a synthetic 200,000-image 64 x 64 prepared cache (2.46 GB, memory-mapped: above the
         default data.max_memory_gb), given as data.root.
Everything is written under --work (default a temporary folder) and removed afterwards.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def bench_prepare(src: Path, files: int, workers: list[int], work: Path) -> None:
    from gan_lab.data import images
    from gan_lab.data.cache import FolderSource, Settings, prepare

    originals = images.list_images(src)
    folder = work / "many"
    folder.mkdir()
    for k in range(files):
        (folder / f"{k:06d}{originals[k % len(originals)].suffix}").symlink_to(originals[k % len(originals)].resolve())
    source = FolderSource(folder)
    for w in workers:
        t0, c0 = time.perf_counter(), time.process_time()
        cache = prepare(source, Settings(size=64), cache_dir=work / f"cache-{w}", workers=w)
        dt, cpu = time.perf_counter() - t0, time.process_time() - c0
        n = cache.meta["shape"][0]
        # 1 worker decodes in this process: its CPU time is the cost per image on one free core
        per_core = f", CPU {cpu:.1f} s = {n / cpu:.0f} images/s per free core" if w == 1 else ""
        print(
            f"prepare: {n} files of {src.name} -> 64x64, {w} worker(s): wall {dt:.1f} s, "
            f"{n / dt:.0f} images/s{per_core}"
        )


def bench_reads(batches: int, work: Path, n: int = 20000) -> None:
    from gan_lab.data.base import EpochBatches
    from gan_lab.data.cache import UInt8Images

    cache = synthetic_cache(work / "reads", n)
    rates = {}
    for storage in ("ram", "memmap", "ram", "memmap"):  # twice each, the second of each reported
        store = cache.store(in_ram=storage == "ram")
        x = UInt8Images(store, mapped=storage == "memmap")
        loader = EpochBatches((x,), 64, seed=0)
        t0, done = time.perf_counter(), 0
        while done < batches:
            for b in loader:
                b.mean()  # touch the batch as a training step would
                done += 1
                if done == batches:
                    break
        rates[storage] = batches / (time.perf_counter() - t0)
    print(
        f"reads: {n} cached 64x64x3 images, batch 64: RAM {rates['ram']:.0f} batches/s, memmap "
        f"{rates['memmap']:.0f} batches/s, ratio {rates['memmap'] / rates['ram']:.2f}"
    )


def synthetic_cache(path: Path, n: int, size: int = 64):
    """A prepared cache folder of n random-ish size x size x 3 images (no decoding), written in chunks."""
    from gan_lab.data.cache import FORMAT_VERSION, PreparedCache

    path.mkdir(parents=True)
    mm = np.memmap(path / "images.u8", dtype=np.uint8, mode="w+", shape=(n, 3, size, size))
    rng = np.random.default_rng(0)
    base = rng.integers(0, 256, (1024, 3, size, size), dtype=np.uint8)
    for i in range(0, n, 1024):
        k = min(1024, n - i)
        mm[i : i + k] = np.roll(base, i // 1024, axis=0)[:k]
    mm.flush()
    del mm
    settings = {
        "size": size,
        "channels": 3,
        "crop": "center",
        "resize": "lanczos",
        "background": "white",
        "crop_seed": 0,
    }
    meta = {
        "format": FORMAT_VERSION,
        "fingerprint": f"synthetic{n}",
        "source": "synthetic",
        "kind": "synthetic",
        "settings": settings,
        "shape": [n, 3, size, size],
        "labels_mode": "none",
        "classes": None,
        "class_counts": None,
        "skipped": [],
        "size_histogram": {f"{size}x{size}": n},
        "seconds": 0,
        "workers": 0,
    }
    (path / "meta.json").write_text(json.dumps(meta))
    return PreparedCache(path)


def bench_rss(images: int, steps: int, work: Path) -> None:
    synthetic_cache(work / "big", images)
    cmd = [
        sys.executable, "-m", "gan_lab.train", "model=dcgan", "data=image_folder", f"data.root={work / 'big'}",
        "data.size=64", f"trainer.max_steps={steps}", "threads=1", "logger=none", "callbacks.metrics=null",
        "callbacks.progress=null", "callbacks.samples.every_n_steps=0", "trainer.enable_progress_bar=false",
        f"hydra.run.dir={work / 'run'}",
    ]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1", "WANDB_SILENT": "true"}
    t0 = time.perf_counter()
    log = open(work / "train.log", "w")  # noqa: SIM115 (closed below; a pipe could fill up and stall the run)
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    peak = {"VmHWM": 0, "RssAnon": 0, "RssFile": 0}  # kB; VmHWM is the kernel's peak RSS of the process
    while proc.poll() is None:
        try:
            for line in Path(f"/proc/{proc.pid}/status").read_text().splitlines():
                key, _, value = line.partition(":")
                if key in peak:
                    peak[key] = max(peak[key], int(value.split()[0]))
        except (OSError, ValueError):
            pass
        time.sleep(0.2)
    log.close()
    if proc.returncode != 0:
        raise SystemExit(f"training failed:\n{(work / 'train.log').read_text()[-3000:]}")
    data = json.loads((work / "run" / "data.json").read_text())
    print(
        f"rss: DCGAN run, {steps} steps on a {images}-image 64x64 cache ({images * 12288 / 1e9:.2f} GB, "
        f"storage={data['protocol']['storage']}): peak RSS {peak['VmHWM'] / 1e6:.2f} GB (of which at most "
        f"{peak['RssAnon'] / 1e6:.2f} GB anonymous and {peak['RssFile'] / 1e6:.2f} GB mapped files, sampled "
        f"every 0.2 s), wall {time.perf_counter() - t0:.0f} s"
    )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("what", choices=["prepare", "reads", "rss", "all"])
    p.add_argument("--src", type=Path, default=ROOT.parent / "shared" / "data" / "sr" / "CBSD68")
    p.add_argument("--files", type=int, default=5000)
    p.add_argument("--workers", default="1,2")
    p.add_argument("--batches", type=int, default=300)
    p.add_argument("--images", type=int, default=200000)
    p.add_argument("--steps", type=int, default=200)
    p.add_argument("--work", type=Path, default=None)
    a = p.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench_data_", dir=a.work))
    print(f"machine: {os.cpu_count()} cores; {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}")
    try:
        if a.what in ("prepare", "all"):
            bench_prepare(a.src, a.files, [int(w) for w in a.workers.split(",")], work)
        if a.what in ("reads", "all"):
            bench_reads(a.batches, work)
        if a.what in ("rss", "all"):
            bench_rss(a.images, a.steps, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
