"""Property: no decision guard lets through breaks a limit, however its identifiers are spelled.

Over 10,000 random decisions (500 worlds x 20 decisions) are checked. Every identifier the
generator draws carries its *meaning* (which processor, code, country or change kind it
is) next to its *spelling* (other case, stray whitespace, full-width forms, `4` for `04`,
`frm_rule` for a fraud rule, or a look-alike letter that means something else). The
oracle below judges each decision by meaning alone, written here independently of
payops's own normalisation, so a spelling that slips past a limit is caught.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from types import MappingProxyType
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tools.contract import (
    Decision,
    ProcessorInfo,
    RecentAction,
    RecentChange,
    ScenarioContext,
)
from tools.guardrails import GuardInput, GuardLimits, GuardVerdict, evaluate
from tools.routes import RouteStats, SegmentSnapshot

NOW = datetime(2026, 3, 1, 7, 0, tzinfo=UTC)
START = datetime(2026, 3, 1, 6, 0, tzinfo=UTC)
WORLDS = 500
DECISIONS_PER_WORLD = 20

LOOK_ALIKE = "acq_b\u0435"  # ends in a Cyrillic "е": a processor of its own, not acq_be
PROCESSORS = ("acq_a", "acq_b", "acq_c", "acq_d")
COUNTRIES = ("BR", "US", "GB", "FR", "DE")
SCA = frozenset({"GB", "FR", "DE"})

# Decline codes by meaning, with the spellings that mean them.
CODE_SPELLINGS: dict[str, tuple[str, ...]] = {
    "timeout": ("timeout", "TIMEOUT", " Timeout "),
    "processing_error": ("processing_error", "Processing Error", "processing-error"),
    "91": ("91", " 91", "091", "９１"),
    "96": ("96", "96 "),
    "05": ("05", "5", "005"),
    "51": ("51", " 51", "051"),
    "61": ("61",),
    "04": ("04", "4", " 004", "０４"),
    "41": ("41", " 41", "041"),
    "57": ("57", "057"),
    "R0": ("R0", "r0", " r0 "),
    "R1": ("R1", "r1"),
    "14": ("14", "014"),
    "N7": ("N7", "n7"),
    "MAC03": ("MAC03", "MAC 03", "mac03", "mac-3"),
    "MAC21": ("MAC21", "Mac 21"),
    "1A": ("1A", "1a"),
    "frm_decline": ("frm_decline", "FRM_DECLINE"),
    "unknown": ("zz9", "77x", "??"),
}
RETRYABLE = frozenset({"timeout", "processing_error", "91", "96", "05", "51", "61"})

# Change kinds by class, with spellings; None is a kind outside any class.
KIND_SPELLINGS: dict[str | None, tuple[str, ...]] = {
    "fraud": ("fraud_rule", "frm_rule", "risk_rule", "velocity_rule", "Fraud Rule", "FRM-Rule"),
    "3ds": ("3ds_policy", "sca_exemption", "3DS Exemption"),
    "routing": ("routing_config", "Routing Config", "traffic-split"),
    None: ("pricing_tweak", "fraud", "misc_change"),
}


@dataclass(frozen=True)
class Spelled:
    """An identifier as written (`text`) and what it means (`meaning`)."""

    meaning: str
    text: str


def _fullwidth(text: str) -> str:
    return "".join(chr(ord(c) + 0xFEE0) if "!" <= c <= "~" else c for c in text)


def _spellings(meaning: str) -> list[Spelled]:
    """Spellings that still mean `meaning`: case, stray whitespace, full-width forms."""
    texts = [meaning, meaning.upper(), meaning.title(), f" {meaning} ", f"{meaning}\t"]
    texts.append(_fullwidth(meaning))
    return [Spelled(meaning, t) for t in dict.fromkeys(texts)]


# Strategies are built once: building them for every draw costs more than guard itself.
ALL_PROCESSORS = (*PROCESSORS, LOOK_ALIKE, "acq_zz")
SPELLED: dict[str, st.SearchStrategy[Spelled]] = {
    m: st.sampled_from(_spellings(m))
    for m in (*ALL_PROCESSORS, *COUNTRIES, "processor", "issuer_country")
}
ANY_PROCESSOR = st.sampled_from([x for m in ALL_PROCESSORS for x in _spellings(m)])
ANY_COUNTRY = st.sampled_from([x for m in COUNTRIES for x in _spellings(m)])
CODE = {m: st.sampled_from(texts) for m, texts in CODE_SPELLINGS.items()}
CODE_MEANINGS = st.lists(st.sampled_from(list(CODE_SPELLINGS)), min_size=1, max_size=3)
KIND = {cls: st.sampled_from(texts) for cls, texts in KIND_SPELLINGS.items()}
CLASSES = st.sampled_from(list(KIND_SPELLINGS))
# traffic moves, retries and rollbacks twice as often: they have the most limits
ACTIONS = st.sampled_from(
    ["no_action", "notify_oncall", "shift_traffic", "failover_processor", "enable_retry",
     "force_3ds", "relax_3ds", "rollback_config", "shift_traffic", "enable_retry",
     "rollback_config"]
)  # fmt: skip
CONFIDENCE = st.floats(0.6, 1) | st.floats(0, 1)  # half above the floor
MOSTLY = st.integers(0, 3).map(bool)
PERCENT = st.floats(0.5, 100)
TTL = st.integers(1, 400)
ATTEMPTS = st.integers(1, 3)
MAYBE_PROCESSOR = st.none() | ANY_PROCESSOR
SEVERITY = st.sampled_from(["info", "warning", "critical"])


@st.composite
def segment(draw: st.DrawFn) -> dict[str, Spelled]:
    """A segment by meaning: {dimension meaning: spelled value}."""
    out: dict[str, Spelled] = {}
    if draw(st.booleans()):
        out["processor"] = draw(ANY_PROCESSOR)
    if draw(st.integers(0, 3)) > 0:
        out["issuer_country"] = draw(ANY_COUNTRY)
    return out


@st.composite
def written(draw: st.DrawFn, seg: dict[str, Spelled]) -> dict[str, str]:
    """The segment as a decision writes it: dimension names and values spelled."""
    return {draw(SPELLED[dim]).text: value.text for dim, value in seg.items()}


@dataclass
class World:
    """One scenario as guard sees it, and the facts the oracle judges by."""

    snapshot: SegmentSnapshot
    context: ScenarioContext
    limits: GuardLimits
    root_cause: dict[str, str]
    route_of: dict[str, RouteStats]  # by meaning
    dropped: set[str]  # processors whose data shows a fall (by meaning)
    listed: dict[str, bool]  # context health by meaning; empty: no processor context
    codes: dict[str, int]  # failures by code meaning
    changes: list[tuple[RecentChange, str | None]]  # with each change's class
    cooldown: dict[str, str] | None  # meaning of a recent action's segment, if any


@st.composite
def world(draw: st.DrawFn) -> World:
    routes: dict[str, RouteStats] = {}
    route_of: dict[str, RouteStats] = {}
    dropped: set[str] = set()
    for name in (*PROCESSORS, LOOK_ALIKE):
        if draw(st.integers(0, 5)) == 0:
            continue
        attempts = draw(st.integers(0, 2000))
        approved = draw(st.integers(0, attempts))
        base = attempts * 5
        kept = base * approved // attempts if attempts else 0
        if attempts >= 200 and approved <= attempts * 0.6 and draw(st.booleans()):
            kept = min(base, kept + base * 3 // 10)  # 30 pp better in the baseline
            dropped.add(name)
        route = RouteStats(draw(SPELLED[name]).text, attempts, approved, 0, base, kept)
        routes[route.processor] = route
        route_of[name] = route
    attempts = sum(r.attempts for r in routes.values())
    approved = sum(r.approved for r in routes.values())
    codes = {
        c: draw(st.integers(0, 80)) for c in draw(st.lists(st.sampled_from(list(CODE_SPELLINGS))))
    }
    listed: dict[str, bool] = {}
    if draw(st.integers(0, 3)) > 0:
        listed = {p: draw(st.integers(0, 3)) > 0 for p in PROCESSORS if draw(st.integers(0, 4))}
    failures = attempts - approved
    snapshot = SegmentSnapshot(
        segment={},
        attempts=attempts,
        approved=approved,
        baseline_attempts=attempts,
        baseline_approved=approved,
        decline_codes=MappingProxyType({draw(CODE[c]): n for c, n in codes.items()}),
        three_ds_failed=draw(st.integers(0, failures // 3) | st.integers(0, failures)),
        total_attempts=attempts * draw(st.sampled_from([1, 4, 10])) + draw(st.integers(0, 9000)),
        routes=MappingProxyType(routes),
    )
    root = {"processor": "acq_a", "issuer_country": draw(st.sampled_from(COUNTRIES))}
    changes = []
    for _ in range(draw(st.integers(0, 3))):
        cls = draw(CLASSES)
        target: dict[str, str] = {}
        if draw(st.booleans()):
            target["issuer_country"] = draw(st.sampled_from(COUNTRIES))
        change = RecentChange(
            ts=START - timedelta(minutes=draw(st.sampled_from([5, 90, 179, 181, 600, -10]))),
            kind=draw(KIND[cls]),
            target=target,
            version=f"v{draw(st.integers(1, 3))}",
        )
        changes.append((change, cls))
    cooldown = None
    actions = []
    if draw(st.integers(0, 3)) == 0:
        cooldown = {"issuer_country": draw(st.sampled_from(COUNTRIES))}
        country = draw(SPELLED[cooldown["issuer_country"]]).text
        actions.append(
            RecentAction(
                action="force_3ds",
                params={"segment": {"issuer_country": country}, "ttl_minutes": 30},
                ts=NOW - timedelta(minutes=5),
            )
        )
    context = ScenarioContext(
        processors={draw(SPELLED[p]).text: ProcessorInfo(healthy=ok) for p, ok in listed.items()},
        recent_changes=[c for c, _ in changes],
        recent_actions=actions,
    )
    limits = GuardLimits(kill_switch=draw(st.integers(0, 9)) == 0)
    return World(
        snapshot, context, limits, root, route_of, dropped, listed, codes, changes, cooldown
    )


@dataclass
class Drawn:
    """A decision as written, with the meaning of every identifier in it."""

    decision: Decision
    segment: dict[str, str] = field(default_factory=dict)  # by meaning
    source: str | None = None
    target: str | None = None
    codes: list[str] = field(default_factory=list)
    backup: str | None = None
    change: tuple[RecentChange, str | None, bool] | None = None  # change, class, listed


@st.composite
def decision(draw: st.DrawFn, w: World) -> Drawn:
    action = draw(ACTIONS)
    confidence = draw(CONFIDENCE)
    seg = draw(segment())
    meaning = {dim: v.meaning for dim, v in seg.items()}
    out = Drawn(Decision(action="no_action", confidence=confidence), segment=meaning)
    params: dict[str, Any]
    if action in ("shift_traffic", "failover_processor"):
        src, dst = draw(ANY_PROCESSOR), draw(ANY_PROCESSOR)
        if "processor" in seg and draw(MOSTLY):
            src = seg["processor"]
        out.source, out.target = src.meaning, dst.meaning
        params = {
            "segment": draw(written(seg)),
            "from_processor": src.text,
            "to_processor": dst.text,
        }
        if action == "shift_traffic":
            params["percent"] = draw(PERCENT)
        else:
            params["ttl_minutes"] = draw(TTL)
    elif action == "enable_retry":
        meanings = draw(CODE_MEANINGS)
        out.codes = meanings
        backup = draw(MAYBE_PROCESSOR)
        out.backup = None if backup is None else backup.meaning
        params = {
            "segment": draw(written(seg)),
            "decline_codes": [draw(CODE[m]) for m in meanings],
            "max_attempts": draw(ATTEMPTS),
        }
        if backup is not None:
            params["backup_processor"] = backup.text
    elif action in ("force_3ds", "relax_3ds"):
        params = {"segment": draw(written(seg)), "ttl_minutes": draw(TTL)}
    elif action == "rollback_config":
        pick_listed: bool = draw(MOSTLY)
        if w.changes and pick_listed:
            change, cls = draw(st.sampled_from(w.changes))
            listed = True
            respelled = {**change.model_dump(mode="json"), "kind": f" {change.kind.upper()} "}
            payload = draw(st.sampled_from([change.model_dump(mode="json"), respelled]))
        else:
            cls = draw(CLASSES)
            change = RecentChange(
                ts=START - timedelta(minutes=30), kind=KIND_SPELLINGS[cls][0], version="v9"
            )
            listed, payload = False, change.model_dump(mode="json")
        out.change = (change, cls, listed)
        params = {"change": payload}
    elif action == "notify_oncall":
        params = {"severity": draw(SEVERITY)}
    else:
        params = {}
    out.decision = Decision(action=action, params=params, confidence=confidence)
    return out


# ---------------------------------------------------------------------------------------
# The oracle: what guard must never let through, judged by meaning.


def _overlap(a: dict[str, str], b: dict[str, str]) -> bool:
    return all(b[k] == v for k, v in a.items() if k in b)


def _healthy(w: World, name: str | None) -> bool:
    route = w.route_of.get(name or "")
    if route is None or route.attempts == 0:
        return False
    if w.listed:
        return w.listed.get(name or "", False)
    return name not in w.dropped


def _check(w: World, d: Drawn, verdict: GuardVerdict) -> None:
    action = d.decision.action
    if action == "no_action":
        assert verdict.status == "approved"
        return
    if verdict.status == "blocked":
        assert verdict.violations
        return
    # not blocked: approved, or waiting for a human; no limit may be broken either way
    assert d.decision.confidence >= 0.6
    assert not (w.limits.kill_switch and action != "notify_oncall")
    if w.cooldown is not None and action != "notify_oncall":
        touched = d.change[0].target if d.change else d.segment
        assert not _overlap(touched, w.cooldown), "segment in cooldown"
    p = d.decision.params
    if action in ("shift_traffic", "failover_processor"):
        assert d.source != d.target
        assert d.target in w.route_of and _healthy(w, d.target), (d.target, w.listed)
        src, dst = w.route_of[d.source or ""], w.route_of[d.target or ""]
        assert dst.attempts >= 30 and dst.success_rate >= src.success_rate
        assert "processor" not in d.segment or d.segment["processor"] == d.source
        if action == "shift_traffic":
            assert p["percent"] <= 50
            share = src.attempts * p["percent"] / 100 / w.snapshot.total_attempts
            assert verdict.status == "needs_approval" or share <= 0.3
        else:
            assert p["ttl_minutes"] <= 240 and verdict.status == "needs_approval"
    if action == "enable_retry":
        assert p["max_attempts"] <= 2
        assert set(d.codes) <= RETRYABLE, d.codes
        pinned = d.segment.get("processor")
        assert not ("51" in d.codes and d.backup is not None and d.backup != pinned)
        failures = w.snapshot.failures
        assert failures == 0 or w.snapshot.three_ds_failed / failures <= 0.5
    if action == "force_3ds":
        assert w.codes.get("1A", 0) > 0
    if action == "relax_3ds":
        country = d.segment.get("issuer_country")
        assert country is not None and country not in SCA
        assert verdict.status == "needs_approval"
    if action == "rollback_config":
        assert d.change is not None
        change, cls, listed = d.change
        assert listed
        assert START - timedelta(minutes=180) <= change.ts < START
        assert _overlap(change.target, w.root_cause)
        if cls in ("fraud", "3ds", None):
            assert verdict.status == "needs_approval", (change.kind, verdict)
        if cls == "3ds":
            assert change.target.get("issuer_country") not in (None, *SCA)


CHECKED: list[int] = [0]


@settings(
    max_examples=WORLDS,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(data=st.data())
def _no_decision_breaks_a_limit(data: st.DataObject) -> None:
    w = data.draw(world())
    for _ in range(DECISIONS_PER_WORLD):
        d = data.draw(decision(w))
        inp = GuardInput(
            d.decision, w.snapshot, 1000, w.context, NOW, START, root_cause=(w.root_cause,)
        )
        _check(w, d, evaluate(inp, w.limits))
        CHECKED[0] += 1


def test_no_decision_guard_lets_through_breaks_a_limit_whatever_its_spelling() -> None:
    _no_decision_breaks_a_limit()
    assert CHECKED[0] >= 10_000
