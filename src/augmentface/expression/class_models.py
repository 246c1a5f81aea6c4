"""Per-class blendshape models of expression deformations, and how a target is realised.

After Kollias, Cheng, Pantic & Zafeiriou, "Photorealistic facial synthesis in the dimensional
affect space" (ECCV Workshops 2018): the valence–arousal square is cut into 10 × 10 classes of
0.2 × 0.2 (index ``10 · arousal bin + valence bin``, :func:`va_prior.va_class`); each class keeps
the mean deformation of its member frames (each frame's mesh minus its subject's neutral mesh)
and a sparse localized blendshape basis of their variation (SPLOCS, :mod:`.splocs`). A target
(V, A) is realised by its class's mean deformation ("mean" mode, the paper's) or by the mean
plus the components weighted by coefficients drawn from the class's own distribution.

A categorical variant (one class per emotion, :data:`emotion_prior.EMOTIONS`) has the same
structure. Building is in :mod:`.class_models_build`, files in :mod:`.class_models_io`.

Under-populated classes are realised from another source, recorded per class in ``sources``:
``"own"`` (its own frames), ``"nearest:<idx>"`` (the nearest populated class by class-centre
distance, VA only) or ``"prior"`` (the built-in prior, evaluated at the class centre when the
model was built; a ``prior`` callable passed when realising is evaluated at the exact target).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy.linalg import solve_triangular
from scipy.optimize import lsq_linear

from augmentface.errors import UsageError
from augmentface.expression import va_prior
from augmentface.expression.au_rig import INTENSITY_MAX, AURig
from augmentface.expression.emotion_prior import EMOTIONS, canonical_emotion
from augmentface.expression.splocs import SplocsConfig
from augmentface.expression.targets import ExpressionTarget

#: ``prior(valence, arousal) -> expression_offsets_model_mm (468, 3)``.
VAPrior = Callable[[float, float], np.ndarray]
#: ``prior(emotion) -> expression_offsets_model_mm (468, 3)``.
EmotionPrior = Callable[[str], np.ndarray]

N_VA_CLASSES = 100
VA_GRID = 10
#: Class centres along either axis: -0.9, -0.7, …, 0.9.
VA_CENTRES = -0.9 + 0.2 * np.arange(VA_GRID)


class ClassModelError(UsageError):
    """A class model used for something it cannot do (wrong kind, missing prior, bad file)."""


@dataclass(frozen=True)
class ClassModelConfig:
    """Settings of one class-model build.

    Attributes
    ----------
    splocs : SplocsConfig
        The per-class SPLOCS fit (``n_components`` is K per class).
    min_frames : int
        Classes with fewer member frames fall back to another source.
    fallback_max_distance : float
        VA distance between class centres within which a class borrows the nearest populated
        class; farther, it uses the prior. 0.45 reaches the 8 neighbours and the next ring
        along the axes (0.2, 0.28, 0.4).
    max_frames_per_class : int
        Frames (a seeded random subset) the SPLOCS fit sees per class; the mean and median use
        every member. Bounds the build time of large classes.
    seed : int
        Seed of that subset.
    """

    splocs: SplocsConfig = field(default_factory=SplocsConfig)
    min_frames: int = 30
    fallback_max_distance: float = 0.45
    max_frames_per_class: int = 2000
    seed: int = 0

    def __post_init__(self) -> None:
        if self.min_frames < 2:
            raise ClassModelError(f"min_frames must be ≥ 2, got {self.min_frames}")
        if self.max_frames_per_class < self.min_frames:
            raise ClassModelError("max_frames_per_class must be ≥ min_frames")
        if not self.fallback_max_distance >= 0:
            raise ClassModelError(
                f"fallback_max_distance must be ≥ 0, got {self.fallback_max_distance}"
            )


@dataclass(frozen=True)
class ClassModelSet:
    """Per-class means, SPLOCS bases and coefficient distributions (C classes, K components).

    Every per-class array holds what realises that class: a fallback class holds its donor's
    arrays (``"nearest:<idx>"``) or the prior at its centre with zero components (``"prior"``).

    Attributes
    ----------
    kind : str
        ``"va"`` (100 classes, :func:`va_prior.va_class` order) or ``"emotion"``
        (:data:`EMOTIONS` order).
    face_model_id : str
        The face model whose vertices the offsets are on.
    config : ClassModelConfig
        The build settings.
    class_names : tuple[str, ...]
        (C,) ``"0"`` … ``"99"`` or the emotion names.
    counts : np.ndarray
        (C,) int64 member frames of each class itself (before any fallback).
    sources : tuple[str, ...]
        (C,) ``"own"``, ``"nearest:<idx>"`` or ``"prior"``.
    means_model_mm : np.ndarray
        (C, 468, 3) float32 mean deformation, mm.
    components_model_mm : np.ndarray
        (C, K, 468, 3) float32 SPLOCS components, mm per unit coefficient.
    coef_mean, coef_std, coef_low, coef_high : np.ndarray
        (C, K) float32 the members' coefficients: mean, standard deviation, 2.5 % and 97.5 %
        quantiles (the range samples are clipped to).
    median_va : np.ndarray
        (C, 2) float64 median (valence, arousal) of the members; the class centre for fallback
        classes; NaN for emotion classes.
    dropped : dict[str, int]
        Input rows left out, by reason (``missing_label``, ``out_of_range``, ``ignored_label``,
        ``non_finite_offsets``).
    """

    kind: str
    face_model_id: str
    config: ClassModelConfig
    class_names: tuple[str, ...]
    counts: np.ndarray
    sources: tuple[str, ...]
    means_model_mm: np.ndarray
    components_model_mm: np.ndarray
    coef_mean: np.ndarray
    coef_std: np.ndarray
    coef_low: np.ndarray
    coef_high: np.ndarray
    median_va: np.ndarray
    dropped: dict[str, int]

    def class_table(self) -> pd.DataFrame:
        """One row per class: ``class``, ``name``, ``frames``, ``source``, median V and A."""
        return pd.DataFrame({
            "class": np.arange(len(self.class_names)),
            "name": list(self.class_names),
            "frames": self.counts.astype(np.int64),
            "source": list(self.sources),
            "median_valence": self.median_va[:, 0],
            "median_arousal": self.median_va[:, 1],
        })  # fmt: skip

    # -- class look-up -------------------------------------------------------------------

    def require_kind(self, kind: str) -> None:
        """Refuse use as another kind of model (``"va"`` or ``"emotion"``)."""
        if self.kind != kind:
            raise ClassModelError(f"this is a {self.kind!r} class model, not a {kind!r} one")

    def va_index(self, valence: float, arousal: float) -> int:
        """Class 0–99 of a (V, A) target (values outside [-1, 1] are refused)."""
        self.require_kind("va")
        return va_prior.va_class(valence, arousal)

    def emotion_index(self, emotion: str) -> int:
        """Class of an emotion label (aliases accepted, unknown labels refused)."""
        self.require_kind("emotion")
        return EMOTIONS.index(canonical_emotion(emotion))

    # -- realisation ---------------------------------------------------------------------

    def class_sample(self, index: int, rng: np.random.Generator) -> np.ndarray:
        """(468, 3) float64 class mean plus components × coefficients drawn for this class.

        Each coefficient is drawn from a normal with the members' mean and standard deviation,
        clipped to their 2.5–97.5 % range so no sample is more extreme than the data.
        """
        w = rng.normal(self.coef_mean[index], self.coef_std[index])
        w = np.clip(w, self.coef_low[index], self.coef_high[index])
        return self.means_model_mm[index] + np.tensordot(w, self.components_model_mm[index], 1)

    def _with_prior(
        self, index: int, prior: VAPrior | None, valence: float, arousal: float
    ) -> np.ndarray | None:
        if prior is not None and self.sources[index] == "prior":
            return np.asarray(prior(valence, arousal), dtype=np.float64)
        return None

    def mean_offsets(
        self, valence: float, arousal: float, *, prior: VAPrior | None = None
    ) -> np.ndarray:
        """(468, 3) float64 mm: the mean deformation of the target's class (paper's mean mode).

        A ``prior`` passed here replaces the stored prior of ``"prior"`` classes, evaluated at
        the exact target rather than the class centre.
        """
        index = self.va_index(valence, arousal)
        from_prior = self._with_prior(index, prior, valence, arousal)
        return from_prior if from_prior is not None else self.means_model_mm[index].astype(float)

    def sample_offsets(
        self,
        valence: float,
        arousal: float,
        rng: np.random.Generator,
        *,
        prior: VAPrior | None = None,
    ) -> np.ndarray:
        """(468, 3) float64 mm: a random member-like deformation of the target's class."""
        index = self.va_index(valence, arousal)
        from_prior = self._with_prior(index, prior, valence, arousal)
        return from_prior if from_prior is not None else self.class_sample(index, rng)

    def class_median(self, valence: float, arousal: float) -> tuple[float, float]:
        """Median (V, A) of the target's class (its centre if the class borrowed its model)."""
        v, a = self.median_va[self.va_index(valence, arousal)]
        return float(v), float(a)

    def blended_offsets(self, valence: float, arousal: float) -> np.ndarray:
        """(468, 3) float64 mm: class means blended bilinearly over the class centres.

        Equal to a class's mean at its centre and continuous everywhere (constant beyond the
        outermost centres), so a path crossing class edges changes smoothly instead of popping.
        """
        va_prior.check_va(valence, arousal)
        self.require_kind("va")
        (v0, fv), (a0, fa) = (_grid_cell(valence), _grid_cell(arousal))
        out = np.zeros(self.means_model_mm.shape[1:])
        for da, wa in ((0, 1.0 - fa), (1, fa)):
            for dv, wv in ((0, 1.0 - fv), (1, fv)):
                out += wa * wv * self.means_model_mm[VA_GRID * (a0 + da) + v0 + dv]
        return out

    def emotion_offsets(self, emotion: str, rng: np.random.Generator | None = None) -> np.ndarray:
        """(468, 3) float64 mm: an emotion class's mean, or a sample when ``rng`` is given."""
        index = self.emotion_index(emotion)
        if rng is None:
            return self.means_model_mm[index].astype(float)
        return self.class_sample(index, rng)


