"""Field types the contract and the catalogues below it share: segments, identifiers, changes.

The contract (tools/contract.py) validates action names and incident kinds against the
catalogues (tools/actions/, tools/incidents/), so the catalogues cannot import it. What
both need lives here and imports nothing of payops but the normalisers it applies; the
contract re-exports every name, so `from tools.contract import Segment` keeps working.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator

from tools.decline_codes import canonical_codes
from tools.identifiers import normalize_identifier, normalize_segment
from tools.text import clean_text

# A segment maps dimension -> value; an absent dimension means "any value".
Segment = dict[str, str]

# Bounds on free text a decision carries (a model writes it): control characters become
# spaces and longer text is cut (tools/text.py).
MAX_RATIONALE_CHARS = 600
MAX_NOTE_CHARS = 300

RiskLevel = Literal["none", "low", "medium", "high"]
RISK_ORDER: dict[str, int] = {"none": 0, "low": 1, "medium": 2, "high": 3}
Severity = Literal["info", "warning", "critical"]


@dataclass(frozen=True)
class Names:
    """Marks a parameter that names something of the incident's world, so a proposal can
    be checked against what the evidence or the data holds (by meaning, not spelling).

    `what` is `segment`, `change` (an item of the context's recent changes), `rule` (a
    fraud rule's name or version), or a dimension (`processor`, `merchant_id`): a value
    of that dimension.
    """

    what: str

    @property
    def dimension(self) -> str | None:
        """The dimension the parameter holds a value of; None for a segment, change or rule."""
        return None if self.what in ("segment", "change", "rule") else self.what


def _identifier(text: str) -> str:
    name = normalize_identifier(text)
    if not name:
        raise ValueError("must not be empty")
    return name


# Identifiers entering through a contract model are kept in their normalized spelling
# (docs/identifiers.md); policy compares them with `tools.identifiers.identifier_key`.
Identifier = Annotated[str, AfterValidator(_identifier)]
SegmentField = Annotated[Segment, AfterValidator(normalize_segment), Names("segment")]
Processor = Annotated[str, AfterValidator(_identifier), Names("processor")]
MerchantId = Annotated[str, AfterValidator(_identifier), Names("merchant_id")]
RuleName = Annotated[str, AfterValidator(_identifier), Names("rule")]
DeclineCodes = Annotated[list[str], AfterValidator(canonical_codes)]
Rationale = Annotated[str, AfterValidator(lambda t: clean_text(t, MAX_RATIONALE_CHARS))]
Note = Annotated[str, AfterValidator(lambda t: clean_text(t, MAX_NOTE_CHARS))]


def utc(ts: datetime) -> datetime:
    """Return `ts` as an aware UTC datetime (naive values are taken to be UTC)."""
    return ts.replace(tzinfo=UTC) if ts.tzinfo is None else ts.astimezone(UTC)


def iso(ts: datetime) -> str:
    """Format a timestamp the way the contract writes them: `2026-03-01T10:15:02Z`."""
    return utc(ts).strftime("%Y-%m-%dT%H:%M:%SZ")


# How an empty value (a dimension that does not apply, e.g. card_network for a wallet) reads.
NO_VALUE = "(none)"


def format_segment(segment: Segment) -> str:
    """Human-readable form: `processor=acq_a, issuer_country=BR`, or `all traffic`.

    An empty value reads `(none)`: `card_network=(none)` is the traffic without a card.
    """
    if not segment:
        return "all traffic"
    return ", ".join(f"{k}={v if v != '' else NO_VALUE}" for k, v in segment.items())


class ClosedModel(BaseModel):
    """A contract model that refuses fields it does not define."""

    model_config = ConfigDict(extra="forbid", frozen=False)


class ProcessorInfo(BaseModel):
    """What the scenario context says about one processor."""

    model_config = ConfigDict(extra="allow")
    fee_bps: float | None = None
    healthy: bool = True


class RecentChange(BaseModel):
    """A configuration or rule change that went live shortly before the incident.

    `kind` is free text classified by `tools.change_kinds.change_class`.
    """

    model_config = ConfigDict(extra="allow")
    ts: datetime
    kind: Identifier
    target: SegmentField = Field(default_factory=dict)
    version: Identifier | None = None

    @field_validator("ts")
    @classmethod
    def _to_utc(cls, value: datetime) -> datetime:
        return utc(value)
