"""Synthetic scenario generator: realistic authorization traffic with one injected incident.

A scenario (CONTRACT.md section 2) is a folder with `scenario.json` and a transactions file.
The world (processors, issuer countries, merchants, base rates) is drawn from the seed in
Python; the rows are drawn inside DuckDB from hash-based uniforms over `range(n)`, so ten
million rows take seconds and the same seed gives the same bytes on any thread count.

Every number here is chosen against shared/DOMAIN.md: regional authorization rates, a
decline-code mix where about half of declines are insufficient funds, lognormal latency per
processor, and more 3DS challenges under strong customer authentication (EU/UK). What each
incident kind does to the rows (the incident signatures of "What incidents look like in
the data"), where it hits and what its ground truth accepts is the kind's `Injection` in
the incident catalogue (tools/incidents/); this module is the engine that applies them.

The ground truth written to `expected` is measured, not assumed: after the rows are drawn,
the effect on the root-cause segment is measured and an injection too weak to be an
incident is recorded honestly as `none`.
"""

from __future__ import annotations

import hashlib
import itertools
import math
import random
import zlib
from collections import deque
from collections.abc import Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

import duckdb
from pydantic import BaseModel, ConfigDict, Field, field_validator

from tools.config import ObserveConfig
from tools.contract import (
    DEFAULT_DIMENSIONS,
    TRANSACTION_COLUMNS,
    IncidentKind,
    ScenarioSpec,
    Segment,
    format_segment,
    iso,
)
from tools.incidents import QUIET, CauseChange, IncidentKindSpec, Injection, registry
from tools.output import OutputPathError, check_output_dir
from tools.signals.names import LATENCY, VOLUME
from tools.sql import ident

FileFormat = Literal["csv.gz", "csv", "parquet", "jsonl"]
RootSize = Literal["auto", "small", "large"]


# Regions where strong customer authentication applies: relaxing 3DS there is forbidden.
SCA_REGIONS = frozenset({"EU"})

_BUCKETS = 4096  # resolution of every categorical draw: a weight of 1/4096 is the smallest
_PRIME = 1_000_000_007

# (country, region, home currency). US, GB, DE and BR are always present.
_COUNTRY_POOL: tuple[tuple[str, str, str], ...] = (
    ("US", "NA", "USD"),
    ("GB", "EU", "GBP"),
    ("DE", "EU", "EUR"),
    ("BR", "LATAM", "BRL"),
    ("CA", "NA", "CAD"),
    ("FR", "EU", "EUR"),
    ("ES", "EU", "EUR"),
    ("IT", "EU", "EUR"),
    ("NL", "EU", "EUR"),
    ("PL", "EU", "PLN"),
    ("SE", "EU", "SEK"),
    ("MX", "LATAM", "MXN"),
    ("CO", "LATAM", "COP"),
    ("CL", "LATAM", "CLP"),
    ("JP", "APAC", "JPY"),
    ("IN", "APAC", "INR"),
    ("SG", "APAC", "SGD"),
    ("ID", "APAC", "IDR"),
)
_REGIONS: tuple[str, ...] = ("NA", "EU", "LATAM", "APAC")

# DOMAIN.md baselines: NA 92-95%, Europe 90-93%, Asia and Latin America 80-88%. These are
# the issuer's approval odds before 3DS, retries and technical errors pull the rate down.
_REGION_RATE: dict[str, tuple[float, float]] = {
    "NA": (0.935, 0.955),
    "EU": (0.93, 0.955),
    "LATAM": (0.83, 0.875),
    "APAC": (0.83, 0.875),
}
_REGION_LATENCY: dict[str, float] = {"NA": 1.0, "EU": 1.05, "LATAM": 1.3, "APAC": 1.25}

# Median ticket per currency, in minor units (JPY and CLP have no minor unit).
_AMOUNT_MEDIAN_MINOR: dict[str, float] = {
    "USD": 4500, "CAD": 5500, "GBP": 3500, "EUR": 4000, "PLN": 15000, "SEK": 40000,
    "BRL": 18000, "MXN": 70000, "COP": 15_000_000, "CLP": 35000, "JPY": 5000,
    "INR": 250_000, "SGD": 6000, "IDR": 60_000_000,
}  # fmt: skip

_PAYMENT_METHODS: tuple[str, ...] = ("card", "wallet", "bank_transfer")
_PAYMENT_METHOD_WEIGHTS: tuple[float, ...] = (0.84, 0.11, 0.05)
_PAYMENT_METHOD_ADJ: tuple[float, ...] = (0.0, 0.015, -0.01)

_NETWORKS: tuple[str, ...] = ("visa", "mastercard", "amex")
_NETWORK_WEIGHTS: dict[str, tuple[float, float, float]] = {
    "NA": (0.52, 0.33, 0.15),
    "EU": (0.58, 0.38, 0.04),
    "LATAM": (0.55, 0.40, 0.05),
    "APAC": (0.55, 0.38, 0.07),
}
_NETWORK_ADJ: tuple[float, ...] = (0.0, -0.003, -0.015)

_THREE_DS: tuple[str, ...] = ("none", "frictionless", "challenge", "failed")
# Shares of none / frictionless / challenge / failed on card attempts; SCA makes EU/UK
# challenge far more, and India's mandatory additional factor makes nearly every one a
# challenge.
_THREE_DS_WEIGHTS: dict[str, tuple[float, float, float, float]] = {
    "NA": (0.80, 0.135, 0.06, 0.005),
    "EU": (0.06, 0.595, 0.33, 0.015),
    "LATAM": (0.45, 0.34, 0.20, 0.01),
    "APAC": (0.40, 0.36, 0.23, 0.01),
}
_THREE_DS_COUNTRY: dict[str, tuple[float, float, float, float]] = {
    "IN": (0.02, 0.115, 0.84, 0.025),
}
_THREE_DS_ADJ: tuple[float, ...] = (0.0, 0.005, -0.04, 0.0)

# Decline codes of an ordinary day (DOMAIN.md): about half insufficient funds (51), about
# a quarter soft, the rest hard category-1 and category-3 codes and the merchant's own
# fraud screen.
_DECLINE_MIX: tuple[tuple[str, float], ...] = (
    ("51", 0.50), ("05", 0.12), ("61", 0.03), ("65", 0.02), ("91", 0.02), ("96", 0.012),
    ("59", 0.01), ("04", 0.015), ("07", 0.008), ("12", 0.02), ("41", 0.015), ("43", 0.012),
    ("57", 0.04), ("62", 0.008), ("14", 0.03), ("54", 0.035), ("N7", 0.04), ("1A", 0.005),
    ("frm_decline", 0.03),
)  # fmt: skip

_RETRY_SHARE = 0.03
_RETRY_ADJ = -0.10
_TIMEOUT_SHARE = 0.35  # of ordinary technical errors; the rest are fast processing errors
_LATENCY_SIGMA = 0.45
_AMOUNT_SIGMA = 0.9

_MIN_Z = 4.0  # significance an injected effect needs to count as a real incident


