"""Locate, load and feed dlib's face-recognition ResNet and shape predictors (Davis King's, CC0).

The weights are never downloaded at run time. The folder holding them is looked for, in order:

1. the environment variable ``AUGMENTFACE_DLIB_MODELS`` (a folder holding the three files);
2. the copy shipped inside the PyPI package ``face_recognition_models``
   (``face_recognition_models/models/``).

As with the face landmarker (:mod:`augmentface.face.landmarker_model`), shipped copies must match
the reference sha256 of each file (a mismatch means a corrupted or substituted file inside someone
else's package); a folder the user names is accepted whatever its hashes, with a warning, and every
hash is reported so manifests can name the exact weights.

``face_recognition_models`` is found with :func:`importlib.util.find_spec` and never imported: its
``__init__`` needs ``pkg_resources``, which recent setuptools no longer ships.

The models themselves load in about a second (the 68-point predictor is 100 MB), so they are
loaded on first use and cached per file.
"""

from __future__ import annotations

import functools
import logging
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import dlib
import numpy as np

from augmentface.errors import ModelFileError
from augmentface.face.landmarker_model import file_sha256, package_dirs

__all__ = [
    "BOX_HEIGHT_SCALE",
    "BOX_WIDTH_SCALE",
    "ENV_VAR",
    "RECOGNITION_FILE",
    "REFERENCE_SHA256",
    "SHAPE5_FILE",
    "SHAPE68_FILE",
    "DlibModels",
    "ModelFile",
    "check_image",
    "dlib_rectangle",
    "face_shape",
    "locate_dlib_models",
    "recognition_model",
    "shape_predictor",
]

log = logging.getLogger(__name__)

#: Environment variable that names a folder holding the three ``.dat`` files.
ENV_VAR = "AUGMENTFACE_DLIB_MODELS"

RECOGNITION_FILE = "dlib_face_recognition_resnet_model_v1.dat"
SHAPE68_FILE = "shape_predictor_68_face_landmarks.dat"
SHAPE5_FILE = "shape_predictor_5_face_landmarks.dat"

#: sha256 of each file as shipped by ``face_recognition_models`` 0.3.0.
REFERENCE_SHA256: dict[str, str] = {
    RECOGNITION_FILE: "55533b28a95800a551ba546ba62fe69625c7e95a7061c338adffead08719da30",
    SHAPE68_FILE: "fbdc2cb80eb9aa7a758672cbfdda32ba6300efe9b6e6c7a299ff7e736b11b92f",
    SHAPE5_FILE: "c4b1e9804792707d3a405c2c16a80a20269e6675021f64a41d30fffafbc41888",
}

#: Package shipping the files, and their folder inside it.
_PACKAGE = "face_recognition_models"
_PACKAGE_FOLDER = "models"

_INSTALL_HINT = (
    f"install the package that ships them (`pip install face-recognition-models`), or set "
    f"{ENV_VAR}=DIR to a folder holding {RECOGNITION_FILE}, {SHAPE68_FILE} and {SHAPE5_FILE}"
)

#: Side of the square dlib box, as a multiple of our landmark box's width and height (averaged).
#: Our boxes span MediaPipe's landmarks (ear to ear, hairline to chin); dlib's predictors were
#: trained on boxes from its HOG detector, which are square, about as wide as our box and
#: shorter (they stop at the brows). Measured on 41 photos of ``shared/faces/deepface`` plus the
#: astronaut: HOG side / our width = 1.05 (sd 0.09), HOG side / our height = 0.88 (sd 0.07),
#: centres equal within 1 % of the box size, so the centre is kept.
BOX_WIDTH_SCALE = 1.05
BOX_HEIGHT_SCALE = 0.88


@dataclass(frozen=True)
class ModelFile:
    """One located weights file.

    Attributes
    ----------
    path : Path
        Absolute path of the file.
    sha256 : str
        Hex sha256 of its bytes.
    """

    path: Path
    sha256: str

    @property
    def is_reference(self) -> bool:
        """Whether the file is byte-identical to the copy ``face_recognition_models`` ships."""
        return REFERENCE_SHA256.get(self.path.name) == self.sha256


@dataclass(frozen=True)
class DlibModels:
    """The three located dlib weights files.

    Attributes
    ----------
    folder : Path
        Absolute path of the folder holding them.
    source : str
        Where it was found: ``"environment"`` or ``"face_recognition_models"``.
    recognition, shape68, shape5 : ModelFile
        The face-recognition ResNet, the 68-point and the 5-point shape predictor.
    """

    folder: Path
    source: str
    recognition: ModelFile
    shape68: ModelFile
    shape5: ModelFile

    @property
    def sha256(self) -> dict[str, str]:
        """File name -> hex sha256 of the three files, for manifests."""
        return {f.path.name: f.sha256 for f in (self.recognition, self.shape68, self.shape5)}


