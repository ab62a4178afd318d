"""Time of the image metrics on 10k generated vs 10k real digits images (digits feature net, 128-d).

    python scripts/bench_metrics.py                  # 10k vs 10k, torch's default threads
    python scripts/bench_metrics.py --n 10000 --threads 1
    python scripts/bench_metrics.py --inception --threads 1     # the Inception path (below)

The scikit-learn digits have 1617 training images, so both sets are made from them: each image shifted by
up to 2 px and with Gaussian noise (std 0.05 for "real", 0.15 for "generated", different seeds). Metric
time depends on the number and size of the feature vectors, not on what the images show.
Printed: the time of each part (embedding the generated images, FID, KID with 100 subsets of 1000,
precision/recall (k=3) + density/coverage (k=5), NDB, diversity), then `compute_metrics` as a training
run calls it: first call (reference features computed and written to the disk cache), second call in the
same process (reference from memory) and a call with only the disk cache (a new run on the same data).
The target: FID/KID and precision/recall on 10k samples under 10 s.

`--inception`: the Inception path. (1) Feature extraction speed of the FID Inception in images/s (32 x 32
RGB inputs resized to 299 x 299 with the legacy TensorFlow resize, batches of 50) on the CPU and, when
available, on a CUDA GPU; with the real weights when they are found (gan_lab.metrics.inception), else a
randomly initialised network of the same architecture (the same speed). (2) FID + KID (100 subsets of
1000) + IS (10 splits) + precision/recall/density/coverage on 10k vs 10k given 2048-d features (and
1008 logits): target under 10 s. KID and PRDC are timed together: they share one set of Gram passes
(`gan_lab.metrics.pairwise`), as in `compute_metrics`. Then the same for a later evaluation of a run, whose
reference statistics, k-NN distances and KID sums are cached. Peak memory (resident set) is printed.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

import torch

TARGET_S = 10.0


def jittered(images: torch.Tensor, n: int, noise: float, seed: int) -> torch.Tensor:
    """n images drawn from `images`, each rolled by up to 2 px in x and y, plus Gaussian noise, in [-1, 1]."""
    g = torch.Generator().manual_seed(seed)
    idx = torch.randint(len(images), (n,), generator=g)
    shifts = torch.randint(-2, 3, (n, 2), generator=g)
    out = images[idx].clone()
    for dy in range(-2, 3):
        for dx in range(-2, 3):
            sel = ((shifts[:, 0] == dy) & (shifts[:, 1] == dx)).nonzero().flatten()
            out[sel] = torch.roll(out[sel], shifts=(dy, dx), dims=(-2, -1))
    return (out + noise * torch.randn(out.shape, generator=g)).clamp(-1, 1)


def timed(label: str, fn, rows: list):
    """Run fn; print wall and process CPU seconds (on a shared machine the CPU time is the honest one)."""
    t, c = time.perf_counter(), time.process_time()
    out = fn()
    wall, cpu = time.perf_counter() - t, time.process_time() - c
    rows.append((label, wall))
    CPU[label] = cpu
    print(f"  {label:58s} {wall:7.2f} s wall {cpu:7.2f} s CPU", flush=True)
    return out


CPU: dict[str, float] = {}


def inception_speed(device: str, n: int) -> float:
    """Images/s of FID Inception features (and logits, one pass) of n 32 x 32 RGB images on `device`."""
    from gan_lab.errors import ConfigError
    from gan_lab.metrics.features import embed
    from gan_lab.metrics.inception import FIDInceptionV3, InceptionFeatures, load_inception, weights_path

    try:
        net, which = load_inception(), "published weights"
    except ConfigError:
        net, which = InceptionFeatures(FIDInceptionV3(), "0" * 64, "legacy_tf", False, weights_path()), "random weights"
    net = net.to(device)
    x = torch.rand(n, 3, 32, 32, generator=torch.Generator().manual_seed(0)) * 2 - 1
    embed(net, x[: min(n, 50 if device == "cuda" else 2)], logits=True)  # warm-up (cuDNN autotuning, allocations)
    if device == "cuda":
        torch.cuda.synchronize()
    t, c = time.perf_counter(), time.process_time()
    embed(net, x, logits=True)
    if device == "cuda":
        torch.cuda.synchronize()
    wall, cpu = time.perf_counter() - t, time.process_time() - c
    print(f"  Inception features + logits on {device} ({which}), {n} images: {n / wall:8.1f} images/s wall, "
          f"{cpu / n:.2f} CPU s per image", flush=True)  # fmt: skip
    return n / wall


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far (MB)."""
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def inception_metrics(n: int) -> int:
    """FID + KID + IS + PRDC on n vs n given 2048-d features; returns 0 when under TARGET_S."""
    from gan_lab.metrics import fid as fid_mod
    from gan_lab.metrics.inception_score import inception_score
    from gan_lab.metrics.pairwise import KidSpec, PrdcSpec, kid_prdc

    g = torch.Generator().manual_seed(0)
    mix = torch.randn(2048, 2048, generator=g) / 2048**0.5
    f_real = (torch.randn(n, 2048, generator=g) @ mix).relu()
    f_fake = (1.1 * torch.randn(n, 2048, generator=g) @ mix).relu()
    logits = 3 * torch.randn(n, 1008, generator=g)
    rows: list[tuple[str, float]] = []
    memo: dict = {}  # what a RealStats keeps with the reference features (k-NN distances, KID's real sums)
    print(f"FID + KID + IS + PRDC on {n} vs {n} given 2048-d features (peak memory before: {peak_rss_mb():.0f} MB):")
    timed("FID (both means and covariances, float64)", lambda: fid_mod.fid(f_real, f_fake), rows)
    timed("IS (10 splits, 1008 logits)", lambda: inception_score(logits), rows)
    out = timed("KID (100 subsets of 1000) + precision/recall k=3 + density/coverage k=5",
                lambda: kid_prdc(f_real, f_fake, KidSpec(100, 1000), PrdcSpec(3, 5), cache=memo), rows)  # fmt: skip
    kid_mean = float(out["kid"].mean())
    print(f"    kid {kid_mean:.6f}  precision {out['precision']:.4f}  recall {out['recall']:.4f}  "
          f"density {out['density']:.4f}  coverage {out['coverage']:.4f}")  # fmt: skip
    total, cpu = sum(t for _, t in rows), sum(CPU[k] for k, _ in rows)
    ok = total < TARGET_S
    print(f"total {total:.2f} s wall, {cpu:.2f} s CPU (target < {TARGET_S:.0f} s) {'OK' if ok else 'ABOVE TARGET'}; "
          f"peak memory {peak_rss_mb():.0f} MB")  # fmt: skip
    print("a later evaluation of the same run (reference mean/covariance, k-NN distances and KID sums cached):")
    mu, sigma = fid_mod.gaussian(f_real)
    later: list[tuple[str, float]] = []
    timed("FID (generated covariance + Frechet distance)",
          lambda: fid_mod.frechet_distance(mu, sigma, *fid_mod.gaussian(f_fake)), later)  # fmt: skip
    timed("IS", lambda: inception_score(logits), later)
    timed("KID + PRDC (fake-fake and fake-real Gram passes)",
          lambda: kid_prdc(f_real, f_fake, KidSpec(100, 1000), PrdcSpec(3, 5), cache=memo), later)  # fmt: skip
    print(f"total {sum(t for _, t in later):.2f} s wall, {sum(CPU[k] for k, _ in later):.2f} s CPU")
    return 0 if ok else 1


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--n", type=int, default=10_000, help="generated and real images each")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    p.add_argument("--inception", action="store_true", help="benchmark the Inception path instead")
    p.add_argument("--speed-images", type=int, default=100, help="--inception: images for the CPU speed")
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.inception:
        print(f"torch {torch.__version__}, threads {torch.get_num_threads()}")
        inception_speed("cpu", args.speed_images)
        if torch.cuda.is_available():
            inception_speed("cuda", 5000)
        return inception_metrics(args.n)
    cache = tempfile.TemporaryDirectory()
    os.environ["GAN_LAB_CACHE"] = cache.name  # a fresh disk cache: the first call really computes

    from gan_lab.data.digits import DigitsDataModule
    from gan_lab.metrics import fid as fid_mod
    from gan_lab.metrics.evaluate import compute_metrics
    from gan_lab.metrics.features import embed, load_feature_net
    from gan_lab.metrics.mode_collapse import diversity, ndb, ndb_bins
    from gan_lab.metrics.prdc import kth_sq, prdc

    dm = DigitsDataModule(size=32, batch_size=64)
    dm.setup("fit")
    base = dm.split_tensors("train")[0]
    real = jittered(base, args.n, 0.05, seed=1)
    fake = jittered(base, args.n, 0.15, seed=2)
    dm._train = (real, torch.zeros(len(real), dtype=torch.int64))  # the reference: 10k images of digits
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}; {args.n} generated vs {args.n} real")

    net = load_feature_net("digits")
    rows: list[tuple[str, float]] = []
    print("parts:")
    f_real = timed("embed real (reference, uncached)", lambda: embed(net, real).float(), rows)
    f_fake, logits = timed("embed generated", lambda: embed(net, fake, logits=True), rows)
    timed("FID", lambda: fid_mod.fid(f_real, f_fake), rows)
    timed("KID (100 subsets of 1000)", lambda: fid_mod.kid(f_real, f_fake, 100, 1000), rows)
    radii = timed("k-NN radii of the reference (k=3, 5; cached after)", lambda: kth_sq(f_real, (3, 5)), rows)
    timed("precision/recall k=3 + density/coverage k=5", lambda: prdc(f_real, f_fake, 3, 5, real_radii=radii), rows)
    bins = timed("NDB bins of the reference (k-means, cached after)", lambda: ndb_bins(f_real, 50), rows)
    timed("NDB", lambda: ndb(f_real, f_fake, centroids=bins), rows)
    timed("diversity", lambda: diversity(f_real, f_fake), rows)
    parts = dict(rows)
    core = ("embed generated", "FID", "KID (100 subsets of 1000)", "precision/recall k=3 + density/coverage k=5")
    core_cached = sum(parts[k] for k in core)
    reference = ("embed real (reference, uncached)", "k-NN radii of the reference (k=3, 5; cached after)")
    core_cold = core_cached + sum(parts[k] for k in reference)

    print("compute_metrics (every metric, as a training run calls it):")
    calls = []
    for label in ("first call (reference computed, written to disk)", "second call (reference from memory)"):
        m, proto = timed(label, lambda: compute_metrics(fake, dm, n_real=args.n), calls)
        print(f"    reference_cache={proto['reference_cache']}  fid {m['fid']:.3f}  kid {m['kid']:.4f}  "
              f"precision {m['precision']:.3f}  recall {m['recall']:.3f}  density {m['density']:.3f}  "
              f"coverage {m['coverage']:.3f}")  # fmt: skip
    fid_mod._MEMO.clear()  # a new process: only the disk cache is left
    m, proto = timed("new process, disk cache", lambda: compute_metrics(fake, dm, n_real=args.n), calls)
    print(f"    reference_cache={proto['reference_cache']}")
    cache.cleanup()

    ok = core_cached < TARGET_S
    print(
        f"FID + KID + precision/recall/density/coverage on {args.n} vs {args.n}: {core_cached:.2f} s with the "
        f"reference cached (target < {TARGET_S:.0f} s) {'OK' if ok else 'ABOVE TARGET'}; {core_cold:.2f} s when the "
        f"reference is embedded too (first evaluation of a run without a disk cache)"
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
