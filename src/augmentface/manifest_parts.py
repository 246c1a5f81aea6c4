"""A manifest on disk: a Parquet dataset directory of immutable parts with completion markers.

``<stage>.parquet/`` holds ``part-00000.parquet``, ``part-00001.parquet``, ... and beside each
one a marker ``_part-00000.json`` with its row count and sha256. A part is written under a
temporary name and linked to its final name only if that name is free, so processes that
append to one directory never overwrite each other's parts; its marker is written (atomically)
after it, so a part without a marker is an interrupted write and is ignored. A part whose marker
says ``"replaces": true`` starts the dataset afresh: every part below it is void (and removed
as soon as possible). Readers take the live parts in order; a key that appears in several
parts keeps its last row (a retried row replaces the failed one).

``pandas.read_parquet(directory)`` reads the same rows, since Parquet readers skip files whose
names start with ``_`` or ``.`` (the markers and temporary files); between a rewrite and the
removal of the parts it voids, it may see those too.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from augmentface.atomic import FILE_MODE, atomic_write_text
from augmentface.errors import ManifestBusyError, UsageError

__all__ = [
    "Part",
    "WriterLock",
    "dataset_digest",
    "file_sha256",
    "live_parts",
    "read_parts",
    "remove_void_parts",
    "write_part",
]

_PART = re.compile(r"^part-(\d{5,})\.parquet$")
_MARKER = re.compile(r"^_part-(\d{5,})\.json$")


@dataclass(frozen=True)
class Part:
    """One completed part: its index, file, row count and sha256."""

    index: int
    path: Path
    rows: int
    sha256: str
    replaces: bool


def _part_name(index: int) -> str:
    return f"part-{index:05d}.parquet"


def _marker_path(directory: Path, index: int) -> Path:
    return directory / f"_part-{index:05d}.json"


def file_sha256(path: str | os.PathLike[str]) -> str:
    """sha256 of a file, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _indices(directory: Path) -> list[int]:
    """Indices of every part file or marker in ``directory`` (complete or not)."""
    found = set()
    for name in os.listdir(directory):
        match = _PART.match(name) or _MARKER.match(name)
        if match:
            found.add(int(match.group(1)))
    return sorted(found)


def _completed(directory: Path) -> list[Part]:
    parts = []
    for index in _indices(directory):
        marker = _marker_path(directory, index)
        path = directory / _part_name(index)
        if not marker.is_file() or not path.is_file():
            continue  # an interrupted write, or a part being removed
        try:
            info = json.loads(marker.read_text(encoding="utf-8"))
            parts.append(
                Part(index, path, int(info["rows"]), str(info["sha256"]), bool(info["replaces"]))
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise UsageError(f"{marker}: not a part marker ({exc})") from exc
    return parts


def live_parts(directory: Path) -> list[Part]:
    """The completed parts from the last one that replaces the dataset on, in index order."""
    parts = _completed(directory)
    starts = [i for i, part in enumerate(parts) if part.replaces]
    return parts[starts[-1] :] if starts else parts


def dataset_digest(directory: Path) -> str:
    """sha256 over the live parts' own digests: changes whenever the rows can change."""
    digest = hashlib.sha256()
    for part in live_parts(directory):
        digest.update(part.sha256.encode())
    return digest.hexdigest()


def remove_void_parts(directory: Path) -> None:
    """Remove every part and marker below the live ones (markers first, so a reader never
    takes a part that is about to go)."""
    live = live_parts(directory)
    if not live:
        return
    for index in _indices(directory):
        if index < live[0].index:
            _marker_path(directory, index).unlink(missing_ok=True)
            (directory / _part_name(index)).unlink(missing_ok=True)


def write_part(directory: Path, table: pa.Table, *, replaces: bool) -> Part:
    """Write ``table`` as the next part of ``directory`` (created if needed) and mark it done.

    The index is the next free one: a name taken meanwhile by another writer moves it on.
    """
    directory.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=".part.", suffix=".tmp", dir=directory)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        pq.write_table(table, tmp)
        with open(tmp, "rb+") as handle:
            os.fsync(handle.fileno())
        os.chmod(tmp, FILE_MODE)
        index = (_indices(directory) or [-1])[-1] + 1
        while True:
            try:
                os.link(tmp, directory / _part_name(index))
                break
            except FileExistsError:
                index += 1
    finally:
        tmp.unlink(missing_ok=True)
    path = directory / _part_name(index)
    part = Part(index, path, table.num_rows, file_sha256(path), replaces)
    marker = {"rows": part.rows, "sha256": part.sha256, "replaces": replaces}
    atomic_write_text(_marker_path(directory, index), json.dumps(marker))
    return part


def read_parts(parts: list[Part]) -> list[pa.Table]:
    """The tables of ``parts``, each checked against its marker.

    Raises
    ------
    UsageError
        A part whose size or content no longer matches its marker (changed after it was
        written), or that is not Parquet.
    """
    tables = []
    for part in parts:
        if file_sha256(part.path) != part.sha256:
            raise UsageError(f"{part.path}: changed after it was written (sha256 differs)")
        try:
            table = pq.read_table(part.path)
        except (pa.ArrowException, OSError) as exc:
            raise UsageError(f"{part.path}: not a readable Parquet file ({exc})") from exc
        if table.num_rows != part.rows:
            raise UsageError(f"{part.path}: {table.num_rows} rows, its marker says {part.rows}")
        tables.append(table)
    return tables


class WriterLock:
    """A lock on a manifest directory for one run's writer: a second run on the same workdir is
    refused instead of voiding or mixing the first one's parts. The operating system releases
    it when the process dies, so a dead run's lock is simply taken over.

    A whole run holds ``_lock`` exclusively. A shard's run (``shard="I/N"``) holds ``_lock``
    shared, so shards write side by side while a whole run is refused, and its own
    ``_lock-I-of-N`` exclusively, so the same shard cannot run twice. Each lock file holds
    its holder's pid, which the refusal names.

    Raises
    ------
    ManifestBusyError
        When another run holds it.
    """

    def __init__(self, directory: Path, shard: str | None = None) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self._fds: list[int] = []
        try:
            if shard is None:
                self._take(directory / "_lock", fcntl.LOCK_EX, directory)
            else:
                self._take(directory / "_lock", fcntl.LOCK_SH, directory)
                name = "_lock-" + shard.replace("/", "-of-")
                self._take(directory / name, fcntl.LOCK_EX, directory)
        except BaseException:
            self.release()
            raise

    def _take(self, path: Path, mode: int, directory: Path) -> None:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, FILE_MODE)
        try:
            fcntl.flock(fd, mode | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "?"
            os.close(fd)
            raise ManifestBusyError(
                f"{directory}: another run (pid {holder}) is writing this manifest; wait for it "
                "to end or give another --workdir"
            ) from None
        self._fds.append(fd)
        # Shards sharing ``_lock`` each write their pid: the file names one of them.
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)

    def release(self) -> None:
        """Give the lock up (later calls do nothing)."""
        while self._fds:
            fd = self._fds.pop()
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)
