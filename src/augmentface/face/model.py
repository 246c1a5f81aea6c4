"""The embedded morphable face model: canonical mesh + per-face identity + FACS expression rig.

``verts_model_mm = mean_verts_model_mm + identity_offsets_model_mm + expression_offsets_model_mm``

The mean shape and topology are MediaPipe's canonical face mesh (read from the landmarker
bundle); the identity part is a free per-face offset field fitted from the photo; the expression
part is the project's FACS Action Unit rig (:mod:`augmentface.expression.au_rig`). Every
expression source (the rig, the VA prior, learned models later) produces the same thing: an
``expression_offsets_model_mm`` array of shape (468, 3).
"""

from __future__ import annotations

import functools
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from augmentface.atomic import atomic_write_bytes
from augmentface.expression.au_rig import AURig, build_au_rig
from augmentface.face import topology as topo
from augmentface.face.canonical_mesh import CanonicalMesh, load_canonical_mesh
from augmentface.face.landmarker_model import LandmarkerModel, locate_landmarker
from augmentface.face.topology import MeshTopology

#: Bumped whenever the rig's fields change, so manifests from another rig are recognised.
RIG_VERSION = 5
N_MESH_VERTICES = 468
NEUTRAL_OFFSETS_FILE = Path(__file__).with_name("data") / "neutral_offsets_model_mm.npy"
LANDMARK_GAINS_FILE = Path(__file__).with_name("data") / "landmark_gains.json"
IDENTITY_AU_NOISE_FILE = Path(__file__).with_name("data") / "identity_au_noise.json"


@dataclass(frozen=True)
class FaceModel:
    """Mean shape, topology and expression rig, identified by ``model_id``."""

    model_id: str
    mesh: CanonicalMesh
    topology: MeshTopology
    rig: AURig
    neutral_verts_model_mm: np.ndarray
    #: The landmarker bundle the model was built on (a worker process rebuilds it from there).
    landmarker_path: str

    @property
    def mean_verts_model_mm(self) -> np.ndarray:
        """(468, 3) neutral mean shape: where MediaPipe puts a relaxed face's landmarks.

        The canonical mesh with its lips closed, plus the measured neutral offsets
        (``face/data/neutral_offsets_model_mm.npy``, from ``scripts/calibrate_neutral.py``).
        """
        return self.neutral_verts_model_mm

    @property
    def canonical_closed_verts_model_mm(self) -> np.ndarray:
        """(468, 3) the canonical mesh with closed lips, before the neutral offsets."""
        return close_lips(self.mesh.verts_model_mm)

    @property
    def triangles(self) -> np.ndarray:
        return self.mesh.triangles

    def verts_model_mm(
        self, identity_offsets_model_mm: np.ndarray, expression_offsets_model_mm: np.ndarray
    ) -> np.ndarray:
        """(468, 3) vertex positions in mm for one face with one expression."""
        return self.mean_verts_model_mm + identity_offsets_model_mm + expression_offsets_model_mm

    def export_mesh(self, path: str | Path, verts_model_mm: np.ndarray) -> Path:
        """Write a mesh as OBJ or PLY (by suffix) with trimesh, atomically; returns the path."""
        import trimesh  # imported here: only mesh export needs it

        path = Path(path)
        suffix = path.suffix.lower()
        if suffix not in (".obj", ".ply"):
            raise ValueError(f"{path}: mesh export supports .obj and .ply, not {path.suffix!r}")
        mesh = trimesh.Trimesh(
            vertices=np.asarray(verts_model_mm, dtype=np.float64),
            faces=self.triangles,
            visual=trimesh.visual.TextureVisuals(uv=self.mesh.uv),
            process=False,
        )
        data = mesh.export(file_type=suffix[1:])
        atomic_write_bytes(path, data if isinstance(data, bytes) else data.encode())
        return path


