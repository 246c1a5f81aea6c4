"""Tests of augmentface.datasets: importing the affect datasets and writing their layouts.

Every dataset tree is built in tmp_path by tests/dataset_trees.py, in the published layout,
from real photos (the astronaut, always present, or the shared deepface photos).
"""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest
from PIL import Image

from augmentface.datasets import (
    SOURCES,
    ImportConfig,
    close_videos,
    format_frame_ref,
    import_dataset,
    parse_frame_ref,
    read_frame,
    read_sources,
    video_frame_count,
    write_layout,
    write_sources,
)
from augmentface.datasets.schema import DISFA_AUS
from augmentface.datasets.schema import LABEL_AU_COLUMNS as _LABEL_AUS
from augmentface.errors import (
    DatasetLayoutError,
    ImageMissingError,
    ImageReadError,
    UsageError,
)
from augmentface.imageio import read_image
from tests.dataset_trees import (
    augmented_labels,
    build_afew_va,
    build_affwild,
    build_affwild2,
    build_disfa,
    build_folder,
    disfa_intensities,
    make_frames,
    nearest_frame,
    write_avi,
    write_rgb,
)

LABEL_AU_COLUMNS = list(_LABEL_AUS)
MJPG_TOLERANCE = 12.0  # mean absolute error, 0-255, of a decoded MJPG frame at quality 95


@pytest.fixture(scope="module")
def frames(astronaut) -> list[np.ndarray]:
    return make_frames(astronaut, 10)


def half_away(value: float) -> float:
    """Round halves away from zero, as the layouts document (Python's round() goes to even)."""
    return float(np.sign(value) * np.floor(abs(value) + 0.5))


def assert_decodes_to(ref: str, frames: list[np.ndarray], expected: int) -> None:
    index, error = nearest_frame(read_frame(ref), frames)
    assert (index, error < MJPG_TOLERANCE) == (expected, True), (ref, index, error)


# --- frame references ------------------------------------------------------------------------


def test_frame_refs_round_trip(tmp_path):
    ref = format_frame_ref(tmp_path / "a#b.avi", 12)
    assert ref == f"{tmp_path}/a#b.avi#frame=12"
    assert parse_frame_ref(ref) == (tmp_path / "a#b.avi", 12)
    assert parse_frame_ref(tmp_path / "x.png") == (tmp_path / "x.png", None)
    assert parse_frame_ref(f"{tmp_path}/x#frame=ab.png") == (tmp_path / "x#frame=ab.png", None)
    with pytest.raises(ValueError):
        format_frame_ref("v.avi", -1)


def test_read_frame_decodes_the_frame_named_in_any_order(tmp_path, frames):
    video = write_avi(tmp_path / "v.avi", frames)
    assert video_frame_count(video) == len(frames)
    for index in (0, 1, 2, 7, 3, 3, 9, 0, 5):  # forward, jump, backward, repeat
        assert_decodes_to(format_frame_ref(video, index), frames, index)
    still = write_rgb(tmp_path / "still.png", frames[4])
    np.testing.assert_array_equal(read_frame(str(still)), frames[4])
    close_videos()
    assert_decodes_to(format_frame_ref(video, 6), frames, 6)  # reopened after close


def test_read_frame_errors_name_file_and_frame(tmp_path, frames):
    video = write_avi(tmp_path / "v.avi", frames)
    with pytest.raises(ImageReadError, match=r"v\.avi#frame=10: frame 10 is past the end"):
        read_frame(format_frame_ref(video, 10))
    assert_decodes_to(format_frame_ref(video, 2), frames, 2)  # still usable after the error
    with pytest.raises(ImageMissingError, match=r"gone\.avi"):
        read_frame(format_frame_ref(tmp_path / "gone.avi", 0))
    (tmp_path / "bad.avi").write_bytes(b"not a video" * 20)
    with pytest.raises(ImageReadError, match=r"bad\.avi"):
        read_frame(format_frame_ref(tmp_path / "bad.avi", 0))


