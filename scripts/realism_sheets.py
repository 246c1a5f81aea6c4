"""Before/after evidence for the realism of the mouth, eyes and brows: sheets and metrics.

"Before" is the plain mesh warp (``render_expression(..., interiors=False)``), which stretches
the eye and mouth openings' pixels like skin; "after" is the renderer as shipped: still eyeballs
and closing teeth, sclera painted where an eye widens, a painted interior where the lips part.
Each case replaces the face's expression by a target (replace semantics, as synth does):

* mouth-open: AU25=4 + AU26=4 on a closed mouth: the photo is first given a neutral expression
  (shipped renderer), blended and detected again, and that image is the source (the
  astronaut smiles with her teeth showing);
* mouth-close: neutral on an open mouth: the source is prepared likewise by AU25=5 + AU26=5;
* eyes-closed: AU43=5; eyes-wide: AU5=4;
* brows-up: AU1=4 + AU2=4; brows-down: AU4=4 (forehead and hairline shown);
* brows-sad: AU1=4 + AU4=4, where "before" is instead the linear sum of the two AUs' fields and
  "after" the rig as shipped, with FACS's 1+4 combination rule (``expression/au_rig.py``); both
  with the shipped renderer.

Sheets (``docs/realism/<case>.jpg``) use only scikit-image's public-domain astronaut: source |
before | after, the render region and an enlarged crop of the region the case is about. Metrics
(written between the markers of ``docs/realism.md``, the rest of which is left as it is) are
measured on the astronaut and on the near-neutral photos of a folder (MediaPipe mouthSmileLeft
< 0.15, scaled to at most 800 px), which give numbers only. Per case and renderer: dlib identity
distance to the source, MediaPipe blendshape response of the targeted AUs, dlib-68 NME against
the intended landmarks and the seam ratio (as :mod:`augmentface.metrics.measure` computes them),
and for the brow cases the forehead strain (:mod:`augmentface.metrics.forehead`).

Usage: python scripts/realism_sheets.py [--faces ../shared/faces/deepface] [--docs docs]
"""

from __future__ import annotations

import argparse
import shlex
import sys
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from photos import first_faces
from skimage import data

from augmentface.atomic import atomic_write_bytes, atomic_write_text
from augmentface.blend import blend_face
from augmentface.face import topology as topo
from augmentface.face.detect import DetectConfig, FaceDetection, FaceLandmarker
from augmentface.face.fitting import fit_face
from augmentface.face.model import FaceModel, load_face_model
from augmentface.metrics.artifacts import seam_ratio
from augmentface.metrics.blendshapes_facs import au_response
from augmentface.metrics.forehead import forehead_gradient_ratio, forehead_strain
from augmentface.metrics.geometry import (
    dlib_landmarks68,
    interocular_distance_68,
    normalised_mean_error,
)
from augmentface.metrics.identity import face_embedding, identity_distance
from augmentface.metrics.measure import nearest_face
from augmentface.render.face_render import RenderedFace, render_expression
from augmentface.render.warp import anchor_ring_px

NEUTRAL_SMILE = 0.15
#: Width of one sheet column, px; every crop is scaled to it.
PANEL_PX = 480
BEGIN, END = "<!-- metrics:begin -->", "<!-- metrics:end -->"
RENDERERS = ("before", "after")


@dataclass(frozen=True)
class Case:
    """One realism case.

    ``prepare`` is an expression the shipped renderer gives the photo first (the result,
    detected again, is the case's source), or None to start from the photo; ``regions`` are
    vertex sets, each enlarged in a row of the sheet. ``linear_before``: "before" is the rig's
    linear sum of fields (no combination rules) with the shipped renderer, not the plain warp.
    """

    name: str
    title: str
    target: dict[int, float]
    aus: tuple[int, ...]
    regions: tuple[tuple[int, ...], ...]
    prepare: dict[int, float] | None = None
    brows: bool = False
    linear_before: bool = False

    @property
    def labels(self) -> tuple[str, str]:
        if self.linear_before:
            return "before: linear sum of fields", "after: FACS combination rule"
        return "before: plain mesh warp", "after: shipped renderer"


