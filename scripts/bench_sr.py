"""Super-resolution benchmark: the bicubic baseline and SR checkpoints on Set5 / Set14 (paper protocol).

    python scripts/bench_sr.py --root <folder with CSet5/, CSet14/>      # the bicubic baseline
    python scripts/bench_sr.py --ckpt outputs/<srresnet run>/checkpoints/last.ckpt --json sr.json
    python scripts/bench_sr.py --ckpt A.ckpt --ckpt B.ckpt --sets CSet5 --scale 4 --root /data/sr

PSNR / SSIM on Y, `scale` border pixels cropped, outputs rounded to 8 bits (gan_lab.metrics.sr_benchmark).
Prints one markdown row per (model, set) with the gain over bicubic.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ckpt", action="append", default=[], help="SR run checkpoint (repeatable)")
    ap.add_argument("--sets", nargs="+", default=["CSet5", "CSet14"])
    ap.add_argument("--root", required=True, help="folder holding the benchmark sets (CSet5/, CSet14/)")
    ap.add_argument("--scale", type=int, default=4)
    ap.add_argument("--json", default=None, help="also write the results here (refuses to overwrite)")
    args = ap.parse_args(argv)

    import torch

    from gan_lab.metrics.sr_benchmark import benchmark_sr, load_sr_generator

    torch.set_num_threads(max(1, torch.get_num_threads()))
    missing = [s for s in args.sets if not (Path(args.root) / s).is_dir()]
    if missing:
        print(f"error: no benchmark folder {missing[0]!r} under --root={args.root!r}", file=sys.stderr)
        return 2
    if args.json and Path(args.json).exists():
        print(f"error: --json={args.json!r} exists; choose a new path", file=sys.stderr)
        return 2
    models = {"bicubic": None} | {c: load_sr_generator(c) for c in args.ckpt}
    results = {}
    print(f"| model | set | x{args.scale} PSNR-Y (dB) | SSIM-Y | gain over bicubic (dB) | s |")
    print("|---|---|---|---|---|---|")
    for s in args.sets:
        for name, model in models.items():
            r = benchmark_sr(model, Path(args.root) / s, args.scale)
            results.setdefault(name, {})[s] = r
            gain = r["psnr_y"] - results["bicubic"][s]["psnr_y"]
            print(f"| {name} | {s} | {r['psnr_y']:.3f} | {r['ssim_y']:.4f} | {gain:+.3f} | {r['seconds']:.1f} |")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
