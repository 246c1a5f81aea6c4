"""Tests for augmentface.manifest: Parquet round trips, metadata, validation, atomicity, resume,
parts."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from augmentface import atomic
from augmentface import manifest as manifest_module
from augmentface.errors import ManifestBusyError, MissingManifestError, UsageError
from augmentface.manifest import (
    META_KEY,
    Column,
    ManifestWriter,
    Schema,
    done_keys,
    pack_array,
    read_manifest,
    read_meta,
    unpack_array,
    write_manifest,
)
from augmentface.manifest_parts import live_parts, write_part

RUN_FIRST = "augmentface fit3dmm"
SCHEMA = Schema(
    stage="fit3dmm",
    version=2,
    key=("image", "face"),
    columns=(
        Column("image", "string", "Input image path.", nullable=False),
        Column("face", "int64", "Face index in the image.", nullable=False),
        Column("landmarks", "array", "Fitted landmarks.", unit="px", shape=(478, 3)),
        Column("coeffs", "array", "Expression coefficients.", shape=(12,)),
        Column("contour", "array", "Jaw contour points.", unit="px", shape=(-1, 2)),
        Column("triangle", "array", "Vertex indices.", shape=(3,)),
        Column("score", "float64", "Detector confidence.", unit="1"),
        Column("flipped", "bool", "Image was mirrored."),
    ),
)
PROVENANCE = {"params": {"lr": 0.1}, "seed": 7, "face_model_id": "flame-2023"}


def make_rows(n: int = 6, *, seed: int = 0, failed: tuple[int, ...] = (2,)) -> pd.DataFrame:
    """Seeded rows; the rows at positions ``failed`` have no arrays and a failure status."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        ok = i not in failed
        rows.append(
            {
                "image": f"img/{i:03d}.jpg",
                "face": i % 2,
                "landmarks": rng.normal(size=(478, 3)).astype(np.float32) if ok else None,
                "coeffs": rng.normal(size=12).astype(np.float32) if ok else None,
                "contour": rng.normal(size=(3 + i, 2)).astype(np.float32) if ok else None,
                "triangle": rng.integers(0, 478, size=3) if ok else None,
                "score": float(rng.uniform()) if ok else None,
                "flipped": bool(i % 3 == 0),
                "status": "ok" if ok else "no_face",
                "error": None if ok else f"no face in img/{i:03d}.jpg",
            }
        )
    return rows_frame(rows)


def rows_frame(rows: list[dict]) -> pd.DataFrame:
    """A DataFrame whose array cells are kept as-is (one numpy array per cell)."""
    columns = {}
    for name in SCHEMA.names:
        cells = np.empty(len(rows), dtype=object)
        for i, row in enumerate(rows):
            cells[i] = row.get(name)
        columns[name] = pd.Series(cells, dtype=object)
    return pd.DataFrame(columns).infer_objects()


def write(path: Path, df: pd.DataFrame, schema: Schema = SCHEMA) -> None:
    write_manifest(path, df, schema, **PROVENANCE)


def keys(df: pd.DataFrame) -> list[tuple]:
    return list(df[list(SCHEMA.key)].itertuples(index=False, name=None))


# --- schema ----------------------------------------------------------------------------------


def test_schema_adds_status_and_error_columns() -> None:
    assert SCHEMA.names[-2:] == ("status", "error")
    assert not SCHEMA.column("status").nullable
    assert SCHEMA.column("error").nullable
    assert SCHEMA.column("landmarks").shape == (478, 3)
    with pytest.raises(KeyError, match="nope"):
        SCHEMA.column("nope")


