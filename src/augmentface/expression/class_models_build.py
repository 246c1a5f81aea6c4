"""Building class models from labelled expression deformations (see :mod:`.class_models`).

Input rows are frames: ``offsets_model_mm`` (N, 468, 3), each frame's deformation relative to
its subject's neutral reference, with per-frame labels. Rows that cannot be placed in a class
are dropped and counted by reason in ``ClassModelSet.dropped``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from augmentface.expression import va_prior
from augmentface.expression.class_models import (
    N_VA_CLASSES,
    ClassModelConfig,
    ClassModelError,
    ClassModelSet,
    EmotionPrior,
    VAPrior,
)
from augmentface.expression.emotion_prior import EMOTIONS, canonical_emotion
from augmentface.expression.splocs import fit_splocs

#: Emotion labels that name no category and are left out (counted as ``ignored_label``).
IGNORED_EMOTIONS = ("other",)


@dataclass(frozen=True)
class _ClassFit:
    """What one class contributes: mean (V, 3), components (K, V, 3), coefficient stats (K,)."""

    mean: np.ndarray
    components: np.ndarray
    coef_mean: np.ndarray
    coef_std: np.ndarray
    coef_low: np.ndarray
    coef_high: np.ndarray


def _check_offsets(offsets_model_mm: np.ndarray, n_labels: int) -> np.ndarray:
    offsets = np.asarray(offsets_model_mm)
    if offsets.ndim != 3 or offsets.shape[2] != 3:
        raise ClassModelError(f"offsets must be (N, V, 3), got {offsets.shape}")
    if len(offsets) != n_labels:
        raise ClassModelError(f"{len(offsets)} offset rows but {n_labels} labels")
    return offsets


def _fit_class(
    offsets: np.ndarray,
    rows: np.ndarray,
    index: int,
    config: ClassModelConfig,
    distances_mm: np.ndarray,
) -> _ClassFit:
    members = offsets[rows].astype(np.float64)
    mean = members.mean(axis=0)
    if len(rows) > config.max_frames_per_class:
        # Seeded by (seed, class) so a class's subset does not depend on the other classes.
        pick = np.random.default_rng([config.seed, index]).choice(
            len(rows), config.max_frames_per_class, replace=False
        )
        members = members[np.sort(pick)]
    fit = fit_splocs(members - mean, distances_mm, config.splocs)
    w = fit.weights
    low, high = np.quantile(w, [0.025, 0.975], axis=0)
    return _ClassFit(mean, fit.components_model_mm, w.mean(axis=0), w.std(axis=0), low, high)


def _prior_fit(offsets: np.ndarray, n_components: int) -> _ClassFit:
    """A class realised by the prior alone: its offsets as the mean, no variation."""
    zeros = np.zeros(n_components)
    components = np.zeros((n_components, *offsets.shape))
    return _ClassFit(np.asarray(offsets, dtype=np.float64), components, zeros, zeros, zeros, zeros)


def _assemble(
    kind: str,
    names: tuple[str, ...],
    fits: list[_ClassFit],
    counts: np.ndarray,
    sources: list[str],
    median_va: np.ndarray,
    dropped: dict[str, int],
    config: ClassModelConfig,
    face_model_id: str,
) -> ClassModelSet:
    def stack(attr: str) -> np.ndarray:
        return np.stack([getattr(f, attr) for f in fits]).astype(np.float32)

    return ClassModelSet(
        kind=kind,
        face_model_id=face_model_id,
        config=config,
        class_names=names,
        counts=counts.astype(np.int64),
        sources=tuple(sources),
        means_model_mm=stack("mean"),
        components_model_mm=stack("components"),
        coef_mean=stack("coef_mean"),
        coef_std=stack("coef_std"),
        coef_low=stack("coef_low"),
        coef_high=stack("coef_high"),
        median_va=median_va,
        dropped=dropped,
    )


def _missing_prior(kind: str, names: list[str]) -> ClassModelError:
    return ClassModelError(
        f"{len(names)} {kind} classes have too few frames and no populated class near enough "
        f"({', '.join(names[:10])}{' …' if len(names) > 10 else ''}): pass prior=… to build"
    )


def build_va_model(
    offsets_model_mm: np.ndarray,
    valence: np.ndarray,
    arousal: np.ndarray,
    config: ClassModelConfig,
    face_model_id: str,
    *,
    distances_mm: np.ndarray,
    prior: VAPrior | None = None,
) -> ClassModelSet:
    """Build the 10 × 10 VA class models.

    Parameters
    ----------
    offsets_model_mm : np.ndarray
        (N, 468, 3) float mm, each frame's deformation from its subject's neutral reference.
    valence, arousal : np.ndarray
        (N,) labels in [-1, 1]; NaN is missing. Rows with a missing or out-of-range label, or
        non-finite offsets, are dropped and counted.
    config : ClassModelConfig
        Build settings.
    face_model_id : str
        ``FaceModel.model_id`` of the mesh the offsets live on.
    distances_mm : np.ndarray
        (468, 468) geodesic/graph distances on the mean mesh
        (:func:`~augmentface.expression.splocs.graph_distances_mm`), for SPLOCS locality.
    prior : callable, optional
        ``prior(valence, arousal) -> (468, 3)`` offsets for classes with no populated class
        within ``config.fallback_max_distance``; evaluated at their centres. Required only
        when such classes exist.

    Returns
    -------
    ClassModelSet
        ``kind="va"``, 100 classes.

    Raises
    ------
    ClassModelError
        Shapes that disagree, or classes that need the prior when none is given.
    """
    v = np.asarray(valence, dtype=np.float64)
    a = np.asarray(arousal, dtype=np.float64)
    if v.shape != a.shape or v.ndim != 1:
        raise ClassModelError(f"valence {v.shape} and arousal {a.shape} must be equal (N,)")
    offsets = _check_offsets(offsets_model_mm, len(v))
    missing = ~(np.isfinite(v) & np.isfinite(a))
    out_of_range = ~missing & ((np.abs(v) > 1.0) | (np.abs(a) > 1.0))
    bad_offsets = ~missing & ~out_of_range & ~np.isfinite(offsets).all(axis=(1, 2))
    keep = np.flatnonzero(~(missing | out_of_range | bad_offsets))
    dropped = {
        "missing_label": int(missing.sum()),
        "out_of_range": int(out_of_range.sum()),
        "non_finite_offsets": int(bad_offsets.sum()),
    }
    classes = np.fromiter(map(va_prior.va_class, v[keep], a[keep]), dtype=np.int64, count=len(keep))
    counts = np.bincount(classes, minlength=N_VA_CLASSES)
    centres = np.array([va_prior.va_class_center(i) for i in range(N_VA_CLASSES)])
    populated = np.flatnonzero(counts >= config.min_frames)
    k = config.splocs.n_components

    own: dict[int, _ClassFit] = {}
    median_va = centres.astype(np.float64).copy()
    for index in populated:
        rows = keep[classes == index]
        own[int(index)] = _fit_class(offsets, rows, int(index), config, distances_mm)
        median_va[index] = np.median(v[rows]), np.median(a[rows])

    fits: list[_ClassFit] = []
    sources: list[str] = []
    needs_prior: list[str] = []
    for index in range(N_VA_CLASSES):
        if index in own:
            fits.append(own[index])
            sources.append("own")
            continue
        if len(populated):
            distance = np.linalg.norm(centres[populated] - centres[index], axis=1)
            # Nearest first; among equally near classes, the best populated one.
            order = np.lexsort((-counts[populated], np.round(distance, 9)))
            donor = int(populated[order[0]])
            if distance[order[0]] <= config.fallback_max_distance + 1e-9:
                fits.append(own[donor])
                sources.append(f"nearest:{donor}")
                continue
        if prior is None:
            needs_prior.append(str(index))
            continue
        fits.append(_prior_fit(prior(*centres[index]), k))
        sources.append("prior")
    if needs_prior:
        raise _missing_prior("VA", needs_prior)
    names = tuple(str(i) for i in range(N_VA_CLASSES))
    return _assemble("va", names, fits, counts, sources, median_va, dropped, config, face_model_id)


def build_emotion_model(
    offsets_model_mm: np.ndarray,
    emotion: np.ndarray,
    config: ClassModelConfig,
    face_model_id: str,
    *,
    distances_mm: np.ndarray,
    prior: EmotionPrior | None = None,
) -> ClassModelSet:
    """Build one class model per emotion category (:data:`EMOTIONS` order).

    Parameters
    ----------
    offsets_model_mm : np.ndarray
        (N, 468, 3) float mm deformations, as for :func:`build_va_model`.
    emotion : np.ndarray
        (N,) labels: categories or their aliases, any case. Missing (None, NaN, empty) rows are
        dropped as ``missing_label``, ``"other"`` as ``ignored_label``.
    config, face_model_id, distances_mm
        As for :func:`build_va_model`.
    prior : callable, optional
        ``prior(emotion) -> (468, 3)`` offsets for categories with fewer than
        ``config.min_frames`` frames (there is no "nearest" emotion); required only then.

    Raises
    ------
    UsageError
        An unknown label (:class:`~augmentface.expression.emotion_prior.UnknownEmotionError`,
        listing the allowed ones), shapes that disagree, or a needed prior missing.
    """
    labels = np.asarray(emotion, dtype=object)
    if labels.ndim != 1:
        raise ClassModelError(f"emotion labels must be (N,), got {labels.shape}")
    offsets = _check_offsets(offsets_model_mm, len(labels))
    classes = np.full(len(labels), -1, dtype=np.int64)
    dropped = {"missing_label": 0, "ignored_label": 0, "non_finite_offsets": 0}
    finite = np.isfinite(offsets).all(axis=(1, 2))
    for i, label in enumerate(labels):
        text = "" if label is None or (isinstance(label, float) and np.isnan(label)) else label
        text = str(text).strip()
        if not text:
            dropped["missing_label"] += 1
        elif text.lower() in IGNORED_EMOTIONS:
            dropped["ignored_label"] += 1
        elif not finite[i]:
            dropped["non_finite_offsets"] += 1
        else:
            classes[i] = EMOTIONS.index(canonical_emotion(text))
    counts = np.bincount(classes[classes >= 0], minlength=len(EMOTIONS))
    k = config.splocs.n_components

    fits: list[_ClassFit] = []
    sources: list[str] = []
    needs_prior: list[str] = []
    for index, name in enumerate(EMOTIONS):
        if counts[index] >= config.min_frames:
            rows = np.flatnonzero(classes == index)
            fits.append(_fit_class(offsets, rows, index, config, distances_mm))
            sources.append("own")
        elif prior is None:
            needs_prior.append(name)
        else:
            fits.append(_prior_fit(prior(name), k))
            sources.append("prior")
    if needs_prior:
        raise _missing_prior("emotion", needs_prior)
    median_va = np.full((len(EMOTIONS), 2), np.nan)
    return _assemble(
        "emotion", EMOTIONS, fits, counts, sources, median_va, dropped, config, face_model_id
    )