# --- DISFA ---------------------------------------------------------------------------------


def test_disfa_rows_labels_and_frames(tmp_path, frames):
    video, truth = build_disfa(tmp_path, frames)
    df = import_dataset("disfa", tmp_path)
    assert list(df.columns) == list(SOURCES.names)
    assert len(df) == len(frames) and set(df["status"]) == {"ok"}
    assert set(df["subject_id"]) == {"SN001"} and set(df["dataset"]) == {"disfa"}
    assert df["frame_index"].tolist() == list(range(1, 11))
    assert df["video_path"].iloc[0] == str(video.resolve())
    np.testing.assert_array_equal(df[LABEL_AU_COLUMNS].to_numpy(), truth)
    np.testing.assert_array_equal(df[[f"raw_AU{n}" for n in DISFA_AUS]].to_numpy(), truth)
    assert df[["raw_AU7", "label_valence"]].isna().all().all()
    assert (df["raw_expression"] == -1).all() and df["label_emotion"].isna().all()
    for row in df.itertuples():
        assert_decodes_to(row.image_path, frames, row.frame_index - 1)
    sub = import_dataset("disfa", tmp_path, ImportConfig(every_nth=3, max_frames_per_clip=3))
    assert sub["frame_index"].tolist() == [1, 4, 7]


@pytest.mark.parametrize("n_labels", [8, 12])
def test_disfa_label_file_shorter_or_longer_than_video(tmp_path, frames, n_labels):
    build_disfa(tmp_path, frames, intensities=disfa_intensities(n_labels))
    df = import_dataset("disfa", tmp_path)
    assert len(df) == len(frames)  # one row per video frame, never dropped
    assert set(df["status"]) == {"label_mismatch"}
    message = df["error"].iloc[0]
    assert "SN001_au1.txt" in message and f"{n_labels} frames" in message
    assert "has 10" in message and "11 other label files" in message
    covered = min(n_labels, len(frames))
    assert df["label_AU1"].iloc[:covered].notna().all()
    assert df["label_AU1"].iloc[covered:].isna().all()


def test_disfa_label_links_out_of_the_root_are_not_read(tmp_path, frames):
    """Issue 13: a label file that is a link out of the root is refused unread; a bad line of
    a label file is quoted as a short escaped excerpt, never whole."""
    root = tmp_path / "DISFA"
    build_disfa(root, frames)
    secret = tmp_path / "secret.txt"
    secret.write_text("1,top secret line that must never be copied into a manifest\n")
    au12 = root / "ActionUnit_Labels/SN001/SN001_au12.txt"
    au12.unlink()
    au12.symlink_to(secret)
    with pytest.raises(DatasetLayoutError, match="outside the dataset root; it is not read"):
        import_dataset("disfa", root)
    au12.unlink()
    au12.write_text("".join(f"{i},0\n" for i in range(1, 11)).replace("3,0", "3," + "x" * 300))
    df = import_dataset("disfa", root)
    error = df.loc[df["frame_index"] == 3, "error"].iloc[0]
    assert "'3,xxx" in error and "…" in error and len(error) < 200


def test_disfa_invalid_intensity_is_recorded(tmp_path, frames):
    build_disfa(tmp_path, frames)
    au12 = tmp_path / "ActionUnit_Labels/SN001/SN001_au12.txt"
    lines = au12.read_text().splitlines()
    lines[3], lines[5], lines[1] = "4,7", "6,x", "nan,2"
    au12.write_text("\n".join(lines) + "\n")
    df = import_dataset("disfa", tmp_path)
    bad = df[df["status"] != "ok"]
    assert bad["frame_index"].tolist() == [2, 4, 6]
    assert "frame number 'nan'" in bad["error"].iloc[0]
    bad = bad.iloc[1:]
    assert set(bad["status"]) == {"invalid_label"}
    assert "SN001_au12.txt line 4: AU12 is 7, outside [0, 5]" in bad["error"].iloc[0]
    assert "SN001_au12.txt line 6" in bad["error"].iloc[1]
    assert bad["raw_AU12"].iloc[0] == 7 and np.isnan(bad["label_AU12"].iloc[0])
    assert bad["label_AU1"].notna().all()  # the other AUs of the frame are fine


