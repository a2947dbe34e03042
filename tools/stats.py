"""Small, exact statistics used by detection and root-cause localization.

No SciPy: a normal tail and Benjamini-Hochberg are a few lines, and every dependency must
earn its place.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from functools import cache


def normal_sf(z: float) -> float:
    """P(Z >= z) for a standard normal Z (one-sided upper tail)."""
    return 0.5 * math.erfc(z / math.sqrt(2.0))


@cache
def normal_isf(tail: float) -> float:
    """The z with P(Z >= z) = `tail` for a standard normal Z (bisection on `normal_sf`).

    Remembered: root-cause localization asks for the same few tails thousands of times.
    """
    lo, hi = -10.0, 10.0
    for _ in range(80):
        mid = (lo + hi) / 2.0
        if normal_sf(mid) > tail:
            lo = mid
        else:
            hi = mid
    return (lo + hi) / 2.0


def rate_increase_p_value(
    baseline_n: float, baseline_x: float, current_n: float, current_x: float
) -> float:
    """One-sided p-value that the current rate x/n is above the baseline rate.

    A pooled two-proportion z-test with a continuity correction, cheap enough to run on
    every segment; for few events that are rare in the baseline, checked against the
    exact conditional binomial tail (`SMALL_COUNT`, `RARE_RATE`).
    """
    if baseline_n <= 0 or current_n <= 0:
        return 1.0
    p_b = baseline_x / baseline_n
    p_c = current_x / current_n
    pooled = (baseline_x + current_x) / (baseline_n + current_n)
    var = pooled * (1.0 - pooled) * (1.0 / baseline_n + 1.0 / current_n)
    if var <= 0.0:
        return 1.0 if p_c <= p_b else 0.0
    correction = 0.5 * (1.0 / baseline_n + 1.0 / current_n)
    z = (p_c - p_b - correction) / math.sqrt(var)
    p = normal_sf(z)
    bad = baseline_x + current_x
    if p < SMALL_COUNT_CHECK and bad <= SMALL_COUNT and p_b < RARE_RATE:
        # Few events that are rare to begin with (errors, a new code, failed challenges):
        # the normal tail is far too thin (7 errors where 2 were expected come out
        # "significant"). Given the bad events, each falls in the current window with
        # probability n_c / (n_b + n_c) under no change: an exact binomial tail.
        share = current_n / (baseline_n + current_n)
        return max(p, binomial_sf(round(current_x), round(bad), share))
    return p


# Below this many bad events in both windows, when they are rare in the baseline, a
# p-value that looks small is checked against the exact conditional binomial tail. The
# success rate's failures (about a tenth of attempts) keep the normal test, which is
# anticonservative on tens of failures (up to ~10x), as the detector always had it:
# exact there, small slices of a processor would go unseen (see README, Measured).
SMALL_COUNT = 100
SMALL_COUNT_CHECK = 0.05
RARE_RATE = 0.05


def binomial_sf(k: int, n: int, q: float) -> float:
    """P(X >= k) for X ~ Binomial(n, q), summed exactly (n is small)."""
    if k <= 0:
        return 1.0
    if k > n:
        return 0.0
    total = 0.0
    log_q, log_1q = math.log(q), math.log1p(-q) if q < 1.0 else -math.inf
    for i in range(k, n + 1):
        total += math.exp(
            math.lgamma(n + 1) - math.lgamma(i + 1) - math.lgamma(n - i + 1)
            + i * log_q + (n - i) * log_1q
        )  # fmt: skip
    return min(1.0, total)


# z of a two-sided 95% interval.
Z95 = 1.959964


def wilson_interval(successes: float, n: float, z: float = Z95) -> tuple[float, float]:
    """The Wilson score interval of a proportion successes/n (95% by default).

    Unlike the normal interval it stays inside [0, 1] and is honest at 0/n and n/n, which
    is where small per-kind samples of an evaluation usually sit. (0, 1) when n is 0.
    """
    if n <= 0:
        return 0.0, 1.0
    p = successes / n
    denominator = 1.0 + z * z / n
    centre = (p + z * z / (2.0 * n)) / denominator
    half = z * math.sqrt(p * (1.0 - p) / n + z * z / (4.0 * n * n)) / denominator
    # The interval holds p exactly (rounding can put 1.0 a hair above its upper end).
    return max(0.0, min(p, centre - half)), min(1.0, max(p, centre + half))


def benjamini_hochberg(p_values: Sequence[float], fdr: float) -> list[bool]:
    """Which hypotheses are rejected at false-discovery rate `fdr` (step-up procedure)."""
    m = len(p_values)
    if m == 0:
        return []
    order = sorted(range(m), key=lambda i: p_values[i])
    cutoff_rank = 0
    for rank, idx in enumerate(order, start=1):
        if p_values[idx] <= fdr * rank / m:
            cutoff_rank = rank
    rejected = [False] * m
    for idx in order[:cutoff_rank]:
        rejected[idx] = True
    return rejected


def quantile_from_cumulative(
    edges: Sequence[float], at_least: Sequence[float], total: float, q: float
) -> float:
    """Estimate the q-quantile from counts of values >= each edge (log-linear interpolation).

    `at_least[i]` is how many of `total` values are >= `edges[i]`; edges ascend. Values
    below the first edge are placed between 0 and it; above the last, at it.
    """
    if total <= 0:
        return 0.0
    target = q * total  # number of values strictly below the quantile
    lower_edge, below_lower = 0.0, 0.0
    for edge, ge in zip(edges, at_least, strict=True):
        below = total - ge
        if below >= target:
            span = below - below_lower
            frac = 0.0 if span <= 0 else (target - below_lower) / span
            if lower_edge <= 0.0:
                return edge * frac
            return float(lower_edge * (edge / lower_edge) ** frac)
        lower_edge, below_lower = edge, below
    return float(edges[-1])


def _binomial_log_likelihood(n: float, x: float) -> float:
    """Maximised log-likelihood of x events in n trials (0 for degenerate counts)."""
    if n <= 0 or x <= 0 or x >= n:
        return 0.0
    p = x / n
    return x * math.log(p) + (n - x) * math.log(1.0 - p)


def rate_change_point(counts: Sequence[tuple[float, float]]) -> int | None:
    """Where a rate steps up: the index splitting (trials, events) counts best in two.

    The split maximises the two-segment binomial likelihood over the one-segment one (the
    classic single change point); the later segment must have the higher rate. None when
    no split improves the fit or there are fewer than two buckets.
    """
    n_total = sum(n for n, _ in counts)
    x_total = sum(x for _, x in counts)
    whole = _binomial_log_likelihood(n_total, x_total)
    best, best_gain = None, 0.0
    n_before = x_before = 0.0
    for i in range(1, len(counts)):
        n_before += counts[i - 1][0]
        x_before += counts[i - 1][1]
        n_after, x_after = n_total - n_before, x_total - x_before
        if n_before <= 0 or n_after <= 0 or x_after / n_after <= x_before / n_before:
            continue
        gain = (
            _binomial_log_likelihood(n_before, x_before)
            + _binomial_log_likelihood(n_after, x_after)
            - whole
        )
        if gain > best_gain:
            best, best_gain = i, gain
    return best
