"""Small, exact statistics used by detection and root-cause localization.

No SciPy: a normal tail and Benjamini-Hochberg are a few lines, and every dependency must
earn its place.
"""

from __future__ import annotations

import math
from collections.abc import Sequence


def normal_sf(z: float) -> float:
    """P(Z >= z) for a standard normal Z (one-sided upper tail)."""
    return 0.5 * math.erfc(z / math.sqrt(2.0))


def rate_increase_p_value(
    baseline_n: float, baseline_x: float, current_n: float, current_x: float
) -> float:
    """One-sided p-value that the current rate x/n is above the baseline rate.

    A pooled two-proportion z-test with a continuity correction; it is the
    normal approximation to the beta-binomial comparison, accurate at the sample sizes
    detection accepts (`min_sample`), and cheap enough to run on every segment.
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
    return normal_sf(z)


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
