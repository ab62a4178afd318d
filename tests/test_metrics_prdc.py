import math

import pytest
import torch

from gan_lab.metrics.pairwise import EXTRA
from gan_lab.metrics.prdc import density_coverage, knn_radii, kth_sq, prdc, precision_recall


def _dist(a, b):
    return math.sqrt(sum((x - y) ** 2 for x, y in zip(a, b, strict=True)))


def _nnd(points, i, k):
    """Distance from points[i] to its k-th nearest other point, by a sorted list."""
    return sorted(_dist(points[i], p) for j, p in enumerate(points) if j != i)[k - 1]


def _reference(real, fake, k_pr, k_dc):
    """Direct loops of the published formulas (Kynkaanniemi 2019; Naeem 2020)."""
    real, fake = real.tolist(), fake.tolist()
    n, m = len(real), len(fake)
    r_pr = [_nnd(real, i, k_pr) for i in range(n)]
    r_dc = [_nnd(real, i, k_dc) for i in range(n)]
    f_pr = [_nnd(fake, j, k_pr) for j in range(m)]
    precision = sum(any(_dist(f, real[i]) <= r_pr[i] for i in range(n)) for f in fake) / m
    recall = sum(any(_dist(r, fake[j]) <= f_pr[j] for j in range(m)) for r in real) / n
    density = sum(_dist(f, real[i]) <= r_dc[i] for f in fake for i in range(n)) / (k_dc * m)
    coverage = sum(min(_dist(real[i], f) for f in fake) <= r_dc[i] for i in range(n)) / n
    return {"precision": precision, "recall": recall, "density": density, "coverage": coverage}


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_prdc_matches_published_formulas(seed):
    g = torch.Generator().manual_seed(seed)
    real = torch.randn(40, 4, generator=g, dtype=torch.float64)
    fake = 0.8 * torch.randn(33, 4, generator=g, dtype=torch.float64) + 1.2  # overlapping, not identical
    got = prdc(real, fake, k_pr=3, k_dc=5, chunk=7)  # chunk smaller than the sets: exercises the chunking
    want = _reference(real, fake, 3, 5)
    for key in want:
        assert got[key] == pytest.approx(want[key], abs=1e-12), key
    assert 0 < got["precision"] < 1 and 0 < got["recall"] < 1  # the case is not degenerate


def test_prdc_chunking_does_not_change_values():
    g = torch.Generator().manual_seed(3)
    real, fake = torch.randn(300, 8, generator=g), torch.randn(250, 8, generator=g) * 1.2
    assert prdc(real, fake, chunk=64) == prdc(real, fake, chunk=4096)


def test_prdc_extremes():
    g = torch.Generator().manual_seed(4)
    real = torch.randn(200, 6, generator=g, dtype=torch.float64)
    same = prdc(real, real.clone())
    assert same["precision"] == 1.0 and same["recall"] == 1.0 and same["coverage"] == 1.0
    far = prdc(real, real + 100.0)
    assert far == {"precision": 0.0, "recall": 0.0, "density": 0.0, "coverage": 0.0}
    # a collapsed generator (all fakes near one real point) is precise but has low recall and coverage
    collapsed = real[:1] + 1e-3 * torch.randn(100, 6, generator=g, dtype=torch.float64)
    m = prdc(real, collapsed)
    assert m["precision"] == 1.0 and m["recall"] < 0.05 and m["coverage"] < 0.05


def test_wrappers_and_radii():
    g = torch.Generator().manual_seed(5)
    real, fake = (
        torch.randn(50, 3, generator=g, dtype=torch.float64),
        torch.randn(45, 3, generator=g, dtype=torch.float64),
    )
    ref3, ref5 = _reference(real, fake, 3, 3), _reference(real, fake, 5, 5)
    assert precision_recall(real, fake, k=3) == pytest.approx((ref3["precision"], ref3["recall"]))
    assert density_coverage(real, fake, k=5) == pytest.approx((ref5["density"], ref5["coverage"]))
    pts = real.tolist()
    assert knn_radii(real, 2).tolist() == pytest.approx([_nnd(pts, i, 2) for i in range(len(pts))])


def test_bad_inputs():
    with pytest.raises(ValueError, match="same D"):
        prdc(torch.randn(10, 3), torch.randn(10, 4))
    with pytest.raises(ValueError, match="more than 5 real"):
        prdc(torch.randn(5, 3), torch.randn(10, 3))


def _exact64(real: torch.Tensor, fake: torch.Tensor, k_pr: int, k_dc: int) -> dict[str, float]:
    """The four numbers from float64 distances as sums of squared differences (no matrix-product shortcut)."""
    r, f = real.double(), fake.double()
    rr, ff, fr = ((a[:, None] - b[None]).pow(2).sum(-1) for a, b in ((r, r), (f, f), (f, r)))
    r_pr, r_dc = rr.sort(1).values[:, k_pr], rr.sort(1).values[:, k_dc]
    f_pr = ff.sort(1).values[:, k_pr]
    return {
        "precision": (fr <= r_pr).any(1).double().mean().item(),
        "recall": (fr <= f_pr[:, None]).any(0).double().mean().item(),
        "density": (fr <= r_dc).sum().item() / (k_dc * len(f)),
        "coverage": (fr <= r_dc).any(0).double().mean().item(),
    }


