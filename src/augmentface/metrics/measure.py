"""Measure one augmented image against its source, and the quality gates built on it.

Shared by ``evaluate`` (every output, after the fact) and ``blend`` (gates, before an image is
shipped), so that both report the same numbers.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from augmentface.datasets.frames import read_frame
from augmentface.face.detect import FaceDetection, FaceLandmarker
from augmentface.metrics.artifacts import outside_unchanged, seam_ratio
from augmentface.metrics.au_geometry import au_geometric_response
from augmentface.metrics.blendshapes_facs import au_response
from augmentface.metrics.geometry import (
    dlib_landmarks68,
    interocular_distance_68,
    normalised_mean_error,
)
from augmentface.metrics.identity import SAME_PERSON_THRESHOLD, face_embedding, identity_distance


def nearest_face(faces: list[FaceDetection], target_px: np.ndarray) -> FaceDetection | None:
    """The detected face whose landmarks' centroid is nearest the intended face's."""
    if not faces:
        return None
    centre = target_px[:, :2].mean(axis=0)
    return min(faces, key=lambda f: float(np.linalg.norm(f.landmarks_px[:, :2].mean(0) - centre)))


@dataclass
class OutputMeasurer:
    """Measures outputs with one open landmarker; caches each source photo, and per face its
    embedding, dlib-68 landmarks and the baseline of its geometric responses.

    The geometric response of an output is measured against the same face's *neutral render*
    (its output with no AU) once that has been measured (pass ``neutral=True``), else against
    the source photo. The neutral render is the person at rest as the pipeline renders them: a
    replacement removes the photo's own expression from every output of it, and against the
    photo that removal would read as a response shared by all of them.

    Parameters
    ----------
    landmarker : an open :class:`FaceLandmarker` (several faces, to find the right one).
    blendshape_names : the names of the blendshape scores stored by fit3dmm.
    """

    landmarker: FaceLandmarker
    blendshape_names: tuple[str, ...]
    _source_path: str = ""
    _source: np.ndarray | None = None
    _embeddings: dict[int, np.ndarray] = field(default_factory=dict)
    _landmarks68: dict[int, np.ndarray] = field(default_factory=dict)
    _baselines: dict[int, tuple[np.ndarray | None, np.ndarray]] = field(default_factory=dict)

    def source(self, image_path: str) -> np.ndarray:
        """The source photo (decoded once while consecutive rows share it)."""
        if image_path != self._source_path:
            self._source_path, self._source = image_path, read_frame(image_path)
            self._embeddings, self._landmarks68, self._baselines = {}, {}, {}
        return self._source

    def _source_embedding(self, face_index: int, box_px) -> np.ndarray:
        if face_index not in self._embeddings:
            self._embeddings[face_index] = face_embedding(self._source, box_px)
        return self._embeddings[face_index]

    def _source_landmarks68(self, face_index: int, box_px) -> np.ndarray:
        if face_index not in self._landmarks68:
            self._landmarks68[face_index] = dlib_landmarks68(self._source, box_px)
        return self._landmarks68[face_index]

    def measure(
        self,
        output_rgb: np.ndarray,
        fit: dict,
        render: dict,
        alpha: np.ndarray,
        lossless: bool,
        *,
        neutral: bool = False,
    ) -> dict:
        """Metrics of one output: columns of the evaluation manifest (see stages/schemas.py).

        ``fit`` and ``render`` are the output's rows of the fits and renders manifests,
        ``alpha`` its render mask (crop at ``render["roi_px"]``); ``lossless`` says whether
        the output file keeps pixels exactly, which the outside-the-mask check needs.
        ``neutral`` marks the face's output with no AU: its landmarks become the baseline of
        the face's later geometric responses.
        """
        source = self.source(fit["image_path"])
        target_px = render["target_landmarks_px"].astype(np.float64)
        target68 = render["target_ibug68_px"].astype(np.float64)
        interocular = interocular_distance_68(target68)
        roi = tuple(int(v) for v in render["roi_px"])
        out: dict = {
            "seam_ratio": seam_ratio(output_rgb, source, alpha, roi),
            "outside_unchanged": (
                outside_unchanged(output_rgb, source, alpha, roi)[0] if lossless else None
            ),
        }
        face = nearest_face(self.landmarker.detect(output_rgb), target_px)
        out["redetected"] = face is not None
        box = (
            face.bbox_px
            if face is not None
            else (*target_px[:, :2].min(0), *target_px[:, :2].max(0))
        )
        distance = identity_distance(
            self._source_embedding(int(fit["face_index"]), fit["bbox_px"]),
            face_embedding(output_rgb, box),
        )
        out["identity_distance"] = distance
        out["same_person"] = distance < SAME_PERSON_THRESHOLD
        out["nme_dlib68"] = normalised_mean_error(
            dlib_landmarks68(output_rgb, box), target68, interocular
        )
        # dlib reads the output in the source's face box: the head has not moved, and one box
        # keeps the predictor's starting shape, which follows the box, out of the response.
        face_index = int(fit["face_index"])
        after68 = dlib_landmarks68(output_rgb, fit["bbox_px"])
        after_mp = None if face is None else face.landmarks_px
        baseline_mp, baseline68 = self._baselines.get(
            face_index,
            (fit["landmarks_px"], self._source_landmarks68(face_index, fit["bbox_px"])),
        )
        out["geometry_baseline"] = "neutral render" if face_index in self._baselines else "source"
        out["geometry_response"] = au_geometric_response(baseline68, after68, "ibug68")
        out["nme_mediapipe"] = np.nan
        out["au_response"] = {}
        out["geometry_mp_response"] = {}
        if face is not None:
            out["nme_mediapipe"] = normalised_mean_error(
                face.landmarks_px[: len(target_px), :2], target_px[:, :2], interocular
            )
            out["au_response"] = au_response(
                fit["blendshape_scores"], face.blendshape_scores, self.blendshape_names
            )
            if baseline_mp is not None:
                out["geometry_mp_response"] = au_geometric_response(
                    baseline_mp, face.landmarks_px, "mediapipe"
                )
        if neutral:
            self._baselines[face_index] = (after_mp, after68)
        return out


@dataclass(frozen=True)
class QualityGates:
    """Limits an output must meet to be shipped; None disables a gate.

    max_identity_distance : dlib embedding distance to the source (same person below 0.6).
    max_nme : dlib-68 landmarks vs the intended ones, error / outer inter-ocular distance.
    min_response : mean MediaPipe blendshape response of the requested AUs (score change).
    """

    max_identity_distance: float | None = None
    max_nme: float | None = None
    min_response: float | None = None

    @property
    def active(self) -> bool:
        return any(
            v is not None for v in (self.max_identity_distance, self.max_nme, self.min_response)
        )

    def reasons(self, metrics: dict, requested_aus: list[int]) -> list[str]:
        """Why an output fails the gates (empty when it passes)."""
        failed = []
        if not metrics["redetected"]:
            failed.append("face not found again in the output")
        limit = self.max_identity_distance
        if limit is not None and metrics["identity_distance"] > limit:
            failed.append(f"identity distance {metrics['identity_distance']:.2f} > {limit}")
        if self.max_nme is not None and metrics["nme_dlib68"] > self.max_nme:
            failed.append(f"landmark NME {metrics['nme_dlib68']:.3f} > {self.max_nme}")
        if self.min_response is not None and requested_aus:
            response = np.nanmean([metrics["au_response"].get(au, np.nan) for au in requested_aus])
            if not response >= self.min_response:
                failed.append(f"expression response {response:.3f} < {self.min_response}")
        return failed
