"""Streaming reads of a manifest: batches of rows with only the columns asked for.

:func:`~augmentface.manifest.read_manifest` decodes a manifest whole, and a fitted face is
about 17 KB: 2.2 GB for DISFA's 130,815 frames, tens of GB for Aff-Wild2. A
:class:`ManifestStream` checks a manifest once (stage and schema version, every part's sha256
and row count against its marker), decides from the key columns alone which rows survive (of a
key written more than once, the last row, as ``read_manifest`` keeps), holding one 8-byte hash
per row, and then reads the parts batch by batch (``ParquetFile.iter_batches``) with only the
requested columns. What it holds is those hashes, a bool per row, one batch and the Parquet
reader's buffer of one row group (a part: a writer's checkpoint).

Cells come back as ``read_manifest`` gives them: array columns as numpy arrays of the schema's
shape (None where null), scalar columns as ``pyarrow``'s ``to_pandas`` makes them. Each batch
is converted alone, so an integer column with nulls reads as float64 only in the batches that
hold a null (``read_manifest`` makes the whole column float64).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from augmentface.errors import MissingManifestError, UsageError
from augmentface.manifest import (
    STATUS_OK,
    Column,
    Schema,
    _cells_from_arrow,
    _object_series,
    read_checked_meta,
)
from augmentface.manifest_parts import Part, file_sha256, live_parts

__all__ = ["ManifestStream", "count_rows", "iter_manifest", "read_columns"]


class ManifestStream:
    """One checked manifest, read as a stream of batches, as often as needed.

    Parameters
    ----------
    path : str or os.PathLike
        The manifest directory (or the single file of an older version).
    schema : Schema
        The schema the caller expects; stage and version must match the manifest's.
    run_first : str
        The command that produces this manifest, quoted when it is missing.

    Attributes
    ----------
    meta : dict
        The provenance of the manifest's last part.

    Raises
    ------
    MissingManifestError
        ``path`` does not exist or holds no completed part; the message names ``run_first``.
    UsageError
        The manifest is of another stage or version, or a part is not Parquet, changed after
        it was written (sha256) or holds another number of rows than its marker says.

    Notes
    -----
    Two keys whose 64-bit hashes collide would count as one (the earlier row dropped): about
    one chance in 4·10⁵ for 10⁷ rows, the risk :mod:`augmentface.manifest_index` takes too.
    """

    def __init__(self, path: str | os.PathLike[str], schema: Schema, *, run_first: str) -> None:
        self.path = Path(path)
        self.schema = schema
        self.meta = read_checked_meta(self.path, schema, run_first=run_first)
        self._sources: list[Part | Path] = (
            live_parts(self.path) if self.path.is_dir() else [self.path]
        )
        hashes, ok = [], []
        for source in self._sources:
            _verify(source)
            table = _read_table(source, [*schema.key, "status"])
            keys = table.select(list(schema.key)).to_pandas()
            hashes.append(pd.util.hash_pandas_object(keys, index=False).to_numpy(np.uint64))
            ok.append(table["status"].to_numpy(zero_copy_only=False) == STATUS_OK)
        sizes = [len(h) for h in hashes]
        every = np.concatenate(hashes) if hashes else np.zeros(0, np.uint64)
        # A row survives when no later row has its key: the first in reversed order.
        _, first_reversed = np.unique(every[::-1], return_index=True)
        keep = np.zeros(len(every), dtype=bool)
        keep[len(every) - 1 - first_reversed] = True
        bounds = np.cumsum(sizes)[:-1]
        self._keep: list[np.ndarray] = np.split(keep, bounds) if sizes else []
        self._ok: list[np.ndarray] = ok

    def __len__(self) -> int:
        """Rows of the manifest (of a key written more than once, one)."""
        return int(sum(int(k.sum()) for k in self._keep))

    def count_ok(self) -> int:
        """Rows whose ``status`` is ``ok``."""
        return int(sum(int((k & o).sum()) for k, o in zip(self._keep, self._ok, strict=True)))

    def batches(
        self,
        columns: Sequence[str] | None = None,
        batch_rows: int = 1000,
        *,
        ok_only: bool = False,
    ) -> Iterator[pd.DataFrame]:
        """The rows in manifest order, in DataFrames of at most ``batch_rows`` rows.

        Parameters
        ----------
        columns : sequence of str, optional
            Columns to read (default: all of the schema's); the key columns and ``status``
            are always included. Returned in schema order.
        batch_rows : int, optional
            Rows per batch, at least 1; every batch but the last has exactly this many.
        ok_only : bool, optional
            Only the rows whose ``status`` is ``ok`` (the others are never decoded).

        Yields
        ------
        pandas.DataFrame
            A batch with a fresh ``RangeIndex``; an array column of shape ``(d0, d1, ...)``
            holds one numpy array of that shape per row (float32 or int32; a leading ``-1``
            varies by row), or None.

        Raises
        ------
        KeyError
            A column the schema does not declare.
        UsageError
            A part lacks a requested column, holds a null in a non-nullable column or an
            array cell of another size than the schema's shape, or went away meanwhile.
        """
        if batch_rows < 1:
            raise ValueError(f"batch_rows must be >= 1, got {batch_rows}")
        names = self._names(columns)
        pending: list[pd.DataFrame] = []
        held = 0
        for frame in self._frames(names, batch_rows, ok_only):
            pending.append(frame)
            held += len(frame)
            while held >= batch_rows:
                whole = _concat(pending)
                yield whole.iloc[:batch_rows].reset_index(drop=True)
                pending = [whole.iloc[batch_rows:].reset_index(drop=True)]
                held -= batch_rows
        if held:
            yield _concat(pending)

    def frame(self, columns: Sequence[str], *, ok_only: bool = False) -> pd.DataFrame:
        """Scalar ``columns`` (key columns and ``status`` included) of every row, as one
        DataFrame: for keys, statuses, labels; arrays are what :meth:`batches` is for.

        Raises
        ------
        UsageError
            An array column is asked for, or as :meth:`batches`.
        """
        names = self._names(columns)
        arrays = [n for n in names if self.schema.column(n).dtype == "array"]
        if arrays:
            raise UsageError(f"read_columns reads scalar columns only, not {arrays}")
        frames = [f for f in self._frames(names, 1 << 16, ok_only) if len(f)]
        if not frames:  # no row: the columns, with the types pyarrow gives them
            empty = _read_table(self._sources[0], names).slice(0, 0)
            return _to_frame(self._sources[0], empty, self.schema)
        return _concat(frames)

    def digest(self, columns: Sequence[str], *, ok_only: bool = True) -> str:
        """``stages.common.manifest_digest`` of ``columns`` over the rows (the ``ok`` ones),
        streamed: the same bytes in the same order.

        ``manifest_digest`` hashes a DataFrame column by column. Each large array column
        (:data:`LIVE_ELEMENTS` values a row or more) and the first column start a pass over
        the parts that hashes that column as it reads and spills the small columns after it
        (up to the next large one) to temporary files, hashed after the pass: a few passes,
        and a few hundred bytes a row on disk, never a column in memory. A scalar goes
        through pandas, as in a DataFrame, so that its ``repr`` is the one hashed.
        """
        digest = hashlib.blake2b(digest_size=12)
        for run in _runs([self.schema.column(name) for name in columns]):
            with contextlib.ExitStack() as stack:
                spills = [stack.enter_context(tempfile.TemporaryFile()) for _ in run[1:]]
                sinks = [digest.update, *(spill.write for spill in spills)]
                names = list(dict.fromkeys(c.name for c in run))
                for _, batch in self._batches(names, 1024, ok_only):
                    for column, sink in zip(run, sinks, strict=True):
                        sink(_digest_bytes(batch.column(column.name), column))
                for spill in spills:
                    spill.seek(0)
                    for block in iter(lambda spill=spill: spill.read(1 << 20), b""):
                        digest.update(block)
        return digest.hexdigest()

    def _names(self, columns: Sequence[str] | None) -> list[str]:
        wanted = set(self.schema.names if columns is None else columns)
        wanted |= {*self.schema.key, "status"}
        for name in wanted:
            self.schema.column(name)  # KeyError for a column the schema lacks
        return [n for n in self.schema.names if n in wanted]

    def _frames(
        self, names: Sequence[str], batch_rows: int, ok_only: bool
    ) -> Iterator[pd.DataFrame]:
        """The surviving rows of each part, batch by batch (short ones at part ends)."""
        for source, batch in self._batches(names, batch_rows, ok_only):
            yield _to_frame(source, batch, self.schema)

    def _batches(
        self, names: Sequence[str], batch_rows: int, ok_only: bool
    ) -> Iterator[tuple[Part | Path, pa.RecordBatch]]:
        for source, keep, ok in zip(self._sources, self._keep, self._ok, strict=True):
            wanted = keep & ok if ok_only else keep
            if not wanted.any():
                continue
            path = _path(source)
            try:
                reader = pq.ParquetFile(path)
                _require(path, reader.schema_arrow.names, names)
                batches = reader.iter_batches(batch_size=batch_rows, columns=list(names))
                start = 0
                for batch in batches:
                    rows = wanted[start : start + batch.num_rows]
                    start += batch.num_rows
                    if not rows.all():
                        batch = batch.filter(pa.array(rows))
                    if batch.num_rows:
                        yield source, batch
            except (pa.ArrowException, OSError) as exc:
                raise UsageError(f"{path}: not a readable manifest part ({exc})") from exc


def iter_manifest(
    path: str | os.PathLike[str],
    schema: Schema,
    *,
    columns: Sequence[str] | None = None,
    batch_rows: int = 1000,
    run_first: str,
    ok_only: bool = False,
) -> Iterator[pd.DataFrame]:
    """The rows of a manifest in batches of at most ``batch_rows``, as
    :meth:`ManifestStream.batches`: the rows and cells of
    :func:`~augmentface.manifest.read_manifest`, in its order, without holding them all.

    Raises
    ------
    MissingManifestError, UsageError
        As :class:`ManifestStream` (when the first batch is asked for) and its ``batches``.
    """
    yield from ManifestStream(path, schema, run_first=run_first).batches(
        columns, batch_rows, ok_only=ok_only
    )


def read_columns(
    path: str | os.PathLike[str], schema: Schema, columns: Sequence[str], run_first: str
) -> pd.DataFrame:
    """Scalar ``columns`` of every row of a manifest (key columns and ``status`` included),
    of a key written twice its last row: :meth:`ManifestStream.frame`."""
    return ManifestStream(path, schema, run_first=run_first).frame(columns)


def count_rows(path: str | os.PathLike[str]) -> int:
    """Rows stored in a manifest, from its markers (or a single file's footer); nothing is
    decoded. A key written more than once counts each time: at least ``len`` of the
    manifest, equal when no row was retried.

    Raises
    ------
    MissingManifestError
        ``path`` does not exist.
    """
    path = Path(path)
    if path.is_dir():
        return sum(part.rows for part in live_parts(path))
    if not path.is_file():
        raise MissingManifestError(f"{path}: not found")
    try:
        return pq.ParquetFile(path).metadata.num_rows
    except (pa.ArrowException, OSError) as exc:
        raise UsageError(f"{path}: not a readable Parquet file ({exc})") from exc


# --- helpers -------------------------------------------------------------------------------


def _path(source: Part | Path) -> Path:
    return source.path if isinstance(source, Part) else source


def _verify(source: Part | Path) -> None:
    """A part's bytes and row count against its marker (a single file has none)."""
    if not isinstance(source, Part):
        return
    if file_sha256(source.path) != source.sha256:
        raise UsageError(f"{source.path}: changed after it was written (sha256 differs)")
    try:
        rows = pq.ParquetFile(source.path).metadata.num_rows
    except (pa.ArrowException, OSError) as exc:
        raise UsageError(f"{source.path}: not a readable Parquet file ({exc})") from exc
    if rows != source.rows:
        raise UsageError(f"{source.path}: {rows} rows, its marker says {source.rows}")


def _require(path: Path, stored: Sequence[str], names: Sequence[str]) -> None:
    missing = [n for n in names if n not in stored]
    if missing:
        raise UsageError(f"{path}: no column(s) {missing}")


def _read_table(source: Part | Path, names: Sequence[str]) -> pa.Table:
    path = _path(source)
    try:
        _require(path, pq.read_schema(path).names, names)
        return pq.read_table(path, columns=list(names))
    except (pa.ArrowException, OSError) as exc:
        raise UsageError(f"{path}: not a readable manifest part ({exc})") from exc


def _to_frame(source: Part | Path, data: pa.RecordBatch | pa.Table, schema: Schema) -> pd.DataFrame:
    """Rows of one part as ``read_manifest`` decodes them, checked as its validation would."""
    names = [n for n in schema.names if n in data.schema.names]
    scalars = [n for n in names if schema.column(n).dtype != "array"]
    frame = data.select(scalars).to_pandas()
    for name in names:
        column = schema.column(name)
        if not column.nullable and data.column(name).null_count:
            raise UsageError(f"{_path(source)}: column {name!r} holds nulls but is not nullable")
        if column.dtype == "array":
            try:
                cells = _cells_from_arrow(pa.chunked_array([data.column(name)]), column.shape)
            except ValueError as exc:  # a cell of another size than the schema's shape
                raise UsageError(f"{_path(source)}: column {name!r}: {exc}") from exc
            frame[name] = _object_series(cells)
    return frame[list(names)]


#: Array columns of at least this many values a row are hashed as read, never spilled.
LIVE_ELEMENTS = 1024


def _runs(columns: list[Column]) -> list[list[Column]]:
    """``columns`` cut before each large array column: one digest pass each."""
    runs: list[list[Column]] = []
    for column in columns:
        shape = column.shape or ()
        large = bool(shape) and (shape[0] == -1 or int(np.prod(shape)) >= LIVE_ELEMENTS)
        if not runs or large:
            runs.append([])
        runs[-1].append(column)
    return runs


def _digest_bytes(values: pa.Array, column: Column) -> bytes:
    """What ``manifest_digest`` hashes of these cells: an array's bytes, or None's and a
    scalar's ``repr`` as pandas gives the value."""
    if column.dtype == "array":
        cells = _cells_from_arrow(pa.chunked_array([values]), column.shape)
        return b"".join(b"None" if cell is None else cell.tobytes() for cell in cells)
    return b"".join(repr(value).encode() for value in values.to_pandas())


def _concat(frames: list[pd.DataFrame]) -> pd.DataFrame:
    return frames[0] if len(frames) == 1 else pd.concat(frames, ignore_index=True)
