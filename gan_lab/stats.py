"""Statistics over seeds as papers report them: mean ± standard error, std, Student-t 95% CI, one-sided Welch
tests of a paper's claims, and the distance of a measured mean from a published one in combined standard errors.

PacGAN (Table 1-3) and Unrolled GAN report mean ± standard error over 10 / 50 trials; `to_se` converts a
published ± of another statistic (std) to a standard error so that like is compared with like.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
from scipy import stats as st

STATISTICS = ("se", "std")  # what a published ± is: standard error of the mean, or standard deviation


def summary(values) -> dict:
    """n, mean, std (ddof 1), se = std / sqrt(n), ci95 half-width (Student t) and the finite values used."""
    x = [float(v) for v in values if v is not None and math.isfinite(float(v))]
    n = len(x)
    mean = float(np.mean(x)) if n else math.nan
    std = float(np.std(x, ddof=1)) if n > 1 else math.nan
    se = std / math.sqrt(n) if n > 1 else math.nan
    ci95 = float(st.t.ppf(0.975, n - 1) * se) if n > 1 else math.nan
    return {"n": n, "mean": mean, "std": std, "se": se, "ci95": ci95, "values": x}


def to_se(err: float | None, statistic: str, n: int | None) -> float:
    """A published ± as a standard error (nan when unknown)."""
    if err is None:
        return math.nan
    if statistic == "se":
        return float(err)
    if statistic == "std" and n:
        return float(err) / math.sqrt(n)
    return math.nan


def combined_se_distance(mean: float, se: float, paper_mean: float, paper_se: float) -> float:
    """|measured - paper| in units of sqrt(se_measured^2 + se_paper^2); nan where a standard error is unknown.
    A zero combined error (both exact) gives 0 for equal means and inf otherwise."""
    if not all(math.isfinite(v) for v in (mean, se, paper_mean, paper_se)):
        return math.nan
    combined = math.sqrt(se**2 + paper_se**2)
    diff = abs(mean - paper_mean)
    if combined == 0:
        return 0.0 if diff == 0 else math.inf
    return diff / combined


def welch_one_sided(a, b, alternative: str) -> dict:
    """Welch's t-test of H1: mean(a) > mean(b) ('greater') or < ('less'). Returns t, df and p (nan with fewer
    than 2 values a side; two constant samples give p = 0 or 1 by the sign of the difference, 0.5 when equal)."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    if alternative not in ("greater", "less"):
        raise ValueError(f"alternative={alternative!r}; allowed greater, less")
    if len(a) < 2 or len(b) < 2:
        return {"t": math.nan, "df": math.nan, "p": math.nan}
    va, vb = a.var(ddof=1) / len(a), b.var(ddof=1) / len(b)
    if va + vb == 0:
        d = a.mean() - b.mean()
        p = 0.5 if d == 0 else (0.0 if (d > 0) == (alternative == "greater") else 1.0)
        return {"t": math.copysign(math.inf, d) if d else 0.0, "df": math.nan, "p": p}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        r = st.ttest_ind(a, b, equal_var=False, alternative=alternative)
    df = (va + vb) ** 2 / (va**2 / (len(a) - 1) + vb**2 / (len(b) - 1))
    return {"t": float(r.statistic), "df": float(df), "p": float(r.pvalue)}


def welch_from_stats(mean_a, se_a, n_a, mean_b, se_b, n_b, alternative: str) -> float:
    """One-sided Welch p-value from published means ± standard errors and trial counts (nan when unknown)."""
    vals = (mean_a, se_a, mean_b, se_b)
    if not all(v is not None and math.isfinite(v) for v in vals) or not n_a or not n_b or n_a < 2 or n_b < 2:
        return math.nan
    if se_a == 0 and se_b == 0:
        return math.nan
    r = st.ttest_ind_from_stats(
        mean_a, se_a * math.sqrt(n_a), n_a, mean_b, se_b * math.sqrt(n_b), n_b, equal_var=False, alternative=alternative
    )
    return float(r.pvalue)
