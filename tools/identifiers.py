"""When two spellings name the same thing: the one normalisation rule for identifiers.

Processors, merchants, segment dimensions and their values, change kinds and rule names
are identifiers. Policy compares them by meaning, never by spelling (docs/identifiers.md):

- `normalize_identifier` is the spelling payops keeps: Unicode NFKC (full-width and
  compatibility forms folded), whitespace at the ends removed, inner runs of whitespace
  as one space. Case is kept, because it is what the data holds.
- `identifier_key` is what policy compares: the normalized spelling, case-folded. Two
  identifiers with equal keys are the same identifier.

Look-alike letters from other scripts (Cyrillic "а" for Latin "a") are different
characters after NFKC, so they stay different identifiers: an identifier that matches
none payops knows is unknown, and unknown fails closed.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping
from typing import TypeVar

V = TypeVar("V")

_WHITESPACE = re.compile(r"\s+")


def normalize_identifier(text: str) -> str:
    """The kept spelling of an identifier: NFKC, trimmed, inner whitespace runs as one space."""
    return _WHITESPACE.sub(" ", unicodedata.normalize("NFKC", text)).strip()


def identifier_key(text: str) -> str:
    """The comparison key of an identifier: its normalized spelling, case-folded.

    NFKC is applied again after case folding (NFKC_Casefold), so the key is stable:
    `identifier_key(identifier_key(x)) == identifier_key(x)`.
    """
    return unicodedata.normalize("NFKC", normalize_identifier(text).casefold())


def same_identifier(a: str, b: str) -> bool:
    """True when `a` and `b` name the same identifier."""
    return identifier_key(a) == identifier_key(b)


def resolve_identifier(text: str, known: Iterable[str]) -> str | None:
    """The one spelling in `known` that names the same identifier as `text`, else None.

    None when nothing matches (an unknown identifier) and when several known spellings
    match (ambiguous): both fail closed.
    """
    key = identifier_key(text)
    found = {k for k in known if identifier_key(k) == key}
    return found.pop() if len(found) == 1 else None


def lookup(mapping: Mapping[str, V], name: str) -> V | None:
    """The value stored under the identifier `name` (any spelling of it), else None.

    An exact spelling is found first; otherwise the one key with the same meaning. An
    ambiguous match (two keys of one meaning) is None.
    """
    if name in mapping:
        return mapping[name]
    match = resolve_identifier(name, mapping)
    return None if match is None else mapping[match]


def normalize_keys(mapping: Mapping[str, V], what: str) -> dict[str, V]:
    """`mapping` with its keys in their kept spelling.

    Raises ValueError when two keys are one identifier (`acq_a` and `ACQ_A `): the
    mapping would then say two things about one thing. `what` names them in the message.
    """
    out: dict[str, V] = {}
    seen: dict[str, str] = {}
    for name, value in mapping.items():
        kept = normalize_identifier(name)
        key = identifier_key(kept)
        if key in seen:
            raise ValueError(f"{what} {seen[key]!r} and {name!r} are one identifier")
        seen[key] = name
        out[kept] = value
    return out


def normalize_segment(segment: Mapping[str, str]) -> dict[str, str]:
    """A segment with its dimensions and values in their kept spelling.

    Raises ValueError when two dimensions are one identifier (see `normalize_keys`).
    """
    dims = normalize_keys(segment, "dimensions")
    return {dim: normalize_identifier(value) for dim, value in dims.items()}


def segment_identity(segment: Mapping[str, str]) -> frozenset[tuple[str, str]]:
    """What a segment means: its (dimension, value) keys, independent of order and spelling."""
    return frozenset((identifier_key(d), identifier_key(v)) for d, v in segment.items())


def segments_overlap(a: Mapping[str, str], b: Mapping[str, str]) -> bool:
    """True when some transaction can be in both segments (no dimension disagrees)."""
    b_keys = {identifier_key(d): identifier_key(v) for d, v in b.items()}
    for dim, value in a.items():
        other = b_keys.get(identifier_key(dim))
        if other is not None and other != identifier_key(value):
            return False
    return True