def test_schema_keeps_a_declared_status_column() -> None:
    status = Column("status", "string", "Custom doc.", nullable=False)
    schema = Schema("s", 1, ("k",), (Column("k", "string", "Key."), status))
    assert schema.names == ("k", "status", "error")
    assert schema.column("status").doc == "Custom doc."


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"dtype": "complex"}, "dtype"),
        ({"dtype": "array"}, "needs a shape"),
        ({"dtype": "array", "shape": (3, -1)}, "-1 only leading"),
        ({"dtype": "float64", "shape": (3,)}, "only 'array'"),
    ],
)
def test_column_rejects_bad_declarations(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Column(name="c", doc="d", **kwargs)


def test_schema_rejects_unknown_key() -> None:
    with pytest.raises(ValueError, match="key"):
        Schema("s", 1, ("missing",), (Column("k", "string", "Key."),))


def test_to_markdown_documents_every_column() -> None:
    text = SCHEMA.to_markdown()
    assert text.splitlines()[0] == "| column | type | shape | unit | description |"
    for column in SCHEMA.columns:
        assert f"`{column.name}`" in text
        assert column.doc in text
    assert "| 478×3 | px |" in text
    assert "| N×2 | px |" in text
    assert "string, not null" in text


# --- validation ------------------------------------------------------------------------------


def test_validate_accepts_good_rows() -> None:
    SCHEMA.validate(make_rows())


def test_validate_names_missing_columns() -> None:
    df = make_rows().drop(columns=["coeffs", "status"])
    with pytest.raises(UsageError, match=r"missing columns \['coeffs', 'status'\]"):
        SCHEMA.validate(df)


def test_validate_names_unexpected_columns() -> None:
    df = make_rows().assign(extra=1)
    with pytest.raises(UsageError, match=r"unexpected columns \['extra'\]"):
        SCHEMA.validate(df)


def test_validate_names_wrong_array_shape() -> None:
    df = make_rows()
    df.at[1, "landmarks"] = np.zeros((468, 3), dtype=np.float32)
    with pytest.raises(UsageError, match=r"'landmarks' row 1 has shape \(468, 3\), expected"):
        SCHEMA.validate(df)


def test_validate_accepts_any_leading_length_for_minus_one() -> None:
    df = make_rows()
    df.at[0, "contour"] = np.zeros((100, 2))
    SCHEMA.validate(df)
    df.at[0, "contour"] = np.zeros((100, 3))
    with pytest.raises(UsageError, match="'contour' row 0"):
        SCHEMA.validate(df)


def test_validate_rejects_null_in_non_nullable_column() -> None:
    df = make_rows()
    df["status"] = df["status"].astype(object)
    df.at[3, "status"] = None
    with pytest.raises(UsageError, match="'status' row 3 is null"):
        SCHEMA.validate(df)


def test_validate_rejects_duplicate_keys() -> None:
    df = make_rows()
    df = pd.concat([df, df.iloc[[1]]], ignore_index=True)
    with pytest.raises(UsageError, match="duplicate key"):
        SCHEMA.validate(df)


# --- round trips ---------------------------------------------------------------------------


def test_round_trip_preserves_rows(tmp_path: Path) -> None:
    path = tmp_path / "fit3dmm.parquet"
    df = make_rows()
    write(path, df)
    got = read_manifest(path, SCHEMA, run_first=RUN_FIRST)

    assert got.path == path
    assert list(got.df.columns) == list(SCHEMA.names)
    assert len(got.df) == len(df)
    assert got.df["image"].tolist() == df["image"].tolist()
    assert got.df["face"].tolist() == df["face"].tolist()
    assert got.df["flipped"].tolist() == df["flipped"].tolist()
    assert got.df["status"].tolist() == df["status"].tolist()
    assert got.df["error"].isna().tolist() == df["error"].isna().tolist()
    assert got.df.at[2, "error"] == "no face in img/002.jpg"
    np.testing.assert_array_equal(got.df["score"].isna(), df["score"].isna())
    np.testing.assert_allclose(got.df["score"].dropna(), df["score"].dropna())
    for i in range(len(df)):
        for name in ("landmarks", "coeffs", "contour", "triangle"):
            want, cell = df.at[i, name], got.df.at[i, name]
            if want is None:
                assert cell is None
                continue
            assert isinstance(cell, np.ndarray)
            assert cell.shape == want.shape
            np.testing.assert_array_equal(cell, want)
            assert cell.dtype == (np.int32 if name == "triangle" else np.float32)


def test_read_arrays_are_writable(tmp_path: Path) -> None:
    path = tmp_path / "m.parquet"
    write(path, make_rows())
    cell = read_manifest(path, SCHEMA, run_first=RUN_FIRST).df.at[0, "landmarks"]
    cell += 1.0  # must not raise "assignment destination is read-only"


def test_float64_arrays_are_stored_as_float32(tmp_path: Path) -> None:
    path = tmp_path / "m.parquet"
    df = make_rows(2, failed=())
    df.at[0, "coeffs"] = np.linspace(0, 1, 12)  # float64 in
    write(path, df)
    cell = read_manifest(path, SCHEMA, run_first=RUN_FIRST).df.at[0, "coeffs"]
    assert cell.dtype == np.float32
    np.testing.assert_allclose(cell, np.linspace(0, 1, 12), rtol=1e-6)


def test_round_trip_of_all_failed_and_empty_manifests(tmp_path: Path) -> None:
    path = tmp_path / "m.parquet"
    write(path, make_rows(3, failed=(0, 1, 2)))
    got = read_manifest(path, SCHEMA, run_first=RUN_FIRST).df
    assert got["landmarks"].tolist() == [None, None, None]
    assert set(got["status"]) == {"no_face"}

    write(path, make_rows(0))
    got = read_manifest(path, SCHEMA, run_first=RUN_FIRST).df
    assert got.empty
    assert list(got.columns) == list(SCHEMA.names)


def test_paths_in_string_columns_are_stored_as_str(tmp_path: Path) -> None:
    path = tmp_path / "m.parquet"
    df = make_rows(2)
    df["image"] = [Path("a/b.jpg"), Path("c.png")]
    write(path, df)
    got = read_manifest(path, SCHEMA, run_first=RUN_FIRST).df
    assert got["image"].tolist() == ["a/b.jpg", "c.png"]


def test_cells_of_the_wrong_type_raise_usage_error(tmp_path: Path) -> None:
    df = make_rows(2)
    df["face"] = ["zero", "one"]
    with pytest.raises(UsageError, match="'face' cannot be stored as int64"):
        write(tmp_path / "m.parquet", df)
    assert not list(tmp_path.iterdir())


def test_metadata_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "m.parquet"
    params = {
        "input": Path("/data/in"),
        "sigma": np.float32(0.5),
        "n": np.int64(3),
        "sizes": (1, 2),
        "nested": {"dirs": [Path("a"), Path("b")], "on": np.bool_(True)},
        "none": None,
    }
    before = dt.datetime.now(dt.UTC).replace(microsecond=0)
    write_manifest(path, make_rows(), SCHEMA, params=params, seed=np.int64(11), face_model_id=None)
    meta = read_meta(path)

    assert meta["stage"] == "fit3dmm"
    assert meta["schema_version"] == 2
    assert isinstance(meta["package_version"], str)
    assert meta["package_version"]
    assert meta["params"] == {
        "input": "/data/in",
        "sigma": 0.5,
        "n": 3,
        "sizes": [1, 2],
        "nested": {"dirs": ["a", "b"], "on": True},
        "none": None,
    }
    assert meta["seed"] == 11
    assert meta["face_model_id"] is None
    assert dt.datetime.fromisoformat(meta["written_utc"]) >= before
    assert read_manifest(path, SCHEMA, run_first=RUN_FIRST).meta == meta
    # The raw footer is plain JSON under the documented key.
    assert json.loads(pq.read_schema(live_parts(path)[-1].path).metadata[META_KEY]) == meta


def test_unserialisable_params_are_refused(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="metadata"):
        write_manifest(
            tmp_path / "m.parquet",
            make_rows(),
            SCHEMA,
            params={"f": object()},
            seed=None,
            face_model_id=None,
        )


def test_plain_pandas_can_read_the_file(tmp_path: Path) -> None:
    path = tmp_path / "m.parquet"
    df = make_rows()
    write(path, df)
    plain = pd.read_parquet(path)
    assert list(plain.columns) == list(SCHEMA.names)
    assert plain["image"].tolist() == df["image"].tolist()
    assert len(plain.at[0, "landmarks"]) == 478 * 3
    np.testing.assert_array_equal(
        np.asarray(plain.at[0, "landmarks"]).reshape(478, 3), df.at[0, "landmarks"]
    )
    assert plain.at[2, "landmarks"] is None


def test_pack_and_unpack_array() -> None:
    a = np.arange(6, dtype=np.float64).reshape(2, 3)
    flat = pack_array(a)
    assert flat.dtype == np.float32
    assert flat.shape == (6,)
    assert unpack_array(flat, (2, 3)).shape == (2, 3)
    assert unpack_array(flat, (-1, 3)).shape == (2, 3)
    assert pack_array(np.arange(3, dtype=np.int64)).dtype == np.int32
    assert unpack_array([1, 2, 3], (3,)).dtype == np.int32
    assert unpack_array(None, (3,)) is None
    with pytest.raises(UsageError, match="int32"):
        pack_array(np.array([2**40]))


# --- read errors -----------------------------------------------------------------------------


def test_missing_manifest_names_the_command(tmp_path: Path) -> None:
    path = tmp_path / "nope.parquet"
    with pytest.raises(MissingManifestError) as info:
        read_manifest(path, SCHEMA, run_first=RUN_FIRST)
    assert str(info.value) == f"{path}: not found; run `augmentface fit3dmm` first"
    assert isinstance(info.value, UsageError)
    path.mkdir()  # a directory without a completed part is no manifest either
    with pytest.raises(MissingManifestError, match="no completed part; run `augmentface fit3dmm"):
        read_manifest(path, SCHEMA, run_first=RUN_FIRST)


def test_wrong_stage_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "m.parquet"
    write(path, make_rows())
    other = Schema("render", SCHEMA.version, SCHEMA.key, SCHEMA.columns)
    with pytest.raises(UsageError, match="written by stage 'fit3dmm', expected 'render'"):
        read_manifest(path, other, run_first="augmentface render")


def test_newer_schema_version_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "m.parquet"
    newer = Schema(SCHEMA.stage, 3, SCHEMA.key, SCHEMA.columns)
    write(path, make_rows(), newer)
    with pytest.raises(UsageError, match=r"version 3 is newer .* upgrade augmentface"):
        read_manifest(path, SCHEMA, run_first=RUN_FIRST)


def test_older_schema_version_is_refused_without_migration(tmp_path: Path) -> None:
    path = tmp_path / "m.parquet"
    older = Schema(SCHEMA.stage, 1, SCHEMA.key, SCHEMA.columns)
    write(path, make_rows(), older)
    with pytest.raises(UsageError, match="no migrations yet; run `augmentface fit3dmm` again"):
        read_manifest(path, SCHEMA, run_first=RUN_FIRST)


def test_single_file_manifest_of_an_older_version_is_read(tmp_path: Path) -> None:
    """Workdirs written before manifests became directories stay readable."""
    path = tmp_path / "m.parquet"
    write(tmp_path / "dir.parquet", make_rows())
    live_parts(tmp_path / "dir.parquet")[0].path.rename(path)
    got = read_manifest(path, SCHEMA, run_first=RUN_FIRST)
    assert keys(got.df) == keys(make_rows())
    write(path, make_rows(2))  # and a rewrite turns it into a directory
    assert path.is_dir()
    assert keys(read_manifest(path, SCHEMA, run_first=RUN_FIRST).df) == keys(make_rows(2))


def test_foreign_parquet_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "m.parquet"
    pd.DataFrame({"a": [1]}).to_parquet(path)
    with pytest.raises(UsageError, match="not an augmentface manifest"):
        read_manifest(path, SCHEMA, run_first=RUN_FIRST)
    (tmp_path / "junk.parquet").write_bytes(b"not parquet at all")
    with pytest.raises(UsageError, match="not a readable Parquet file"):
        read_meta(tmp_path / "junk.parquet")


# --- atomicity -------------------------------------------------------------------------------


def _files(path: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(path.iterdir())}


@pytest.mark.parametrize("error", [OSError("disk full"), KeyboardInterrupt()])
def test_failed_write_leaves_previous_manifest_intact(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, error: BaseException
) -> None:
    path = tmp_path / "m.parquet"
    write(path, make_rows(4, seed=1))
    before = _files(path)
    real_write_table = pq.write_table

    def write_half_then_fail(table, where, **kwargs):
        real_write_table(table, where, **kwargs)
        data = Path(where).read_bytes()
        Path(where).write_bytes(data[: len(data) // 2])
        raise error

    monkeypatch.setattr(pq, "write_table", write_half_then_fail)
    with pytest.raises(type(error)):
        write(path, make_rows(6, seed=2))

    assert _files(path) == before
    assert [p.name for p in tmp_path.iterdir()] == ["m.parquet"]
    assert keys(read_manifest(path, SCHEMA, run_first=RUN_FIRST).df) == keys(make_rows(4))


# --- resume ----------------------------------------------------------------------------------


def test_done_keys_lists_only_ok_rows() -> None:
    df = make_rows(5, failed=(1, 3))
    assert done_keys(df, SCHEMA) == {("img/000.jpg", 0), ("img/002.jpg", 0), ("img/004.jpg", 0)}
    assert done_keys(None, SCHEMA) == set()


# --- ManifestWriter --------------------------------------------------------------------------


def row_dicts(n: int, *, seed: int = 0, failed: tuple[int, ...] = ()) -> list[dict]:
    return make_rows(n, seed=seed, failed=failed).to_dict("records")


def test_writer_checkpoints_and_keeps_rows_on_exception(tmp_path: Path) -> None:
    path = tmp_path / "m.parquet"
    rows = row_dicts(8)
    with pytest.raises(RuntimeError, match="crash"):
        with ManifestWriter(path, SCHEMA, every_n=3, **PROVENANCE) as writer:
            for i, row in enumerate(rows):
                if i == 7:
                    raise RuntimeError("crash")
                writer.add(row)
                if i == 2:  # the first checkpoint is on disk while the loop still runs
                    assert len(read_manifest(path, SCHEMA, run_first=RUN_FIRST).df) == 3
                if i == 4:
                    assert len(read_manifest(path, SCHEMA, run_first=RUN_FIRST).df) == 3

    got = read_manifest(path, SCHEMA, run_first=RUN_FIRST)
    assert keys(got.df) == keys(pd.DataFrame(rows[:7]))
    np.testing.assert_array_equal(got.df.at[6, "landmarks"], rows[6]["landmarks"])
    assert got.meta["params"] == PROVENANCE["params"]
    assert [p.name for p in tmp_path.iterdir()] == ["m.parquet"]
    assert [part.rows for part in live_parts(path)] == [3, 3, 1]  # appended, never rewritten


def test_writer_saves_on_keyboard_interrupt(tmp_path: Path) -> None:
    path = tmp_path / "m.parquet"
    with pytest.raises(KeyboardInterrupt):
        with ManifestWriter(path, SCHEMA, every_n=100, **PROVENANCE) as writer:
            for row in row_dicts(2):
                writer.add(row)
            raise KeyboardInterrupt
    assert len(read_manifest(path, SCHEMA, run_first=RUN_FIRST).df) == 2


def test_writer_resumes_from_previous_manifest(tmp_path: Path) -> None:
    path = tmp_path / "m.parquet"
    write(path, make_rows(5, failed=(1, 3)))
    previous = read_manifest(path, SCHEMA, run_first=RUN_FIRST).df
    done = done_keys(previous, SCHEMA)
    todo = [r for r in row_dicts(6, seed=4) if (r["image"], r["face"]) not in done]

    with ManifestWriter(path, SCHEMA, resume=True, every_n=2, **PROVENANCE) as writer:
        for row in todo:
            writer.add(row)

    got = read_manifest(path, SCHEMA, run_first=RUN_FIRST).df
    assert keys(got) == [k for k in keys(make_rows(6)) if k in done] + [
        (r["image"], r["face"]) for r in todo
    ]
    assert set(got["status"]) == {"ok"}
    assert not got.duplicated(subset=list(SCHEMA.key)).any()


def test_writer_fills_omitted_nullable_columns(tmp_path: Path) -> None:
    path = tmp_path / "m.parquet"
    with ManifestWriter(path, SCHEMA, **PROVENANCE) as writer:
        writer.add({"image": "x.jpg", "face": 0, "status": "no_face", "error": "none found"})
    got = read_manifest(path, SCHEMA, run_first=RUN_FIRST).df
    assert got.at[0, "landmarks"] is None
    assert got.at[0, "status"] == "no_face"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"landmarks": np.zeros((3, 3))}, "'landmarks' has shape"),
        ({"bogus": 1}, "unknown columns"),
        ({"status": None}, "'status' is null"),
    ],
)
def test_writer_rejects_bad_rows(tmp_path: Path, change: dict, message: str) -> None:
    writer = ManifestWriter(tmp_path / "m.parquet", SCHEMA, **PROVENANCE)
    with pytest.raises(UsageError, match=message):
        writer.add({**row_dicts(1)[0], **change})
    row = row_dicts(1)[0]
    del row["face"]
    with pytest.raises(UsageError, match=r"missing columns \['face'\]"):
        writer.add(row)
    writer.close()
    assert read_manifest(tmp_path / "m.parquet", SCHEMA, run_first=RUN_FIRST).df.empty


