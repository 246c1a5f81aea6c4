"""What every stage shares: work-directory layout, resume, progress and the run report."""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import logging
import re
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import pandas as pd
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from augmentface.datasets.frames import frame_name, parse_frame_ref
from augmentface.errors import RowError
from augmentface.manifest import Manifest, Schema, read_manifest, read_meta
from augmentface.manifest_parts import dataset_digest, file_sha256

log = logging.getLogger("augmentface")

DEFAULT_WORKDIR = Path("augment")
SOURCES_FILE = "sources.parquet"
FITS_FILE = "fits.parquet"
TARGETS_FILE = "targets.parquet"
RENDERS_FILE = "renders.parquet"
RENDERS_DIR = "renders"
OUTPUT_DIR = "output"
LABELS_FILE = "labels.parquet"

T = TypeVar("T")


@dataclass
class StageReport:
    """Counts of one stage's run: done, skipped (already done: resume), failed by status."""

    stage: str
    manifest_path: Path
    done: int = 0
    skipped: int = 0
    failed: Counter = field(default_factory=Counter)
    examples: dict[str, str] = field(default_factory=dict)  # status -> first error message
    rejected: int = 0  # finished, but refused by a quality gate (not a failure)

    def ok(self) -> None:
        self.done += 1

    def reject(self, message: str) -> None:
        self.rejected += 1
        self.examples.setdefault("rejected", message)
        log.info("rejected: %s", message)

    def fail(self, status: str, message: str) -> None:
        self.failed[status] += 1
        self.examples.setdefault(status, message)
        log.warning("%s", message)

    @property
    def n_failed(self) -> int:
        return sum(self.failed.values())


def row_failure(error: Exception, where: str) -> tuple[str, str]:
    """(status, one-line message naming the file and the reason) for a failed row.

    Typed :class:`RowError` subclasses carry their own status; anything else is an unexpected
    failure (status ``failed``) and its type is named so that it can be reported.
    """
    if isinstance(error, RowError):
        text = str(error)
    else:
        text = f"unexpected {type(error).__name__}: {error}"
    # one line: a file name may hold a line break too (the message quotes it as it came)
    text, where = " ".join(text.split()), " ".join(where.split())
    if not isinstance(error, RowError):
        return "failed", f"{where}: {text}"
    return error.status, text if text.startswith(where) else f"{where}: {text}"


def progress(items: Iterable[T], description: str, total: int, quiet: bool) -> Iterator[T]:
    """Iterate with a progress bar (:func:`progress_bar`)."""
    with progress_bar(description, total, quiet) as show:
        for count, item in enumerate(items, 1):
            yield item
            show(count)


@contextlib.contextmanager
def progress_bar(
    description: str, total: int | None, quiet: bool
) -> Iterator[Callable[[int], None]]:
    """A rich progress bar on stderr (none when ``quiet``); yields ``set_completed(n)``."""
    if quiet:
        yield lambda completed: None
        return
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, transient=False) as bar:
        task = bar.add_task(description, total=total)
        yield lambda completed: bar.update(task, completed=completed)


def _normalise(params: Mapping[str, Any]) -> str:
    return json.dumps(params, sort_keys=True, default=str)


def same_job(path: Path, params: Mapping[str, Any]) -> bool:
    """Whether the manifest at ``path`` is an earlier run of the same job (same parameters),
    to resume; a manifest written with other parameters belongs to another job: it is replaced,
    not resumed, so a result never mixes two configurations."""
    if not path.exists():
        return False
    if path.is_file():
        log.info("%s is a single-file manifest of an older version: starting afresh", path)
        return False
    try:
        meta = read_meta(path)
    except Exception:  # an unreadable old manifest is simply replaced
        return False
    if _normalise(meta.get("params", {})) != _normalise(params):
        log.info("%s was written with other parameters: starting afresh", path)
        return False
    return True


def previous_rows(path: Path, schema: Schema, params: Mapping[str, Any]) -> pd.DataFrame | None:
    """Rows of an earlier run of the same job (:func:`same_job`) to resume from, else None."""
    if not same_job(path, params):
        return None
    return read_manifest(path, schema, run_first="").df


def manifest_digest(df: pd.DataFrame, columns: Sequence[str]) -> str:
    """A short digest of ``columns`` of every row, for a downstream stage's parameters.

    A stage resumes only a job with the same parameters; with its upstream's digest among them,
    re-running the upstream stage with other results (another model file, a changed fit)
    makes the downstream stage start afresh instead of keeping rows made from the old ones.
    """
    digest = hashlib.blake2b(digest_size=12)
    for column in columns:
        for value in df[column]:
            if isinstance(value, np.ndarray):
                digest.update(np.ascontiguousarray(value).tobytes())
            else:
                digest.update(repr(value).encode())
    return digest.hexdigest()


def frame_order(image_path: str) -> tuple[str, int]:
    """Sort key of a frame reference: by file, then by frame number (``#frame=10`` after
    ``#frame=2``), so a stage decodes a video's frames forward instead of seeking."""
    file, index = parse_frame_ref(image_path)
    return str(file), -1 if index is None else index


def sample_name(image_path: str, face_index: int, target_id: str, sample: int) -> str:
    """A file-name stem unique per row: the frame's name
    (:func:`.datasets.frames.frame_name`), face, target, sample; render's crops and blend's
    outputs and layouts share it. A stem longer than :data:`MAX_STEM_BYTES` is cut and ends
    with a hash of the whole (a 240-character photo name would not fit a file name)."""
    target = re.sub(r"[^A-Za-z0-9.+_-]+", "-", target_id.replace("=", "-"))
    stem = f"{frame_name(image_path)}_f{face_index}_{target}_s{sample}"
    return stem if len(stem.encode()) <= MAX_STEM_BYTES else _shortened(stem)


#: File systems take names of at most 255 bytes; a stem this long leaves room for a suffix.
MAX_STEM_BYTES = 200


def _shortened(stem: str) -> str:
    """A stem too long for a file name: its start and a hash of the whole, still unique."""
    digest = hashlib.blake2b(stem.encode(), digest_size=8).hexdigest()
    head = stem.encode()[: MAX_STEM_BYTES - len(digest) - 1].decode(errors="ignore")
    return f"{head}-{digest}"


def resolved_folder(folder: Path) -> Path:
    """``folder.resolve()``, resolved once per process and absolute folder: a stage records
    each row's file by its absolute path, the folder's resolved path joined with the file's
    name (the same string as the file's own ``resolve()`` for the regular files stages write),
    where resolving every file anew costs ~0.07 ms a row (a look-up per path component).
    Keyed by the absolute path, so a relative folder after a change of directory is another."""
    return _resolved(folder.absolute())


@functools.lru_cache(maxsize=64)
def _resolved(folder: Path) -> Path:
    return folder.resolve()


def file_digest(path: str | Path) -> str:
    """sha256 of a file (model files a stage's results depend on), or of a manifest
    directory's parts."""
    return dataset_digest(Path(path)) if Path(path).is_dir() else file_sha256(path)


def upstream(path: Path, schema: Schema, run_first: str) -> Manifest:
    """Read an upstream manifest; a missing one names the command to run first."""
    return read_manifest(path, schema, run_first=run_first)
