"""Files payops writes for the user: checked before the work, written whole or not at all.

`check_output_file` and `check_output_dir` are the one check of an output path (`eval
--out`, `--report`, `learn export`, `generate OUT`): commands call them before they start
working, so a path that is a directory, or lies under a file, fails in a second with one
line instead of a traceback after the work. `atomic_writer` is the one way payops writes
such a file: beside it, then renamed into place.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO


class OutputPathError(ValueError):
    """An output path payops cannot write; the message names the path and the reason."""


def _writable_ancestor(path: Path, what: str, target: Path) -> None:
    """The nearest existing ancestor of `path` (or `path`) must be a writable directory."""
    here = path
    while not here.exists() and here != here.parent:
        here = here.parent
    if not here.is_dir():
        raise OutputPathError(f"{what} {target}: {here} is a file, not a directory")
    if not os.access(here, os.W_OK | os.X_OK):
        raise OutputPathError(f"{what} {target}: cannot write in {here}")


def check_output_file(path: Path, what: str = "output") -> None:
    """Raise OutputPathError unless `path` can be written as a file.

    Missing parent directories are fine (they are created); a path that is a directory,
    lies under a file, or sits in a directory payops cannot write is not. `what` names
    the option in the message (`--out`, `learn export`).
    """
    if path.is_dir():
        raise OutputPathError(f"{what} {path}: is a directory, not a file")
    _writable_ancestor(path.parent, what, path)


def check_output_dir(path: Path, what: str = "output folder") -> None:
    """Raise OutputPathError unless `path` is, or can be created as, a writable directory."""
    if path.exists() and not path.is_dir():
        raise OutputPathError(f"{what} {path}: is a file, not a directory")
    _writable_ancestor(path, what, path)


@contextmanager
def atomic_writer(path: Path, what: str = "output") -> Iterator[IO[str]]:
    """A text handle whose content becomes `path` only when the block ends without error.

    The file is written beside `path` (same directory, so the rename is atomic), flushed
    to disk, then renamed over it; on any error it is removed and `path` is untouched.
    It gets the user's umask (open mode "x", not mkstemp's 0600).
    """
    check_output_file(path, what)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.parent / f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp"
    try:
        with tmp.open("x", encoding="utf-8", newline="") as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_text_atomic(path: Path, text: str, what: str = "output") -> None:
    """Write `text` to `path` whole: a reader never sees it half written."""
    with atomic_writer(path, what) as handle:
        handle.write(text)
