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
