"""Rows of a manifest by key, and the keys a manifest has finished, without loading it whole.

A stage that joins its items to an upstream manifest (render: each target's fit; blend: each
render's target) would otherwise hold every upstream row: about 12 KB per fitted face, 34 GB
for Aff-Wild2's 2.8 million frames. :class:`ManifestIndex` holds only an 8-byte hash of each
key and where its row lies (part, row), and decodes the few parts being used (a small LRU of
only the needed columns). Items come in upstream order (synth writes targets in fits order,
render renders in targets order), so each part is decoded about once.

:class:`KeySet` is the same idea for resume: the finished keys of a manifest as a sorted array
of hashes, 8 bytes per row instead of a Python set of string tuples.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Hashable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from augmentface.errors import UsageError
from augmentface.hashed_set import name_hash
from augmentface.manifest import STATUS_OK, Schema, _cells_from_arrow
from augmentface.manifest_parts import Part, file_sha256, live_parts

__all__ = ["KeySet", "ManifestIndex", "column_values", "key_hash"]


def key_hash(values: Iterable[Hashable]) -> int:
    """A stable 63-bit hash of a key (strings and integers; ``np.int64(3)`` and ``3`` agree)."""
    return name_hash("\x1f".join(str(v) for v in values))


def _sources(path: Path) -> list[Part | Path]:
    """The live parts of a manifest directory, or the single file of an older version."""
    return live_parts(path) if path.is_dir() else [path] if path.is_file() else []


def _read(source: Part | Path, columns: Sequence[str], *, verify: bool = False) -> pa.Table:
    """Only ``columns`` of a part, its row count checked against its marker, and with
    ``verify`` its bytes too (sha256: the rows a stage uses; the key passes skip it)."""
    if verify and isinstance(source, Part) and file_sha256(source.path) != source.sha256:
        raise UsageError(f"{source.path}: changed after it was written (sha256 differs)")
    path = source.path if isinstance(source, Part) else source
    try:
        stored = pq.read_schema(path).names
        missing = [c for c in columns if c not in stored]
        if missing:
            raise UsageError(f"{path}: no column(s) {missing}")
        table = pq.read_table(path, columns=list(columns))
    except (pa.ArrowException, OSError) as exc:
        raise UsageError(f"{path}: not a readable manifest part ({exc})") from exc
    if isinstance(source, Part) and table.num_rows != source.rows:
        raise UsageError(f"{path}: {table.num_rows} rows, its marker says {source.rows}")
    return table


def _hashes(table: pa.Table, key: Sequence[str]) -> np.ndarray:
    columns = [table[name].to_pylist() for name in key]
    return np.fromiter((key_hash(v) for v in zip(*columns, strict=True)), np.int64, table.num_rows)


def column_values(path: Path, name: str) -> Iterator[Any]:
    """Every stored value of one scalar column, part by part (a retried key's rows each
    appear: for questions such as "which images", not for counting rows)."""
    for source in _sources(Path(path)):
        yield from _read(source, [name])[name].to_pylist()


class KeySet:
    """The keys of a manifest's ``ok`` rows (of a key written twice, its last row decides).

    Parameters
    ----------
    path : Path
        The manifest (directory, or the single file of an older version; missing: empty).
    schema : Schema
        Its schema; only the key and ``status`` columns are read.
    key : sequence of str, optional
        The key columns (default: the schema's key); a prefix of it makes a key done when
        its last row is ``ok`` (fit3dmm: an image, whatever its faces).
    file_column : str, optional
        A column naming the file an ``ok`` row wrote: a row whose file is gone is not done
        (resume trusts the disk, not only the manifest).
    """

    def __init__(
        self,
        path: Path,
        schema: Schema,
        key: Sequence[str] | None = None,
        file_column: str | None = None,
    ) -> None:
        key = tuple(key or schema.key)
        hashes, ok = [], []
        for source in _sources(Path(path)):
            table = _read(source, [*key, "status", *([file_column] if file_column else [])])
            hashes.append(_hashes(table, key))
            finished = pc.equal(table["status"], STATUS_OK).to_numpy(zero_copy_only=False)
            if file_column is not None:
                files = table[file_column].to_pylist()
                finished = finished & np.array(
                    [bool(f) and Path(f).is_file() for f in files], dtype=bool
                )
            ok.append(finished)
        all_hashes = np.concatenate(hashes) if hashes else np.zeros(0, np.int64)
        all_ok = np.concatenate(ok).astype(bool) if ok else np.zeros(0, bool)
        # The last row of each key decides: take the first occurrence in reversed order.
        reverse_hashes = all_hashes[::-1]
        unique, first = np.unique(reverse_hashes, return_index=True)
        self._done = unique[all_ok[::-1][first]]

    @classmethod
    def empty(cls) -> KeySet:
        """No key done (a fresh run)."""
        keys = cls.__new__(cls)
        keys._done = np.zeros(0, np.int64)
        return keys

    def __contains__(self, key: tuple[Hashable, ...]) -> bool:
        h = key_hash(key)
        i = np.searchsorted(self._done, h)
        return bool(i < len(self._done) and self._done[i] == h)

    def __len__(self) -> int:
        return len(self._done)


class ManifestIndex:
    """Look rows of a manifest up by key, holding only the key hashes and a few parts.

    Parameters
    ----------
    path : Path
        The manifest (directory of parts, or the single file of an older version).
    schema : Schema
        Its schema.
    columns : sequence of str
        The columns :meth:`get` returns (array columns as numpy arrays of the schema's shape).
    key : sequence of str, optional
        The columns to look up by (default: the schema's key); must identify rows.
    cached_parts : int, optional
        Decoded parts kept; default 4.

    Raises
    ------
    UsageError
        A part changed since it was written, or lacks a requested column.
    """

    def __init__(
        self,
        path: Path,
        schema: Schema,
        columns: Sequence[str],
        *,
        key: Sequence[str] | None = None,
        cached_parts: int = 4,
    ) -> None:
        self.schema = schema
        self.key = tuple(key or schema.key)
        self.columns = tuple(columns)
        self._sources = _sources(Path(path))
        self._cache: OrderedDict[int, dict[str, list[Any]]] = OrderedDict()
        self._cached_parts = max(1, cached_parts)
        hashes, where = [], []
        for number, source in enumerate(self._sources):
            found = _hashes(_read(source, self.key), self.key)
            hashes.append(found)
            where.append(np.stack([np.full(len(found), number), np.arange(len(found))], axis=1))
        all_hashes = np.concatenate(hashes) if hashes else np.zeros(0, np.int64)
        all_where = np.concatenate(where) if where else np.zeros((0, 2), np.int64)
        unique, first = np.unique(all_hashes[::-1], return_index=True)  # last row wins
        self._hashes = unique
        self._where = all_where[::-1][first]

    def __len__(self) -> int:
        return len(self._hashes)

    def rows(self) -> Iterator[dict[str, Any]]:
        """Every row (its last version, for a key written twice), in the order the manifest
        holds them, with the requested columns; one part decoded at a time."""
        order = np.lexsort((self._where[:, 1], self._where[:, 0]))
        for number, row in self._where[order]:
            cells = self._part(int(number))
            yield {name: cells[name][int(row)] for name in self.columns}

    def get(self, key: tuple[Hashable, ...]) -> dict[str, Any] | None:
        """The requested columns of the row with this key, or None when there is none."""
        h = key_hash(key)
        i = np.searchsorted(self._hashes, h)
        if i >= len(self._hashes) or self._hashes[i] != h:
            return None
        number, row = (int(v) for v in self._where[i])
        cells = self._part(number)
        return {name: cells[name][row] for name in self.columns}

    def _part(self, number: int) -> dict[str, list[Any]]:
        if number in self._cache:
            self._cache.move_to_end(number)
            return self._cache[number]
        source = self._sources[number]
        table = _read(source, self.columns, verify=True)
        cells = {}
        for name in self.columns:
            column = self.schema.column(name)
            if column.dtype == "array":
                cells[name] = _cells_from_arrow(table[name], column.shape)
            else:
                cells[name] = table[name].to_pylist()
        self._cache[number] = cells
        while len(self._cache) > self._cached_parts:
            self._cache.popitem(last=False)
        return cells
