"""A data-driven expression space: deformations from each subject's neutral, and a PCA basis.

The rig (:mod:`augmentface.expression.au_rig`) says how the face *should* move; a labelled,
fitted dataset says how its faces *did* move. This module turns such a manifest into
per-frame expression deformations and a linear basis for them, the space in which the learned
models of :mod:`augmentface.expression.learned` work.

**Deformations.** A frame's deformation is its model-frame shape
(``mean + identity_offsets + expression_offsets``) minus the mean shape of the same subject's
most neutral frames. Measuring against the subject's own neutral, rather than taking the fitted
expression offsets, removes whatever the fitter reads as expression in that person's resting
face (a resting half-smile, low brows) and keeps what the rig cannot express but the face did.
The neutral frames are the subject's lowest-activation frames (:class:`NeutralReferenceConfig`).

**Basis.** Principal components of the deformations, computed from an accumulated
1404 × 1404 covariance over float32 chunks, so 130k frames never need a float64 copy.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from augmentface.atomic import atomic_write_with
from augmentface.errors import UsageError
from augmentface.face.model import N_MESH_VERTICES, FaceModel

#: Coordinates of one deformation, 468 vertices × (x, y, z).
N_COORDS = N_MESH_VERTICES * 3

#: Values of :attr:`Deformations.reference`: which reference a row's deformation was taken from.
REFERENCE_NEUTRAL = "subject-neutral"
REFERENCE_SINGLE_FRAME = "fitted-single-frame"
REFERENCE_NO_NEUTRAL = "fitted-no-neutral-frame"

BASIS_FORMAT = "augmentface-expression-basis"
BASIS_FORMAT_VERSION = 1

_BASIS_KEYS = frozenset(
    {
        "format",
        "format_version",
        "face_model_id",
        "variance_target",
        "mean_model_mm",
        "components",
        "explained_variance_ratio",
        "variance_mm2",
    }
)
_LABEL_AU = re.compile(r"^label_AU\d+$")
_CHUNK_ROWS = 8192


class ExpressionSpaceError(UsageError):
    """A manifest or array that cannot give expression deformations or a basis."""


class BasisFileError(ExpressionSpaceError):
    """A file that is not a readable expression basis written by :meth:`ExpressionBasis.save`."""


class FaceModelMismatchError(ExpressionSpaceError):
    """A basis (or model) built on another face model than the one in use."""


@dataclass(frozen=True)
class NeutralReferenceConfig:
    """How each subject's neutral reference is chosen.

    Every frame gets an *activation*, from the first signal it has:

    1. AU labels (``label_AU*`` columns): the sum of its labelled intensities (NaN ignored);
       at most ``max_au_sum`` counts as neutral (default 1: one AU at trace level A).
    2. ``label_valence``/``label_arousal``: ``hypot(V, A)``; at most ``max_va_radius``.
    3. ``label_emotion``: 0 for an emotion in ``neutral_emotions`` (case-insensitive), else
       never neutral.
    4. Otherwise the fitted expression's magnitude, the RMS over vertices of
       ``expression_offsets_model_mm``; at most ``max_fitted_rms_mm`` (default 0.5 mm, below
       the 0.65 mm of AU12 at intensity 1 on the rig).

    Activations are divided by their threshold, so frames with different signals rank together
    and 1 is the neutral limit. The reference is the mean shape of the lowest ``share`` of the
    subject's frames (at least one), taken among the frames at or under their threshold.
    """

    share: float = 0.10
    max_au_sum: float = 1.0
    max_va_radius: float = 0.2
    max_fitted_rms_mm: float = 0.5
    neutral_emotions: tuple[str, ...] = ("neutral",)

    def __post_init__(self) -> None:
        if not 0.0 < self.share <= 1.0:
            raise ExpressionSpaceError(f"neutral share must be in (0, 1], got {self.share}")
        for name in ("max_au_sum", "max_va_radius", "max_fitted_rms_mm"):
            value = getattr(self, name)
            if not (np.isfinite(value) and value > 0):
                raise ExpressionSpaceError(f"{name} must be a positive number, got {value}")


@dataclass(frozen=True)
class Deformations:
    """Per-frame expression deformations of a manifest's ``ok`` rows.

    Attributes
    ----------
    offsets_model_mm : (N, 468, 3) float32
        Frame shape minus its reference shape, model frame, millimetres.
    reference : (N,) str
        Which reference each row used: :data:`REFERENCE_NEUTRAL`, or the fitted expression
        offsets (:data:`REFERENCE_SINGLE_FRAME`, :data:`REFERENCE_NO_NEUTRAL`).
    index : pandas.Index
        The manifest index of each row.
    subject_id : (N,) str
        Subject of each row.
    face_model_id : str
        Face model the manifest was fitted with.
    """

    offsets_model_mm: np.ndarray
    reference: np.ndarray
    index: pd.Index
    subject_id: np.ndarray
    face_model_id: str


def stack_cells(cells: Iterable[object], column: str) -> np.ndarray:
    """(N, 468, 3) float32 from manifest cells holding (468, 3) or flat (1404,) arrays."""
    cells = list(cells)
    out = np.empty((len(cells), N_MESH_VERTICES, 3), dtype=np.float32)
    for i, cell in enumerate(cells):
        arr = np.asarray(cell, dtype=np.float32) if cell is not None else None
        if arr is None or arr.size != N_COORDS:
            got = "null" if arr is None else f"shape {arr.shape}"
            raise ExpressionSpaceError(f"{column}: row {i} must be a (468, 3) array, got {got}")
        out[i] = arr.reshape(N_MESH_VERTICES, 3)
    return out


def ok_rows(fits: pd.DataFrame) -> pd.DataFrame:
    """The rows with status ``ok`` of a fitted manifest (refused without the needed columns)."""
    required = {"subject_id", "status", "identity_offsets_model_mm", "expression_offsets_model_mm"}
    missing = sorted(required - set(fits.columns))
    if missing:
        raise ExpressionSpaceError(
            f"a fitted manifest needs the columns {', '.join(missing)}; run fit3dmm on a "
            "dataset import first"
        )
    ok = fits[fits["status"] == "ok"]
    if ok.empty:
        raise ExpressionSpaceError("the manifest has no row with status 'ok'")
    return ok


def _activation(
    ok: pd.DataFrame, expression: np.ndarray, config: NeutralReferenceConfig
) -> np.ndarray:
    """(N,) activation of every row divided by its signal's neutral threshold (see config)."""
    n = len(ok)
    out = np.full(n, np.nan)
    label_cols = [c for c in ok.columns if _LABEL_AU.match(str(c))]
    if label_cols:
        labels = ok[label_cols].to_numpy(dtype=np.float64)
        has = np.isfinite(labels).any(axis=1)
        out[has] = np.nansum(labels[has], axis=1) / config.max_au_sum
    if {"label_valence", "label_arousal"} <= set(ok.columns):
        radius = np.hypot(ok["label_valence"].to_numpy(float), ok["label_arousal"].to_numpy(float))
        use = np.isnan(out) & np.isfinite(radius)
        out[use] = radius[use] / config.max_va_radius
    if "label_emotion" in ok.columns:
        emotion = ok["label_emotion"]
        neutral = {e.lower() for e in config.neutral_emotions}
        is_neutral = emotion.astype("string").str.lower().isin(neutral).to_numpy(bool)
        use = np.isnan(out) & emotion.notna().to_numpy()
        out[use] = np.where(is_neutral[use], 0.0, np.inf)
    rest = np.isnan(out)
    if rest.any():
        rms = np.sqrt(np.mean(np.sum(expression[rest].astype(np.float64) ** 2, axis=2), axis=1))
        out[rest] = rms / config.max_fitted_rms_mm
    return out


