"""Write augmented images and their labels in a dataset's own layout.

Training code written for DISFA, AFEW-VA or Aff-Wild2 reads an augmented root written here
unchanged: same folders, same file names, same label formats and scales. Every image keeps its
source subject: augmented copies of DISFA's SN001 are SN001's video in the augmented root, so a
subject-independent split made on subject ids cannot put an augmented copy of a test subject
into training.

The input is one row per augmented image, as the blend stage writes them (see
:func:`write_layout`). Within a subject, images are written in a stable order (clip, source
image, face, target, sample, file), so a rerun writes the same frame numbers. Every file is
written atomically (a temporary file renamed over the target); rerunning into an existing root
replaces each subject's files, and removes the numbered frames and label files of that subject
that the new run no longer writes, so a subject's images and labels always match. Subjects not
in the input are left untouched.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from augmentface.datasets.layout_items import items_from_labels
from augmentface.datasets.layout_writers import AU_OCCURRENCE_THRESHOLD, WRITERS
from augmentface.errors import UsageError

__all__ = ["AU_OCCURRENCE_THRESHOLD", "LAYOUTS", "write_layout"]

#: The layouts :func:`write_layout` writes.
LAYOUTS: tuple[str, ...] = tuple(WRITERS)


def write_layout(
    layout: str,
    labels: pd.DataFrame,
    out_root: str | Path,
    *,
    occurrence_threshold: float = AU_OCCURRENCE_THRESHOLD,
) -> pd.DataFrame:
    """Write the augmented images of ``labels`` under ``out_root`` in a dataset's layout.

    Parameters
    ----------
    layout : {"flat", "disfa", "afew-va", "affwild2"}
        ``disfa``: per subject an MJPG video ``Videos_LeftCamera/LeftVideo<S>_comp.avi`` (20 fps,
        frames resized to the subject's first image) and ``ActionUnit_Labels/<S>/<S>_au<n>.txt``
        (``frame,intensity``, frames from 1, intensities rounded to whole numbers). Rows without
        AU labels are refused. ``afew-va``: per subject a clip folder ``<S>/00000.png …`` and
        ``<S>/<S>.json`` (valence and arousal as 10 × label rounded half away from zero, the 68
        landmarks when given, else an empty list). Rows without valence/arousal are refused.
        ``affwild2``: ``cropped_aligned/<S>/00001.jpg …`` and, for the labels the rows have,
        ``VA_Estimation_Challenge/Train_Set/<S>.txt`` (−5,−5 for a row without VA),
        ``AU_Detection_Challenge/Train_Set/<S>.txt`` (occurrence = intensity ≥
        ``occurrence_threshold``; −1 for a row without AUs) and
        ``EXPR_Recognition_Challenge/Train_Set/<S>.txt`` (−1 for a row without emotion).
        ``flat``: ``images/<file name>`` copies and ``labels.csv`` (``path`` relative to
        ``out_root`` plus the input's scalar columns), readable by the ``folder`` import.
    labels : pandas.DataFrame
        One row per augmented image: ``output_path``, ``subject_id``, and labels ``AU1`` …
        ``AU26`` (FACS 0–5, NaN for VA rows), ``valence``, ``arousal`` ([−1, 1], NaN for AU
        rows), optionally ``emotion`` and ``ibug68_px`` ((68, 2) px or None). ``clip_id``,
        ``image_path``, ``face_index``, ``target_id``, ``sample``, when present, fix the order.
        Rows whose ``output_path`` is null (failed or rejected in blend) are skipped.
    out_root : str or Path
        Root of the augmented dataset; created if needed.
    occurrence_threshold : float, optional
        See :data:`AU_OCCURRENCE_THRESHOLD`.

    Returns
    -------
    pandas.DataFrame
        Indexed like ``labels``: ``output_path`` (input), ``written_path`` (the image, or the
        video holding it; null for skipped rows), ``frame_index`` (the layout's own frame
        number as its label files count: DISFA and Aff-Wild2 from 1, AFEW-VA from 0, -1 for
        flat and skipped rows) and ``frame_ref`` (a reference
        :func:`~augmentface.datasets.frames.read_frame` decodes; null for skipped rows).

    Raises
    ------
    UsageError
        Unknown layout (the allowed ones are listed), missing columns, labels out of range, a
        subject id that is not a safe folder name, or rows the layout cannot label (e.g. VA
        rows for DISFA). Nothing is written when the input is refused.
    """
    if layout not in LAYOUTS:
        raise UsageError(f"unknown layout {layout!r}; choose one of {', '.join(LAYOUTS)}")
    items = items_from_labels(labels)
    root = Path(out_root).expanduser().resolve()
    records = WRITERS[layout](items, labels, root, occurrence_threshold)
    result = pd.DataFrame(
        {
            "output_path": labels["output_path"],
            "written_path": pd.Series(None, index=labels.index, dtype=object),
            "frame_index": pd.Series(-1, index=labels.index, dtype=np.int64),
            "frame_ref": pd.Series(None, index=labels.index, dtype=object),
        }
    )
    for record in records:
        result.at[record.index, "written_path"] = str(record.path)
        result.at[record.index, "frame_index"] = record.frame_index
        result.at[record.index, "frame_ref"] = record.frame_ref
    return result