def test_disfa_wrong_layouts(tmp_path, frames):
    with pytest.raises(DatasetLayoutError, match="ActionUnit_Labels"):
        import_dataset("disfa", tmp_path)
    build_disfa(tmp_path, frames)
    with pytest.raises(DatasetLayoutError, match="Videos_RightCamera"):
        import_dataset("disfa", tmp_path, ImportConfig(camera="right"))
    (tmp_path / "ActionUnit_Labels/SN001/SN001_au25.txt").unlink()
    with pytest.raises(DatasetLayoutError, match=r"SN001_au25\.txt: not found"):
        import_dataset("disfa", tmp_path)
    with pytest.raises(UsageError, match="no official split"):
        import_dataset("disfa", tmp_path, ImportConfig(split="train"))


def test_disfa_right_camera_and_unreadable_video(tmp_path, frames):
    build_disfa(tmp_path, frames[:4], subject="SN002", camera="right")
    df = import_dataset("disfa", tmp_path, ImportConfig(camera="right"))
    assert df["clip_id"].tolist() == ["RightVideoSN002_comp"] * 4
    (tmp_path / "Videos_RightCamera/RightVideoSN002_comp.avi").write_bytes(b"junk" * 100)
    df = import_dataset("disfa", tmp_path, ImportConfig(camera="right"))
    assert len(df) == 4 and set(df["status"]) == {"unreadable"}
    assert df["label_AU1"].notna().all()  # labels still recorded


# --- AFEW-VA -------------------------------------------------------------------------------


def test_afew_va_rows_labels_and_invalid(tmp_path, frames):
    va = build_afew_va(tmp_path, frames[:6], clip="001", skip_entries=(5,))
    va[2] = (15, 0)
    build_afew_va(tmp_path, frames[:6], clip="002", va=va)
    df = import_dataset("afew-va", tmp_path)
    assert len(df) == 12
    one = df[df["clip_id"] == "001"]
    assert set(one["subject_id"]) == {"001"} and one["frame_index"].tolist() == list(range(6))
    np.testing.assert_array_equal(one["raw_valence"].iloc[:5], [-3, -2, -1, 0, 1])
    assert one["label_valence"].iloc[0] == pytest.approx(-0.3)
    assert one["label_arousal"].iloc[1] == pytest.approx(0.8)
    assert one["status"].iloc[5] == "missing_label"
    assert "001/001.json: no entry for frame 00005" in one["error"].iloc[5]
    two = df[df["clip_id"] == "002"]
    assert two["status"].iloc[2] == "invalid_label"
    assert "002/002.json frame 00002: valence is 15, outside [-10, 10]" in two["error"].iloc[2]
    assert np.isnan(two["label_valence"].iloc[2]) and two["label_arousal"].iloc[2] == 0.0
    for row in one.itertuples():
        assert_decodes_to(row.image_path, frames, row.frame_index)


def test_afew_va_wrong_layouts(tmp_path, frames):
    with pytest.raises(DatasetLayoutError, match=r"001/001\.json"):
        import_dataset("afew-va", tmp_path)
    build_afew_va(tmp_path, frames[:2], clip="003")
    (tmp_path / "003/003.json").unlink()
    with pytest.raises(DatasetLayoutError, match=r"003/003\.json: not found"):
        import_dataset("afew-va", tmp_path)


# --- Aff-Wild ------------------------------------------------------------------------------