def expression_deformations_model_mm(
    fits: pd.DataFrame, model: FaceModel, config: NeutralReferenceConfig | None = None
) -> Deformations:
    """Each ``ok`` frame's deformation from its subject's neutral reference.

    Parameters
    ----------
    fits : pandas.DataFrame
        A fitted manifest with ``subject_id``, ``status``, ``identity_offsets_model_mm`` and
        ``expression_offsets_model_mm`` ((468, 3) mm cells) and optionally label columns.
    model : FaceModel
        The face model the manifest was fitted with (its id; its mean shape cancels out).
    config : NeutralReferenceConfig, optional
        How the neutral frames are chosen.

    Returns
    -------
    Deformations
        Frame shape minus the mean shape of the subject's neutral frames, (N, 468, 3) float32
        mm. A subject with a single frame, or with no frame under the neutral threshold, keeps
        its fitted ``expression_offsets_model_mm``; ``reference`` says which rows did.
    """
    config = config or NeutralReferenceConfig()
    ok = ok_rows(fits)
    subjects = ok["subject_id"].astype(str).to_numpy()
    identity = stack_cells(ok["identity_offsets_model_mm"], "identity_offsets_model_mm")
    expression = stack_cells(ok["expression_offsets_model_mm"], "expression_offsets_model_mm")
    activation = _activation(ok, expression, config)
    reference = np.full(len(ok), REFERENCE_NEUTRAL, dtype=object)
    # The mean shape is common to every frame and cancels in shape − reference shape, so the
    # identity + expression offsets alone are compared; they overwrite ``identity`` in place.
    shape = identity
    shape += expression
    for rows in pd.Series(np.arange(len(ok))).groupby(subjects, sort=False).indices.values():
        eligible = rows[activation[rows] <= 1.0]
        if len(rows) == 1 or eligible.size == 0:
            reason = REFERENCE_SINGLE_FRAME if len(rows) == 1 else REFERENCE_NO_NEUTRAL
            shape[rows] = expression[rows]
            reference[rows] = reason
            continue
        n_ref = max(1, int(config.share * len(rows)))
        chosen = eligible[np.argsort(activation[eligible], kind="stable")[:n_ref]]
        shape[rows] -= shape[chosen].mean(axis=0, dtype=np.float64).astype(np.float32)
    return Deformations(
        offsets_model_mm=shape,
        reference=reference.astype(str),
        index=ok.index,
        subject_id=subjects,
        face_model_id=model.model_id,
    )