def _files_in(folder: Path) -> dict[str, ModelFile] | None:
    """The three files in ``folder`` with their hashes, or None if any is missing."""
    paths = {name: folder / name for name in REFERENCE_SHA256}
    if not all(path.is_file() for path in paths.values()):
        return None
    return {name: ModelFile(path.resolve(), file_sha256(path)) for name, path in paths.items()}


def _models(folder: Path, source: str, files: dict[str, ModelFile]) -> DlibModels:
    return DlibModels(
        folder=folder,
        source=source,
        recognition=files[RECOGNITION_FILE],
        shape68=files[SHAPE68_FILE],
        shape5=files[SHAPE5_FILE],
    )


def _user_folder(value: str) -> DlibModels:
    """Check the folder the user named; accept any hashes but say when they differ."""
    folder = Path(value).expanduser().resolve()
    files = _files_in(folder)
    if files is None:
        missing = [name for name in REFERENCE_SHA256 if not (folder / name).is_file()]
        raise ModelFileError(
            f"dlib model files missing from {folder} (from {ENV_VAR}): {', '.join(missing)}; "
            f"{_INSTALL_HINT}"
        )
    for name, model_file in files.items():
        if not model_file.is_reference:
            log.warning(
                "using a dlib model that differs from the reference %s: %s (sha256 %s, "
                "reference %s)",
                name,
                model_file.path,
                model_file.sha256,
                REFERENCE_SHA256[name],
            )
    return _models(folder, "environment", files)


def _shipped_folder() -> DlibModels | None:
    """Return the shipped copies, verified against the reference hashes, or None."""
    for package_dir in package_dirs(_PACKAGE):
        folder = (package_dir / _PACKAGE_FOLDER).resolve()
        files = _files_in(folder)
        if files is None:
            continue
        for name, model_file in files.items():
            if not model_file.is_reference:
                raise ModelFileError(
                    f"the {name} shipped by {_PACKAGE} fails its checksum: {model_file.path} has "
                    f"sha256 {model_file.sha256}, expected {REFERENCE_SHA256[name]}; reinstall it "
                    f"(`pip install --force-reinstall face-recognition-models`) or set {ENV_VAR}"
                )
        return _models(folder, _PACKAGE, files)
    return None


def locate_dlib_models() -> DlibModels:
    """Find dlib's face-recognition and shape-predictor weights.

    Hashes are cached by (path, mtime, size), so repeated calls cost a few ``stat`` calls.

    Returns
    -------
    DlibModels
        The folder, the three files with their sha256, and where they were found.

    Raises
    ------
    ModelFileError
        When the folder named by ``AUGMENTFACE_DLIB_MODELS`` lacks a file, when no copy is found,
        or when a shipped copy fails its checksum.
    """
    env_value = os.environ.get(ENV_VAR, "").strip()
    if env_value:
        return _user_folder(env_value)
    shipped = _shipped_folder()
    if shipped is None:
        raise ModelFileError(f"dlib face models not found; {_INSTALL_HINT}")
    return shipped


# Keyed by path and hash, so replacing a file (or pointing the variable elsewhere) reloads it.
@functools.lru_cache(maxsize=4)
def _load_recognition(path: str, sha256: str) -> dlib.face_recognition_model_v1:
    del sha256
    return dlib.face_recognition_model_v1(path)


@functools.lru_cache(maxsize=4)
def _load_predictor(path: str, sha256: str) -> dlib.shape_predictor:
    del sha256
    return dlib.shape_predictor(path)


def recognition_model(models: DlibModels | None = None) -> dlib.face_recognition_model_v1:
    """Return dlib's face-recognition ResNet, loaded once and cached.

    Parameters
    ----------
    models : DlibModels, optional
        Located files; :func:`locate_dlib_models` by default.

    Returns
    -------
    dlib.face_recognition_model_v1
        The model (maps an aligned face to a 128-d descriptor).
    """
    model_file = (models or locate_dlib_models()).recognition
    return _load_recognition(str(model_file.path), model_file.sha256)