def close_lips(verts_model_mm: np.ndarray) -> np.ndarray:
    """The canonical mesh with the inner lip contours meeting, as in a relaxed closed mouth.

    MediaPipe's canonical mesh holds the inner lips about 6 mm apart, while on real closed
    mouths its landmarker puts them under 1 mm apart; fitting against the open canonical mouth
    would read every closed mouth as a pressed one (AU24) and bias the other lip AUs.
    """
    out = verts_model_mm.copy()
    upper = topo.LIPS_INNER[1 : topo.LIPS_INNER_UPPER_COUNT - 1]
    lower = topo.LIPS_INNER[: topo.LIPS_INNER_UPPER_COUNT - 1 : -1]
    for u, low in zip(upper, lower, strict=True):
        middle = 0.5 * (verts_model_mm[u, 1:] + verts_model_mm[low, 1:])
        out[u, 1:] = out[low, 1:] = middle
    return out


@functools.cache
def _load(path: str, sha256: str) -> FaceModel:
    mesh = load_canonical_mesh(path)
    rig = build_au_rig(mesh.verts_model_mm, mesh.triangles)
    model_id = f"mediapipe468-facs{RIG_VERSION}-cal{calibration_digest()}@{sha256[:12]}"
    topology = MeshTopology(mesh.verts_model_mm, mesh.triangles)
    neutral = close_lips(mesh.verts_model_mm) + neutral_offsets_model_mm()
    return FaceModel(model_id, mesh, topology, rig, neutral, path)


def calibration_digest() -> str:
    """Short digest of the calibration files (neutral offsets, gains, identity noise): part of
    the model id, so fits, targets and model files made before a recalibration are refused
    rather than mixed with new ones."""
    digest = hashlib.sha256()
    for path in (NEUTRAL_OFFSETS_FILE, LANDMARK_GAINS_FILE, IDENTITY_AU_NOISE_FILE):
        digest.update(path.read_bytes() if path.exists() else b"-")
    return digest.hexdigest()[:6]


@functools.cache
def landmark_gains(au_numbers: tuple[int, ...]) -> np.ndarray:
    """(K,) how far MediaPipe's landmarks follow each AU (1 where not measured).

    Measured by ``scripts/calibrate_response.py``; see there.
    """
    if not LANDMARK_GAINS_FILE.exists():
        return np.ones(len(au_numbers))
    measured = json.loads(LANDMARK_GAINS_FILE.read_text())
    return np.array([float(measured.get(f"AU{au}", 1.0)) for au in au_numbers])


@functools.cache
def identity_au_noise(au_numbers: tuple[int, ...]) -> np.ndarray:
    """(K,) spread (SD, FACS units) of each AU's signed fit on neutral faces (0 where not
    measured): how much of a person's own shape the rig mistakes for that AU.

    Measured by ``scripts/calibrate_identity_noise.py``; see there.
    """
    if not IDENTITY_AU_NOISE_FILE.exists():
        return np.zeros(len(au_numbers))
    measured = json.loads(IDENTITY_AU_NOISE_FILE.read_text())
    return np.array([float(measured.get(f"AU{au}", 0.0)) for au in au_numbers])


def neutral_offsets_model_mm() -> np.ndarray:
    """(468, 3) measured offsets of MediaPipe's neutral faces from the canonical mesh, in mm.

    Zero when the calibration file is absent (the calibration script itself starts that way).
    """
    path = NEUTRAL_OFFSETS_FILE
    if not path.exists():
        return np.zeros((N_MESH_VERTICES, 3))
    offsets = np.load(path).astype(np.float64)
    if offsets.shape != (N_MESH_VERTICES, 3):
        raise ValueError(f"{path}: expected shape (468, 3), got {offsets.shape}")
    return offsets


def load_face_model(landmarker: LandmarkerModel | str | Path | None = None) -> FaceModel:
    """The face model built on a landmarker bundle (located as in :func:`locate_landmarker`)."""
    if not isinstance(landmarker, LandmarkerModel):
        landmarker = locate_landmarker(landmarker)
    return _load(str(landmarker.path), landmarker.sha256)