@dataclass(frozen=True)
class ExpressionBasis:
    """A linear (PCA) basis of (468, 3) offset fields.

    Used for expression deformations and, with few components, for the identity code of the
    learned models.

    Attributes
    ----------
    mean_model_mm : (468, 3) float32
        Mean offset field, mm.
    components : (K, 468, 3) float32
        Orthonormal components (as flattened 1404-vectors), largest variance first.
    explained_variance_ratio : (K,) float64
        Share of the total variance each component explains.
    variance_mm2 : (K,) float64
        Variance of each coefficient, mm².
    face_model_id : str
        Face model whose vertices the fields live on.
    variance_target : float
        The explained-variance share K was chosen for.
    """

    mean_model_mm: np.ndarray
    components: np.ndarray
    explained_variance_ratio: np.ndarray
    variance_mm2: np.ndarray
    face_model_id: str
    variance_target: float

    def __post_init__(self) -> None:
        k = self.components.shape[0]
        if (
            self.mean_model_mm.shape != (N_MESH_VERTICES, 3)
            or self.components.shape != (k, N_MESH_VERTICES, 3)
            or self.explained_variance_ratio.shape != (k,)
            or self.variance_mm2.shape != (k,)
        ):
            raise ExpressionSpaceError(
                "inconsistent basis arrays: mean (468, 3), components (K, 468, 3), "
                "ratios and variances (K,)"
            )

    @property
    def n_components(self) -> int:
        return int(self.components.shape[0])

    def encode(self, offsets_model_mm: np.ndarray) -> np.ndarray:
        """(N, K) float32 coefficients of (N, 468, 3) (or one (468, 3)) offset fields in mm."""
        flat = np.asarray(offsets_model_mm).reshape(-1, N_COORDS)
        mean = self.mean_model_mm.reshape(N_COORDS)
        comps = self.components.reshape(self.n_components, N_COORDS)
        out = np.empty((len(flat), self.n_components), dtype=np.float32)
        for start in range(0, len(flat), _CHUNK_ROWS):
            chunk = flat[start : start + _CHUNK_ROWS].astype(np.float32) - mean
            out[start : start + _CHUNK_ROWS] = chunk @ comps.T
        return out

    def decode(self, coefficients: np.ndarray) -> np.ndarray:
        """(N, 468, 3) float32 ``expression_offsets_model_mm`` from (N, K) coefficients."""
        coefficients = np.asarray(coefficients, dtype=np.float32).reshape(-1, self.n_components)
        comps = self.components.reshape(self.n_components, N_COORDS)
        flat = coefficients @ comps + self.mean_model_mm.reshape(N_COORDS)
        return flat.reshape(-1, N_MESH_VERTICES, 3)

    def save(self, path: str | Path) -> Path:
        """Write the basis as ``.npz`` (no pickled objects), atomically; returns the path."""
        path = Path(path)
        arrays = {
            "format": np.array(BASIS_FORMAT),
            "format_version": np.array(BASIS_FORMAT_VERSION),
            "face_model_id": np.array(self.face_model_id),
            "variance_target": np.array(self.variance_target),
            "mean_model_mm": self.mean_model_mm,
            "components": self.components,
            "explained_variance_ratio": self.explained_variance_ratio,
            "variance_mm2": self.variance_mm2,
        }

        def write(tmp: Path) -> None:
            with open(tmp, "wb") as handle:
                np.savez(handle, **arrays)

        atomic_write_with(path, write)
        return path

    @classmethod
    def load(cls, path: str | Path, face_model_id: str) -> ExpressionBasis:
        """Read a basis written by :meth:`save` for the face model ``face_model_id``.

        Raises
        ------
        BasisFileError
            The file is missing, not an ``.npz``, or not a basis.
        FaceModelMismatchError
            The basis was built on another face model.
        """
        path = Path(path)
        try:
            with np.load(path, allow_pickle=False) as data:
                stored = {key: data[key] for key in data.files}
        except (OSError, ValueError) as exc:
            raise BasisFileError(f"{path}: not a readable expression basis ({exc})") from exc
        missing = sorted(_BASIS_KEYS - set(stored))
        if missing or str(stored["format"]) != BASIS_FORMAT:
            detail = f" (missing {', '.join(missing)})" if missing else ""
            raise BasisFileError(f"{path}: not an augmentface expression basis{detail}")
        if int(stored["format_version"]) > BASIS_FORMAT_VERSION:
            raise BasisFileError(
                f"{path}: basis format version {int(stored['format_version'])} is newer than "
                f"this augmentface reads ({BASIS_FORMAT_VERSION}); upgrade augmentface"
            )
        stored_id = str(stored["face_model_id"])
        check_face_model(stored_id, face_model_id, path)
        return cls(
            mean_model_mm=stored["mean_model_mm"].astype(np.float32),
            components=stored["components"].astype(np.float32),
            explained_variance_ratio=stored["explained_variance_ratio"].astype(np.float64),
            variance_mm2=stored["variance_mm2"].astype(np.float64),
            face_model_id=stored_id,
            variance_target=float(stored["variance_target"]),
        )


