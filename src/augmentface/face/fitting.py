"""Fit the face model to MediaPipe's dense landmarks: pose, identity, expression.

1. Pose: a weighted similarity (Umeyama 1991) between the model shape and the landmarks,
   each vertex weighted by how little the AU rig can move it (the skull, not the jaw).
2. Expression: ridge-regularised least squares of the rig's fields, as the landmarker follows
   them (measured gains), posed into the image, against the landmarks' deviation from the
   posed neutral shape. The signed linear solution, less what a person's own shape alone
   produces (soft threshold at the measured identity noise), is the expression a replacement
   removes; the bounded (0–5) solution is the reported AU intensities. Depth (z) is
   down-weighted: MediaPipe predicts it, it does not measure it.
3. Identity: whatever the pose and expression leave, mapped back to the model frame — the
   face's own shape, so the fitted mesh reproduces the landmarks.

The result is a small frozen :class:`FaceFit`.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
from scipy.optimize import lsq_linear

from augmentface.errors import FitError
from augmentface.face import topology as topo
from augmentface.face.model import (
    N_MESH_VERTICES,
    FaceModel,
    close_lips,
    identity_au_noise,
    landmark_gains,
)
from augmentface.frames import (
    head_angles_deg,
    image_to_model,
    model_to_image,
    offsets_model_to_image,
)

#: DISFA's twelve AUs and eye closure.
FITTED_AUS = (1, 2, 4, 5, 6, 9, 12, 15, 17, 20, 25, 26, 43)
#: Gap (mm, model frame) between the inner lips' centres (vertices 13 and 14) above which the
#: mouth counts as open: closed lips measure -0.4 to 1.0 mm on the shared photos, parted ones
#: 1.5 mm and more.
LIPS_APART_MM = 1.2
#: AUs that move the lips apart or together vertically: once the lips are seen apart, the gap
#: between them is observed, not a person's closed-lip shape, so all of each is removed and a
#: laugh closes fully under a neutral target. Sideways AUs (12, 20) stay thresholded: mouth
#: width and corner height remain as confusable with identity as on a closed mouth.
LIP_AUS = (15, 17, 25, 26)
#: How far (mm) from the inner lips the skin follows when the fit closes a remaining opening.
LIP_CLOSURE_REACH_MM = 15.0


@dataclass(frozen=True)
class FitConfig:
    """Settings of the model fit.

    z_weight : weight of the depth coordinate relative to x and y (0–1).
    ridge : ridge penalty on each AU relative to that AU's own evidence (the squared norm of
        its field per unit intensity): every AU seen alone is shrunk by ``1 / (1 + ridge)``.
        It keeps nearly collinear AUs from trading large opposite values on landmark noise.
    iterations : rounds of alternating pose and expression estimation (>= 1).
    fit_aus : the AUs estimated; the others stay 0 in the fit. By default DISFA's twelve and
        eye closure: the lip-shaping AUs 10, 14, 16, 23, 24 and the lid tightener 7 move the
        landmarks so little, and so much like a person's own lip and lid shape, that from one
        photo they mostly absorb identity and steal evidence from the AUs that matter.
    gains : model each AU as the landmarker sees it, ``gain × field`` (see
        ``scripts/calibrate_response.py``); False fits the rig's fields as they are.
    removal_threshold : what the fit removes from a face (replace semantics) is its signed
        AU estimate soft-thresholded at this many times each AU's identity noise, the spread
        of that AU's estimate over neutral faces (``scripts/calibrate_identity_noise.py``).
        On neutral faces the rig reads a person's own shape as up to several intensity units
        of AU9, AU17 or AU6; removing that would reshape their nose and chin in every output.
        Below the threshold an estimate cannot be told from identity and is kept; above it,
        all but the threshold is removed. 0 removes the full signed estimate. Lips seen apart
        (:data:`LIPS_APART_MM`) are removed in full: an open mouth is not a lip shape.
    """

    z_weight: float = 0.3
    ridge: float = 0.05
    iterations: int = 3
    fit_aus: tuple[int, ...] = FITTED_AUS
    gains: bool = True
    removal_threshold: float = 1.0

    def __post_init__(self) -> None:
        if not 0.0 <= self.z_weight <= 1.0:
            raise ValueError(f"z_weight must be in [0, 1], got {self.z_weight}")
        if self.iterations < 1:
            raise ValueError(f"iterations must be >= 1, got {self.iterations}")
        if self.ridge <= 0:
            raise ValueError(f"ridge must be > 0, got {self.ridge}")
        if self.removal_threshold < 0:
            raise ValueError(f"removal_threshold must be >= 0, got {self.removal_threshold}")


@dataclass(frozen=True)
class FaceFit:
    """One fitted face. Pose maps the model frame to the image (see :mod:`augmentface.frames`)."""

    rotation: np.ndarray  # (3, 3) model -> image
    scale_px_per_mm: float
    translation_px: np.ndarray  # (3,)
    identity_offsets_model_mm: np.ndarray  # (468, 3)
    expression_offsets_model_mm: np.ndarray  # (468, 3)
    au_intensities: np.ndarray  # (K,) on the 0–5 scale, in the rig's AU order
    au_signed: np.ndarray  # (K,) the unbounded linear estimate, rig order (unfitted AUs 0)

    @property
    def head_angles_deg(self) -> tuple[float, float, float]:
        """(yaw, pitch, roll) in degrees."""
        return head_angles_deg(self.rotation)

    def expression_change_px(self, target_offsets_model_mm: np.ndarray) -> np.ndarray:
        """(468, 3) image-frame displacement (px) that replaces the fitted expression with a
        target one (replace semantics), ready for :func:`render_expression`."""
        return offsets_model_to_image(
            target_offsets_model_mm - self.expression_offsets_model_mm,
            self.rotation,
            self.scale_px_per_mm,
        )

    def verts_px(
        self, model: FaceModel, expression_offsets_model_mm: np.ndarray | None = None
    ) -> np.ndarray:
        """(468, 3) mesh in image pixels, with the fitted or another expression."""
        expression = (
            self.expression_offsets_model_mm
            if expression_offsets_model_mm is None
            else expression_offsets_model_mm
        )
        verts = model.verts_model_mm(self.identity_offsets_model_mm, expression)
        return model_to_image(verts, self.rotation, self.scale_px_per_mm, self.translation_px)


def similarity_transform(
    source: np.ndarray, target: np.ndarray, weights: np.ndarray
) -> tuple[np.ndarray, float, np.ndarray]:
    """Weighted least-squares similarity ``target ≈ s R source + t`` (Umeyama 1991).

    Returns (R (3, 3) proper rotation, s, t (3,)).
    """
    w = weights / weights.sum()
    mu_s, mu_t = w @ source, w @ target
    src, tgt = source - mu_s, target - mu_t
    cov = (tgt * w[:, None]).T @ src
    u, sing, vt = np.linalg.svd(cov)
    d = np.ones(3)
    d[2] = np.sign(np.linalg.det(u @ vt)) or 1.0
    rotation = u @ np.diag(d) @ vt
    var_s = w @ (src**2).sum(axis=1)
    scale = float((sing * d).sum() / var_s)
    translation = mu_t - scale * rotation @ mu_s
    return rotation, scale, translation


@functools.lru_cache(maxsize=8)
def _reach_mm(model_id: str, fields_model_mm_bytes: bytes, shape: tuple[int, ...]) -> np.ndarray:
    fields = np.frombuffer(fields_model_mm_bytes, dtype=np.float64).reshape(shape)
    return np.linalg.norm(fields, axis=2).max(axis=0)


def rigidity_weights(model: FaceModel, scale_mm: float = 1.0) -> np.ndarray:
    """(468,) pose weights: high where no AU moves the vertex, low where expressions do.

    ``1 / (1 + (d / scale_mm)²)`` with ``d`` the largest displacement any AU field gives the
    vertex at intensity 5, so the pose rests on the skull (forehead, temples, nose) and an open
    jaw or a smile is not mistaken for a head movement.
    """
    fields = np.ascontiguousarray(model.rig.fields_model_mm, dtype=np.float64)
    reach = _reach_mm(model.model_id, fields.tobytes(), fields.shape)
    return 1.0 / (1.0 + (reach / scale_mm) ** 2)


def fit_face(
    landmarks_px: np.ndarray, model: FaceModel, config: FitConfig | None = None
) -> FaceFit:
    """Fit pose, expression and identity to (478 or 468, 3) landmarks in px.

    The expression removed from the face (``expression_offsets_model_mm``) is the signed ridge
    estimate (``au_signed``; e.g. a person whose lips overlap more than average gets a negative
    AU25) soft-thresholded at ``config.removal_threshold`` × each AU's identity noise: a clear
    expression is removed, what a person's own shape alone would produce is kept as identity.
    The reported ``au_intensities`` are the bounded least-squares estimate on the FACS scale,
    0–5.
    """
    config = config or FitConfig()
    points = np.asarray(landmarks_px, dtype=np.float64)[:N_MESH_VERTICES]
    if points.shape != (N_MESH_VERTICES, 3) or not np.isfinite(points).all():
        raise FitError(f"landmarks must be finite with shape (478, 3), got {landmarks_px.shape}")
    mean = model.mean_verts_model_mm
    weights = rigidity_weights(model)
    gains = observed_gains(model, config)
    seen = np.zeros_like(mean)  # the expression as the landmarks show it (gain × field)
    # Pose and expression are estimated in turn: an open jaw or a smile moves some of the
    # pose points too, and a pose fitted to the neutral mean would then misread them.
    for _ in range(config.iterations):
        rotation, scale, translation = similarity_transform(mean + seen, points, weights)
        if not np.isfinite(scale) or scale <= 0:
            raise FitError(f"degenerate pose (scale {scale})")
        system = AUSystem.build(points, model, rotation, scale, translation, config)
        signed = system.solve_signed()
        seen = model.rig.linear_offsets(signed * gains)
    # The photo's own expression is what its landmarks show: a real face's landmarks sit on
    # its features (the gains describe how MediaPipe under-follows *synthetic* deformations,
    # which matters for measuring our renders, not for undoing a real expression).
    # Identity is the rest, so the model reproduces the landmarks.
    shape = image_to_model(points, rotation, scale, translation)
    threshold = config.removal_threshold * identity_au_noise(model.rig.au_numbers)
    if shape[13, 1] - shape[14, 1] > LIPS_APART_MM:
        threshold[[model.rig.au_numbers.index(au) for au in LIP_AUS]] = 0.0
    removed = np.sign(signed) * np.maximum(np.abs(signed) - threshold, 0.0)
    expression = model.rig.linear_offsets(removed * gains)
    if shape[13, 1] - shape[14, 1] > LIPS_APART_MM:
        expression = expression - lip_closure_model_mm(shape - expression, model)
    identity = shape - mean - expression
    intensities = system.solve_bounded()
    return FaceFit(rotation, scale, translation, identity, expression, intensities, signed)


def lip_closure_model_mm(verts_model_mm: np.ndarray, model: FaceModel) -> np.ndarray:
    """(468, 3) field, mm, that closes whatever opening a face's inner lips still show.

    An open mouth is not a lip shape, so what of it the rig's fields leave unexplained after
    the removal (a laugh's upper lip, lifted over the teeth by the 12+25 combination the fit
    does not model) is expression too: each inner-lip pair meets at its midpoint, as in
    :func:`augmentface.face.model.close_lips`, and the skin around follows harmonically,
    held still beyond :data:`LIP_CLOSURE_REACH_MM` and on the face outline.
    """
    closed = close_lips(verts_model_mm)
    inner = list(topo.LIPS_INNER)
    values = {v: closed[v] - verts_model_mm[v] for v in inner}
    reach = np.linalg.norm(
        verts_model_mm[:, None, :] - verts_model_mm[None, inner, :], axis=2
    ).min(axis=1)
    for v in set(np.flatnonzero(reach > LIP_CLOSURE_REACH_MM).tolist()) | set(topo.FACE_OVAL):
        values.setdefault(int(v), np.zeros(3))
    return model.topology.harmonic_field(values)


def observed_gains(model: FaceModel, config: FitConfig) -> np.ndarray:
    """(K,) landmark response per rig AU: measured gains when ``config.gains``, else 1."""
    if not config.gains:
        return np.ones(len(model.rig.au_numbers))
    return landmark_gains(model.rig.au_numbers)


@dataclass(frozen=True)
class AUSystem:
    """The ridge-regularised least-squares problem of the AU intensities for one pose.

    ``r`` and ``qtb`` are the triangular factor of the (augmented) design matrix and the
    projected target: ``‖A a − b‖² = ‖r a − qtb‖² + const``, so both solvers below work on a
    K × K system instead of ~1,400 rows.
    """

    r: np.ndarray
    qtb: np.ndarray
    columns: tuple[int, ...]  # rig indices of the fitted AUs
    n_aus: int

    @classmethod
    def build(cls, points_px, model: FaceModel, rotation, scale, translation, config):
        columns = tuple(model.rig.au_numbers.index(au) for au in config.fit_aus)
        gains = observed_gains(model, config)[list(columns)]
        fields = model.rig.fields_model_mm[list(columns)] * (gains / 5.0)[:, None, None]
        axis_w = np.array([1.0, 1.0, config.z_weight])
        # Work in mm (divide pixels by the scale) so that the fit means the same at every size.
        posed_mean = model_to_image(model.mean_verts_model_mm, rotation, scale, translation)
        residual_mm = (points_px - posed_mean) / scale * axis_w
        basis = np.stack([offsets_model_to_image(f, rotation, 1.0) * axis_w for f in fields])
        a = basis.reshape(len(fields), -1).T
        evidence = (a**2).sum(axis=0)  # mm² of landmark motion per unit of each AU
        a_aug = np.vstack([a, np.diag(np.sqrt(config.ridge * evidence))])
        b_aug = np.concatenate([residual_mm.ravel(), np.zeros(len(columns))])
        q, r = np.linalg.qr(a_aug)
        return cls(r, q.T @ b_aug, columns, len(model.rig.au_numbers))

    def _full(self, values: np.ndarray) -> np.ndarray:
        out = np.zeros(self.n_aus)
        out[list(self.columns)] = values
        return out

    def solve_signed(self) -> np.ndarray:
        """(K,) unbounded ridge solution, in the rig's AU order (unfitted AUs 0)."""
        return self._full(np.linalg.solve(self.r, self.qtb))

    def solve_bounded(self) -> np.ndarray:
        """(K,) bounded least-squares solution on the FACS scale 0–5."""
        solution = lsq_linear(self.r, self.qtb, bounds=(0.0, 5.0), method="bvls")
        return self._full(np.clip(solution.x, 0.0, 5.0))