EYES = (topo.RIGHT_EYE, topo.LEFT_EYE)  # the subject's right eye is on the viewer's left
BROWS = (topo.LEFT_BROW_UPPER + topo.RIGHT_BROW_UPPER + topo.LEFT_EYE + topo.RIGHT_EYE,)
CASES = (
    Case(
        "mouth-open",
        "AU25=4 + AU26=4 on the mouth closed first (neutral)",
        {25: 4, 26: 4},
        (25, 26),
        (topo.LIPS_OUTER,),
        prepare={},
    ),
    Case(
        "mouth-close",
        "neutral on the mouth opened first by AU25=5 + AU26=5",
        {},
        (25, 26),
        (topo.LIPS_OUTER,),
        prepare={25: 5, 26: 5},
    ),
    Case("eyes-closed", "AU43=5", {43: 5}, (43,), EYES),
    Case("eyes-wide", "AU5=4", {5: 4}, (5,), EYES),
    Case("brows-up", "AU1=4 + AU2=4", {1: 4, 2: 4}, (1, 2), BROWS, brows=True),
    Case("brows-down", "AU4=4", {4: 4}, (4,), BROWS, brows=True),
    Case("brows-sad", "AU1=4 + AU4=4", {1: 4, 4: 4}, (1, 4), BROWS, brows=True,
         linear_before=True),
)  # fmt: skip


@dataclass(frozen=True)
class Synth:
    """One synthesized image: the blended output and the render it came from."""

    image: np.ndarray
    rendered: RenderedFace


def synthesize(
    image: np.ndarray,
    face: FaceDetection,
    aus: dict[int, float],
    model: FaceModel,
    interiors: bool,
    linear: bool = False,
) -> Synth:
    """Replace the face's expression by ``aus`` (the rig's linear sum of fields when
    ``linear``), render with or without interiors, blend."""
    fit = fit_face(face.landmarks_px, model)
    offsets = model.rig.linear_offsets if linear else model.rig.offsets
    delta = fit.expression_change_px(offsets(model.rig.vector(aus)))
    rendered = render_expression(image, face.landmarks_px, delta, model, interiors=interiors)
    return Synth(blend_face(image, rendered.image_rgb, rendered.alpha, rendered.roi), rendered)


def case_source(
    case: Case,
    image: np.ndarray,
    face: FaceDetection,
    model: FaceModel,
    landmarker: FaceLandmarker,
) -> tuple[np.ndarray, FaceDetection] | None:
    """The case's source: the photo, or the photo prepared and detected again (None if lost)."""
    if case.prepare is None:
        return image, face
    prepared = synthesize(image, face, case.prepare, model, interiors=True)
    again = nearest_face(landmarker.detect(prepared.image), prepared.rendered.target_verts_px)
    return None if again is None else (prepared.image, again)


def measure(
    case: Case,
    source: np.ndarray,
    face: FaceDetection,
    synth: Synth,
    model: FaceModel,
    landmarker: FaceLandmarker,
) -> dict[str, float]:
    """The metrics of one output, as ``metrics.measure.OutputMeasurer.measure`` computes them."""
    out, rendered = synth.image, synth.rendered
    target = rendered.target_verts_px
    target68 = target[list(topo.IBUG68), :2]
    again = nearest_face(landmarker.detect(out), target)
    box = again.bbox_px if again is not None else (*target[:, :2].min(0), *target[:, :2].max(0))
    row = {
        "identity": identity_distance(
            face_embedding(source, face.bbox_px), face_embedding(out, box)
        ),
        "nme": normalised_mean_error(
            dlib_landmarks68(out, box), target68, interocular_distance_68(target68)
        ),
        "seam": seam_ratio(out, source, rendered.alpha, rendered.roi),
        "response": np.nan,
    }
    if again is not None:
        response = au_response(
            face.blendshape_scores, again.blendshape_scores, face.blendshape_names
        )
        row["response"] = float(np.mean([response[au] for au in case.aus]))
    if case.brows:
        mesh = (face.landmarks_px[:468], target, model.topology.verts_model_mm, model.triangles)
        strain = forehead_strain(*mesh)
        row |= {
            "min_area": strain.min_area_ratio,
            "max_area": strain.max_area_ratio,
            "anisotropy": strain.max_anisotropy,
            "folds": strain.folds,
            "gradient": forehead_gradient_ratio(out, source, *mesh),
        }
    return row


