"""A manifest streamed in bounded memory: typed batches, a CSV appended a batch at a time, and
its rows grouped by key (a face's, a subject's) whether or not the manifest keeps them together.

``export-layout`` and ``evaluate`` read the labels manifest with these, never whole.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import tempfile
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from augmentface.atomic import atomic_path
from augmentface.manifest import Schema
from augmentface.manifest_index import column_values
from augmentface.manifest_stream import ManifestStream

#: Rows per batch read from a manifest.
BATCH_ROWS = 1000
#: Rows a :class:`RowGroups` over a manifest out of key order holds at once (one group's,
#: when a single group has more).
GROUP_ROWS = 20_000


class TypedRows:
    """A manifest read in batches with the column types ``read_manifest`` gives it whole.

    ``read_manifest`` concatenates every stored row (a retried row's earlier versions too)
    before it keeps a key's last row, so an integer column with a null anywhere is float64
    in every row; a batch alone would be int64 where it holds no null, and a CSV would write
    ``7`` for ``7.0``. Those columns are found first (their stored values, part by part) and
    made float64 in every batch.

    Parameters
    ----------
    path : Path
        The manifest.
    schema : Schema
        Its schema.
    run_first : str
        The command that makes it, named when it is missing.

    Raises
    ------
    MissingManifestError, UsageError
        As :class:`~augmentface.manifest_stream.ManifestStream`.
    """

    def __init__(self, path: Path, schema: Schema, *, run_first: str) -> None:
        self.path = Path(path)
        self.schema = schema
        self.stream = ManifestStream(path, schema, run_first=run_first)
        self.meta = self.stream.meta
        self._floats = {
            c.name: "float64"
            for c in schema.columns
            if c.dtype == "int64"
            and c.nullable
            and any(v is None for v in column_values(self.path, c.name))
        }

    def batches(self, columns: Sequence[str] | None = None) -> Iterator[pd.DataFrame]:
        """The rows in manifest order, ``columns`` (and the key and ``status``; default all)
        in batches of :data:`BATCH_ROWS`, each row indexed by its position in the manifest."""
        start = 0
        for batch in self.stream.batches(columns, BATCH_ROWS):
            batch.index = pd.RangeIndex(start, start + len(batch))
            start += len(batch)
            floats = {c: t for c, t in self._floats.items() if c in batch.columns}
            yield batch.astype(floats) if floats else batch


@contextlib.contextmanager
def csv_appender(path: Path, columns: Sequence[str]) -> Iterator[Callable[[pd.DataFrame], None]]:
    """A function appending frames to the CSV ``path``: the bytes of one ``to_csv`` of them
    all (the header once; ``columns`` alone when no frame comes). The file replaces ``path``
    atomically when the block ends, and not at all on an error."""
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8", newline="") as handle:
        header = [True]

        def append(frame: pd.DataFrame) -> None:
            frame.to_csv(handle, index=False, header=header[0])
            header[0] = False

        yield append
        if header[0]:
            pd.DataFrame(columns=list(columns)).to_csv(handle, index=False)


def write_csv(rows: TypedRows, path: Path) -> None:
    """Every row of ``rows`` as the CSV ``path``, as ``read_manifest(...).df.to_csv`` writes
    it, a batch at a time."""
    with csv_appender(path, rows.schema.names) as append:
        for batch in rows.batches():
            append(batch)


Selector = Callable[[pd.DataFrame], "pd.Series[bool]"]


class RowGroups:
    """The rows of a manifest with equal ``key`` values, a group at a time, in sorted key
    order (``groupby(key, sort=True)``), each group's rows in manifest order and indexed by
    their positions in the manifest.

    Upstream stages write a face's rows together (synth makes a face's targets one after the
    other, render and blend keep that order), so a survey of the keys usually finds every
    group in one run and the runs in key order: then one pass gives each group as its run
    ends, holding one group and a batch. A manifest out of that order (rows finished on Dask
    in the order they finished, retried rows at the end, shards side by side, or a key the
    upstream does not order by, such as a subject) is partitioned instead: the survey gives
    each row its group's rank (8 bytes a row), consecutive groups make buckets of about
    :data:`GROUP_ROWS` rows, one more pass spills each bucket's rows to a temporary file,
    and the buckets are read back one at a time. What is held is then about
    :data:`GROUP_ROWS` rows (one group's, when a single group has more), and the manifest
    is read twice whatever its size.

    Parameters
    ----------
    rows : TypedRows
        The manifest.
    key : sequence of str
        The grouping columns (not null in the selected rows).
    columns : sequence of str
        The other columns each group carries.
    where : callable, optional
        The rows to take, a boolean Series of a batch (of ``key`` and ``columns``).
    max_rows : int, optional
        Rows held out of key order (default :data:`GROUP_ROWS`).
    """

    def __init__(
        self,
        rows: TypedRows,
        key: Sequence[str],
        columns: Sequence[str],
        *,
        where: Selector | None = None,
        max_rows: int | None = None,
    ) -> None:
        self._rows = rows
        self._key = list(key)
        self._names = list(dict.fromkeys([*key, *columns]))
        self._where = where
        self._max_rows = max_rows or GROUP_ROWS
        self._count, self._ranks = self._survey()

    def __len__(self) -> int:
        """The number of groups."""
        return self._count

    def __iter__(self) -> Iterator[pd.DataFrame]:
        return self._runs() if self._ranks is None else self._partitioned(self._ranks)

    def _selected(self) -> Iterator[pd.DataFrame]:
        for batch in self._rows.batches(self._names):
            if self._where is not None:
                batch = batch[self._where(batch)]
            if len(batch):
                yield batch

    def _keys(self, batch: pd.DataFrame) -> list[tuple[Any, ...]]:
        return list(zip(*(batch[c].tolist() for c in self._key), strict=True))

    def _survey(self) -> tuple[int, np.ndarray | None]:
        """The number of groups, and each selected row's group rank in key order; no ranks
        when each group is one run and the runs come in key order. Holds 8 bytes a row and
        each group's key, for this pass."""
        ids: dict[tuple[Any, ...], int] = {}
        codes = [
            np.fromiter((ids.setdefault(k, len(ids)) for k in self._keys(b)), np.int64, len(b))
            for b in self._selected()
        ]
        first_seen = list(ids)
        order = sorted(range(len(first_seen)), key=first_seen.__getitem__)
        row_codes = np.concatenate(codes) if codes else np.zeros(0, np.int64)
        # A group seen again after another has begun breaks the runs.
        if order == list(range(len(order))) and not (np.diff(row_codes) < 0).any():
            return len(order), None
        rank = np.empty(len(order), np.int64)
        rank[order] = np.arange(len(order))
        return len(order), rank[row_codes]

    def _runs(self) -> Iterator[pd.DataFrame]:
        pieces: list[pd.DataFrame] = []
        current = None
        for batch in self._selected():
            start = 0
            for i, key in enumerate(self._keys(batch)):
                if key == current:
                    continue
                if current is not None:
                    # No empty slice: concat would weigh its dtypes in.
                    yield pd.concat([*pieces, batch.iloc[start:i]] if i > start else pieces)
                pieces, current, start = [], key, i
            pieces.append(batch.iloc[start:])
        if current is not None:
            yield pd.concat(pieces)

    def _partitioned(self, ranks: np.ndarray) -> Iterator[pd.DataFrame]:
        counts = np.bincount(ranks, minlength=self._count)
        starts = _bucket_starts(counts, self._max_rows)
        with _Spill(self._max_rows) as spill:
            done = 0
            for batch in self._selected():
                rank = ranks[done : done + len(batch)]
                done += len(batch)
                bucket = np.searchsorted(starts, rank, side="right") - 1
                for number in np.unique(bucket):
                    inside = bucket == number
                    spill.add(int(number), batch[inside], rank[inside])
            spill.flush()
            for number in range(len(starts)):
                frame, rank = spill.read(number)
                for _, group in frame.groupby(rank, sort=True):
                    yield group


def _bucket_starts(counts: np.ndarray, max_rows: int) -> np.ndarray:
    """The first rank of each bucket: consecutive groups of at most ``max_rows`` rows in
    all (a larger group alone)."""
    starts, low = [], 0
    while low < len(counts):
        starts.append(low)
        fits = int(np.searchsorted(np.cumsum(counts[low:]), max_rows, side="right"))
        low += max(1, fits)
    return np.array(starts, np.int64)


class _Spill:
    """Frames (and their rows' group ranks) put aside by bucket in one temporary file, to be
    read back a bucket at a time.

    Frames wait in memory until ``max_rows`` rows wait in all, when the buckets holding the
    most are written out (pickled: every dtype comes back as it was), so that chunks stay
    large and what waits stays bounded.
    """

    def __init__(self, max_rows: int) -> None:
        self._max_rows = max_rows
        self._file = tempfile.TemporaryFile()
        self._waiting: dict[int, list[tuple[pd.DataFrame, np.ndarray]]] = {}
        self._held = 0
        self._chunks: dict[int, list[int]] = {}  # bucket -> offsets of its chunks

    def __enter__(self) -> _Spill:
        return self

    def __exit__(self, *_: object) -> None:
        self._file.close()

    def add(self, bucket: int, frame: pd.DataFrame, ranks: np.ndarray) -> None:
        self._waiting.setdefault(bucket, []).append((frame, ranks))
        self._held += len(frame)
        while self._held > self._max_rows:
            self._write(max(self._waiting, key=lambda b: sum(len(r) for _, r in self._waiting[b])))

    def flush(self) -> None:
        """Write out every waiting frame."""
        for bucket in list(self._waiting):
            self._write(bucket)

    def read(self, bucket: int) -> tuple[pd.DataFrame, np.ndarray]:
        """The bucket's frames (it has some: every bucket holds a group), in the order they
        came, as one, and their ranks."""
        chunks = []
        for offset in self._chunks[bucket]:
            self._file.seek(offset)
            chunks.append(pickle.load(self._file))
        return pd.concat([f for f, _ in chunks]), np.concatenate([r for _, r in chunks])

    def _write(self, bucket: int) -> None:
        chunk = self._waiting.pop(bucket)
        ranks = np.concatenate([r for _, r in chunk])
        self._held -= len(ranks)
        self._file.seek(0, os.SEEK_END)
        self._chunks.setdefault(bucket, []).append(self._file.tell())
        frame = pd.concat([f for f, _ in chunk])
        pickle.dump((frame, ranks), self._file, protocol=pickle.HIGHEST_PROTOCOL)