def test_affwild_rows_labels_splits_and_mismatch(tmp_path, frames):
    _, va = build_affwild(tmp_path, frames, name="vid1")
    build_affwild(tmp_path, frames[:3], name="vid2", split="test")
    build_affwild(tmp_path, frames[:4], name="vid3", va=np.zeros((6, 2)))
    df = import_dataset("affwild", tmp_path)
    one = df[df["clip_id"] == "vid1"]
    assert len(one) == 10 and set(one["status"]) == {"ok"} and set(one["split"]) == {"train"}
    np.testing.assert_allclose(one["label_valence"], np.round(va[:, 0], 4))
    assert one["frame_index"].tolist() == list(range(1, 11))
    assert_decodes_to(one["image_path"].iloc[6], frames, 6)
    test = df[df["clip_id"] == "vid2"]
    assert len(test) == 3 and set(test["status"]) == {"ok"} and test["label_valence"].isna().all()
    mismatch = df[df["clip_id"] == "vid3"]
    assert len(mismatch) == 4 and set(mismatch["status"]) == {"label_mismatch"}
    assert "valence/vid3.txt: labels for 6 frames, vid3.avi has 4" in mismatch["error"].iloc[0]
    assert set(import_dataset("affwild", tmp_path, ImportConfig(split="test"))["clip_id"]) == {
        "vid2"
    }


def test_affwild_wrong_layouts(tmp_path, frames):
    with pytest.raises(DatasetLayoutError, match="videos/train"):
        import_dataset("affwild", tmp_path)
    build_affwild(tmp_path, frames[:2], name="vid1")
    (tmp_path / "annotations/train/arousal/vid1.txt").unlink()
    with pytest.raises(DatasetLayoutError, match=r"arousal/vid1\.txt: not found"):
        import_dataset("affwild", tmp_path)


# --- Aff-Wild2 -----------------------------------------------------------------------------


def test_affwild2_merges_challenges_and_records_invalid_frames(tmp_path, frames):
    paths = build_affwild2(
        tmp_path,
        frames[:5],
        va_lines=["0.5,-0.25", "-5,-5", "0.1,0.2", "1.5,0"],  # frame 5 unlabelled
        au_lines=["1,0,0,1,0,0,1,0,0,0,1,0"] + ["-1," * 11 + "-1"] + ["0," * 11 + "0"] * 3,
        expr_lines=["4", "0", "-1", "6", "9"],
        au_split="Validation_Set",
    )
    df = import_dataset("affwild2", tmp_path)
    assert df["image_path"].tolist() == [str(p.resolve()) for p in paths]
    assert df["frame_index"].tolist() == [1, 2, 3, 4, 5]
    assert set(df["subject_id"]) == {"10-60-1280x720_left"}
    assert set(df["split"]) == {"VA=Train;AU=Validation;EXPR=Train"}
    first = df.iloc[0]
    assert (first["label_valence"], first["label_arousal"]) == (0.5, -0.25)
    assert first[["raw_AU1", "raw_AU6", "raw_AU12", "raw_AU25"]].tolist() == [1, 1, 1, 1]
    assert first["raw_AU2"] == 0 and np.isnan(first["raw_AU5"])
    assert df[LABEL_AU_COLUMNS].isna().all().all()  # occurrences are no intensities
    assert (first["raw_expression"], first["label_emotion"], first["status"]) == (
        4,
        "happiness",
        "ok",
    )
    assert df["status"].tolist() == ["ok"] + ["invalid_label"] * 4
    second = df.iloc[1]
    assert second["raw_valence"] == -5 and np.isnan(second["label_valence"])
    assert "VA_Estimation_Challenge/Train_Set/10-60-1280x720_left.txt line 3" in second["error"]
    assert "every value is -5" in second["error"] and "AU_Detection_Challenge" in second["error"]
    assert second["label_emotion"] == "neutral"
    assert (
        "EXPR_Recognition_Challenge/Train_Set/10-60-1280x720_left.txt line 4: expression is -1"
        in df["error"].iloc[2]
    )
    assert "valence is 1.5, outside [-1, 1]" in df["error"].iloc[3]
    assert df["label_arousal"].iloc[3] == 0 and df["label_emotion"].iloc[3] == "surprise"
    assert "expression is 9" in df["error"].iloc[4] and df["raw_expression"].iloc[4] == 9
    assert np.isnan(df["label_valence"].iloc[4])  # no VA line for frame 5
    assert_decodes_to(df["image_path"].iloc[2], frames, 2)