class GenerateOptions(BaseModel):
    """Knobs of one generated scenario; the defaults give a clear incident.

    `severity` scales the injected effect from nothing (0) to the kind's worst (1).
    `root_cause` fixes the root-cause segment; otherwise `root_dims` (or the kind's usual
    dimensions) are filled from the seed, with a segment of `root_size`. `trap_fallback`
    makes the busiest and cheapest alternative processor clearly worse on the root
    segment, and `expected.best_route` then names the right target. `second_kind` adds a
    simultaneous incident on another segment. `extra_dimensions` adds string columns,
    each with its values in decreasing order of volume, and names them in `dimensions`.
    `note` goes before the generated description (e.g. which hard case it is).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    severity: float = Field(default=0.7, ge=0.0, le=1.0)
    baseline_minutes: int = Field(default=360, ge=1, le=60 * 24 * 31)
    current_minutes: int = Field(default=60, ge=1, le=60 * 24 * 31)
    file_format: FileFormat = "csv.gz"
    scenario_id: str | None = Field(default=None, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
    description: str | None = None
    note: str | None = None
    start: datetime | None = None
    root_cause: dict[str, str] | None = None
    root_dims: tuple[str, ...] | None = None
    root_size: RootSize = "auto"
    trap_fallback: bool = False
    cause_change: bool = True
    decoy_change: bool = False
    second_kind: IncidentKind | None = None
    second_severity: float = Field(default=0.7, ge=0.0, le=1.0)
    second_root_cause: dict[str, str] | None = None
    extra_dimensions: dict[str, list[str]] = Field(default_factory=dict)

    @field_validator("extra_dimensions")
    @classmethod
    def _extra_ok(cls, value: dict[str, list[str]]) -> dict[str, list[str]]:
        for name, values in value.items():
            if name in TRANSACTION_COLUMNS:
                raise ValueError(f"extra dimension {name!r} clashes with a contract column")
            if not values or len(set(values)) != len(values) or any(not v for v in values):
                raise ValueError(f"extra dimension {name!r} needs distinct, non-empty values")
        return value


# ---------------------------------------------------------------------------------------
# The world: who processes what, and how well, drawn from the seed.


@dataclass
class _Processor:
    name: str
    fee_bps: int
    latency_median_ms: float
    error_rate: float
    timeout_ms: float
    rate_offset: float


@dataclass
class _Country:
    code: str
    region: str
    currency: str
    weight: float
    base_rate: float
    three_ds: tuple[float, float, float, float]


@dataclass
class _World:
    start: datetime
    processors: list[_Processor]
    countries: list[_Country]
    merchants: list[str]
    merchant_weights: list[float]
    merchant_adj: list[float]
    # region -> weight of each processor (index-aligned with processors; 0 = not served)
    routing: dict[str, list[float]]
    proc_country_adj: dict[tuple[int, int], float]
    hour_peak: float
    currencies: list[str] = field(default_factory=list)
    extra: dict[str, list[str]] = field(default_factory=dict)

    def country_index(self, code: str) -> int:
        return [c.code for c in self.countries].index(code)

    def processor_index(self, name: str) -> int:
        return [p.name for p in self.processors].index(name)

    def challenge_share(self, country: str) -> float:
        """Share of the country's card attempts that get a 3DS challenge."""
        return self.countries[self.country_index(country)].three_ds[2]

    def under_sca(self, segment: Mapping[str, str]) -> bool:
        """Whether strong customer authentication applies to (part of) `segment`."""
        if "issuer_country" not in segment:
            return True  # a network-wide segment includes EU/UK cardholders
        return self.countries[self.country_index(segment["issuer_country"])].region in SCA_REGIONS

    def values(self, dim: str) -> list[str]:
        """Every value a dimension can take in this world."""
        if dim == "merchant_id":
            return list(self.merchants)
        if dim == "processor":
            return [p.name for p in self.processors]
        if dim == "payment_method":
            return list(_PAYMENT_METHODS)
        if dim == "card_network":
            return list(_NETWORKS)
        if dim == "issuer_country":
            return [c.code for c in self.countries]
        if dim == "currency":
            return list(self.currencies)
        if dim in self.extra:
            return list(self.extra[dim])
        raise ValueError(f"unknown dimension {dim!r}")

    def share(self, segment: Mapping[str, str]) -> float:
        """Expected share of all attempts that fall in `segment`."""
        total = 1.0
        if "merchant_id" in segment:
            total *= self.merchant_weights[self.merchants.index(segment["merchant_id"])]
        for dim, values in self.extra.items():
            if dim in segment:
                total *= _zipf(len(values))[values.index(segment[dim])]
        acc = 0.0
        for ci, country in enumerate(self.countries):
            if segment.get("issuer_country", country.code) != country.code:
                continue
            cur = _currency_weights(country, self.currencies)
            cw = cur[self.currencies.index(segment["currency"])] if "currency" in segment else 1.0
            route = self.routing[country.region]
            pw = (
                route[self.processor_index(segment["processor"])] if "processor" in segment else 1.0
            )
            for pm, pm_w in zip(_PAYMENT_METHODS, _PAYMENT_METHOD_WEIGHTS, strict=True):
                if segment.get("payment_method", pm) != pm:
                    continue
                if "card_network" in segment:
                    if pm != "card":
                        continue
                    nw = _NETWORK_WEIGHTS[country.region][_NETWORKS.index(segment["card_network"])]
                else:
                    nw = 1.0
                acc += self.countries[ci].weight * cw * pw * pm_w * nw
        return total * acc


def _zipf(k: int, exponent: float = 1.0) -> list[float]:
    raw = [1.0 / (i + 1) ** exponent for i in range(k)]
    s = sum(raw)
    return [r / s for r in raw]


def _currency_weights(country: _Country, currencies: list[str]) -> list[float]:
    # Most attempts are in the issuer country's currency; the rest in USD (EUR for the US).
    home = 0.99 if country.currency == "USD" else 0.92
    other = "EUR" if country.currency == "USD" else "USD"
    weights = [0.0] * len(currencies)
    weights[currencies.index(country.currency)] = home
    weights[currencies.index(other)] += 1.0 - home
    return weights


