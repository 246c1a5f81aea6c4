"""Face detection and 478-point landmarks with MediaPipe's FaceLandmarker, plus face proposals.

MediaPipe's built-in face detector is the short-range BlazeFace model: it works on a 128 x 128
view of the whole image and misses faces smaller than roughly a tenth of the frame, which is every
face in the back of a group photo. :class:`FaceLandmarker` therefore runs in two stages:

1. a full-frame pass (one landmarker call, about 20 ms);
2. only when that found nothing, or all faces are wanted, or proposals are forced: face
   *proposals* from dlib's HOG detector and from a tiling pass (the landmarker run on overlapping
   tiles, where small faces become large), each refined by running the landmarker on a square
   crop centred on the proposal, so every face is seen at the scale the landmarker was trained
   for.

Coordinates
-----------
All landmark coordinates are in pixels of the full image the caller passed: ``x`` to the right,
``y`` down, and ``z`` MediaPipe's normalized depth multiplied by the width (in full-image pixels)
of the image or crop the landmarker saw, so the three axes share one unit. Smaller ``z`` is closer
to the camera; ``z`` is relative to the face (MediaPipe puts its origin at the centre of the
head), not a distance from the camera.

A :class:`FaceLandmarker` wraps native MediaPipe resources: use it as a context manager (or call
:meth:`FaceLandmarker.close`), and do not share one instance between threads.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal, get_args

import numpy as np

from augmentface.errors import ImageTooLargeError, SearchTimeoutError, UsageError
from augmentface.face.landmarker_model import LandmarkerModel, locate_landmarker

if TYPE_CHECKING:
    from mediapipe.tasks.python import vision

__all__ = [
    "N_BLENDSHAPES",
    "N_LANDMARKS",
    "Box",
    "DetectConfig",
    "FaceDetection",
    "FaceLandmarker",
    "box_area",
    "box_contains",
    "crop_window",
    "dedupe_faces",
    "extract_crop",
    "inside_image",
    "iou",
    "landmarks_to_pixels",
    "tile_windows",
]

#: Landmarks per face: the 468 canonical-mesh points plus 10 iris points.
N_LANDMARKS = 478
#: Blendshape categories per face, ``"_neutral"`` included.
N_BLENDSHAPES = 52

#: An axis-aligned box ``(x0, y0, x1, y1)`` in pixels.
Box = tuple[float, float, float, float]

ProposalMode = Literal["auto", "always", "never"]

#: IoU above which two detections are the same face.
DUPLICATE_IOU = 0.4
#: dlib HOG score threshold for proposals (dlib's own default is 0).
HOG_THRESHOLD = -0.5
#: Crops and tiles are downscaled to at most this side before the landmarker sees them.
VIEW_MAX_SIDE = 640
#: MediaPipe aborts the whole process on an image with a side this long or longer (its OpenCV
#: remap asserts sides < SHRT_MAX = 32767; 4 x 32767 aborts): refused before it sees them.
MEDIAPIPE_MAX_SIDE = 32767
#: Tiles per image at most, and their least side (px): a thin strip (20000 x 20) would
#: otherwise take thousands of landmarker calls, for faces that cannot fit in it.
MAX_TILES = 64
MIN_TILE_SIDE = 64
#: Landmarker calls spent on proposals, per face asked for (bounds the time on busy textures).
MAX_REFINEMENTS_PER_FACE = 4


# --------------------------------------------------------------------------------------------
# Results and configuration


# eq=False: the generated __eq__ would compare arrays and raise; detections compare by identity.
#: MediaPipe's 52 blendshapes (ARKit names), in the order the landmarker reports them.
BLENDSHAPE_NAMES: tuple[str, ...] = (
    "_neutral",
    "browDownLeft",
    "browDownRight",
    "browInnerUp",
    "browOuterUpLeft",
    "browOuterUpRight",
    "cheekPuff",
    "cheekSquintLeft",
    "cheekSquintRight",
    "eyeBlinkLeft",
    "eyeBlinkRight",
    "eyeLookDownLeft",
    "eyeLookDownRight",
    "eyeLookInLeft",
    "eyeLookInRight",
    "eyeLookOutLeft",
    "eyeLookOutRight",
    "eyeLookUpLeft",
    "eyeLookUpRight",
    "eyeSquintLeft",
    "eyeSquintRight",
    "eyeWideLeft",
    "eyeWideRight",
    "jawForward",
    "jawLeft",
    "jawOpen",
    "jawRight",
    "mouthClose",
    "mouthDimpleLeft",
    "mouthDimpleRight",
    "mouthFrownLeft",
    "mouthFrownRight",
    "mouthFunnel",
    "mouthLeft",
    "mouthLowerDownLeft",
    "mouthLowerDownRight",
    "mouthPressLeft",
    "mouthPressRight",
    "mouthPucker",
    "mouthRight",
    "mouthRollLower",
    "mouthRollUpper",
    "mouthShrugLower",
    "mouthShrugUpper",
    "mouthSmileLeft",
    "mouthSmileRight",
    "mouthStretchLeft",
    "mouthStretchRight",
    "mouthUpperUpLeft",
    "mouthUpperUpRight",
    "noseSneerLeft",
    "noseSneerRight",
)


@dataclass(frozen=True, eq=False)
class FaceDetection:
    """One detected face.

    Attributes
    ----------
    landmarks_px : np.ndarray
        (478, 3) float32. ``x``, ``y`` in pixels of the full image; ``z`` is MediaPipe's
        normalized depth times the width in pixels of the image (or crop) the landmarker saw, so
        all three share pixel units. Smaller ``z`` is closer to the camera.
    blendshape_scores : np.ndarray
        (52,) float32 scores in [0, 1], in the order of ``blendshape_names``.
    blendshape_names : tuple of str
        The 52 category names as MediaPipe gives them, ``"_neutral"`` first.
    transform_matrix : np.ndarray
        (4, 4) float32, MediaPipe's facial transformation matrix mapping the canonical face model
        (centimetres) into MediaPipe's virtual camera frame. Caveat: that camera is derived from
        the image the landmarker saw, which for ``source == "proposal"`` is a crop, not the full
        image; the rotation part is still the head pose, but the translation is relative to the
        crop's camera. Refit against ``landmarks_px`` when full-image pose is needed.
    bbox_px : Box
        ``(x0, y0, x1, y1)``, the extent of the landmarks' x and y. Not clipped: it extends past
        the image for a face cut by the border.
    source : str
        ``"full_frame"`` (found by the full-image pass) or ``"proposal"`` (found in a crop).
    """

    landmarks_px: np.ndarray
    blendshape_scores: np.ndarray
    blendshape_names: tuple[str, ...]
    transform_matrix: np.ndarray
    bbox_px: Box
    source: str

    @property
    def area(self) -> float:
        """Area of ``bbox_px`` in square pixels."""
        return box_area(self.bbox_px)

    @property
    def centroid(self) -> tuple[float, float]:
        """Mean ``(x, y)`` of the landmarks, in pixels."""
        mean = self.landmarks_px[:, :2].mean(axis=0)
        return float(mean[0]), float(mean[1])


@dataclass(frozen=True)
class DetectConfig:
    """Settings of :class:`FaceLandmarker`; validated on construction.

    Attributes
    ----------
    model_path : Path, str or None
        A ``face_landmarker.task`` file; ``None`` locates it with
        :func:`augmentface.face.landmarker_model.locate_landmarker`.
    max_faces : int
        Most faces MediaPipe reports per image (or crop), and most faces returned.
    min_detection_confidence, min_presence_confidence : float
        MediaPipe's face-detector and landmark-presence thresholds, in [0, 1].
    all_faces : bool
        Return every face (largest first) instead of only the largest; also turns on proposals.
    proposals : {"auto", "always", "never"}
        ``"auto"`` runs the proposal pass only when the full-frame pass found nothing or
        ``all_faces`` is set; ``"always"`` runs it on every image; ``"never"`` never does.
    tiles : bool
        Whether the proposal pass includes the tiling pass: higher recall on small, turned and
        border-cut faces that HOG misses, for one landmarker call per tile (16 tiles for a
        square image, more for elongated ones; 0.25 to 0.4 s on two CPU cores for typical
        photos).
    hog_max_side : int
        Images are downscaled so that their long side is at most this before dlib's HOG runs
        (its cost grows with the pixel count); images at most half this size are upsampled once,
        so HOG's 80-pixel minimum face becomes 40 pixels.
    crop_margin : float
        Context added around a proposal box on each side, as a fraction of its longer side; the
        landmarker's own detector wants the face to fill about half of its view.
    min_face_px : float
        Faces whose landmark box is narrower or shorter than this many pixels are rejected.
    time_budget_s : float
        Seconds one image's proposal pass may take (HOG, tiles, refinements; the full-frame
        pass always runs): past it the search stops with :class:`SearchTimeoutError` (status
        ``timeout``). The call count is bounded anyway (:data:`MAX_TILES`,
        :data:`MAX_REFINEMENTS_PER_FACE`); the budget bounds a slow machine or a busy texture.
    """

    model_path: Path | str | None = None
    max_faces: int = 8
    min_detection_confidence: float = 0.5
    min_presence_confidence: float = 0.5
    all_faces: bool = False
    proposals: ProposalMode = "auto"
    tiles: bool = True
    hog_max_side: int = 1024
    crop_margin: float = 0.6
    min_face_px: float = 20.0
    time_budget_s: float = 60.0

    def __post_init__(self) -> None:
        if self.proposals not in get_args(ProposalMode):
            allowed = ", ".join(repr(mode) for mode in get_args(ProposalMode))
            raise UsageError(f"proposals must be one of {allowed}, got {self.proposals!r}")
        if not (_is_int(self.max_faces) and self.max_faces >= 1):
            raise UsageError(f"max_faces must be an integer >= 1, got {self.max_faces!r}")
        for name in ("min_detection_confidence", "min_presence_confidence"):
            value = getattr(self, name)
            if not (_is_number(value) and 0.0 <= value <= 1.0):
                raise UsageError(f"{name} must be a number in [0, 1], got {value!r}")
        for name in ("all_faces", "tiles"):
            if not isinstance(getattr(self, name), bool):
                raise UsageError(f"{name} must be True or False, got {getattr(self, name)!r}")
        if not (_is_int(self.hog_max_side) and self.hog_max_side >= 64):
            raise UsageError(f"hog_max_side must be an integer >= 64, got {self.hog_max_side!r}")
        if not (_is_number(self.crop_margin) and 0.0 <= self.crop_margin <= 3.0):
            raise UsageError(f"crop_margin must be a number in [0, 3], got {self.crop_margin!r}")
        if not (_is_number(self.min_face_px) and self.min_face_px >= 0):
            raise UsageError(f"min_face_px must be a number >= 0, got {self.min_face_px!r}")
        if not (_is_number(self.time_budget_s) and self.time_budget_s > 0):
            raise UsageError(f"time_budget_s must be a number > 0, got {self.time_budget_s!r}")
        if self.model_path is not None and not isinstance(self.model_path, str | Path):
            raise UsageError(f"model_path must be a path or None, got {self.model_path!r}")


def _is_int(value: object) -> bool:
    # bool is an int subclass, but max_faces=True is a mistake, not 1.
    return isinstance(value, int | np.integer) and not isinstance(value, bool)


def _is_number(value: object) -> bool:
    return isinstance(value, int | float | np.integer | np.floating) and not isinstance(value, bool)


# --------------------------------------------------------------------------------------------
# Pure geometry helpers


def box_area(box: Box) -> float:
    """Area of a box; zero when it is empty or inverted."""
    return max(0.0, box[2] - box[0]) * max(0.0, box[3] - box[1])


def iou(a: Box, b: Box) -> float:
    """Intersection over union of two boxes (0 when either is empty)."""
    inter = box_area((max(a[0], b[0]), max(a[1], b[1]), min(a[2], b[2]), min(a[3], b[3])))
    union = box_area(a) + box_area(b) - inter
    return inter / union if union > 0 else 0.0


def box_contains(box: Box, x: float, y: float) -> bool:
    """Whether the point ``(x, y)`` lies inside ``box`` (edges included)."""
    return box[0] <= x <= box[2] and box[1] <= y <= box[3]


def _same_face(a: FaceDetection, b: FaceDetection) -> bool:
    if iou(a.bbox_px, b.bbox_px) > DUPLICATE_IOU:
        return True
    return box_contains(b.bbox_px, *a.centroid) or box_contains(a.bbox_px, *b.centroid)


def dedupe_faces(faces: Sequence[FaceDetection]) -> list[FaceDetection]:
    """Drop faces found twice, largest first.

    Two detections are the same face when their boxes overlap with IoU > 0.4 or the landmark
    centroid of one lies inside the other's box. Of a duplicate pair the full-frame detection is
    kept (the landmarker saw the face in its real context and camera), otherwise the larger.

    Parameters
    ----------
    faces : sequence of FaceDetection
        Detections in any order.

    Returns
    -------
    list of FaceDetection
        The kept detections, sorted by box area, largest first.
    """
    ranked = sorted(faces, key=lambda f: (f.source != "full_frame", -f.area))
    kept: list[FaceDetection] = []
    for face in ranked:
        if not any(_same_face(face, other) for other in kept):
            kept.append(face)
    return sorted(kept, key=lambda f: -f.area)


def crop_window(box: Box, margin: float) -> tuple[int, int, int]:
    """Square crop around a proposal box.

    Parameters
    ----------
    box : Box
        The proposal ``(x0, y0, x1, y1)`` in image pixels.
    margin : float
        Context added on each side as a fraction of the box's longer side.

    Returns
    -------
    tuple of int
        ``(x0, y0, side)`` of a square window centred on the box; it may extend past the image
        (:func:`extract_crop` pads it).
    """
    cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
    side = max(box[2] - box[0], box[3] - box[1]) * (1 + 2 * margin)
    side_px = max(1, round(side))
    return round(cx - side_px / 2), round(cy - side_px / 2), side_px


def extract_crop(image: np.ndarray, x0: int, y0: int, side: int) -> np.ndarray:
    """Cut the square window ``[x0, x0 + side) x [y0, y0 + side)`` out of ``image``.

    Parts of the window outside the image are filled by mirroring the image at its border. A
    face cut by the border then looks like a whole face to MediaPipe's detector, which finds it
    far more often than against a black fill; the mirrored copy it may also report lies mostly
    outside the image and is dropped by the caller.

    Returns
    -------
    np.ndarray
        (side, side, C) C-contiguous array of ``image``'s dtype.
    """
    height, width = image.shape[:2]
    if side < 1 or x0 >= width or y0 >= height or x0 + side <= 0 or y0 + side <= 0:
        raise ValueError(f"window ({x0}, {y0}, side {side}) misses the {width}x{height} image")
    sx0, sy0 = max(x0, 0), max(y0, 0)
    sx1, sy1 = min(x0 + side, width), min(y0 + side, height)
    pad = [(sy0 - y0, y0 + side - sy1), (sx0 - x0, x0 + side - sx1)]
    pad += [(0, 0)] * (image.ndim - 2)
    # Only the part inside the image is copied, so a small window of a large image stays cheap.
    return np.ascontiguousarray(np.pad(image[sy0:sy1, sx0:sx1], pad, mode="reflect"))


def landmarks_to_pixels(
    normalized: np.ndarray, x0: float, y0: float, width: float, height: float
) -> np.ndarray:
    """Map MediaPipe's normalized landmarks of a view back to full-image pixels.

    Parameters
    ----------
    normalized : np.ndarray
        (N, 3) landmarks normalized to the view the landmarker saw (x, y in [0, 1] inside it).
    x0, y0 : float
        Position of the view's top-left corner in the full image (0, 0 for the full frame).
    width, height : float
        Size of the view in full-image pixels (before any resizing).

    Returns
    -------
    np.ndarray
        (N, 3) float32: ``x * width + x0``, ``y * height + y0``, ``z * width``.
    """
    scale = np.array([width, height, width], dtype=np.float64)
    offset = np.array([x0, y0, 0.0], dtype=np.float64)
    return (np.asarray(normalized, dtype=np.float64) * scale + offset).astype(np.float32)


def _landmark_box(landmarks_px: np.ndarray) -> Box:
    lo = landmarks_px[:, :2].min(axis=0)
    hi = landmarks_px[:, :2].max(axis=0)
    return float(lo[0]), float(lo[1]), float(hi[0]), float(hi[1])


def _square_box(box: Box) -> Box:
    """The square with the same centre as ``box`` and its longer side."""
    cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
    half = max(box[2] - box[0], box[3] - box[1]) / 2
    return cx - half, cy - half, cx + half, cy + half


def tile_windows(height: int, width: int) -> list[tuple[int, int, int]]:
    """Overlapping square tiles ``(x0, y0, side)`` covering an image.

    Tiles are half the shorter image side and overlap by half a tile, so every face smaller than
    a quarter of the shorter side lies whole inside some tile, where it is twice as large
    relative to the view as in the full frame. The grid starts a quarter tile outside the image
    so that faces cut by the border sit near a tile's middle (the outside is mirrored by
    :func:`extract_crop`), where the detector finds them. Tiles are at least
    :data:`MIN_TILE_SIDE` and at most :data:`MAX_TILES` (larger ones where a thin or huge image
    would need more): a work budget per image.
    """
    side = max(MIN_TILE_SIDE, min(height, width) // 2)
    while True:  # a work budget: larger tiles until there are few enough
        step = side // 2
        xs = range(-step // 2, width - step // 2, step)
        ys = range(-step // 2, height - step // 2, step)
        if len(xs) * len(ys) <= MAX_TILES:
            return [(x, y, side) for y in ys for x in xs]
        side *= 2


def inside_image(box: Box, point: tuple[float, float], height: int, width: int) -> bool:
    """Whether a face's ``point`` lies in the image, give or take a quarter of its ``box``.

    A face cut by the border at its midline has its centre on the border, hence the slack. A
    mirror image of a face, created by the reflected padding of a crop, lies further out; one
    closer than a quarter face overlaps its original and is removed by :func:`dedupe_faces`.
    """
    slack_x, slack_y = (box[2] - box[0]) / 4, (box[3] - box[1]) / 4
    return box_contains((-slack_x, -slack_y, width + slack_x, height + slack_y), *point)


# --------------------------------------------------------------------------------------------
# The detector


class FaceLandmarker:
    """MediaPipe FaceLandmarker with face proposals for small faces.

    Parameters
    ----------
    config : DetectConfig, optional
        Settings; defaults to ``DetectConfig()``. The model file is located (and its hash checked)
        here, so a missing model fails before any image is read.

    Examples
    --------
    >>> with FaceLandmarker(DetectConfig(all_faces=True)) as landmarker:  # doctest: +SKIP
    ...     faces = landmarker.detect(image_rgb)
    """

    def __init__(self, config: DetectConfig | None = None) -> None:
        self.config = config if config is not None else DetectConfig()
        self.model: LandmarkerModel = locate_landmarker(self.config.model_path)
        self._landmarker: vision.FaceLandmarker | None = None
        self._hog: Any = None
        self._deadline: float | None = None  # time.monotonic() the proposal pass must end by
        self._proposal_calls = 0

    def __enter__(self) -> FaceLandmarker:
        # Imported here so that importing this module (e.g. for the CLI's --help) stays cheap.
        from mediapipe.tasks.python import BaseOptions, vision

        if self._landmarker is None:
            options = vision.FaceLandmarkerOptions(
                base_options=BaseOptions(model_asset_path=str(self.model.path)),
                running_mode=vision.RunningMode.IMAGE,
                num_faces=self.config.max_faces,
                min_face_detection_confidence=self.config.min_detection_confidence,
                min_face_presence_confidence=self.config.min_presence_confidence,
                output_face_blendshapes=True,
                output_facial_transformation_matrixes=True,
            )
            self._landmarker = vision.FaceLandmarker.create_from_options(options)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Release MediaPipe's native graph; MediaPipe leaks it if left to the garbage collector."""
        if self._landmarker is not None:
            self._landmarker.close()
            self._landmarker = None

    def detect(self, image_rgb: np.ndarray) -> list[FaceDetection]:
        """Detect faces and their landmarks.

        Parameters
        ----------
        image_rgb : np.ndarray
            (H, W, 3) uint8 RGB image, already upright (EXIF orientation applied).

        Returns
        -------
        list of FaceDetection
            Sorted by box area, largest first; at most one face unless ``config.all_faces``
            (then at most ``config.max_faces``). Empty when no face is found.

        Raises
        ------
        RuntimeError
            When called outside the ``with`` block (MediaPipe's graph is not open).
        ValueError
            When the image is not (H, W, 3) uint8.
        """
        if self._landmarker is None:
            raise RuntimeError("FaceLandmarker is closed: use it as `with FaceLandmarker() as lm`")
        image = np.asarray(image_rgb)
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8 or 0 in image.shape:
            raise ValueError(
                f"expected an (H, W, 3) uint8 RGB image, got shape {image.shape} "
                f"dtype {image.dtype}"
            )
        image = np.ascontiguousarray(image)
        height, width = image.shape[:2]
        if max(height, width) >= MEDIAPIPE_MAX_SIDE:
            raise ImageTooLargeError(
                f"{width}x{height} px: a side of {MEDIAPIPE_MAX_SIDE} px or more, which "
                "MediaPipe cannot take (it would abort the run)"
            )
        cfg = self.config

        faces = self._run(image, 0, 0, width, height, "full_frame")
        wants_proposals = cfg.all_faces or not faces
        if cfg.proposals == "always" or (cfg.proposals == "auto" and wants_proposals):
            self._deadline = time.monotonic() + cfg.time_budget_s
            self._proposal_calls = 0
            try:
                faces += self._proposal_faces(image, faces)
            finally:
                self._deadline = None
        faces = dedupe_faces(faces)
        return faces[: cfg.max_faces] if cfg.all_faces else faces[:1]

    def _run(
        self, view: np.ndarray, x0: int, y0: int, width: int, height: int, source: str
    ) -> list[FaceDetection]:
        """Run the landmarker on ``view``, a ``width x height`` region of the image at (x0, y0).

        Views larger than :data:`VIEW_MAX_SIDE` are downscaled first: MediaPipe looks at them
        through a 128-pixel detector and a 256-pixel landmark model anyway, and a smaller
        ``mp.Image`` is cheaper to build. Normalized coordinates do not change with the scale.
        """
        import cv2
        import mediapipe as mp

        if self._landmarker is None:
            raise RuntimeError("FaceLandmarker is closed")
        if source == "proposal" and max(view.shape[:2]) > VIEW_MAX_SIDE:
            scale = VIEW_MAX_SIDE / max(view.shape[:2])
            size = (max(1, round(view.shape[1] * scale)), max(1, round(view.shape[0] * scale)))
            view = cv2.resize(view, size, interpolation=cv2.INTER_AREA)
        result = self._landmarker.detect(
            mp.Image(image_format=mp.ImageFormat.SRGB, data=np.ascontiguousarray(view))
        )
        faces = []
        for landmarks, categories, matrix in zip(
            result.face_landmarks,
            result.face_blendshapes,
            result.facial_transformation_matrixes,
            strict=True,
        ):
            normalized = np.array([(p.x, p.y, p.z) for p in landmarks], dtype=np.float64)
            if normalized.shape != (N_LANDMARKS, 3) or not np.isfinite(normalized).all():
                continue
            landmarks_px = landmarks_to_pixels(normalized, x0, y0, width, height)
            bbox = _landmark_box(landmarks_px)
            if min(bbox[2] - bbox[0], bbox[3] - bbox[1]) < self.config.min_face_px:
                continue
            faces.append(
                FaceDetection(
                    landmarks_px=landmarks_px,
                    blendshape_scores=np.array([c.score for c in categories], dtype=np.float32),
                    blendshape_names=tuple(c.category_name for c in categories),
                    transform_matrix=np.asarray(matrix, dtype=np.float32).reshape(4, 4),
                    bbox_px=bbox,
                    source=source,
                )
            )
        return faces

    def _proposal_faces(self, image: np.ndarray, known: list[FaceDetection]) -> list[FaceDetection]:
        """Faces found by refining every proposal that no known face already covers."""
        height, width = image.shape[:2]
        proposals = self._hog_proposals(image)
        if self.config.tiles:
            proposals += self._tile_proposals(image)
        found: list[FaceDetection] = []
        tried: list[Box] = []
        for proposal in proposals:
            if len(tried) >= MAX_REFINEMENTS_PER_FACE * self.config.max_faces:
                break
            centre = ((proposal[0] + proposal[2]) / 2, (proposal[1] + proposal[3]) / 2)
            if not inside_image(proposal, centre, height, width):
                continue  # a mirror image from a tile's reflected padding
            if any(
                iou(proposal, f.bbox_px) > DUPLICATE_IOU or box_contains(f.bbox_px, *centre)
                for f in known + found
            ):
                continue
            # A proposal like one already refined in vain would only fail again.
            if any(iou(proposal, t) > DUPLICATE_IOU for t in tried):
                continue
            tried.append(proposal)
            face = self._refine(image, proposal)
            if face is not None:
                found.append(face)
        return found

    def _refine(self, image: np.ndarray, proposal: Box) -> FaceDetection | None:
        """Run the landmarker on a square crop around ``proposal``; keep the face centred in it."""
        height, width = image.shape[:2]
        x0, y0, side = crop_window(proposal, self.config.crop_margin)
        found = self._proposal_run(extract_crop(image, x0, y0, side), x0, y0, side)
        candidates = [
            f
            for f in found
            if box_contains(proposal, *f.centroid)
            and inside_image(f.bbox_px, f.centroid, height, width)
        ]
        if not candidates:
            return None
        centre = ((proposal[0] + proposal[2]) / 2, (proposal[1] + proposal[3]) / 2)
        return min(candidates, key=lambda f: math.dist(f.centroid, centre))

    def _proposal_run(self, crop: np.ndarray, x0: int, y0: int, side: int) -> list[FaceDetection]:
        """One landmarker call of the proposal pass, unless the image's time budget is spent."""
        if self._deadline is not None and time.monotonic() > self._deadline:
            raise SearchTimeoutError(
                f"face search stopped after its {self.config.time_budget_s:g} s budget "
                f"({self._proposal_calls} landmarker calls on proposals and tiles)"
            )
        self._proposal_calls += 1
        return self._run(crop, x0, y0, side, side, "proposal")

    def _hog_proposals(self, image: np.ndarray) -> list[Box]:
        """Face boxes from dlib's HOG detector, best score first, in full-image pixels."""
        import cv2
        import dlib

        if self._hog is None:
            self._hog = dlib.get_frontal_face_detector()
        height, width = image.shape[:2]
        scale = min(1.0, self.config.hog_max_side / max(height, width))
        gray = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
        if scale < 1.0:
            size = (max(1, round(width * scale)), max(1, round(height * scale)))
            gray = cv2.resize(gray, size, interpolation=cv2.INTER_AREA)
        # One upsampling halves HOG's 80-pixel minimum face; it quadruples the cost, so only
        # images at most half of hog_max_side get it.
        upsample = 1 if max(gray.shape) * 2 <= self.config.hog_max_side else 0
        # A permissive threshold: a false proposal costs one landmarker call, a miss costs a face.
        rects, scores, _ = self._hog.run(gray, upsample, HOG_THRESHOLD)
        order = np.argsort(scores, kind="stable")[::-1]
        return [
            (
                rects[i].left() / scale,
                rects[i].top() / scale,
                (rects[i].right() + 1) / scale,
                (rects[i].bottom() + 1) / scale,
            )
            for i in order
        ]

    def _tile_proposals(self, image: np.ndarray) -> list[Box]:
        """Face boxes found by running the landmarker on overlapping tiles, largest first."""
        height, width = image.shape[:2]
        faces = []
        for x0, y0, side in tile_windows(height, width):
            tile = extract_crop(image, x0, y0, side)
            faces += self._proposal_run(tile, x0, y0, side)
        faces.sort(key=lambda f: -f.area)
        return [_square_box(f.bbox_px) for f in faces]


class RecyclingLandmarker:
    """A :class:`FaceLandmarker` closed and reopened after every ``every`` images, because
    MediaPipe's graph leaks memory over long runs; opened on first use.

    Parameters
    ----------
    config : DetectConfig
        Settings of the landmarker.
    every : int
        Images per graph, at least 1.
    """

    def __init__(self, config: DetectConfig, every: int) -> None:
        if every < 1:
            raise ValueError(f"every must be >= 1, got {every}")
        self.config = config
        self.every = every
        self._landmarker: FaceLandmarker | None = None
        self._used = 0

    def detect(self, image_rgb: np.ndarray) -> list[FaceDetection]:
        """:meth:`FaceLandmarker.detect` on a graph that has seen fewer than ``every`` images."""
        if self._landmarker is None or self._used >= self.every:
            self.close()
            self._landmarker = FaceLandmarker(self.config).__enter__()
        self._used += 1
        return self._landmarker.detect(image_rgb)

    def close(self) -> None:
        """Release the graph (the next :meth:`detect` opens a new one)."""
        if self._landmarker is not None:
            self._landmarker.close()
            self._landmarker = None
        self._used = 0
