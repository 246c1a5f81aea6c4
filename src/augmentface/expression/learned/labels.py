"""AU label columns of a labelled manifest: which AUs, reading them, and refusing bad values."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import pandas as pd

from augmentface.datasets.schema import DISFA_AUS  # the default condition of learned models
from augmentface.errors import UsageError
from augmentface.expression.au_rig import INTENSITY_MAX

_log = logging.getLogger(__name__)


class AULabelError(UsageError):
    """A manifest's AU labels are missing, out of range or all unlabelled (a usage error, unlike
    :class:`augmentface.errors.LabelError`, the status of one imported frame's bad label)."""


def label_column(au: int) -> str:
    """Manifest column holding the label of one AU, e.g. ``label_AU12``."""
    return f"label_AU{au}"


@dataclass(frozen=True)
class AULabels:
    """The complete AU labels of a manifest's rows.

    Attributes
    ----------
    values : (N, A) float32
        Intensities on the FACS 0–5 scale, in the order of ``aus``, for the kept rows.
    keep : (M,) bool
        Which of the manifest's M rows were kept (every label present).
    aus : tuple of int
        The AUs, in column order.
    """

    values: np.ndarray
    keep: np.ndarray
    aus: tuple[int, ...]

    @property
    def n_dropped(self) -> int:
        """Rows dropped because one of their labels was NaN."""
        return int(np.size(self.keep) - np.count_nonzero(self.keep))


def read_au_labels(fits: pd.DataFrame, aus: tuple[int, ...] = DISFA_AUS) -> AULabels:
    """Read and check the ``label_AU<n>`` columns of ``aus``.

    Rows with a NaN label are dropped (the count is logged and kept in
    :attr:`AULabels.n_dropped`); infinite values or values outside 0–5 are refused.

    Raises
    ------
    AULabelError
        A column is missing, a value is out of range, or no row is completely labelled.
    """
    columns = [label_column(au) for au in aus]
    missing = [c for c in columns if c not in fits.columns]
    if missing:
        raise AULabelError(
            f"the manifest has no label columns {', '.join(missing)}; a learned AU model "
            "needs a fitted manifest of a labelled dataset (FACS 0–5 per AU, NaN = unlabelled)"
        )
    values = fits[columns].to_numpy(dtype=np.float64)
    finite = np.isfinite(values)
    bad = ~finite & ~np.isnan(values) | finite & ((values < 0) | (values > INTENSITY_MAX))
    if bad.any():
        row, col = np.argwhere(bad)[0]
        raise AULabelError(
            f"{columns[col]} must be on the FACS scale 0–5 (NaN = unlabelled); "
            f"{int(bad.sum())} values are not, e.g. {values[row, col]} in row {fits.index[row]!r}"
        )
    keep = finite.all(axis=1)
    if not keep.any():
        raise AULabelError(
            f"no row has all of {', '.join(columns)} labelled; every one has a NaN label"
        )
    labels = AULabels(values[keep].astype(np.float32), keep, tuple(aus))
    if labels.n_dropped:
        _log.warning("dropped %d of %d rows with a NaN AU label", labels.n_dropped, len(keep))
    return labels