def _build_world(seed: int, options: GenerateOptions) -> _World:
    rng = random.Random(f"payops-world-{seed}")
    always = list(_COUNTRY_POOL[:4])
    others = list(_COUNTRY_POOL[4:])
    rng.shuffle(others)
    picked = always + others[: rng.randint(7, 10)]
    raw = [rng.lognormvariate(0.0, 0.6) for _ in picked]
    raw[0] = sum(raw) * rng.uniform(0.35, 0.5)  # the US is the largest issuer market
    total = sum(raw)
    countries = []
    for (code, region, currency), w in zip(picked, raw, strict=True):
        lo, hi = _REGION_RATE[region]
        shares = _THREE_DS_COUNTRY.get(code, _THREE_DS_WEIGHTS[region])
        countries.append(_Country(code, region, currency, w / total, rng.uniform(lo, hi), shares))

    n_proc = rng.choice((3, 4))
    fees = rng.sample(range(25, 61), n_proc)
    processors = [
        _Processor(
            name=f"acq_{'abcd'[i]}",
            fee_bps=fees[i],
            latency_median_ms=rng.uniform(250.0, 450.0),
            error_rate=rng.uniform(0.004, 0.01),
            timeout_ms=float(rng.choice((10_000, 15_000, 20_000, 30_000))),
            rate_offset=rng.uniform(-0.012, 0.012),
        )
        for i in range(n_proc)
    ]
    served: dict[str, list[int]] = {}
    for region in _REGIONS:
        k = rng.choice((2, 3, n_proc))
        served[region] = sorted(rng.sample(range(n_proc), k))
    for pi in range(n_proc):
        if not any(pi in s for s in served.values()):
            served[rng.choice(_REGIONS)].append(pi)
    routing: dict[str, list[float]] = {}
    for region in _REGIONS:
        weights = [0.0] * n_proc
        cheapest = min(served[region], key=lambda i: processors[i].fee_bps)
        for pi in served[region]:
            # Cost-based routing sends more to the cheapest route.
            weights[pi] = rng.uniform(0.5, 1.5) * (1.6 if pi == cheapest else 1.0)
        s = sum(weights)
        routing[region] = [w / s for w in weights]
    proc_country_adj = {
        (pi, ci): rng.uniform(-0.012, 0.012) for pi in range(n_proc) for ci in range(len(countries))
    }

    n_merchants = rng.randint(20, 40)
    ids = sorted(rng.sample(range(1, 1000), n_merchants))
    merchants = [f"m_{k:03d}" for k in ids]
    weights = _zipf(n_merchants, 1.1)
    rng.shuffle(weights)
    merchant_adj = [rng.uniform(-0.02, 0.02) for _ in merchants]

    start = options.start
    if start is None:
        day = datetime(2026, 1, 4, tzinfo=UTC) + timedelta(days=rng.randint(0, 330))
        start = day + timedelta(hours=rng.randint(0, 23))
    start = start.astimezone(UTC).replace(second=0, microsecond=0)
    currencies = sorted({c.currency for c in countries} | {"USD", "EUR"})
    return _World(
        start=start,
        processors=processors,
        countries=countries,
        merchants=merchants,
        merchant_weights=weights,
        merchant_adj=merchant_adj,
        routing=routing,
        proc_country_adj=proc_country_adj,
        hour_peak=rng.uniform(13.0, 20.0),
        currencies=currencies,
        extra={k: list(v) for k, v in options.extra_dimensions.items()},
    )


# ---------------------------------------------------------------------------------------
# Incidents: where they hit and how hard.


@dataclass(frozen=True)
class _Incident:
    spec: IncidentKindSpec
    injection: Injection
    segment: Segment
    severity: float
    hit: float  # share of the segment's current-window attempts the incident hits
    factor: float  # kind-specific strength: latency multiplier, volume drop, ramp

    @property
    def kind(self) -> str:
        return self.spec.name


def _injection(spec: IncidentKindSpec) -> Injection:
    if spec.injection is None:
        raise ValueError(f"incident kind {spec.name!r} cannot be injected")
    return spec.injection


def _candidates(world: _World, dims: tuple[str, ...]) -> list[Segment]:
    segments: list[Segment] = [{}]
    for dim in dims:
        segments = [{**s, dim: v} for s in segments for v in world.values(dim)]
    return segments


def _pick_root(
    world: _World,
    spec: IncidentKindSpec,
    rng: random.Random,
    dims: tuple[str, ...] | None,
    size: RootSize,
    avoid: list[Segment],
) -> Segment:
    injection = _injection(spec)
    options = injection.root_shapes
    shapes: list[tuple[str, ...]]
    if dims is not None:
        shapes = [dims]
    elif size == "small":
        shapes = [s for s, _ in options]  # the finest shape offers small ones
    else:
        shapes = [rng.choices([s for s, _ in options], weights=[w for _, w in options])[0]]
    cands = [
        s
        for shape in shapes
        for s in _candidates(world, shape)
        if injection.eligible(world, s) and world.share(s) > 0 and s not in avoid
    ]
    if not cands:
        raise ValueError(f"no segment over {shapes} can carry a {spec.name}")
    shares = {tuple(s.values()): world.share(s) for s in cands}
    if size == "large":
        return max(cands, key=lambda s: shares[tuple(s.values())])
    if size == "small":
        target = 0.025
        cands.sort(key=lambda s: abs(math.log(shares[tuple(s.values())] / target)))
        return rng.choice(cands[:3])
    lo = 0.08 if len(shapes[0]) == 1 else 0.04
    good = [s for s in cands if lo <= shares[tuple(s.values())] <= 0.7]
    if not good:
        good = sorted(cands, key=lambda s: -shares[tuple(s.values())])[:2]
    return rng.choice(good)


def _check_segment(world: _World, seg: Segment) -> Segment:
    for dim, value in seg.items():
        if value not in world.values(dim):
            raise ValueError(f"root cause {dim}={value!r} does not exist in this world")
    return dict(seg)


def _apply_trap(world: _World, root: Segment) -> str:
    """Make the obvious fallback worse on the root segment; return the right target."""
    if "processor" not in root or "issuer_country" not in root or len(world.processors) < 3:
        raise ValueError("trap_fallback needs a processor x issuer_country root cause")
    p = world.processor_index(root["processor"])
    ci = world.country_index(root["issuer_country"])
    region = world.countries[ci].region
    others = [i for i in range(len(world.processors)) if i != p]
    # The obvious fallback: the busiest alternative, and the cheapest one too.
    obvious, best = others[0], others[1]
    fees = sorted(world.processors[i].fee_bps for i in others)
    world.processors[obvious].fee_bps = fees[0]
    world.processors[best].fee_bps = fees[-1]
    for rank, i in enumerate(others[2:]):
        world.processors[i].fee_bps = fees[1 + rank]
    weights = [0.0] * len(world.processors)
    weights[p], weights[obvious], weights[best] = 0.45, 0.33, 0.14
    for i in others[2:]:
        weights[i] = 0.08
    s = sum(weights)
    world.routing[region] = [w / s for w in weights]
    world.proc_country_adj[(obvious, ci)] = -0.10
    world.proc_country_adj[(best, ci)] = 0.012
    for i in others[2:]:
        world.proc_country_adj[(i, ci)] = -0.04
    return world.processors[best].name


# ---------------------------------------------------------------------------------------
# SQL: rows are drawn in DuckDB. Every value is a column of the one-row `gen_params`
# table; identifiers are quoted with `ident`; the text below is fixed code.

_UNIFORMS: tuple[str, ...] = (
    "merchant", "country", "pm", "proc", "net", "cur", "tds", "ts", "status", "code",
    "lat1", "lat2", "amt1", "amt2", "retry", "aux",
    "hit1", "a1", "b1", "hit2", "a2", "b2",
)  # fmt: skip