def near_neutral_photos(folder: Path, landmarker: FaceLandmarker):
    """(name, image, face) of each near-neutral photo in ``folder``, scaled to <= 800 px."""
    for path, image, face in first_faces(folder, landmarker):
        scores = dict(zip(face.blendshape_names, face.blendshape_scores, strict=True))
        if scores["mouthSmileLeft"] < NEUTRAL_SMILE:
            yield path.name, image, face


# --- sheets -------------------------------------------------------------------------------


def _box(points_px: np.ndarray, pad: float, shape: tuple[int, ...]) -> tuple[int, int, int, int]:
    """Half-open box around the points, grown by ``pad`` times its larger side, clipped."""
    lo, hi = points_px.min(axis=0), points_px.max(axis=0)
    grow = pad * float((hi - lo).max())
    x0, y0 = np.floor(lo - grow).astype(int)
    x1, y1 = np.ceil(hi + grow).astype(int) + 1
    return max(0, x0), max(0, y0), min(shape[1], x1), min(shape[0], y1)


def _enlarge(image: np.ndarray, box: tuple[int, int, int, int]) -> np.ndarray:
    """The box of the image scaled to the panel width (cubic: a viewer's zoom, not pixels)."""
    x0, y0, x1, y1 = box
    crop = image[y0:y1, x0:x1]
    height = round(crop.shape[0] * PANEL_PX / crop.shape[1])
    return cv2.resize(crop, (PANEL_PX, height), interpolation=cv2.INTER_CUBIC)


def _strip(text: str, width: int, height: int = 30) -> np.ndarray:
    strip = np.full((height, width, 3), 255, np.uint8)
    cv2.putText(
        strip, text, (8, height - 10), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (0, 0, 0), 1, cv2.LINE_AA
    )
    return strip


def _row(panels: list[np.ndarray], gap: int = 6) -> np.ndarray:
    spacer = np.full((panels[0].shape[0], gap, 3), 255, np.uint8)
    return np.hstack([p for panel in panels for p in (panel, spacer)][:-1])


def sheet(
    case: Case,
    source: np.ndarray,
    face: FaceDetection,
    synths: dict[str, Synth],
) -> np.ndarray:
    """source | before | after: the render region, then each of the case's regions enlarged."""
    after = synths["after"].rendered
    src, dst = face.landmarks_px[:468, :2], after.target_verts_px[:, :2]
    images = [source, synths["before"].image, synths["after"].image]
    rows = [_row([_enlarge(im, after.roi) for im in images])]
    for vertices in case.regions:
        points = np.vstack([src[list(vertices)], dst[list(vertices)]])
        if case.brows:
            # Up to the top of the anchor ring, past the hairline, where a tear would show.
            ring_top = anchor_ring_px(src[list(topo.FACE_OVAL)])[:, 1].min()
            points = np.vstack([points, [[points[:, 0].mean(), ring_top]]])
        box = _box(points, 0.08 if case.brows else 0.25, source.shape)
        rows.append(_row([_enlarge(im, box) for im in images]))
    width = rows[0].shape[1]
    source_label = "source" if case.prepare is None else "source (prepared, see title)"
    labels = _row([_strip(t, PANEL_PX) for t in (source_label, *case.labels)])
    gap = np.full((6, width, 3), 255, np.uint8)
    spaced = [part for row in rows for part in (row, gap)][:-1]
    return np.vstack([_strip(f"{case.name}: {case.title} (astronaut)", width), labels, *spaced])


# --- report -------------------------------------------------------------------------------


def _fmt(value: float, digits: int = 3) -> str:
    return "n/a" if not np.isfinite(value) else f"{value:.{digits}f}"


