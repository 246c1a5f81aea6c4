"""One writer per layout of :func:`augmentface.datasets.layouts.write_layout`.

Each writer takes the checked items (:mod:`augmentface.datasets.layout_items`), refuses rows its
layout cannot label *before* touching the disk, then writes subject by subject: images first,
label files last, each file atomically, and finally removes the subject's numbered frames and
label files left over from an earlier, larger run.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Hashable, Iterator, Sequence
from pathlib import Path
from typing import TextIO

import cv2
import numpy as np
import pandas as pd

from augmentface.atomic import atomic_path, atomic_write_bytes, atomic_write_text, atomic_write_with
from augmentface.datasets.afew_va import label_file as afew_label_file
from augmentface.datasets.affwild2 import AU_HEADER, CHALLENGES, EXPR_HEADER, FRAMES_DIR, SPLITS
from augmentface.datasets.disfa import FPS, au_file, video_file
from augmentface.datasets.frames import FRAME_SUFFIXES, format_frame_ref, video_frame_count
from augmentface.datasets.layout_items import Item, Written, group_by_subject, half_up
from augmentface.datasets.schema import DISFA_AUS, EMOTIONS
from augmentface.errors import UsageError
from augmentface.hashed_set import HashedSet
from augmentface.imageio import encode_image, read_image

__all__ = [
    "AU_OCCURRENCE_THRESHOLD",
    "REQUIRED_LABELS",
    "WRITERS",
    "FlatWriter",
    "flat_writer",
    "unlabelled_error",
]

#: Intensity from which an AU counts as occurring when an occurrence-coded layout (Aff-Wild2)
#: is written. FACS scores an AU from trace (A = 1) upward, and the synthesised image shows a
#: target intensity of 1 exactly, so 1 counts as present. (DISFA-trained AU *detectors* often
#: use >= 2 instead, because DISFA's human-coded trace level is unreliable; pass
#: ``occurrence_threshold=2`` to follow them.)
AU_OCCURRENCE_THRESHOLD = 1.0

_JPEG_QUALITY = 95
_TRAIN = SPLITS["Train"]

Writer = Callable[[list[Item], pd.DataFrame, Path, float], list[Written]]


def write_flat(items: list[Item], labels: pd.DataFrame, root: Path, _: float) -> list[Written]:
    """``images/<file name>`` and ``labels.csv`` (``path`` + the input's scalar columns)."""
    columns = [c for c in labels.columns if c != "output_path" and _is_scalar_column(labels[c])]
    with flat_writer(root, columns) as writer:
        return writer.write(items, labels)


class FlatWriter:
    """The flat layout written a few items at a time, in order (``export-layout`` gives it a
    subject at a time): each image is copied as it comes and its row appended to the open
    ``labels.csv``. It holds the file names written (to keep them unique, and to know the
    stale ones) as 8-byte hashes (:class:`~augmentface.hashed_set.HashedSet`), not the rows.
    Made by :func:`flat_writer`."""

    def __init__(self, root: Path, columns: Sequence[str], handle: TextIO) -> None:
        self.root = root
        self.columns = list(columns)
        self.names = HashedSet()
        self._handle = handle
        self._header = True

    def write(self, items: list[Item], labels: pd.DataFrame) -> list[Written]:
        """Copy ``items``' images and append their rows of ``labels`` (its ``columns``)."""
        images = self.root / "images"
        written = []
        for item in items:
            path = images / _unique_name(item.source, self.names)
            atomic_write_bytes(path, item.source.read_bytes())
            written.append(Written(item.index, path, -1, str(path)))
        table = labels.loc[[w.index for w in written], self.columns].copy()
        table.insert(0, "path", [w.path.relative_to(self.root).as_posix() for w in written])
        # Appended frame by frame, the bytes of one to_csv of them all (same header, rows).
        table.to_csv(self._handle, index=False, header=self._header)
        self._header = False
        return written

    def finish(self) -> None:
        """The header alone when no item came (as ``to_csv`` of no rows writes it)."""
        if self._header:
            pd.DataFrame(columns=["path", *self.columns]).to_csv(self._handle, index=False)


@contextlib.contextmanager
def flat_writer(root: Path, columns: Sequence[str]) -> Iterator[FlatWriter]:
    """A :class:`FlatWriter` under ``root`` writing ``columns`` of the labels; when the block
    ends, ``labels.csv`` replaces the old one atomically and the images of an earlier run that
    this one did not write are removed (on an error, neither)."""
    with (
        atomic_path(root / "labels.csv") as tmp,
        open(tmp, "w", encoding="utf-8", newline="") as handle,
    ):
        writer = FlatWriter(root, columns, handle)
        yield writer
        writer.finish()
    _remove_stale(root / "images", writer.names, numbered_only=False)


#: The layouts that label every frame with one kind of label: (the :class:`Item` attribute
#: holding it, what it is, what to write instead).
REQUIRED_LABELS: dict[str, tuple[str, str, str]] = {
    "disfa": ("aus", "AU intensities", "valence/arousal rows with the afew-va or affwild2 layout"),
    "afew-va": ("va", "valence and arousal", "AU rows with the disfa or affwild2 layout"),
}


def unlabelled_error(layout: str, count: int, example: Hashable) -> UsageError:
    """The refusal of ``count`` rows ``layout`` cannot label, ``example`` the first's index."""
    _, labels, instead = REQUIRED_LABELS[layout]
    return UsageError(
        f"the {layout} layout labels every frame with {labels}, but {count} rows "
        f"have none (e.g. row {example!r}); write {instead}"
    )


def _refuse_unlabelled(items: list[Item], layout: str) -> None:
    """Refuse, before anything is written, rows a layout cannot label."""
    missing = [item for item in items if getattr(item, REQUIRED_LABELS[layout][0]) is None]
    if missing:
        raise unlabelled_error(layout, len(missing), missing[0].index)


def write_disfa(items: list[Item], _: pd.DataFrame, root: Path, __: float) -> list[Written]:
    """Per subject: an MJPG video of the left camera and one ``frame,intensity`` file per AU."""
    _refuse_unlabelled(items, "disfa")
    written = []
    for subject, group in group_by_subject(items).items():
        video = video_file(root, subject, "left")
        _write_video(video, [item.source for item in group])
        for au in DISFA_AUS:
            values = [(item.aus or {}).get(au, 0.0) for item in group]
            lines = "".join(f"{f},{half_up(v)}\n" for f, v in enumerate(values, 1))
            atomic_write_text(au_file(root, subject, au), lines)
        written += [
            Written(item.index, video, f, format_frame_ref(video, f - 1))
            for f, item in enumerate(group, 1)
        ]
    return written


def write_afew_va(items: list[Item], _: pd.DataFrame, root: Path, __: float) -> list[Written]:
    """Per subject: a clip folder of PNG frames and its ``NNN.json``."""
    _refuse_unlabelled(items, "afew-va")
    written = []
    for subject, group in group_by_subject(items).items():
        folder = root / subject
        entries = {}
        for number, item in enumerate(group):
            path = folder / f"{number:05d}.png"
            _write_frame(item.source, path)
            valence, arousal = item.va or (0.0, 0.0)  # every item has va: checked above
            landmarks = [] if item.landmarks is None else np.round(item.landmarks, 3).tolist()
            entries[f"{number:05d}"] = {
                "valence": half_up(10 * valence),
                "arousal": half_up(10 * arousal),
                "landmarks": landmarks,
            }
            written.append(Written(item.index, path, number, str(path)))
        document = {"frames": entries, "video_id": subject}
        atomic_write_text(afew_label_file(root, subject), json.dumps(document, indent=1))
        _remove_stale(folder, {f"{n:05d}.png" for n in range(len(group))})
    return written


def write_affwild2(
    items: list[Item], _: pd.DataFrame, root: Path, threshold: float
) -> list[Written]:
    """Per subject: ``cropped_aligned/<S>/00001.jpg …`` and the Train_Set label files."""
    written = []
    for subject, group in group_by_subject(items).items():
        folder = root / FRAMES_DIR / subject
        for number, item in enumerate(group, 1):
            path = folder / f"{number:05d}.jpg"
            _write_frame(item.source, path)
            written.append(Written(item.index, path, number, str(path)))
        files = {
            "VA": _va_lines(group) if any(it.va is not None for it in group) else None,
            "AU": _au_lines(group, threshold) if any(it.aus is not None for it in group) else None,
            "EXPR": _expr_lines(group) if any(it.emotion is not None for it in group) else None,
        }
        for challenge, lines in files.items():
            path = root / CHALLENGES[challenge][0] / _TRAIN / f"{subject}.txt"
            if lines is not None:
                atomic_write_text(
                    path, "\n".join([",".join(CHALLENGES[challenge][1]), *lines]) + "\n"
                )
            else:
                path.unlink(missing_ok=True)  # labels of an earlier run no longer true
        _remove_stale(folder, {f"{n:05d}.jpg" for n in range(1, len(group) + 1)})
    return written


def _va_lines(group: list[Item]) -> list[str]:
    return ["-5,-5" if it.va is None else f"{it.va[0]:.6g},{it.va[1]:.6g}" for it in group]


def _au_lines(group: list[Item], threshold: float) -> list[str]:
    numbers = [int(name[2:]) for name in AU_HEADER]
    lines = []
    for item in group:
        if item.aus is None:
            lines.append(",".join(["-1"] * len(numbers)))
        else:
            lines.append(",".join(str(int(item.aus.get(n, 0.0) >= threshold)) for n in numbers))
    return lines


def _expr_lines(group: list[Item]) -> list[str]:
    assert len(EXPR_HEADER) == len(EMOTIONS)  # same classes, same order
    return [str(-1 if it.emotion is None else EMOTIONS.index(it.emotion)) for it in group]


def _write_frame(source: Path, path: Path) -> None:
    """Copy ``source`` to ``path`` when the format already matches, else re-encode it."""
    suffixes = {".jpg", ".jpeg"} if path.suffix == ".jpg" else {path.suffix}
    if source.suffix.lower() in suffixes:
        atomic_write_bytes(path, source.read_bytes())
    else:
        data = encode_image(read_image(source), path.suffix, jpeg_quality=_JPEG_QUALITY)
        atomic_write_bytes(path, data)


def _write_video(path: Path, sources: list[Path]) -> None:
    """Encode ``sources`` as an MJPG video at DISFA's frame rate, atomically.

    Every frame is resized to the first image's size (a video has one frame size). The
    temporary file is decoded back and its frames counted before it replaces ``path``, so the
    label files always match the video.
    """

    def produce(tmp: Path) -> None:
        writer = None
        try:
            for source in sources:
                image = read_image(source)
                if writer is None:
                    height, width = image.shape[:2]
                    fourcc = cv2.VideoWriter_fourcc(*"MJPG")
                    writer = cv2.VideoWriter(str(tmp), fourcc, FPS, (width, height))
                    if not writer.isOpened():
                        raise OSError(f"{path}: OpenCV cannot write an MJPG video")
                    writer.set(cv2.VIDEOWRITER_PROP_QUALITY, _JPEG_QUALITY)
                if image.shape[:2] != (height, width):
                    image = cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA)
                writer.write(cv2.cvtColor(image, cv2.COLOR_RGB2BGR))  # as imageio.encode_image
        finally:
            if writer is not None:
                writer.release()
        count = video_frame_count(tmp)
        if count != len(sources):
            raise OSError(f"{path}: wrote {len(sources)} frames but the video decodes {count}")

    atomic_write_with(path, produce)


def _unique_name(source: Path, taken: set[str] | HashedSet) -> str:
    name, number = source.name, 1
    while name in taken:
        name = f"{source.stem}_{number}{source.suffix}"
        number += 1
    taken.add(name)
    return name


def _is_scalar_column(values: pd.Series) -> bool:
    return not any(isinstance(v, np.ndarray | list | tuple) for v in values)


def _remove_stale(folder: Path, keep: set[str] | HashedSet, *, numbered_only: bool = True) -> None:
    """Delete files in ``folder`` an earlier run wrote that this run did not write.

    ``numbered_only``: only frame images named by digits (``00012.png``), the files a layout's
    label files index; other files (``001.json``) are not frames. Hidden files are other
    writers' temporary files.
    """
    if not folder.is_dir():
        return
    for path in folder.iterdir():
        if not path.is_file() or path.name in keep or path.name.startswith("."):
            continue
        if not numbered_only or (path.stem.isdigit() and path.suffix.lower() in FRAME_SUFFIXES):
            path.unlink()


WRITERS: dict[str, Writer] = {
    "flat": write_flat,
    "disfa": write_disfa,
    "afew-va": write_afew_va,
    "affwild2": write_affwild2,
}