# --- parts ---------------------------------------------------------------------------------


def test_writer_appends_parts_and_a_retried_row_replaces_the_failed_one(tmp_path: Path) -> None:
    path = tmp_path / "m.parquet"
    write(path, make_rows(4, failed=(1,)))
    first = _files(path)
    retry = row_dicts(2, seed=5)[1]
    with ManifestWriter(path, SCHEMA, resume=True, **PROVENANCE) as writer:
        writer.add(retry)
    assert {k: v for k, v in _files(path).items() if k in first} == first  # untouched
    got = read_manifest(path, SCHEMA, run_first=RUN_FIRST).df
    assert sorted(keys(got)) == sorted(keys(make_rows(4)))
    assert set(got["status"]) == {"ok"}
    np.testing.assert_array_equal(
        got.set_index("image").at["img/001.jpg", "landmarks"], retry["landmarks"]
    )


def test_a_fresh_writer_replaces_another_jobs_parts(tmp_path: Path) -> None:
    path = tmp_path / "m.parquet"
    write(path, make_rows(5))
    with ManifestWriter(path, SCHEMA, every_n=1, **PROVENANCE) as writer:
        writer.add(row_dicts(1, seed=3)[0])
        # The old rows are void from the new run's first part on, and removed.
        assert len(read_manifest(path, SCHEMA, run_first=RUN_FIRST).df) == 1
        writer.add(row_dicts(2, seed=3)[1])
    assert len(read_manifest(path, SCHEMA, run_first=RUN_FIRST).df) == 2
    assert sorted(p.name for p in path.iterdir() if p.suffix == ".parquet") == [
        "part-00001.parquet",
        "part-00002.parquet",
    ]
    assert len(pd.read_parquet(path)) == 2  # plain pandas sees the same rows


