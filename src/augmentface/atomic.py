"""Atomic file writes: a temporary file in the target's folder, flushed, then renamed over it.

``os.replace`` is atomic on POSIX and Windows when source and target share a file system, so a
reader (or a run killed half-way) sees either the old file or the new one, never a torn one.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import os
import sys
import tempfile
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path


def _default_file_mode() -> int:
    # mkstemp creates files readable by their owner only; outputs are meant to be shared like
    # any file the user writes, so apply the usual 0o666 minus the process umask.
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


#: Mode of every file written: the usual 0o666 less the process umask.
FILE_MODE = _default_file_mode()


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str], *, durable: bool = True) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success it replaces ``path`` atomically.

    On an exception the temporary file is removed and ``path`` is left as it was. With
    ``durable`` the content is on disk (fsync) before the rename; without it a killed process
    still leaves a whole file or none, and only a crash of the machine can lose it: a stage's
    per-row files are made durable together, once per manifest part
    (:func:`sync_file_systems`), since an fsync per image costs about as much as the write.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(
        prefix=f".{target.name}.", suffix=".tmp" + target.suffix, dir=target.parent
    )
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        if durable:
            with open(tmp, "rb+") as handle:
                os.fsync(handle.fileno())
        os.chmod(tmp, FILE_MODE)
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes, *, durable: bool = True) -> None:
    """Write ``data`` to ``path`` atomically (``durable``: as :func:`atomic_path`).

    The temporary file is created with its final mode and written through the descriptor
    that created it (:func:`_create_beside`): one open instead of mkstemp's, a close, another
    open and a chmod, ~0.08 ms less a file where stages write one per row.
    """
    target = Path(path)
    tmp, fd = _create_beside(target)
    try:
        with open(fd, "wb") as handle:
            handle.write(data)
            if durable:
                handle.flush()
                os.fsync(fd)
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


_CREATE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)


def _create_beside(target: Path) -> tuple[Path, int]:
    """A new empty file beside ``target``, named as :func:`atomic_path`'s are
    (``.NAME.XXXXXXXXXX.tmpSUFFIX``), created exclusively with :data:`FILE_MODE`, and its
    descriptor open for writing; the folder is made when missing.

    A name already taken (by another writer's temporary file) is drawn again.
    """
    while True:
        # os.urandom: no generator state that forked workers would share
        tmp = target.with_name(f".{target.name}.{os.urandom(5).hex()}.tmp{target.suffix}")
        try:
            return tmp, os.open(tmp, _CREATE_FLAGS, FILE_MODE)
        except FileExistsError:
            continue
        except FileNotFoundError:
            if target.parent.is_dir():
                raise
            target.parent.mkdir(parents=True, exist_ok=True)


def sync_file_systems(paths: Iterable[str | os.PathLike[str]]) -> None:
    """Flush to disk every file system that holds one of ``paths`` (written without
    ``durable``), one ``syncfs`` each; where there is no ``syncfs`` (not Linux), ``os.sync``.

    A file system is found by the ``st_dev`` of each distinct parent folder; a folder that is
    gone is skipped (its files are not there to keep).
    """
    folders = {os.path.dirname(os.fspath(p)) or "." for p in paths}
    if not folders:
        return
    syncfs = _syncfs()
    if syncfs is None:
        os.sync()
        return
    seen: set[int] = set()
    for folder in sorted(folders):
        try:
            fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
        except OSError:
            continue
        try:
            device = os.fstat(fd).st_dev
            if device not in seen:
                seen.add(device)
                if syncfs(fd) != 0:
                    error = ctypes.get_errno()
                    raise OSError(error, f"syncfs failed: {os.strerror(error)}", folder)
        finally:
            os.close(fd)


@functools.cache
def _syncfs() -> Callable[[int], int] | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        return ctypes.CDLL(None, use_errno=True).syncfs
    except (OSError, AttributeError):
        return None


def atomic_write_text(path: str | os.PathLike[str], text: str) -> None:
    """Write UTF-8 ``text`` to ``path`` atomically."""
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_with(path: str | os.PathLike[str], writer: Callable[[Path], None]) -> None:
    """Call ``writer(tmp_path)`` to produce the file, then move it over ``path`` atomically."""
    with atomic_path(path) as tmp:
        writer(tmp)