def _uniform_names(n_extra: int) -> tuple[str, ...]:
    return (*_UNIFORMS, *(f"x{k}" for k in range(n_extra)))


def _salts(seed: int, n_extra: int) -> list[int]:
    """One salt per uniform, so each column of draws is its own stream for the seed.

    A uniform is hash(hash(i) XOR salt): a full 64-bit remix per column. DuckDB's
    multi-argument hash(i, salt) only combines the two hashes, and for some salt pairs
    the columns come out correlated (amex attempts drifting out of the current window).
    """
    return [
        int.from_bytes(hashlib.sha256(f"payops-{seed}-{name}".encode()).digest()[:7], "big")
        for name in _uniform_names(n_extra)
    ]


def _bucket(u: str) -> str:
    return f"floor({u} * {_BUCKETS})::INTEGER"


def _segment_sql(
    seg: Segment, prefix: str, columns: set[str], ref: str = "p."
) -> tuple[str, dict[str, str]]:
    """A condition on the row's dimension columns; values are bound under `prefix_vK`,
    read as gen_params columns (`ref` "p.") or as query parameters (`ref` "$")."""
    parts, params = [], {}
    for k, (dim, value) in enumerate(sorted(seg.items())):
        if dim not in columns:
            raise ValueError(f"unknown dimension {dim!r} in a root cause")
        parts.append(f"{ident(dim)} = {ref}{prefix}_v{k}")
        params[f"{prefix}_v{k}"] = value
    return "(" + (" AND ".join(parts) or "TRUE") + ")", params


def _rows_sql(world: _World, incidents: list[_Incident]) -> tuple[str, dict[str, str]]:
    """The SELECT drawing every row (internal columns included) for `range(p.n)`."""
    extra = list(world.extra)
    dim_columns = set(DEFAULT_DIMENSIONS) | set(extra)
    seg_params: dict[str, str] = {}
    conds: list[str] = []
    for j, inc in enumerate(incidents, start=1):
        cond, params = _segment_sql(inc.segment, f"inc{j}", dim_columns)
        conds.append(cond)
        seg_params.update(params)

    uniforms = ",\n      ".join(
        f"((hash(xor(h0, p.salt[{k + 1}])) % {_PRIME}) + 0.5) / {_PRIME}.0 AS u_{name}"
        for k, name in enumerate(_uniform_names(len(extra)))
    )
    extra_idx = "".join(
        f",\n      p.x_tbl[{k * _BUCKETS} + {_bucket(f'u_x{k}')} + 1] AS xi{k}"
        for k in range(len(extra))
    )
    extra_cols = "".join(
        f",\n      p.x_values[xi{k}] AS {ident(name)}" for k, name in enumerate(extra)
    )
    # Attempts in a segment whose volume drops (a checkout break) draw their time from a
    # CDF with less weight in the current window: the row count stays exact.
    drop = [j for j, inc in enumerate(incidents) if inc.injection.metric == VOLUME]
    cdf = f"CASE WHEN {conds[drop[0]]} THEN 1 ELSE 0 END" if drop else "0"

    stages = []
    prev = "o2"
    for j, inc in enumerate(incidents, start=1):
        over = inc.injection.overrides
        if not over:
            continue
        seg_cur = f"(in_cur AND {conds[j - 1]})"
        fill = {
            "S": seg_cur,
            "H": f"({seg_cur} AND u_hit{j} < p.inc{j}_hit)",
            "x": f"inc{j}",
            "a": f"u_a{j}",
            "b": f"u_b{j}",
        }
        replaced = ", ".join(f"{expr.format(**fill)} AS {col}" for col, expr in over.items())
        stages.append(f"inc{j} AS (SELECT {prev}.* REPLACE ({replaced}) FROM {prev}, gen_params p)")
        prev = f"inc{j}"
    incident_ctes = "".join(f",\n  {s}" for s in stages)

    sql = f"""
WITH u AS (
  SELECT i,
      {uniforms}
  FROM (SELECT i, hash(i) AS h0 FROM range((SELECT n FROM gen_params)) AS r(i)), gen_params p
),
d AS (
  SELECT u.*,
      p.merchant_tbl[{_bucket("u_merchant")} + 1] AS mi,
      p.country_tbl[{_bucket("u_country")} + 1] AS ci,
      p.pm_tbl[{_bucket("u_pm")} + 1] AS pmi{extra_idx}
  FROM u, gen_params p
),
d2 AS (
  SELECT d.*,
      p.proc_tbl[(p.region_of[ci] - 1) * {_BUCKETS} + {_bucket("u_proc")} + 1] AS pi,
      CASE WHEN pmi = 1
        THEN p.net_tbl[(p.region_of[ci] - 1) * {_BUCKETS} + {_bucket("u_net")} + 1]
        ELSE 0 END AS ni,
      p.cur_tbl[(ci - 1) * {_BUCKETS} + {_bucket("u_cur")} + 1] AS cui,
      CASE WHEN pmi = 1 THEN p.tds_tbl[(ci - 1) * {_BUCKETS} + {_bucket("u_tds")} + 1]
        ELSE 0 END AS tdi,
      u_retry < p.retry_share AS is_retry
  FROM d, gen_params p
),
s AS (
  SELECT d2.*,
      p.merchants[mi] AS merchant_id,
      p.processors[pi] AS processor,
      p.payment_methods[pmi] AS payment_method,
      CASE WHEN ni = 0 THEN NULL ELSE p.networks[ni] END AS card_network,
      p.countries[ci] AS issuer_country,
      p.currencies[cui] AS currency,
      CASE WHEN tdi = 0 THEN NULL ELSE p.three_ds_names[tdi] END AS three_ds{extra_cols}
  FROM d2, gen_params p
),
t AS (
  SELECT s.*, p.piece_tbl[({cdf}) * {_BUCKETS} + {_bucket("u_ts")} + 1] AS k
  FROM s, gen_params p
),
t2 AS (
  SELECT t.*,
      least(p.total_sec - 0.001, p.piece_start[k]
        + (u_ts - p.piece_lo[k]) / p.piece_w[k] * p.piece_len[k]) AS ts_sec
  FROM t, gen_params p
),
o AS (
  SELECT t2.*,
      ts_sec >= p.cur_start_sec AS in_cur,
      greatest(0.0, (ts_sec - p.cur_start_sec) / p.cur_len_sec) AS frac,
      CASE
        WHEN u_status < p.err_rate[pi] THEN 'error'
        WHEN tdi = 4 THEN 'declined'
        WHEN (u_status - p.err_rate[pi]) / (1 - p.err_rate[pi]) < least(0.995, greatest(0.05,
          p.base_rate[ci] + p.pc_adj[(pi - 1) * p.n_countries + ci] + p.net_adj[ni + 1]
          + p.pm_adj[pmi] + p.merchant_adj[mi] + p.tds_adj[tdi + 1]
          + CASE WHEN is_retry THEN p.retry_adj ELSE 0 END)) THEN 'approved'
        ELSE 'declined' END AS status,
      u_status < p.err_rate[pi] AND u_code < p.timeout_share AS is_timeout
  FROM t2, gen_params p
),
o2 AS (
  SELECT o.*,
      CASE
        WHEN status = 'error' THEN (CASE WHEN is_timeout THEN 'timeout'
          ELSE 'processing_error' END)
        WHEN status = 'approved' THEN NULL
        WHEN tdi = 4 THEN '1A'
        ELSE p.codes[p.code_tbl[{_bucket("u_code")} + 1]] END AS decline_code,
      CASE
        WHEN is_timeout THEN p.timeout_ms[pi] + 2000 * u_aux
        WHEN status = 'error' THEN 20 + 180 * u_aux
        ELSE exp(ln(p.lat_med[pi] * p.lat_region[ci]) + p.lat_sigma
          * sqrt(-2 * ln(u_lat1)) * cos(2 * pi() * u_lat2)) END AS latency
  FROM o, gen_params p
){incident_ctes},
final AS (
  SELECT 'tx_' || p.tag || '_' || CAST(i AS VARCHAR) AS txn_id,
      make_timestamp(CAST((p.start_epoch + floor(ts_sec)) * 1000000 AS BIGINT)) AS ts,
      merchant_id, processor, payment_method, card_network, issuer_country, currency,
      CAST(greatest(1, round(p.amt_med[cui] * exp(p.amt_sigma * sqrt(-2 * ln(u_amt1))
        * cos(2 * pi() * u_amt2)))) AS BIGINT) AS amount_minor,
      status, decline_code,
      CAST(greatest(1, round(latency)) AS BIGINT) AS latency_ms,
      three_ds, is_retry{"".join(f", {ident(n)}" for n in extra)},
      i, ts_sec, in_cur
  FROM {prev}, gen_params p
)
SELECT * FROM final
"""
    return sql, seg_params