def test_a_part_without_its_marker_is_ignored_and_a_changed_part_refused(tmp_path: Path) -> None:
    path = tmp_path / "m.parquet"
    write(path, make_rows(3))
    with ManifestWriter(path, SCHEMA, resume=True, **PROVENANCE) as writer:
        writer.add(row_dicts(5, seed=2)[4])
    (path / "_part-00001.json").unlink()  # as if killed between the part and its marker
    assert keys(read_manifest(path, SCHEMA, run_first=RUN_FIRST).df) == keys(make_rows(3))
    with ManifestWriter(path, SCHEMA, resume=True, **PROVENANCE) as writer:
        writer.add(row_dicts(5, seed=2)[3])
    assert sorted(p.index for p in live_parts(path)) == [0, 2]  # the next free index
    part = live_parts(path)[0].path
    part.write_bytes(part.read_bytes()[::-1])
    with pytest.raises(UsageError, match="changed after it was written"):
        read_manifest(path, SCHEMA, run_first=RUN_FIRST)


def test_writers_of_parts_never_overwrite_each_other(tmp_path: Path) -> None:
    """A part never replaces a part file already there, marked or not: it takes the next free
    index (shards of one stage appending to one directory)."""
    path = tmp_path / "m.parquet"
    write(path, make_rows(0))
    (path / "part-00001.parquet").write_bytes(b"taken by a writer that has not marked it yet")
    part = write_part(path, pa.table({"x": [1]}), replaces=False)
    assert part.index == 2
    assert (path / "part-00001.parquet").read_bytes().startswith(b"taken")
    assert [p.index for p in live_parts(path)] == [0, 2]


