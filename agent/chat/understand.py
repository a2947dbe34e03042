"""Reading a question: which segment, dimensions, window, codes and action it names.

The offline stub's only language skill, kept to closed vocabularies: segment values come
from the loaded data (any dimension, any script, compared after NFKC and case folding),
dimensions from their names and the words payment teams use for them, windows, decline
codes and actions from fixed phrase lists. Whatever the words, the result is typed data the
stub turns into tool calls.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from typing import Literal

from agent.chat.context import Vocabulary, fold
from tools.decline_codes import (
    AUTHENTICATION_CODES,
    CATEGORY_1_CODES,
    CATEGORY_3_CODES,
    FRAUD_CODES,
    SOFT_CODES,
    TECHNICAL_CODES,
)

Intent = Literal[
    "refuse",
    "help",
    "propose",
    "simulate",
    "explain",
    "learning",
    "actions",
    "changes",
    "mix",
    "timeline",
    "codes",
    "latency",
    "compare",
    "drill",
    "metrics",
    "overview",
    "unknown",
]

# Words people use for each default dimension (singular and plural are both listed).
DIMENSION_WORDS: dict[str, tuple[str, ...]] = {
    "processor": (
        "processors", "processor", "acquirers", "acquirer", "psps", "psp", "gateways",
        "gateway", "providers", "provider",
    ),
    "issuer_country": (
        "issuer countries", "issuer country", "issuing countries", "issuing country",
        "countries", "country", "issuers", "issuer", "issuing banks", "issuing bank", "banks",
        "markets", "market", "regions", "geos", "geo",
    ),
    "card_network": (
        "card networks", "card network", "card schemes", "card scheme", "networks", "network",
        "schemes", "scheme", "card brands", "card brand", "brands", "brand",
    ),
    "payment_method": (
        "payment methods", "payment method", "payment types", "payment type", "methods",
        "method", "pms",
    ),
    "currency": ("currencies", "currency"),
    "merchant_id": ("merchants", "merchant", "shops", "shop", "stores", "store", "sellers"),
}  # fmt: skip

# Phrases (regular expressions) that name each action, in the order they are tried.
ACTION_PHRASES: dict[str, str] = {
    "failover_processor": r"fail(s|ed|ing)?[\s-]?over",
    "enable_retry": r"(enabl(e|es|ed|ing)\s+)?retr(y|ies|ying)|cascad(e|es|ing)",
    "relax_3ds": r"relax(es|ed|ing)?(\s+3-?d\s?s(ecure)?)?|3-?ds\s+exemptions?|exemptions?",
    "force_3ds": r"forc(e|es|ed|ing)(\s+3-?d\s?s(ecure)?)?|step(ping)?[\s-]?up",
    "rollback_config": r"roll(s|ed|ing)?[\s-]?back|revert(s|ed|ing)?|undo(es|ing)?",
    "adjust_fraud_rule": r"fraud\s+rules?|shadow(\s+mode)?",
    "disable_payment_method": r"disabl(e|es|ed|ing)|(turn|switch)(ing)?\s+off|block(s|ed|ing)?",
    "notify_oncall": r"notif(y|ies|ying)|pag(e|ing)|alert(ing)?|escalat(e|es|ing)|on-?call",
    "shift_traffic": (
        r"shift(s|ed|ing)?|mov(e|es|ed|ing)|re-?rout(e|es|ed|ing)|rout(e|es|ed|ing)|"
        r"send(s|ing)?|divert(s|ed|ing)?"
    ),
}
_ACTION_VERBS = "|".join(f"(?:{p})" for p in ACTION_PHRASES.values())

_REFUSE = re.compile(
    r"\b(ignore|disregard|forget|override|bypass|skip|circumvent)\b.{0,40}"
    r"\b(rules?|instructions?|guard|guardrails?|polic(y|ies)|approvals?|limits?|prompt)\b"
    r"|\bwithout (asking|approval|guard|a human)\b|\bjailbreak\b|\byou are now\b",
)
_SIMULATE = re.compile(
    r"\b(what if|what would|what happens|would it|simulat\w*|estimate|dry[- ]run|if we)\b"
)
_PROPOSE = re.compile(
    r"^\s*(please\s+)?(let'?s\s+)?(" + _ACTION_VERBS + r")\b"
    r"|\b(propose|do it|go ahead|apply (it|that|this)|execute|make it so|let'?s do)\b"
)
_THAT_ACTION = re.compile(
    r"\b(do it|go ahead|apply (it|that|this)|make it so|let'?s do (it|that))\b"
)

_INTENT_PATTERNS: tuple[tuple[Intent, re.Pattern[str]], ...] = (
    ("help", re.compile(r"^\s*(help|\?|what can you (do|answer)|how do i use)\b")),
    (
        "explain",
        re.compile(
            r"\b(why did (payops|the (agent|loop))|explain|rationale|last run|"
            r"(payops|agent|loop)'?s? decision|decided)\b"
        ),
    ),
    (
        "learning",
        re.compile(r"\b(learn\w*|track record|worked before|past outcomes?|history of)\b"),
    ),
    (
        "actions",
        re.compile(
            r"\b(recent actions?|actions? (taken|executed)|what did (payops|we|you) do|"
            r"executed|what have (we|you) done|ledger)\b"
        ),
    ),
    (
        "changes",
        re.compile(
            r"\b(recent changes?|config(uration)? changes?|rule changes?|deploy\w*|releases?|"
            r"changes? (made|went live|deployed)|what (was|got) changed|any changes?)\b"
        ),
    ),
    ("mix", re.compile(r"\b(mix|is it us|composition|mix[- ]shift)\b")),
    (
        "timeline",
        re.compile(
            r"\b(since when|when did|when was|what time|start(ed)?|began|begin|onset|"
            r"timeline|over time|trend|how long)\b"
        ),
    ),
    (
        "codes",
        re.compile(r"\b(codes?|decline reasons?|reasons?|why (are|were) .*declin\w*|declines)\b"),
    ),
    ("latency", re.compile(r"\b(latency|latencies|slow\w*|p50|p95|p99|response times?)\b")),
    ("compare", re.compile(r"\b(compare|versus|vs\.?|before and after|than before)\b")),
    (
        "overview",
        re.compile(
            r"\b(wrong|going on|happening|happened|incidents?|problems?|issues?|anomal\w*|"
            r"broken|root cause|summary|summari[sz]e|health|status|alerts?|what'?s up|"
            r"why did .* drop|drop)\b"
        ),
    ),
)
_DRILL = re.compile(
    r"\b(which|what|by|per|across|break(ing)? ?down|split|affected|hit|carry\w*|among|other)\b"
)
_METRICS = re.compile(
    r"\b(how (is|are|was|were|did)|doing|success rate|auth(ori[sz]ation)? rate|approval rate|"
    r"rate|metrics|numbers|performance|look)\b"
)
_REFERS_BACK = re.compile(r"\b(it|its|that|this|them|those|these|there|same|the segment)\b")
_OTHER = re.compile(r"\b(other|others|rest|remaining|else)\b")
_CODE_WORDS = re.compile(r"\b(codes?|declines?|declined|responses?|errors?)\b")
_PERCENT = re.compile(r"(\d+(?:\.\d+)?)\s*(%|percent\b|pct\b)")
_FRACTIONS = (
    (re.compile(r"\bhalf\b"), 50.0),
    (re.compile(r"\b(a |one )?third\b"), 33.0),
    (re.compile(r"\b(a |one )?quarter\b"), 25.0),
    (re.compile(r"\b(all of (it|them)|everything|all traffic)\b"), 100.0),
)
_LAST = re.compile(
    r"\b(?:in |over |during |for )?(?:the )?(?:last|past|previous)\s+(\d+)\s*"
    r"(minutes?|mins?|m|hours?|hrs?|h)\b"
)
_LAST_UNIT = re.compile(
    r"\b(?:in |over |during |for )?(?:the )?(?:last|past) (half hour|hour|day)\b"
)
_CLOCK = r"(\d{1,2})(?::(\d{2}))?\s*(am|pm)?"
_SINCE = re.compile(r"\bsince\s+" + _CLOCK + r"(?![\d:])")
_BETWEEN = re.compile(r"\b(?:between|from)\s+" + _CLOCK + r"\s*(?:and|to|-|until)\s*" + _CLOCK)
_BASELINE = re.compile(r"\b(baseline|before the incident|usual(ly)?|normal(ly)?)\b")
_TO_WORDS = ("to", "onto", "into", "towards", "toward")
_FROM_WORDS = ("from", "off", "away from", "out of")
_DOMAIN_CODES = (
    TECHNICAL_CODES | SOFT_CODES | CATEGORY_1_CODES | CATEGORY_3_CODES | FRAUD_CODES
    | AUTHENTICATION_CODES
)  # fmt: skip
SHORT_VALUE = 3


@dataclass(frozen=True)
class Mention:
    """A dimension value named in the question, and where."""

    dimension: str
    value: str
    start: int
    role: Literal["plain", "target", "source"] = "plain"


@dataclass
class Parsed:
    """What a question names."""

    text: str
    intent: Intent = "unknown"
    mentions: list[Mention] = field(default_factory=list)
    dimensions: list[str] = field(default_factory=list)
    windows: list[str] = field(default_factory=list)
    codes: list[str] = field(default_factory=list)
    action: str | None = None
    percent: float | None = None
    refers_back: bool = False
    other: bool = False
    that_action: bool = False

    @property
    def segment(self) -> dict[str, str]:
        """The segment the question names (targets of an action left out)."""
        return {m.dimension: m.value for m in self.mentions if m.role != "target"}

    def processor(self, role: Literal["target", "source"]) -> str | None:
        """The processor the question names in a role ("to acq_a", "from acq_b")."""
        found = [m.value for m in self.mentions if m.dimension == "processor" and m.role == role]
        return found[0] if found else None


class _Text:
    """The question, NFKC-normalised, with the spans already understood blanked out."""

    def __init__(self, text: str) -> None:
        self.original = unicodedata.normalize("NFKC", text)
        self.work = self.original

    def take(self, start: int, end: int) -> None:
        self.work = self.work[:start] + " " * (end - start) + self.work[end:]

    def find(self, pattern: re.Pattern[str]) -> list[re.Match[str]]:
        found = list(pattern.finditer(self.work))
        for m in found:
            self.take(m.start(), m.end())
        return found


def _clock(hour: str, minute: str | None, meridiem: str | None) -> str:
    h = int(hour)
    if meridiem == "pm" and h < 12:
        h += 12
    if meridiem == "am" and h == 12:
        h = 0
    return f"{h:02d}:{int(minute or 0):02d}"


def _windows(text: _Text) -> list[str]:
    found: list[tuple[int, str]] = []
    lowered = re.compile
    for m in text.find(lowered(_BETWEEN.pattern, re.I)):
        found.append((m.start(), f"{_clock(*m.group(1, 2, 3))}-{_clock(*m.group(4, 5, 6))}"))
    for m in text.find(lowered(_SINCE.pattern, re.I)):
        found.append((m.start(), f"since {_clock(*m.group(1, 2, 3))}"))
    for m in text.find(lowered(_LAST.pattern, re.I)):
        unit = "h" if m.group(2).lower().startswith("h") else "m"
        found.append((m.start(), f"last {int(m.group(1))}{unit}"))
    for m in text.find(lowered(_LAST_UNIT.pattern, re.I)):
        minutes = {"half hour": 30, "hour": 60, "day": 1440}[m.group(1).lower()]
        found.append((m.start(), f"last {minutes}m"))
    for m in text.find(lowered(_BASELINE.pattern, re.I)):
        found.append((m.start(), "baseline"))
    return [w for _, w in sorted(found)]


def _percent(text: _Text) -> float | None:
    for m in text.find(re.compile(_PERCENT.pattern, re.I)):
        return float(m.group(1))
    for pattern, value in _FRACTIONS:
        if text.find(re.compile(pattern.pattern, re.I)):
            return value
    return None


def _phrase(words: str) -> re.Pattern[str]:
    return re.compile(r"(?<![\w-])" + re.escape(words).replace(r"\ ", r"\s+") + r"(?![\w-])", re.I)


def _dimensions(text: _Text, vocab: Vocabulary) -> list[str]:
    phrases: list[tuple[str, str]] = []
    for dim in vocab.dimensions:
        spelled = dim.replace("_", " ")
        own = {dim, spelled, spelled + "s", spelled + "es"}
        phrases += [(p, dim) for p in (*own, *DIMENSION_WORDS.get(dim, ()))]
    found: list[tuple[int, str]] = []
    for words, dim in sorted(phrases, key=lambda p: -len(p[0])):
        for m in text.find(_phrase(words)):
            found.append((m.start(), dim))
    return list(dict.fromkeys(d for _, d in sorted(found)))


def _role(text: _Text, start: int) -> Literal["plain", "target", "source"]:
    before = text.original[:start].lower().split()
    last_two = " ".join(before[-2:])
    if before and (before[-1] in _TO_WORDS or last_two == "over to"):
        return "target"
    if before and (before[-1] in _FROM_WORDS or last_two in _FROM_WORDS):
        return "source"
    return "plain"


def _value_pattern(value: str) -> re.Pattern[str]:
    # Short upper-case values (country and currency codes: IN, IT, US) must be written in
    # capitals, so the words "in", "it" and "us" are not read as countries.
    short = len(value) <= SHORT_VALUE and value != value.lower()
    flags = 0 if short else re.I
    return re.compile(r"(?<![\w-])" + re.escape(value) + r"(?![\w-])", flags)


def _mentions(text: _Text, vocab: Vocabulary, named: list[str]) -> list[Mention]:
    folded = fold(text.work)
    # A cheap substring test first: a dimension may have many thousand values.
    candidates = [
        (dim, v)
        for dim in sorted(
            vocab.dimensions, key=lambda d: (d not in named, vocab.dimensions.index(d))
        )
        for v in vocab.values.get(dim, {})
        if len(v.strip()) >= 2 and fold(v) in folded
    ]
    candidates.sort(key=lambda dv: -len(dv[1]))
    found: list[Mention] = []
    for dim, value in candidates:
        for m in text.find(_value_pattern(value)):
            # Only processors move traffic: "to acq_b" is a target, "on visa" is not.
            role = _role(text, m.start()) if dim == "processor" else "plain"
            found.append(Mention(dim, value, m.start(), role))
    found.sort(key=lambda m: m.start)
    return found


def _codes(text: _Text, vocab: Vocabulary) -> list[str]:
    known = vocab.codes | _DOMAIN_CODES
    codey = bool(_CODE_WORDS.search(text.original.lower()))
    found: list[tuple[int, str]] = []
    for code in sorted(known, key=lambda c: -len(c)):
        if code.isdigit() and not codey:
            continue
        for m in text.find(_value_pattern(code) if code.isdigit() else _phrase(code)):
            found.append((m.start(), code))
    return list(dict.fromkeys(c for _, c in sorted(found)))


def _action(text: _Text) -> str | None:
    lowered = text.work.lower()
    if m := re.search(r"\b(" + "|".join(ACTION_PHRASES) + r")\b", lowered):
        return m.group(1)
    found = [
        (m.start(), action)
        for action, phrase in ACTION_PHRASES.items()
        if (m := re.search(r"(?<![\w-])(" + phrase + r")(?![\w-])", lowered))
    ]
    return min(found)[1] if found else None


def _intent(parsed: Parsed, lowered: str) -> Intent:
    if _REFUSE.search(lowered):
        return "refuse"
    if parsed.action is not None or parsed.that_action:
        if _SIMULATE.search(lowered):
            return "simulate"
        if _PROPOSE.search(lowered):
            return "propose"
    for intent, pattern in _INTENT_PATTERNS:
        if pattern.search(lowered):
            # "declines" alone reads as a question about the drop, not about the codes.
            vague = not (parsed.codes or re.search(r"\bcodes?\b", lowered))
            if intent == "codes" and vague and not parsed.dimensions and not parsed.mentions:
                return "overview"
            return intent
    if parsed.action is not None:
        return "simulate"
    if parsed.dimensions and _DRILL.search(lowered):
        return "drill"
    if parsed.codes:
        return "codes"
    if parsed.mentions or parsed.windows or (parsed.refers_back and _METRICS.search(lowered)):
        return "metrics"
    if parsed.dimensions:
        return "drill"
    return "unknown"


def parse(question: str, vocab: Vocabulary) -> Parsed:
    """What `question` names, read against the data's vocabulary."""
    text = _Text(question)
    lowered = text.original.lower()
    parsed = Parsed(text=question)
    parsed.windows = _windows(text)
    parsed.percent = _percent(text)
    parsed.dimensions = _dimensions(text, vocab)
    parsed.mentions = _mentions(text, vocab, parsed.dimensions)
    parsed.codes = _codes(text, vocab)
    parsed.that_action = bool(_THAT_ACTION.search(lowered))
    parsed.action = _action(text)
    parsed.refers_back = bool(_REFERS_BACK.search(lowered))
    parsed.other = bool(_OTHER.search(lowered))
    parsed.intent = _intent(parsed, lowered)
    return parsed