def shape_predictor(
    n_points: Literal[5, 68] = 68, models: DlibModels | None = None
) -> dlib.shape_predictor:
    """Return dlib's 5- or 68-point shape predictor, loaded once and cached.

    Parameters
    ----------
    n_points : {5, 68}
        Which predictor: 68 iBUG-300W points, or 5 (eye corners and nose base, the one dlib pairs
        with its face-recognition model).
    models : DlibModels, optional
        Located files; :func:`locate_dlib_models` by default.

    Returns
    -------
    dlib.shape_predictor
    """
    located = models or locate_dlib_models()
    if n_points == 68:
        model_file = located.shape68
    elif n_points == 5:
        model_file = located.shape5
    else:
        raise ValueError(f"n_points must be 5 or 68, got {n_points!r}")
    return _load_predictor(str(model_file.path), model_file.sha256)


def check_image(image_rgb: np.ndarray) -> np.ndarray:
    """Validate an RGB image and return it as dlib needs it.

    Parameters
    ----------
    image_rgb : np.ndarray
        (H, W, 3) uint8 RGB, as :func:`augmentface.imageio.read_image` returns.

    Returns
    -------
    np.ndarray
        The same pixels, C-contiguous (dlib's bindings reject strided views such as flips).

    Raises
    ------
    TypeError
        When the input is not a uint8 numpy array.
    ValueError
        When it is not (H, W, 3) with H, W > 0.
    """
    if not isinstance(image_rgb, np.ndarray) or image_rgb.dtype != np.uint8:
        kind = getattr(image_rgb, "dtype", type(image_rgb).__name__)
        raise TypeError(f"image must be a uint8 numpy array, got {kind}")
    if image_rgb.ndim != 3 or image_rgb.shape[2] != 3 or 0 in image_rgb.shape[:2]:
        raise ValueError(f"image must be (H, W, 3) RGB, got shape {image_rgb.shape}")
    return np.ascontiguousarray(image_rgb)


def dlib_rectangle(box_px: Sequence[float], image_shape: tuple[int, ...]) -> dlib.rectangle:
    """Turn one of our face boxes into the box dlib's predictors expect.

    Our boxes (:attr:`augmentface.face.detect.FaceDetection.bbox_px`) span MediaPipe's landmarks;
    dlib's predictors were trained on its HOG detector's square, tighter boxes. The result is the
    square with the same centre and side ``(BOX_WIDTH_SCALE * width + BOX_HEIGHT_SCALE * height)
    / 2``, which reproduces the HOG box to within a few per cent (see ``BOX_WIDTH_SCALE``).

    Parameters
    ----------
    box_px : sequence of float
        ``(x0, y0, x1, y1)`` in pixels, ``x1 > x0``, ``y1 > y0``. It may extend past the image
        (a face cut by the border), but its centre must lie inside it.
    image_shape : tuple of int
        Shape of the image, ``(H, W, ...)``.

    Returns
    -------
    dlib.rectangle
        Integer pixel corners, not clipped (dlib reads outside pixels as black).

    Raises
    ------
    ValueError
        When the box is not four finite numbers, is empty, or is centred outside the image.
    """
    try:
        x0, y0, x1, y1 = (float(v) for v in box_px)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"box must be four numbers (x0, y0, x1, y1), got {box_px!r}") from exc
    if not all(math.isfinite(v) for v in (x0, y0, x1, y1)) or x1 <= x0 or y1 <= y0:
        raise ValueError(f"box must be finite with x1 > x0 and y1 > y0, got {box_px!r}")
    height, width = image_shape[:2]
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    if not (0 <= cx < width and 0 <= cy < height):
        raise ValueError(f"box {box_px!r} is centred outside the {width}x{height} image")
    half = (BOX_WIDTH_SCALE * (x1 - x0) + BOX_HEIGHT_SCALE * (y1 - y0)) / 4
    return dlib.rectangle(round(cx - half), round(cy - half), round(cx + half), round(cy + half))


def face_shape(
    image_rgb: np.ndarray,
    box_px: Sequence[float],
    n_points: Literal[5, 68] = 68,
    models: DlibModels | None = None,
) -> tuple[np.ndarray, dlib.full_object_detection]:
    """Run a dlib shape predictor on one face.

    Parameters
    ----------
    image_rgb : np.ndarray
        (H, W, 3) uint8 RGB.
    box_px : sequence of float
        The face's ``(x0, y0, x1, y1)`` in pixels (see :func:`dlib_rectangle`).
    n_points : {5, 68}
        Which predictor (see :func:`shape_predictor`).
    models : DlibModels, optional
        Located files; :func:`locate_dlib_models` by default.

    Returns
    -------
    image : np.ndarray
        The validated, C-contiguous image (reuse it for the descriptor so it is not copied twice).
    shape : dlib.full_object_detection
        The ``n_points`` predicted points.
    """
    image = check_image(image_rgb)
    rect = dlib_rectangle(box_px, image.shape)
    return image, shape_predictor(n_points, models)(image, rect)
