"""`hiera.analysis.stats` against small cases computed by hand here (closed forms, counted binomial tails), never
against numbers produced by the module itself."""

from __future__ import annotations

import math

import numpy as np
import pytest

from hiera.analysis.stats import mcnemar_exact, mean_ci, paired_difference, t_quantile


def test_t_quantile_matches_closed_forms():
    # df = 1 (Cauchy): q(p) = tan(pi (p - 1/2)); df = 2: q(p) = (2p - 1) / sqrt(2 p (1 - p))
    for p in (0.9, 0.975, 0.995):
        assert t_quantile(p, 1) == pytest.approx(math.tan(math.pi * (p - 0.5)), rel=1e-10)
        assert t_quantile(p, 2) == pytest.approx((2 * p - 1) / math.sqrt(2 * p * (1 - p)), rel=1e-10)
    assert t_quantile(0.025, 2) == pytest.approx(-t_quantile(0.975, 2), rel=1e-12)
    assert t_quantile(0.975, 10) == pytest.approx(2.228139, abs=1e-6)  # printed t tables
    assert t_quantile(0.975, 10**6) == pytest.approx(1.959966, abs=1e-5)  # -> the normal quantile


def test_mean_ci_of_one_two_three():
    # mean 2, sample std 1, half-width t_{0.975,2} / sqrt(3) with t_{0.975,2} = 0.95 / sqrt(2 * 0.975 * 0.025)
    t = 0.95 / math.sqrt(2 * 0.975 * 0.025)
    assert t == pytest.approx(4.3027, abs=1e-4)
    mean, std, lo, hi = mean_ci([1.0, 2.0, 3.0])
    assert (mean, std) == (2.0, 1.0)
    assert lo == pytest.approx(2 - t / math.sqrt(3), rel=1e-10)
    assert hi == pytest.approx(2 + t / math.sqrt(3), rel=1e-10)
    # two seeds at level 0.9: t_{0.95,1} = tan(0.45 pi), std = |a - b| / sqrt(2), half = t std / sqrt(2)
    mean, std, lo, hi = mean_ci([88.0, 89.0], level=0.9)
    assert mean == 88.5
    assert std == pytest.approx(1 / math.sqrt(2))
    assert hi - mean == pytest.approx(math.tan(0.45 * math.pi) * 0.5, rel=1e-10)


def test_mean_ci_one_or_no_value():
    mean, std, lo, hi = mean_ci([87.5])
    assert mean == 87.5
    assert math.isnan(std)
    assert math.isnan(lo)
    assert math.isnan(hi)
    assert all(math.isnan(v) for v in mean_ci([]))
    assert mean_ci([1.0, float("nan"), 3.0])[:2] == (2.0, math.sqrt(2))  # NaN (an unfinished seed) dropped


def test_mcnemar_exact_counted_by_hand():
    # b = 1, c = 9: p = 2 (C(10,0) + C(10,1)) / 2^10 = 2 * 11 / 1024
    assert mcnemar_exact(1, 9) == pytest.approx(0.021484375, rel=1e-12)
    assert mcnemar_exact(9, 1) == pytest.approx(0.021484375, rel=1e-12)
    assert mcnemar_exact(0, 5) == pytest.approx(2 / 32, rel=1e-12)
    assert mcnemar_exact(3, 3) == 1.0
    assert mcnemar_exact(0, 0) == 1.0
    # a long tail: 2 * sum_{k<=40} C(100, k) / 2^100, summed with exact integers
    exact = 2 * sum(math.comb(100, k) for k in range(41)) / 2**100
    assert mcnemar_exact(40, 60) == pytest.approx(exact, rel=1e-10)


def test_paired_difference_mcnemar_on_pooled_discordant_pairs():
    # 20 images: a right on 1..10 only where b is wrong once; b right where a is wrong on 9 images
    a = np.zeros(20, bool)
    b = np.zeros(20, bool)
    a[:10] = b[:10] = True  # concordant right
    a[10], b[11:20] = True, True  # only a right: 1 image; only b right: 9 images
    r = paired_difference(a, b)
    assert (r["only_a"], r["only_b"], r["n"], r["seeds"]) == (1, 9, 20, 1)
    assert r["p"] == pytest.approx(0.021484375, rel=1e-12)
    assert r["diff"] == pytest.approx(100 * (19 - 11) / 20)  # top-1 95% vs 55%


def test_identical_differences_give_a_zero_width_interval():
    # b is right exactly where a is wrong on every image of every seed: d_i = +1 per seed everywhere
    a = np.zeros((2, 50), bool)
    b = np.ones((2, 50), bool)
    r = paired_difference(a, b, n_boot=500)
    assert r["diff"] == 100.0
    assert r["lo"] == r["hi"] == 100.0
    assert r["significant"]


def test_equal_predictions_give_zero_and_p_one():
    rng = np.random.default_rng(3)
    a = rng.random((3, 200)) < 0.7
    r = paired_difference(a, a.copy())
    assert r["diff"] == 0.0
    assert r["lo"] == r["hi"] == 0.0
    assert r["p"] == 1.0
    assert not r["significant"]


def test_bootstrap_is_reproducible_with_its_seed_and_brackets_the_difference():
    rng = np.random.default_rng(7)
    a = rng.random((2, 300)) < 0.75
    b = rng.random((2, 300)) < 0.80
    r1, r2 = paired_difference(a, b, seed=11), paired_difference(a, b, seed=11)
    assert r1 == r2
    r3 = paired_difference(a, b, seed=12)
    assert (r3["lo"], r3["hi"]) != (r1["lo"], r1["hi"])
    assert r3["diff"] == r1["diff"]
    assert r1["lo"] < r1["diff"] < r1["hi"]
    # a literal bootstrap written here (resample image indices, same for a and b, all seeds kept) agrees
    d = (b.astype(int) - a.astype(int)).sum(0)
    idx = np.random.default_rng(0).integers(0, 300, size=(4000, 300))
    boot = 100 * d[idx].mean(1) / 2
    lo, hi = np.quantile(boot, [0.025, 0.975])
    assert r1["lo"] == pytest.approx(lo, abs=0.6)
    assert r1["hi"] == pytest.approx(hi, abs=0.6)


def test_shapes_one_seed_and_many():
    rng = np.random.default_rng(5)
    a = rng.random(100) < 0.6
    b = rng.random(100) < 0.6
    flat = paired_difference(a, b, seed=1)
    assert flat == paired_difference(a[None], b[None], seed=1)  # [N] is one seed
    assert flat["diff"] == pytest.approx(100 * (b.mean() - a.mean()))
    stacked = paired_difference(np.stack([a, b]), np.stack([b, a]))  # seeds pooled: the swaps cancel
    assert stacked["diff"] == 0.0
    assert stacked["seeds"] == 2
    assert stacked["n"] == 100
    with pytest.raises(ValueError, match="same shape"):
        paired_difference(a, b[:50])
    with pytest.raises(ValueError, match="boolean"):
        paired_difference(a.astype(int), b)
