"""Free text from outside (data values, model answers) made safe to keep and to print.

Two boundaries, one definition of a dangerous character (`_UNSAFE`): C0 and C1 control
characters, DEL, and the Unicode bidirectional and line-separator controls that can make
a terminal or a reader show something other than what is stored.

- `clean_text` is for text payops keeps (a model's rationale or summary): the characters
  become spaces, and the text is bounded.
- `terminal_safe` is for text payops prints: the characters are shown as escapes
  (`\\x1b`), so a terminal never interprets them and the reader sees they are there.
  `printable` adds rich's markup escaping, for text given to a rich console.
"""

from __future__ import annotations

import re

from rich.markup import escape

# Bidirectional overrides and isolates, marks and the Unicode line/paragraph separators.
_FORMAT = r"\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069"
_UNSAFE = re.compile(rf"[\x00-\x1f\x7f-\x9f{_FORMAT}]")
_UNSAFE_IN_TEXT = re.compile(rf"[\x00-\x09\x0b-\x1f\x7f-\x9f{_FORMAT}]")  # keeps \n
_SPACES = re.compile(r" {2,}")


def clean_text(text: str, max_chars: int) -> str:
    """`text` without control characters, trimmed, at most `max_chars` characters.

    Line breaks are kept (a rationale may have paragraphs); every other control character
    becomes a space. A longer text is cut and ends with "…", so a reader sees it was cut.
    """
    text = _SPACES.sub(" ", _UNSAFE_IN_TEXT.sub(" ", text)).strip()
    return text if len(text) <= max_chars else text[: max_chars - 1].rstrip() + "…"


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def terminal_safe(text: str) -> str:
    """`text` with every control character shown as an escape (`\\x1b`, `\\u202e`)."""
    return _UNSAFE.sub(_escape, text)


def printable(text: str) -> str:
    """`text` ready for a rich console: `terminal_safe`, with rich markup escaped.

    The one function every printer of outside text uses (the CLI, the eval tables).
    """
    return escape(terminal_safe(text))