def tables(results: dict[str, dict[str, dict[str, list[dict]]]], counts: dict[str, int]) -> str:
    """Markdown tables of the mean metrics; ``results[set][case][renderer]`` is a row list."""
    lines = []
    for name, by_case in results.items():
        lines += [
            f"### {name} ({counts[name]} face{'s' if counts[name] != 1 else ''})",
            "",
            "| case | renderer | n | identity distance | AU response | NME dlib-68 | seam ratio |",
            "|---|---|---|---|---|---|---|",
        ]
        for case in CASES:
            for renderer in RENDERERS:
                rows = by_case[case.name][renderer]
                if not rows:
                    continue
                mean = {k: float(np.nanmean([r[k] for r in rows])) for k in rows[0]}
                lines.append(
                    f"| {case.name} | {renderer} | {len(rows)} | {_fmt(mean['identity'])} | "
                    f"{_fmt(mean['response'])} | {_fmt(mean['nme'])} | {_fmt(mean['seam'])} |"
                )
        lines += [
            "",
            f"Forehead strain ({name}; min/max area ratio and anisotropy: worst "
            "triangle per face, averaged; folds: total):",
            "",
            "| case | renderer | min area ratio | max area ratio | max anisotropy | folds "
            "| forehead gradient ratio |",
            "|---|---|---|---|---|---|---|",
        ]
        for case in (c for c in CASES if c.brows):
            for renderer in RENDERERS:
                rows = by_case[case.name][renderer]
                mean = {k: float(np.nanmean([r[k] for r in rows])) for k in rows[0]}
                folds = sum(r["folds"] for r in rows)
                lines.append(
                    f"| {case.name} | {renderer} | {_fmt(mean['min_area'], 2)} | "
                    f"{_fmt(mean['max_area'], 2)} | {_fmt(mean['anisotropy'], 2)} | {folds} | "
                    f"{_fmt(mean['gradient'])} |"
                )
        lines.append("")
    return "\n".join(lines)


def write_sheet(path: Path, image_rgb: np.ndarray) -> None:
    """Write a sheet as a high-quality JPEG: kept in the repository, so a fifth of a PNG's size;
    artifacts at quality 92 are far below the ones the sheets are there to show."""
    ok, encoded = cv2.imencode(".jpg", image_rgb[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, 92])
    if not ok:
        raise OSError(f"{path}: JPEG encoding failed")
    atomic_write_bytes(path, encoded.tobytes())


def write_doc(path: Path, block: str) -> None:
    """Put ``block`` between the markers of ``path``, keeping the rest (a skeleton if new)."""
    text = path.read_text() if path.exists() else f"# Realism: before and after\n\n{BEGIN}\n{END}\n"
    head, rest = text.split(BEGIN, 1)
    tail = rest.split(END, 1)[1]
    atomic_write_text(path, f"{head}{BEGIN}\n{block}\n{END}{tail}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--faces",
        type=Path,
        default=Path("../shared/faces/deepface"),
        help="folder of photos for the metrics (numbers only)",
    )
    parser.add_argument("--docs", type=Path, default=Path("docs"))
    args = parser.parse_args()
    model = load_face_model()
    results: dict = defaultdict(lambda: defaultdict(lambda: defaultdict(list)))
    counts: dict[str, int] = {}
    with FaceLandmarker(DetectConfig()) as landmarker:
        astronaut = data.astronaut()
        faces = [("astronaut", astronaut, landmarker.detect(astronaut)[0])]
        faces += list(near_neutral_photos(args.faces, landmarker))
        for name, image, face in faces:
            group = "astronaut" if name == "astronaut" else f"near-neutral photos of {args.faces}"
            counts[group] = counts.get(group, 0) + 1
            for case in CASES:
                prepared = case_source(case, image, face, model, landmarker)
                if prepared is None:
                    print(
                        f"{name} {case.name}: no face found after preparing the source",
                        file=sys.stderr,
                    )
                    continue
                source, source_face = prepared
                synths = {
                    r: synthesize(
                        source,
                        source_face,
                        case.target,
                        model,
                        interiors=case.linear_before or r == "after",
                        linear=case.linear_before and r == "before",
                    )
                    for r in RENDERERS
                }
                for renderer, synth in synths.items():
                    row = measure(case, source, source_face, synth, model, landmarker)
                    results[group][case.name][renderer].append(row)
                if name == "astronaut":
                    path = args.docs / "realism" / f"{case.name}.jpg"
                    write_sheet(path, sheet(case, source, source_face, synths))
                    print(f"wrote {path}")
    command = shlex.join(["python", "scripts/realism_sheets.py", *sys.argv[1:]])
    block = f"Produced by `{command}` (from the repository root).\n\n{tables(results, counts)}"
    write_doc(args.docs / "realism.md", block)
    print(block)


if __name__ == "__main__":
    main()