def _grid_cell(value: float) -> tuple[int, float]:
    """Lower class-centre index along one axis and the fraction towards the next one."""
    t = float(np.clip((value - VA_CENTRES[0]) / 0.2, 0.0, VA_GRID - 1))
    lower = min(int(np.floor(t)), VA_GRID - 2)
    return lower, t - lower


def au_estimate(rig: AURig, offsets_model_mm: np.ndarray) -> np.ndarray:
    """(K_rig,) AU intensities in 0–5 whose rig offsets best match ``offsets_model_mm``.

    Bounded least squares over all vertices; what the AU columns of a learned source's row
    report: the nearest FACS reading of the deformation it realised.
    """
    basis = rig.fields_model_mm.reshape(len(rig.au_numbers), -1).T / INTENSITY_MAX
    target = np.asarray(offsets_model_mm, dtype=np.float64).ravel()
    # Same minimiser on the (K, K) Cholesky factor of AᵀA = RᵀR: ‖Ax − b‖² = ‖Rx − R⁻ᵀAᵀb‖²
    # + const; the bounded solver is far faster on it than on the (1404, K) system.
    r = np.linalg.cholesky(basis.T @ basis).T
    rhs = solve_triangular(r, basis.T @ target, trans="T")
    return lsq_linear(r, rhs, bounds=(0.0, INTENSITY_MAX), method="bvls").x