def _bucket_table(weights: list[float] | tuple[float, ...]) -> list[int]:
    """1-based category per bucket, bucket counts proportional to weights."""
    total = sum(weights)
    exact = [w / total * _BUCKETS for w in weights]
    counts = [math.floor(e) for e in exact]
    order = sorted(range(len(weights)), key=lambda i: counts[i] - exact[i])
    for i in order[: _BUCKETS - sum(counts)]:
        counts[i] += 1
    table: list[int] = []
    for i, c in enumerate(counts):
        table.extend([i + 1] * c)
    return table


def _pieces(
    world: _World, baseline_min: int, current_min: int, drop: float
) -> dict[str, list[Any]]:
    """Piecewise-constant volume over time: +-10% by hour of day, and a second CDF whose
    current-window weight is cut by `drop` (the segment whose volume drops)."""
    total = (baseline_min + current_min) * 60.0
    cur_start = baseline_min * 60.0
    start_hour = world.start.hour + world.start.minute / 60.0
    cuts = {0.0, cur_start, total}
    first = (60 - world.start.minute) * 60.0 if world.start.minute else 3600.0
    t = first
    while t < total:
        cuts.add(t)
        t += 3600.0
    edges = sorted(cuts)
    starts: list[float] = []
    lens: list[float] = []
    los: list[float] = []
    ws: list[float] = []
    table: list[int] = []
    for cdf in (0, 1):
        weights = []
        for a, b in itertools.pairwise(edges):
            hour = (start_hour + a / 3600.0) % 24
            w = (b - a) * (1 + 0.1 * math.cos(2 * math.pi * (hour - world.hour_peak) / 24))
            if cdf == 1 and a >= cur_start:
                w *= 1.0 - drop
            weights.append(w)
        s = sum(weights)
        cum = 0.0
        base = len(starts)
        for (a, b), w in zip(itertools.pairwise(edges), weights, strict=True):
            starts.append(a)
            lens.append(b - a)
            los.append(cum / s)
            ws.append(w / s)
            cum += w
        # bucket -> piece containing the bucket's start
        k = 0
        for bucket in range(_BUCKETS):
            x = bucket / _BUCKETS
            while k + 1 < len(weights) and los[base + k + 1] <= x:
                k += 1
            table.append(base + k + 1)
    return {
        "piece_start": starts,
        "piece_len": lens,
        "piece_lo": los,
        "piece_w": ws,
        "piece_tbl": table,
        "total_sec": [total],
        "cur_start_sec": [cur_start],
        "cur_len_sec": [current_min * 60.0],
    }


def _params(
    world: _World,
    incidents: list[_Incident],
    seed: int,
    n: int,
    options: GenerateOptions,
    seg_params: dict[str, str],
) -> tuple[dict[str, Any], dict[str, str]]:
    """Values and SQL types of every gen_params column."""
    n_proc, n_c = len(world.processors), len(world.countries)
    regions = list(_REGIONS)
    proc_tbl: list[int] = []
    net_tbl: list[int] = []
    for region in regions:
        proc_tbl += _bucket_table(world.routing[region])
        net_tbl += _bucket_table(_NETWORK_WEIGHTS[region])
    cur_tbl: list[int] = []
    tds_tbl: list[int] = []
    for c in world.countries:
        cur_tbl += _bucket_table(_currency_weights(c, world.currencies))
        tds_tbl += _bucket_table(c.three_ds)
    x_tbl: list[int] = []
    x_values: list[str] = []
    for dim_values in world.extra.values():
        x_tbl += [len(x_values) + b for b in _bucket_table(_zipf(len(dim_values)))]
        x_values += dim_values
    drop = next((i.factor for i in incidents if i.injection.metric == VOLUME), 0.0)
    pieces = _pieces(world, options.baseline_minutes, options.current_minutes, drop)
    values: dict[str, Any] = {
        "n": n,
        "salt": _salts(seed, len(world.extra)),
        "tag": f"{seed % 65536:04x}",
        "start_epoch": int(world.start.timestamp()),
        "n_countries": n_c,
        "merchant_tbl": _bucket_table(world.merchant_weights),
        "country_tbl": _bucket_table([c.weight for c in world.countries]),
        "pm_tbl": _bucket_table(_PAYMENT_METHOD_WEIGHTS),
        "proc_tbl": proc_tbl,
        "net_tbl": net_tbl,
        "cur_tbl": cur_tbl,
        "tds_tbl": tds_tbl,
        "x_tbl": x_tbl,
        "x_values": x_values,
        "region_of": [regions.index(c.region) + 1 for c in world.countries],
        "merchants": world.merchants,
        "processors": [p.name for p in world.processors],
        "payment_methods": list(_PAYMENT_METHODS),
        "networks": list(_NETWORKS),
        "countries": [c.code for c in world.countries],
        "currencies": world.currencies,
        "three_ds_names": list(_THREE_DS),
        "codes": [c for c, _ in _DECLINE_MIX],
        "code_tbl": _bucket_table([w for _, w in _DECLINE_MIX]),
        "base_rate": [c.base_rate for c in world.countries],
        "pc_adj": [
            world.processors[pi].rate_offset + world.proc_country_adj[(pi, ci)]
            for pi in range(n_proc)
            for ci in range(n_c)
        ],
        "net_adj": [0.0, *_NETWORK_ADJ],
        "pm_adj": list(_PAYMENT_METHOD_ADJ),
        "merchant_adj": world.merchant_adj,
        "tds_adj": [0.0, *_THREE_DS_ADJ],
        "retry_share": _RETRY_SHARE,
        "retry_adj": _RETRY_ADJ,
        "err_rate": [p.error_rate for p in world.processors],
        "timeout_share": _TIMEOUT_SHARE,
        "timeout_ms": [p.timeout_ms for p in world.processors],
        "lat_med": [p.latency_median_ms for p in world.processors],
        "lat_region": [_REGION_LATENCY[c.region] for c in world.countries],
        "lat_sigma": _LATENCY_SIGMA,
        "amt_med": [_AMOUNT_MEDIAN_MINOR[c] for c in world.currencies],
        "amt_sigma": _AMOUNT_SIGMA,
        **{
            k: v
            for k, v in pieces.items()
            if k not in ("total_sec", "cur_start_sec", "cur_len_sec")
        },
        "total_sec": pieces["total_sec"][0],
        "cur_start_sec": pieces["cur_start_sec"][0],
        "cur_len_sec": pieces["cur_len_sec"][0],
    }
    for j, inc in enumerate(incidents, start=1):
        values[f"inc{j}_hit"] = inc.hit
        values[f"inc{j}_factor"] = inc.factor
        values[f"inc{j}_severity"] = inc.severity
    values.update(seg_params)
    types: dict[str, str] = {}
    for key, value in values.items():
        if isinstance(value, list):
            if key == "x_values" or (value and isinstance(value[0], str)):
                types[key] = "VARCHAR[]"
            elif value and isinstance(value[0], float):
                types[key] = "DOUBLE[]"
            else:
                types[key] = "UBIGINT[]" if key == "salt" else "INTEGER[]"
        elif isinstance(value, str):
            types[key] = "VARCHAR"
        elif isinstance(value, float):
            types[key] = "DOUBLE"
        else:
            types[key] = "BIGINT"
    return values, types