def test_affwild2_split_filter_and_unlabelled_frames(tmp_path, frames):
    build_affwild2(tmp_path, frames[:4], video="a", va_lines=["0,0", "0.1,0.1"])
    build_affwild2(tmp_path, frames[:2], video="b", va_lines=["0,0"], split="Validation_Set")
    build_affwild2(tmp_path, frames[:2], video="c")  # test video: no labels at all
    df = import_dataset("affwild2", tmp_path)
    assert df.groupby("clip_id").size().to_dict() == {"a": 4, "b": 2, "c": 2}
    assert set(df["status"]) == {"ok"} and df.loc[df["clip_id"] == "c", "split"].isna().all()
    train = import_dataset("affwild2", tmp_path, ImportConfig(split="train"))
    assert train["clip_id"].tolist() == ["a", "a"]  # only the frames Train_Set labels
    val = import_dataset("affwild2", tmp_path, ImportConfig(split="Validation_Set"))
    assert val["clip_id"].tolist() == ["b"] and val["split"].tolist() == ["Validation"]
    with pytest.raises(UsageError, match="Train, Validation"):
        import_dataset("affwild2", tmp_path, ImportConfig(split="test"))


def test_affwild2_wrong_layouts(tmp_path, frames):
    with pytest.raises(DatasetLayoutError, match="cropped_aligned"):
        import_dataset("affwild2", tmp_path)
    build_affwild2(tmp_path, frames[:2], video="a", va_lines=["0,0", "0,0"])
    path = tmp_path / "VA_Estimation_Challenge/Train_Set/a.txt"
    path.write_text("arousal,valence\n0,0\n")
    with pytest.raises(DatasetLayoutError, match=r"a\.txt: expected the header 'valence,arousal'"):
        import_dataset("affwild2", tmp_path)


# --- folder --------------------------------------------------------------------------------


def test_folder_with_labels_csv(tmp_path, frames):
    images = {"alice/00001.png": frames[0], "alice/b.jpg": frames[1], "bob/c.png": frames[2]}
    csv = pd.DataFrame(
        {
            "path": ["alice/00001.png", "bob/c.png", "carol/gone.png", "alice/b.jpg"],
            "subject_id": ["", "", "carol", "al"],
            "valence": ["0.5", "2", "", "x"],
            "AU12": ["3", "", "", "6"],
            "AU7": ["1", "", "", ""],
            "emotion": ["Happiness", "joy", "", ""],
        }
    )
    build_folder(tmp_path, images, csv)
    df = import_dataset("folder", tmp_path, ImportConfig(labels_csv=Path("labels.csv")))
    df = df.set_index(df["image_path"].map(lambda p: Path(p).relative_to(tmp_path).as_posix()))
    assert df["subject_id"].to_dict() == {
        "alice/00001.png": "alice",
        "alice/b.jpg": "al",
        "bob/c.png": "bob",
        "carol/gone.png": "carol",
    }
    assert df.loc["alice/00001.png", "frame_index"] == 1 and df.loc["bob/c.png", "clip_id"] == "bob"
    ok = df.loc["alice/00001.png"]
    assert (ok["status"], ok["label_valence"], ok["label_AU12"], ok["raw_AU7"]) == (
        "ok",
        0.5,
        3.0,
        1.0,
    )
    assert ok["label_emotion"] == "happiness"
    bob = df.loc["bob/c.png"]
    assert bob["status"] == "invalid_label" and "labels.csv line 3: valence is 2" in bob["error"]
    assert "emotion 'joy' is not one of" in bob["error"]
    b = df.loc["alice/b.jpg"]
    assert "labels.csv line 5: valence 'x' is not a number" in b["error"]
    assert "AU12 is 6, outside [0, 5]" in b["error"]
    assert df.loc["carol/gone.png", "status"] == "missing"