@dataclass(frozen=True)
class ClassModelSource:
    """:class:`~augmentface.expression.targets.ExpressionSource` over a VA class model.

    ``mode="mean"`` gives every sample its class's mean deformation; ``mode="sample"`` gives
    sample 0 the mean (the target itself, as in ``RigSource``) and later samples draws from the
    class's coefficient distribution. Frames of a smooth path (targets with a ``sequence``)
    blend neighbouring class means by distance (:meth:`ClassModelSet.blended_offsets`) so the
    face does not pop at class edges. The AU intensities reported are :func:`au_estimate` of
    the realised offsets: never NaN, and what the deformation shows rather than what a prior
    would have asked for.
    """

    models: ClassModelSet
    rig: AURig
    mode: str = "mean"
    prior: VAPrior | None = None
    name: str = "va-classes"

    def __post_init__(self) -> None:
        if self.mode not in ("mean", "sample"):
            raise ClassModelError(f"mode must be 'mean' or 'sample', got {self.mode!r}")
        self.models.require_kind("va")

    def realize(
        self, target: ExpressionTarget, sample: int, rng: np.random.Generator
    ) -> tuple[np.ndarray, np.ndarray]:
        """Return (au_intensities (K_rig,), expression_offsets_model_mm (468, 3))."""
        if target.kind != "va":
            raise ClassModelError(f"a VA class model realises VA targets, not {target.kind!r}")
        v, a = target.valence, target.arousal
        if target.sequence is not None:
            offsets = self.models.blended_offsets(v, a)
        elif self.mode == "sample" and sample > 0:
            offsets = self.models.sample_offsets(v, a, rng, prior=self.prior)
        else:
            offsets = self.models.mean_offsets(v, a, prior=self.prior)
        return au_estimate(self.rig, offsets), offsets


@dataclass(frozen=True)
class EmotionClassSource:
    """:class:`~augmentface.expression.targets.ExpressionSource` over emotion class models.

    An emotion target at intensity ``s`` (0–1) gets ``s`` × its class's mean deformation (or,
    in sample mode, × a draw from the class for samples after the first): intensity scales the
    deformation linearly, as it scales the prototype's AUs in prior mode.
    """

    models: ClassModelSet
    rig: AURig
    mode: str = "mean"
    name: str = "emotion-classes"

    def __post_init__(self) -> None:
        if self.mode not in ("mean", "sample"):
            raise ClassModelError(f"mode must be 'mean' or 'sample', got {self.mode!r}")
        self.models.require_kind("emotion")

    def realize(
        self, target: ExpressionTarget, sample: int, rng: np.random.Generator
    ) -> tuple[np.ndarray, np.ndarray]:
        """Return (au_intensities (K_rig,), expression_offsets_model_mm (468, 3))."""
        if target.kind != "emotion" or target.emotion is None:
            raise ClassModelError(
                f"an emotion class model realises emotion targets, not {target.kind!r}"
            )
        draw = rng if self.mode == "sample" and sample > 0 else None
        intensity = 1.0 if np.isnan(target.emotion_intensity) else target.emotion_intensity
        offsets = intensity * self.models.emotion_offsets(target.emotion, draw)
        return au_estimate(self.rig, offsets), offsets