def check_face_model(stored_id: str, expected_id: str, path: str | Path) -> None:
    """Raise :class:`FaceModelMismatchError` when a file was built on another face model."""
    if stored_id != expected_id:
        raise FaceModelMismatchError(
            f"{path}: built for face model {stored_id}, but the face model in use is "
            f"{expected_id}; rebuild it from manifests fitted with this model"
        )


class _Moments:
    """Running sums for the covariance of flattened fields, shifted by the first chunk's mean.

    Shifting by a value near the mean keeps ``Σxxᵀ/n − x̄x̄ᵀ`` from cancelling catastrophically;
    each chunk's Gram matrix is a float32 product added into float64 sums.
    """

    def __init__(self) -> None:
        self.n = 0
        self.shift: np.ndarray | None = None
        self.total = np.zeros(N_COORDS)
        self.gram = np.zeros((N_COORDS, N_COORDS))

    def add(self, chunk: np.ndarray) -> None:
        flat = np.asarray(chunk, dtype=np.float32).reshape(-1, N_COORDS)
        if not len(flat):
            return
        if not np.isfinite(flat).all():
            raise ExpressionSpaceError("offsets contain NaN or infinite values")
        if self.shift is None:
            self.shift = flat.mean(axis=0, dtype=np.float64).astype(np.float32)
        centred = flat - self.shift
        self.n += len(flat)
        self.total += centred.sum(axis=0, dtype=np.float64)
        self.gram += centred.T @ centred