def test_folder_paths_outside_the_root_are_refused_unless_allowed(tmp_path, frames):
    """Issue 13: a labels CSV naming ../outside/face.jpg or /etc/passwd, or a symlink out of
    the root, is imported with status outside_root (and fit3dmm never opens it)."""
    root, outside = tmp_path / "root", tmp_path / "outside"
    outside.mkdir()
    Image.fromarray(frames[1]).save(outside / "face.png")
    build_folder(root, {"a.png": frames[0]}, pd.DataFrame({"path": ["a.png"]}))
    (root / "link.png").symlink_to(outside / "face.png")
    listing = ["a.png", "../outside/face.png", "/etc/passwd", "link.png"]
    pd.DataFrame({"path": listing}).to_csv(root / "labels.csv", index=False)
    df = import_dataset("folder", root, ImportConfig(labels_csv=Path("labels.csv")))
    status = dict(zip(df["image_path"], df["status"], strict=True))
    assert status[str(root / "a.png")] == "ok"
    assert status["/etc/passwd"] == "outside_root"
    assert status[str(outside / "face.png")] == "outside_root"  # named in the CSV
    assert status[str(root / "link.png")] == "outside_root"  # a symlink out of the root
    assert len(df) == 4
    assert "allow-outside-root" in df.loc[df.status == "outside_root", "error"].iloc[0]
    allowed = import_dataset(
        "folder", root, ImportConfig(labels_csv=Path("labels.csv"), allow_outside_root=True)
    )
    assert "outside_root" not in set(allowed["status"])


def test_folder_without_csv_and_wrong_csv(tmp_path, frames):
    build_folder(tmp_path, {"p/a.png": frames[0], "b.png": frames[1]})
    df = import_dataset("folder", tmp_path)
    assert len(df) == 2 and set(df["status"]) == {"ok"}
    assert df[[*LABEL_AU_COLUMNS, "label_valence"]].isna().all().all()
    with pytest.raises(DatasetLayoutError, match=r"nothere\.csv"):
        import_dataset("folder", tmp_path, ImportConfig(labels_csv=Path("nothere.csv")))
    (tmp_path / "bad.csv").write_text("file,valence\na.png,0\n")
    with pytest.raises(DatasetLayoutError, match="no 'path' column"):
        import_dataset("folder", tmp_path, ImportConfig(labels_csv=Path("bad.csv")))


# --- registry and manifest -----------------------------------------------------------------


def test_unknown_kind_and_sources_manifest_round_trip(tmp_path, frames):
    with pytest.raises(UsageError, match="disfa, afew-va, affwild, affwild2, folder"):
        import_dataset("ck+", tmp_path)
    build_disfa(tmp_path / "disfa", frames[:3])
    build_afew_va(tmp_path / "afew", frames[:2], skip_entries=(1,))
    build_affwild2(tmp_path / "aw2", frames[:2], va_lines=["-5,-5"], expr_lines=["2", "3"])
    df = pd.concat(
        [
            import_dataset("disfa", tmp_path / "disfa"),
            import_dataset("afew-va", tmp_path / "afew"),
            import_dataset("affwild2", tmp_path / "aw2"),
        ],
        ignore_index=True,
    )
    write_sources(df, tmp_path / "sources.parquet", params={"kinds": ["disfa", "afew-va"]})
    back = read_sources(tmp_path / "sources.parquet")
    assert back.meta["stage"] == "import"

    def plain(frame: pd.DataFrame) -> pd.DataFrame:  # nulls as None whatever the dtype
        return frame.astype(object).where(frame.notna(), None)

    pd.testing.assert_frame_equal(plain(back.df), plain(df))


# --- writers -------------------------------------------------------------------------------


