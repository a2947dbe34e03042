"""What an incident kind is: how the reasoner recognises it and how the generator injects it.

Each kind is one module of this package defining `KIND = IncidentKindSpec(...)`, listed
in `registry.KIND_MODULES`. The catalogue imports nothing from the contract: the contract
validates incident-kind names against the registry, so the catalogue sits below it.
Segments are plain `dict[str, str]` here (the contract's `Segment`), action names plain
strings (checked against the contract's action catalogue by the generator, whose ground
truth is a contract model, and by tests/test_incidents.py).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Protocol

from tools.signals.names import FAILURES, SLOWNESS, SUCCESS_RATE, Measure

# The name CONTRACT.md section 2 gives to "no incident".
QUIET = "none"

# Where a failure can sit, most telling first: a failure on a processor is that
# processor's, whatever issuer or network it also touches.
LOCATIONS: tuple[str, ...] = ("processor", "issuer_country", "card_network")
# Technical codes (or a latency shift) carrying this share of the moved failure mass make
# a drop technical: where it sits then names the kind.
TECHNICAL_LEAD = 0.4
# A slow tail: p99 latency at least this many times the baseline's...
SLOW_TAIL_P99_RATIO = 3.0
# ...while the success rate dropped by less than this (a fraction).
SLOW_TAIL_MAX_DROP = 0.15
# Errors lead a drop when the error-rate rise is at least this share of it.
ERRORS_LEAD_SHARE = 0.6
# Successes are slow when the p95 latency of approved attempts rose at least this much
# (observe's own minimum p95 ratio for a latency anomaly).
SLOW_SUCCESS_RATIO = 1.5


class Change(Protocol):
    """A recent change as classification reads it (`contract.RecentChange` is one)."""

    @property
    def kind(self) -> str: ...

    @property
    def version(self) -> str | None: ...


@dataclass(frozen=True)
class Signature:
    """The evidence features classification reads, from one root cause.

    `measures` is what the signal that localized the cause counts as bad (failing, slow,
    missing or surplus attempts); `signals` are the names of every signal flagged on the
    cause or around it.
    """

    metric: str  # the signal the root cause explains (tools/signals/names.py)
    dims: frozenset[str]
    segment: dict[str, str]
    drop: float  # success-rate drop, fraction
    error_rise: float  # errors and timeouts, fraction of attempts
    technical: float  # share of the moved failure mass per code family
    fraud: float
    authentication: float
    insufficient_funds: float
    three_ds_failure_rise: float
    latency_ratio_p95: float
    latency_ratio_p99: float
    moved_codes: tuple[str, ...]
    suspect_changes: tuple[Change, ...] = field(default=())
    measures: Measure = FAILURES
    signals: frozenset[str] = frozenset({SUCCESS_RATE})
    approved_latency_ratio: float = 1.0  # p95 of approved attempts, current over baseline
    mix_shift: bool = False  # the segment's share grew while no rate dropped
    # A signal counting approvals lost (failed or missing attempts) is flagged around the
    # cause: only then is a remedy that changes traffic warranted.
    approvals_lost: bool = True

    @property
    def located_on(self) -> str | None:
        """The most telling location dimension of the root cause (`LOCATIONS`), if any."""
        return next((d for d in LOCATIONS if d in self.dims), None)

    @property
    def failing(self) -> bool:
        """The cause is attempts that failed (a rate moved), not slow, missing or extra ones."""
        return self.measures == FAILURES and not self.mix_shift

    @property
    def technical_led(self) -> bool:
        """The failures are technical: a latency shift, or mostly technical codes."""
        return self.measures == SLOWNESS or self.technical >= TECHNICAL_LEAD

    @property
    def slow_successes(self) -> bool:
        """Approved attempts slowed down: a slow route, not one failing fast or timing out."""
        return self.approved_latency_ratio >= SLOW_SUCCESS_RATIO

    @property
    def slow_tail(self) -> bool:
        """The slowest attempts slowed down a lot while the success rate barely moved."""
        return self.latency_ratio_p99 >= SLOW_TAIL_P99_RATIO and self.drop < SLOW_TAIL_MAX_DROP

    @property
    def errors_lead(self) -> bool:
        """Gateway errors (timeouts, 5xx), not declines, carry the drop."""
        return self.error_rise >= ERRORS_LEAD_SHARE * self.drop


@dataclass(frozen=True)
class Recognition:
    """A kind's claim on a signature: how confident, and whether it rests on location.

    A claim `by_location` names the kind from where the failure sits (which dimension),
    not from what failed (a code family, a metric). The reasoner counts it in full only
    when the failures are technical, and otherwise only when nothing else explains them.
    """

    confidence: float
    by_location: bool = False


Classifier = Callable[[Signature], Recognition | None]


def by_location(sig: Signature, confidence: float) -> Recognition | None:
    """A location claim on `sig`: only failing or slow attempts have a location to blame
    (a volume drop or a mix shift has no failing attempts to locate)."""
    if sig.mix_shift or sig.measures not in (FAILURES, SLOWNESS):
        return None
    return Recognition(confidence, by_location=True)


class World(Protocol):
    """What an injection may ask about the generated world."""

    def share(self, segment: Mapping[str, str]) -> float:
        """Expected share of all attempts that fall in `segment`."""
        ...

    def challenge_share(self, country: str) -> float:
        """Share of the country's card attempts that get a 3DS challenge."""
        ...

    def under_sca(self, segment: Mapping[str, str]) -> bool:
        """Whether strong customer authentication applies to (part of) `segment`."""
        ...


