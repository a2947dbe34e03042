"""A cache of the load's pass, in the state directory: a file that only grew costs its new rows.

Leaf counts are additive, so the bucket cube of a file is the sum of the cubes of any
split of its rows. The cache keeps, per file and settings, one *part* per pass made over
it (the whole file, then each appended piece): the part's bucket cube and the hashes of
its rows' txn_ids (so new rows are checked against old ids exactly), in Parquet files;
and the count and time span of all rows read, with SHA-256 digests of the bytes they came
from, in `CHUNK_BYTES` pieces. Past `MAX_PARTS` the parts are merged into one. On the
next load:

- the file's first `size` bytes must hash to the same digests (an edited file, as opposed
  to an appended one, is read again in full, whatever its size and dates say);
- if nothing was appended, the cube is restored without reading a row;
- if a CSV or JSON Lines file grew after a complete last line, only the new bytes are
  read (with the header, for CSV), checked like any rows, their ids checked against the
  old ones, and their cube added to the old one.

The cache is keyed by the file's real path, format, dimensions, and the versions of
this format and of DuckDB (whose `hash` the id hashes are); a different inode, column
set or set of window cuts is a miss. A miss, or anything unreadable in the cache, means
a full pass, never a wrong count. Files are written under fresh names and the manifest
last, by an atomic rename: a crash leaves the old entry or the new one, never half of
either. Writing the cache is best effort: a state directory that cannot be written only
costs the next load its shortcut.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, suppress
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import BinaryIO

import duckdb
from pydantic import BaseModel, ConfigDict, ValidationError

from tools import sql
from tools.metrics import TimeBuckets, merge_bucket_cubes, naive_utc
from tools.scan import CUBE, Scan, ScanSource, read_once, release, scan

CACHE_FORMAT = 3
# Files smaller than this are read again: the cache's own reads and writes cost more.
MIN_CACHED_BYTES = 64 << 20
CHUNK_BYTES = 16 << 20
# Parts kept per entry before they are merged into one.
MAX_PARTS = 8
# Files of an entry that no manifest names (a writer that crashed) are removed after this.
ORPHAN_SECONDS = 3600
_DELTA = "__payops_delta"
_MERGED = "__payops_merged"
MANIFEST = "manifest.json"
# Formats whose new rows can be read on their own: every line is a row (after a header).
APPENDABLE = frozenset({"csv", "jsonl"})


class Part(BaseModel):
    """The cube (counts, codes) and id hashes of one pass: Parquet files of the entry."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    counts: str
    codes: str
    ids: str | None

    @property
    def files(self) -> set[str]:
        """The part's file names."""
        return {self.counts, self.codes} | ({self.ids} if self.ids else set())


