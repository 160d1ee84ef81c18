"""Statistics for the tables: how sure a mean over seeds is, and whether one ladder step beats the previous one.

Why: a proxy ladder trained for minutes swings by points from seed to seed, so a table of means alone invites
reading noise as an effect. Two questions are answered, each with a standard method:

- `mean_ci(values)`: the mean of top-1 over seeds with a Student-t confidence interval (mean ± t_{1-α/2, n-1} ·
  s/√n, s the sample std). With 2-3 seeds it is wide, as it should be: it is about the seed-to-seed spread.
- `paired_difference(correct_a, correct_b)`: the top-1 difference of step b over step a, measured on the *same*
  test images (per-example correctness, `predictions.npy` == `labels.npy` of each run), seeds paired by index and
  pooled. Pairing removes the image-difficulty variance that two independent means would carry, so differences of
  a fraction of a point can be resolved. Its interval is a percentile paired bootstrap over test images (Efron &
  Tibshirani 1993, "An Introduction to the Bootstrap", ch. 13): test images are resampled with replacement, the
  same images for a and b and every seed kept for each drawn image, because the images are the sampling unit the
  claim generalises over (seeds of one image are not independent). Its p-value is the exact McNemar test (McNemar
  1947; the two-sided exact binomial test on the discordant pairs, n = b + c, p = 2 · P(X ≤ min(b, c)), X ~
  Bin(n, 1/2)) on the pooled image×seed pairs; pooling treats the seeds of an image as independent, so with several
  seeds the p-value is a little optimistic: the tables mark significance by the bootstrap interval (excludes 0),
  not by p.

Implementation notes: pure NumPy (scipy is not a dependency); the t quantile comes from the regularized incomplete
beta function (continued fraction, Numerical Recipes §6.4) inverted by bisection. The bootstrap draws, per
replicate, how often each per-image difference value d_i = Σ_seeds (b - a) ∈ {-S..S} is picked: resampling N
images with replacement is exactly a multinomial draw of N over those 2S+1 values with their observed
frequencies, so 10,000 replicates of 10,000 images cost milliseconds instead of 10^8 index draws.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = ["mean_ci", "paired_difference", "mcnemar_exact", "t_quantile"]


def _betacf(a: float, b: float, x: float) -> float:
    """Continued fraction of the incomplete beta function (modified Lentz; Numerical Recipes `betacf`)."""
    tiny, eps = 1e-300, 1e-15
    qab, qap, qam = a + b, a + 1.0, a - 1.0
    c, d = 1.0, 1.0 - qab * x / qap
    d = 1.0 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 10000):
        m2 = 2 * m
        for aa in (m * (b - m) * x / ((qam + m2) * (a + m2)), -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))):
            d = 1.0 + aa * d
            d = 1.0 / (d if abs(d) > tiny else tiny)
            c = 1.0 + aa / c
            c = c if abs(c) > tiny else tiny
            h *= d * c
        if abs(d * c - 1.0) < eps:
            break
    return h


def _betainc(a: float, b: float, x: float) -> float:
    """The regularized incomplete beta function I_x(a, b)."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    front = math.exp(math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x))
    if x < (a + 1.0) / (a + b + 2.0):  # where the continued fraction converges fast; else use the symmetry
        return front * _betacf(a, b, x) / a
    return 1.0 - front * _betacf(b, a, 1.0 - x) / b


def _t_cdf(t: float, df: float) -> float:
    tail = 0.5 * _betainc(df / 2.0, 0.5, df / (df + t * t))
    return 1.0 - tail if t >= 0 else tail


def t_quantile(p: float, df: float) -> float:
    """The p-quantile of Student's t with `df` degrees of freedom (0 < p < 1), to ~1e-12."""
    if not 0.0 < p < 1.0 or df <= 0:
        raise ValueError(f"t_quantile needs 0 < p < 1 and df > 0, got p={p}, df={df}")
    if p < 0.5:
        return -t_quantile(1.0 - p, df)
    lo, hi = 0.0, 1.0
    while _t_cdf(hi, df) < p:  # bracket, then bisect: the cdf is monotone
        hi *= 2.0
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if _t_cdf(mid, df) < p else (lo, mid)
        if hi - lo <= 1e-13 * max(1.0, hi):
            break
    return 0.5 * (lo + hi)