def test_write_disfa_round_trip(tmp_path, frames):
    labels = augmented_labels(
        tmp_path / "blend", {"SN001": frames[:5], "SN003": frames[5:8]}, kind="au"
    )
    labels = labels.iloc[::-1]  # input order must not matter
    out = tmp_path / "augmented"
    written = write_layout("disfa", labels, out)
    video = out / "Videos_LeftCamera/LeftVideoSN001_comp.avi"
    assert video_frame_count(video) == 5
    au12 = (out / "ActionUnit_Labels/SN001/SN001_au12.txt").read_text().splitlines()
    assert au12[0].startswith("1,") and len(au12) == 5
    sn1 = labels[labels["subject_id"] == "SN001"].sort_values("target_id")
    expected = np.floor(sn1[[f"AU{n}" for n in DISFA_AUS]].to_numpy() + 0.5)
    back = import_dataset("disfa", out)
    assert set(back["status"]) == {"ok"}
    assert back.groupby("subject_id").size().to_dict() == {"SN001": 5, "SN003": 3}
    np.testing.assert_array_equal(
        back.loc[back["subject_id"] == "SN001", LABEL_AU_COLUMNS], expected
    )
    # The returned mapping points each input row at its frame.
    row = written.loc[sn1.index[2]]
    assert (row["written_path"], row["frame_index"]) == (str(video), 3)
    decoded = read_frame(row["frame_ref"])
    assert np.abs(decoded.astype(int) - read_image(sn1["output_path"].iloc[2])).mean() < 12
    assert back.loc[back["subject_id"] == "SN001", "image_path"].iloc[2] == row["frame_ref"]


def test_write_disfa_refuses_va_rows_and_resizes(tmp_path, frames, astronaut):
    va = augmented_labels(tmp_path / "blend", {"SN001": frames[:2]}, kind="va")
    with pytest.raises(UsageError, match=r"disfa layout .* valence/arousal rows with the afew-va"):
        write_layout("disfa", va, tmp_path / "out")
    assert not (tmp_path / "out").exists()  # refused before writing anything
    labels = augmented_labels(tmp_path / "blend", {"SN002": frames[:2]}, kind="au")
    labels.loc[1, "output_path"] = str(write_rgb(tmp_path / "big.png", astronaut[:200, :300]))
    write_layout("disfa", labels, tmp_path / "out")
    video = tmp_path / "out/Videos_LeftCamera/LeftVideoSN002_comp.avi"
    decoded = read_frame(format_frame_ref(video, 1))
    assert decoded.shape == frames[0].shape


def test_write_afew_va_round_trip_and_rerun(tmp_path, frames):
    subjects = {"017": frames[:4], "002": frames[4:6]}
    labels = augmented_labels(tmp_path / "blend", subjects, kind="va")
    out = tmp_path / "augmented"
    written = write_layout("afew-va", labels, out)
    document = json.loads((out / "017/017.json").read_text())
    entry = document["frames"]["00000"]
    first = labels.iloc[0]
    assert entry["valence"] == half_away(10 * first["valence"])
    assert len(entry["landmarks"]) == 68 and entry["landmarks"][1] == [1.0, 1.5]
    back = import_dataset("afew-va", out)
    assert set(back["status"]) == {"ok"} and set(back["subject_id"]) == {"017", "002"}
    for index, row in labels.iterrows():
        got = back[back["image_path"] == written.loc[index, "frame_ref"]].iloc[0]
        assert got["subject_id"] == row["subject_id"]
        assert got["label_valence"] == pytest.approx(half_away(10 * row["valence"]) / 10)
        assert got["label_arousal"] == pytest.approx(half_away(10 * row["arousal"]) / 10)
        np.testing.assert_array_equal(read_frame(got["image_path"]), read_image(row["output_path"]))
    # A rerun with fewer rows replaces the clip: no stale frames are left beside the new JSON.
    write_layout("afew-va", labels.iloc[:2], out)
    assert sorted(p.name for p in (out / "017").iterdir()) == ["00000.png", "00001.png", "017.json"]
    assert len(import_dataset("afew-va", out)) == 4  # subject 002 untouched
    with pytest.raises(UsageError, match="afew-va layout"):
        au_rows = augmented_labels(tmp_path / "b2", {"x": frames[:1]}, kind="au")
        write_layout("afew-va", au_rows, out)


