"""Rows by key and finished keys of a manifest, without loading it whole."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from augmentface.errors import UsageError
from augmentface.manifest import ManifestWriter, read_manifest
from augmentface.manifest_index import KeySet, ManifestIndex, key_hash
from augmentface.manifest_parts import live_parts
from tests.test_manifest import PROVENANCE, RUN_FIRST, SCHEMA, keys, make_rows, write


def _with_a_retry(path: Path) -> None:
    """Three parts of 4 rows, then a part where a failed row is redone and an ok one fails."""
    rows = make_rows(12, failed=(2, 9))
    with ManifestWriter(path, SCHEMA, every_n=4, **PROVENANCE) as writer:
        for row in rows.to_dict("records"):
            writer.add(row)
    redo = make_rows(12, seed=4, failed=(5,)).to_dict("records")
    with ManifestWriter(path, SCHEMA, resume=True, **PROVENANCE) as writer:
        writer.add(redo[2])  # img/002 now ok
        writer.add(redo[5])  # img/005 now failed


def test_lookups_give_read_manifests_rows_and_the_last_row_of_a_key(tmp_path):
    path = tmp_path / "m.parquet"
    _with_a_retry(path)
    assert len(live_parts(path)) == 4
    whole = read_manifest(path, SCHEMA, run_first=RUN_FIRST).df
    index = ManifestIndex(path, SCHEMA, ["landmarks", "contour", "score", "status"])
    assert len(index) == len(whole) == 12
    for row in whole.to_dict("records"):
        got = index.get((row["image"], row["face"]))
        assert got["status"] == row["status"]
        for name in ("landmarks", "contour"):
            if row[name] is None:
                assert got[name] is None
            else:
                np.testing.assert_array_equal(got[name], row[name])
    assert index.get(("img/999.jpg", 0)) is None
    assert index.get(("img/002.jpg", np.int64(0)))["status"] == "ok"  # numpy ints match too


def test_finished_keys_follow_the_last_row(tmp_path):
    path = tmp_path / "m.parquet"
    _with_a_retry(path)
    done = KeySet(path, SCHEMA)
    whole = read_manifest(path, SCHEMA, run_first=RUN_FIRST).df
    expected = set(keys(whole[whole.status == "ok"]))
    assert len(done) == len(expected) == 10
    assert all(k in done for k in expected)
    assert ("img/005.jpg", 1) not in done and ("img/002.jpg", 0) in done
    assert len(KeySet(tmp_path / "missing.parquet", SCHEMA)) == 0


def test_only_a_few_parts_are_held_and_a_changed_part_is_refused(tmp_path):
    path = tmp_path / "m.parquet"
    _with_a_retry(path)
    index = ManifestIndex(path, SCHEMA, ["landmarks"], cached_parts=2)
    for image in range(12):
        index.get((f"img/{image:03d}.jpg", image % 2))
    assert len(index._cache) == 2
    part = live_parts(path)[0].path
    index = ManifestIndex(path, SCHEMA, ["landmarks"])
    data = bytearray(part.read_bytes())
    data[len(data) // 2] ^= 0xFF  # one flipped byte in the data pages: still Parquet
    part.write_bytes(bytes(data))
    with pytest.raises(UsageError, match="changed after it was written"):
        index.get(("img/000.jpg", 0))
    part.write_bytes(b"not parquet")
    with pytest.raises(UsageError, match="not a readable manifest part"):
        ManifestIndex(path, SCHEMA, ["landmarks"])


def test_a_single_file_manifest_of_an_older_version_is_indexed(tmp_path):
    path = tmp_path / "old.parquet"
    write(tmp_path / "dir.parquet", make_rows(3))
    live_parts(tmp_path / "dir.parquet")[0].path.rename(path)
    index = ManifestIndex(path, SCHEMA, ["score"])
    assert index.get(("img/001.jpg", 1))["score"] is not None


def test_key_hashes_are_stable():
    assert key_hash(("a.jpg", 3)) == key_hash(("a.jpg", np.int64(3)))
    assert key_hash(("a.jpg", 3)) != key_hash(("a.jpg", 4))
    # blake2b-64 of "a.jpg\x1f3", halved: fixed across versions, or resume would redo all
    assert key_hash(("a.jpg", 3)) == 4137422272723369975


def test_rows_stream_the_manifest_in_order_with_the_last_row_of_each_key(tmp_path):
    path = tmp_path / "m.parquet"
    _with_a_retry(path)
    whole = read_manifest(path, SCHEMA, run_first=RUN_FIRST).df
    index = ManifestIndex(path, SCHEMA, ["image", "face", "status"], cached_parts=1)
    streamed = [(r["image"], r["face"], r["status"]) for r in index.rows()]
    assert streamed == list(whole[["image", "face", "status"]].itertuples(index=False, name=None))
