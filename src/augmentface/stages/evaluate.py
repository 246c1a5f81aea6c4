"""Stage ``evaluate``: per output image, does it keep the person, show the expression, look clean?

Identity: dlib's ResNet embedding distance between the source face and the output face.
Expression: MediaPipe's blendshapes of the output minus the source's, mapped onto AUs
(:mod:`augmentface.metrics.blendshapes_facs`). Geometry: re-detected landmarks (MediaPipe's,
and dlib's independent 68-point model) against the intended target landmarks, normalised by
the outer inter-ocular distance. Artifacts: gradient energy along the blend boundary relative
to the unedited photo, and whether pixels outside the mask are unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import pandas as pd

from augmentface.atomic import atomic_write_text
from augmentface.face.detect import DetectConfig, FaceDetection, FaceLandmarker
from augmentface.imageio import read_image
from augmentface.manifest import ManifestWriter, read_manifest
from augmentface.metrics.artifacts import outside_unchanged, seam_ratio
from augmentface.metrics.blendshapes_facs import au_response, response_summary
from augmentface.metrics.geometry import (
    dlib_landmarks68,
    interocular_distance_68,
    normalised_mean_error,
)
from augmentface.metrics.identity import SAME_PERSON_THRESHOLD, face_embedding, identity_distance
from augmentface.stages.common import (
    DEFAULT_WORKDIR,
    FITS_FILE,
    LABELS_FILE,
    OUTPUT_DIR,
    StageReport,
    progress,
    row_failure,
    upstream,
)
from augmentface.stages.schemas import AU_NAMES, EVALUATION, FITS, LABELS, RENDERS

EVALUATION_FILE = "evaluation.parquet"
SUMMARY_FILE = "evaluation_summary.csv"
LOSSLESS_SUFFIXES = (".png",)


@dataclass(frozen=True)
class EvaluateConfig:
    """Settings of ``augmentface evaluate``."""

    workdir: Path = DEFAULT_WORKDIR
    labels: Path | None = None  # default: <workdir>/output/labels.parquet
    quiet: bool = False


def _nearest_face(faces: list[FaceDetection], target_px: np.ndarray) -> FaceDetection | None:
    """The detected face whose landmarks' centroid is nearest the intended face's."""
    if not faces:
        return None
    centre = target_px[:, :2].mean(axis=0)
    return min(faces, key=lambda f: float(np.linalg.norm(f.landmarks_px[:, :2].mean(0) - centre)))


def _read_alpha(render_path: str) -> np.ndarray:
    bgra = cv2.imread(render_path, cv2.IMREAD_UNCHANGED)
    return bgra[..., 3]


@dataclass
class _Sources:
    """Per-image and per-face caches: the source photo and its embeddings."""

    image_path: str = ""
    image: np.ndarray | None = None
    embeddings: dict | None = None

    def get(self, path: str) -> np.ndarray:
        if path != self.image_path:
            self.image_path, self.image, self.embeddings = path, read_image(path), {}
        return self.image

    def embedding(self, face_index: int, box_px) -> np.ndarray:
        if face_index not in self.embeddings:
            self.embeddings[face_index] = face_embedding(self.image, box_px)
        return self.embeddings[face_index]


def _evaluate_row(row, fit, render, sources: _Sources, landmarker, names) -> dict:
    source = sources.get(row["image_path"])
    output = read_image(row["output_path"])
    target_px = render["target_landmarks_px"].astype(np.float64)
    target68 = render["target_ibug68_px"].astype(np.float64)
    interocular = interocular_distance_68(target68)
    roi = tuple(int(v) for v in render["roi_px"])
    alpha = _read_alpha(render["render_path"])
    out = {
        "output_path": row["output_path"],
        "seam_ratio": seam_ratio(output, source, alpha, roi),
        "outside_unchanged": (
            outside_unchanged(output, source, alpha, roi)[0]
            if Path(row["output_path"]).suffix.lower() in LOSSLESS_SUFFIXES
            else None
        ),
    }
    face = _nearest_face(landmarker.detect(output), target_px)
    out["redetected"] = face is not None
    box = face.bbox_px if face is not None else (*target_px[:, :2].min(0), *target_px[:, :2].max(0))
    distance = identity_distance(
        sources.embedding(int(row["face_index"]), fit["bbox_px"]), face_embedding(output, box)
    )
    out["identity_distance"] = distance
    out["same_person"] = distance < SAME_PERSON_THRESHOLD
    out["nme_dlib68"] = normalised_mean_error(dlib_landmarks68(output, box), target68, interocular)
    if face is not None:
        out["nme_mediapipe"] = normalised_mean_error(
            face.landmarks_px[: len(target_px), :2], target_px[:, :2], interocular
        )
        response = au_response(fit["blendshape_scores"], face.blendshape_scores, names)
        out.update({f"response_{n}": response.get(int(n[2:]), np.nan) for n in AU_NAMES})
    return out


def summarise(evaluation: pd.DataFrame, labels: pd.DataFrame) -> pd.DataFrame:
    """Aggregate per target: counts, identity, geometry, seam, and the requested AUs' response."""
    ok = evaluation[evaluation["status"] == "ok"].merge(
        labels[[*EVALUATION.key, *AU_NAMES]], on=list(EVALUATION.key), how="left"
    )
    rows = []
    for target_id, group in ok.groupby("target_id", sort=True):
        requested = [n for n in AU_NAMES if group[n].fillna(0).gt(0).any()]
        rows.append(
            {
                "target_id": target_id,
                "n": len(group),
                "redetected": group["redetected"].mean(),
                "same_person": group["same_person"].mean(),
                "identity_distance_median": group["identity_distance"].median(),
                "nme_dlib68_mean": group["nme_dlib68"].mean(),
                "nme_mediapipe_mean": group["nme_mediapipe"].mean(),
                "seam_ratio_median": group["seam_ratio"].median(),
                "response_of_requested_aus": np.nanmean(
                    [group[f"response_{n}"].mean() for n in requested]
                )
                if requested
                else np.nan,
            }
        )
    return pd.DataFrame(rows)


