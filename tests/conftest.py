"""Shared fixtures: the face model, one landmarker per session, the real photos."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("GLOG_minloglevel", "2")

SHARED_FACES = Path(__file__).resolve().parents[2] / "shared" / "faces" / "deepface"


@pytest.fixture(scope="session")
def model():
    from augmentface.face.model import load_face_model

    return load_face_model()


@pytest.fixture(scope="session")
def landmarker():
    from augmentface.face.detect import DetectConfig, FaceLandmarker

    with FaceLandmarker(DetectConfig()) as lm:
        yield lm


@pytest.fixture(scope="session")
def astronaut():
    from skimage import data

    return data.astronaut()


@pytest.fixture(scope="session")
def shared_faces() -> Path:
    if not SHARED_FACES.is_dir():
        pytest.skip(f"{SHARED_FACES} not present")
    return SHARED_FACES


@pytest.fixture(scope="session")
def shared_photos(shared_faces, landmarker):
    """Every shared photo with a face: (path, image scaled to at most 800 px, first face and its
    blendshape scores by name), as the quality tests select their sources from."""
    import cv2

    from augmentface.imageio import read_image

    photos = []
    for path in sorted(shared_faces.glob("*.jpg")):
        image = read_image(path)
        scale = min(1.0, 800 / max(image.shape[:2]))
        image = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        faces = landmarker.detect(image)
        if faces:
            scores = dict(zip(faces[0].blendshape_names, faces[0].blendshape_scores, strict=True))
            photos.append((path, image, faces[0], scores))
    return photos