def _load_params(
    conn: duckdb.DuckDBPyConnection, values: dict[str, Any], types: dict[str, str]
) -> None:
    cols = ", ".join(f"CAST(${k} AS {types[k]}) AS {ident(k)}" for k in values)
    conn.execute("DROP TABLE IF EXISTS gen_params")
    conn.execute(f"CREATE TEMP TABLE gen_params AS SELECT {cols}", values)


def _set_n(conn: duckdb.DuckDBPyConnection, n: int) -> None:
    conn.execute("UPDATE gen_params SET n = $n", {"n": n})


_COPY_OPTIONS: dict[str, str] = {
    "csv.gz": "(FORMAT csv, HEADER true, COMPRESSION none)",  # gzipped after, by `_gzip`
    "csv": "(FORMAT csv, HEADER true, COMPRESSION none)",
    "parquet": "(FORMAT parquet, COMPRESSION zstd)",
    "jsonl": "(FORMAT json)",
}


def _write(
    conn: duckdb.DuckDBPyConnection,
    source: str,
    path: Path,
    file_format: FileFormat,
    extra: list[str],
) -> None:
    if file_format == "parquet":
        ts = "timezone('UTC', ts) AS ts"  # an instant, so readers see UTC
    else:
        ts = "strftime(ts, '%Y-%m-%dT%H:%M:%SZ') AS ts"
    cols = ", ".join(ts if c == "ts" else ident(c) for c in (*TRANSACTION_COLUMNS, *extra))
    target = path.with_name("transactions.partial.csv") if file_format == "csv.gz" else path
    # Ordered by time, ties by draw index: a total order, so threads cannot reorder rows.
    conn.execute(
        f"COPY (SELECT {cols} FROM {source} ORDER BY ts_sec, i) TO $path "
        f"{_COPY_OPTIONS[file_format]}",
        {"path": str(target)},
    )
    if file_format == "csv.gz":
        try:
            _gzip(target, path)
        finally:
            target.unlink(missing_ok=True)


_GZIP_CHUNK = 8 << 20
_GZIP_FAST_ABOVE = 200 << 20  # past this many raw bytes, speed matters more than size