class Manifest(BaseModel):
    """What a cache entry holds; written last, so it only ever names complete files."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    format: int
    duckdb: str
    path: str
    device: int
    inode: int
    kind: str
    columns: list[str]
    dimensions: list[str]
    cuts: list[datetime]
    size: int
    chunks: list[str]
    rows: int
    first_ts: datetime
    last_ts: datetime
    parts: list[Part]

    @property
    def files(self) -> set[str]:
        """Every file the entry needs."""
        return {MANIFEST}.union(*(part.files for part in self.parts))


@dataclass(frozen=True)
class _Stat:
    device: int
    inode: int
    size: int
    mtime_ns: int

    @classmethod
    def of(cls, file: Path) -> _Stat:
        st = os.stat(file)
        return cls(st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)


class ScanCache:
    """The scan cache under `root` (the state directory's `cache/`)."""

    def __init__(self, root: Path, *, min_bytes: int = MIN_CACHED_BYTES) -> None:
        self.root = root
        self.min_bytes = min_bytes

    def scan(self, conn: duckdb.DuckDBPyConnection, source: ScanSource) -> Scan:
        """The load's pass over `source`, or as little of it as the cache allows.

        The result is what `scan.read_once` gives; a result that is not clean sends the
        caller to the copying path, which reads the whole file again and names the bad
        line.
        """
        before = _Stat.of(source.file)
        if before.size < self.min_bytes:
            return read_once(conn, source)
        entry = self._entry(source)
        manifest = _read_manifest(entry)
        if manifest is not None and _usable(manifest, before, source):
            with suppress(OSError, duckdb.Error):
                found = self._reuse(conn, entry, manifest, source, before)
                if found is not None:
                    return found
        return self._full(conn, entry, source)

    # --- the two ways a load goes past the cache -----------------------------------------

    def _full(self, conn: duckdb.DuckDBPyConnection, entry: Path, source: ScanSource) -> Scan:
        """Read the whole file (its bytes digested meanwhile) and keep what it gave."""
        before = _Stat.of(source.file)
        with ThreadPoolExecutor(max_workers=1) as pool:
            digests = pool.submit(_digests, source.file, before.size)
            found = scan(
                conn, source.checked(source.file), source.dimensions, source.buckets,
                ids=source.ids,
            )  # fmt: skip
            chunks = digests.result()
        if found.clean and _Stat.of(source.file) == before:
            with suppress(OSError, duckdb.Error):
                part = _write_part(conn, entry, found)
                self._commit(entry, source, found, before, chunks, [part], old=None)
        return release(conn, found)

    def _reuse(
        self,
        conn: duckdb.DuckDBPyConnection,
        entry: Path,
        manifest: Manifest,
        source: ScanSource,
        before: _Stat,
    ) -> Scan | None:
        """The cached cube, plus the rows appended since; None when the prefix changed."""
        file, dims = source.file, manifest.dimensions
        buckets = TimeBuckets(tuple(manifest.cuts))
        cached = [(_parquet(entry / p.counts), _parquet(entry / p.codes)) for p in manifest.parts]
        rows, span = manifest.rows, (manifest.first_ts, manifest.last_ts)
        appended = before.size > manifest.size
        if appended and (source.kind not in APPENDABLE or not _ends_a_line(file, manifest.size)):
            return None
        delta = None
        with ThreadPoolExecutor(max_workers=1) as pool:
            # The old bytes are checked while the new ones are read; nothing read is used
            # unless they are unchanged (edited, not only appended: read it all again).
            unchanged = pool.submit(lambda: _digests(file, manifest.size) == manifest.chunks)
            if appended:
                with _appended(entry, file, source.kind, manifest.size, before.size) as piece:
                    delta = scan(conn, source.checked(piece), dims, buckets, ids=True, cube=_DELTA)
            if not unchanged.result():
                if delta is not None:
                    release(conn, delta)
                return None
        if delta is None:
            merge_bucket_cubes(conn, cached, dims, CUBE, summed=False, shared=True)
            return Scan(
                CUBE, tuple(dims), buckets, rows, ts_range=_naive_span(span),
                repeated_leaves=len(cached) > 1,
            )  # fmt: skip
        if delta.clean:
            old_ids = [str(entry / p.ids) for p in manifest.parts if p.ids]
            seen = conn.execute(
                f"SELECT count(*) FROM read_parquet({sql.literal(old_ids)}) AS old "
                f"SEMI JOIN {delta.ids_relation} AS new ON old.h = new.h"
            ).fetchone()
            delta = replace(delta, repeated_ids=int(seen[0]) if seen else 0)
        if not delta.clean or delta.ts_range is None:
            # A bad or repeated row among the new ones: the caller reads the whole file.
            release(conn, delta)
            return Scan(CUBE, tuple(dims), buckets, rows + delta.rows, delta.bad, 1)
        parts = [*cached, (f"{_DELTA}_counts", f"{_DELTA}_codes")]
        merge_bucket_cubes(conn, parts, dims, CUBE, summed=False, shared=True)
        span = (min(span[0], delta.ts_range[0]), max(span[1], delta.ts_range[1]))
        found = Scan(
            CUBE, tuple(dims), buckets, rows + delta.rows, ts_range=_naive_span(span),
            repeated_leaves=True,
        )  # fmt: skip
        if _Stat.of(file) == before:
            with suppress(OSError, duckdb.Error):
                chunks = _digests(
                    file, before.size, known=manifest.chunks, known_size=manifest.size
                )
                if len(manifest.parts) < MAX_PARTS:
                    kept = [*manifest.parts, _write_part(conn, entry, delta)]
                else:
                    kept = [_merged_part(conn, entry, manifest.parts, delta, dims)]
                self._commit(entry, source, found, before, chunks, kept, old=manifest)
        release(conn, delta)
        return found

    # --- writing an entry ----------------------------------------------------------------

    def _commit(
        self,
        entry: Path,
        source: ScanSource,
        found: Scan,
        stat: _Stat,
        chunks: list[str],
        parts: list[Part],
        *,
        old: Manifest | None,
    ) -> None:
        """Name the entry's complete files in a new manifest, atomically; sweep the rest."""
        assert found.ts_range is not None
        manifest = Manifest(
            format=CACHE_FORMAT,
            duckdb=duckdb.__version__,
            path=str(source.file.resolve()),
            device=stat.device,
            inode=stat.inode,
            kind=source.kind,
            columns=source.columns,
            dimensions=list(found.dimensions),
            cuts=list(found.buckets.cuts),
            size=stat.size,
            chunks=chunks,
            rows=found.rows,
            first_ts=found.ts_range[0],
            last_ts=found.ts_range[1],
            parts=parts,
        )
        _write_atomic(entry / MANIFEST, manifest.model_dump_json().encode())
        _sweep(entry, keep=manifest.files, replaced=old.files if old is not None else set())

    def _entry(self, source: ScanSource) -> Path:
        identity = [str(source.file.resolve()), source.kind, source.dimensions]
        key = json.dumps([*identity, CACHE_FORMAT, duckdb.__version__])
        return self.root / "scans" / hashlib.sha256(key.encode()).hexdigest()[:32]


# --- helpers ----------------------------------------------------------------------------


def _read_manifest(entry: Path) -> Manifest | None:
    try:
        return Manifest.model_validate_json((entry / MANIFEST).read_bytes())
    except (OSError, ValidationError, ValueError):
        return None


def _usable(manifest: Manifest, stat: _Stat, source: ScanSource) -> bool:
    """The entry is about this very file, as it was or longer, cut where this load cuts."""
    return (
        manifest.format == CACHE_FORMAT
        and manifest.duckdb == duckdb.__version__
        and (manifest.device, manifest.inode) == (stat.device, stat.inode)
        and manifest.kind == source.kind
        and manifest.columns == source.columns
        and manifest.dimensions == source.dimensions
        and stat.size >= manifest.size
        and set(source.buckets.cuts) <= {naive_utc(c) for c in manifest.cuts}
    )


def _naive_span(span: tuple[datetime, datetime]) -> tuple[datetime, datetime]:
    return naive_utc(span[0]), naive_utc(span[1])


def _parquet(path: Path) -> str:
    return f"read_parquet({sql.literal(str(path))})"


def _write_part(conn: duckdb.DuckDBPyConnection, entry: Path, found: Scan) -> Part:
    """The cube (and id hashes) of one pass, as a part of the entry."""
    entry.mkdir(parents=True, exist_ok=True)
    return Part(
        counts=_copy(conn, f"{found.cube}_counts", entry, "counts"),
        codes=_copy(conn, f"{found.cube}_codes", entry, "codes"),
        ids=_copy(conn, found.ids_relation, entry, "ids") if found.has_ids else None,
    )


def _merged_part(
    conn: duckdb.DuckDBPyConnection,
    entry: Path,
    parts: list[Part],
    delta: Scan,
    dimensions: list[str],
) -> Part:
    """An entry's parts and a new pass as one part: cubes summed, id hashes together."""
    pairs = [(_parquet(entry / p.counts), _parquet(entry / p.codes)) for p in parts]
    pairs.append((f"{delta.cube}_counts", f"{delta.cube}_codes"))
    merge_bucket_cubes(conn, pairs, dimensions, _MERGED, summed=True, shared=True)
    old_ids = [str(entry / p.ids) for p in parts if p.ids]
    ids = f"(SELECT h FROM read_parquet({sql.literal(old_ids)}) UNION ALL {delta.ids_relation})"
    return Part(
        counts=_copy(conn, f"{_MERGED}_counts", entry, "counts"),
        codes=_copy(conn, f"{_MERGED}_codes", entry, "codes"),
        ids=_copy(conn, ids, entry, "ids"),
    )


def _copy(conn: duckdb.DuckDBPyConnection, relation: str, entry: Path, kind: str) -> str:
    """COPY `relation` to a fresh Parquet file in `entry`; its name once it is whole."""
    name = f"{kind}-{uuid.uuid4().hex}.parquet"
    partial = entry / f".{name}.partial"
    try:
        conn.execute(
            f"COPY (SELECT * FROM {relation}) TO $path (FORMAT parquet, COMPRESSION uncompressed)",
            {"path": str(partial)},
        )
        os.replace(partial, entry / name)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    return name


def _write_atomic(target: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _sweep(entry: Path, keep: set[str], replaced: set[str]) -> None:
    """Remove the files the new manifest no longer names, and crashed writers' files.

    `replaced` are the files of the manifest just replaced. Other unnamed files may be a
    concurrent writer's, about to be named: only those older than ORPHAN_SECONDS go.
    """
    now = time.time()
    for path in entry.iterdir():
        if path.name in keep:
            continue
        with suppress(OSError):
            if path.name in replaced or now - path.stat().st_mtime > ORPHAN_SECONDS:
                path.unlink()


def _ends_a_line(file: Path, size: int) -> bool:
    """Whether the first `size` bytes end with a complete line (so appended rows are new)."""
    with open(file, "rb") as fh:
        fh.seek(size - 1)
        return fh.read(1) == b"\n"


@contextmanager
def _appended(entry: Path, file: Path, kind: str, start: int, end: int) -> Iterator[Path]:
    """The bytes [start, end) of `file` as a file of their own (with the CSV header)."""
    entry.mkdir(parents=True, exist_ok=True)
    suffix = ".csv" if kind == "csv" else ".jsonl"
    fd, tmp = tempfile.mkstemp(prefix=".appended-", suffix=suffix, dir=entry)
    try:
        with os.fdopen(fd, "wb") as out, open(file, "rb") as src:
            if kind == "csv":
                out.write(src.readline())
            for block in _blocks(src, start, end - start):
                out.write(block)
        yield Path(tmp)
    finally:
        Path(tmp).unlink(missing_ok=True)


def _blocks(fh: BinaryIO, start: int, length: int) -> Iterator[bytes]:
    """The `length` bytes of `fh` from `start` (fewer if the file ends first), in blocks."""
    fh.seek(start)
    while length > 0:
        block = fh.read(min(length, 4 << 20))
        if not block:
            return
        yield block
        length -= len(block)


def _digests(
    file: Path, size: int, *, known: list[str] | None = None, known_size: int = 0
) -> list[str]:
    """SHA-256 of each CHUNK_BYTES piece of the first `size` bytes, on two threads.

    `known` are the digests of the first `known_size` bytes, already checked: the whole
    chunks among them are kept, the rest read.
    """
    keep = list(known[: known_size // CHUNK_BYTES]) if known is not None else []
    starts = range(len(keep) * CHUNK_BYTES, size, CHUNK_BYTES)

    def digest(start: int) -> str:
        h = hashlib.sha256()
        with open(file, "rb") as fh:
            for block in _blocks(fh, start, min(CHUNK_BYTES, size - start)):
                h.update(block)
        return h.hexdigest()

    # hashlib and reads release the GIL: two threads hash two chunks at once.
    with ThreadPoolExecutor(max_workers=2) as pool:
        return keep + list(pool.map(digest, starts))