def test_write_affwild2_round_trip(tmp_path, frames):
    au = augmented_labels(tmp_path / "blend", {"vidA": frames[:3]}, kind="emotion")
    va = augmented_labels(
        tmp_path / "blend2", {"vidA": frames[3:5], "vidB": frames[5:6]}, kind="va", seed=1
    )
    labels = pd.concat([au, va], ignore_index=True)
    out = tmp_path / "augmented"
    written = write_layout("affwild2", labels, out)
    va_file = (out / "VA_Estimation_Challenge/Train_Set/vidA.txt").read_text().splitlines()
    au_file = (out / "AU_Detection_Challenge/Train_Set/vidA.txt").read_text().splitlines()
    assert va_file[0] == "valence,arousal" and len(va_file) == 6
    assert au_file[0].startswith("AU1,AU2,AU4,AU6,AU7,AU10")
    assert not (out / "AU_Detection_Challenge/Train_Set/vidB.txt").exists()  # vidB: VA only
    back = import_dataset("affwild2", out).set_index("image_path")
    assert set(back["subject_id"]) == {"vidA", "vidB"}
    for index, row in labels.iterrows():
        got = back.loc[written.loc[index, "frame_ref"]]
        assert got["subject_id"] == row["subject_id"]
        if row["kind"] == "va":
            assert got["label_valence"] == pytest.approx(row["valence"])
            if row["subject_id"] == "vidA":  # AU file written: -1 marks a row without AUs
                assert got["raw_AU1"] == -1 and got["status"] == "invalid_label"
            else:  # VA rows only: no AU file at all
                assert np.isnan(got["raw_AU1"]) and got["status"] == "ok"
        else:
            assert got["raw_valence"] == -5  # AU row in a video that has VA rows
            for n in (1, 2, 4, 6, 12, 15, 25, 26):
                assert got[f"raw_AU{n}"] == float(row[f"AU{n}"] >= 1.0)
            assert got["raw_AU7"] == 0  # no AU7 column in the input: not in the target
            if pd.isna(row["emotion"]):
                assert pd.isna(got["label_emotion"]) and got["raw_expression"] == -1
            else:
                assert got["label_emotion"] == row["emotion"]


def test_write_flat_round_trip_and_unknown_layout(tmp_path, frames):
    labels = augmented_labels(
        tmp_path / "blend", {"s1": frames[:2], "s2": frames[2:3]}, kind="emotion"
    )
    labels.loc[2, "output_path"] = str(write_rgb(tmp_path / "other/s1_t0_s0.png", frames[9]))
    labels.loc[len(labels)] = {**labels.iloc[0].to_dict(), "output_path": None}  # failed row
    out = tmp_path / "flat"
    written = write_layout("flat", labels, out)
    assert pd.isna(written["written_path"].iloc[-1]) and written["frame_index"].iloc[-1] == -1
    assert sorted(p.name for p in (out / "images").iterdir()) == [
        "s1_t0_s0.png",
        "s1_t0_s0_1.png",
        "s1_t1_s0.png",
    ]
    table = pd.read_csv(out / "labels.csv")
    assert "ibug68_px" not in table.columns and table["path"].iloc[0].startswith("images/")
    back = import_dataset("folder", out, ImportConfig(labels_csv=Path("labels.csv")))
    assert sorted(back["subject_id"]) == ["s1", "s1", "s2"]
    assert set(back["status"]) == {"ok"}
    with pytest.raises(UsageError, match="flat, disfa, afew-va, affwild2"):
        write_layout("ck+", labels, out)


def test_real_photos_as_disfa_video(tmp_path, shared_faces):
    photos = sorted(shared_faces.glob("img*.jpg"))[:6]
    faces = [cv2.resize(read_image(p), (120, 160), interpolation=cv2.INTER_AREA) for p in photos]
    build_disfa(tmp_path, faces, subject="SN010")
    df = import_dataset("disfa", tmp_path)
    assert len(df) == len(faces) and set(df["status"]) == {"ok"}
    for row in df.iloc[::-1].itertuples():
        assert_decodes_to(row.image_path, faces, row.frame_index - 1)