def always(world: World, segment: Mapping[str, str]) -> bool:
    """Any segment can carry the incident."""
    return True


def busy_network(world: World, segment: Mapping[str, str]) -> bool:
    """A network segment is a visa or mastercard one, or carries over 5% of traffic."""
    if "card_network" in segment:
        return segment["card_network"] != "amex" or world.share(segment) > 0.05
    return True


@dataclass(frozen=True)
class CauseChange:
    """The recent change that caused the incident, written to `context.recent_changes`.

    It goes live a few minutes before the current window, at version `<prefix><N>` with
    N drawn from `versions`, on the root segment's `target_dims` (all of them if empty).
    Decoy changes (`GenerateOptions.decoy_change`) are drawn from the kinds' cause changes.
    """

    kind: str
    prefix: str
    versions: tuple[int, int]
    target_dims: tuple[str, ...] = ()


# The generator's SQL overrides: a SQL expression per row column (`status`,
# `decline_code`, `latency`, `three_ds`) that replaces it on the incident's rows. The
# placeholders are `{H}` (the row is hit: in the current window, on the segment, and its
# hit draw fell under the hit share), `{S}` (in the current window and on the segment),
# `{x}` (the incident's parameter prefix: `p.{x}_factor`, `p.{x}_severity`), `{a}` and
# `{b}` (the incident's own uniforms in [0, 1)). A row also offers `frac` (how far into
# the current window, 0..1), `pi` (its processor's index: `p.timeout_ms[pi]`) and every
# column drawn before the override.
Overrides = Mapping[str, str]


@dataclass(frozen=True)
class Injection:
    """How the generator injects the kind into traffic.

    `root_shapes` are the usual root-cause dimensions with their odds; `eligible` says
    whether a candidate segment can carry the kind at all. `effect` maps a severity in
    [0, 1] to (hit share, factor): the share of the segment's current-window attempts hit,
    and a kind-specific strength (a latency multiplier, a volume drop...). `metric` is the
    signal the kind moves (a name from tools/signals/names.py), and so how the generator
    measures whether the injection came out a real incident: `success_rate`,
    `latency_p95` (slower, or a rate drop) or `volume` (the factor is the share of
    current-window attempts that never arrive; at most one such incident per scenario).
    `at_month_end` moves a scenario led by this kind to the last day of a month.
    """

    root_shapes: tuple[tuple[tuple[str, ...], float], ...]
    effect: Callable[[float], tuple[float, float]]
    overrides: Overrides = field(default_factory=dict)
    eligible: Callable[[World, Mapping[str, str]], bool] = always
    metric: str = SUCCESS_RATE
    cause_change: CauseChange | None = None
    at_month_end: bool = False


@dataclass(frozen=True)
class IncidentKindSpec:
    """One incident kind: its name, how it is recognised, injected and judged.

    `recognise` is None for a kind no evidence points to (`none` is concluded from the
    absence of anomalies). `injection` is None for a kind the generator never injects.
    `acceptable` and `forbidden` are the ground truth's action lists (CONTRACT.md section
    2); `outside_sca_only` lists actions acceptable where strong customer authentication
    does not apply and forbidden where it does. `routing_remedy` says moving traffic off a
    processor is a remedy, so the ground truth names the best route.
    """

    name: str
    recognise: Classifier | None
    injection: Injection | None
    acceptable: tuple[str, ...]
    forbidden: tuple[str, ...]
    outside_sca_only: tuple[str, ...] = ()
    routing_remedy: bool = False