def test_a_second_run_on_the_same_manifest_is_refused(tmp_path: Path) -> None:
    """Two runs on one workdir would void or mix each other's rows: the second stops with one
    line, and the manifest is free again once the first ends."""
    path = tmp_path / "m.parquet"
    first = ManifestWriter(path, SCHEMA, **PROVENANCE)
    first.add(row_dicts(1)[0])
    with pytest.raises(ManifestBusyError, match=r"another run \(pid \d+\) is writing"):
        ManifestWriter(path, SCHEMA, **PROVENANCE)
    first.close()
    with ManifestWriter(path, SCHEMA, resume=True, **PROVENANCE) as again:
        again.add(row_dicts(2)[1])
    assert len(read_manifest(path, SCHEMA, run_first=RUN_FIRST).df) == 2


def test_writer_syncs_the_rows_files_before_a_part_is_marked(tmp_path, monkeypatch) -> None:
    # The per-row files a stage writes without an fsync each are made durable together, and
    # before the part that names them exists: a part never names a file a machine crash loses.
    path = tmp_path / "m.parquet"
    files = [tmp_path / "out" / f"{i}.jpg" for i in range(5)]
    synced: list[tuple[list[str], int]] = []

    def record(paths) -> None:
        synced.append((sorted(str(p) for p in paths), len(live_parts(path))))

    monkeypatch.setattr(manifest_module, "sync_file_systems", record)
    rows = row_dicts(5)
    with ManifestWriter(path, SCHEMA, every_n=3, synced_column="image", **PROVENANCE) as writer:
        for row, file in zip(rows, files, strict=True):
            writer.add({**row, "image": str(file)})
    assert synced == [
        (sorted(str(f) for f in files[:3]), 0),  # before the first part was written
        (sorted(str(f) for f in files[3:]), 1),
    ]


def test_sync_file_systems_flushes_each_file_system_once(tmp_path, monkeypatch) -> None:
    calls: list[int] = []
    real = atomic._syncfs()
    if real is None:
        pytest.skip("no syncfs here (not Linux)")
    monkeypatch.setattr(atomic, "_syncfs", lambda: lambda fd: calls.append(fd) or real(fd))
    for name in ("a/1.jpg", "a/2.jpg", "b/3.jpg"):
        atomic.atomic_write_bytes(tmp_path / name, b"x", durable=False)
    atomic.sync_file_systems([tmp_path / "a/1.jpg", tmp_path / "a/2.jpg", tmp_path / "b/3.jpg"])
    assert len(calls) == 1  # both folders are on one file system
    atomic.sync_file_systems([tmp_path / "gone" / "4.jpg"])  # a folder that is gone: skipped
    assert len(calls) == 1
    assert (tmp_path / "a/1.jpg").read_bytes() == b"x"