def test_boundary_decisions_are_those_of_float64_distances_for_large_norm_features():
    """float32 features of norm ~1e4 with fakes at 1 +- 1e-4 radii from real points: a float32 matrix
    product's rounding (~1e8 x 6e-8 in squared distance) would flip them; the decisions must be float64's."""
    g = torch.Generator().manual_seed(0)
    real = (torch.randn(200, 64, generator=g) + 1e4 / 8).float()  # norm ~1e4
    radii = knn_radii(real, 3).double()
    direction = torch.nn.functional.normalize(torch.randn(200, 64, generator=g, dtype=torch.float64), dim=1)
    scale = torch.where(torch.arange(200) % 2 == 0, 1 - 1e-4, 1 + 1e-4).double()[:, None]
    fake = (real.double() + direction * radii[:, None] * scale).float()
    got, want = prdc(real, fake, k_pr=3, k_dc=5, chunk=64), _exact64(real, fake, 3, 5)
    assert got == want
    assert 0.3 < got["precision"] < 1.0  # the case sits on the boundaries: about half inside
    plain = torch.cdist(fake, real).pow(2)  # what float32 alone decides: some samples flip
    assert ((plain <= radii.float()[None] ** 2).any(1) != _exact_inside(real, fake, radii)).any()


def _exact_inside(real, fake, radii):
    return ((fake.double()[:, None] - real.double()[None]).pow(2).sum(-1) <= radii[None] ** 2).any(1)


def test_duplicated_points_count_inside_at_distance_equal_to_radius():
    """NVlabs' rule (<=): a fake equal to a real point whose k-th neighbour is a duplicate (radius 0) is
    inside its ball; the prdc package's < would count it outside."""
    g = torch.Generator().manual_seed(1)
    clusters = [1000.0 * torch.eye(3, dtype=torch.float64)[i] + torch.randn(4, 3, generator=g, dtype=torch.float64)
                for i in range(3)]  # fmt: skip
    real = torch.cat([torch.zeros(4, 3, dtype=torch.float64), *clusters])  # the origin 4 times: 3-NN radius 0
    assert (knn_radii(real, 3)[:4] == 0).all() and (knn_radii(real, 3)[4:] > 0.1).all()
    fake = torch.tensor([[0.0, 0, 0], [-500, 0, 0], [0, -500, 0], [0, 0, -500]], dtype=torch.float64)
    m = prdc(real, fake, k_pr=3, k_dc=3)
    assert m["precision"] == 0.25  # only the fake at the origin: distance 0 = radius 0 (with < it would be 0)
    assert m["density"] == 4 / (3 * 4)  # inside the 4 zero-radius balls of the duplicates
    assert m["coverage"] == 4 / 16
    assert m == _exact64(real, fake, 3, 3)


def test_knn_distances_are_float64_exact_when_neighbours_crowd_or_tie():
    """k-th neighbour distances through the three routes of the tiled search: well-separated neighbours (the
    one pair recomputed), float32 near-ties (all candidates re-ranked in float64) and more duplicates than
    the kept candidates (the row recomputed in full) all equal the k-th entry of a sorted float64 list."""
    g = torch.Generator().manual_seed(7)
    base = 3 * torch.randn(150, 16, generator=g, dtype=torch.float64)
    crowd = base[:1].repeat(EXTRA + 12, 1)  # more copies of one point than a row keeps, all at distance 0
    near = base[1:2] + 1e-6 * torch.randn(12, 16, generator=g, dtype=torch.float64)  # within float32's error
    x = torch.cat([base, crowd, near]).float()
    c = x.double() - x.double().mean(0)
    want = (c[:, None] - c[None]).pow(2).sum(-1).sort(1).values
    got = kth_sq(x, (1, 3, 5), 32)  # tiles smaller than the set: symmetric tiles and their transposes
    for col, k in enumerate((1, 3, 5)):
        assert torch.allclose(got[:, col], want[:, k], rtol=1e-12, atol=0), k
    assert (got[150 : 150 + len(crowd)] == 0).all()  # the duplicates' radii are exactly 0
    assert (got[-12:, 0] < 1e-9).all() and (got[-12:, 0] > 0).all()  # apart, far below float32's error


def test_far_apart_sets_keep_float32_screening(monkeypatch):
    """Generated features far from the real ones (every coordinate shifted by 1000): each set's neighbours
    are searched on its own mean, so the float32 error bounds stay small and only a few pairs per point are
    recomputed in float64 (centred on the real mean, every fake k-NN row fell back to a full float64 row)."""
    import gan_lab.metrics.pairwise as pw

    g = torch.Generator().manual_seed(11)
    real = torch.randn(300, 64, generator=g).relu()
    fake = torch.randn(280, 64, generator=g).relu() + 1000.0
    recomputed = []
    exact = pw.exact_sq
    monkeypatch.setattr(pw, "exact_sq", lambda a, b, i, j, *r: recomputed.append(len(i)) or exact(a, b, i, j, *r))
    got = prdc(real, fake, chunk=128)
    assert sum(recomputed) < 4 * (len(real) + len(fake))
    assert got == _exact64(real, fake, 3, 5) == {"precision": 0.0, "recall": 0.0, "density": 0.0, "coverage": 0.0}
    near = torch.randn(280, 64, generator=g).relu() + 0.05  # and an overlapping set still matches float64
    assert prdc(real, near, chunk=128) == _exact64(real, near, 3, 5)