def mean_ci(values: Sequence[float] | np.ndarray, level: float = 0.95) -> tuple[float, float, float, float]:
    """(mean, sample std, lo, hi): the Student-t `level` interval of the mean of `values` (e.g. top-1 over seeds).

    NaNs are dropped. One value: std and interval NaN (no spread to measure); none: all NaN.
    """
    x = np.asarray(values, dtype=float).ravel()
    x = x[~np.isnan(x)]
    n = len(x)
    if n == 0:
        return (math.nan,) * 4
    mean = float(x.mean())
    if n == 1:
        return mean, math.nan, math.nan, math.nan
    std = float(x.std(ddof=1))
    half = t_quantile(0.5 + level / 2.0, n - 1) * std / math.sqrt(n)
    return mean, std, mean - half, mean + half


def mcnemar_exact(only_a: int, only_b: int) -> float:
    """Two-sided exact McNemar p-value for `only_a` pairs where only a is right and `only_b` where only b is:
    min(1, 2 · P(X ≤ min(only_a, only_b))), X ~ Bin(only_a + only_b, 1/2); 1.0 without discordant pairs."""
    n, k = only_a + only_b, min(only_a, only_b)
    if n == 0:
        return 1.0
    # log C(n, j) for j = 0..k by a running sum, then log-sum-exp: exact binomial terms without huge integers
    j = np.arange(1, k + 1, dtype=float)
    log_comb = np.concatenate([[0.0], np.cumsum(np.log((n - j + 1) / j))])
    log_terms = log_comb - n * math.log(2.0)
    top = log_terms.max()
    tail = math.exp(top) * float(np.exp(log_terms - top).sum())
    return min(1.0, 2.0 * tail)


def _as_matrix(correct: Any, name: str) -> np.ndarray:
    a = np.asarray(correct)
    if a.dtype != bool:
        raise ValueError(f"{name} must be a boolean array (per-example correctness), got dtype {a.dtype}")
    if a.ndim == 1:
        a = a[None, :]
    if a.ndim != 2 or a.shape[1] == 0:
        raise ValueError(f"{name} must have shape [N] or [seeds, N] with N > 0, got {list(np.shape(correct))}")
    return a


def paired_difference(
    correct_a: Any, correct_b: Any, n_boot: int = 10000, level: float = 0.95, seed: int = 0
) -> dict[str, Any]:
    """Top-1 of b minus top-1 of a in percentage points, on the same test images, seeds pooled.

    Args:
        correct_a, correct_b: boolean [N] or [seeds, N] arrays, True where the prediction is right; test images
            in the same order, seeds paired by row index (row s of a with row s of b).
        n_boot: bootstrap replicates; level: the interval's coverage; seed: the bootstrap's RNG seed (the result
            is a pure function of the inputs and `seed`).
    Returns:
        `diff` (pp, b − a), `lo`, `hi` (percentile paired-bootstrap interval over test images), `p` (exact
        McNemar on the pooled discordant pairs), `significant` (the interval excludes 0), `n` (test images),
        `seeds`, `only_a` / `only_b` (pooled pairs where only a / only b is right).
    """
    a, b = _as_matrix(correct_a, "correct_a"), _as_matrix(correct_b, "correct_b")
    if a.shape != b.shape:
        raise ValueError(
            f"correct_a and correct_b must have the same shape (same seeds, same test images), got "
            f"{list(a.shape)} and {list(b.shape)}"
        )
    seeds, n = a.shape
    d = (b.astype(np.int64) - a.astype(np.int64)).sum(0)  # per image: Σ_seeds (b - a), in -seeds..seeds
    diff = 100.0 * float(d.sum()) / (seeds * n)
    values, counts = np.unique(d, return_counts=True)
    rng = np.random.default_rng(seed)
    # n images drawn with replacement == a multinomial draw of n over the distinct d values (see the module doc)
    draws = rng.multinomial(n, counts / n, size=n_boot)
    boot = 100.0 * (draws @ values.astype(float)) / (seeds * n)
    lo, hi = (float(q) for q in np.quantile(boot, [0.5 - level / 2.0, 0.5 + level / 2.0]))
    if len(values) == 1:  # every replicate is the same number: no interpolation noise around it
        lo = hi = diff
    only_a, only_b = int((a & ~b).sum()), int((~a & b).sum())
    return {
        "diff": diff,
        "lo": lo,
        "hi": hi,
        "p": mcnemar_exact(only_a, only_b),
        "significant": bool(lo > 0 or hi < 0),
        "n": n,
        "seeds": seeds,
        "only_a": only_a,
        "only_b": only_b,
    }