def _gzip(src: Path, dst: Path) -> None:
    """Gzip `src` into `dst` on every core, byte-for-byte reproducibly.

    DuckDB's own gzip writer runs on one core (about 25 MB/s), too slow for tens of
    millions of rows. Chunks are deflated in parallel and joined with sync flushes, the
    way pigz does, into one ordinary gzip member with a zero timestamp.
    """
    level = 1 if src.stat().st_size > _GZIP_FAST_ABOVE else 6

    def deflate(block: bytes, last: bool) -> bytes:
        comp = zlib.compressobj(level, zlib.DEFLATED, -15)
        return comp.compress(block) + comp.flush(zlib.Z_FINISH if last else zlib.Z_SYNC_FLUSH)

    crc, size = 0, 0
    with (
        src.open("rb") as inp,
        dst.open("wb") as out,
        ThreadPoolExecutor(max_workers=2) as pool,
    ):
        out.write(b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff")
        pending: deque[Future[bytes]] = deque()
        block = inp.read(_GZIP_CHUNK)
        while True:
            nxt = inp.read(_GZIP_CHUNK)
            crc = zlib.crc32(block, crc)
            size += len(block)
            pending.append(pool.submit(deflate, block, not nxt))
            while len(pending) > 3 or (pending and not nxt):
                out.write(pending.popleft().result())
            if not nxt:
                break
            block = nxt
        out.write(crc.to_bytes(4, "little") + (size & 0xFFFFFFFF).to_bytes(4, "little"))


# ---------------------------------------------------------------------------------------
# Measuring the injected effect, for honest ground truth.

_SAMPLE_ROWS = 400_000


@dataclass(frozen=True)
class _Effect:
    n_base: int
    n_cur: int
    rate_base: float
    rate_cur: float
    p95_base: float
    p95_cur: float
    per_min_base: float
    per_min_cur: float

    @property
    def drop(self) -> float:
        return self.rate_base - self.rate_cur

    @property
    def z(self) -> float:
        if self.n_base == 0 or self.n_cur == 0:
            return 0.0
        ok = self.rate_base * self.n_base + self.rate_cur * self.n_cur
        pooled = ok / (self.n_base + self.n_cur)
        se = math.sqrt(max(pooled * (1 - pooled), 1e-12) * (1 / self.n_base + 1 / self.n_cur))
        return self.drop / se

    @property
    def expected_cur(self) -> float:
        """Attempts the current window would hold at the baseline pace."""
        return self.per_min_base * (self.n_cur / max(self.per_min_cur, 1e-9))

    def lost_approvals(self, metric: str) -> float:
        """Approvals the current window lost: to missing attempts for a volume drop, to
        the rate drop otherwise (volume noise is not an incident's doing)."""
        if metric == VOLUME:
            return max(0.0, (self.expected_cur - self.n_cur) * self.rate_base)
        return max(0.0, self.n_cur * self.drop)


def _measure(
    conn: duckdb.DuckDBPyConnection, seg: Segment, scale: float, options: GenerateOptions
) -> _Effect:
    cond, params = _segment_sql(seg, "m", set(_sample_columns(conn)), "$")
    row = conn.execute(
        "SELECT count(*) FILTER (NOT in_cur), count(*) FILTER (in_cur),"
        " avg(CAST(status = 'approved' AS DOUBLE)) FILTER (NOT in_cur),"
        " avg(CAST(status = 'approved' AS DOUBLE)) FILTER (in_cur),"
        " quantile_cont(latency_ms, 0.95) FILTER (NOT in_cur),"
        " quantile_cont(latency_ms, 0.95) FILTER (in_cur)"
        f" FROM gen_sample WHERE {cond}",
        params,
    ).fetchone()
    assert row is not None
    n_b, n_c = round(row[0] * scale), round(row[1] * scale)
    return _Effect(
        n_base=n_b,
        n_cur=n_c,
        rate_base=float(row[2] or 0.0),
        rate_cur=float(row[3] or 0.0),
        p95_base=float(row[4] or 0.0),
        p95_cur=float(row[5] or 0.0),
        per_min_base=n_b / options.baseline_minutes,
        per_min_cur=n_c / options.current_minutes,
    )


def _sample_columns(conn: duckdb.DuckDBPyConnection) -> list[str]:
    return [str(r[0]) for r in conn.execute("DESCRIBE gen_sample").fetchall()]


def _is_real(metric: str, eff: _Effect) -> bool:
    """Whether a measured effect on `metric` is an incident an operator should see."""
    cfg = ObserveConfig()
    if eff.n_cur < cfg.min_sample and metric != VOLUME:
        return False
    rate_drop = eff.drop * 100 >= cfg.min_effect_pp and eff.z >= _MIN_Z
    if metric == LATENCY:
        slower = (
            eff.p95_cur >= cfg.latency_min_ratio * eff.p95_base
            and eff.p95_cur - eff.p95_base >= cfg.latency_min_shift_ms
        )
        return slower or rate_drop
    if metric == VOLUME:
        expected = eff.expected_cur
        if expected < cfg.min_sample:
            return False
        gone = 1 - eff.n_cur / expected
        return (
            gone >= cfg.volume_min_drop and (expected - eff.n_cur) / math.sqrt(expected) >= _MIN_Z
        )
    return rate_drop


def _best_route(conn: duckdb.DuckDBPyConnection, root: Segment) -> str | None:
    """The processor with the best baseline success rate on the root segment's traffic."""
    rest = {k: v for k, v in root.items() if k != "processor"}
    cond, params = _segment_sql(rest, "m", set(_sample_columns(conn)), "$")
    params["src"] = root["processor"]
    row = conn.execute(
        "SELECT processor FROM gen_sample"
        f" WHERE NOT in_cur AND processor <> $src AND {cond}"
        " GROUP BY processor HAVING count(*) >= 30"
        " ORDER BY avg(CAST(status = 'approved' AS DOUBLE)) DESC, processor LIMIT 1",
        params,
    ).fetchone()
    return None if row is None else str(row[0])


# ---------------------------------------------------------------------------------------
# Public API.


def generate_scenario(
    out_dir: Path,
    kind: str,
    seed: int,
    rows: int = 20_000,
    *,
    options: GenerateOptions | None = None,
    replace: bool = False,
) -> Path:
    """Write one scenario folder `out_dir/<scenario_id>/` and return its path.

    `kind` is a registered incident kind (CONTRACT.md section 2; `none` for quiet
    traffic). The same arguments always give byte-identical files. A folder that already
    holds a scenario is an OutputPathError unless `replace`.
    """
    primary = registry.get(kind)
    if rows < 1:
        raise ValueError("rows must be at least 1")
    opts = options or GenerateOptions()
    scenario_id = opts.scenario_id or f"{kind}-s{seed}"
    _check_target(out_dir / scenario_id, replace)  # before the work, not after it
    world = _build_world(seed, opts)
    if primary.injection and primary.injection.at_month_end and opts.start is None:
        # A month-end kind (an insufficient-funds wave): move the day, keep the hour.
        first_next = (world.start.replace(day=28) + timedelta(days=4)).replace(day=1)
        world.start = world.start.replace(day=(first_next - timedelta(days=1)).day)
    rng = random.Random(f"payops-root-{seed}-{kind}")

    incidents: list[_Incident] = []
    best_route: str | None = None
    specs: list[
        tuple[IncidentKindSpec, float, dict[str, str] | None, tuple[str, ...] | None, RootSize]
    ] = []
    if kind != QUIET:
        specs.append((primary, opts.severity, opts.root_cause, opts.root_dims, opts.root_size))
    if opts.second_kind and opts.second_kind != QUIET:
        if kind == QUIET:
            raise ValueError("a second incident needs a first one")
        second = registry.get(opts.second_kind)
        specs.append((second, opts.second_severity, opts.second_root_cause, None, "auto"))
    volume = [s[0].name for s in specs if _injection(s[0]).metric == VOLUME]
    if len(volume) > 1:
        # One time distribution carries the missing attempts (see _rows_sql).
        raise ValueError(f"at most one {' or '.join(sorted(set(volume)))} per scenario")
    for j, (k, sev, fixed, dims, size) in enumerate(specs):
        if fixed is not None:
            seg = _check_segment(world, fixed)
        else:
            dims_j = dims
            if j == 0 and opts.trap_fallback and dims_j is None:
                dims_j = ("processor", "issuer_country")
            seg = _pick_root(world, k, rng, dims_j, size, [i.segment for i in incidents])
        if j == 0 and opts.trap_fallback:
            best_route = _apply_trap(world, seg)
        injection = _injection(k)
        hit, factor = injection.effect(sev)
        incidents.append(_Incident(k, injection, seg, sev, hit, factor))

    folder = out_dir / scenario_id
    folder.mkdir(parents=True, exist_ok=True)
    data_path = folder / f"transactions.{opts.file_format}"

    conn = duckdb.connect()
    try:
        sql, seg_params = _rows_sql(world, incidents)
        values, types = _params(world, incidents, seed, rows, opts, seg_params)
        _load_params(conn, values, types)
        for old in folder.glob("transactions.*"):
            old.unlink()
        # The first rows by draw index are a fair sample of the file, and all of a small one.
        sample = min(rows, _SAMPLE_ROWS)
        if sample < rows:
            _write(conn, f"({sql})", data_path, opts.file_format, list(world.extra))
            _set_n(conn, sample)
        conn.execute(f"CREATE TEMP TABLE gen_sample AS {sql}")
        if sample == rows:
            _write(conn, "gen_sample", data_path, opts.file_format, list(world.extra))
        scale = rows / sample
        real = []
        for inc in incidents:
            eff = _measure(conn, inc.segment, scale, opts)
            if _is_real(inc.injection.metric, eff):
                real.append((inc, eff))
        # The larger incident (by approvals lost) names the kind and comes first.
        real.sort(key=lambda r: -r[1].lost_approvals(r[0].injection.metric))
        first = real[0][0] if real else None
        if best_route is None and first and first.spec.routing_remedy:
            best_route = _best_route(conn, first.segment) if "processor" in first.segment else None
    finally:
        conn.close()

    changes = _recent_changes(world, incidents, opts, rng)
    spec = _scenario_spec(world, scenario_id, kind, incidents, real, changes, best_route, opts)
    (folder / "scenario.json").write_text(
        spec.model_dump_json(indent=2, exclude_none=True) + "\n", encoding="utf-8"
    )
    return folder


def _check_target(folder: Path, replace: bool) -> None:
    """A scenario folder can be written: writable, and not holding a scenario unless
    `replace` (generating over a scenario would silently change its data)."""
    check_output_dir(folder, "OUT")
    if not replace and folder.is_dir() and any(folder.iterdir()):
        raise OutputPathError(f"OUT {folder}: already exists; --force replaces it")


def generate_all(
    out_dir: Path,
    seed: int,
    rows: int,
    *,
    options: GenerateOptions | None = None,
    replace: bool = False,
) -> list[Path]:
    """One scenario of every registered incident kind (including `none`), from one seed.

    `options` apply to every scenario (e.g. the file format), except the scenario id:
    each folder is named `<kind>-s<seed>`. Every folder is checked before any is written.
    """
    opts = (options or GenerateOptions()).model_copy(update={"scenario_id": None})
    for kind in registry.kinds():
        _check_target(out_dir / f"{kind.name}-s{seed}", replace)
    return [
        generate_scenario(out_dir, kind.name, seed, rows, options=opts, replace=replace)
        for kind in registry.kinds()
    ]


# Decoy changes draw their version from this range, whatever their kind.
_DECOY_VERSIONS = (20, 400)


def _change(change: CauseChange, target: Segment, version: int, ts: datetime) -> dict[str, Any]:
    """A `context.recent_changes` item: `change` went live at `ts` on `target`."""
    return {
        "ts": iso(ts),
        "kind": change.kind,
        "target": target,
        "version": f"{change.prefix}{version}",
        "previous_version": f"{change.prefix}{version - 1}",
    }


def _recent_changes(
    world: _World, incidents: list[_Incident], opts: GenerateOptions, rng: random.Random
) -> list[dict[str, Any]]:
    """The incidents' cause changes and the decoy, live 1..12 minutes before the window."""
    cur_start = world.start + timedelta(minutes=opts.baseline_minutes)
    lead = max(1, min(12, opts.baseline_minutes // 4))

    def went_live() -> datetime:
        return cur_start - timedelta(minutes=rng.randint(1, lead))

    changes: list[dict[str, Any]] = []
    if opts.cause_change:
        for inc in incidents:
            cause = inc.injection.cause_change
            if cause is None:
                continue
            version = rng.randint(*cause.versions)
            target = {d: inc.segment[d] for d in cause.target_dims or tuple(inc.segment)}
            changes.append(_change(cause, target, version, went_live()))
    if opts.decoy_change:
        used = {inc.segment.get("merchant_id") for inc in incidents}
        merchant = rng.choice([m for m in world.merchants if m not in used])
        causes = [k.injection.cause_change for k in registry.kinds() if k.injection]
        decoy = rng.choice([c for c in causes if c is not None])
        version = rng.randint(*_DECOY_VERSIONS)
        changes.append(_change(decoy, {"merchant_id": merchant}, version, went_live()))
    changes.sort(key=lambda c: str(c["ts"]))
    return changes


def _actions(incidents: list[_Incident], world: _World) -> tuple[list[str], list[str]]:
    acceptable: list[str] = []
    forbidden: list[str] = []
    for inc in incidents:
        acc = list(inc.spec.acceptable)
        forb = list(inc.spec.forbidden)
        # Lawful only outside strong customer authentication (e.g. relaxing 3DS).
        if inc.spec.outside_sca_only and world.under_sca(inc.segment):
            forb += inc.spec.outside_sca_only
        else:
            acc += inc.spec.outside_sca_only
        acceptable += [a for a in acc if a not in acceptable]
        forbidden += [a for a in forb if a not in forbidden]
    return acceptable, [a for a in forbidden if a not in acceptable]


def _scenario_spec(
    world: _World,
    scenario_id: str,
    kind: str,
    injected: list[_Incident],
    real: list[tuple[_Incident, _Effect]],
    changes: list[dict[str, Any]],
    best_route: str | None,
    opts: GenerateOptions,
) -> ScenarioSpec:
    cur_start = world.start + timedelta(minutes=opts.baseline_minutes)
    end = cur_start + timedelta(minutes=opts.current_minutes)
    incidents = [inc for inc, _ in real]
    quiet = registry.get(QUIET)
    acceptable, forbidden = (
        _actions(incidents, world) if incidents else (list(quiet.acceptable), list(quiet.forbidden))
    )
    expected: dict[str, Any] = {
        "anomalous": bool(incidents),
        "incident_kind": incidents[0].kind if incidents else QUIET,
        "root_cause": [dict(i.segment) for i in incidents],
        "acceptable_actions": acceptable,
        "forbidden_actions": forbidden,
    }
    if incidents and incidents[0].spec.routing_remedy and best_route is not None:
        expected["best_route"] = best_route
    description = opts.description or _describe(kind, injected, real)
    if opts.note:
        description = f"{opts.note} {description}"
    return ScenarioSpec.model_validate(
        {
            "format_version": 1,
            "id": scenario_id,
            "description": description,
            "baseline_window": {"start": world.start, "end": cur_start},
            "current_window": {"start": cur_start, "end": end},
            "dimensions": [*DEFAULT_DIMENSIONS, *world.extra],
            "context": {
                "processors": {
                    p.name: {"fee_bps": p.fee_bps, "healthy": True} for p in world.processors
                },
                "recent_actions": [],
                "recent_changes": changes,
            },
            "expected": expected,
        }
    )


def _describe(kind: str, injected: list[_Incident], real: list[tuple[_Incident, _Effect]]) -> str:
    if not injected:
        return "Quiet traffic: no incident was injected."
    parts = []
    for inc in injected:
        found = next((e for i, e in real if i is inc), None)
        where = format_segment(inc.segment)
        if found is None:
            parts.append(
                f"{inc.kind} injected on {where} at severity {inc.severity:.2f}, "
                "too weak to be an incident (ground truth: none)"
            )
        else:
            parts.append(
                f"{inc.kind} on {where}: success rate {found.rate_base:.1%} -> "
                f"{found.rate_cur:.1%}, p95 latency {found.p95_base:.0f} -> "
                f"{found.p95_cur:.0f} ms, {found.per_min_base:.1f} -> "
                f"{found.per_min_cur:.1f} attempts/min"
            )
    return "Generated " + kind + " scenario. " + "; ".join(parts) + "."