def basis_from_chunks(
    chunks: Iterable[np.ndarray],
    face_model_id: str,
    variance: float = 0.95,
    max_components: int = 64,
    min_components: int = 1,
) -> ExpressionBasis:
    """PCA basis of offset fields given in chunks of shape (n, 468, 3), mm.

    K is the fewest components that explain ``variance`` of the total variance but at least
    ``min_components``, at most ``max_components`` and at most the rank of the data. Component
    signs are fixed (largest entry positive) so the same data always gives the same basis.
    """
    if not 0.0 < variance <= 1.0:
        raise ExpressionSpaceError(f"variance must be in (0, 1], got {variance}")
    if max_components < 1:
        raise ExpressionSpaceError(f"max_components must be at least 1, got {max_components}")
    if not 1 <= min_components <= max_components:
        raise ExpressionSpaceError(
            f"min_components must be in [1, max_components={max_components}], "
            f"got {min_components}"
        )
    moments = _Moments()
    for chunk in chunks:
        moments.add(chunk)
    if moments.n < 2 or moments.shift is None:
        raise ExpressionSpaceError(f"a basis needs at least 2 frames, got {moments.n}")
    d = moments.total / moments.n
    cov = moments.gram / moments.n - np.outer(d, d)
    eigval, eigvec = np.linalg.eigh(cov)
    eigval, eigvec = np.clip(eigval[::-1], 0.0, None), eigvec[:, ::-1]
    total = float(eigval.sum())
    if total <= 0.0:
        raise ExpressionSpaceError("the offsets do not vary; there is no space to learn")
    ratio = eigval / total
    rank = int(np.sum(eigval > total * 1e-9))
    k_variance = int(np.searchsorted(np.cumsum(ratio), variance - 1e-12)) + 1
    k = max(1, min(max_components, rank, max(k_variance, min_components), moments.n - 1))
    # C order, as a loaded basis has: BLAS may round differently on another memory layout.
    comps = np.ascontiguousarray(eigvec[:, :k].T)
    signs = np.sign(comps[np.arange(k), np.abs(comps).argmax(axis=1)])
    comps = comps * signs[:, None]
    return ExpressionBasis(
        mean_model_mm=(moments.shift + d).astype(np.float32).reshape(N_MESH_VERTICES, 3),
        components=comps.astype(np.float32).reshape(k, N_MESH_VERTICES, 3),
        explained_variance_ratio=ratio[:k].copy(),
        variance_mm2=eigval[:k].copy(),
        face_model_id=face_model_id,
        variance_target=float(variance),
    )


def _row_chunks(array: np.ndarray) -> Iterator[np.ndarray]:
    for start in range(0, len(array), _CHUNK_ROWS):
        yield array[start : start + _CHUNK_ROWS]


def fit_expression_basis(
    deformations: Deformations, variance: float = 0.95, max_components: int = 64
) -> ExpressionBasis:
    """PCA basis of a manifest's deformations; K chosen by explained ``variance``.

    Parameters
    ----------
    deformations : Deformations
        From :func:`expression_deformations_model_mm`.
    variance : float
        Share of the total variance the kept components must explain, (0, 1].
    max_components : int
        Upper bound on K.
    """
    return basis_from_chunks(
        _row_chunks(deformations.offsets_model_mm),
        deformations.face_model_id,
        variance=variance,
        max_components=max_components,
    )