def au_correlations(evaluation: pd.DataFrame, labels: pd.DataFrame) -> pd.DataFrame:
    """Per AU: correlation of requested intensity with the blendshape response, and its sign."""
    ok = evaluation[evaluation["status"] == "ok"].merge(
        labels[[*EVALUATION.key, *AU_NAMES]], on=list(EVALUATION.key), how="left"
    )
    rows = []
    for name in AU_NAMES:
        summary = response_summary(
            ok[name].fillna(0).to_numpy(), ok[f"response_{name}"].to_numpy(dtype=float)
        )
        rows.append(
            {
                "au": name,
                "pearson_r": summary.pearson_r,
                "sign": summary.sign,
                "note": summary.reason,
            }
        )
    return pd.DataFrame(rows)


def run_evaluate(config: EvaluateConfig | None = None) -> tuple[StageReport, pd.DataFrame]:
    """Evaluate every ``ok`` output of the blend stage; returns the report and the summary."""
    config = config or EvaluateConfig()
    workdir = Path(config.workdir)
    labels_path = Path(config.labels or workdir / OUTPUT_DIR / LABELS_FILE)
    labels = upstream(labels_path, LABELS, "augmentface blend")
    renders = read_manifest(
        labels.meta["params"]["renders"], RENDERS, run_first="augmentface render"
    )
    fits_path = Path(labels.meta["params"]["renders"]).parent / FITS_FILE
    fits = upstream(fits_path, FITS, "augmentface fit3dmm IMAGES")
    fit_rows = {(r["image_path"], int(r["face_index"])): r for r in fits.df.to_dict("records")}
    render_rows = {tuple(r[k] for k in RENDERS.key): r for r in renders.df.to_dict("records")}
    names = tuple(fits.meta["params"]["blendshape_names"])
    path = labels_path.with_name(EVALUATION_FILE)
    report = StageReport("evaluate", path)
    todo = sorted(
        (r for r in labels.df.to_dict("records") if r["status"] == "ok"),
        key=lambda r: r["image_path"],
    )
    sources = _Sources()
    with (
        FaceLandmarker(DetectConfig(max_faces=4)) as landmarker,
        ManifestWriter(
            path,
            EVALUATION,
            None,
            params={"labels": str(labels_path.resolve())},
            seed=labels.meta.get("seed"),
            face_model_id=labels.meta.get("face_model_id"),
            every_n=100,
        ) as writer,
    ):
        for row in progress(todo, "evaluate", len(todo), config.quiet):
            key = {k: row[k] for k in EVALUATION.key}
            try:
                fit = fit_rows[(row["image_path"], int(row["face_index"]))]
                render = render_rows[tuple(key.values())]
                values = _evaluate_row(row, fit, render, sources, landmarker, names)
            except Exception as exc:  # the row gets a status; the run goes on
                status, message = row_failure(exc, row["output_path"])
                writer.add({**key, "status": status, "error": message})
                report.fail(status, message)
                continue
            writer.add({**key, **values, "status": "ok", "error": None})
            report.ok()
    evaluation = read_manifest(path, EVALUATION, run_first="augmentface evaluate").df
    atomic_write_text(path.with_suffix(".csv"), evaluation.to_csv(index=False))
    summary = summarise(evaluation, labels.df)
    atomic_write_text(path.with_name(SUMMARY_FILE), summary.to_csv(index=False))
    return report, summary
